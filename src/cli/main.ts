/**
 * The command line: wiring only. cac parses, resolveConfig validates, run() does
 * the work through the engine, describeError turns failures into one line and an
 * exit code.
 */
import { cac } from 'cac';
import { EXIT_CODE_HELP } from '../errors/codes.js';
import { VERSION } from '../version.js';
import { resolveConfig, type RawFlags, DEFAULT_CONCURRENCY, DEFAULT_IDLE_TIMEOUT_S } from './options.js';
import { run } from './run.js';

const cli = cac('pdiffcopy');
cli
  .command('[...paths]', 'Make TARGET byte-identical to SOURCE, sending only the blocks that differ')
  .usage('[options] SOURCE TARGET\n\n  SOURCE and TARGET are local paths or [user@]host:path / ssh://[user@]host[:port]/path\n  (at most one remote). A local name containing a colon: write it as ./a:b')
  .option('-b, --block-size <size>', 'Block size: bytes or 5K, 1M, 1MiB (1 B to 64 MiB)', { default: '1MiB' })
  .option('-m, --hash-method <name>', 'Block hash: xxh64 (default) or any node:crypto hash on both sides (sha1, sha256, md5, ...)')
  .option('-W, --whole-file', 'Send every block without comparing (still verified)')
  .option('-c, --concurrency <n>', `Parallel hash/transfer streams; also the number of remote agent channels (default ${DEFAULT_CONCURRENCY})`)
  .option('-n, --dry-run', 'Compare only: print the similarity index and what would be sent; never write')
  .option('--verify', 'Also compare whole-file sha256 digests computed independently on both sides')
  .option('--atomic', 'Build the new version in a temp file beside TARGET and rename it into place when verified (an interrupted run leaves TARGET intact)')
  .option('-B, --benchmark <count>', 'Benchmark: mutate the local TARGET COUNT times with growing deltas, resync, compare with rsync')
  .option('-y, --yes', 'Do not ask before mutating the target in --benchmark')
  .option('-p, --port <port>', 'SSH port (default: from ssh_config, else 22)')
  .option('-i, --identity <file>', 'SSH private key (repeatable)')
  .option('-F, --ssh-config <file>', 'SSH client config file (default ~/.ssh/config)')
  .option('--accept-new-host-key', 'Accept and record an unknown host key (like StrictHostKeyChecking=accept-new); a changed key is always refused')
  .option('--remote-node <path>', 'Node.js binary on the remote host (default: node, then nodejs)')
  .option('--sudo', 'Run the remote agent through `sudo -n` (needs NOPASSWD)')
  .option('--connections <n>', 'SSH connections to spread the agent channels over (default: chosen from -c)')
  .option('--timeout <seconds>', `Fail when a side stops answering for this long (default ${DEFAULT_IDLE_TIMEOUT_S})`)
  .option('--json', 'Print one JSON summary object on stdout')
  .option('--no-progress', 'No progress bar even on a terminal')
  .option('-v, --verbose', 'More output (repeatable: -vv shows stack traces)')
  .option('-q, --quiet', 'Less output (repeatable)')
  .action(async (paths: string[], flags: RawFlags & { '--'?: string[] }) => {
    // Every positional argument reaches resolveConfig, including those after `--`:
    // one it did not see could not be refused.
    const args = [...paths, ...(flags['--'] ?? [])].map(String);
    process.exitCode = await run(() => resolveConfig(args, flags), flags);
  });

cli.help((sections: { title?: string; body: string }[]) => {
  sections.push({
    title: 'Exit codes',
    body: EXIT_CODE_HELP.map(([code, text]) => `  ${String(code).padEnd(4)}${text}`).join('\n'),
  });
  sections.push({
    title: 'Examples',
    body: [
      '  pdiffcopy data.ibd db2:/var/lib/mysql/shop/data.ibd     push to a remote host',
      '  pdiffcopy db1:/srv/vm.img /srv/vm.img                  pull from a remote host',
      '  pdiffcopy -n big.img /mnt/backup/big.img               how similar are they?',
    ].join('\n'),
  });
  return sections;
});
cli.version(VERSION);

/**
 * cac hands mri its boolean flags by camelCase name only, so mri takes the next
 * argument as the value of a dashed one (`--dry-run SRC DST` would swallow SRC).
 * Spell those flags in camelCase before parsing; --help still shows the dashes.
 */
function camelCaseBooleanFlags(argv: string[]): string[] {
  const dashed = new Set<string>();
  for (const cmd of [cli.globalCommand, ...cli.commands]) {
    for (const opt of cmd.options) {
      if (!opt.isBoolean) continue;
      for (const raw of opt.rawName.split(',')) {
        const name = raw.trim().replace(/^--/, '');
        if (raw.trim().startsWith('--') && name.includes('-') && !name.startsWith('no-')) dashed.add(name);
      }
    }
  }
  return argv.map((a) => (a.startsWith('--') && dashed.has(a.slice(2)) ? '--' + a.slice(2).replace(/-([a-z])/g, (_, c: string) => c.toUpperCase()) : a));
}

try {
  cli.parse(camelCaseBooleanFlags(process.argv), { run: false });
  if (!cli.options.help && !cli.options.version) await cli.runMatchedCommand();
} catch (e) {
  // cac's own usage errors (unknown option, missing value) land here.
  // The flags were not parsed, but `--json` must still get its one JSON object
  // (issue 5: `-b -1 --json` printed nothing on stdout), so look for it by hand.
  const json = process.argv.slice(2).some((a) => a === '--json');
  process.exitCode = await run(() => {
    throw e;
  }, { json });
}

// run() has closed every host, agent, channel and worker by now. If anything still
// holds the event loop, do not hang after the result has been reported (issue 5: an
// SSH socket half-closed towards a peer that stopped answering, e.g. a SIGSTOPped
// sshd, stayed open forever because ssh2's Client.destroy() is a no-op after end()).
// Output is on pipes, files or a TTY, all written synchronously on Linux.
const EXIT_GRACE_MS = 3000;
setTimeout(() => process.exit(), EXIT_GRACE_MS).unref();
