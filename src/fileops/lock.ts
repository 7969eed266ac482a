import { createHash, randomBytes } from 'node:crypto';
import { closeSync, constants, fstatSync, linkSync, lstatSync, mkdirSync, openSync, readFileSync, readSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { hostname, tmpdir, userInfo } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PdcError } from '../errors/pdc-error.js';
import { euid, trustedOwner } from './owner.js';

/**
 * Advisory lock that keeps two runs from writing one target at once.
 *
 * Node has no flock(), and we promise to write only the named file, so the lock is
 * a file in a lock directory, named by a hash of the host name and the target's real
 * path (symlinks resolved, so two names for one file share a lock). The directory is
 * one only this user controls: other local users must not be able to plant a lock
 * that blocks us, nor a directory or link that silently disables locking. Each
 * candidate directory is created 0700 and verified (owned by our euid, not a link,
 * not writable by group or other, the same inode through an opened descriptor, and
 * every ancestor owned by us or root and not writable by others unless sticky):
 *   root:     /run/pdiffcopy, else <tmp>/pdiffcopy-0
 *   any user: ~/.cache/pdiffcopy/locks (home from the password database), else <tmp>/pdiffcopy-UID
 * Runs as different users therefore do not see each other's locks. When no
 * candidate verifies, the run fails (TARGET_LOCK_UNAVAILABLE): it never runs unlocked.
 *
 * A lock holds "pid starttime host token": the owner's pid and its start time (field
 * 22 of /proc/PID/stat), so a pid reused by another process (pid 1 after a reboot) is
 * not taken for a live run, and a random token that makes each lock's content unique
 * (a release or a takeover removes a lock only if it still holds what was read). It
 * is written to a private temp file and hard-linked into place, so a lock is never
 * seen half-written. A lock whose owner is gone (kill -9) is stale and is taken over.
 */
/** Locks this process holds, released at exit (one listener for all of them). */
const heldLocks = new Set<TargetLock>();
process.once('exit', () => {
  for (const lock of [...heldLocks]) lock.release();
});

export interface LockOptions {
  /** Lock directories to try, in order (default: lockDirCandidates for this process). */
  dirs?: string[];
}

/**
 * The lock file for a target: in the first usable lock directory (created if need
 * be), named by the host and the target's real path.
 */
export function lockPathFor(targetPath: string, opts: LockOptions = {}, display = targetPath): string {
  const key = createHash('sha256').update(`${hostname()}\0${realTargetPath(targetPath)}`).digest('hex').slice(0, 32);
  return join(privateLockDir(opts.dirs ?? lockDirCandidates(thisProcess()), display), `${key}.lock`);
}

export class TargetLock {
  /** The lock file and the exact content we wrote into it (unique: it ends with a random token). */
  private held: { path: string; content: string } | undefined;

  constructor(
    private readonly targetPath: string,
    private readonly opts: LockOptions = {},
  ) {}

  acquire(display: string): void {
    const path = lockPathFor(this.targetPath, this.opts, display);
    const dir = dirname(path);
    const me = `${process.pid} ${startTimeOf(process.pid) ?? 0} ${hostname()} ${randomBytes(8).toString('hex')}\n`;
    for (let attempt = 0; attempt < 3; attempt++) {
      if (this.tryLink(dir, path, me, display)) return;
      const owner = readOwner(path, display);
      if (owner === undefined) continue; // released meanwhile: try again
      if (isRunning(owner)) {
        throw new PdcError('TARGET_LOCKED', `target ${display} is being written by another pdiffcopy run (pid ${owner.pid})`, {
          hint: 'wait for the other run to finish, or stop it',
        });
      }
      removeIfSame(path, owner.content); // stale: its owner is gone
    }
    throw new PdcError('TARGET_LOCKED', `target ${display} is being locked and unlocked by other pdiffcopy runs`, {
      hint: 'wait for the other runs to finish, then rerun',
    });
  }

  release(): void {
    const held = this.held;
    if (!held) return;
    this.held = undefined;
    heldLocks.delete(this);
    removeIfSame(held.path, held.content);
  }

  /** Create the lock with its content in one step (link fails if it exists); false when it does. */
  private tryLink(dir: string, path: string, content: string, display: string): boolean {
    const temp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
      try {
        writeSync(fd, content);
      } finally {
        closeSync(fd);
      }
      linkSync(temp, path);
      this.held = { path, content };
      heldLocks.add(this);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw lockUnavailable(display, `cannot create a lock in ${dir}: ${(e as Error).message}`, dir);
    } finally {
      try {
        unlinkSync(temp);
      } catch {
        /* not created */
      }
    }
  }
}

export interface ProcessIdentity {
  euid: number;
  /** Home directory from the password database (not $HOME, which differs under sudo). */
  home: string | undefined;
  tmp: string;
}

function thisProcess(): ProcessIdentity {
  let home: string | undefined;
  try {
    home = userInfo().homedir || undefined;
  } catch {
    home = undefined; // no password entry for this uid
  }
  return { euid: euid(), home, tmp: tmpdir() };
}

/** Lock directories to try, most private first (see the class comment). */
export function lockDirCandidates(p: ProcessIdentity): string[] {
  const inTmp = join(p.tmp, `pdiffcopy-${p.euid}`);
  if (p.euid === 0) return ['/run/pdiffcopy', inTmp];
  return [...(p.home && p.home !== '/' ? [join(p.home, '.cache', 'pdiffcopy', 'locks')] : []), inTmp];
}

