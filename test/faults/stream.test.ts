/**
 * Streaming: once most compared blocks differ, chunks are sent without hashing the
 * target, hashed as sent, and every written block is still verified. Engine level,
 * real files on two LocalHosts; a wrapper logs which target blocks were hashed before
 * the verification phase (the comparing), and can make the target "disk" store wrong
 * bytes. The file spans 10 hash chunks of 16 MiB.
 */
import { closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncFile, type SyncOptions } from '../../src/engine/sync.js';
import type { SyncSummary } from '../../src/engine/events.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { HASH_CHUNK_BYTES, TRANSFER_RUN_BYTES } from '../../src/engine/plan.js';
import { expectSameBytes, mutateBlocks, tempDir, writeSeededFile } from '../support/files.js';
import { hostWith, plainSync, recordingWrites } from '../support/hosts.js';

const BS = 1024 * 1024;
const SIZE = 10 * HASH_CHUNK_BYTES + 12345;
const BLOCKS = Math.ceil(SIZE / BS);

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-stream-')));
afterAll(() => cleanup?.());

interface Outcome {
  summary?: SyncSummary;
  error?: unknown;
  /** Target blocks hashed for comparing (not the read-back of blocks already written). */
  compared: number;
  /** What the target was asked, in order: 'w' a write answered, 'r' a read-back asked for, 'f' the fsync. */
  order: string[];
  /** Target blocks read back. */
  readBack: number;
}

/**
 * hashDelayMs: each hash of the source answers that much later. Whether a chunk streams
 * depends on what is known when it is reached, and chunks are reached as the source's
 * hashing goes on: the delay makes the order fixed (comparisons and refinement rounds
 * answered before the later chunks are reached) instead of depending on the machine's load.
 */
async function run(
  src: string,
  dst: string,
  opts: Partial<SyncOptions> & { corruptFrom?: number; corruptPieces?: boolean; corruptReadAt?: number; hashDelayMs?: number; targetHashDelayMs?: number } = {},
): Promise<Outcome> {
  const plainSource = new LocalHost(1);
  const source = hostWith(plainSource, {
    hash: async (range, method) => {
      if (opts.hashDelayMs) await new Promise((r) => setTimeout(r, opts.hashDelayMs));
      return plainSource.hash(range, method);
    },
    // corruptReadAt: that byte changes after the source read it (as memory between the two sides might).
    read: async (offset, length, zeroUnit, hashMethod) => {
      const chunk = await plainSource.read(offset, length, zeroUnit, hashMethod);
      const at = opts.corruptReadAt;
      if (at !== undefined && at >= offset && at < offset + length) chunk.buffers[0]![at - offset] ^= 0xff;
      return chunk;
    },
  });
  const target = new LocalHost(1);
  const rec = recordingWrites(target, BS);
  let compared = 0;
  let readBacks = 0;
  const order: string[] = [];
  const answered = <T>(p: Promise<T>) => p.then((v) => (order.push('w'), v));
  const t = hostWith(rec.host, {
    fsync: () => (order.push('f'), target.fsync()),
    hash: async (range, method) => {
      const readBack = rec.written.has(range.first);
      if (readBack) {
        order.push('r');
        readBacks += range.count;
      } else {
        compared += range.count;
      }
      if (opts.targetHashDelayMs && !readBack) await new Promise((r) => setTimeout(r, opts.targetHashDelayMs));
      return target.hash(range, method);
    },
    writePieces: (ranges, buffers) => {
      if (!opts.corruptPieces || ranges[0]! < 4 * HASH_CHUNK_BYTES) return rec.host.writePieces(ranges, buffers);
      const bytes = Buffer.concat(buffers);
      bytes[bytes.length - 1] ^= 0xff;
      return rec.host.writePieces(ranges, [bytes]);
    },
    write: (offset, buffers) => {
      if (opts.corruptFrom === undefined || offset < opts.corruptFrom) return answered(rec.host.write(offset, buffers));
      const bytes = Buffer.concat(buffers);
      bytes[0] ^= 0xff;
      return rec.host.write(offset, [bytes]);
    },
  });
  try {
    const summary = await syncFile(plainSync(source, src, t, dst, { blockSize: BS, ...opts }));
    return { summary, compared, order, readBack: readBacks };
  } catch (error) {
    return { error, compared, order, readBack: readBacks };
  } finally {
    await Promise.all([plainSource.close(), target.close()]);
  }
}

