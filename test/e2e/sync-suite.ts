/**
 * The conformance suite for syncs: the same cases run over every way of reaching
 * a file (local agent, SSH push, SSH pull). Every case checks the target byte for byte.
 */
import { closeSync, constants, copyFileSync, existsSync, mkdirSync, openSync, readFileSync, readSync, readdirSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncEvent, SyncSummary } from '../../src/engine/events.js';
import { syncFile, type SyncOptions } from '../../src/engine/sync.js';
import type { PdcError } from '../../src/errors/pdc-error.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import { allocatedBytes, attachLoop, canLoop, detachLoop, expectSameBytes, expectSamePrefix, mutateBlocks, pickBlocks, rng, seededBytes, sha256File, tempDir, textBytes, writeSeededFile, writeSparseFile } from '../support/files.js';
import { hostWith, recordingWrites } from '../support/hosts.js';

export interface HostPair {
  source: FileHost;
  target: FileHost;
  close(): Promise<void>;
}

export interface SuiteOptions {
  /** Opens fresh hosts for one sync (hosts are single-file: one pair per sync). */
  open: () => Promise<HostPair>;
  /** Skip the slow cases (large file, many random rounds) where the transport is slow to set up. */
  randomRounds?: number;
  /** The hosts pack block data (-z): compressible data must take fewer bytes on the wire. */
  compressed?: boolean;
}

const BS = 4096;

