import type { SyncEvent, SyncSummary } from '../../engine/events.js';
import type { Renderer } from './renderer.js';

/** --json: exactly one JSON object on stdout at the end (the summary, or the error). */
export function jsonRenderer(verbosity: number, out = process.stdout, err = process.stderr): Renderer & {
  fail(code: string, message: string, hint: string | undefined, exitCode: number): void;
} {
  let summary: SyncSummary | undefined;
  let written = false;
  const write = (obj: unknown) => {
    if (written) return;
    written = true;
    out.write(JSON.stringify(obj) + '\n');
  };
  return {
    event(e: SyncEvent) {
      if (e.type === 'done') summary = e.summary;
    },
    log(level, line) {
      if (verbosity >= level) err.write(`pdiffcopy: ${line}\n`);
    },
    fail(code, message, hint, exitCode) {
      write({ ok: false, error: { code, message, ...(hint ? { hint } : {}) }, exitCode });
    },
    finish() {
      if (summary) write({ ok: true, ...summary });
    },
  };
}
