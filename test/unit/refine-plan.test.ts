import { describe, expect, it } from 'vitest';
import {
  DEFAULT_REFINE_LEVELS,
  blocksWithDifferingPieces,
  piecesAlign,
  runDigests,
  windowRanges,
  coalesceRanges,
  mergeRanges,
  compareLevel,
  hashBatches,
  ioBatches,
  keepRefining,
  probePiece,
  refineFloor,
  refineLevels,
  requestBatches,
} from '../../src/engine/refine-plan.js';
import { MAX_HASH_PIECES_BYTES, MAX_PIECES } from '../../src/protocol/limits.js';
import { READ_CHUNK_BYTES } from '../../src/hash/file-hash.js';
import { MAX_READ_BYTES, maxHashBlocks, piecesBytes, piecesDigests } from '../../src/protocol/ops.js';

const K = 1024;
const M = K * K;

describe('refineLevels', () => {
  it.each<[number, number, readonly number[] | undefined, number[]]>([
    [M, 8, undefined, [16 * K, K, 64]],
    [16 * M, 8, undefined, [M, 16 * K, K, 64]],
    [64 * K, 8, undefined, [16 * K, K, 64]],
    [16 * K, 8, undefined, [K, 64]],
    [4 * K, 8, undefined, [K, 64]],
    [64, 8, undefined, []],
    [M, 32, undefined, [16 * K, K]], // sha256: 64 B is below its floor of 256
    [M, 64, undefined, [16 * K, K]],
    [K, 64, undefined, []],
    [M, 8, [64, 16 * K, K], [16 * K, K, 64]], // sorted, largest first
    [M, 8, [32, 16], []], // below the floor of 64
    [M, 8, [M, 2 * M], []], // none below the block size
    [M, 8, [K, K, 256], [K, 256]], // duplicates once
    [M, 8, [], []],
  ])('block %d, digest %d, levels %j -> %j', (bs, d, levels, want) => {
    expect(refineLevels(bs, d, levels)).toEqual(want);
  });

  it('the floor is eight digests: a piece hash costs at most an eighth of its bytes', () => {
    expect(refineFloor(8)).toBe(64);
    expect(refineFloor(32)).toBe(256);
  });

  it('the defaults are largest first', () => {
    expect([...DEFAULT_REFINE_LEVELS].sort((a, b) => b - a)).toEqual([...DEFAULT_REFINE_LEVELS]);
  });
});

describe('keepRefining', () => {
  it.each<[number, number, number, number | undefined, boolean]>([
    [100, 1000, 8, undefined, false], // no next level
    [1000, 1000, 8, 1024, false], // all of it differs: new data, send it
    [999, 1000, 8, 1024, true], // next digests cost <= 1/64: always
    [750, 1000, 8, 256, true], // dear next level: only while at most three quarters differ
    [751, 1000, 8, 256, false],
    [1, 1000, 8, 64, true],
    [800, 1000, 32, 1024, false], // sha256 at 1 KiB is dear
    [600, 1000, 32, 2048, true],
  ])('%d of %d bytes differ, digest %d, next %s -> %s', (diff, bytes, d, next, want) => {
    expect(keepRefining(diff, bytes, d, next)).toBe(want);
  });
});

describe('probePiece', () => {
  it.each<[number[], number, number[]]>([
    [[], 1024, []],
    [[4096, 65536, 100000, 10], 16 * 1024, [4096, 16384]],
    [[4096, 100, 100000, 10], 16 * 1024, [4096, 100]],
  ])('%j, %d bytes -> %j', (ranges, bytes, want) => {
    expect(probePiece(ranges, bytes)).toEqual(want);
  });
});

describe('coalesceRanges and mergeRanges', () => {
  it.each<[number[], number[]]>([
    [[], []],
    [[0, 10], [0, 10]],
    [[0, 10, 10, 5], [0, 15]],
    [[0, 10, 11, 5], [0, 10, 11, 5]],
    [[0, 1, 1, 1, 2, 1, 5, 1], [0, 3, 5, 1]],
  ])('%j -> %j', (given, want) => {
    expect(coalesceRanges(given)).toEqual(want);
  });

  it.each<[number[][], number[]]>([
    [[], []],
    [[[], []], []],
    [[[100, 5], [0, 10, 50, 1]], [0, 10, 50, 1, 100, 5]],
    [[[0, 10, 50, 1], [100, 5]], [0, 10, 50, 1, 100, 5]],
    [[[0, 1, 20, 1], [10, 1, 30, 1], [5, 1, 25, 1, 40, 1]], [0, 1, 5, 1, 10, 1, 20, 1, 25, 1, 30, 1, 40, 1]],
    [[[7, 3]], [7, 3]],
  ])('merges the sorted lists of each level %j -> %j', (lists, want) => {
    expect(mergeRanges(lists)).toEqual(want);
  });
});

