import type { JobEvent, JobTotals } from '../../job/events.js';
import { formatBytes } from '../size.js';
import { compressedText } from './summary-text.js';

type Item = Extract<JobEvent, { type: 'item' }>;

const ITEM_WORDS: Record<Item['action'], string> = {
  mkdir: 'created directory',
  symlink: 'symlink',
  uptodate: 'up to date',
  skipped: 'skipped',
  'would-create': 'would create',
  'would-update': 'would update',
  deleted: 'deleted',
  'would-delete': 'would delete',
};

/** One line for a directory, link or skipped entry: `created directory db2:/srv/x`. */
export function itemText(e: Item): string {
  return `${ITEM_WORDS[e.action]} ${e.path}${e.reason ? ` (${e.reason})` : ''}`;
}

/** The last line of a job of several files. */
export function totalsText(t: JobTotals): string {
  const parts = [
    `${t.files} file(s): ${t.filesSynced} synced, ${t.filesUpToDate} up to date`,
    ...(t.filesFailed > 0 ? [`${t.filesFailed} FAILED`] : []),
    ...(t.dirsCreated > 0 ? [`${t.dirsCreated} director${t.dirsCreated === 1 ? 'y' : 'ies'} created`] : []),
    ...(t.symlinksCreated > 0 ? [`${t.symlinksCreated} symlink(s)`] : []),
    ...(t.skipped > 0 ? [`${t.skipped} skipped`] : []),
    ...(t.deleted > 0 ? [`${t.deleted} deleted`] : []),
  ];
  return `${parts.join(', ')}; sent ${formatBytes(t.bytesSent)}${compressedText(t)} of ${formatBytes(t.bytesTotal)} in ${t.seconds.toFixed(2)} s`;
}
