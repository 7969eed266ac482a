/**
 * Progress renderers over a fake clock: rate over a moving window, ETA, the periodic
 * lines for logs and the NDJSON stream. No test waits on real time.
 */
import type { RunEvent } from '../../src/job/events.js';
import { describe, expect, it } from 'vitest';
import type { SyncEvent, SyncSummary } from '../../src/engine/events.js';
import { jsonProgressRenderer } from '../../src/cli/render/json-progress.js';
import { formatDuration, ProgressModel } from '../../src/cli/render/progress-model.js';
import { progressLinesRenderer } from '../../src/cli/render/progress-lines.js';
import { progressText } from '../../src/cli/render/progress-text.js';
import type { Renderer } from '../../src/cli/render/renderer.js';

const MiB = 1 << 20;

function clock() {
  let t = 0;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

const start: SyncEvent = {
  type: 'start',
  source: 'a',
  target: 'b',
  bytesTotal: 100 * MiB,
  blocksTotal: 100,
  blockSize: MiB,
  targetSize: 100 * MiB,
  hashMethod: 'xxh64',
  mode: 'delta',
};
const progress = (hashed: number, sent: number, toSend = 0, zero = 0): SyncEvent => ({
  type: 'progress',
  bytesHashed: hashed,
  bytesToCompare: 100 * MiB,
  bytesSent: sent,
  bytesToSend: toSend,
  bytesZero: zero,
  blocksChanged: 0,
  bytesTotal: 100 * MiB,
});

function sink() {
  const lines: string[] = [];
  return { lines, write: (s: string) => lines.push(...s.split('\n').filter(Boolean)) };
}

describe('ProgressModel', () => {
  it('measures the rate over the recent window, not since the start', () => {
    const c = clock();
    const m = new ProgressModel(c.now, 5000);
    m.update(start);
    // 10 s at 1 MiB/s, then 10 s at 4 MiB/s.
    for (let s = 1; s <= 10; s++) {
      c.advance(1000);
      m.update(progress(s * MiB, 0));
    }
    expect(m.snapshot().rate).toBeCloseTo(MiB, -3);
    for (let s = 1; s <= 10; s++) {
      c.advance(1000);
      m.update(progress(10 * MiB + s * 4 * MiB, 0));
    }
    const snap = m.snapshot();
    expect(snap.rate).toBeCloseTo(4 * MiB, -3); // the average since the start would be 2.5 MiB/s
    expect(snap.done).toBe(50 * MiB);
    expect(snap.fraction).toBeCloseTo(0.5);
    expect(snap.etaS).toBeCloseTo(50 / 4, 1);
    expect(snap.elapsedS).toBe(20);
  });

  it('counts zero runs as done: a sparse copy ends at 100%, with the zeros named apart from the bytes sent', () => {
    const c = clock();
    const m = new ProgressModel(c.now, 5000);
    m.update(start);
    c.advance(1000);
    m.update(progress(100 * MiB, 10 * MiB, 60 * MiB, 50 * MiB));
    const snap = m.snapshot();
    expect(snap.done).toBe(160 * MiB);
    expect(snap.fraction).toBe(1);
    expect(snap.etaS).toBe(0);
    expect(progressText(snap)).toContain('sent 10.00 MiB + 50.00 MiB zero runs/60.00 MiB');
  });

  it('lets the rate decay while nothing moves, and has no ETA before any rate', () => {
    const c = clock();
    const m = new ProgressModel(c.now, 5000);
    m.update(start);
    expect(m.snapshot().etaS).toBeUndefined();
    c.advance(1000);
    m.update(progress(5 * MiB, 0));
    const moving = m.snapshot().rate;
    c.advance(9000); // a stall: no events
    expect(m.snapshot().rate).toBeLessThan(moving / 5);
  });

  it('counts bytes to send into the total as they are found', () => {
    const c = clock();
    const m = new ProgressModel(c.now);
    m.update(start);
    c.advance(1000);
    m.update(progress(100 * MiB, 10 * MiB, 20 * MiB));
    const s = m.snapshot();
    expect(s.total).toBe(120 * MiB);
    expect(s.done).toBe(110 * MiB);
  });

  it.each([
    [undefined, '--:--'],
    [Infinity, '--:--'],
    [0, '0:00'],
    [59.6, '1:00'],
    [75, '1:15'],
    [3725, '1:02:05'],
  ])('formatDuration(%s) = %s', (s, text) => {
    expect(formatDuration(s)).toBe(text);
  });
});

describe('progress lines for logs (--progress without a terminal)', () => {
  it('prints one line per interval and one per phase change, with rate, elapsed and ETA', () => {
    const c = clock();
    const err = sink();
    const r = progressLinesRenderer(0, err, c.now, 5000);
    r.event({ type: 'phase', phase: 'syncing' });
    r.event(start);
    for (let s = 1; s <= 12; s++) {
      c.advance(1000);
      r.event(progress(s * MiB, 0));
    }
    r.event({ type: 'phase', phase: 'verifying' });
    const progressLines = err.lines.filter((l) => /ETA/.test(l));
    // Nothing before the sizes are known; then lines at t=1 s, 6 s and 11 s, and at the next phase.
    expect(progressLines.map((l) => l.split(' ')[1])).toEqual(['syncing', 'syncing', 'syncing', 'verifying']);
    expect(progressLines[2]).toMatch(/^pdiffcopy: syncing 11\.0%, compared 11\.00 MiB\/100\.00 MiB, sent 0 B\/0 B, 1\.00 MiB\/s, elapsed 0:11, ETA 1:29$/);
    expect(err.lines.filter((l) => !/ETA/.test(l))).toEqual([]);
  });
});

describe('--json-progress', () => {
  it('writes NDJSON: phases, throttled progress, and the summary at the end; the inner renderer still gets everything', () => {
    const c = clock();
    const err = sink();
    const seen: RunEvent[] = [];
    const inner: Renderer & { fail(): string } = { event: (e) => seen.push(e), log: () => {}, finish: () => {}, fail: () => 'kept' };
    const r = jsonProgressRenderer(inner, err, c.now, 1000);
    r.event({ type: 'phase', phase: 'syncing' });
    r.event(start);
    for (let i = 1; i <= 10; i++) {
      c.advance(250);
      r.event(progress(i * MiB, 0));
    }
    const summary = { source: 'a', target: 'b', bytesSent: 0 } as unknown as SyncSummary;
    r.event({ type: 'done', summary });
    const objs = err.lines.map((l) => JSON.parse(l) as { type: string; done: number; summary?: unknown; etaS: number | null });
    expect(objs.map((o) => o.type)).toEqual(['phase', 'progress', 'progress', 'done']);
    expect(objs[1]!.done).toBe(4 * MiB);
    expect(objs[3]!.summary).toEqual(summary);
    expect(seen).toHaveLength(13);
    expect(r.fail()).toBe('kept');
  });
});

describe('a tree: files done of those found, and the bytes', () => {
  const summary = (bytesTotal: number) => ({ bytesTotal }) as SyncSummary;
  it('counts files found as directories are listed, and done as each ends (synced, up to date, failed); the fraction is the tree\'s', () => {
    const c = clock();
    const m = new ProgressModel(c.now);
    m.update({ type: 'phase', phase: 'syncing' });
    expect(m.snapshot().files).toBeUndefined(); // one file: no file counts
    m.update({ type: 'found', files: 3, bytes: 300 * MiB });
    m.update({ type: 'item', action: 'uptodate', path: 'up', size: 100 * MiB });
    m.update({ type: 'item', action: 'symlink', path: 'link' }); // not a file: not counted
    expect(m.snapshot().files).toEqual({ done: 1, found: 3, bytesDone: 100 * MiB, bytesFound: 300 * MiB, bytesSent: 0 });
    m.update(start);
    m.update(progress(50 * MiB, 0));
    expect(m.snapshot().fraction).toBeCloseTo(150 / 300);
    m.update({ type: 'done', summary: { ...summary(100 * MiB), bytesSent: 7 * MiB } });
    m.update({ type: 'found', files: 2, bytes: 100 * MiB });
    expect(m.snapshot()).toMatchObject({ files: { done: 2, found: 5, bytesDone: 200 * MiB, bytesFound: 400 * MiB, bytesSent: 7 * MiB }, fraction: 0.5 });
    m.update({ type: 'file-failed', source: 's', target: 't', error: { code: 'SOURCE_IO', message: 'x' } });
    expect(m.snapshot().files!.done).toBe(3);
  });

  it('the rate and ETA are the tree\'s: bytes of files done per second, across files', () => {
    const c = clock();
    const m = new ProgressModel(c.now);
    m.update({ type: 'found', files: 10, bytes: 10 * MiB });
    for (let i = 0; i < 4; i++) {
      c.advance(1000);
      m.update({ type: 'done', summary: summary(MiB) });
    }
    const s = m.snapshot();
    expect(s.rate).toBeCloseTo(MiB);
    expect(s.etaS).toBeCloseTo(6);
  });

  it('the progress line names the files and their bytes', () => {
    const c = clock();
    const out = sink();
    const r = progressLinesRenderer(0, out, c.now, 1000);
    r.event({ type: 'phase', phase: 'syncing' });
    r.event({ type: 'found', files: 2, bytes: 200 * MiB });
    r.event(start);
    c.advance(1500);
    r.event(progress(10 * MiB, 0));
    expect(out.lines.find((l) => l.includes('files '))).toMatch(/^pdiffcopy: syncing 5\.0%, files 0\/2 \(0 B\/200(\.00)? MiB\), compared 10(\.00)? MiB\/100(\.00)? MiB, sent 0 B,/);
  });
});
