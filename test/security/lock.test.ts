/**
 * Threat: the target lock lived at /tmp/pdiffcopy-<hash>.lock, a name any local
 * user can take first. A file holding "1" (pid 1 is always alive) blocked root's
 * runs forever; a directory there, or an unwritable TMPDIR, silently disabled
 * locking, so two overlapping runs ended with a misleading verification failure.
 * Rule: locks live in a directory only this user controls (verified, else the run
 * fails with TARGET_LOCK_UNAVAILABLE: never unlocked); a lock names its owner by pid
 * AND start time, so a reused pid is not a live run. Plants are static files owned
 * by `nobody` (uid 65534), made as root, the way rsync's tests plant them.
 */
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, readdirSync, readFileSync, realpathSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { lockDirCandidates, makePrivateDir, TargetLock } from '../../src/fileops/lock.js';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { expectCleanError, jsonOf, killAllClis, REPO, runCli } from '../support/cli-child.js';
import { expectSameBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const NOBODY = 65534;
const isRoot = process.getuid?.() === 0;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let src: string;
const planted: string[] = [];
const held: TargetLock[] = [];
let n = 0;

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-lock-'));
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  writeSeededFile(src, 2 * 1024 * 1024 + 3, 11);
});

afterEach(() => {
  killAllClis();
  for (const lock of held.splice(0)) lock.release();
  for (const p of planted.splice(0)) rmSync(p, { recursive: true, force: true });
});

afterAll(async () => {
  await sshd?.stop();
  cleanup?.();
});

/** An existing target (different from the source), so a blocked run leaves it visibly untouched. */
function existingTarget(): string {
  const path = join(dir, `target-${++n}.bin`);
  writeSeededFile(path, 1024 * 1024, 100 + n);
  return path;
}

/** Where the old code kept the lock for this target: the name any user could plant. */
function oldSharedLockPath(target: string): string {
  const key = createHash('sha256').update(realpathSync(target)).digest('hex').slice(0, 32);
  return join('/tmp', `pdiffcopy-${key}.lock`);
}

function plantAsNobody(path: string, kind: 'file' | 'dir', content = '1\n'): void {
  if (kind === 'dir') mkdirSync(path);
  else writeFileSync(path, content);
  chownSync(path, NOBODY, NOBODY);
  planted.push(path);
}

/** Hold the target's lock in this process, as a run in progress does. */
function holdLock(target: string): TargetLock {
  const lock = new TargetLock(target);
  lock.acquire(target);
  held.push(lock);
  return lock;
}

type Transport = 'local' | 'push';
const TRANSPORTS: Transport[] = ['local', 'push'];
const argsFor = (t: Transport, target: string) => (t === 'local' ? [src, target] : ['-F', sshd.sshConfig, src, `${sshd.alias}:${target}`]);