describe('streaming once most blocks differ', () => {
  let src: string;
  beforeAll(() => {
    src = join(dir, 'src');
    writeSeededFile(src, SIZE, 1);
  });

  it('every block changed: most chunks are streamed (the target hashed only for a few), the target is byte-identical', async () => {
    const dst = join(dir, 'all');
    writeSeededFile(dst, SIZE, 2);
    // The block-level rule alone (refinement's own rule waits for refined runs: the next test).
    const r = await run(src, dst, { refineLevels: [], hashDelayMs: 100 });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    const s = r.summary!;
    expect(s.verified).toBe('blocks');
    expect(s.blocksChanged).toBe(BLOCKS);
    expect(s.profile!.chunks.streamed).toBeGreaterThan(0);
    expect(s.profile!.chunks.compared + s.profile!.chunks.streamed).toBe(10 + 1);
    expect(r.compared).toBeLessThan(BLOCKS / 2);
  });

  it('every block changed, the source hashed at once (as hashed ahead) and the target slow: chunks still stream', async () => {
    // Each chunk's mode is decided when it is reached; with the source's hashes already in,
    // every chunk would be reached before the target answered the first comparison, unless
    // a chunk holds its slot until it is compared.
    const dst = join(dir, 'all-slow-target');
    writeSeededFile(dst, SIZE, 7);
    const r = await run(src, dst, { refineLevels: [], targetHashDelayMs: 100 });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    expect(r.summary!.profile!.chunks.streamed).toBeGreaterThan(0);
    expect(r.compared).toBeLessThan(BLOCKS / 2);
  });

  it('every block changed, refinement on (the default): once refined runs differ all over, chunks stream', async () => {
    const dst = join(dir, 'all-refined');
    writeSeededFile(dst, SIZE, 5);
    const r = await run(src, dst, { hashDelayMs: 100 });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    expect(r.summary!.blocksChanged).toBe(BLOCKS);
    expect(r.summary!.profile!.chunks.streamed).toBeGreaterThan(0);
    // Streamed blocks were never compared: they count as differing, whole, like every block sent whole.
    expect(r.summary!.bytesDiffering).toBe(SIZE);
    expect(r.summary!.similarityBytes).toBe(0);
  });

  /** A copy of the source with 4 bytes changed in every 16 KiB page. */
  const editEveryPage = (name: string): string => {
    const dst = join(dir, name);
    copyFileSync(src, dst);
    const fd = openSync(dst, 'r+');
    try {
      for (let at = 100; at < SIZE; at += 16 * 1024) writeSync(fd, Buffer.from([0x5a, 0xa5, 0x5a, 0xa5]), 0, 4, at);
    } finally {
      closeSync(fd);
    }
    return dst;
  };

  it('every block changed by a few bytes per 16 KiB page: refinement keeps comparing (nothing streamed), only the pieces move', async () => {
    const dst = editEveryPage('pages');
    const r = await run(src, dst, { hashDelayMs: 20 });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    const s = r.summary!;
    expect(s.blocksChanged).toBe(BLOCKS);
    expect(s.profile!.chunks.streamed).toBe(0);
    expect(s.bytesSent).toBeLessThan(SIZE / 20);
    // Once refinement found edits, chunks are compared by 16 KiB pieces: the target's blocks are hashed whole only in the first chunks.
    expect(s.profile!.chunks.inPieces).toBeGreaterThan(0);
    expect(r.compared).toBeLessThanOrEqual(BLOCKS - 1 - (s.profile!.chunks.inPieces - 1) * (HASH_CHUNK_BYTES / BS)); // (the last chunk holds one block)
    expect(s.bytesRefineHashes).toBeGreaterThanOrEqual((s.profile!.chunks.inPieces * HASH_CHUNK_BYTES) / (16 * 1024) * 8);
    // Refined runs are read back after the fsync, every block, in requests as large as comparing makes.
    const fsyncAt = r.order.indexOf('f');
    expect(fsyncAt).toBeGreaterThan(-1);
    expect(r.order.indexOf('r')).toBeGreaterThan(fsyncAt);
    expect(r.readBack).toBe(BLOCKS);
    expect(r.order.filter((x) => x === 'r').length).toBe(Math.ceil(BLOCKS / (HASH_CHUNK_BYTES / BS)));
  });

  it('pieces written wrong in chunks compared in pieces: VERIFY_FAILED (exit 5)', async () => {
    const dst = editEveryPage('pages-corrupt');
    const r = await run(src, dst, { hashDelayMs: 20, corruptPieces: true });
    expect(r.error).toBeInstanceOf(PdcError);
    expect((r.error as PdcError).code).toBe('VERIFY_FAILED');
    expect((r.error as PdcError).exitCode).toBe(5);
  });

  it('bytes changed between the source reading and the target writing them: VERIFY_FAILED (exit 5), not a quiet success', async () => {
    const dst = join(dir, 'changed-in-between');
    writeSeededFile(dst, SIZE, 9);
    // Every run is hashed as sent: the digests must be the source's, taken before the bytes left it.
    const r = await run(src, dst, { refineLevels: [], wholeFile: true, corruptReadAt: 5 * BS + 7 });
    expect(r.error).toBeInstanceOf(PdcError);
    expect((r.error as PdcError).code).toBe('VERIFY_FAILED');
    expect((r.error as PdcError).exitCode).toBe(5);
  });

  it('a tenth changed: every chunk compared, only the changed blocks sent', async () => {
    const dst = join(dir, 'tenth');
    copyFileSync(src, dst);
    const changed = Array.from({ length: BLOCKS }, (_, i) => i).filter((i) => i % 10 === 3);
    mutateBlocks(dst, BS, changed, 3);
    const r = await run(src, dst);
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    expect(r.summary!.profile!.chunks.streamed).toBe(0);
    expect(r.summary!.blocksChanged).toBe(changed.length);
    expect(r.compared).toBe(BLOCKS);
  });

  it('written runs are read back while later ones are still being written, all before the fsync', async () => {
    const dst = join(dir, 'read-back-order');
    writeSeededFile(dst, SIZE, 8);
    const r = await run(src, dst, { refineLevels: [], wholeFile: true });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    const firstRead = r.order.indexOf('r');
    const lastWrite = r.order.lastIndexOf('w');
    expect(firstRead).toBeGreaterThan(-1);
    expect(firstRead).toBeLessThan(lastWrite);
    expect(r.order.filter((x) => x === 'r').length).toBeGreaterThanOrEqual(Math.floor(BLOCKS / (TRANSFER_RUN_BYTES / BS)));
    expect(r.order.indexOf('f')).toBe(r.order.length - 1);
  });

  it('a dry run never streams: it reports exactly the blocks that differ', async () => {
    const dst = join(dir, 'dry');
    writeSeededFile(dst, SIZE, 4);
    const r = await run(src, dst, { dryRun: true });
    expect(r.error).toBeUndefined();
    expect(r.summary!.profile!.chunks.streamed).toBe(0);
    expect(r.summary!.blocksChanged).toBe(BLOCKS);
    expect(r.compared).toBe(BLOCKS);
  });

  it('-W hashes nothing on the target but the read-back', async () => {
    const dst = join(dir, 'whole');
    writeSeededFile(dst, SIZE, 5);
    const r = await run(src, dst, { wholeFile: true });
    expect(r.error).toBeUndefined();
    expectSameBytes(dst, src);
    expect(r.compared).toBe(0);
  });

  it('a target that stores wrong bytes in the streamed part: VERIFY_FAILED (exit 5)', async () => {
    const dst = join(dir, 'corrupt');
    writeSeededFile(dst, SIZE, 6);
    const r = await run(src, dst, { corruptFrom: 8 * HASH_CHUNK_BYTES, hashDelayMs: 100 });
    expect(r.compared).toBeLessThan(8 * (HASH_CHUNK_BYTES / BS)); // the last chunks were streamed, not compared
    expect(r.error).toBeInstanceOf(PdcError);
    expect((r.error as PdcError).code).toBe('VERIFY_FAILED');
    expect((r.error as PdcError).exitCode).toBe(5);
  });
});
