/**
 * Errors about a path belong to the side the path is on: a target that this user
 * may not reach, a name too long or a path over PATH_MAX are TARGET_* (exit 4) for
 * the target and SOURCE_* (exit 3) for the source, locally (target served by a
 * local agent) and over a real sshd (push and pull), never PROTOCOL_ERROR (exit 6).
 *
 * The permission cases run as an unprivileged user (uid/gid 65534): the CLI itself
 * locally; over SSH the CLI and the remote agent (sshd logs in as the test's user,
 * root, and the agent drops to 65534 through a --remote-node wrapper, as a non-root
 * login would run it). Needs root to switch users; skipped with the reason otherwise.
 */
import { chmodSync, chownSync, copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { type CliResult, expectCleanError, jsonOf, killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;
if (!isRoot) console.log('side errors: not root, so the unprivileged-user cases are SKIPPED: switching users needs root');

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let nobodyHome: string;
let nobodyConfig: string;
let dropNode: string;
let src: string;
let rootOnly: string;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-side-errors-'));
  chmodSync(dir, 0o755); // the unprivileged user reads the source here
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  writeSeededFile(src, 300_000, 41);
  chmodSync(src, 0o644);
  rootOnly = join(dir, 'root-only');
  mkdirSync(rootOnly, { mode: 0o700 });

  // The unprivileged user's own home with a copy of the client key, known_hosts and ssh_config.
  nobodyHome = join(dir, 'nobody-home');
  mkdirSync(nobodyHome, { mode: 0o700 });
  copyFileSync(sshd.clientKey, join(nobodyHome, 'id'));
  copyFileSync(sshd.knownHosts, join(nobodyHome, 'known_hosts'));
  nobodyConfig = join(nobodyHome, 'ssh_config');
  writeFileSync(
    nobodyConfig,
    readFileSync(sshd.sshConfig, 'utf8').replace(sshd.clientKey, join(nobodyHome, 'id')).replace(sshd.knownHosts, join(nobodyHome, 'known_hosts')),
  );
  for (const f of [nobodyHome, ...readdirSync(nobodyHome).map((n) => join(nobodyHome, n))]) chownSync(f, NOBODY, NOBODY);

  // The remote agent as the unprivileged user: what a non-root login runs.
  dropNode = join(dir, 'node-as-nobody');
  writeFileSync(dropNode, `#!/bin/sh\nexec setpriv --reuid=${NOBODY} --regid=${NOBODY} --clear-groups ${process.execPath} "$@"\n`, { mode: 0o755 });
});

afterAll(async () => {
  killAllClis();
  await sshd?.stop();
  cleanup?.();
});

const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;

function cli(args: string[], asNobody = false): Promise<CliResult> {
  return runCli(['--json', ...args], asNobody ? { home: nobodyHome, uid: NOBODY, gid: NOBODY, timeoutMs: 60_000 } : { home, timeoutMs: 60_000 });
}

function expectSideError(r: CliResult, code: string, pattern?: RegExp): void {
  const side = code.startsWith('SOURCE_') ? EXIT_CODES.source : EXIT_CODES.target;
  expectCleanError(r, side, pattern);
  expect(jsonOf(r).error.code, r.stderr).toBe(code);
}

