import { constants as fsConstants, promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import { fromErrno, notRegular, parentMissing, type Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import type { DirEntry, ListArgs, ListResult, MkdirArgs, RemoveArgs, RemoveResult, SetMetaArgs, SymlinkArgs, TreeChangeResult } from '../protocol/messages.js';
import { expandHome, unknownUserError } from './home.js';
import { PERMISSION_BITS } from './mode.js';
import { MODE_BITS } from '../protocol/limits.js';

/**
 * Directory trees on one host: list a directory (paged), and on the target make
 * directories and symlinks and set metadata, never outside the tree being synced.
 * Node 12 built-ins only (the agent bundles this file).
 */


/** One page of `path`'s entries, sorted by name (UTF-16 order, as `after` compares), lstat'ed. */
export async function listDir(a: ListArgs): Promise<ListResult> {
  const dir = await expanded(a.path, a.role);
  if (a.name !== undefined) {
    // Joined by hand: posix.join would turn `link/.` into `link`, and `.` must follow a link to a directory.
    const one = a.name.includes('/') ? undefined : await describe(`${dir.replace(/\/+$/, '')}/${a.name}`, a.name);
    return { entries: one ? [one] : [], more: false };
  }
  let names: string[];
  try {
    names = await fsp.readdir(dir);
  } catch (e) {
    throw fromErrno(e, a.role, dir);
  }
  names.sort();
  const after = a.after;
  const rest = after === undefined ? names : names.filter((n) => n > after);
  const page = rest.slice(0, a.max);
  // The lstats of a page run concurrently (the thread pool bounds them).
  const described = await Promise.all(page.map((name) => describe(posix.join(dir, name), name)));
  const entries = described.filter((e): e is DirEntry => e !== undefined);
  return { entries, more: rest.length > page.length };
}

/** lstat one entry; undefined when it vanished meanwhile. */
async function describe(path: string, name: string): Promise<DirEntry | undefined> {
  let st;
  try {
    st = await fsp.lstat(path);
  } catch {
    return undefined;
  }
  const kind = st.isFile() ? 'file' : st.isDirectory() ? 'dir' : st.isSymbolicLink() ? 'symlink' : 'other';
  const entry: DirEntry = { name, kind, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode & MODE_BITS, uid: st.uid, gid: st.gid };
  if (kind === 'symlink') entry.linkTarget = await fsp.readlink(path).catch(() => '');
  if (entry.linkTarget === '') return undefined;
  return entry;
}

/** Make `path` (and the directories between the tree's root and it) inside the tree. */
export async function makeDir(a: MkdirArgs): Promise<TreeChangeResult> {
  const { root, parts } = await inTree(a.root, a.path);
  let created = false;
  let at = root;
  for (const part of parts) {
    at = posix.join(at, part);
    const st = await lstatOrUndefined(at);
    if (st === undefined) {
      try {
        await fsp.mkdir(at, a.mode === undefined ? 0o777 : a.mode & PERMISSION_BITS);
        created = true;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw fromErrno(e, 'target', at);
      }
      await expectRealDir(at);
    } else if (!st.isDirectory()) {
      throw notADirectory(at, st.isSymbolicLink());
    }
  }
  return { created };
}

/** Make (or replace a different) symlink at `path`; anything else at that name is refused. */
export async function makeSymlink(a: SymlinkArgs): Promise<TreeChangeResult> {
  const { path } = await parentInTree(a.root, a.path);
  const st = await lstatOrUndefined(path);
  if (st !== undefined) {
    if (!st.isSymbolicLink()) throw exists(path, st.isDirectory() ? 'a directory' : 'a file', 'a symlink');
    if ((await fsp.readlink(path)) === a.linkTarget) return { created: false };
    // Only a link is ever removed here (unlink does not follow it).
    await fsp.unlink(path).catch((e) => {
      throw fromErrno(e, 'target', path);
    });
  }
  try {
    await fsp.symlink(a.linkTarget, path);
  } catch (e) {
    throw fromErrno(e, 'target', path);
  }
  return { created: true };
}

/**
 * Owner, then mode (a chown clears set-id bits), then times, all through one
 * descriptor opened with O_NOFOLLOW: a link planted at the name is never followed,
 * and what is changed is the file or directory that was checked.
 */
export async function setMeta(a: SetMetaArgs): Promise<void> {
  const { path } = await parentInTree(a.root, a.path);
  let fh;
  try {
    fh = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw exists(path, 'a symlink', 'a file or directory');
    throw fromErrno(e, 'target', path);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile() && !st.isDirectory()) throw exists(path, 'a special file', 'a file or directory');
    if (a.uid !== undefined || a.gid !== undefined) await fh.chown(a.uid ?? -1, a.gid ?? -1);
    if (a.mode !== undefined) await fh.chmod(a.mode & MODE_BITS);
    if (a.mtimeMs !== undefined) await fh.utimes(st.atimeMs / 1000, a.mtimeMs / 1000);
  } catch (e) {
    throw fromErrno(e, 'target', path);
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/**
 * --delete: remove one entry of the tree. A file or link is unlinked (a link, never
 * what it points to); a directory is emptied depth first, each entry lstat'ed, so a
 * link inside it is removed as a link and never descended into. The root itself is
 * never removed.
 */
export async function removeEntry(a: RemoveArgs): Promise<RemoveResult> {
  const { path } = await parentInTree(a.root, a.path);
  if (posix.normalize(path) === posix.normalize(await expanded(a.root, 'target'))) {
    throw new PdcError('TARGET_OUTSIDE_TREE', `target ${a.path} is the root of the tree; it is never deleted`, { hint: 'this is a bug: report it' });
  }
  return { removed: await removeBelow(path) };
}

async function removeBelow(path: string): Promise<number> {
  const st = await lstatOrUndefined(path);
  if (st === undefined) return 0;
  try {
    if (!st.isDirectory()) {
      await fsp.unlink(path);
      return 1;
    }
    let removed = 0;
    for (const name of await fsp.readdir(path)) removed += await removeBelow(posix.join(path, name));
    await fsp.rmdir(path);
    return removed + 1;
  } catch (e) {
    throw fromErrno(e, 'target', path);
  }
}

/**
 * `path` as components below `root`: refused when it leaves the tree (absolute
 * elsewhere, or any `..`). The root itself is the user's choice and may be a link.
 */
async function inTree(givenRoot: string, givenPath: string): Promise<{ root: string; parts: string[] }> {
  const root = posix.normalize(await expanded(givenRoot, 'target'));
  const path = await expanded(givenPath, 'target');
  const prefix = root.endsWith('/') ? root : `${root}/`;
  const raw = path === root ? '' : path.startsWith(prefix) ? path.slice(prefix.length) : undefined;
  const parts = raw === undefined ? undefined : raw.split('/').filter((p) => p !== '' && p !== '.');
  if (parts === undefined || parts.includes('..')) {
    throw new PdcError('TARGET_OUTSIDE_TREE', `target ${givenPath} is outside the tree being synced (${givenRoot})`, {
      hint: 'a name in the file list tried to leave the target directory; check the source',
    });
  }
  return { root, parts };
}

/** `path` inside the tree, its parent chain (root excluded) made of real directories, not links. */
export async function parentInTree(givenRoot: string, givenPath: string): Promise<{ path: string }> {
  const { root, parts } = await inTree(givenRoot, givenPath);
  if (parts.length === 0) return { path: root };
  let at = root;
  for (const part of parts.slice(0, -1)) {
    at = posix.join(at, part);
    await expectRealDir(at);
  }
  return { path: posix.join(at, parts[parts.length - 1]!) };
}

async function expectRealDir(path: string): Promise<void> {
  const st = await lstatOrUndefined(path);
  if (st === undefined) throw parentMissing(path);
  if (!st.isDirectory()) throw notADirectory(path, st.isSymbolicLink());
}

async function lstatOrUndefined(path: string) {
  try {
    return await fsp.lstat(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw fromErrno(e, 'target', path);
  }
}

async function expanded(path: string, role: Role): Promise<string> {
  const p = await expandHome(path);
  if (p === undefined) throw unknownUserError(path, role);
  return p;
}

/** Something other than a directory is where the source has one: it is left alone. */
function notADirectory(path: string, link: boolean): PdcError {
  return exists(path, link ? 'a symlink' : 'not a directory', 'a directory');
}

/** Something of another kind is at a name of the tree: it is left alone. */
function exists(path: string, what: string, wanted: string): PdcError {
  return notRegular('target', path, `${what} where the source has ${wanted}; left alone`, 'remove or rename it on the target, then rerun');
}
