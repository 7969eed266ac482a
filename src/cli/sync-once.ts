import { type Job, type JobOptions, type JobResult, runJob } from '../job/job.js';
import type { JobEmit } from '../job/events.js';
import { openHosts, type OpenedHosts } from './open-hosts.js';
import type { RunConfig } from './options.js';

/**
 * Every job option, named once: a field added to JobOptions and not here does not
 * compile, so no option given on the command line is quietly dropped on its way in.
 */
const JOB_OPTION_KEYS = {
  blockSize: true,
  hashMethod: true,
  wholeFile: true,
  dryRun: true,
  verify: true,
  atomic: true,
  forceDevice: true,
  sparse: true,
  concurrency: true,
  recursive: true,
  meta: true,
  checksum: true,
  delete: true,
  refineLevels: true,
} satisfies Record<keyof JobOptions, true>;

function jobOptions(cfg: RunConfig): JobOptions {
  const out: Partial<Record<keyof JobOptions, unknown>> = {};
  for (const k of Object.keys(JOB_OPTION_KEYS) as Array<keyof JobOptions>) out[k] = cfg[k];
  return out as JobOptions;
}

/** The command line as a job: every SOURCE's path, the TARGET's, and the copy options. */
export function jobOf(cfg: RunConfig): Job {
  return {
    sources: cfg.sources.map((s) => s.path),
    target: cfg.target.path,
    options: jobOptions(cfg),
  };
}

/**
 * The job as configured: open both sides once, run every file over them, close
 * everything (also on failure). `onHosts` hands the opened hosts out so a signal
 * handler can close them early.
 */
export async function syncOnce(
  cfg: RunConfig,
  emit: JobEmit,
  log: (line: string) => void,
  signal?: AbortSignal,
  onHosts?: (hosts: OpenedHosts) => void,
): Promise<JobResult> {
  const loaded = performance.now(); // since the process started: Node's own start and our modules
  const hosts = await openHosts(cfg, log);
  const opened = performance.now();
  onHosts?.(hosts);
  try {
    if (signal?.aborted) throw signal.reason;
    const result = await runJob(jobOf(cfg), hosts, emit, signal);
    log(startupText(loaded, opened, performance.now()));
    return result;
  } finally {
    await hosts.close();
  }
}

/** -v: what starting cost, and its share of the run so far (times in ms since the process started). */
export function startupText(loaded: number, opened: number, now: number): string {
  const s = (ms: number) => (ms / 1000).toFixed(2);
  const share = now > 0 ? Math.round((opened / now) * 100) : 0;
  return `start-up ${s(opened)} s of ${s(now)} s (${share}%): Node and modules ${s(loaded)} s, connecting and starting agents ${s(opened - loaded)} s`;
}
