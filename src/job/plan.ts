/**
 * The job's decisions, as pure functions: where each source lands (rsync's
 * trailing-slash rule), and what to do with each entry of a directory.
 */
import type { DirEntry } from '../protocol/messages.js';
import { baseName, dirName } from '../path-names.js';

/** A source names its contents (not itself) when it ends with `/` or `/.` (rsync: `dir/` copies what is in dir). */
export function namesContents(path: string): boolean {
  return /\/\.?$/.test(path) || path === '.';
}

export { baseName, dirName };

/**
 * Where one source lands in the target directory: a directory's contents into the
 * directory itself when the source ends with `/`, else under the source's own name.
 */
export function landing(source: string, isDir: boolean, targetDir: string, join: (dir: string, name: string) => string): string {
  return isDir && namesContents(source) ? targetDir : join(targetDir, baseName(source));
}

/** A name a directory listing may hold: anything else (from a hostile peer) would step out of its directory. */
export function safeName(name: string): boolean {
  return name !== '' && name !== '.' && name !== '..' && !name.includes('/') && !name.includes('\0');
}

export interface EntryOptions {
  /** -t without --checksum: a file whose size and mtime match is not compared (rsync's quick check). */
  quickCheck: boolean;
}

export type EntryPlan =
  | { do: 'dir' }
  | { do: 'sync'; exists: boolean }
  | { do: 'symlink' }
  | { do: 'uptodate' }
  | { do: 'skip'; reason: string }
  | { do: 'fail'; code: 'TARGET_NOT_REGULAR' | 'TARGET_OUTSIDE_TREE'; reason: string };

/** mtimes are the same to the millisecond (what utimes keeps of them on every file system we write). */
export function sameTime(a: number, b: number): boolean {
  return Math.abs(a - b) < 1;
}

/**
 * What to do with one source entry, given what is at its name on the target. A
 * target entry of another kind is never replaced (it is reported instead): the one
 * exception is a symlink, replaced by the source's link.
 */
export function planEntry(src: DirEntry, dst: DirEntry | undefined, o: EntryOptions): EntryPlan {
  if (!safeName(src.name)) return { do: 'fail', code: 'TARGET_OUTSIDE_TREE', reason: `the name ${JSON.stringify(src.name)} would leave the directory` };
  if (src.kind === 'other') return { do: 'skip', reason: 'not a regular file, directory or symlink' };
  if (dst && dst.kind !== src.kind && !(src.kind === 'symlink' && dst.kind === 'symlink')) {
    return { do: 'fail', code: 'TARGET_NOT_REGULAR', reason: `the target is ${KIND_NAME[dst.kind]} where the source has ${KIND_NAME[src.kind]}; left alone` };
  }
  if (src.kind === 'dir') return { do: 'dir' };
  if (src.kind === 'symlink') return dst?.linkTarget === src.linkTarget ? { do: 'uptodate' } : { do: 'symlink' };
  if (dst && o.quickCheck && dst.size === src.size && sameTime(dst.mtimeMs, src.mtimeMs)) return { do: 'uptodate' };
  return { do: 'sync', exists: !!dst };
}

/**
 * --delete: the target entries of a synced directory that the source does not have,
 * in name order. Only names listed in that directory: nothing above or beside the tree.
 */
export function toDelete(sourceNames: ReadonlySet<string>, target: readonly DirEntry[]): DirEntry[] {
  return target.filter((e) => safeName(e.name) && !sourceNames.has(e.name));
}

const KIND_NAME: Record<DirEntry['kind'], string> = { file: 'a file', dir: 'a directory', symlink: 'a symlink', other: 'a special file' };
