/**
 * Another local user, for the tests of runs as root in directories other users can
 * write: an unprivileged uid (`nobody`), an arena with a directory it can write next to
 * root's files, a root-only "victim" file, snapshots that prove a file did not change,
 * and small scripts run as that uid (plants, a held-open writer, a symlink racer), each
 * bounded by a deadline so none outlives the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect } from 'vitest';
import { type CliResult, killAllClis, runCli } from './cli-child.js';
import { seededBytes, tempDir, writeSeededFile } from './files.js';
import { startSshd, type TestSshd } from './sshd.js';

/** The other user: `nobody` from /etc/passwd (uid 65534 on Debian). */
function lookupNobody(): { uid: number; gid: number } | undefined {
  try {
    const line = readFileSync('/etc/passwd', 'utf8')
      .split('\n')
      .find((l) => l.startsWith('nobody:'));
    const f = line?.split(':');
    return f ? { uid: +f[2]!, gid: +f[3]! } : undefined;
  } catch {
    return undefined;
  }
}

export const HOSTILE = lookupNobody();
/** Why the hostile-user tests cannot run here (they need root to act as two users), or undefined. */
export const hostileSkipReason =
  process.getuid?.() !== 0 ? 'not root: acting as another user needs root' : !HOSTILE ? 'no `nobody` user in /etc/passwd' : undefined;

export interface Arena {
  root: string;
  /** A directory the other user can write (mode 1777: sticky like /tmp, or 0755 owned by the other user). */
  shared: string;
  /** A root-only (0600) file outside `shared` that no run may touch. */
  victim: string;
  cleanup(): void;
}

