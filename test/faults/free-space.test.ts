/**
 * Free space is checked before anything is written, where the space a run needs is
 * known (plan.spaceNeeded): on a small tmpfs, a run that cannot fit fails with
 * TARGET_NO_SPACE (exit 4), the target unchanged and the file system not filled;
 * locally (target served by a local agent), pushed over a real sshd and pulled.
 * On a remote Node without fs.statfs (the Node 12 agent) the check is skipped and
 * -v says so.
 *
 * Mounts need root; CI runs as root. Without root these cases are skipped with the
 * reason printed, never silently.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { type CliResult, expectCleanError, jsonOf, killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('free space: not root, so every case is SKIPPED: mounting a tmpfs needs root');
const node12 = join(process.cwd(), '.cache/node12/bin/node');

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let big: string;
const mounts: string[] = [];

beforeAll(async () => {
  if (!isRoot) return;
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-free-space-'));
  home = join(dir, 'home');
  mkdirSync(home);
  big = join(dir, 'big.bin');
  writeSeededFile(big, 12 * MiB + 17, 61);
});

afterEach(() => {
  killAllClis();
  unmountAll();
});

afterAll(async () => {
  killAllClis();
  unmountAll();
  await sshd?.stop();
  cleanup?.();
});

/** An 8 MiB tmpfs, unmounted after each test. */
function smallFs(name: string): string {
  const mnt = join(dir, name);
  mkdirSync(mnt, { recursive: true });
  execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
  mounts.push(mnt);
  return mnt;
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

const free = (path: string) => statfsSync(path).bavail * statfsSync(path).bsize;
const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;
type Direction = 'local' | 'push' | 'pull';
const DIRECTIONS: Direction[] = ['local', 'push', 'pull'];

function args(direction: Direction, src: string, dst: string): string[] {
  if (direction === 'push') return [...ssh(), src, remote(dst)];
  if (direction === 'pull') return [...ssh(), remote(src), dst];
  return [src, dst];
}

function cli(argv: string[]): Promise<CliResult> {
  return runCli(argv, { home, timeoutMs: 90_000 });
}

describe.skipIf(!isRoot)('a run that cannot fit fails before writing anything (8 MiB tmpfs)', () => {
  it.each(DIRECTIONS)('%s, in place, growing an existing 2 MiB target to 12 MiB: TARGET_NO_SPACE, target and free space unchanged', async (direction) => {
    const mnt = smallFs(`grow-${direction}`);
    const dst = join(mnt, 'target.bin');
    writeSeededFile(dst, 2 * MiB, 62);
    const before = { sha: sha256File(dst), free: free(mnt) };
    const r = await cli(['--json', ...args(direction, big, dst)]);
    expectCleanError(r, EXIT_CODES.target, /not enough free space: the copy needs 10\.0 MiB/);
    expect(jsonOf(r).error.code).toBe('TARGET_NO_SPACE');
    expect(sha256File(dst)).toBe(before.sha);
    expect(free(mnt)).toBe(before.free);
  }, 120_000);

  it.each(DIRECTIONS)('%s, a new target: TARGET_NO_SPACE, nothing created (not even its directory)', async (direction) => {
    const mnt = smallFs(`new-${direction}`);
    const dst = join(mnt, 'sub', 'target.bin');
    const before = free(mnt);
    const r = await cli(['--json', ...args(direction, big, dst)]);
    expectCleanError(r, EXIT_CODES.target, /not enough free space/);
    expect(jsonOf(r).error.code).toBe('TARGET_NO_SPACE');
    expect(existsSync(join(mnt, 'sub'))).toBe(false);
    expect(free(mnt)).toBe(before);
  }, 120_000);

  it('--atomic needs a whole second copy: refused up front, while in place (no growth) then succeeds', async () => {
    const mnt = smallFs('atomic');
    const src = join(dir, 'five.bin');
    writeSeededFile(src, 5 * MiB, 63);
    const dst = join(mnt, 'target.bin');
    copyFileSync(src, dst);
    mutateBlocks(dst, MiB, [1, 3], 64);
    const before = { sha: sha256File(dst), free: free(mnt) };
    expect(before.free).toBeLessThan(5 * MiB);
    const atomic = await cli(['--json', '--atomic', ...args('push', src, dst)]);
    expectCleanError(atomic, EXIT_CODES.target, /not enough free space: the copy needs 5\.0 MiB/);
    expect(jsonOf(atomic).error.code).toBe('TARGET_NO_SPACE');
    expect(sha256File(dst)).toBe(before.sha);
    expect(free(mnt)).toBe(before.free);
    const inPlace = await cli(['--json', ...args('push', src, dst)]);
    expect(inPlace.code, inPlace.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(jsonOf(inPlace).bytesSent).toBe(2 * MiB);
  }, 120_000);

  it.each(DIRECTIONS)('%s: growth that fits is not refused (6 MiB target grown to 7 MiB)', async (direction) => {
    const mnt = smallFs(`fits-${direction}`);
    const src = join(dir, `seven-${direction}.bin`);
    writeSeededFile(src, 7 * MiB, 65);
    const dst = join(mnt, 'target.bin');
    writeSeededFile(dst, 6 * MiB, 65); // the same first 6 MiB
    const r = await cli(['--json', ...args(direction, src, dst)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(jsonOf(r).bytesSent).toBe(MiB);
  }, 120_000);
});

describe.skipIf(!isRoot || !existsSync(node12))('on the Node 12 agent (no fs.statfs)', () => {
  it('the check is skipped and -v says so; the full disk is still TARGET_NO_SPACE, exit 4', async () => {
    const mnt = smallFs('node12');
    const dst = join(mnt, 'target.bin');
    const r = await cli(['-v', '--no-progress', '--remote-node', node12, ...args('push', big, dst)]);
    expect(r.code, r.stderr).toBe(EXIT_CODES.target);
    expect(r.stderr).toMatch(/free space for .*target\.bin not checked: Node v12\.\d+\.\d+ has no fs\.statfs/);
    expect(r.stderr).toMatch(/pdiffcopy: error: .*no space left on device/);
    expect(r.stderr).not.toMatch(/^\s+at /m);
  }, 120_000);

  it('without -v nothing is said about it', async () => {
    const mnt = smallFs('node12-quiet');
    const src = join(dir, 'small.bin');
    writeSeededFile(src, MiB, 66);
    const dst = join(mnt, 'target.bin');
    const r = await cli(['--no-progress', '--remote-node', node12, ...args('push', src, dst)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(r.stderr).not.toMatch(/not checked/);
  }, 120_000);
});
