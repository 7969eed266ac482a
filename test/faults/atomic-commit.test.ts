/**
 * --atomic running out of space, with the real CLI: the temp file is kept for the next
 * run, and the error says where it is, how big, and how to remove it. The up-front free
 * space check would refuse this run before it starts, so the target side is an agent on
 * Node 12 (no fs.statfs: the check is skipped there), which reaches the disk-full path.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { jsonOf, killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';

const MiB = 1024 * 1024;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('atomic commit faults: not root, so the tmpfs case (no space) is SKIPPED: mount needs root');

let dir: string;
let cleanup: () => void;
let home: string;
const mounts: string[] = [];

let sshd: TestSshd;
const node12 = join(process.cwd(), '.cache/node12/bin/node');

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('pdc-atomic-commit-'));
  home = join(dir, 'home');
  mkdirSync(home);
  sshd = await startSshd();
}, 60_000);

afterEach(() => {
  killAllClis();
  for (const m of mounts.splice(0).reverse()) execFileSync('umount', ['-l', m], { stdio: 'ignore' });
});

afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

describe.skipIf(!isRoot)('--atomic runs out of space (tmpfs)', () => {
  it('exit 4 TARGET_NO_SPACE naming the kept temp file, its size and how to remove it; the old target is intact', async () => {
    const mnt = join(dir, 'small');
    mkdirSync(mnt);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=8m', 'tmpfs', mnt]);
    mounts.push(mnt);
    const src = join(dir, 'nospace-source.bin');
    writeSeededFile(src, 6 * MiB, 33);
    const dst = join(mnt, 'target.bin');
    writeSeededFile(dst, 3 * MiB, 34);
    const old = sha256File(dst);
    const push = ['-F', sshd.sshConfig, '--remote-node', node12, '--atomic', '--json', src, `${sshd.alias}:${dst}`];
    const r = await runCli(push, { home, timeoutMs: 60_000 });
    expect(r.code, r.stderr).toBe(EXIT_CODES.target);
    const err = jsonOf(r).error as { code: string; message: string };
    expect(err.code).toBe('TARGET_NO_SPACE');
    const temp = join(mnt, '.target.bin.pdiffcopy-tmp');
    expect(existsSync(temp), 'the partly built temp file is kept').toBe(true);
    const size = lstatSync(temp).size;
    expect(err.message).toContain(`the partly built new version ${temp} (`);
    expect(err.message).toContain(`rm ${temp}`);
    const named = Number(/\((\d+) bytes\)/.exec(err.message)?.[1]);
    expect(named).toBeGreaterThan(0);
    expect(named).toBeLessThanOrEqual(size);
    expect(sha256File(dst), 'old target intact').toBe(old);

    // With room, the next run takes the temp file over, finishes, and leaves none behind.
    execFileSync('mount', ['-o', 'remount,size=64m', mnt]);
    const re = await runCli(push, { home, timeoutMs: 60_000 });
    expect(re.code, re.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(readdirSync(mnt)).toEqual(['target.bin']);
  }, 60_000);
});
