import type { SyncSummary } from '../../engine/events.js';
import { formatBytes } from '../size.js';

/** The one-line human summary of a finished run (or a dry run's report). */
export function summaryText(s: SyncSummary): string {
  const rate = `${formatBytes(s.throughput)}/s`;
  if (s.dryRun) {
    return (
      `dry run: ${s.similarity.toFixed(2)}% of ${s.blocksTotal} blocks already match (similarity index), ${bytesText(s)}; ` +
      `would send ${s.blocksChanged} block(s), ${formatBytes(s.bytesSent)} of ${formatBytes(s.bytesTotal)}`
    );
  }
  const verified = s.verified === 'sha256' ? 'verified (blocks + sha256)' : s.verified === 'blocks' ? 'verified' : 'not verified';
  return (
    `${s.source} -> ${s.target}: ${formatBytes(s.bytesTotal)}, ${s.blocksChanged} of ${s.blocksTotal} blocks changed ` +
    `(${s.similarity.toFixed(2)}% similar; ${bytesText(s)}), sent ${formatBytes(s.bytesSent)}${compressedText(s)}${zeroText(s)} in ${s.seconds.toFixed(2)} s (${rate}), ${verified}` +
    (s.bytesBeyondSource ? `; the device's last ${formatBytes(s.bytesBeyondSource)} (past the source's size) left as they were` : '')
  );
}

/** -z: what the bytes sent carried. */
export function compressedText(s: { bytesSent: number; bytesData: number }): string {
  if (!(s.bytesData > s.bytesSent) || s.bytesSent === 0) return '';
  return ` (${formatBytes(s.bytesData)} of data compressed ${(s.bytesData / s.bytesSent).toFixed(2)}:1)`;
}

/** Changed blocks that were all zeros travel as zero runs, not bytes: say how many, and how much became holes. */
function zeroText(s: SyncSummary): string {
  if (!s.blocksZero) return '';
  const holes = s.bytesHoles ? `, ${formatBytes(s.bytesHoles)} of it left as holes` : '';
  return ` + ${formatBytes(s.bytesZero)} of zeros as zero runs (${s.blocksZero} block(s)${holes})`;
}

/** The share of bytes that match, from the differing bytes refinement found (an estimate: the finest piece that differed counts whole). */
function bytesText(s: SyncSummary): string {
  return `about ${s.similarityBytes.toFixed(2)}% of bytes match, ${formatBytes(s.bytesDiffering)} differ`;
}
