/**
 * How remote paths are read, against a real sshd, through the built CLI:
 * - `host:~/x`, `host:~user/x` and `ssh://host/~/x` name files in a home directory,
 *   as scp and rsync read them (not a directory literally called `~`);
 * - a missing directory before a `..` in the target path is an error, as for cp,
 *   and nothing is created (no stray `missing` directory).
 *
 * `~` needs a login whose home is not the real /root: the suite adds a throwaway
 * user (needs root, as the sshd harness does) whose home is in the test's temp dir,
 * and removes it afterwards.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { makeHome, pdcError } from '../ssh/helpers.js';
import { expectCleanError, jsonOf, killAllClis, REPO, runCli } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const isRoot = process.getuid?.() === 0;
const user = `pdcfo${randomBytes(3).toString('hex')}`;
let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let userHome: string;
let src: string;
let uid = -1;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-paths-cli-'));
  chmodSync(dir, 0o755); // the test user must reach its home inside
  home = makeHome(sshd, { knowHost: true });
  src = join(dir, 'source.bin');
  writeSeededFile(src, 2 * 1024 * 1024 + 11, 3);
  chmodSync(src, 0o644);
  userHome = join(dir, 'user-home');
  mkdirSync(userHome);
  if (isRoot) {
    // '*' (not '!'): sshd refuses a locked account, but key login needs no password.
    execFileSync('useradd', ['-M', '-N', '-g', 'nogroup', '-d', userHome, '-s', '/bin/sh', '-p', '*', user]);
    uid = +execFileSync('id', ['-u', user], { encoding: 'utf8' }).trim();
    chownSync(userHome, uid, 65534);
    // sshd reads authorized_keys as the user: let it through the harness's 0700 dir.
    chmodSync(sshd.dir, 0o711);
  }
});

afterEach(() => killAllClis());

afterAll(async () => {
  if (isRoot) execFileSync('userdel', [user], { stdio: 'ignore' });
  await sshd?.stop();
  cleanup?.();
});

/** -F: the harness's ssh_config (Host pdc-sshd with its key and known_hosts). */
const viaConfig = (...args: string[]) => runCli(['-F', sshd.sshConfig, '--json', ...args], { home });

function expectNoTildeDir(where: string): void {
  expect(readdirSync(where).filter((n) => n.startsWith('~'))).toEqual([]);
}

describe.skipIf(!isRoot)('~ on the remote side', () => {
  it('push to user@host:~/x lands in that login user\'s home', async () => {
    const r = await viaConfig(src, `${user}@${sshd.alias}:~/pushed.bin`);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(userHome, 'pushed.bin'), src);
    expectNoTildeDir(userHome);
  });

  it("a non-root login keeps its target lock in its own ~/.cache/pdiffcopy/locks (0700), released after", async () => {
    const r = await viaConfig(src, `${user}@${sshd.alias}:~/locked.bin`);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(userHome, 'locked.bin'), src);
    const locks = join(userHome, '.cache', 'pdiffcopy', 'locks');
    const st = statSync(locks);
    expect(st.uid).toBe(uid);
    expect(st.mode & 0o777).toBe(0o700);
    expect(readdirSync(locks)).toEqual([]);
  });

  it('push to ssh://user@host:port/~/x lands in the home too', async () => {
    const r = await runCli(['-i', sshd.clientKey, '--json', src, `ssh://${user}@${sshd.host}:${sshd.port}/~/via-uri.bin`], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(userHome, 'via-uri.bin'), src);
    expectNoTildeDir(userHome);
  });

  it('push to host:~user/sub/x as root: that user\'s home, missing parent created', async () => {
    const r = await viaConfig(src, `${sshd.alias}:~${user}/sub/by-name.bin`);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(userHome, 'sub', 'by-name.bin'), src);
    expect(jsonOf(r).targetCreated).toBe(true);
  });

  it('pull from user@host:~/x reads the file in the home', async () => {
    const seeded = join(userHome, 'to-pull.bin');
    writeSeededFile(seeded, 1024 * 1024 + 3, 4);
    const dst = join(dir, 'pulled.bin');
    const r = await viaConfig(`${user}@${sshd.alias}:~/to-pull.bin`, dst);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, seeded);
  });

  it('an unknown ~user: exit 4 as a target, 3 as a source, nothing created', async () => {
    const t = await viaConfig(src, `${sshd.alias}:~pdc-no-such-user/x.bin`);
    expectCleanError(t, EXIT_CODES.target, /no user "pdc-no-such-user"/);
    expect(jsonOf(t).error.code).toBe('TARGET_PARENT_MISSING');
    const dst = join(dir, 'never.bin');
    const s = await viaConfig(`${sshd.alias}:~pdc-no-such-user/x.bin`, dst);
    expectCleanError(s, EXIT_CODES.source);
    expect(jsonOf(s).error.code).toBe('SOURCE_NOT_FOUND');
    expect(existsSync(dst)).toBe(false);
  });
});

describe('a missing directory before ".." in the target', () => {
  const cases: Array<[string, (p: string) => string[]]> = [
    ['local', (p) => [src, p]],
    ['remote', (p) => ['-F', sshd.sshConfig, src, `${sshd.alias}:${p}`]],
  ];

  it.each(cases)('%s: exit 4 TARGET_PARENT_MISSING, no stray directory, no file', async (label, args) => {
    const base = join(dir, `dotdot-${label}`);
    mkdirSync(base);
    const r = await runCli(['--json', ...args(`${base}/missing/../f.bin`)], { home });
    expectCleanError(r, EXIT_CODES.target, /missing/);
    expect(jsonOf(r).error.code).toBe('TARGET_PARENT_MISSING');
    expect(readdirSync(base)).toEqual([]);
  });

  it.each(cases)('%s: an existing directory before ".." still works; parents after it are created', async (label, args) => {
    const base = join(dir, `dotdot-ok-${label}`);
    mkdirSync(join(base, 'here'), { recursive: true });
    const r = await runCli(['--json', ...args(`${base}/here/../new/f.bin`)], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(join(base, 'new', 'f.bin'), src);
    expect(readdirSync(base).sort()).toEqual(['here', 'new']);
  });
});

const node12 = join(REPO, '.cache/node12/bin/node');

describe.skipIf(!existsSync(node12) || !isRoot)('on a Node 12 agent', () => {
  it('expands ~ and ~user (getent) and refuses a missing directory before ".."', async () => {
    const agents = await AgentHost.start(createLocalTransport({ nodePath: node12 }), {
      agents: 1,
      machineId: 'node12',
      name: 'node12',
      displayPrefix: '',
      startTimeoutMs: 30_000,
      idleTimeoutMs: 30_000,
    });
    try {
      const home = statSync(homedir());
      expect(await agents.stat('~', 'target')).toMatchObject({ exists: true, kind: 'dir', ino: home.ino });
      expect(await agents.stat(`~${user}`, 'target')).toMatchObject({ exists: true, kind: 'dir', ino: statSync(userHome).ino });
      const unknown = await pdcError(agents.stat('~pdc-no-such-user/x', 'target'));
      expect(unknown.code).toBe('TARGET_PARENT_MISSING');
      expect(unknown.message).toMatch(/target ~pdc-no-such-user\/x: there is no user "pdc-no-such-user" on this host/);
      const base = join(dir, 'dotdot-node12');
      mkdirSync(base);
      const e = await pdcError(agents.open({ path: `${base}/missing/../f.bin`, role: 'target', create: true, lock: true }));
      expect(e.code).toBe('TARGET_PARENT_MISSING');
      expect(readdirSync(base)).toEqual([]);
    } finally {
      await agents.close();
    }
  });
});
