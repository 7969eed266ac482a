import type { Emit, SyncSummary } from '../engine/events.js';
import { syncFile } from '../engine/sync.js';
import { openHosts, type OpenedHosts } from './open-hosts.js';
import type { RunConfig } from './options.js';

/**
 * One sync as configured: open both sides, run the engine, close everything
 * (also on failure). `onHosts` hands the opened hosts out so a signal handler can
 * close them early.
 */
export async function syncOnce(
  cfg: RunConfig,
  emit: Emit,
  log: (line: string) => void,
  signal?: AbortSignal,
  onHosts?: (hosts: OpenedHosts) => void,
): Promise<SyncSummary> {
  const hosts = await openHosts(cfg, log);
  onHosts?.(hosts);
  try {
    if (signal?.aborted) throw signal.reason;
    return await syncFile({
      source: { host: hosts.source, path: cfg.source.path },
      target: { host: hosts.target, path: cfg.target.path },
      blockSize: cfg.blockSize,
      hashMethod: cfg.hashMethod,
      wholeFile: cfg.wholeFile,
      dryRun: cfg.dryRun,
      verify: cfg.verify,
      atomic: cfg.atomic,
      forceDevice: cfg.forceDevice,
      concurrency: cfg.concurrency,
      signal,
      emit,
    });
  } finally {
    await hosts.close();
  }
}
