import { randomBytes } from 'node:crypto';
import { constants, promises as fsp, type Stats } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { notADirectoryInPath, notRegular } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { PERMISSION_BITS } from './mode.js';
import { MODE_BITS } from '../protocol/limits.js';
import { euid, trustedOwner } from './owner.js';
import { isAllZero } from './zero-runs.js';

/**
 * --atomic: the new version is built in a temp file beside the target and renamed
 * over it only after it is complete, verified and fsynced, so an interrupted or
 * failed run leaves the old target intact.
 *
 * pdiffcopy often runs as root in directories other users can write, so every name
 * in that directory may be swapped at any moment. The rules kept here:
 * - A temp file is created exclusively (O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600) and
 *   from then on used only through its descriptor.
 * - A leftover temp file is taken over only if it is provably ours: a regular file
 *   (not a link), owned by our euid, with one name, writable by nobody else, and the
 *   descriptor opened with O_NOFOLLOW is the file lstat saw. Anything else at a temp
 *   name is left alone and the run builds in a fresh, uniquely named temp file, so a
 *   plant can neither hijack nor block the run.
 * - The seed (a copy of the old target) is copied between descriptors, never by path.
 * - Owner and mode are set through the descriptor; the rename is the last step, after
 *   checking that both names still mean what they meant; after it, the target must be
 *   the file we wrote.
 */
const { O_RDONLY, O_RDWR, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants;
/** O_NONBLOCK: opening a FIFO swapped in at a name must not hang (no effect on regular files). */
export const OPEN_EXISTING_RW = O_RDWR | O_NOFOLLOW | O_NONBLOCK;
export const CREATE_EXCLUSIVE = O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW;
const TEMP_MODE = 0o600;
/** Unique temp names tried when the fixed one is taken by a file that is not ours. */
const UNIQUE_ATTEMPTS = 16;
const COPY_BUFFER_BYTES = 8 * 1024 * 1024;

/** What every temp name of ours contains (see tempPathFor). */
export const TEMP_MARK = '.pdiffcopy-tmp';

export function tempPathFor(target: string): string {
  return join(dirname(target), `.${basename(target)}${TEMP_MARK}`);
}

/** A temp name of `target`: the fixed one, or the fixed one plus a unique suffix. */
export function isTempNameOf(target: string, name: string): boolean {
  const fixed = basename(tempPathFor(target));
  return name === fixed || (name.startsWith(`${fixed}.`) && /^[0-9a-f]{12}$/.test(name.slice(fixed.length + 1)));
}

/** The rule for taking over (or removing) a leftover temp file: see the module comment. */
function isOurTemp(st: Stats): boolean {
  return st.isFile() && st.uid === euid() && st.nlink === 1 && (st.mode & 0o022) === 0;
}

const sameFile = (a: { dev: number; ino: number }, b: { dev: number; ino: number }) => a.dev === b.dev && a.ino === b.ino;

export interface Identity {
  dev: number;
  ino: number;
}

/** The target as resolved when the run started: what the rename may replace. */
export interface ResolvedTarget extends Identity {
  uid: number;
  gid: number;
  mode: number;
}

export interface AtomicTarget {
  /** The temp file, open read-write. */
  fh: FileHandle;
  temp: string;
  /** The name the temp file is renamed to: the target, with a symlink followed once. */
  renameTo: string;
  /** The old target, or undefined when there was none. */
  old: ResolvedTarget | undefined;
  /** The temp file is a leftover of an earlier run of ours (not seeded now). */
  resumed: boolean;
  /** Files at temp names that are not ours and were left untouched. */
  leftAlone: string[];
}

/**
 * Resolve the target once, then take over our leftover temp file or create a fresh
 * one seeded with the old target's bytes.
 */
export async function openAtomicTarget(path: string): Promise<AtomicTarget> {
  const renameTo = await resolveOnce(path);
  const oldFh = await openOldTarget(renameTo);
  try {
    const old = oldFh ? resolvedTarget(await oldFh.stat()) : undefined;
    if (!old) await mkdirParents(dirname(renameTo), path);
    const leftAlone: string[] = [];
    for (const candidate of await leftoverTemps(renameTo)) {
      const fh = await adoptTemp(candidate);
      if (fh === 'gone') continue;
      if (fh) return { fh, temp: candidate, renameTo, old, resumed: true, leftAlone };
      leftAlone.push(candidate);
    }
    const { fh, temp } = await createTemp(renameTo, leftAlone);
    if (oldFh) await seedOrRemove(oldFh, fh, temp);
    return { fh, temp, renameTo, old, resumed: false, leftAlone };
  } finally {
    await oldFh?.close();
  }
}

/**
 * A symlink as the target is followed once, as documented: the file it names is what
 * gets replaced. Like rsync, only a link owned by root or by us is followed: another
 * user's link would let them choose which file a root run replaces.
 */
export async function resolveOnce(path: string): Promise<string> {
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st?.isSymbolicLink()) return resolve(path);
  if (!trustedOwner(st.uid)) {
    throw notRegular(
      'target',
      path,
      `a symbolic link owned by another user (uid ${st.uid}); it is not followed`,
      'name the file it points to, if that is really the file to replace',
    );
  }
  return fsp.realpath(path);
}

