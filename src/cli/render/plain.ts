import type { RunEvent } from '../../job/events.js';
import type { Renderer, TextSink } from './renderer.js';
import { itemText, totalsText } from './job-text.js';
import { summaryText } from './summary-text.js';

/**
 * Line-oriented output for pipelines and logs (nothing animated): phase changes at -v,
 * the summary at default verbosity, nothing at -q. The dry-run report goes to stdout:
 * it is the result the user asked for. Several files: each failure as it happens,
 * what was done to directories and links at -v (in a dry run on stdout), totals last.
 */
export function plainRenderer(verbosity: number, err: TextSink = process.stderr, out: TextSink = process.stdout): Renderer {
  const t0 = performance.now();
  const elapsed = () => ((performance.now() - t0) / 1000).toFixed(2);
  let dryRun = false;
  return {
    event(e: RunEvent) {
      if (e.type === 'phase' && verbosity >= 1) err.write(`pdiffcopy: [${elapsed()} s] ${e.phase}\n`);
      else if (e.type === 'start') {
        dryRun = e.mode === 'dry-run';
        if (verbosity >= 1) err.write(`pdiffcopy: ${e.source} -> ${e.target}: ${e.bytesTotal} bytes, ${e.blocksTotal} blocks of ${e.blockSize}, ${e.mode}, hash ${e.hashMethod}\n`);
      } else if (e.type === 'done') {
        dryRun = e.summary.dryRun;
        if (e.summary.dryRun) {
          if (verbosity >= -1) out.write(summaryText(e.summary) + '\n');
        } else if (verbosity >= 0) err.write(`pdiffcopy: ${summaryText(e.summary)}\n`);
      } else if (e.type === 'item') {
        if (e.action.startsWith('would-')) dryRun = true;
        if (dryRun && verbosity >= -1) out.write(itemText(e) + '\n');
        else if (verbosity >= 1 || (e.action === 'skipped' && verbosity >= 0)) err.write(`pdiffcopy: ${itemText(e)}\n`);
      } else if (e.type === 'file-failed') {
        err.write(`pdiffcopy: error: ${e.error.message}\n`);
        if (e.error.hint && verbosity >= 0) err.write(`pdiffcopy: hint: ${e.error.hint}\n`);
      } else if (e.type === 'job-done' && (verbosity >= 0 || e.totals.filesFailed > 0)) err.write(`pdiffcopy: ${totalsText(e.totals)}\n`);
    },
    log(level, line) {
      if (verbosity >= level) err.write(`pdiffcopy: ${line}\n`);
    },
    finish() {},
  };
}
