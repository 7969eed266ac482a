import type { SyncSummary } from '../../engine/events.js';
import type { FileResult, JobTotals, RunEvent, StartupSeconds } from '../../job/events.js';
import type { Renderer, TextSink } from './renderer.js';

/**
 * --json: exactly one JSON object on stdout at the end. One file: its summary (or
 * the error). Several files or a tree: {ok, files:[...], totals:{...}}, every file's
 * summary or failure in `files`, `ok` false when any failed.
 */
export function jsonRenderer(verbosity: number, out: TextSink = process.stdout, err: TextSink = process.stderr): Renderer & {
  fail(code: string, message: string, hint: string | undefined, exitCode: number): void;
} {
  let summary: SyncSummary | undefined;
  let totals: JobTotals | undefined;
  let startup: StartupSeconds | undefined;
  const files: FileResult[] = [];
  let written = false;
  const write = (obj: unknown) => {
    if (written) return;
    written = true;
    out.write(JSON.stringify(obj) + '\n');
  };
  return {
    event(e: RunEvent) {
      if (e.type === 'done') {
        summary = e.summary;
        files.push({ ok: true, ...e.summary });
      } else if (e.type === 'file-failed') {
        const { type: _, ...failure } = e;
        files.push({ ok: false, ...failure });
      } else if (e.type === 'job-done') totals = e.totals;
      else if (e.type === 'startup') startup = e.seconds;
    },
    log(level, line) {
      if (verbosity >= level) err.write(`pdiffcopy: ${line}\n`);
    },
    fail(code, message, hint, exitCode) {
      write({ ok: false, error: { code, message, ...(hint ? { hint } : {}) }, exitCode, ...(totals || files.length > 1 ? { files } : {}) });
    },
    finish() {
      const extra = startup ? { startup } : {};
      if (totals) write({ ok: totals.filesFailed === 0, files, totals, ...extra });
      else if (summary) write({ ok: true, ...summary, ...extra });
    },
  };
}
