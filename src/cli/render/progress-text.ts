import { formatBytes } from '../size.js';
import { formatDuration, type ProgressSnapshot } from './progress-model.js';

/** One line of progress, shared by the bar's label and the periodic lines for logs. */
export function progressText(s: ProgressSnapshot): string {
  const pct = `${(s.fraction * 100).toFixed(1)}%`;
  const parts = [`${s.phase}`, pct];
  if (s.files) parts.push(`files ${s.files.done}/${s.files.found} (${formatBytes(s.files.bytesDone)}/${formatBytes(s.files.bytesFound)})`);
  if (s.bytesToCompare > 0) parts.push(`compared ${formatBytes(s.bytesHashed)}/${formatBytes(s.bytesToCompare)}`);
  const zeros = s.bytesZero > 0 ? ` + ${formatBytes(s.bytesZero)} zero runs` : '';
  // A tree: what all its files sent so far (the current file's share included).
  if (s.files) parts.push(`sent ${formatBytes(s.files.bytesSent + s.bytesSent)}`);
  else parts.push(`sent ${formatBytes(s.bytesSent)}${zeros}/${formatBytes(s.bytesToSend)}`);
  parts.push(`${formatBytes(Math.round(s.rate))}/s`);
  parts.push(`elapsed ${formatDuration(s.elapsedS)}`);
  parts.push(`ETA ${formatDuration(s.etaS)}`);
  return parts.join(', ').replace(', ', ' ');
}
