/**
 * Threat: a private source (0600: keys, database files) copied to a new target
 * became world-readable (0644), exposing it to every local user of the target host.
 * Rule: a new target gets the source's permission bits narrowed by the umask, as cp
 * and scp do (never wider, never setuid/setgid/sticky); an existing target keeps its
 * own mode. Checked locally (local agent writes) and over a real sshd, push and pull.
 */
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
/** The umask the CLI child and the sshd sessions inherit from this process. */
let umask: number;
let n = 0;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-mode-'));
  home = join(dir, 'home');
  mkdirSync(home);
  umask = parseInt(/^Umask:\s*([0-7]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))![1]!, 8);
});

afterEach(() => killAllClis());

afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

const modeOf = (path: string) => statSync(path).mode & 0o7777;

function sourceWithMode(mode: number): string {
  const path = join(dir, `src-${++n}.bin`);
  writeSeededFile(path, 3 * 1024 * 1024 + 5, n);
  chmodSync(path, mode);
  return path;
}

type Direction = 'local' | 'push' | 'pull';
const DIRECTIONS: Direction[] = ['local', 'push', 'pull'];

/** Copy src to a new target path in the given direction; returns the target's local path. */
async function copyNew(direction: Direction, src: string, extra: string[] = []): Promise<string> {
  const dst = join(dir, `dst-${++n}`, 'new.bin');
  const args =
    direction === 'local'
      ? [src, dst]
      : direction === 'push'
        ? ['-F', sshd.sshConfig, src, `${sshd.alias}:${dst}`]
        : ['-F', sshd.sshConfig, `${sshd.alias}:${src}`, dst];
  const r = await runCli(['--json', ...extra, ...args], { home });
  expect(r.code, r.stderr).toBe(0);
  expectSameBytes(dst, src);
  return dst;
}

describe.each(DIRECTIONS)('a new target (%s)', (direction) => {
  it('a 0600 source gives a 0600 target, not a world-readable one', async () => {
    const src = sourceWithMode(0o600);
    const dst = await copyNew(direction, src);
    expect(modeOf(dst).toString(8)).toBe((0o600 & ~umask).toString(8));
  });

  it('the umask narrows the source mode (0666 -> 0666 & ~umask)', async () => {
    const src = sourceWithMode(0o666);
    const dst = await copyNew(direction, src);
    expect(modeOf(dst).toString(8)).toBe((0o666 & ~umask).toString(8));
  });

  it('execute bits are kept; setuid is dropped', async () => {
    const src = sourceWithMode(0o4750);
    const dst = await copyNew(direction, src);
    expect(modeOf(dst).toString(8)).toBe((0o750 & ~umask).toString(8));
  });
  it('--atomic: the same rule (the temp file is 0600 while it is built, then gets the source mode minus the umask)', async () => {
    for (const [mode, want] of [
      [0o600, 0o600],
      [0o666, 0o666],
      [0o4750, 0o750],
    ]) {
      const dst = await copyNew(direction, sourceWithMode(mode!), ['--atomic']);
      expect(modeOf(dst).toString(8), `source ${mode!.toString(8)}`).toBe((want! & ~umask).toString(8));
    }
  });
});

describe.each(DIRECTIONS)('an existing target (%s)', (direction) => {
  it('keeps its own mode', async () => {
    const src = sourceWithMode(0o600);
    const dst = join(dir, `existing-${++n}.bin`);
    writeFileSync(dst, 'old contents');
    chmodSync(dst, 0o664);
    const args =
      direction === 'local'
        ? [src, dst]
        : direction === 'push'
          ? ['-F', sshd.sshConfig, src, `${sshd.alias}:${dst}`]
          : ['-F', sshd.sshConfig, `${sshd.alias}:${src}`, dst];
    const r = await runCli(args, { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(modeOf(dst).toString(8)).toBe('664');
  });
});

describe('the agent dispatcher', () => {
  it('creates a new target with the mode it is given, and refuses a mode out of range', async () => {
    const handle = createDispatcher();
    await handle('hello', { protocol: PROTOCOL_VERSION, client: 'test' }, undefined);
    const bad = join(dir, 'wire-bad.bin');
    await expect(handle('open', { path: bad, role: 'target', create: true, mode: 0o10000 }, undefined)).rejects.toMatchObject({
      code: 'PROTOCOL_ERROR',
    });
    expect(existsSync(bad)).toBe(false);
    const good = join(dir, 'wire-good.bin');
    await handle('open', { path: good, role: 'target', create: true, mode: 0o4640 }, undefined);
    await handle('close', {}, undefined);
    expect(modeOf(good).toString(8)).toBe((0o640 & ~umask).toString(8));
  });
});