describe.skipIf(!isRoot)('a target this user may not reach (under a 0700 root directory)', () => {
  it('local, as uid 65534: TARGET_PERMISSION, exit 4, nothing created', async () => {
    const dst = join(rootOnly, 'target.bin');
    const r = await cli([src, dst], true);
    expectSideError(r, 'TARGET_PERMISSION', /target .*permission denied/);
    expect(readdirSync(rootOnly)).toEqual([]);
  }, 60_000);

  it('over ssh, CLI and remote agent as uid 65534 (push): TARGET_PERMISSION, exit 4, nothing created', async () => {
    const dst = join(rootOnly, 'target.bin');
    const r = await cli(['-F', nobodyConfig, '--remote-node', dropNode, src, remote(dst)], true);
    expectSideError(r, 'TARGET_PERMISSION', /target .*permission denied/);
    expect(readdirSync(rootOnly)).toEqual([]);
  }, 60_000);

  it('over ssh, remote agent as uid 65534 (pull from a source it may not read): SOURCE_PERMISSION, exit 3', async () => {
    const hidden = join(rootOnly, 'hidden.bin');
    copyFileSync(src, hidden);
    try {
      const dst = join(dir, 'pulled.bin');
      const r = await cli(['-F', nobodyConfig, '--remote-node', dropNode, remote(hidden), dst], true);
      expectSideError(r, 'SOURCE_PERMISSION', /source .*permission denied/);
      expect(existsSync(dst)).toBe(false);
    } finally {
      rmSync(hidden); // the other cases expect the directory empty
    }
  }, 60_000);

  it('the same unprivileged runs succeed where the user may write (the setup is not what fails)', async () => {
    const open = join(dir, 'open-dir');
    mkdirSync(open, { mode: 0o777 });
    chmodSync(open, 0o777);
    const local = await cli([src, join(open, 'local.bin')], true);
    expect(local.code, local.stderr).toBe(0);
    expectSameBytes(join(open, 'local.bin'), src);
    const pushed = await cli(['-F', nobodyConfig, '--remote-node', dropNode, src, remote(join(open, 'pushed.bin'))], true);
    expect(pushed.code, pushed.stderr).toBe(0);
    expectSameBytes(join(open, 'pushed.bin'), src);
  }, 60_000);
});

describe('a file name longer than NAME_MAX (315 bytes)', () => {
  const longName = () => join(dir, 'n'.repeat(315));
  it.each(['local', 'ssh'] as const)('as the target (%s): TARGET_PATH_TOO_LONG, exit 4, naming the limit', async (where) => {
    const r = await cli(where === 'local' ? [src, longName()] : [...ssh(), src, remote(longName())]);
    expectSideError(r, 'TARGET_PATH_TOO_LONG', /target .*path too long: a name in it is longer than 255 bytes/);
  }, 60_000);

  it.each(['local', 'ssh'] as const)('as the source (%s): SOURCE_PATH_TOO_LONG, exit 3', async (where) => {
    const dst = join(dir, `from-long-name-${where}.bin`);
    const r = await cli(where === 'local' ? [longName(), dst] : [...ssh(), remote(longName()), dst]);
    expectSideError(r, 'SOURCE_PATH_TOO_LONG', /source .*path too long/);
    expect(existsSync(dst)).toBe(false);
  }, 60_000);
});

describe('a path over PATH_MAX (4096 bytes)', () => {
  // 2050 nested two-byte components: 4100+ bytes, each name short.
  const deep = () => join(dir, 'd/'.repeat(2050) + 'file.bin');
  it.each(['local', 'ssh'] as const)('as the target (%s): TARGET_PATH_TOO_LONG, exit 4, naming 4095 bytes', async (where) => {
    const r = await cli(where === 'local' ? [src, deep()] : [...ssh(), src, remote(deep())]);
    expectSideError(r, 'TARGET_PATH_TOO_LONG', new RegExp(`target .*path too long: the path has ${Buffer.byteLength(deep())} bytes, Linux allows at most 4095`));
    expect(existsSync(join(dir, 'd'))).toBe(false);
  }, 60_000);

  it.each(['local', 'ssh'] as const)('as the source (%s): SOURCE_PATH_TOO_LONG, exit 3', async (where) => {
    const dst = join(dir, `from-deep-${where}.bin`);
    const r = await cli(where === 'local' ? [deep(), dst] : [...ssh(), remote(deep()), dst]);
    expectSideError(r, 'SOURCE_PATH_TOO_LONG', new RegExp(`source .*path too long: the path has ${Buffer.byteLength(deep())} bytes, Linux allows at most 4095`));
    expect(existsSync(dst)).toBe(false);
  }, 60_000);
});