/** The old target by descriptor (no link followed, no FIFO waited on), or undefined when absent. */
async function openOldTarget(path: string): Promise<FileHandle | undefined> {
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
  const st = await fh.stat();
  if (!st.isFile()) {
    await fh.close();
    throw notRegular('target', path, 'not a regular file');
  }
  return fh;
}

function resolvedTarget(st: Stats): ResolvedTarget {
  return { dev: st.dev, ino: st.ino, uid: st.uid, gid: st.gid, mode: st.mode & MODE_BITS };
}

/** Existing temp names of this target, the fixed one first. */
async function leftoverTemps(target: string): Promise<string[]> {
  const dir = dirname(target);
  const names = await fsp.readdir(dir).catch(() => [] as string[]);
  const fixed = basename(tempPathFor(target));
  return names
    .filter((n) => isTempNameOf(target, n))
    .sort((a, b) => (a === fixed ? -1 : b === fixed ? 1 : a < b ? -1 : 1))
    .map((n) => join(dir, n));
}

/** Our leftover temp file, open read-write; undefined if the name holds anything else; 'gone' if nothing. */
async function adoptTemp(path: string): Promise<FileHandle | undefined | 'gone'> {
  const seen = await fsp.lstat(path).catch(() => undefined);
  if (!seen) return 'gone';
  if (!isOurTemp(seen)) return undefined;
  const fh = await fsp.open(path, OPEN_EXISTING_RW).catch(() => undefined);
  if (!fh) return undefined;
  const st = await fh.stat();
  if (isOurTemp(st) && sameFile(st, seen)) return fh;
  await fh.close();
  return undefined;
}

/** A new temp file that only we can have made: the fixed name if free, else a unique one. */
async function createTemp(target: string, leftAlone: string[]): Promise<{ fh: FileHandle; temp: string }> {
  const fixed = tempPathFor(target);
  for (let i = 0; i <= UNIQUE_ATTEMPTS; i++) {
    const temp = i === 0 ? fixed : `${fixed}.${randomBytes(6).toString('hex')}`;
    try {
      return { fh: await fsp.open(temp, CREATE_EXCLUSIVE, TEMP_MODE), temp };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      if (!leftAlone.includes(temp)) leftAlone.push(temp);
    }
  }
  throw new PdcError('TARGET_IO', `could not create a temp file beside ${target}: every name tried was taken`, {
    hint: 'remove the .pdiffcopy-tmp files beside the target (check who made them), then rerun',
  });
}

/** Seed a fresh temp file; on failure remove it (it is ours and holds nothing worth keeping). */
async function seedOrRemove(from: FileHandle, to: FileHandle, temp: string): Promise<void> {
  try {
    await copyThrough(from, to);
  } catch (e) {
    await removeIfSame(temp, await to.stat());
    await to.close();
    throw e;
  }
}

/**
 * Copy one open file into another through their descriptors, leaving all-zero chunks
 * as holes (disk images are often sparse). fs.copyFile is not allowed: it opens the
 * destination by path and follows a link swapped in there. Measured here (ext4, no
 * reflink, 2 shared cores, 1 GiB): 4.4-6.2 s against 1.6-2.4 s for fs.copyFile.
 */
export async function copyThrough(from: FileHandle, to: FileHandle): Promise<void> {
  const buf = Buffer.allocUnsafe(COPY_BUFFER_BYTES);
  let pos = 0;
  for (;;) {
    const { bytesRead } = await from.read(buf, 0, buf.length, pos);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    if (!isAllZero(chunk)) {
      for (let done = 0; done < bytesRead; ) done += (await to.write(chunk, done, bytesRead - done, pos + done)).bytesWritten;
    }
    pos += bytesRead;
  }
  await to.truncate(pos);
}

/** Unlink `path` only while it still names the file `id` (a swapped-in name is left alone). */
async function removeIfSame(path: string, id: Identity): Promise<boolean> {
  const st = await fsp.lstat(path).catch(() => undefined);
  if (!st || !sameFile(st, id)) return false;
  await fsp.unlink(path).catch(() => undefined);
  return true;
}

/**
 * Another agent of the same run opens the temp file the first one made: by name
 * without following links, and only if it is that very file.
 */
export async function joinTemp(path: string, id: Identity): Promise<FileHandle> {
  const fh = await fsp.open(path, OPEN_EXISTING_RW);
  const st = await fh.stat();
  if (st.isFile() && sameFile(st, id)) return fh;
  await fh.close();
  throw tempReplaced(path);
}

