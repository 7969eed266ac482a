import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { seededBytes } from '../../src/benchmark/seeded.js';
import { closeSync, ftruncateSync, mkdtempSync, openSync, readSync, rmSync, writeSync, existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';

export { seededBytes, pickBlocks } from '../../src/benchmark/seeded.js';
export { seededRandom as rng } from '../../src/benchmark/seeded.js';

export function writeSeededFile(path: string, size: number, seed: number): void {
  const fd = openSync(path, 'w');
  const chunk = 4 << 20;
  for (let off = 0; off < size; off += chunk) {
    const n = Math.min(chunk, size - off);
    writeSync(fd, seededBytes(seed, n, off), 0, n, off);
  }
  closeSync(fd);
}

/** Overwrite `blocks` (indices) of `blockSize` in place with other seeded bytes. */
export function mutateBlocks(path: string, blockSize: number, blocks: number[], seed: number): void {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  for (const b of blocks) {
    const off = b * blockSize;
    const n = Math.min(blockSize, size - off);
    if (n > 0) writeSync(fd, seededBytes(seed + b + 1, n), 0, n, off);
  }
  closeSync(fd);
}

export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4 << 20);
  let pos = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, buf.length, pos);
    if (n === 0) break;
    h.update(buf.subarray(0, n));
    pos += n;
  }
  closeSync(fd);
  return h.digest('hex');
}

/** Byte-for-byte comparison of two files, reporting the first differing offset. */
export function expectSameBytes(actual: string, expected: string): void {
  expect(existsSync(actual), `${actual} exists`).toBe(true);
  const sa = statSync(actual).size;
  const sb = statSync(expected).size;
  expect(sa, 'target size').toBe(sb);
  const fa = openSync(actual, 'r');
  const fb = openSync(expected, 'r');
  const ba = Buffer.allocUnsafe(4 << 20);
  const bb = Buffer.allocUnsafe(4 << 20);
  try {
    for (let pos = 0; pos < sa; ) {
      const na = readSync(fa, ba, 0, ba.length, pos);
      const nb = readSync(fb, bb, 0, bb.length, pos);
      expect(na).toBe(nb);
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) {
        let i = 0;
        while (ba[i] === bb[i]) i++;
        expect.fail(`files differ at byte ${pos + i}`);
      }
      pos += na;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

export function tempDir(prefix = 'pdc-test-'): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A sparse file of `size` bytes: seeded data at each [offset, length] of `data`, holes
 * elsewhere (ftruncate, never written); `zeros` ranges are written as explicit zero bytes (allocated).
 */
export function writeSparseFile(path: string, size: number, data: Array<[number, number]>, seed: number, zeros: Array<[number, number]> = []): void {
  const fd = openSync(path, 'w');
  try {
    for (const [off, len] of data) writeSync(fd, seededBytes(seed + off, len), 0, len, off);
    for (const [off, len] of zeros) writeSync(fd, Buffer.alloc(len), 0, len, off);
    ftruncateSync(fd, size);
  } finally {
    closeSync(fd);
  }
}

/** Bytes the file system allocated for the file (st_blocks is in 512-byte units). */
export function allocatedBytes(path: string): number {
  return statSync(path).blocks * 512;
}

/** Loop devices need root (CI runs as root); elsewhere the device tests are skipped. */
export const canLoop = process.getuid?.() === 0 && existsSync('/dev/loop-control');

/** Attach `file` to a free loop device; returns its path (detach with detachLoop). */
export function attachLoop(file: string): string {
  return execFileSync('losetup', ['-f', '--show', file], { encoding: 'utf8' }).trim();
}

export function detachLoop(dev: string | undefined): void {
  if (dev) execFileSync('losetup', ['-d', dev]);
}

/** The first `length` bytes of two files or devices are equal (a device's stat size is 0: compare by reading). */
export function expectSamePrefix(actual: string, expected: string, length: number): void {
  const fa = openSync(actual, 'r');
  const fb = openSync(expected, 'r');
  const ba = Buffer.allocUnsafe(4 << 20);
  const bb = Buffer.allocUnsafe(4 << 20);
  try {
    for (let pos = 0; pos < length; ) {
      const want = Math.min(ba.length, length - pos);
      const na = readSync(fa, ba, 0, want, pos);
      const nb = readSync(fb, bb, 0, want, pos);
      expect(na, `bytes at ${pos}`).toBe(want);
      expect(nb, `bytes at ${pos}`).toBe(want);
      if (!ba.subarray(0, na).equals(bb.subarray(0, nb))) expect.fail(`${actual} differs from ${expected} in [${pos}, ${pos + want})`);
      pos += want;
    }
  } finally {
    closeSync(fa);
    closeSync(fb);
  }
}

const TEXT_WORDS = 'order customer shipped pending paid refund invoice delivery warehouse north south blue red small large note'.split(' ');

/** Text from a small vocabulary (compresses about 3:1), seeded: what -z is for. */
export function textBytes(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  let x = seed >>> 0;
  for (let at = 0; at < size; ) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    at += out.write(`${TEXT_WORDS[(x >>> 8) % TEXT_WORDS.length]} ${(x >>> 4) % 9973} `, at);
  }
  return out;
}
