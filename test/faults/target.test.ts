/**
 * Fault matrix, file side, against a real sshd: target file system full,
 * read-only target, missing parent (created) or a parent that is a file, the source
 * changing during the copy, and two runs writing the same target at once.
 *
 * Mounts (tmpfs) need root; CI runs as root. Without root those cases are skipped
 * with the reason printed, never silently.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, closeSync, copyFileSync, existsSync, mkdirSync, openSync, readSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import {
  agentPids,
  type CliResult,
  expectCleanError,
  jsonOf,
  killAllClis,
  runCli,
  signal,
  spawnCli,
  waitFor,
} from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { OutcomeTable, waitForProgress } from './fault-helpers.js';

const MiB = 1024 * 1024;
/** Long enough over the test sshd (several seconds) to act while it runs. */
const BIG = 64 * MiB + 999;
/** Larger than the 8 MiB tmpfs. */
const MEDIUM = 32 * MiB + 17;

const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('target faults: not root, so the tmpfs cases (no space, read-only) are SKIPPED: mount needs root');

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let big: string;
let medium: string;
const mounts: string[] = [];
const table = new OutcomeTable('target and source faults');

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-faults-target-'));
  home = join(dir, 'home');
  mkdirSync(home);
  big = join(dir, 'big.bin');
  medium = join(dir, 'medium.bin');
  writeSeededFile(big, BIG, 7);
  writeSeededFile(medium, MEDIUM, 8);
});

afterEach(() => {
  killAllClis();
  unmountAll();
});

afterAll(async () => {
  killAllClis();
  unmountAll();
  for (const pid of agentPids(sshd?.pid ?? -1)) signal(pid, 'SIGKILL');
  await sshd?.stop();
  cleanup?.();
  table.print();
});

function mountTmpfs(path: string, options: string): void {
  mkdirSync(path, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path]);
  mounts.push(path);
}

function unmountAll(): void {
  for (const m of mounts.splice(0).reverse()) {
    try {
      execFileSync('umount', ['-l', m], { stdio: 'ignore' });
    } catch {
      /* already gone */
    }
  }
}

const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;

async function cli(label: string, args: string[], timeoutMs = 60_000): Promise<CliResult> {
  const r = await runCli(args, { home, timeoutMs });
  table.add(label, r);
  return r;
}

describe.skipIf(!isRoot)('target file system full (8 MiB tmpfs)', () => {
  for (const direction of ['push', 'pull'] as const) {
    it(`${direction}: exit 4 TARGET_NO_SPACE before writing anything; after freeing space the rerun copies it`, async () => {
      const mnt = join(dir, `full-${direction}`);
      mountTmpfs(mnt, 'size=8m');
      const dst = join(mnt, 'sub', 'target.bin');
      const args = direction === 'push' ? [...ssh(), medium, remote(dst)] : [...ssh(), remote(medium), dst];
      const r = await cli(`no space (${direction})`, ['--json', ...args]);
      expectCleanError(r, EXIT_CODES.target, /not enough free space/);
      expect(jsonOf(r).error.code).toBe('TARGET_NO_SPACE');
      expect(r.ms).toBeLessThan(30_000);
      expect(existsSync(dst)).toBe(false); // the free-space check came first (test/faults/free-space.test.ts)
      // Free space: grow the file system, then rerun.
      execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
      const re = await cli(`no space (${direction}): rerun after remount,size=64m`, ['--json', ...args]);
      expect(re.code, re.stderr).toBe(0);
      expectSameBytes(dst, medium);
      expect(jsonOf(re).bytesSent).toBe(MEDIUM);
    }, 120_000);
  }
});

describe.skipIf(!isRoot)('read-only target (tmpfs mounted ro)', () => {
  it('a new file on a read-only file system: exit 4 TARGET_PERMISSION', async () => {
    const mnt = join(dir, 'ro-new');
    mountTmpfs(mnt, 'ro,size=1m');
    const r = await cli('read-only fs, new target (push)', ['--json', ...ssh(), medium, remote(join(mnt, 'sub', 'target.bin'))]);
    expectCleanError(r, EXIT_CODES.target, /read-only|permission/);
    expect(jsonOf(r).error.code).toBe('TARGET_PERMISSION');
  }, 60_000);

  it('an existing file on a file system remounted read-only: exit 4, the file is untouched', async () => {
    const mnt = join(dir, 'ro-existing');
    mountTmpfs(mnt, 'size=40m');
    const dst = join(mnt, 'target.bin');
    writeSeededFile(dst, MEDIUM, 99);
    const before = sha256File(dst);
    execFileSync('mount', ['-o', 'remount,ro', mnt]);
    for (const direction of ['push', 'pull'] as const) {
      const args = direction === 'push' ? [...ssh(), medium, remote(dst)] : [...ssh(), remote(medium), dst];
      const r = await cli(`read-only fs, existing target (${direction})`, ['--json', ...args]);
      expectCleanError(r, EXIT_CODES.target, /read-only|permission/);
      expect(jsonOf(r).error.code).toBe('TARGET_PERMISSION');
    }
    expect(sha256File(dst)).toBe(before);
  }, 60_000);
});

