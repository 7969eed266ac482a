import type { RunEvent } from '../../job/events.js';
import { ProgressModel } from './progress-model.js';
import type { Renderer, TextSink } from './renderer.js';

/** Progress objects are written at most this often (phase changes and the end always). */
export const JSON_PROGRESS_INTERVAL_MS = 1000;

/**
 * `--json-progress`: NDJSON on stderr, one object per line, for programs that drive
 * pdiffcopy: {"type":"phase"|"progress"|"done", ...snapshot}. It adds to the chosen
 * renderer (which still owns stdout and error output) rather than replacing it.
 */
export function jsonProgressRenderer<R extends Renderer>(
  inner: R,
  err: TextSink = process.stderr,
  now: () => number = () => performance.now(),
  intervalMs = JSON_PROGRESS_INTERVAL_MS,
): R {
  const model = new ProgressModel(now);
  let last = -Infinity;
  const write = (type: string, extra: object = {}) => {
    last = now();
    const s = model.snapshot();
    const round = (n: number) => Math.round(n * 1000) / 1000;
    err.write(
      JSON.stringify({ type, ...s, ...extra, elapsedS: round(s.elapsedS), rate: Math.round(s.rate), etaS: s.etaS === undefined ? null : round(s.etaS), fraction: round(s.fraction) }) +
        '\n',
    );
  };
  return {
    ...inner,
    event(e: RunEvent) {
      model.update(e);
      if (e.type === 'phase') write('phase');
      else if (e.type === 'progress' && now() - last >= intervalMs) write('progress');
      else if (e.type === 'done') write('done', { summary: e.summary });
      inner.event(e);
    },
  };
}
