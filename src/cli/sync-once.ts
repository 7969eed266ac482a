import { type Job, type JobResult, runJob } from '../job/job.js';
import type { JobEmit } from '../job/events.js';
import { openHosts, type OpenedHosts } from './open-hosts.js';
import type { RunConfig } from './options.js';

/** The command line as a job: every SOURCE's path, the TARGET's, and the copy options. */
export function jobOf(cfg: RunConfig): Job {
  return {
    sources: cfg.sources.map((s) => s.path),
    target: cfg.target.path,
    options: {
      blockSize: cfg.blockSize,
      hashMethod: cfg.hashMethod,
      wholeFile: cfg.wholeFile,
      dryRun: cfg.dryRun,
      verify: cfg.verify,
      atomic: cfg.atomic,
      forceDevice: cfg.forceDevice,
      concurrency: cfg.concurrency,
      recursive: cfg.recursive,
      meta: cfg.meta,
      checksum: cfg.checksum,
      delete: cfg.delete,
    },
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
  const hosts = await openHosts(cfg, log);
  onHosts?.(hosts);
  try {
    if (signal?.aborted) throw signal.reason;
    return await runJob(jobOf(cfg), hosts, emit, signal);
  } finally {
    await hosts.close();
  }
}
