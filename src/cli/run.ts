import { EXIT_CODES } from '../errors/codes.js';
import type { RunEvent } from '../job/events.js';
import { PdcError } from '../errors/pdc-error.js';
import type { OpenedHosts } from './open-hosts.js';
import { syncOnce } from './sync-once.js';
import type { RawFlags, RunConfig } from './options.js';
import { describeError } from './report-error.js';
import { jsonRenderer } from './render/json.js';
import { plainRenderer } from './render/plain.js';
import { jsonProgressRenderer } from './render/json-progress.js';
import { progressLinesRenderer } from './render/progress-lines.js';
import { interruptedError, trackTarget } from './target-state.js';
import type { Renderer } from './render/renderer.js';

/** After the first SIGINT/SIGTERM we give the clean-up this long before exiting anyway. */
const SHUTDOWN_GRACE_MS = 1500;

/** A renderer; the --json one can also report a failure as its one JSON object. */
type RunRenderer = Renderer & { fail?: ReturnType<typeof jsonRenderer>['fail'] };

async function pickRenderer(cfg: RunConfig | undefined, flags: RawFlags): Promise<RunRenderer> {
  const verbosity = cfg?.verbosity ?? 0;
  const chosen = await (async (): Promise<RunRenderer> => {
    if (cfg?.json ?? flags.json) return jsonRenderer(verbosity);
    if (!cfg || cfg.progress === 'off' || verbosity < 0) return plainRenderer(verbosity);
    // Loaded only for a terminal: the bar library is a measurable part of start-up.
    if (process.stderr.isTTY) return (await import('./render/progress-bar.js')).progressBarRenderer(verbosity);
    return cfg.progress === 'on' ? progressLinesRenderer(verbosity) : plainRenderer(verbosity);
  })();
  return cfg?.jsonProgress ? jsonProgressRenderer(chosen) : chosen;
}

/**
 * One CLI run: validate, open both sides, sync, close everything, and turn the
 * outcome into an exit code. Signals abort the engine and close all channels,
 * agents and workers before exiting 130 (SIGINT) or 143 (SIGTERM).
 */
export async function run(configure: () => RunConfig, flags: RawFlags): Promise<number> {
  let cfg: RunConfig | undefined;
  let renderer: RunRenderer;
  let hosts: OpenedHosts | undefined;
  const controller = new AbortController();
  let signalled: 'SIGINT' | 'SIGTERM' | undefined;
  const target = trackTarget();

  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    const exitCode = EXIT_CODES[sig === 'SIGINT' ? 'interrupted' : 'terminated'];
    if (signalled) process.exit(exitCode); // second signal: no more waiting
    signalled = sig;
    controller.abort();
    // Closing the hosts rejects everything in flight, so the engine unwinds at once.
    void hosts?.close();
    setTimeout(() => process.exit(exitCode), SHUTDOWN_GRACE_MS).unref();
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);

  try {
    cfg = configure();
    renderer = await pickRenderer(cfg, flags);
  } catch (e) {
    renderer = await pickRenderer(undefined, flags);
    return fail(e, renderer, 0);
  }
  const log = (line: string) => renderer.log(1, line);
  try {
    if (cfg.benchmark !== undefined) {
      const { runBenchmark } = await import('../benchmark/run-benchmark.js');
      const one = cfg;
      const sync = async () => (await syncOnce(one, () => undefined, log, controller.signal, (h) => (hosts = h))).single!;
      await runBenchmark(cfg, sync, log, controller.signal);
      return 0;
    }
    const emit = (e: RunEvent) => {
      target.see(e);
      if (e.type === 'log') renderer.log(e.level, e.message);
      else renderer.event(e);
    };
    const { totals } = await syncOnce(cfg, emit, log, controller.signal, (h) => (hosts = h));
    renderer.finish();
    // Several files: the others were synced; each failure was reported as it happened.
    return totals.filesFailed > 0 ? EXIT_CODES.partial : 0;
  } catch (e) {
    return fail(signalled ? interruptedError(signalled, cfg, target.state) : e, renderer, cfg.verbosity);
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}

function fail(e: unknown, renderer: RunRenderer, verbosity: number): number {
  const { lines, exitCode, code } = describeError(e, verbosity);
  renderer.finish();
  if (renderer.fail) {
    const err = e instanceof PdcError ? e : undefined;
    renderer.fail(code, err?.message ?? lines[0]!, err?.hint, exitCode);
  }
  process.stderr.write(lines.join('\n') + '\n');
  return exitCode;
}
