import type { RunEvent } from '../../job/events.js';
import { plainRenderer } from './plain.js';
import { ProgressModel } from './progress-model.js';
import { progressText } from './progress-text.js';
import type { Renderer, TextSink } from './renderer.js';

/** How often a progress line is printed where there is no terminal to animate (CI logs, pipes). */
export const PROGRESS_LINE_INTERVAL_MS = 5000;

/**
 * `--progress` without a terminal: the plain renderer plus one progress line every
 * few seconds and one at each phase change, so a CI log shows that a long run moves.
 */
export function progressLinesRenderer(
  verbosity: number,
  err: TextSink = process.stderr,
  now: () => number = () => performance.now(),
  intervalMs = PROGRESS_LINE_INTERVAL_MS,
): Renderer {
  const plain = plainRenderer(verbosity, err);
  const model = new ProgressModel(now);
  let last = -Infinity;
  let started = false;
  const print = () => {
    last = now();
    err.write(`pdiffcopy: ${progressText(model.snapshot())}\n`);
  };
  return {
    event(e: RunEvent) {
      model.update(e);
      if (e.type === 'start') started = true;
      // Nothing to report before the sizes are known, nor after the summary line.
      if (!started) return plain.event(e);
      if (e.type === 'phase' && e.phase !== 'done') print();
      else if (e.type === 'progress' && now() - last >= intervalMs) print();
      plain.event(e);
    },
    log: (level, line) => plain.log(level, line),
    finish: () => plain.finish(),
  };
}
