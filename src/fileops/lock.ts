import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, realpathSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir, hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PdcError } from '../errors/pdc-error.js';

/**
 * Advisory lock that keeps two runs from writing one target at once.
 * Node has no flock(), and we promise to write only the named file, so the lock
 * lives in the temp directory, keyed by the target's real path (symlinks resolved,
 * so two names for one file share a lock), and holds the owner's pid. A lock whose
 * pid is gone (kill -9) is stale and is taken over.
 */
/** Locks this process holds, released at exit (one listener for all of them). */
const heldLocks = new Set<TargetLock>();
process.once('exit', () => {
  for (const lock of [...heldLocks]) lock.release();
});

export class TargetLock {
  private held = false;
  private readonly path: string;

  constructor(targetPath: string) {
    const key = createHash('sha256').update(realTargetPath(targetPath)).digest('hex').slice(0, 32);
    this.path = join(tmpdir(), `pdiffcopy-${key}.lock`);
  }

  acquire(display: string): void {
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(this.path, 'wx', 0o600);
        writeSync(fd, `${process.pid} ${hostname()}\n`);
        closeSync(fd);
        this.held = true;
        heldLocks.add(this);
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') return; // cannot lock (odd tmp): do not block the copy
        const owner = this.ownerPid();
        if (owner !== undefined && isAlive(owner)) {
          throw new PdcError('TARGET_LOCKED', `target ${display} is being written by another pdiffcopy run (pid ${owner})`, {
            hint: 'wait for the other run to finish, or stop it',
          });
        }
        try {
          unlinkSync(this.path); // stale: its owner is gone
        } catch {
          /* raced with another taker: retry once */
        }
      }
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    heldLocks.delete(this);
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }

  private ownerPid(): number | undefined {
    try {
      const pid = parseInt(readFileSync(this.path, 'utf8'), 10);
      return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
    } catch {
      return undefined;
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
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
