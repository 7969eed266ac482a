/** How renderers show a job: --json's one object (today's shape for one file, files+totals for several), plain lines. */
import { describe, expect, it } from 'vitest';
import type { SyncSummary } from '../../src/engine/events.js';
import type { JobTotals } from '../../src/job/events.js';
import { jsonRenderer } from '../../src/cli/render/json.js';
import { plainRenderer } from '../../src/cli/render/plain.js';

const sink = () => {
  let text = '';
  return { write: (t: string) => void (text += t), get text() { return text; } };
};

const summary = (target: string): SyncSummary => ({
  source: 'a', target, dryRun: false, wholeFile: false, hashMethod: 'xxh64', blockSize: 1024, bytesTotal: 10, bytesSent: 10, bytesData: 10,
  blocksTotal: 1, blocksChanged: 1, similarity: 0, bytesDiffering: 10, similarityBytes: 0, bytesRefineHashes: 0, seconds: 0.1, throughput: 100, verified: 'blocks', targetCreated: true,
  blocksZero: 0, bytesZero: 0, bytesHoles: 0, targetDevice: false, bytesBeyondSource: 0,
});
const totals = (failed: number): JobTotals => ({
  files: 2, filesSynced: 2 - failed, filesUpToDate: 0, filesFailed: failed, dirsCreated: 1, symlinksCreated: 0, skipped: 0, deleted: 0,
  bytesTotal: 10, bytesSent: 10, bytesData: 10, seconds: 0.2,
});
const failure = { source: 'b', target: 'd/b', error: { code: 'SOURCE_PERMISSION', message: 'source b: permission denied', hint: 'make it readable' } };

describe('--json', () => {
  it('one file: the summary object, as before jobs', () => {
    const out = sink();
    const r = jsonRenderer(0, out, sink());
    r.event({ type: 'done', summary: summary('d/a') });
    r.finish();
    expect(JSON.parse(out.text)).toEqual({ ok: true, ...summary('d/a') });
  });

  it('several files: {ok, files, totals}; ok is false when one failed', () => {
    const out = sink();
    const r = jsonRenderer(0, out, sink());
    r.event({ type: 'done', summary: summary('d/a') });
    r.event({ type: 'file-failed', ...failure });
    r.event({ type: 'job-done', totals: totals(1) });
    r.finish();
    expect(JSON.parse(out.text)).toEqual({ ok: false, files: [{ ok: true, ...summary('d/a') }, { ok: false, ...failure }], totals: totals(1) });
    expect(out.text.trim().split('\n')).toHaveLength(1);
  });
});

describe('plain', () => {
  it('each failure as an error line with its hint, the totals last; items at -v only', () => {
    const err = sink();
    const r = plainRenderer(0, err, sink());
    r.event({ type: 'item', action: 'mkdir', path: 'd/x/' });
    r.event({ type: 'file-failed', ...failure });
    r.event({ type: 'job-done', totals: totals(1) });
    expect(err.text).toBe(
      'pdiffcopy: error: source b: permission denied\npdiffcopy: hint: make it readable\n' +
        'pdiffcopy: 2 file(s): 1 synced, 0 up to date, 1 FAILED, 1 directory created; sent 10 B of 10 B in 0.20 s\n',
    );
  });

  it('-q still reports failures and the totals that count them', () => {
    const err = sink();
    const r = plainRenderer(-1, err, sink());
    r.event({ type: 'file-failed', ...failure });
    r.event({ type: 'job-done', totals: totals(1) });
    expect(err.text).toMatch(/^pdiffcopy: error: source b: permission denied\npdiffcopy: 2 file\(s\).*1 FAILED/);
  });
});