/** A fresh arena: `sticky` gives a 1777 directory, else one owned by the other user. */
export function makeArena(kind: 'sticky' | 'owned'): Arena {
  const root = mkdtempSync(join(tmpdir(), 'pdc-hostile-'));
  chmodSync(root, 0o755); // the other user must reach `shared`
  const shared = join(root, 'shared');
  mkdirSync(shared);
  if (kind === 'sticky') chmodSync(shared, 0o1777);
  else chownSync(shared, HOSTILE!.uid, HOSTILE!.gid);
  const victim = join(root, 'victim.secret');
  writeFileSync(victim, seededBytes(4242, 64 * 1024), { mode: 0o600 });
  chmodSync(victim, 0o600);
  return { root, shared, victim, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

export interface FileSnapshot {
  sha256: string;
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  size: number;
}

export function snapshot(path: string): FileSnapshot {
  const st = lstatSync(path);
  return {
    sha256: createHash('sha256').update(readFileSync(path)).digest('hex'),
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    ino: st.ino,
    size: st.size,
  };
}

/** The file is exactly as it was: bytes, mode (incl. type), owner, inode. */
export function expectUnchanged(path: string, before: FileSnapshot, label: string): void {
  expect(snapshot(path), `${label}: ${path} must not change`).toEqual(before);
}

export interface HostileProcess {
  child: ChildProcess;
  /** Resolves once the script said it is in place ("ready" on stdout). */
  ready: Promise<void>;
  /** Stop it (SIGKILL) and wait for it to exit. */
  stop(): Promise<void>;
}

/**
 * Run a script as the other user: `node -e SCRIPT ARGS...`. Scripts print "ready" once
 * their plant is in place and end by themselves at a deadline (argv's last element, ms).
 */
export function runAsHostile(script: string, args: string[], deadlineMs = 30_000): HostileProcess {
  const child = spawn(process.execPath, ['-e', script, ...args, String(deadlineMs)], {
    uid: HOSTILE!.uid,
    gid: HOSTILE!.gid,
    cwd: '/',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: '/usr/bin:/bin' },
  });
  let err = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  const exited = new Promise<void>((r) => child.once('close', () => r()));
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.setEncoding('utf8').on('data', (d: string) => d.includes('ready') && resolve());
    child.once('close', (code) => reject(new Error(`hostile script exited (${code}) before it was ready: ${err}`)));
  });
  ready.catch(() => undefined);
  return {
    child,
    ready,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * Symlink racer: as fast as it can, point NAME at VICTIM and take the link away again,
 * so that any check-then-use of NAME by path sees a file one moment and a link the next.
 * Args: NAME VICTIM DEADLINE_MS.
 */
export const SYMLINK_RACER = `
const fs = require('fs');
const [name, victim, ms] = process.argv.slice(1);
const end = Date.now() + Number(ms);
process.stdout.write('ready\\n');
let n = 0;
while (Date.now() < end) {
  try { fs.symlinkSync(victim, name); } catch {}
  for (let i = 0; i < 20; i++) n++;
  try { fs.unlinkSync(name); } catch {}
}
`;

/**
 * A temp file planted at NAME (mode 0666) and held open, with a write of MARK at offset 0
 * every few milliseconds through the open descriptor: if a run adopted and renamed the
 * file, these writes land in the live target. Args: NAME MARK DEADLINE_MS.
 */
export const HELD_TEMP = `
const fs = require('fs');
const [name, mark, ms] = process.argv.slice(1);
const fd = fs.openSync(name, fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_EXCL, 0o666);
fs.fchmodSync(fd, 0o666);
fs.writeSync(fd, Buffer.alloc(4096, 'h'), 0, 4096, 0);
process.stdout.write('ready\\n');
const t = setInterval(() => fs.writeSync(fd, Buffer.from(mark), 0, mark.length, 0), 5);
setTimeout(() => { clearInterval(t); process.exit(0); }, Number(ms));
`;

/** Make a symlink NAME -> TARGET as the other user. Args: NAME TARGET DEADLINE_MS. */
export const PLANT_SYMLINK = `
const fs = require('fs');
const [name, target] = process.argv.slice(1);
fs.symlinkSync(target, name);
process.stdout.write('ready\\n');
`;

/** Write a regular file NAME (mode 0644) as the other user, like a temp left by its own failed run. Args: NAME DEADLINE_MS. */
export const PLANT_FILE = `
const fs = require('fs');
const [name] = process.argv.slice(1);
fs.writeFileSync(name, Buffer.alloc(8192, 'n'), { mode: 0o644 });
process.stdout.write('ready\\n');
`;

/** Run a plant script as the other user and wait for it to finish. */
/** Plants COUNT small files named PREFIX + 12 hex digits (the shape of our unique temp names). */
export const PLANT_MANY_FILES = `
const fs = require('fs');
const [prefix, count] = process.argv.slice(1);
for (let i = 0; i < Number(count); i++) fs.writeFileSync(prefix + i.toString(16).padStart(12, '0'), 'n', { mode: 0o644 });
process.stdout.write('ready\\n');
`;

export async function plantAsHostile(script: string, args: string[]): Promise<void> {
  const p = runAsHostile(script, args);
  await p.ready;
  await new Promise<void>((r) => (p.child.exitCode !== null ? r() : p.child.once('close', () => r())));
}

/** How a root run reaches the target: the local transport, a real sshd push, or a pull. */
export type RootRunMode = 'local' | 'ssh push' | 'ssh pull';
export const ROOT_RUN_MODES: RootRunMode[] = ['local', 'ssh push', 'ssh pull'];

export interface RootRuns {
  /** The seeded source file every run copies (valid inside tests). */
  readonly src: string;
  /** A private HOME for the CLI (its known_hosts and lock directory). */
  readonly home: string;
  /** The sshd's host alias (the prefix of remote names in messages). */
  readonly alias: string;
  /** A root run of the real CLI copying `from` to `to` over `mode`, with the fixture's flags and `extra`. */
  run(mode: RootRunMode, from: string, to: string, extra?: string[]): Promise<CliResult>;
}

/**
 * Root's side of the hostile-user tests: a real sshd, a private HOME and a seeded source,
 * set up before the file's tests and torn down after them (nothing when they are skipped).
 */
export function rootRuns(o: { prefix: string; size: number; seed: number; flags: string[] }): RootRuns {
  let sshd: TestSshd | undefined;
  let cleanup: (() => void) | undefined;
  let home = '';
  let src = '';
  beforeAll(async () => {
    if (hostileSkipReason) return;
    sshd = await startSshd();
    const t = tempDir(o.prefix);
    cleanup = t.cleanup;
    home = join(t.dir, 'home');
    mkdirSync(home);
    src = join(t.dir, 'source.bin');
    writeSeededFile(src, o.size, o.seed);
  }, 60_000);
  afterAll(async () => {
    killAllClis();
    await sshd?.stop();
    cleanup?.();
  });
  return {
    get src() {
      return src;
    },
    get home() {
      return home;
    },
    get alias() {
      return sshd!.alias;
    },
    run(mode, from, to, extra = []) {
      const s = sshd!;
      const ends = mode === 'local' ? [from, to] : mode === 'ssh push' ? ['-F', s.sshConfig, from, `${s.alias}:${to}`] : ['-F', s.sshConfig, `${s.alias}:${from}`, to];
      return runCli([...o.flags, ...extra, ...ends], { home, timeoutMs: 60_000 });
    },
  };
}
