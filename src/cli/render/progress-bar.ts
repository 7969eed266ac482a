import cliProgress from 'cli-progress';
import type { RunEvent } from '../../job/events.js';
import { plainRenderer } from './plain.js';
import { ProgressModel } from './progress-model.js';
import { progressText } from './progress-text.js';
import type { Renderer } from './renderer.js';

/** The bar counts in thousandths of the work, so a total that grows (bytes to send) never moves it backwards. */
const BAR_STEPS = 1000;

/**
 * A live bar on stderr (only used when stderr is a TTY): phase, percentage, bytes
 * compared and sent, the recent rate, elapsed time and ETA. Log lines (-v) print
 * above the bar, which stays on screen; everything else is the plain renderer's.
 */
export function progressBarRenderer(verbosity: number, now: () => number = () => performance.now()): Renderer {
  // Lines print above the bar while it is on screen.
  const plain = plainRenderer(verbosity, { write: (text: string) => (bar ? bars.log(text) : process.stderr.write(text)) });
  const model = new ProgressModel(now);
  /** Several files or a tree: one bar for the whole job (files done/found and bytes), not one per file. */
  let job = false;
  // A MultiBar with one bar: it can print log lines above the bar without breaking it.
  const bars = new cliProgress.MultiBar(
    { stream: process.stderr, format: '|{bar}| {text}', hideCursor: true, clearOnComplete: true, fps: 5 },
    cliProgress.Presets.shades_classic,
  );
  let bar: cliProgress.SingleBar | undefined;
  const redraw = () => {
    const s = model.snapshot();
    bar?.update(Math.round(s.fraction * BAR_STEPS), { text: progressText(s) });
  };
  const stop = () => {
    if (bar) bars.stop();
    bar = undefined;
  };
  return {
    event(e: RunEvent) {
      model.update(e);
      if (e.type === 'found') job = true;
      if ((e.type === 'start' || e.type === 'found') && !bar) bar = bars.create(BAR_STEPS, 0, { text: progressText(model.snapshot()) });
      else if (job && e.type !== 'job-done') {
        plain.event(e);
        redraw();
      } else if (e.type === 'done' || e.type === 'item' || e.type === 'file-failed' || e.type === 'job-done') {
        // Each file of a job gets its own bar; the job's lines print between them.
        stop();
        plain.event(e);
      } else redraw();
    },
    log(level, line) {
      if (verbosity < level) return;
      if (bar) bars.log(`pdiffcopy: ${line}\n`);
      else plain.log(level, line);
    },
    finish: stop,
  };
}
