import type { SyncEvent } from '../engine/events.js';
import { PdcError } from '../errors/pdc-error.js';
import type { OpenedHosts } from './open-hosts.js';
import { syncOnce } from './sync-once.js';
import type { RawFlags, RunConfig } from './options.js';
import { describeError } from './report-error.js';
import { jsonRenderer } from './render/json.js';
import { plainRenderer } from './render/plain.js';
import { progressBarRenderer } from './render/progress-bar.js';
import type { Renderer } from './render/renderer.js';

/** After the first SIGINT/SIGTERM we give the clean-up this long before exiting anyway. */
const SHUTDOWN_GRACE_MS = 1500;

/** A renderer; the --json one can also report a failure as its one JSON object. */
type RunRenderer = Renderer & { fail?: ReturnType<typeof jsonRenderer>['fail'] };

function pickRenderer(cfg: RunConfig | undefined, flags: RawFlags): RunRenderer {
  const verbosity = cfg?.verbosity ?? 0;
  if (cfg?.json ?? flags.json) return jsonRenderer(verbosity);
  if (cfg && cfg.progress && process.stderr.isTTY && verbosity >= 0) return progressBarRenderer(verbosity);
  return plainRenderer(verbosity);
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

  const onSignal = (sig: 'SIGINT' | 'SIGTERM') => {
    if (signalled) process.exit(sig === 'SIGINT' ? 130 : 143); // second signal: no more waiting
    signalled = sig;
    controller.abort();
    // Closing the hosts rejects everything in flight, so the engine unwinds at once.
    void hosts?.close();
    setTimeout(() => process.exit(sig === 'SIGINT' ? 130 : 143), SHUTDOWN_GRACE_MS).unref();
  };
  const sigint = () => onSignal('SIGINT');
  const sigterm = () => onSignal('SIGTERM');
  process.on('SIGINT', sigint);
  process.on('SIGTERM', sigterm);

  try {
    cfg = configure();
    renderer = pickRenderer(cfg, flags);
  } catch (e) {
    renderer = pickRenderer(undefined, flags);
    return fail(e, renderer, 0);
  }
  const log = (line: string) => renderer.log(1, line);
  try {
    if (cfg.benchmark !== undefined) {
      const { runBenchmark } = await import('../benchmark/run-benchmark.js');
      await runBenchmark(cfg, log, controller.signal);
      return 0;
    }
    // The engine's log events go where every other log line goes (shown with -v).
    const onEvent = (e: SyncEvent) => (e.type === 'log' ? renderer.log(e.level, e.message) : renderer.event(e));
    await syncOnce(cfg, onEvent, log, controller.signal, (h) => (hosts = h));
    renderer.finish();
    return 0;
  } catch (e) {
    return fail(signalled ? interrupted(signalled, cfg) : e, renderer, cfg.verbosity);
  } finally {
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
  }
}

function interrupted(sig: 'SIGINT' | 'SIGTERM', cfg: RunConfig): PdcError {
  // "partly updated" was also said after --atomic and --dry-run runs, which leave the target as it was (issue 5).
  const state = cfg.dryRun
    ? 'nothing was written'
    : cfg.atomic
      ? 'the target is unchanged (the partly built new version is kept beside it for the next run)'
      : 'the target is partly updated';
  return new PdcError(sig === 'SIGINT' ? 'INTERRUPTED' : 'TERMINATED', `${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: ${state}`, {
    hint: 'rerun the same command to finish the copy',
  });
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
