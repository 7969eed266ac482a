import { constants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';

/**
 * --atomic: the new version is built in a temp file beside the target and renamed
 * over it only after it is complete, verified and fsynced, so an interrupted run
 * leaves the old target intact.
 *
 * The temp file has a fixed name, so the next run finds it: a leftover from an
 * interrupted run is reused as is (the delta pass repairs whatever it lacks) and
 * is gone after a successful run. A fresh one is seeded with a copy of the old
 * target made on the target's own machine (a reflink where the filesystem can,
 * else a kernel-side copy), so only differing blocks cross the network.
 */
export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.pdiffcopy-tmp`);
}

export interface PreparedTemp {
  /** The temp file now exists; the target itself was missing. */
  resumed: boolean;
}

/** Make sure the temp file exists: reuse a leftover, or seed it from the old target, or create it empty. */
export async function prepareTemp(target: string, temp: string, targetExists: boolean): Promise<PreparedTemp> {
  try {
    const st = await fsp.lstat(temp);
    if (st.isFile()) return { resumed: true };
    throw Object.assign(new Error(`${temp} exists and is not a regular file`), { code: 'EEXIST' });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  await mkdirParents(dirname(target));
  if (targetExists) await fsp.copyFile(target, temp, constants.COPYFILE_FICLONE);
  else await (await fsp.open(temp, 'wx', 0o644)).close();
  return { resumed: false };
}

/**
 * `mkdir -p` that fails with the real reason. Node's recursive mkdir reports ENOENT
 * on a read-only file system (instead of EROFS) and EEXIST when the directory's own
 * path is a regular file, which surfaced as "a parent directory is missing" and as a
 * raw "EEXIST: file already exists, mkdir" TARGET_IO (issue 5). On failure, walk down
 * one component at a time so the errno names the cause (EROFS, EACCES, ENOTDIR).
 */
export async function mkdirParents(dir: string): Promise<void> {
  try {
    await fsp.mkdir(dir, { recursive: true });
    return;
  } catch {
    /* find out why, below */
  }
  let path = '/';
  for (const part of resolve(dir).split('/').filter(Boolean)) {
    path = join(path, part);
    try {
      await fsp.mkdir(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!(await fsp.stat(path)).isDirectory()) {
        throw Object.assign(new Error(`ENOTDIR: not a directory, mkdir '${path}'`), { code: 'ENOTDIR', path });
      }
    }
  }
}

/**
 * Put the finished temp file in the target's place: same owner and mode as the
 * old target, fsync, rename, then fsync the directory so the rename is durable.
 */
export async function commitTemp(fh: FileHandle, temp: string, target: string): Promise<void> {
  const old = await fsp.stat(target).catch(() => undefined);
  if (old) {
    await fh.chmod(old.mode & 0o7777);
    await fh.chown(old.uid, old.gid).catch(() => undefined); // only root may give files away
  }
  await fh.sync();
  await fsp.rename(temp, target);
  const dir = await fsp.open(dirname(target), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
