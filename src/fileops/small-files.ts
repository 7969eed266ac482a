/**
 * Small files of a tree, many per request: the source reads whole files, the target
 * writes, fsyncs, verifies and sets the metadata of whole files. Each file keeps the
 * rules of the one-file path: the source is opened without following a link and must
 * be a regular file that does not change while read; the target is opened as an
 * in-place target (locked, a symlink followed only as resolveOnce allows, a new file
 * created exclusively, never on a kernel pseudo file system), only inside the tree's
 * root (tree.ts). One file's failure is its own: it is reported in its slot and the
 * others go on. Node 12 built-ins only (the agent bundles this file).
 */
import { constants as fsConstants, promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import type { FileHandle } from 'node:fs/promises';
import { fromErrno, notRegular, type Role } from '../errors/errno.js';
import { PdcError, sourceChanged, verifyFailed, type WireError } from '../errors/pdc-error.js';
import { createBlockHasher } from '../hash/methods.js';
import type { FileMeta, ReadFilesArgs, ReadFilesResult, WriteFilesArgs, WriteFilesResult } from '../protocol/messages.js';
import { MAX_ERROR_TEXT_BYTES } from '../protocol/ops.js';
import { isTempNameOf, removeStaleTemps, TEMP_MARK } from './atomic.js';
import { expandHome, unknownUserError } from './home.js';
import { openInPlaceTarget } from './in-place.js';
import { TargetLock } from './lock.js';
import { DEFAULT_NEW_MODE, PERMISSION_BITS } from './mode.js';
import { MODE_BITS } from '../protocol/limits.js';
import { pseudoFileError, pseudoFsOf } from './pseudo-fs.js';
import { parentInTree } from './tree.js';

/** Files of a batch handled at once: their opens, reads and fsyncs overlap (fsyncs of several files share a journal commit). */
const FILES_AT_ONCE = 8;
const READ_SOURCE = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW | fsConstants.O_NONBLOCK;
/** A listed file that turned out to be something else: it changed since the listing. */
const CHANGED_KIND_HINT = 'pdiffcopy copies regular files, directories and symlinks; rerun to pick up what changed';

/** Read each file whole; the bytes of those read follow one another in the returned buffers. */
export async function readSmallFiles(a: ReadFilesArgs): Promise<{ result: ReadFilesResult; buffers: Buffer[] }> {
  const out: Array<{ mtimeMs: number; error?: WireError; data?: Buffer }> = a.files.map(() => ({ mtimeMs: 0 }));
  await eachAtOnce(a.files.length, async (i) => {
    const f = a.files[i]!;
    try {
      const got = await readOne(f.path, f.size);
      out[i] = got;
    } catch (e) {
      out[i] = { mtimeMs: 0, error: wire(e, 'source', f.path) };
    }
  });
  const buffers = out.filter((o) => o.data !== undefined && o.data.length > 0).map((o) => o.data!);
  return { result: { files: out.map((o) => (o.error ? { mtimeMs: 0, error: o.error } : { mtimeMs: o.mtimeMs })) }, buffers };
}

async function readOne(given: string, size: number): Promise<{ mtimeMs: number; data: Buffer }> {
  const path = await expanded(given, 'source');
  await refusePseudo(path, 'source');
  let fh: FileHandle;
  try {
    fh = await fsp.open(path, READ_SOURCE);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw notRegular('source', path, 'a symbolic link', CHANGED_KIND_HINT);
    throw e;
  }
  try {
    const before = await fh.stat();
    if (!before.isFile()) throw notRegular('source', path, 'not a regular file', CHANGED_KIND_HINT);
    if (before.size !== size) throw sourceChanged(path);
    const data = Buffer.allocUnsafe(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await fh.read(data, at, size - at, at);
      if (bytesRead === 0) throw sourceChanged(path);
      at += bytesRead;
    }
    const after = await fh.stat();
    if (after.size !== size || after.mtimeMs !== before.mtimeMs) throw sourceChanged(path);
    return { mtimeMs: before.mtimeMs, data };
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Write each file whole from `payload` (the files' bytes one after another), each in its own slot of the answer. */
export async function writeSmallFiles(a: WriteFilesArgs, payload: readonly Buffer[]): Promise<WriteFilesResult> {
  const total = a.files.reduce((sum, f) => sum + f.size, 0);
  const given = payload.reduce((sum, b) => sum + b.length, 0);
  if (given !== total) throw new PdcError('PROTOCOL_ERROR', `bad "writefiles" request: ${given} bytes of payload for files of ${total} bytes`);
  const hasher = await createBlockHasher(a.method);
  const pieces = split(payload, a.files.map((f) => f.size));
  const out: WriteFilesResult['files'] = a.files.map(() => ({ created: false }));
  const temps = new TempNames();
  await eachAtOnce(a.files.length, async (i) => {
    const f = a.files[i]!;
    try {
      out[i] = await writeOne(a.root, f, pieces[i]!, hasher, temps);
    } catch (e) {
      out[i] = { created: false, error: wire(e, 'target', f.path) };
    }
  });
  return { files: out };
}

async function writeOne(
  root: string,
  f: WriteFilesArgs['files'][number],
  data: Buffer[],
  hasher: (d: Uint8Array) => Uint8Array,
  temps: TempNames,
): Promise<WriteFilesResult['files'][number]> {
  const { path } = await parentInTree(root, f.path);
  await refusePseudo(path, 'target');
  // Taken before anything is created, as open does: a second run cannot interleave.
  const lock = new TargetLock(path);
  lock.acquire(path);
  try {
    const { fh, created } = await openInPlaceTarget(path, true, (f.mode ?? DEFAULT_NEW_MODE) & PERMISSION_BITS);
    try {
      await writeAll(fh, data);
      await fh.truncate(f.size);
      await fh.sync();
      await verify(fh, path, f.size, f.hash, hasher);
      if (f.meta) await applyMeta(fh, f.meta);
    } finally {
      await fh.close().catch(() => undefined);
    }
    const removed = (await temps.anyOf(path)) ? await removeStaleTemps(path) : [];
    return removed.length > 0 ? { created, removed } : { created };
  } catch (e) {
    throw fromErrno(e, 'target', path);
  } finally {
    lock.release();
  }
}

/**
 * Temp names left by --atomic runs, read once per directory of a batch: a file is
 * then looked at (removeStaleTemps) only when its directory holds a temp name of it,
 * instead of each file of a big directory listing that directory again.
 */
class TempNames {
  private readonly byDir = new Map<string, Promise<string[]>>();

  async anyOf(target: string): Promise<boolean> {
    const dir = dirname(target);
    let names = this.byDir.get(dir);
    if (!names) {
      names = fsp.readdir(dir).then((all) => all.filter((n) => n.includes(TEMP_MARK)), () => []);
      this.byDir.set(dir, names);
    }
    return (await names).some((n) => isTempNameOf(target, n));
  }
}

async function writeAll(fh: FileHandle, buffers: Buffer[]): Promise<void> {
  let list = buffers.filter((b) => b.length > 0);
  let pos = 0;
  while (list.length > 0) {
    const { bytesWritten } = await fh.writev(list, pos);
    pos += bytesWritten;
    let n = bytesWritten;
    while (list.length > 0 && n >= list[0]!.length) n -= list.shift()!.length;
    if (n > 0) list[0] = list[0]!.subarray(n);
  }
}

/** Read the file back after fsync: its size and the digest of its bytes must be the source's. */
async function verify(fh: FileHandle, path: string, size: number, want: Uint8Array, hasher: (d: Uint8Array) => Uint8Array): Promise<void> {
  const back = Buffer.allocUnsafe(size);
  let at = 0;
  while (at < size) {
    const { bytesRead } = await fh.read(back, at, size - at, at);
    if (bytesRead === 0) break;
    at += bytesRead;
  }
  const st = await fh.stat();
  if (at !== size || st.size !== size || !Buffer.from(hasher(back)).equals(Buffer.from(want))) {
    throw verifyFailed(`${path} read back wrong after fsync`);
  }
}

/** Owner, then mode (a chown clears set-id bits), then times: as setMeta, on the descriptor written. */
async function applyMeta(fh: FileHandle, m: FileMeta): Promise<void> {
  if (m.uid !== undefined || m.gid !== undefined) await fh.chown(m.uid ?? -1, m.gid ?? -1);
  if (m.mode !== undefined) await fh.chmod(m.mode & MODE_BITS);
  if (m.mtimeMs !== undefined) {
    const st = await fh.stat();
    await fh.utimes(st.atimeMs / 1000, m.mtimeMs / 1000);
  }
}

/** Each file's bytes from a payload holding them one after another (one buffer per file: a copy only where one spans two chunks). */
export function bytesOfEach(payload: readonly Buffer[], sizes: number[]): Buffer[] {
  return split(payload, sizes).map((parts) => (parts.length === 1 ? parts[0]! : Buffer.concat(parts)));
}

/** The payload cut into each file's bytes (views, no copy). */
function split(payload: readonly Buffer[], sizes: number[]): Buffer[][] {
  const out: Buffer[][] = [];
  let k = 0;
  let off = 0;
  for (const size of sizes) {
    const mine: Buffer[] = [];
    for (let left = size; left > 0; ) {
      const b = payload[k]!;
      const n = Math.min(left, b.length - off);
      mine.push(b.subarray(off, off + n));
      left -= n;
      off += n;
      if (off === b.length) {
        k++;
        off = 0;
      }
    }
    out.push(mine);
  }
  return out;
}

async function eachAtOnce(count: number, work: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < count) await work(next++);
  };
  await Promise.all(Array.from({ length: Math.min(FILES_AT_ONCE, count) }, worker));
}

async function refusePseudo(path: string, role: Role): Promise<void> {
  const fsName = await pseudoFsOf(path);
  if (fsName !== undefined) throw pseudoFileError(path, role, fsName);
}

async function expanded(path: string, role: Role): Promise<string> {
  const p = await expandHome(path);
  if (p === undefined) throw unknownUserError(path, role);
  return p;
}

/** One file's error for its slot of the answer, its texts within what the op table lets an answer carry. */
function wire(e: unknown, role: Role, path: string): WireError {
  const w = (e instanceof PdcError ? e : fromErrno(e, role, path)).toWire();
  return { ...w, message: shorten(w.message), ...(w.hint ? { hint: shorten(w.hint) } : {}) };
}

function shorten(text: string): string {
  let s = text;
  while (Buffer.byteLength(s) > MAX_ERROR_TEXT_BYTES) s = `${s.slice(0, Math.floor(s.length * 0.9))}...`;
  return s;
}
