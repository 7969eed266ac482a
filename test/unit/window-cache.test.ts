import { describe, expect, it } from 'vitest';
import { type Window, WindowCache } from '../../src/fileops/window-cache.js';
import { REFINE_RUNS_IN_FLIGHT, windowsPerAgent } from '../../src/protocol/limits.js';

const win = (start: number, asked: number, length = asked): Window => ({ start, asked, length, buf: Buffer.alloc(1, start & 0xff) });

describe('WindowCache', () => {
  // [windows kept, offset, length, start of the window found (undefined: none)]
  const finds: Array<[Array<[number, number]>, number, number, number | undefined]> = [
    [[[0, 100]], 0, 100, 0],
    [[[0, 100]], 10, 20, 0],
    [[[0, 100]], 90, 10, 0],
    [[[0, 100]], 90, 11, undefined], // reaches past what was read
    [[[100, 100]], 99, 1, undefined], // starts before
    [[[0, 100], [50, 100]], 120, 10, 50],
    [[[0, 100], [50, 100]], 60, 10, 50], // both hold it: the most recent answers
    [[], 0, 1, undefined],
  ];
  it.each(finds)('kept %j: find(%i, %i) -> window at %s', (kept, off, len, start) => {
    const c = new WindowCache(8);
    for (const [s, a] of kept) c.keep(win(s, a));
    expect(c.find(off, len)?.start).toBe(start);
  });

  it('answers for the range it asked, even where the file ended sooner', () => {
    const c = new WindowCache(2);
    c.keep(win(0, 100, 40));
    const w = c.find(30, 50)!;
    expect(w.length).toBe(40);
  });

  it('keeps at most its capacity, displacing the least recently used', () => {
    const c = new WindowCache(2);
    const a = win(0, 10);
    const b = win(10, 10);
    expect(c.keep(a)).toEqual([]);
    expect(c.keep(b)).toEqual([]);
    expect(c.find(0, 5)).toBe(a); // a is now the most recent
    const out = c.keep(win(20, 10));
    expect(out).toEqual([b.buf]);
    expect(c.find(10, 1)).toBeUndefined();
    expect(c.find(0, 1)).toBe(a);
  });

  // [windows kept, invalidate offset, length, starts left]
  const drops: Array<[Array<[number, number]>, number, number, number[]]> = [
    [[[0, 100], [100, 100], [200, 100]], 150, 10, [0, 200]],
    [[[0, 100], [100, 100]], 99, 2, []],
    [[[0, 100], [100, 100]], 100, 0, [0, 100]], // nothing written
    [[[0, 100], [100, 100]], 0, Infinity, []],
    [[[0, 100]], 100, 10, [0]], // just past its end
    [[[0, 100]], 90, 1, []],
  ];
  it.each(drops)('kept %j: invalidate(%i, %i) leaves %j', (kept, off, len, left) => {
    const c = new WindowCache(8);
    for (const [s, a] of kept) c.keep(win(s, a));
    const freed = c.invalidate(off, len);
    expect(freed.length).toBe(kept.length - left.length);
    expect(kept.map(([s]) => s).filter((s) => c.find(s, 1) !== undefined)).toEqual(left);
  });

  it('clear hands back every buffer', () => {
    const c = new WindowCache(4);
    c.keep(win(0, 10));
    c.keep(win(10, 10));
    expect(c.clear().length).toBe(2);
    expect(c.find(0, 1)).toBeUndefined();
  });
});

describe('windowsPerAgent', () => {
  // [agents serving the file, windows each keeps]: together at least the runs in flight, plus one spare each.
  const table: Array<[number, number]> = [
    [1, REFINE_RUNS_IN_FLIGHT],
    [2, REFINE_RUNS_IN_FLIGHT / 2 + 1],
    [4, REFINE_RUNS_IN_FLIGHT / 4 + 1],
    [3, Math.ceil(REFINE_RUNS_IN_FLIGHT / 3) + 1],
    [64, 2],
    [0, REFINE_RUNS_IN_FLIGHT],
  ];
  it.each(table)('%i agent(s): %i windows each', (agents, windows) => {
    expect(windowsPerAgent(agents)).toBe(windows);
    expect(windowsPerAgent(agents) * Math.max(1, agents)).toBeGreaterThanOrEqual(REFINE_RUNS_IN_FLIGHT);
  });
});