describe('target parent directories', () => {
  it('missing parents are created', async () => {
    const dst = join(dir, 'p1', 'p2 with space', 'p3', 'target.bin');
    const r = await cli('missing parents (push)', ['--json', ...ssh(), medium, remote(dst)]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).targetCreated).toBe(true);
    expect(statSync(join(dir, 'p1', 'p2 with space', 'p3')).isDirectory()).toBe(true);
    expectSameBytes(dst, medium);
  }, 60_000);

  for (const direction of ['push', 'pull'] as const) {
    it(`a parent that is a regular file: exit 4 (${direction}), the file is untouched`, async () => {
      const file = join(dir, `parent-is-file-${direction}.txt`);
      writeFileSync(file, 'not a directory\n');
      const dst = join(file, 'target.bin');
      const args = direction === 'push' ? [...ssh(), medium, remote(dst)] : [...ssh(), remote(medium), dst];
      const r = await cli(`parent is a file (${direction})`, ['--json', ...args]);
      expectCleanError(r, EXIT_CODES.target, /not a directory/);
      expect(jsonOf(r).error.code).toBe('TARGET_PARENT_MISSING');
      expect(statSync(file).isFile()).toBe(true);
    }, 60_000);
  }
});

/** The first `bytes` of a file (for watching a target fill up in order). */
function sha256Prefix(path: string, bytes: number): string {
  const buf = Buffer.alloc(bytes);
  const fd = openSync(path, 'r');
  try {
    return createHash('sha256').update(buf.subarray(0, readSync(fd, buf, 0, bytes, 0))).digest('hex');
  } finally {
    closeSync(fd);
  }
}

describe('the source changes while it is copied', () => {
  for (const change of ['append', 'rewrite'] as const) {
    it(`${change} during a push: exit 3 SOURCE_CHANGED, never success`, async () => {
      const src = join(dir, `changing-${change}.bin`);
      copyFileSync(big, src);
      const dst = join(dir, `changing-${change}-target.bin`);
      const run = spawnCli(['--json', ...ssh(), src, remote(dst)], { home, timeoutMs: 90_000 });
      await waitForProgress(dst, BIG / 4, 60_000, run);
      if (change === 'append') appendFileSync(src, Buffer.alloc(MiB, 1));
      // rewrite: block 0 has been sent already (the target has a quarter of the file); same size.
      else mutateBlocks(src, MiB, [0], 1234);
      const r = await run.done;
      table.add(`source ${change === 'append' ? 'appended' : 'rewritten'} during the copy`, r);
      expectCleanError(r, EXIT_CODES.source, /changed during the copy/);
      expect(jsonOf(r).error.code).toBe('SOURCE_CHANGED');
      // The source now is stable: a rerun makes the target identical to it.
      const re = await cli(`source ${change === 'append' ? 'appended' : 'rewritten'}: rerun`, ['--json', ...ssh(), src, remote(dst)], 90_000);
      expect(re.code, re.stderr).toBe(0);
      expectSameBytes(dst, src);
      rmSync(src);
    }, 150_000);
  }

  it('rewrite during a -W (whole-file) push: exit 3 SOURCE_CHANGED, not a verification failure', async () => {
    const src = join(dir, 'changing-whole-file.bin');
    copyFileSync(big, src);
    const dst = join(dir, 'changing-whole-file-target.bin');
    writeSeededFile(dst, BIG, 77);
    const run = spawnCli(['--json', '-W', ...ssh(), src, remote(dst)], { home, timeoutMs: 90_000 });
    // -W rewrites every block of the existing target in order: wait until block 0 has been
    // sent (the target's first MiB holds the source's bytes), then rewrite block 0 in the source.
    await waitFor(() => sha256Prefix(dst, MiB) === sha256Prefix(src, MiB) || run.child.exitCode !== null, 60_000, 25);
    expect(run.child.exitCode, `run ended before block 0 was sent: ${run.stderr()}`).toBe(null);
    mutateBlocks(src, MiB, [0], 4321);
    const r = await run.done;
    table.add('source rewritten during a -W copy', r);
    expectCleanError(r, EXIT_CODES.source, /changed during the copy/);
    expect(jsonOf(r).error.code).toBe('SOURCE_CHANGED');
    const re = await cli('source rewritten during -W: rerun', ['--json', '-W', ...ssh(), src, remote(dst)], 90_000);
    expect(re.code, re.stderr).toBe(0);
    expectSameBytes(dst, src);
    rmSync(src);
  }, 150_000);
});

describe('two runs writing the same target', () => {
  for (const second of ['ssh', 'local'] as const) {
    it(`the second (${second}) fails with TARGET_LOCKED while the first completes`, async () => {
      const dst = join(dir, `locked-${second}.bin`);
      const first = spawnCli(['--json', ...ssh(), big, remote(dst)], { home, timeoutMs: 90_000 });
      await waitForProgress(dst, 8 * MiB, 60_000, first);
      // A second run needs 1.5-3 s to start on 2 cores, by which time the first may be done:
      // pause the first's client so the two surely overlap. Its agent (holding the lock) lives on.
      signal(first.pid, 'SIGSTOP');
      try {
        const args = second === 'ssh' ? [...ssh(), medium, remote(dst)] : [medium, dst];
        const r = await cli(`second run on a locked target (${second})`, ['--json', ...args]);
        expectCleanError(r, EXIT_CODES.target, /being written by another pdiffcopy run/);
        expect(jsonOf(r).error.code).toBe('TARGET_LOCKED');
        expect(r.ms).toBeLessThan(15_000);
      } finally {
        signal(first.pid, 'SIGCONT');
      }
      const r1 = await first.done;
      table.add(`first run holding the lock (${second})`, r1);
      expect(r1.code, r1.stderr).toBe(0);
      expect(jsonOf(r1).bytesSent).toBe(BIG);
      expectSameBytes(dst, big);
    }, 150_000);
  }
});
