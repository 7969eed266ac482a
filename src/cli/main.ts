/**
 * The command line: wiring only. cac parses (declared from the option table),
 * resolveConfig validates, run() does the work through the engine, describeError
 * turns failures into one line and an exit code.
 */
// First: ssh2 (loaded later, with the SSH transport) must find the pooled randomFillSync.
import '../ssh/pooled-random.js';
import { PdcError } from '../errors/pdc-error.js';
import { createCli, unknownOptionAsTyped } from './command-line.js';
import { resolveConfig } from './options.js';
import { run } from './run.js';

const argv = process.argv.slice(2);
const cli = createCli(async (args, flags) => {
  process.exitCode = await run(() => resolveConfig(args, flags), flags);
});

try {
  cli.parse(process.argv, { run: false });
  if (!cli.options.help && !cli.options.version) await cli.runMatchedCommand();
} catch (e) {
  // cac's own usage errors (unknown option, missing value) land here. The flags
  // were not parsed, but `--json` must still get its one JSON object, so look for it by hand.
  const json = argv.some((a) => a === '--json');
  const err = (e as Error)?.name === 'CACError' ? new PdcError('USAGE', unknownOptionAsTyped((e as Error).message, argv), { hint: 'see pdiffcopy --help' }) : e;
  process.exitCode = await run(() => {
    throw err;
  }, { json });
}

// run() has closed every host, agent, channel and worker by now. If anything still
// holds the event loop (e.g. an SSH socket half-closed towards a peer that stopped
// answering: ssh2's Client.destroy() is a no-op after end()), do not hang after the
// result has been reported. Output is on pipes, files or a TTY, all written synchronously on Linux.
const EXIT_GRACE_MS = 3000;
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
