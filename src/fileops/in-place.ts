import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { notRegular } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { CREATE_EXCLUSIVE, mkdirParents, OPEN_EXISTING_RW, resolveOnce } from './atomic.js';

/**
 * The in-place target (the default mode), opened so that another user who can write
 * its directory cannot steer a root run into another file:
 * - a symlink at the target's name is followed once, and only if root or we own it
 *   (as rsync does); another user's link is refused (see resolveOnce);
 * - the file is then opened with O_NOFOLLOW (a link swapped in after the check fails
 *   instead of being followed) and must be a regular file;
 * - a new target is created exclusively; if a file appeared at its name during the
 *   run, it is not ours and is not adopted.
 * An existing target is written as it is (owner and mode kept, as cp does), whoever owns it.
 */
export async function openInPlaceTarget(path: string, create: boolean, mode: number): Promise<{ fh: FileHandle; created: boolean }> {
  const real = await resolveOnce(path);
  const existing = await openExisting(real, path);
  if (existing) return { fh: existing, created: false };
  // Only the first agent creates; the others open what it made, which must still be there.
  if (!create) throw targetAppeared(path, 'it disappeared during the run');
  // Not fsp.mkdir(recursive): its ENOENT/EEXIST hid EROFS and "a parent is a file" (see mkdirParents).
  await mkdirParents(dirname(real), path);
  try {
    // open(2) applies the umask to this mode by itself: never wider than the source.
    return { fh: await fsp.open(real, CREATE_EXCLUSIVE, mode), created: true };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw targetAppeared(path);
    throw e;
  }
}

async function openExisting(real: string, display: string): Promise<FileHandle | undefined> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(real, OPEN_EXISTING_RW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw targetAppeared(display, 'a symbolic link appeared at its name');
    throw e;
  }
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw notRegular('target', display, 'not a regular file');
  }
  return fh;
}

function targetAppeared(path: string, what = 'a file appeared at its name during the run'): PdcError {
  return new PdcError('TARGET_CHANGED', `target ${path} changed under this run (${what}); it was not written`, {
    hint: `check who else writes in ${dirname(path)}, then rerun`,
  });
}
