/**
 * Sparse files and block devices from the command line: the --json fields, the summary
 * line, the usage and in-use refusals (a mounted loop device), char devices and FIFOs.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCleanError, jsonOf, runCli } from '../support/cli-child.js';
import { allocatedBytes, attachLoop, canLoop, detachLoop, expectSameBytes, expectSamePrefix, sha256File, tempDir, writeSeededFile, writeSparseFile } from '../support/files.js';

const MiB = 1 << 20;

describe('pdiffcopy CLI: sparse files and devices', () => {
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir('pdc-sparse-cli-'));
    home = join(dir, 'home');
    mkdirSync(home);
  });
  afterAll(() => cleanup?.());

  it('--json reports zero runs apart from bytesSent; the summary line mentions them', async () => {
    const src = join(dir, 'sparse.img');
    const dst = join(dir, 'sparse-copy.img');
    writeSparseFile(src, 64 * MiB, [[8 * MiB, 2 * MiB]], 5);
    const r = await runCli(['--json', src, dst], { home });
    expect(r.code).toBe(0);
    expectSameBytes(dst, src);
    expect(jsonOf(r)).toMatchObject({ ok: true, bytesSent: 2 * MiB, blocksZero: 62, bytesZero: 62 * MiB, bytesHoles: 62 * MiB, targetDevice: false });
    expect(allocatedBytes(dst)).toBeLessThanOrEqual(2 * MiB + 64 * 1024);
    // The data at 8 MiB is gone from the source: inside the existing target it is written as zeros.
    writeSparseFile(src, 64 * MiB, [[40 * MiB, MiB]], 6);
    const plain = await runCli([src, dst], { home });
    expect(plain.code).toBe(0);
    expectSameBytes(dst, src);
    expect(plain.stderr).toMatch(/sent 1\.00 MiB \+ 2\.00 MiB of zeros as zero runs \(2 block\(s\)\)/);
  });

  it('--sparse turns zeros inside an existing target into holes; --atomic keeps them as holes too', async () => {
    const src = join(dir, 'punch-src.img');
    writeSparseFile(src, 16 * MiB, [[4 * MiB, MiB]], 9);
    for (const extra of [[], ['--atomic']]) {
      const dst = join(dir, `punch-dst${extra.length}.img`);
      writeSeededFile(dst, 16 * MiB, 10); // allocated data everywhere
      const r = await runCli(['--sparse', '--json', ...extra, src, dst], { home });
      expect(r.code).toBe(0);
      expectSameBytes(dst, src);
      expect(jsonOf(r)).toMatchObject({ bytesSent: MiB, bytesZero: 15 * MiB, bytesHoles: 15 * MiB });
      expect(allocatedBytes(dst)).toBeLessThanOrEqual(MiB + 64 * 1024);
    }
  });

  it('a character device or a FIFO stays refused', async () => {
    const r = await runCli(['/dev/null', join(dir, 'null-copy')], { home });
    expectCleanError(r, 3, /not a regular file or block device/);
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const w = await runCli([join(dir, 'sparse.img'), fifo], { home });
    expectCleanError(w, 4, /not a regular file/);
  });

  describe.runIf(canLoop)('loop devices', () => {
    it('--atomic with a device target is a usage error; without it the device is written', async () => {
      const image = join(dir, 'dev1.img');
      writeSeededFile(image, 8 * MiB, 7);
      const src = join(dir, 'dev1-src.img');
      writeSparseFile(src, 6 * MiB, [[MiB, MiB]], 8);
      const dev = attachLoop(image);
      try {
        const before = sha256File(image);
        const r = await runCli(['--atomic', src, dev], { home });
        expectCleanError(r, 2, /--atomic/);
        expect(sha256File(image)).toBe(before);
        const ok = await runCli(['--json', src, dev], { home });
        expect(ok.code).toBe(0);
        expectSamePrefix(dev, src, 6 * MiB);
        expect(jsonOf(ok)).toMatchObject({ targetDevice: true, bytesBeyondSource: 2 * MiB, bytesSent: MiB, bytesHoles: 0 });
        expect(statSync(image).size).toBe(8 * MiB);
      } finally {
        detachLoop(dev);
      }
    });

    it('a mounted device is refused as target and as source, unless --force-device (source)', async () => {
      const image = join(dir, 'fs.img');
      writeSeededFile(image, 0, 1);
      execFileSync('truncate', ['-s', '16M', image]);
      execFileSync('mkfs.ext4', ['-q', '-F', image]);
      const dev = attachLoop(image);
      const mnt = join(dir, 'mnt');
      mkdirSync(mnt);
      let mounted = false;
      try {
        execFileSync('mount', [dev, mnt]);
        mounted = true;
        const src = join(dir, 'small.img');
        writeSeededFile(src, MiB, 9);
        const before = sha256File(image);
        const r = await runCli([src, dev], { home });
        expectCleanError(r, 4, /in use \(mounted on /);
        expect(sha256File(image)).toBe(before);
        const s = await runCli([dev, join(dir, 'fs-copy.img')], { home });
        expectCleanError(s, 3, /in use/);
        const forced = await runCli(['--force-device', '--json', dev, join(dir, 'fs-copy.img')], { home });
        expect(forced.code).toBe(0);
        expect(jsonOf(forced).bytesTotal).toBe(16 * MiB);
      } finally {
        if (mounted) execFileSync('umount', [mnt]);
        rmdirSync(mnt);
        detachLoop(dev);
      }
    });
  });
});