/** Digests for pieces: equal (0) unless listed as differing. */
function digests(count: number, differing: number[], len = 8): [Buffer, Buffer] {
  const s = Buffer.alloc(count * len);
  const t = Buffer.alloc(count * len);
  for (const k of differing) t[k * len] = 1;
  return [s, t];
}

describe('compareLevel', () => {
  it.each<{ name: string; ranges: number[]; grain: number; count: number; diff: number[]; next: number | undefined; want: { next: number[]; send: number[]; digests: number } }>([
    {
      name: 'nothing differs',
      ranges: [0, 4096],
      grain: 1024,
      count: 4,
      diff: [],
      next: 256,
      want: { next: [], send: [], digests: 4 },
    },
    {
      name: 'one piece of four goes on to the next level',
      ranges: [0, 4096],
      grain: 1024,
      count: 4,
      diff: [2],
      next: 256,
      want: { next: [2048, 1024], send: [], digests: 4 },
    },
    {
      name: 'every piece differs: the range is sent',
      ranges: [0, 4096],
      grain: 1024,
      count: 4,
      diff: [0, 1, 2, 3],
      next: 256,
      want: { next: [], send: [0, 4096], digests: 4 },
    },
    {
      name: 'last level: differing pieces are sent, touching ones merged',
      ranges: [0, 4096],
      grain: 1024,
      count: 4,
      diff: [1, 2],
      next: undefined,
      want: { next: [], send: [1024, 2048], digests: 4 },
    },
    {
      name: 'a clipped last piece keeps its own length',
      ranges: [1000, 2500],
      grain: 1024,
      count: 3,
      diff: [2],
      next: 256,
      want: { next: [3048, 452], send: [], digests: 3 },
    },
    {
      name: 'per range: one range mostly differs (sent at a dear next level), the other goes on',
      ranges: [0, 2048, 8192, 1024],
      grain: 256,
      count: 12,
      diff: [0, 1, 2, 3, 4, 5, 6, 11],
      next: 64,
      want: { next: [8960, 256], send: [0, 1792], digests: 12 },
    },
  ])('$name', ({ ranges, grain, count, diff, next, want }) => {
    const [s, t] = digests(count, diff);
    expect(compareLevel(ranges, grain, s, t, 8, next)).toEqual(want);
  });

  it('a short digest list (a side that answered less) counts as differing, never as equal', () => {
    const s = Buffer.alloc(4 * 8);
    const t = Buffer.alloc(2 * 8);
    expect(compareLevel([0, 4096], 1024, s, t, 8, undefined).send).toEqual([2048, 2048]);
  });
});

describe('request batches stay within what the agent accepts', () => {
  it('hash batches: at most MAX_PIECES ranges, MAX_HASH_PIECES_BYTES bytes, one frame of digests', () => {
    const ranges: number[] = [];
    for (let i = 0; i < 3 * MAX_PIECES + 5; i++) ranges.push(i * 2048, 1024);
    const batches = hashBatches(ranges, 256, 8);
    expect(batches.flat()).toEqual(ranges);
    for (const b of batches) {
      expect(b.length / 2).toBeLessThanOrEqual(MAX_PIECES);
      expect(piecesBytes(b)).toBeLessThanOrEqual(MAX_HASH_PIECES_BYTES);
      expect(piecesDigests(b, 256)).toBeLessThanOrEqual(maxHashBlocks(8));
    }
    expect(batches.length).toBe(4);
  });

  it('a range longer than a request is cut at a multiple of the grain (the pieces stay the same)', () => {
    const batches = requestBatches([10, 1000], 300, 64);
    expect(batches).toEqual([[10, 256], [266, 256], [522, 256], [778, 232]]);
    const digestsBefore = piecesDigests([10, 1000], 64);
    expect(batches.reduce((n, b) => n + piecesDigests(b, 64), 0)).toBe(digestsBefore);
  });

  it('digest cap: a reply never holds more digests than a frame carries', () => {
    const batches = requestBatches([0, 100 * 64], Infinity, 64, 30);
    expect(batches.map((b) => piecesDigests(b, 64))).toEqual([30, 30, 30, 10]);
  });

  it('read/write batches: at most one read reply of bytes', () => {
    const ranges = [0, MAX_READ_BYTES, MAX_READ_BYTES + 10, 100];
    const batches = ioBatches(ranges);
    expect(batches).toEqual([[0, MAX_READ_BYTES], [MAX_READ_BYTES + 10, 100]]);
  });

  it('no pieces: no requests', () => {
    expect(hashBatches([], 64, 8)).toEqual([]);
    expect(ioBatches([])).toEqual([]);
  });
});

