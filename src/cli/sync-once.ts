import { type Job, type JobOptions, type JobResult, runJob } from '../job/job.js';
import type { JobEmit } from '../job/events.js';
import { openHosts, type OpenedHosts } from './open-hosts.js';
import type { RunConfig } from './options.js';
import type { StartupSeconds } from '../job/events.js';
import { markStartup, resetStartupMarks, STARTUP_STEPS, type StartupStep, startupMarks } from '../startup-marks.js';

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
  resetStartupMarks();
  markStartup('modules');
  const hosts = await openHosts(cfg, log);
  const startup: StartupSeconds = { ...startupMarks(), opened: Math.round(performance.now()) / 1000 };
  onHosts?.(hosts);
  try {
    if (signal?.aborted) throw signal.reason;
    const result = await runJob(jobOf(cfg), hosts, emit, signal);
    emit({ type: 'startup', seconds: startup });
    log(startupText(startup, performance.now() / 1000));
    return result;
  } finally {
    await hosts.close();
  }
}

/** How -v names each start-up step after the first. */
const STEP_LABELS: Record<Exclude<StartupStep, 'modules'>, string> = {
  sshReady: 'ssh client',
  tcp: 'TCP',
  kex: 'kex',
  auth: 'auth',
  exec: 'exec',
  agent: 'agent running',
  hello: 'hello',
};

/**
 * -v: what starting cost and its share of the run so far, then when each step of
 * connecting was first reached (times in seconds since the process started).
 */
export function startupText(startup: StartupSeconds, now: number): string {
  const s = (sec: number) => sec.toFixed(2);
  const loaded = startup.modules ?? 0;
  const opened = startup.opened;
  const share = now > 0 ? Math.round((opened / now) * 100) : 0;
  const steps = STARTUP_STEPS.flatMap((k) => (k === 'modules' || startup[k] === undefined ? [] : [`${STEP_LABELS[k]} ${s(startup[k]!)}`]));
  return (
    `start-up ${s(opened)} s of ${s(now)} s (${share}%): Node and modules ${s(loaded)} s, connecting and starting agents ${s(opened - loaded)} s` +
    (steps.length ? ` (reached at: ${steps.join(', ')})` : '')
  );
}