/** The first candidate that is, or can be made, a directory only we control. */
function privateLockDir(candidates: string[], display: string): string {
  const refused: string[] = [];
  for (const dir of candidates) {
    const why = makePrivateDir(dir);
    if (why === undefined) return dir;
    refused.push(`${dir} ${why}`);
  }
  throw lockUnavailable(display, refused.join('; '), candidates[0] ?? '');
}

const GROUP_OTHER_WRITE = 0o022;
const STICKY = 0o1000;

/** Create dir (0700) if missing and check it is ours alone; the reason it is not, or undefined. */
export function makePrivateDir(dir: string): string | undefined {
  const notCreated = createBelowExisting(dir);
  if (notCreated) return notCreated;
  let st;
  try {
    st = lstatSync(dir);
  } catch (e) {
    return `cannot be examined (${(e as NodeJS.ErrnoException).code})`;
  }
  if (st.isSymbolicLink()) return 'is a symbolic link';
  if (!st.isDirectory()) return 'is not a directory';
  if (st.uid !== euid()) return `is owned by uid ${st.uid}, not ${euid()}`;
  if (st.mode & GROUP_OTHER_WRITE) return 'is writable by group or others';
  const ancestor = unsafeAncestor(dir);
  if (ancestor) return `lies in ${ancestor}, which others can change`;
  // The directory we checked is the one we can open, without following a link.
  let fd: number;
  try {
    fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  } catch (e) {
    return `cannot be opened (${(e as NodeJS.ErrnoException).code})`;
  }
  try {
    const fst = fstatSync(fd);
    if (fst.dev !== st.dev || fst.ino !== st.ino) return 'was replaced while being checked';
  } finally {
    closeSync(fd);
  }
  return undefined;
}

/**
 * Create the missing components of dir (each 0700), but only below an existing
 * directory other than `/`: a missing /run or home directory is not ours to make.
 */
function createBelowExisting(dir: string): string | undefined {
  const missing: string[] = [];
  for (let p = dir; !exists(p); p = dirname(p)) {
    missing.unshift(p);
    if (dirname(p) === p) break;
  }
  if (missing.length > 0 && dirname(missing[0]!) === '/') return `cannot be created (${missing[0]} does not exist)`;
  for (const p of missing) {
    try {
      mkdirSync(p, 0o700);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return `cannot be created (${(e as NodeJS.ErrnoException).code})`;
    }
  }
  return undefined;
}

function exists(path: string): boolean {
  try {
    lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * The first ancestor of dir that someone other than us or root could rename or
 * replace entries in (owned by another uid, or group/other-writable without the
 * sticky bit, as /tmp has). Checked on the real path: a link on the way is
 * judged by where it leads.
 */
function unsafeAncestor(dir: string): string | undefined {
  let p: string;
  try {
    p = dirname(realpathSync(dir));
  } catch {
    return dir;
  }
  for (;;) {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return p;
    }
    if (!trustedOwner(st.uid) || ((st.mode & GROUP_OTHER_WRITE) !== 0 && (st.mode & STICKY) === 0)) return p;
    if (dirname(p) === p) return undefined;
    p = dirname(p);
  }
}

interface Owner {
  pid: number;
  start: number;
  content: string;
}

/** The lock's owner, or undefined if the lock is gone. Anything but our own regular file is refused. */
function readOwner(path: string, display: string): Owner | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw lockUnavailable(display, `cannot read the lock ${path}: ${(e as Error).message}`, dirname(path));
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.uid !== euid()) {
      throw lockUnavailable(display, `${path} is not a lock this user created`, dirname(path));
    }
    const content = readContent(fd);
    const [pid, start] = content.split(' ').map((w) => parseInt(w, 10));
    // Written in one step (link), so an unreadable content means no live owner.
    return { pid: pid! > 0 ? pid! : 0, start: start! >= 0 ? start! : -1, content };
  } finally {
    closeSync(fd);
  }
}

/** A lock's content (one short line). */
function readContent(fd: number): string {
  const buf = Buffer.alloc(512);
  return buf.toString('utf8', 0, readSync(fd, buf, 0, buf.length, 0));
}

/** The owner runs: its pid is alive and (where /proc tells) started when the lock says. */
function isRunning(owner: Owner): boolean {
  if (!Number.isSafeInteger(owner.pid) || owner.pid <= 0) return false;
  try {
    process.kill(owner.pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const start = startTimeOf(owner.pid);
  return start === undefined || (owner.start > 0 && start === owner.start);
}

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), if /proc has it. */
function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    // The command (field 2) may contain spaces and parentheses: count from the last ')'.
    const start = parseInt(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]!, 10);
    return Number.isSafeInteger(start) ? start : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Unlink the lock only if it still holds `content` (the lock we examined or wrote):
 * never a lock another run took meanwhile. Compared by content, which ends with a
 * random token, not by inode: a freed inode number is soon reused.
 */
function removeIfSame(path: string, content: string): void {
  try {
    const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
    let same: boolean;
    try {
      same = readContent(fd) === content;
    } finally {
      closeSync(fd);
    }
    if (same) unlinkSync(path);
  } catch {
    /* already gone */
  }
}

function lockUnavailable(display: string, why: string, dir: string): PdcError {
  return new PdcError('TARGET_LOCK_UNAVAILABLE', `cannot lock target ${display} safely: ${why}`, {
    hint: `make ${dir} a directory owned by this user and writable only by it (or remove it), then rerun`,
  });
}

/** The target's real path; for a file not created yet, its directory's real path plus its name. */
function realTargetPath(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    try {
      return join(realpathSync(dirname(path)), basename(path));
    } catch {
      return path;
    }
  }
}
