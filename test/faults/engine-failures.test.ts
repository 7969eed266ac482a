/**
 * Engine level (deterministic, no processes): a failure while chunks are
 * still being hashed and block transfers are queued must reject syncFile once, at
 * once, with that failure, and never leave an unhandled rejection behind. Before the
 * fix in src/engine/sync.ts the queued transfers' rejections were unhandled (the CLI
 * died with a stack trace and exit 1 on SIGINT, seen in the --atomic interrupt case)
 * and a failed write only surfaced after the whole file had been hashed.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/pdc-error.js';
import { syncFile } from '../../src/engine/sync.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import { chunkOf } from '../../src/fileops/buffer-pool.js';
import { piecesBytes, piecesDigests } from '../../src/protocol/ops.js';

const MiB = 1024 * 1024;
const SIZE = 256 * MiB; // 16 hash chunks of 16 MiB, 64 transfer runs of 4 MiB

let unhandled: unknown[] = [];
const onUnhandled = (e: unknown) => unhandled.push(e);
beforeEach(() => {
  unhandled = [];
  process.on('unhandledRejection', onUnhandled);
});
afterEach(() => {
  process.off('unhandledRejection', onUnhandled);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Fake {
  host: FileHost;
  /** Reject every call in flight (what closing a host does). */
  closeAll(err: PdcError): void;
}

/** An in-memory host: hash takes `hashMs` per chunk, write waits for `writeGate` or fails. */
function fakeHost(opts: { exists: boolean; hashMs: number; write?: (offset: number) => Promise<void> }): Fake {
  const pending = new Set<(e: PdcError) => void>();
  const block = <T>(p: Promise<T>) =>
    new Promise<T>((resolve, reject) => {
      pending.add(reject);
      p.then(resolve, reject).finally(() => pending.delete(reject));
    });
  const buf = Buffer.alloc(4 * MiB);
  const host: FileHost = {
    name: 'fake',
    machineId: `fake-${Math.random()}`,
    hashMethods: new Set(['xxh64']),
    parallelism: 4,
    display: (p) => p,
    join: (d, n) => `${d}/${n}`,
    stat: async () =>
      opts.exists
        ? { exists: true, kind: 'file', size: SIZE, mtimeMs: 1, dev: 1, ino: 1, mode: 0o644, symlink: false }
        : { exists: false, kind: 'missing', size: 0, mtimeMs: 0, dev: 0, ino: 0, mode: 0, symlink: false },
    open: async () => ({ size: opts.exists ? SIZE : 0, mtimeMs: 1, dev: 1, ino: 1, mode: 0o644, created: !opts.exists }),
    space: async () => ({ available: null }),
    hash: (range) => block(sleep(opts.hashMs).then(() => Buffer.alloc(range.count * 8, 0))),
    read: async (_offset, length) => chunkOf([buf.subarray(0, length)]),
    write: (offset) => block(opts.write ? opts.write(offset) : Promise.resolve()),
    zero: (offset) => block(opts.write ? opts.write(offset) : Promise.resolve()).then(() => false),
    hashPieces: async (ranges, grain) => Buffer.alloc(piecesDigests(ranges, grain) * 8, 0),
    readPieces: async (ranges) => chunkOf([Buffer.alloc(piecesBytes(ranges))]),
    writePieces: (ranges) => block(opts.write ? opts.write(ranges[0]!) : Promise.resolve()),
    truncate: async () => undefined,
    fsync: async () => undefined,
    digest: async () => Buffer.alloc(32),
    commit: async () => ({ removed: [] }),
    list: async () => ({ entries: [], more: false }),
    mkdir: async () => ({ created: false }),
    symlink: async () => ({ created: false }),
    setmeta: async () => undefined,
    remove: async () => ({ removed: 0 }),
    readFiles: async () => ({ files: [], data: [] }),
    writeFiles: async () => ({ files: [] }),
    close: async () => undefined,
  };
  return {
    host,
    closeAll(err) {
      for (const r of [...pending]) r(err);
      pending.clear();
    },
  };
}

const base = { blockSize: MiB, hashMethod: 'xxh64', wholeFile: false, dryRun: false, verify: false, concurrency: 4, emit: () => undefined };

it('a signal while hashing with transfers queued: one INTERRUPTED rejection, nothing unhandled', async () => {
  const src = fakeHost({ exists: true, hashMs: 30 });
  // Writes never finish by themselves: transfers pile up behind the transfer limit.
  const dst = fakeHost({ exists: false, hashMs: 0, write: () => new Promise(() => undefined) });
  const controller = new AbortController();
  const p = syncFile({ ...base, source: { host: src.host, path: '/s' }, target: { host: dst.host, path: '/t' }, signal: controller.signal });
  p.catch(() => undefined);
  await sleep(100); // a few chunks hashed, their transfers in flight or queued
  controller.abort();
  const err = new PdcError('INTERRUPTED', 'closed');
  src.closeAll(err);
  dst.closeAll(err);
  await expect(p).rejects.toMatchObject({ code: 'INTERRUPTED' });
  await sleep(300); // let the queued transfers run into the abort check
  expect(unhandled.map(String)).toEqual([]);
});

it('a failed write while hashing: the run fails at once with it, not after hashing the whole file', async () => {
  // 16 chunks at 4 in parallel x 250 ms: hashing alone would take about 1 s more.
  const src = fakeHost({ exists: true, hashMs: 250 });
  const dst = fakeHost({
    exists: false,
    hashMs: 0,
    write: async () => {
      throw new PdcError('TARGET_NO_SPACE', 'target /t: no space left on device');
    },
  });
  const t0 = Date.now();
  const p = syncFile({ ...base, source: { host: src.host, path: '/s' }, target: { host: dst.host, path: '/t' } });
  await expect(p).rejects.toMatchObject({ code: 'TARGET_NO_SPACE' });
  const ms = Date.now() - t0;
  expect(ms, 'failed promptly').toBeLessThan(700);
  src.closeAll(new PdcError('INTERRUPTED', 'closed'));
  await sleep(300);
  expect(unhandled.map(String)).toEqual([]);
});