describe('chunks compared in pieces', () => {
  /** One-byte "digests": piece k of the chunk has digest k, except where `differ` lists k. */
  const digests = (n: number, differ: number[] = []) => Buffer.from(Array.from({ length: n }, (_, k) => (differ.includes(k) ? 200 : k)));

  it.each([
    ['a 16 MiB chunk: four windows', 0, 16 * M, 16 * K, [0, 4 * M, 4 * M, 4 * M, 8 * M, 4 * M, 12 * M, 4 * M]],
    ['a short last chunk', 32 * M, 5 * M + 7, 16 * K, [32 * M, 4 * M, 36 * M, M + 7]],
    ['a grain that does not divide the window: cut at its multiple', 0, 5 * M, 3000, [0, 4194000, 4194000, 5 * M - 4194000]],
    ['a grain above the window: one piece per range', 0, 10 * M, 8 * M, [0, 8 * M, 8 * M, 2 * M]],
    ['nothing', 7, 0, 16 * K, []],
  ])('windowRanges: %s', (_name, offset, length, grain, want) => {
    const got = windowRanges(offset, length, grain);
    expect(got).toEqual(want);
    for (let i = 1; i < got.length - 2; i += 2) expect(got[i]! % grain).toBe(0); // every range but the last is whole pieces
    for (let i = 1; i < got.length; i += 2) expect(got[i]!).toBeLessThanOrEqual(Math.max(grain, READ_CHUNK_BYTES));
  });

  it.each([
    [M, 16 * K, true],
    [M, 1000, false],
    [64 * K, 64 * K, true],
    [5000, 1000, true],
  ])('piecesAlign(%i, %i) = %s', (blockSize, grain, want) => {
    expect(piecesAlign(blockSize, grain)).toBe(want);
  });

  it.each([
    ['nothing differs', 4, 4 * 4, [], []],
    ['one piece of the second block', 4, 4 * 4, [5], [11]],
    ['first and last piece', 4, 4 * 4, [0, 15], [10, 13]],
    ['a short last block: its one piece', 4, 3 * 4 + 1, [12], [13]],
  ])('blocksWithDifferingPieces: %s', (_name, perBlock, pieces, differ, want) => {
    const grain = 16;
    const length = pieces === 13 ? 3 * perBlock * grain + 5 : pieces * grain;
    const count = Math.ceil(length / (perBlock * grain));
    expect(blocksWithDifferingPieces(10, count, length, perBlock * grain, grain, digests(pieces), digests(pieces, differ), 1)).toEqual(want);
  });

  it('blocksWithDifferingPieces: a digest missing on one side counts as differing', () => {
    expect(blocksWithDifferingPieces(0, 2, 8 * 16, 4 * 16, 16, digests(8), digests(6), 1)).toEqual([1]);
  });

  it('runDigests: the digests of a run inside its chunk', () => {
    const d = digests(16);
    expect([...runDigests(d, 100 * M, 100 * M + 64, 80, 16, 1)]).toEqual([4, 5, 6, 7, 8]);
    expect([...runDigests(d, 100 * M, 100 * M + 64, 70, 16, 1)]).toEqual([4, 5, 6, 7, 8]); // a short last piece
    expect([...runDigests(Buffer.alloc(32), 0, 16, 32, 16, 2)].length).toBe(4); // two digests of two bytes
  });
});
