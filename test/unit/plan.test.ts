import { describe, expect, it } from 'vitest';
import {
  HASH_CHUNK_BYTES,
  TRANSFER_RUN_BYTES,
  changedBlocks,
  coalesce,
  comparablePrefix,
  geometry,
  hashChunks,
  hashRequestBlocks,
  nextChunkMode,
  PROBE_EVERY_CHUNKS,
  RATE_WINDOW_CHUNKS,
  STREAM_FROM_DIFFERING,
  similarity,
  spaceNeeded,
  spanOf,
  transferRunBytes,
} from '../../src/engine/plan.js';
import { MAX_BLOCK_SIZE, MAX_HASH_BLOCKS, MAX_PAYLOAD_BYTES } from '../../src/protocol/limits.js';
import { MAX_READ_BYTES, maxHashBlocks } from '../../src/protocol/ops.js';

describe('geometry', () => {
  it.each([
    // size, blockSize, blocks
    [0, 4096, 0],
    [1, 4096, 1],
    [4095, 4096, 1],
    [4096, 4096, 1],
    [4097, 4096, 2],
    [10, 3, 4],
    [2 ** 40, 2 ** 20, 2 ** 20],
    [2 ** 40 + 1, 2 ** 20, 2 ** 20 + 1],
  ])('size %d, blockSize %d -> %d blocks', (size, blockSize, blocks) => {
    expect(geometry(size, blockSize)).toEqual({ size, blockSize, blocks });
  });

  it.each([0, -1, NaN])('rejects blockSize %d', (bs) => {
    expect(() => geometry(100, bs)).toThrow(RangeError);
  });
});

describe('spanOf', () => {
  const g = geometry(10, 4); // blocks [0,4) [4,8) [8,10)
  it.each([
    [0, 1, { first: 0, count: 1, offset: 0, length: 4 }],
    [1, 1, { first: 1, count: 1, offset: 4, length: 4 }],
    [2, 1, { first: 2, count: 1, offset: 8, length: 2 }], // short last block
    [0, 3, { first: 0, count: 3, offset: 0, length: 10 }],
    [1, 2, { first: 1, count: 2, offset: 4, length: 6 }],
    [3, 1, { first: 3, count: 1, offset: 12, length: 0 }], // past the end: empty, never negative
    [0, 0, { first: 0, count: 0, offset: 0, length: 0 }],
  ])('first %d count %d', (first, count, want) => {
    expect(spanOf(g, first, count)).toEqual(want);
  });

  it('handles offsets above 2^32 exactly', () => {
    const big = geometry(5 * 2 ** 32 + 123, 2 ** 20);
    const last = big.blocks - 1;
    const s = spanOf(big, last, 1);
    expect(s.offset).toBe(last * 2 ** 20);
    expect(s.offset + s.length).toBe(big.size);
    expect(s.length).toBe(123);
  });
});

/** Assert that runs tile [0, blocks) in order, each exactly once, and bytes [0, size). */
function expectTiling(g: ReturnType<typeof geometry>, runs: ReturnType<typeof hashChunks>): void {
  let nextBlock = 0;
  let nextByte = 0;
  for (const r of runs) {
    expect(r.first).toBe(nextBlock);
    expect(r.count).toBeGreaterThan(0);
    expect(r.offset).toBe(nextByte);
    expect(r).toEqual(spanOf(g, r.first, r.count));
    nextBlock += r.count;
    nextByte += r.length;
  }
  expect(nextBlock).toBe(g.blocks);
  expect(nextByte).toBe(g.size);
}