export function defineSyncSuite(name: string, opts: SuiteOptions): void {
  describe(name, () => {
    let dir: string;
    let cleanup: () => void;
    beforeAll(() => ({ dir, cleanup } = tempDir()));
    afterAll(() => cleanup?.());

    async function sync(
      src: string,
      dst: string,
      extra: Partial<SyncOptions> = {},
      wrapTarget: (h: FileHost) => FileHost = (h) => h,
    ): Promise<{ summary: SyncSummary; events: SyncEvent[] }> {
      const pair = await opts.open();
      const events: SyncEvent[] = [];
      try {
        const summary = await syncFile({
          source: { host: pair.source, path: src },
          target: { host: wrapTarget(pair.target), path: dst },
          blockSize: BS,
          hashMethod: 'xxh64',
          wholeFile: false,
          dryRun: false,
          verify: false,
          concurrency: 4,
          emit: (e) => events.push(e),
          ...extra,
        });
        return { summary, events };
      } finally {
        await pair.close();
      }
    }

    let n = 0;
    const fresh = (label: string) => {
      const d = join(dir, `${++n}-${label}`);
      mkdirSync(d, { recursive: true });
      return { src: join(d, 'source.bin'), dst: join(d, 'target.bin'), d };
    };

    for (const size of [0, 1, BS - 1, BS, BS + 1, 3 * BS + 17]) {
      it(`creates a missing target of ${size} bytes`, async () => {
        const { src, dst } = fresh(`size-${size}`);
        writeSeededFile(src, size, size + 1);
        const { summary } = await sync(src, dst);
        expectSameBytes(dst, src);
        expect(summary.bytesTotal).toBe(size);
        expect(summary.bytesSent).toBe(size);
        expect(summary.blocksChanged).toBe(Math.ceil(size / BS));
        expect(summary.targetCreated).toBe(true);
        expect(summary.verified).toBe('blocks');
      });
    }

    const SIZE = 50 * BS + 17;
    it('leaves an identical target alone and sends nothing', async () => {
      const { src, dst } = fresh('identical');
      writeSeededFile(src, SIZE, 7);
      copyFileSync(src, dst);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(0);
      expect(summary.blocksChanged).toBe(0);
      expect(summary.similarity).toBe(100);
    });

    it('sends only the changed blocks', async () => {
      const { src, dst } = fresh('changed');
      writeSeededFile(src, SIZE, 8);
      copyFileSync(src, dst);
      const changed = pickBlocks(51, 9, 99);
      mutateBlocks(dst, BS, changed, 1234);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(changed.length);
      const lastIsShort = changed.includes(50);
      expect(summary.bytesSent).toBe(changed.length * BS - (lastIsShort ? BS - 17 : 0));
    });

    it('grows a shorter target', async () => {
      const { src, dst } = fresh('shorter');
      writeSeededFile(src, SIZE, 9);
      copyFileSync(src, dst);
      truncateSync(dst, 20 * BS + 5);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      // block 20 is partial in the target, blocks 21..50 are missing
      expect(summary.blocksChanged).toBe(31);
    });

    it('shrinks a longer target', async () => {
      const { src, dst } = fresh('longer');
      writeSeededFile(dst, SIZE + 10 * BS, 10);
      writeSeededFile(src, SIZE, 10);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(0);
    });

    it('rewrites a totally different target', async () => {
      const { src, dst } = fresh('different');
      writeSeededFile(src, SIZE, 11);
      writeSeededFile(dst, SIZE, 12);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(51);
      expect(summary.similarity).toBe(0);
    });

    it('empties a target when the source is empty', async () => {
      const { src, dst } = fresh('empty');
      writeFileSync(src, '');
      writeSeededFile(dst, 3 * BS, 13);
      await sync(src, dst);
      expectSameBytes(dst, src);
    });

    it('whole-file mode sends every block and still verifies', async () => {
      const { src, dst } = fresh('whole');
      writeSeededFile(src, SIZE, 14);
      copyFileSync(src, dst);
      mutateBlocks(dst, BS, [3], 5);
      const { summary } = await sync(src, dst, { wholeFile: true });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(SIZE);
      expect(summary.verified).toBe('blocks');
    });

    it('dry run reports the similarity and leaves the target untouched', async () => {
      const { src, dst } = fresh('dry');
      writeSeededFile(src, 40 * BS, 15);
      copyFileSync(src, dst);
      mutateBlocks(dst, BS, [1, 2, 30, 39], 6);
      truncateSync(dst, 40 * BS);
      const before = sha256File(dst);
      const mtime = statSync(dst).mtimeMs;
      const { summary } = await sync(src, dst, { dryRun: true });
      expect(sha256File(dst)).toBe(before);
      expect(statSync(dst).mtimeMs).toBe(mtime);
      expect(summary.dryRun).toBe(true);
      expect(summary.blocksChanged).toBe(4);
      expect(summary.similarity).toBe(90);
      expect(summary.bytesSent).toBe(4 * BS);
    });

    it('dry run against a missing target creates nothing', async () => {
      const { src, dst } = fresh('dry-missing');
      writeSeededFile(src, 5 * BS, 16);
      const { summary } = await sync(src, dst, { dryRun: true });
      expect(existsSync(dst)).toBe(false);
      expect(summary.similarity).toBe(0);
    });

    for (const method of ['sha1', 'sha256', 'md5', 'blake2b512']) {
      it(`works with hash method ${method}`, async () => {
        const { src, dst } = fresh(`hash-${method}`);
        writeSeededFile(src, SIZE, 17);
        copyFileSync(src, dst);
        mutateBlocks(dst, BS, [0, 25, 50], 7);
        const { summary } = await sync(src, dst, { hashMethod: method, verify: true });
        expectSameBytes(dst, src);
        expect(summary.blocksChanged).toBe(3);
        expect(summary.verified).toBe('sha256');
      });
    }

    it('copies into a target directory under the source name, creating nothing else', async () => {
      const { src, d } = fresh('into-dir');
      writeSeededFile(src, 3 * BS, 18);
      const outDir = join(d, 'out');
      mkdirSync(outDir);
      const { summary } = await sync(src, outDir);
      expectSameBytes(join(outDir, 'source.bin'), src);
      expect(summary.target.endsWith('source.bin')).toBe(true);
    });

    it('--atomic builds the new version beside the target and renames it into place', async () => {
      const { src, dst, d } = fresh('atomic');
      writeSeededFile(src, SIZE, 21);
      copyFileSync(src, dst);
      mutateBlocks(dst, BS, [4, 40], 8);
      const inodeBefore = statSync(dst).ino;
      const { summary } = await sync(src, dst, { atomic: true });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(2);
      expect(statSync(dst).ino).not.toBe(inodeBefore);
      expect(readdirSync(d).sort()).toEqual(['source.bin', 'target.bin']);
    });

    it('--atomic reuses the temp file an interrupted run left behind', async () => {
      const { src, dst, d } = fresh('atomic-resume');
      writeSeededFile(src, SIZE, 22);
      writeSeededFile(dst, SIZE, 23);
      const old = sha256File(dst);
      // What an interrupted atomic run leaves: the old target intact and a half-built temp file.
      const temp = join(d, '.target.bin.pdiffcopy-tmp');
      copyFileSync(src, temp);
      mutateBlocks(temp, BS, [7], 9);
      expect(sha256File(dst)).toBe(old);
      const { summary } = await sync(src, dst, { atomic: true });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(1);
      expect(existsSync(temp)).toBe(false);
    });

    it('--atomic: a source changed before the commit fails SOURCE_CHANGED and the old target stays byte-identical', async () => {
      const { src, dst, d } = fresh('atomic-source-changed');
      writeSeededFile(src, SIZE, 24);
      writeSeededFile(dst, SIZE, 25);
      const old = sha256File(dst);
      // The source changes after every block was written, before the final checks.
      const changeSourceOnFsync = (h: FileHost) => hostWith(h, { fsync: () => (mutateBlocks(src, BS, [1], 99), h.fsync()) });
      const err = await sync(src, dst, { atomic: true }, changeSourceOnFsync).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect((err as PdcError | undefined)?.code).toBe('SOURCE_CHANGED');
      expect(sha256File(dst), 'old target byte-identical').toBe(old);
      // The partly built new version is kept for the next run, which finishes the copy.
      expect(readdirSync(d).sort()).toEqual(['.target.bin.pdiffcopy-tmp', 'source.bin', 'target.bin']);
      await sync(src, dst, { atomic: true });
      expectSameBytes(dst, src);
      expect(readdirSync(d).sort()).toEqual(['source.bin', 'target.bin']);
    });

    it('--atomic: the rename is the last step, between the commit events, after verifying', async () => {
      const { src, dst } = fresh('atomic-commit-events');
      writeSeededFile(src, SIZE, 26);
      writeSeededFile(dst, SIZE, 27);
      const old = sha256File(dst);
      const seen: string[] = [];
      const { events } = await sync(src, dst, {
        atomic: true,
        emit: (e) => {
          if (e.type === 'commit') seen.push(`${e.stage}: target is ${sha256File(dst) === old ? 'old' : 'new'}`);
          if (e.type === 'phase') seen.push(e.phase);
        },
      });
      expect(events).toEqual([]);
      expect(seen).toEqual(['syncing', 'finishing', 'verifying', 'renaming: target is old', 'renamed: target is new', 'done']);
      expectSameBytes(dst, src);
    });

    it('creates missing parent directories of the target', async () => {
      const { src, d } = fresh('parents');
      writeSeededFile(src, 2 * BS + 1, 19);
      const dst = join(d, 'a', 'b c', 'target.bin');
      await sync(src, dst);
      expectSameBytes(dst, src);
    });

    it('a 64 MiB file with 1 MiB blocks: only the changed blocks move', async () => {
      const { src, dst } = fresh('big');
      const size = 64 * 1024 * 1024 + 123;
      writeSeededFile(src, size, 20);
      copyFileSync(src, dst);
      const changed = pickBlocks(65, 7, 5);
      mutateBlocks(dst, 1 << 20, changed, 77);
      const { summary, events } = await sync(src, dst, { blockSize: 1 << 20 });
      expectSameBytes(dst, src);
      expect(summary.blocksTotal).toBe(65);
      expect(summary.blocksChanged).toBe(changed.length);
      expect(events.some((e) => e.type === 'progress')).toBe(true);
    }, 60_000);

    /** -z: what crossed the wire against the data it carried (without -z they are the same). */
    const expectWire = (summary: SyncSummary, data: number) => {
      expect(summary.bytesData).toBe(data);
      if (opts.compressed) expect(summary.bytesSent).toBeLessThan(data * 0.6);
      else expect(summary.bytesSent).toBe(data);
    };

    it('compressible data into a new target: byte for byte, and packed on the wire with -z', async () => {
      const { src, dst } = fresh('text-new');
      writeFileSync(src, textBytes(100 * BS + 9, 31));
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expectWire(summary, 100 * BS + 9);
    });

    it('compressible and incompressible blocks changed in an existing target (packed and raw units in one run)', async () => {
      const { src, dst } = fresh('text-mixed');
      const size = 96 * BS + 5;
      const data = textBytes(size, 32);
      seededBytes(33, 16 * BS).copy(data, 40 * BS); // 16 incompressible blocks, one whole 64 KiB unit and more
      writeFileSync(src, data);
      writeSeededFile(dst, size, 34);
      const { summary } = await sync(src, dst, { blockSize: BS, concurrency: 3 });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(97);
      expect(summary.bytesData).toBe(size);
      if (opts.compressed) {
        expect(summary.bytesSent).toBeLessThan(size);
        expect(summary.bytesSent).toBeGreaterThan(16 * BS); // the random part went raw
      } else expect(summary.bytesSent).toBe(size);
      // A rerun finds nothing to move.
      const again = await sync(src, dst);
      expect(again.summary.bytesSent).toBe(0);
      expectSameBytes(dst, src);
    });

    it('compressible data in whole-file mode with 1 MiB blocks and zero runs between', async () => {
      const { src, dst } = fresh('text-whole');
      const MiB = 1 << 20;
      const data = Buffer.concat([textBytes(3 * MiB, 35), Buffer.alloc(2 * MiB), textBytes(MiB + 77, 36)]);
      writeFileSync(src, data);
      writeSeededFile(dst, data.length, 37);
      const { summary } = await sync(src, dst, { blockSize: MiB, wholeFile: true });
      expectSameBytes(dst, src);
      expect(summary.bytesZero).toBe(2 * MiB);
      expectWire(summary, 4 * MiB + 77);
    });

    const rounds = opts.randomRounds ?? 12;
    it(`random sizes, block sizes and mutations (${rounds} seeded rounds)`, async () => {
      const r = rng(424242);
      for (let round = 0; round < rounds; round++) {
        const { src, dst } = fresh(`random-${round}`);
        const bs = [1, 7, 512, 4096, 65536][Math.floor(r() * 5)]!;
        const size = Math.floor(r() * 300_000);
        writeSeededFile(src, size, 1000 + round);
        const kind = Math.floor(r() * 4);
        if (kind === 1) {
          copyFileSync(src, dst);
          const blocks = Math.ceil(size / bs);
          if (blocks > 0) mutateBlocks(dst, bs, pickBlocks(blocks, 1 + Math.floor(r() * 5), round), round);
        } else if (kind === 2) {
          writeSeededFile(dst, Math.floor(r() * 300_000), 2000 + round);
        } else if (kind === 3) {
          copyFileSync(src, dst);
          truncateSync(dst, Math.floor(size * r()));
        }
        await sync(src, dst, { blockSize: bs });
        expectSameBytes(dst, src);
        expect(readFileSync(dst).equals(readFileSync(src))).toBe(true);
      }
    }, 120_000);

    // Refinement: a few bytes changed inside blocks travel as the pieces that hold them.
    /** Flip `len` bytes at each of `at` in place (every flipped byte differs). */
    const flipBytes = (path: string, at: number[], len: number) => {
      const fd = openSync(path, 'r+');
      const b = Buffer.alloc(len);
      for (const off of at) {
        const n = readSync(fd, b, 0, len, off);
        for (let i = 0; i < n; i++) b[i] ^= 0xa5;
        writeSync(fd, b, 0, n, off);
      }
      closeSync(fd);
    };
    const PAGE = 16 * 1024;
    /** Edits shaped like a database page update: header, a row in the middle, trailer. */
    const pageEdits = (pages: number[]) => pages.flatMap((p) => [p * PAGE + 4, p * PAGE + 5000 + (p % 7) * 100, p * PAGE + PAGE - 8]);

    it('refinement: a few bytes in many pages cross as the 64-byte pieces that hold them', async () => {
      const { src, dst } = fresh('refine-pages');
      const size = 4 * 1024 * 1024 + 333;
      writeSeededFile(src, size, 41);
      copyFileSync(src, dst);
      const pages = pickBlocks(Math.floor(size / PAGE), 100, 42);
      flipBytes(dst, pageEdits(pages), 8);
      const { summary } = await sync(src, dst, { blockSize: 1 << 20 });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(new Set(pages.map((p) => Math.floor((p * PAGE) / (1 << 20)))).size);
      // Each 8-byte edit lies in one or two 64-byte pieces.
      expect(summary.bytesSent).toBeGreaterThanOrEqual(pages.length * 3 * 64);
      expect(summary.bytesSent).toBeLessThanOrEqual(pages.length * 3 * 2 * 64);
      expect(summary.bytesDiffering).toBe(summary.bytesSent);
      expect(summary.bytesRefineHashes).toBeGreaterThan(0);
      expect(summary.bytesSent + summary.bytesRefineHashes).toBeLessThan((summary.blocksChanged << 20) / 10);
      expect(summary.similarityBytes).toBe(Math.round(((size - summary.bytesDiffering) / size) * 10000) / 100);
      expect(summary.similarityBytes).toBeGreaterThan(97);
      expect(summary.similarity).toBeLessThan(summary.similarityBytes);
      expect(summary.verified).toBe('blocks');
    }, 60_000);

    it('refinement off (no levels): the differing blocks are sent whole', async () => {
      const { src, dst } = fresh('refine-off');
      const size = 2 * 1024 * 1024;
      writeSeededFile(src, size, 43);
      copyFileSync(src, dst);
      flipBytes(dst, pageEdits([3, 70]), 8);
      const { summary } = await sync(src, dst, { blockSize: 1 << 20, refineLevels: [] });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(2);
      expect(summary.bytesSent).toBe(2 << 20);
      expect(summary.bytesRefineHashes).toBe(0);
    });

    it('refinement: a few bytes changed in every page of a block are still refined (every 16 KiB piece differs)', async () => {
      const { src, dst } = fresh('refine-every-page');
      const size = 2 * 1024 * 1024;
      writeSeededFile(src, size, 47);
      copyFileSync(src, dst);
      const pages = Array.from({ length: size / PAGE }, (_, p) => p);
      flipBytes(dst, pageEdits(pages), 8);
      const { summary } = await sync(src, dst, { blockSize: 1 << 20 });
      expectSameBytes(dst, src);
      expect(summary.blocksChanged).toBe(2);
      expect(summary.bytesSent).toBeLessThanOrEqual(pages.length * 3 * 2 * 64);
      expect(summary.bytesSent + summary.bytesRefineHashes).toBeLessThan(size / 10);
    });

    it('refinement: a dry run estimates the differing bytes, writes nothing, and a real run then sends that', async () => {
      const { src, dst } = fresh('refine-dry');
      const size = 2 * 1024 * 1024 + 5;
      writeSeededFile(src, size, 44);
      copyFileSync(src, dst);
      flipBytes(dst, pageEdits([1, 2, 90, 127]), 8);
      const before = sha256File(dst);
      const { summary: dry } = await sync(src, dst, { blockSize: 1 << 20, dryRun: true });
      expect(sha256File(dst)).toBe(before);
      expect(dry.bytesDiffering).toBeLessThan(16 * 64);
      expect(dry.bytesSent).toBe(dry.bytesDiffering);
      const { summary } = await sync(src, dst, { blockSize: 1 << 20 });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(dry.bytesSent);
    });

    it('refinement: a block that differs all over is sent whole after one round', async () => {
      const { src, dst } = fresh('refine-whole');
      const size = 3 * 1024 * 1024;
      writeSeededFile(src, size, 45);
      copyFileSync(src, dst);
      mutateBlocks(dst, 1 << 20, [1], 46);
      const { summary } = await sync(src, dst, { blockSize: 1 << 20 });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(1 << 20);
      // One round (a digest per 16 KiB piece of the block) and a probe of one 16 KiB piece in 1 KiB pieces, no more.
      expect(summary.bytesRefineHashes).toBe(64 * 8 + 16 * 8);
    });

    it(`refinement: random edits, block sizes and levels (${rounds} seeded rounds)`, async () => {
      const r = rng(777);
      const levelSets = [undefined, [1000, 300, 64], [4096, 64], [16384, 1024, 64], [333]];
      for (let round = 0; round < rounds; round++) {
        const { src, dst } = fresh(`refine-random-${round}`);
        const bs = [4096, 5000, 65536, 1 << 20][Math.floor(r() * 4)]!;
        const size = Math.floor(r() * 2_000_000);
        writeSeededFile(src, size, 3000 + round);
        copyFileSync(src, dst);
        const edits = Array.from({ length: Math.floor(r() * 40) }, () => Math.floor(r() * size));
        flipBytes(dst, edits, 1 + Math.floor(r() * 300));
        if (r() < 0.3) truncateSync(dst, Math.floor(size * (0.5 + r() / 2)));
        const { summary } = await sync(src, dst, { blockSize: bs, refineLevels: levelSets[round % levelSets.length] });
        expectSameBytes(dst, src);
        expect(summary.bytesSent).toBeLessThanOrEqual(summary.blocksChanged * bs);
      }
    }, 120_000);

    // A sparse image: holes at the start, in the middle and at the end, around two data extents.
    const K = 1024;
    const SPARSE = 1024 * K + 17;
    const DATA: Array<[number, number]> = [
      [256 * K, 128 * K],
      [640 * K, 64 * K],
    ];
    const DATA_BYTES = 192 * K;
    const sparseSource = (src: string) => writeSparseFile(src, SPARSE, DATA, 31, [[800 * K, 32 * K]]);

    it('a new target keeps the source holes; zeros cross the wire as zero runs', async () => {
      const { src, dst } = fresh('sparse-new');
      sparseSource(src);
      const { summary, events } = await sync(src, dst);
      expectSameBytes(dst, src);
      // Progress ends with everything to send handled: the data sent and the zeros as zero runs.
      const last = events.filter((e) => e.type === 'progress').at(-1);
      expect(last).toMatchObject({ bytesToSend: SPARSE, bytesSent: DATA_BYTES, bytesZero: SPARSE - DATA_BYTES });
      // Only the data blocks crossed as bytes (the explicitly written zeros too became a hole).
      expect(summary.bytesSent).toBe(DATA_BYTES);
      expect(summary.bytesSent).toBeLessThanOrEqual(allocatedBytes(src) * 1.01);
      expect(summary.bytesZero).toBe(SPARSE - DATA_BYTES);
      expect(summary.bytesHoles).toBe(SPARSE - DATA_BYTES);
      expect(summary.blocksZero).toBe(Math.ceil(SPARSE / BS) - DATA_BYTES / BS);
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(DATA_BYTES + 8 * K);
    });

    it('a new or grown target: only its written blocks are read back to verify, not the holes', async () => {
      // [label, target's old size (0: new), blocks written: data, and zeros inside the old extent]
      const cases: Array<[string, number, number]> = [
        ['new', 0, DATA_BYTES / BS],
        ['grown', 512 * K, (512 * K + 64 * K) / BS], // all of the old 512 KiB, and the data at 640 KiB
      ];
      for (const [label, oldSize, written] of cases) {
        const { src, dst } = fresh(`sparse-verify-${label}`);
        sparseSource(src);
        if (oldSize) writeSeededFile(dst, oldSize, 35);
        let blocksReadBack = 0;
        const countVerifyReads = (h: FileHost) => {
          const rec = recordingWrites(h, BS);
          return hostWith(rec.host, {
            hash: (range, method) => {
              if (rec.written.has(range.first)) blocksReadBack += range.count;
              return h.hash(range, method);
            },
          });
        };
        const { summary } = await sync(src, dst, {}, countVerifyReads);
        expectSameBytes(dst, src);
        expect(summary.blocksChanged).toBe(Math.ceil(SPARSE / BS));
        expect(blocksReadBack).toBe(written);
      }
    });

    it('whole-file mode: zero blocks are zero runs too, and verify against their hash', async () => {
      const { src, dst } = fresh('sparse-whole');
      sparseSource(src);
      const { summary } = await sync(src, dst, { wholeFile: true, hashMethod: 'sha256' });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(DATA_BYTES);
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(DATA_BYTES + 8 * K);
      expect(summary.verified).toBe('blocks');
    });

    it('a grown target: zeros inside its old extent are written, past its old end they stay holes', async () => {
      const { src, dst } = fresh('sparse-grown');
      sparseSource(src);
      writeSeededFile(dst, 512 * K, 32); // different data where the source has holes and data
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(DATA_BYTES); // the zeros were never sent as bytes
      // Past 512 KiB: the data at 640 KiB is written, the rest (the zeros at 800 KiB and the tail) stays holes.
      expect(summary.bytesHoles).toBe(SPARSE - 512 * K - 64 * K);
      expect(summary.bytesZero - summary.bytesHoles).toBe(512 * K - 128 * K);
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(512 * K + 64 * K + 8 * K);
    });

    it('a shrunk target: zeros are written as zeros, the tail is cut', async () => {
      const { src, dst } = fresh('sparse-shrunk');
      sparseSource(src);
      writeSeededFile(dst, 2048 * K, 33);
      const { summary } = await sync(src, dst);
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(DATA_BYTES);
      expect(summary.bytesHoles).toBe(0);
      expect(summary.bytesZero).toBe(SPARSE - DATA_BYTES);
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(SPARSE + 8 * K);
    });

    it('--sparse: zeros inside an existing target become holes (fallocate on the target host)', async () => {
      const { src, dst } = fresh('sparse-punch');
      sparseSource(src);
      writeSeededFile(dst, SPARSE, 36); // as large, allocated, data everywhere
      const { summary } = await sync(src, dst, { sparse: true });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(DATA_BYTES);
      expect(summary.bytesZero).toBe(SPARSE - DATA_BYTES);
      expect(summary.bytesHoles).toBe(SPARSE - DATA_BYTES);
      // The data and the 17-byte tail's block (a partial block is zeroed, not freed).
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(DATA_BYTES + 8 * K);
      // Without --sparse the same zeros are written (allocated), as before.
      const again = fresh('sparse-no-punch');
      sparseSource(again.src);
      writeSeededFile(again.dst, SPARSE, 36);
      const plain = await sync(again.src, again.dst);
      expectSameBytes(again.dst, again.src);
      expect(plain.summary.bytesHoles).toBe(0);
      expect(allocatedBytes(again.dst)).toBeGreaterThanOrEqual(SPARSE - 4 * K);
    });

    it('tiny blocks: zeros are found in whole blocks of a page or more, and verify', async () => {
      for (const wholeFile of [false, true]) {
        const { src, dst } = fresh(`sparse-tiny-${wholeFile}`);
        writeSparseFile(src, 100 * K + 3, [[20_000, 10_000]], 34);
        const { summary } = await sync(src, dst, { blockSize: 7, wholeFile, hashMethod: 'sha1' });
        expectSameBytes(dst, src);
        expect(summary.bytesData + summary.bytesZero).toBe(100 * K + 3);
        // The data plus at most one zero unit (4102 bytes for 7-byte blocks) on each side of it.
        expect(summary.bytesData).toBeLessThanOrEqual(10_000 + 2 * 4102);
        expect(summary.bytesSent).toBeLessThanOrEqual(summary.bytesData);
        expect(summary.blocksZero * 7).toBeGreaterThanOrEqual(summary.bytesZero);
      }
    });

    it('a sparse target that already matches: nothing moves, its holes stay', async () => {
      const { src, dst } = fresh('sparse-same');
      sparseSource(src);
      sparseSource(dst);
      const before = allocatedBytes(dst);
      const { summary } = await sync(src, dst, { hashMethod: 'md5' });
      expectSameBytes(dst, src);
      expect(summary.bytesSent).toBe(0);
      expect(summary.blocksZero).toBe(0);
      expect(allocatedBytes(dst)).toBe(before);
    });

    // Block devices: loop devices over image files (root only; each case detaches its device).
    const MiB = 1024 * 1024;
    describe.runIf(canLoop)('block devices', () => {
      /** A loop device over a fresh image of `size` bytes filled with seeded data; detached after `fn`. */
      async function withLoop(label: string, size: number, seed: number, fn: (dev: string, image: string, d: string) => Promise<void>): Promise<void> {
        const { d } = fresh(label);
        const image = join(d, 'device.img');
        writeSeededFile(image, size, seed);
        const dev = attachLoop(image);
        try {
          await fn(dev, image, d);
        } finally {
          detachLoop(dev);
        }
      }

      it('a larger device as target: written up to the source size, the rest left as it was, never resized', async () => {
        await withLoop('dev-target', 4 * MiB, 41, async (dev, image, d) => {
          const src = join(d, 'source.bin');
          writeSparseFile(src, 3 * MiB + 4096, [[MiB, 256 * K]], 42);
          const tail = readFileSync(image).subarray(3 * MiB + 4096);
          // --sparse changes nothing on a device: it has no holes to punch.
          const { summary } = await sync(src, dev, { sparse: true });
          expectSamePrefix(dev, src, 3 * MiB + 4096);
          expect(readFileSync(image).subarray(3 * MiB + 4096).equals(tail)).toBe(true);
          expect(statSync(image).size).toBe(4 * MiB);
          expect(summary.targetDevice).toBe(true);
          expect(summary.bytesBeyondSource).toBe(MiB - 4096);
          // The device held other data where the source has zeros: those are written as zeros, never left as holes.
          expect(summary.bytesHoles).toBe(0);
          expect(summary.bytesSent).toBe(256 * K);
          // A second run finds nothing to do: verification re-read the device.
          const again = await sync(src, dev);
          expect(again.summary.bytesSent + again.summary.bytesZero).toBe(0);
        });
      });

      it('a device as source: a new file target gets its bytes, its zeros as holes', async () => {
        const { d } = fresh('dev-source');
        const image = join(d, 'device.img');
        writeSparseFile(image, 2 * MiB, [[512 * K, 128 * K]], 43);
        const dev = attachLoop(image);
        try {
          const dst = join(d, 'copy.img');
          const { summary } = await sync(dev, dst);
          expectSameBytes(dst, image);
          expect(summary.bytesTotal).toBe(2 * MiB);
          expect(summary.bytesSent).toBe(128 * K);
          expect(allocatedBytes(dst)).toBeLessThanOrEqual(128 * K + 8 * K);
        } finally {
          detachLoop(dev);
        }
      });

      it('a device smaller than the source is refused before anything is written', async () => {
        await withLoop('dev-small', MiB, 44, async (dev, image, d) => {
          const src = join(d, 'source.bin');
          writeSeededFile(src, MiB + 1, 45);
          const before = sha256File(image);
          const err = (await sync(src, dev).catch((e: unknown) => e)) as PdcError;
          expect(err.code).toBe('TARGET_DEVICE_TOO_SMALL');
          expect(sha256File(image)).toBe(before);
        });
      });

      it('--atomic with a device is a usage error', async () => {
        await withLoop('dev-atomic', MiB, 46, async (dev, image, d) => {
          const src = join(d, 'source.bin');
          writeSeededFile(src, 4096, 47);
          const before = sha256File(image);
          const err = (await sync(src, dev, { atomic: true }).catch((e: unknown) => e)) as PdcError;
          expect(err.code).toBe('USAGE');
          expect(sha256File(image)).toBe(before);
        });
      });

      it('a device held open exclusively is refused unless forced', async () => {
        await withLoop('dev-busy', MiB, 48, async (dev, image, d) => {
          const src = join(d, 'source.bin');
          writeSeededFile(src, 64 * K, 49);
          const before = sha256File(image);
          // O_EXCL on a block device claims it, as a mount or LVM does.
          const claim = openSync(dev, constants.O_RDONLY | constants.O_EXCL);
          try {
            const err = (await sync(src, dev).catch((e: unknown) => e)) as PdcError;
            expect(err.code).toBe('TARGET_DEVICE_IN_USE');
            expect(sha256File(image)).toBe(before);
            const asSource = (await sync(dev, join(d, 'out.bin')).catch((e: unknown) => e)) as PdcError;
            expect(asSource.code).toBe('SOURCE_DEVICE_IN_USE');
            const { summary } = await sync(src, dev, { forceDevice: true });
            expect(summary.targetDevice).toBe(true);
          } finally {
            closeSync(claim);
          }
          expectSamePrefix(dev, src, 64 * K);
        });
      });
    });
  });
}
