import { describe, expect, it } from 'vitest';
import { holeBlocks, runPieces, zeroUnit } from '../../src/engine/plan.js';
import { dataOutside, findZeroRuns, flattenRuns, isAllZero, unflattenRuns, zeroBuffers } from '../../src/fileops/zero-runs.js';
import { MAX_ZERO_RUNS } from '../../src/protocol/limits.js';

/** A buffer from a pattern: '0' is a unit of zeros, 'x' a unit of data (0xab bytes, the last one non-zero). */
function pattern(p: string, unit: number, lastUnit = unit): Buffer {
  const parts = [...p].map((c, i) => {
    const len = i === p.length - 1 ? lastUnit : unit;
    const b = Buffer.alloc(len);
    if (c === 'x') b[len - 1] = 0xab;
    return b;
  });
  return Buffer.concat(parts);
}

describe('zero runs', () => {
  it.each([
    ['', []],
    ['x', []],
    ['0', [[0, 4]]],
    ['00x0', [[0, 8], [12, 4]]],
    ['x00x', [[4, 8]]],
    ['0x0x0', [[0, 4], [8, 4], [16, 4]]],
  ])('%j', (p, runs) => {
    const buf = pattern(p, 4);
    const found = findZeroRuns(buf, 4);
    expect(found.map((r) => [r.offset, r.length])).toEqual(runs);
    // The data left out of the runs plus the runs are the buffer again.
    const data = Buffer.concat(dataOutside(buf, found));
    expect(data.length + found.reduce((n, r) => n + r.length, 0)).toBe(buf.length);
    expect(data.every((b, i) => b !== 0 || (i + 1) % 4 !== 0)).toBe(true);
  });

  it('a short last unit counts when it is all zeros', () => {
    expect(findZeroRuns(pattern('x0', 4, 3), 4)).toEqual([{ offset: 4, length: 3 }]);
  });

  it('a non-zero byte anywhere in a unit (also past the first MiB of a big unit) makes it data', () => {
    const big = Buffer.alloc(3 * 1024 * 1024);
    expect(isAllZero(big)).toBe(true);
    big[big.length - 1] = 1;
    expect(isAllZero(big)).toBe(false);
    expect(findZeroRuns(big, big.length)).toEqual([]);
  });

  it(`reports at most ${MAX_ZERO_RUNS} runs; later zeros travel as data`, () => {
    const buf = pattern('0x'.repeat(MAX_ZERO_RUNS + 5), 2);
    const runs = findZeroRuns(buf, 2);
    expect(runs.length).toBe(MAX_ZERO_RUNS);
    expect(Buffer.concat(dataOutside(buf, runs)).length).toBe(buf.length - 2 * MAX_ZERO_RUNS);
  });

  it('wire form round-trips; zero buffers cover the length asked', () => {
    const runs = [{ offset: 0, length: 8 }, { offset: 12, length: 4 }];
    expect(unflattenRuns(flattenRuns(runs))).toEqual(runs);
    const z = zeroBuffers(2.5 * 1024 * 1024);
    expect(z.reduce((n, b) => n + b.length, 0)).toBe(2.5 * 1024 * 1024);
    expect(z.every((b) => isAllZero(b))).toBe(true);
  });
});

describe('runPieces', () => {
  const z = (offset: number, length: number) => ({ offset, length });
  it.each([
    ['no zeros', 100, 40, [], 0, [{ kind: 'data', offset: 100, length: 40, at: 0 }]],
    ['all zeros, new target', 100, 40, [z(0, 40)], 0, [{ kind: 'hole', offset: 100, length: 40 }]],
    ['all zeros, inside the old extent', 100, 40, [z(0, 40)], 1000, [{ kind: 'zero', offset: 100, length: 40 }]],
    ['a device: never holes', 100, 40, [z(0, 40)], Infinity, [{ kind: 'zero', offset: 100, length: 40 }]],
    [
      'zeros straddling the old end',
      100,
      40,
      [z(10, 20)],
      120,
      [
        { kind: 'data', offset: 100, length: 10, at: 0 },
        { kind: 'zero', offset: 110, length: 10 },
        { kind: 'hole', offset: 120, length: 10 },
        { kind: 'data', offset: 130, length: 10, at: 10 },
      ],
    ],
    [
      'data between two zero runs',
      0,
      30,
      [z(0, 10), z(20, 10)],
      0,
      [
        { kind: 'hole', offset: 0, length: 10 },
        { kind: 'data', offset: 10, length: 10, at: 0 },
        { kind: 'hole', offset: 20, length: 10 },
      ],
    ],
  ])('%s', (_name, offset, length, zeros, holesFrom, pieces) => {
    expect(runPieces(offset as number, length as number, zeros as never, holesFrom as number)).toEqual(pieces);
  });
});

describe('zeroUnit', () => {
  it.each([
    [1, 4096],
    [7, 4102],
    [512, 4096],
    [4096, 4096],
    [5000, 5000],
    [1 << 20, 1 << 20],
  ])('block size %d -> %d (whole blocks, a page at least)', (bs, unit) => {
    expect(zeroUnit(bs)).toBe(unit);
    expect(zeroUnit(bs) % bs).toBe(0);
  });
});

describe('holeBlocks', () => {
  const hole = (offset: number, length: number) => ({ kind: 'hole' as const, offset, length });
  const g = (size: number) => ({ size, blockSize: 10, blocks: Math.ceil(size / 10) });
  it.each([
    ['no holes', [{ kind: 'data' as const, offset: 0, length: 30, at: 0 }], 30, []],
    ['zeros written are not holes', [{ kind: 'zero' as const, offset: 0, length: 30 }], 30, []],
    ['whole blocks', [hole(10, 20)], 40, [1, 2]],
    ['a partly covered block is not a hole block', [hole(5, 20)], 40, [1]],
    ['the short last block ends at the file end', [hole(20, 5)], 25, [2]],
    ['a hole ending mid-file in a short piece', [hole(20, 5)], 40, []],
    ['two pieces', [hole(0, 10), hole(30, 10)], 40, [0, 3]],
  ])('%s', (_label, pieces, size, blocks) => {
    expect(holeBlocks(pieces, g(size))).toEqual(blocks);
  });
});