describe('hashChunks', () => {
  it.each([
    // size, blockSize, chunkBytes, expected chunk count
    [0, 4096, 16384, 0],
    [1, 4096, 16384, 1],
    [16384, 4096, 16384, 1],
    [16385, 4096, 16384, 2],
    [100, 7, 21, 5], // 15 blocks, 3 per chunk
    [100, 7, 22, 5], // floor(22/7) = 3 per chunk
    [100, 7, 1, 15], // chunk smaller than a block: one block per chunk
    [100, 100, 1000, 1],
    [3 * HASH_CHUNK_BYTES + 5, 1 << 20, HASH_CHUNK_BYTES, 4],
  ])('size %d bs %d chunk %d -> %d chunks covering every block once', (size, bs, chunk, n) => {
    const g = geometry(size, bs);
    const runs = hashChunks(g, 8, chunk);
    expect(runs).toHaveLength(n);
    expectTiling(g, runs);
    const per = Math.max(1, Math.floor(chunk / bs));
    for (const r of runs.slice(0, -1)) expect(r.count).toBe(per);
  });

  it('makes the last chunk short (fewer blocks, and a short last block)', () => {
    const g = geometry(10 * 4096 + 17, 4096); // 11 blocks
    const runs = hashChunks(g, 8, 4 * 4096);
    expect(runs.map((r) => r.count)).toEqual([4, 4, 3]);
    expect(runs.at(-1)).toEqual({ first: 8, count: 3, offset: 8 * 4096, length: 2 * 4096 + 17 });
  });

  it('uses HASH_CHUNK_BYTES by default', () => {
    const g = geometry(HASH_CHUNK_BYTES * 2, 4096);
    const runs = hashChunks(g, 8);
    expect(runs).toHaveLength(2);
    expect(runs[0]!.length).toBe(HASH_CHUNK_BYTES);
  });
});

describe('comparablePrefix', () => {
  const g = geometry(10, 4); // blocks of 4, 4, 2
  it.each([
    // first, count, targetSize, expected
    [0, 3, 10, 3], // equal sizes: all, including the short last block
    [0, 3, 100, 3], // target longer
    [0, 3, 0, 0], // empty target
    [0, 3, 3, 0], // target shorter than the first block
    [0, 3, 4, 1], // holds exactly the first block
    [0, 3, 7, 1],
    [0, 3, 8, 2],
    [0, 3, 9, 2], // partial last block missing one byte
    [1, 2, 8, 1], // starting mid-file
    [1, 2, 4, 0],
    [2, 1, 10, 1],
    [2, 1, 9, 0],
    [0, 0, 10, 0],
  ])('first %d count %d target %d -> %d', (first, count, targetSize, want) => {
    expect(comparablePrefix(g, first, count, targetSize)).toBe(want);
  });
});

describe('changedBlocks', () => {
  const d = (...digests: number[][]) => Uint8Array.from(digests.flat());
  const src = d([1, 1], [2, 2], [3, 3], [4, 4]);

  it.each<[string, number, Uint8Array | undefined, number[]]>([
    ['identical', 4, d([1, 1], [2, 2], [3, 3], [4, 4]), []],
    ['one differs', 4, d([1, 1], [9, 2], [3, 3], [4, 4]), [11]],
    ['last byte of a digest differs', 4, d([1, 1], [2, 2], [3, 3], [4, 9]), [13]],
    ['all differ', 4, d([0, 0], [0, 0], [0, 0], [0, 0]), [10, 11, 12, 13]],
    ['only 2 comparable', 2, d([1, 1], [2, 2], [3, 3], [4, 4]), [12, 13]],
    ['none comparable', 0, d([1, 1], [2, 2], [3, 3], [4, 4]), [10, 11, 12, 13]],
    ['no target digests', 4, undefined, [10, 11, 12, 13]],
    ['short target digest list', 2, d([1, 1], [7, 7]), [11, 12, 13]],
  ])('%s', (_name, comparable, target, want) => {
    expect(changedBlocks(10, 4, comparable, src, target, 2)).toEqual(want);
  });
});

