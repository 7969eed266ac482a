/**
 * --sparse on one file: zeros inside an existing file become a hole through fallocate(1)
 * on our own descriptor, and are written as zeros where that cannot be done.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileService } from '../../src/fileops/file-service.js';
import { findFallocate, punchHole } from '../../src/fileops/punch-hole.js';
import { tempDir } from '../support/files.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());
const MiB = 1024 * 1024;
const allocated = (p: string) => statSync(p).blocks * 512;

/** A 4 MiB file of 0xab bytes, opened as a target by a FileService looking for fallocate in `paths`. */
async function target(name: string, paths?: string[]): Promise<{ path: string; files: FileService }> {
  const path = join(dir, name);
  writeFileSync(path, Buffer.alloc(4 * MiB, 0xab));
  const files = new FileService(paths);
  await files.open({ path, role: 'target', create: true, lock: false });
  return { path, files };
}

function expectZerosAt(path: string, offset: number, length: number): void {
  const bytes = readFileSync(path);
  expect(bytes.length).toBe(4 * MiB);
  expect(bytes.subarray(offset, offset + length).every((b) => b === 0)).toBe(true);
  expect(bytes.subarray(0, offset).every((b) => b === 0xab)).toBe(true);
  expect(bytes.subarray(offset + length).every((b) => b === 0xab)).toBe(true);
}

describe.runIf(findFallocate() !== undefined)('with fallocate(1)', () => {
  it('punches the range: zeros there, the rest and the size kept, the blocks freed', async () => {
    const { path, files } = await target('punched.bin');
    const before = allocated(path);
    await expect(files.zero(MiB, 2 * MiB, true)).resolves.toBe(true);
    await files.close();
    expectZerosAt(path, MiB, 2 * MiB);
    expect(before - allocated(path)).toBe(2 * MiB);
  });

  it('without punch, zeros are written (allocated)', async () => {
    const { path, files } = await target('written.bin');
    await expect(files.zero(MiB, 2 * MiB)).resolves.toBe(false);
    await files.close();
    expectZerosAt(path, MiB, 2 * MiB);
    expect(allocated(path)).toBeGreaterThanOrEqual(4 * MiB);
  });

  it('a program that fails (as on a file system that cannot punch) leaves the file as it was', async () => {
    const { path, files } = await target('failing.bin');
    await expect(punchHole('/bin/false', 0, MiB, MiB)).resolves.toBe(false);
    await files.close();
    expect(readFileSync(path).every((b) => b === 0xab)).toBe(true);
  });
});

it('no fallocate(1): the zeros are written instead, and reported as not punched', async () => {
  const { path, files } = await target('fallback.bin', [join(dir, 'no-such-fallocate')]);
  await expect(files.zero(MiB, 2 * MiB, true)).resolves.toBe(false);
  await expect(files.zero(MiB, 4096, true)).resolves.toBe(false);
  await files.close();
  expectZerosAt(path, MiB, 2 * MiB);
  expect(allocated(path)).toBeGreaterThanOrEqual(4 * MiB);
  await expect(punchHole(join(dir, 'no-such-fallocate'), 0, 0, 1)).resolves.toBe(false);
});
