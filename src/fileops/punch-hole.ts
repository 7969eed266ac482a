/**
 * Turning a stretch of an open file into a hole (--sparse). Node's fs has no
 * fallocate(2), so this asks util-linux's fallocate(1), present on nearly every Linux:
 * the child gets our descriptor as its fd 3 and opens /proc/self/fd/3, which the
 * kernel resolves to the very file we hold (never a name someone could swap).
 * Where there is no such program (busybox's has no --punch-hole) or the file system
 * cannot punch, the caller writes zeros instead. Node 12 syntax: the agent bundles this.
 */
import { spawn } from 'child_process';
import { existsSync } from 'fs';

/** Absolute paths only: pdiffcopy may run as root with another user's PATH. */
export const FALLOCATE_PATHS = ['/usr/bin/fallocate', '/bin/fallocate', '/usr/sbin/fallocate', '/sbin/fallocate'];

/** The program, or undefined where none is installed. */
export function findFallocate(candidates: readonly string[] = FALLOCATE_PATHS): string | undefined {
  for (const p of candidates) if (existsSync(p)) return p;
  return undefined;
}

/**
 * Punch [offset, offset+length) out of the file open as `fd` (its size is kept).
 * Resolves true when the range now reads as a hole, false when it could not be done
 * (no program, unsupported, any failure): the caller then writes the zeros itself.
 */
export function punchHole(program: string, fd: number, offset: number, length: number): Promise<boolean> {
  return new Promise((resolve) => {
    let child;
    try {
      child = spawn(program, ['--punch-hole', '--offset', String(offset), '--length', String(length), '/proc/self/fd/3'], {
        stdio: ['ignore', 'ignore', 'ignore', fd],
      });
    } catch {
      resolve(false);
      return;
    }
    child.on('error', () => resolve(false));
    child.on('exit', (code) => resolve(code === 0));
  });
}