describe.skipIf(!isRoot).each(TRANSPORTS)("another user's plant at the old lock path (%s)", (t) => {
  it('a file holding "1" (pid 1) does not block the run', async () => {
    const target = existingTarget();
    plantAsNobody(oldSharedLockPath(target), 'file');
    const r = await runCli(['--json', ...argsFor(t, target)], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(target, src);
  });

  it('a directory there does not disable locking: a run while another holds the lock is TARGET_LOCKED', async () => {
    const target = existingTarget();
    const before = sha256File(target);
    plantAsNobody(oldSharedLockPath(target), 'dir');
    holdLock(target);
    const r = await runCli(['--json', ...argsFor(t, target)], { home });
    expectCleanError(r, EXIT_CODES.target, /another pdiffcopy run/);
    expect(jsonOf(r).error.code).toBe('TARGET_LOCKED');
    expect(sha256File(target), 'target untouched').toBe(before);
  });
});

describe('an unusable TMPDIR does not disable locking', () => {
  it('local run with TMPDIR missing, while another holds the lock: TARGET_LOCKED', async () => {
    const target = existingTarget();
    const before = sha256File(target);
    holdLock(target);
    const r = await runCli(['--json', src, target], { home, env: { TMPDIR: join(dir, 'no-such-tmp') } });
    expectCleanError(r, EXIT_CODES.target, /another pdiffcopy run/);
    expect(jsonOf(r).error.code).toBe('TARGET_LOCKED');
    expect(sha256File(target)).toBe(before);
  });
});

describe('the lock file', () => {
  /** A fresh private lock directory for one test. */
  function lockDir(): string {
    const d = join(dir, `locks-${++n}`);
    expect(makePrivateDir(d)).toBeUndefined();
    return d;
  }
  const lockFiles = (d: string) => readdirSync(d).filter((f) => f.endsWith('.lock'));
  const pid1Start = () => +readFileSync('/proc/1/stat', 'latin1').split(') ')[1]!.split(' ')[19]!;

  it('records pid and start time; a reused pid (pid 1, other start time) is stale and taken over', async () => {
    const d = lockDir();
    const target = existingTarget();
    const first = new TargetLock(target, { dirs: [d] });
    first.acquire(target);
    const [name] = lockFiles(d);
    const content = readFileSync(join(d, name!), 'utf8');
    const myStart = +readFileSync('/proc/self/stat', 'latin1').split(') ')[1]!.split(' ')[19]!;
    expect(content).toMatch(new RegExp(`^${process.pid} ${myStart} `));
    // As if this run died and pid 1 came to carry its number.
    writeFileSync(join(d, name!), `1 ${pid1Start() + 1} somehost\n`);
    const second = new TargetLock(target, { dirs: [d] });
    second.acquire(target);
    held.push(second);
    expect(readFileSync(join(d, name!), 'utf8')).toMatch(new RegExp(`^${process.pid} `));
    // The first holder's release must not remove the lock the second one took.
    first.release();
    expect(lockFiles(d)).toEqual([name]);
    second.release();
    expect(lockFiles(d)).toEqual([]);
  });

  it('a live owner (pid and start time match) blocks; two names for one file share the lock', async () => {
    const d = lockDir();
    const target = existingTarget();
    const lock = new TargetLock(target, { dirs: [d] });
    lock.acquire(target);
    held.push(lock);
    const [name] = lockFiles(d);
    writeFileSync(join(d, name!), `1 ${pid1Start()} somehost\n`);
    const link = join(dir, `link-${n}`);
    symlinkSync(target, link);
    expect(() => new TargetLock(link, { dirs: [d] }).acquire(link)).toThrow(expect.objectContaining({ code: 'TARGET_LOCKED' }));
  });
});

describe.skipIf(!isRoot)('the lock directory must be ours alone', () => {
  const target = () => existingTarget();
  const fresh = () => join(dir, `cand-${++n}`);

  const unsafe: Array<[string, () => string, RegExp]> = [
    [
      'owned by another user',
      () => {
        const d = fresh();
        mkdirSync(d, { mode: 0o700 });
        chownSync(d, NOBODY, NOBODY);
        return d;
      },
      /owned by uid 65534/,
    ],
    [
      'writable by group or others',
      () => {
        const d = fresh();
        mkdirSync(d);
        chmodSync(d, 0o770);
        return d;
      },
      /writable by group or others/,
    ],
    [
      'a symbolic link (to a private directory)',
      () => {
        const real = fresh();
        mkdirSync(real, { mode: 0o700 });
        const d = fresh();
        symlinkSync(real, d);
        return d;
      },
      /symbolic link/,
    ],
    [
      'inside a directory others can write (no sticky bit)',
      () => {
        const open = fresh();
        mkdirSync(open);
        chmodSync(open, 0o777);
        const d = join(open, 'locks');
        mkdirSync(d, { mode: 0o700 });
        return d;
      },
      /which others can change/,
    ],
    [
      'a file',
      () => {
        const d = fresh();
        writeFileSync(d, '');
        return d;
      },
      /not a directory|cannot be created/,
    ],
  ];

  it.each(unsafe)('%s: refused, the next candidate is used', (_label, make, why) => {
    const bad = make();
    expect(makePrivateDir(bad)).toMatch(why);
    const good = fresh();
    const t = target();
    const lock = new TargetLock(t, { dirs: [bad, good] });
    lock.acquire(t);
    held.push(lock);
    expect(readdirSync(good).filter((f) => f.endsWith('.lock'))).toHaveLength(1);
    expect(statSync(good).mode & 0o777).toBe(0o700);
  });

  it('a missing parent is not created when nothing on the way exists (no /run, no home)', () => {
    const top = `/pdc-no-such-dir-${process.pid}`;
    expect(makePrivateDir(`${top}/locks`)).toMatch(/cannot be created/);
    expect(existsSync(top)).toBe(false);
    // Below an existing directory, the missing components are made, each 0700.
    const d = join(fresh(), 'cache', 'locks');
    expect(makePrivateDir(d)).toBeUndefined();
    expect(statSync(dirname(d)).mode & 0o777).toBe(0o700);
  });

  it('no usable candidate: TARGET_LOCK_UNAVAILABLE (exit 4) naming why, never unlocked', () => {
    const a = unsafe[0]![1]();
    const b = unsafe[1]![1]();
    const t = target();
    let err: any;
    try {
      new TargetLock(t, { dirs: [a, b] }).acquire(t);
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'TARGET_LOCK_UNAVAILABLE', exitCode: 4 });
    expect(err.message).toContain(`${a} is owned by uid 65534`);
    expect(err.message).toContain(`${b} is writable by group or others`);
    expect(err.hint).toContain(a);
  });
});

const node12 = join(REPO, '.cache/node12/bin/node');

describe.skipIf(!existsSync(node12))('on a Node 12 agent', () => {
  it('takes the same lock (pid and start time) in the same directory as this process', async () => {
    const agents = await AgentHost.start(createLocalTransport({ nodePath: node12 }), {
      agents: 1,
      machineId: 'node12',
      name: 'node12',
      displayPrefix: '',
      startTimeoutMs: 30_000,
      idleTimeoutMs: 30_000,
    });
    try {
      const target = join(dir, `node12-${++n}.bin`);
      await agents.open({ path: target, role: 'target', create: true, lock: true, mode: 0o600 });
      expect(() => new TargetLock(target).acquire(target)).toThrow(expect.objectContaining({ code: 'TARGET_LOCKED' }));
    } finally {
      await agents.close();
    }
  });
});

describe('lock directory candidates', () => {
  const cases: Array<[string, Parameters<typeof lockDirCandidates>[0], string[]]> = [
    ['root', { euid: 0, home: '/root', tmp: '/tmp' }, ['/run/pdiffcopy', '/tmp/pdiffcopy-0']],
    ['a user', { euid: 1000, home: '/home/a', tmp: '/var/tmp' }, ['/home/a/.cache/pdiffcopy/locks', '/var/tmp/pdiffcopy-1000']],
    ['a user whose home is /', { euid: 1001, home: '/', tmp: '/tmp' }, ['/tmp/pdiffcopy-1001']],
    ['a uid without a password entry', { euid: 1002, home: undefined, tmp: '/tmp' }, ['/tmp/pdiffcopy-1002']],
  ];
  it.each(cases)('%s', (_label, who, want) => {
    expect(lockDirCandidates(who)).toEqual(want);
  });
});