describe('coalesce', () => {
  const g = geometry(100, 10); // 10 blocks of 10 bytes
  const run = (first: number, count: number) => spanOf(g, first, count);

  it.each<[string, number[], number, ReturnType<typeof spanOf>[]]>([
    ['empty', [], 1000, []],
    ['one block', [3], 1000, [run(3, 1)]],
    ['one run', [2, 3, 4], 1000, [run(2, 3)]],
    ['non-consecutive', [1, 3, 5], 1000, [run(1, 1), run(3, 1), run(5, 1)]],
    ['two runs', [0, 1, 2, 5, 6], 1000, [run(0, 3), run(5, 2)]],
    ['split at maxBytes', [0, 1, 2, 3, 4, 5, 6], 30, [run(0, 3), run(3, 3), run(6, 1)]],
    ['maxBytes not a multiple of the block', [0, 1, 2, 3], 25, [run(0, 2), run(2, 2)]],
    ['maxBytes below one block still moves one block', [0, 1], 5, [run(0, 1), run(1, 1)]],
    ['whole file', [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 1000, [run(0, 10)]],
    ['duplicate index starts a new run', [1, 1], 1000, [run(1, 1), run(1, 1)]],
  ])('%s', (_name, blocks, maxBytes, want) => {
    expect(coalesce(blocks, g, maxBytes)).toEqual(want);
  });

  it('clips the short last block', () => {
    const g2 = geometry(95, 10);
    expect(coalesce([8, 9], g2, 1000)).toEqual([{ first: 8, count: 2, offset: 80, length: 15 }]);
  });

  it('defaults to TRANSFER_RUN_BYTES and never exceeds it', () => {
    const g3 = geometry(64 << 20, 1 << 20);
    const all = Array.from({ length: g3.blocks }, (_, i) => i);
    const runs = coalesce(all, g3);
    expect(runs).toHaveLength((64 << 20) / TRANSFER_RUN_BYTES);
    for (const r of runs) expect(r.length).toBeLessThanOrEqual(TRANSFER_RUN_BYTES);
    expectTiling(g3, runs);
  });
});

describe('similarity', () => {
  it.each([
    [0, 0, 100],
    [0, 10, 100],
    [10, 10, 0],
    [5, 10, 50],
    [1, 3, 66.67],
    [2, 3, 33.33],
    [1, 10000, 99.99],
    [1, 1_000_000, 100], // rounds to two decimals
  ])('%d changed of %d -> %d', (changed, total, want) => {
    expect(similarity(changed, total)).toBe(want);
  });
});

describe('hashRequestBlocks', () => {
  const MiB = 1 << 20;
  it.each([
    // blockSize, digestLength, blocks per request, why
    [MiB, 8, 16, 'HASH_CHUNK_BYTES of 1 MiB blocks'],
    [4096, 8, 4096, 'HASH_CHUNK_BYTES of 4 KiB blocks'],
    [64 * MiB, 8, 1, 'a block bigger than a chunk: one block'],
    [16 * MiB + 1, 64, 1, 'just above a chunk: one block'],
    [8, 8, MAX_HASH_BLOCKS, '-b 8: 2 Mi blocks in a chunk, capped by the agent'],
    [1, 8, MAX_HASH_BLOCKS, '-b 1'],
    [1, 64, MAX_HASH_BLOCKS, '-b 1 with a 64-byte digest: 64 MiB reply, fits'],
    [1, 128, MAX_PAYLOAD_BYTES / 128, 'a 128-byte digest: capped by the frame'],
    [16, 8, MiB, 'exactly the cap'],
  ])('block %d, digest %d -> %d (%s)', (blockSize, digestLength, want) => {
    expect(hashRequestBlocks(blockSize, digestLength)).toBe(want);
    expect(hashRequestBlocks(blockSize, digestLength)).toBeLessThanOrEqual(maxHashBlocks(digestLength));
  });

  it('cuts a 12 MiB file in 8-byte blocks into requests the agent accepts (was one request of 1.5 Mi blocks)', () => {
    const g = geometry(12 * MiB, 8);
    const runs = hashChunks(g, 8);
    expect(runs.map((r) => r.count)).toEqual([MAX_HASH_BLOCKS, g.blocks - MAX_HASH_BLOCKS]);
    expectTiling(g, runs);
  });
});

describe('transferRunBytes', () => {
  it.each([
    [1, TRANSFER_RUN_BYTES],
    [4096, TRANSFER_RUN_BYTES],
    [TRANSFER_RUN_BYTES + 1, TRANSFER_RUN_BYTES + 1],
    [MAX_BLOCK_SIZE, MAX_BLOCK_SIZE],
  ])('block %d -> runs of up to %d bytes, never above one read', (blockSize, want) => {
    expect(transferRunBytes(blockSize)).toBe(want);
    expect(transferRunBytes(blockSize)).toBeLessThanOrEqual(MAX_READ_BYTES);
  });
});

describe('spaceNeeded', () => {
  it.each([
    // name, sourceSize, targetSize, atomic, dryRun, bytes
    ['in place, new target: the whole file', 100, 0, false, false, 100],
    ['in place, growing target: the growth', 100, 60, false, false, 40],
    ['in place, same size: nothing', 100, 100, false, false, 0],
    ['in place, shrinking target: nothing', 100, 500, false, false, 0],
    ['atomic, existing target: a whole second copy', 100, 100, true, false, 100],
    ['atomic, bigger old target: still the new file', 100, 500, true, false, 100],
    ['atomic, new target', 100, 0, true, false, 100],
    ['dry run: nothing', 100, 0, false, true, 0],
    ['dry run, atomic: nothing', 100, 0, true, true, 0],
    ['empty source', 0, 0, false, false, 0],
  ])('%s', (_name, sourceSize, targetSize, atomic, dryRun, want) => {
    expect(spaceNeeded({ sourceSize, targetSize, atomic, dryRun })).toBe(want);
  });
});

describe('nextChunkMode', () => {
  const c = (compared: number, differing: number) => ({ compared, differing });
  it.each([
    ['nothing learnt yet', [], 0, 'compare'],
    ['only chunks with nothing comparable', [c(0, 0)], 0, 'compare'],
    ['no change', [c(16, 0), c(16, 0)], 0, 'compare'],
    ['half changed', [c(16, 8), c(16, 8)], 0, 'compare'],
    ['just under the threshold', [c(100, 74)], 0, 'compare'],
    ['at the threshold', [c(100, 75)], 0, 'stream'],
    ['all changed', [c(16, 16)], 0, 'stream'],
    ['all changed, streaming for a while', [c(16, 16)], PROBE_EVERY_CHUNKS - 2, 'stream'],
    ['all changed, probe due', [c(16, 16)], PROBE_EVERY_CHUNKS - 1, 'compare'],
    ['old chunks changed, the recent window did not', [c(16, 16), c(16, 16), c(16, 0), c(16, 0), c(16, 0), c(16, 0)], 0, 'compare'],
    ['old chunks unchanged, the recent window changed', [c(16, 0), c(16, 0), c(16, 16), c(16, 16), c(16, 16), c(16, 16)], 0, 'stream'],
    ['weighted by blocks compared', [c(1, 0), c(99, 99)], 0, 'stream'],
  ] as const)('%s', (_name, history, sinceCompared, want) => {
    expect(nextChunkMode(history, sinceCompared)).toBe(want);
  });

  it.each([
    ['most differ, refinement off', 'off', 'stream'],
    ['most differ, new data', 'whole', 'stream'],
    ['most differ, refinement still judging', 'judging', 'compare'],
    ['most differ, edits inside the blocks', 'edits', 'pieces'],
  ] as const)('%s', (_name, refinement, want) => {
    expect(nextChunkMode([c(16, 16)], 0, refinement)).toBe(want);
  });

  it.each(['off', 'judging', 'whole', 'edits'] as const)('few differ: compare whatever refinement learnt (%s)', (refinement) => {
    expect(nextChunkMode([c(16, 2)], 0, refinement)).toBe('compare');
  });

  it('judges only the last RATE_WINDOW_CHUNKS chunks', () => {
    const history = [...Array(10).fill(c(16, 0)), ...Array(RATE_WINDOW_CHUNKS).fill(c(16, 16))];
    expect(nextChunkMode(history, 0)).toBe('stream');
    expect(nextChunkMode(history.slice(0, -2), 0)).toBe('compare'); // two unchanged chunks back in the window
  });

  it('streams from a share of differing blocks above one half and at most one', () => {
    expect(STREAM_FROM_DIFFERING).toBeGreaterThan(0.5);
    expect(STREAM_FROM_DIFFERING).toBeLessThanOrEqual(1);
  });
});
