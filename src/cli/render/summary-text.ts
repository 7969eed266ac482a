import type { SyncSummary } from '../../engine/events.js';
import { formatBytes } from '../size.js';

/** The one-line human summary of a finished run (or a dry run's report). */
export function summaryText(s: SyncSummary): string {
  const rate = `${formatBytes(s.throughput)}/s`;
  if (s.dryRun) {
    return (
      `dry run: ${s.similarity.toFixed(2)}% of ${s.blocksTotal} blocks already match (similarity index); ` +
      `would send ${s.blocksChanged} block(s), ${formatBytes(s.bytesSent)} of ${formatBytes(s.bytesTotal)}`
    );
  }
  const verified = s.verified === 'sha256' ? 'verified (blocks + sha256)' : s.verified === 'blocks' ? 'verified' : 'not verified';
  return (
    `${s.source} -> ${s.target}: ${formatBytes(s.bytesTotal)}, ${s.blocksChanged} of ${s.blocksTotal} blocks changed ` +
    `(${s.similarity.toFixed(2)}% similar), sent ${formatBytes(s.bytesSent)} in ${s.seconds.toFixed(2)} s (${rate}), ${verified}`
  );
}