export interface CommitPlan {
  /** The size the engine finished with: the temp file must have exactly this many bytes. */
  size: number;
  /** Permission bits for a new target, before the umask (the old target's are kept). */
  newMode: number;
}

/**
 * Put the finished temp file in the target's place. Every check comes before the
 * rename, and the rename is the last step that can change the target: on any
 * failure before it, the old target is untouched.
 */
export async function commitTemp(t: AtomicTarget, plan: CommitPlan): Promise<void> {
  const ours = await t.fh.stat();
  // Nothing else wrote or truncated the file we built, and no one holds another name for it.
  if (ours.size !== plan.size) {
    throw new PdcError('VERIFY_FAILED', `temp file ${t.temp} has ${ours.size} bytes instead of ${plan.size}; the target is unchanged`, {
      hint: 'something else is writing beside the target; stop it and rerun',
    });
  }
  if (ours.nlink !== 1) throw tempReplaced(t.temp, 'someone made another name (hard link) for it');
  // Owner before mode: chown clears the set-id bits that chmod then restores.
  if (t.old) {
    if (ours.uid !== t.old.uid || ours.gid !== t.old.gid) {
      await t.fh.chown(t.old.uid, t.old.gid).catch((e: NodeJS.ErrnoException) => {
        if (e.code !== 'EPERM') throw e; // only root may give files away
      });
    }
    await t.fh.chmod(t.old.mode);
  } else {
    // fchmod ignores the umask; a new file's mode must not.
    await t.fh.chmod(plan.newMode & ~process.umask() & PERMISSION_BITS);
  }
  await t.fh.sync();
  // The target name still means the file resolved at the start (or still nothing),
  // and the temp name still means the file we wrote.
  const now = await fsp.lstat(t.renameTo).catch(() => undefined);
  if (t.old ? !now || !sameFile(now, t.old) : now) {
    throw new PdcError('TARGET_CHANGED', `target ${t.renameTo} was ${t.old ? 'replaced or removed' : 'created'} by someone else during the copy; it was left as it is`, {
      hint: `check who else writes in ${dirname(t.renameTo)}, then rerun`,
    });
  }
  const atTemp = await fsp.lstat(t.temp).catch(() => undefined);
  if (!atTemp || !sameFile(atTemp, ours)) throw tempReplaced(t.temp);
  await fsp.rename(t.temp, t.renameTo);
  await checkRenamed(t, ours);
  await syncDirAfterRename(t.renameTo);
}

/** After the rename the target must be the file we wrote (a swap between the check and the rename is caught here). */
async function checkRenamed(t: AtomicTarget, ours: Identity): Promise<void> {
  const now = await fsp.lstat(t.renameTo).catch(() => undefined);
  if (now && sameFile(now, ours)) return;
  throw new PdcError(
    'TARGET_CHANGED',
    `the old target ${t.renameTo} was replaced, but the name now holds ${now ? 'another file' : 'nothing'}: someone else renamed files in its directory during the rename`,
    { hint: `check ${t.renameTo} and make ${dirname(t.renameTo)} writable only by its owner, then rerun` },
  );
}

/** The rename is done: a failure here must say so, never "unchanged". */
async function syncDirAfterRename(target: string): Promise<void> {
  try {
    const dir = await fsp.open(dirname(target), O_RDONLY | constants.O_DIRECTORY);
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (e) {
    throw new PdcError('TARGET_IO', `target ${target} was replaced by the new version, but syncing its directory failed: ${(e as Error).message}`, {
      hint: 'the new version is in place; run sync to make the rename durable',
    });
  }
}

function tempReplaced(path: string, why = 'it was moved or replaced by someone else'): PdcError {
  return new PdcError('TARGET_CHANGED', `temp file ${path} is no longer the file this run wrote (${why}); the target is unchanged`, {
    hint: `check who else writes in ${dirname(path)}, then rerun`,
  });
}

export interface RemovedTemp {
  path: string;
  size: number;
}

/**
 * After a successful run, temp files of this target are obsolete: remove the ones
 * that are ours (regular, owned by our euid, one name; see isOurTemp). Others are left.
 */
export async function removeStaleTemps(target: string): Promise<RemovedTemp[]> {
  const removed: RemovedTemp[] = [];
  for (const path of await leftoverTemps(target)) {
    const st = await fsp.lstat(path).catch(() => undefined);
    if (st && isOurTemp(st) && (await removeIfSame(path, st))) removed.push({ path, size: st.size });
  }
  return removed;
}

/**
 * `mkdir -p` that fails with the real reason. Node's recursive mkdir reports ENOENT
 * on a read-only file system (instead of EROFS) and EEXIST when the directory's own
 * path is a regular file. On failure, walk down one component at a time so the errno
 * names the cause (EROFS, EACCES), or a component that is not a directory is reported
 * for `where` (the target as named).
 */
export async function mkdirParents(dir: string, where: string): Promise<void> {
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
        throw notADirectoryInPath('target', where);
      }
    }
  }
}
