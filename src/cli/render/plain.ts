import type { SyncEvent } from '../../engine/events.js';
import type { Renderer, TextSink } from './renderer.js';
import { summaryText } from './summary-text.js';

/**
 * Line-oriented output for pipelines and logs (nothing animated): phase changes at -v,
 * the summary at default verbosity, nothing at -q. The dry-run report goes to stdout:
 * it is the result the user asked for.
 */
export function plainRenderer(verbosity: number, err: TextSink = process.stderr, out: TextSink = process.stdout): Renderer {
  const t0 = performance.now();
  const elapsed = () => ((performance.now() - t0) / 1000).toFixed(2);
  return {
    event(e: SyncEvent) {
      if (e.type === 'phase' && verbosity >= 1) err.write(`pdiffcopy: [${elapsed()} s] ${e.phase}\n`);
      else if (e.type === 'start' && verbosity >= 1) {
        err.write(`pdiffcopy: ${e.source} -> ${e.target}: ${e.bytesTotal} bytes, ${e.blocksTotal} blocks of ${e.blockSize}, ${e.mode}, hash ${e.hashMethod}\n`);
      } else if (e.type === 'done') {
        if (e.summary.dryRun) {
          if (verbosity >= -1) out.write(summaryText(e.summary) + '\n');
        } else if (verbosity >= 0) err.write(`pdiffcopy: ${summaryText(e.summary)}\n`);
      }
    },
    log(level, line) {
      if (verbosity >= level) err.write(`pdiffcopy: ${line}\n`);
    },
    finish() {},
  };
}
