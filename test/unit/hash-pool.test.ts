import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { seededBytes } from '../../src/benchmark/seeded.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { createBlockHasher } from '../../src/hash/methods.js';
import type { WorkerFile } from '../../src/hash/worker-messages.js';
import { HashPool } from '../../src/hosts/hash-pool.js';

const MiB = 1024 * 1024;
const dirs: string[] = [];
const fds: number[] = [];
afterEach(() => {
  for (const fd of fds.splice(0)) fs.closeSync(fd);
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

/** A file of `size` seeded bytes, held open here as the engine holds its files; the worker opens it through /proc/self/fd. */
function heldFile(seed: number, size: number): { file: WorkerFile; bytes: Buffer; real: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pdc-pool-'));
  dirs.push(dir);
  const real = path.join(dir, `f${seed}`);
  const bytes = seededBytes(seed, size);
  fs.writeFileSync(real, bytes);
  const fd = fs.openSync(real, 'r');
  fds.push(fd);
  const st = fs.fstatSync(fd);
  return { file: { path: `/proc/self/fd/${fd}`, name: real, dev: st.dev, ino: st.ino }, bytes, real };
}

/** How many descriptors of this process point at `real`. */
function openCount(real: string): number {
  let n = 0;
  for (const d of fs.readdirSync('/proc/self/fd')) {
    try {
      if (fs.readlinkSync(`/proc/self/fd/${d}`) === real) n++;
    } catch {
      // a descriptor that closed while we looked
    }
  }
  return n;
}

async function expectedDigests(bytes: Buffer, blockSize: number): Promise<Buffer> {
  const h = await createBlockHasher('xxh64');
  const out: Uint8Array[] = [];
  for (let at = 0; at < bytes.length; at += blockSize) out.push(h(bytes.subarray(at, Math.min(bytes.length, at + blockSize))));
  return Buffer.concat(out);
}

describe('HashPool', () => {
  it('hashes ranges of the held file right, keeps it open between jobs, and closes it when the pool closes', async () => {
    const { file, bytes, real } = heldFile(1, 8 * MiB);
    const pool = new HashPool(2);
    const want = await expectedDigests(bytes, MiB);
    const got = await Promise.all(
      Array.from({ length: 8 }, (_, i) => pool.run({ kind: 'hash', file, role: 'source', range: { first: i, count: 1, blockSize: MiB, limit: bytes.length }, method: 'xxh64' })),
    );
    expect(Buffer.concat(got).equals(want)).toBe(true);
    // Ours, plus at most one per worker kept for the next job.
    expect(openCount(real)).toBeGreaterThan(1);
    expect(openCount(real)).toBeLessThanOrEqual(3);
    await pool.close();
    expect(openCount(real)).toBe(1);
  });

  it('closes the kept file after a short idle time, and when a job names another file', async () => {
    const a = heldFile(2, 2 * MiB);
    const b = heldFile(3, 2 * MiB);
    const pool = new HashPool(1);
    try {
      const range = { first: 0, count: 2, blockSize: MiB, limit: 2 * MiB };
      expect((await pool.run({ kind: 'hash', file: a.file, role: 'source', range, method: 'xxh64' })).equals(await expectedDigests(a.bytes, MiB))).toBe(true);
      expect(openCount(a.real)).toBe(2);
      expect((await pool.run({ kind: 'hash', file: b.file, role: 'target', range, method: 'xxh64' })).equals(await expectedDigests(b.bytes, MiB))).toBe(true);
      expect(openCount(a.real)).toBe(1);
      expect(openCount(b.real)).toBe(2);
      await new Promise((r) => setTimeout(r, 300));
      expect(openCount(b.real)).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('never hashes another file behind the same descriptor number: a changed identity is TARGET_CHANGED', async () => {
    const a = heldFile(4, MiB);
    const b = heldFile(5, MiB);
    const pool = new HashPool(1);
    try {
      const range = { first: 0, count: 1, blockSize: MiB, limit: MiB };
      await pool.run({ kind: 'hash', file: a.file, role: 'target', range, method: 'xxh64' });
      // The same path (a's descriptor) claimed to be b: refused, even though a is kept open.
      const wrong: WorkerFile = { ...a.file, dev: b.file.dev, ino: b.file.ino };
      const err = await pool.run({ kind: 'hash', file: wrong, role: 'target', range, method: 'xxh64' }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(PdcError);
      expect((err as PdcError).code).toBe('TARGET_CHANGED');
      expect(openCount(a.real)).toBe(1);
    } finally {
      await pool.close();
    }
  });
});
