import { createHash } from 'node:crypto';
import { constants as fsConstants, promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromErrno, type Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { digestFile, hashFileBlocks, readFully, READ_CHUNK_BYTES } from '../hash/file-hash.js';
import type { BlockRange } from '../hash/file-hash.js';
import type { OpenArgs, OpenResult, SpaceResult, StatResult } from '../protocol/messages.js';
import { BufferPool, type Chunk, chunkOf } from './buffer-pool.js';
import { commitTemp, mkdirParents, prepareTemp, tempPathFor } from './atomic.js';
import { TargetLock } from './lock.js';

/** Pooled read buffers are this big: the engine's largest transfer run (see plan.ts). */
export const TRANSFER_BUFFER_BYTES = 4 * 1024 * 1024;

/**
 * File operations on one file, as both the agent and the CLI's own side perform
 * them. Every errno is translated here, once, into a PdcError naming the role.
 * Touches only the path it is given (and creates its missing parent directories
 * when opening a target).
 */
export class FileService {
  private fh: FileHandle | undefined;
  private path = '';
  private role: Role = 'source';
  private lock: TargetLock | undefined;
  /** --atomic: the temp file being built (renamed over the target by commit()). */
  private tempPath: string | undefined;
  private readonly scratch: Buffer[] = [];
  private readonly pool = new BufferPool(TRANSFER_BUFFER_BYTES);
  private opening: Promise<unknown> = Promise.resolve();

  async stat(path: string, role: Role): Promise<StatResult> {
    let symlink = false;
    try {
      symlink = (await fsp.lstat(path)).isSymbolicLink();
      const st = await fsp.stat(path);
      return {
        exists: true,
        kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : 'other',
        size: st.size,
        mtimeMs: st.mtimeMs,
        dev: st.dev,
        ino: st.ino,
        symlink,
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return { exists: false, kind: 'missing', size: 0, mtimeMs: 0, dev: 0, ino: 0, symlink };
      }
      throw fromErrno(e, role, path);
    }
  }

  /**
   * Free space where `path` is, or will be created: the file system of its nearest
   * existing ancestor. Unknown (null) where this Node has no fs.statfs (before 18.15).
   * A read-only file system is TARGET_PERMISSION here: no amount of free space helps.
   */
  async space(path: string): Promise<SpaceResult> {
    const statfs = (fsp as { statfs?: (p: string) => Promise<{ bavail: number; bsize: number }> }).statfs;
    if (typeof statfs !== 'function') return { available: null, unknownReason: `Node ${process.version} has no fs.statfs (added in 18.15)` };
    for (let at = path; ; at = dirname(at)) {
      try {
        const fs = await statfs.call(fsp, at);
        await fsp.access(at, fsConstants.W_OK).catch((e: NodeJS.ErrnoException) => {
          if (e.code === 'EROFS') throw e; // other refusals are open's to report, with what it tried
        });
        // bavail, not bfree: the blocks reserved for root are left out, so the answer errs on the safe side.
        return { available: fs.bavail * fs.bsize };
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(at) === at) throw fromErrno(e, 'target', path);
      }
    }
  }

  /**
   * Opens run one at a time: two overlapping opens (a misbehaving peer) would
   * otherwise both pass close() and leak one file handle and its lock.
   */
  open(args: OpenArgs): Promise<OpenResult> {
    const run = this.opening.then(() => this.openNow(args));
    this.opening = run.catch(() => undefined);
    return run;
  }

  /** `retried`: the one retry after losing a creation race (EEXIST); never loops. */
  private async openNow(args: OpenArgs, retried = false): Promise<OpenResult> {
    await this.close();
    this.path = args.path;
    this.role = args.role;
    const write = args.role === 'target' && args.write !== false;
    const st = await this.stat(args.path, args.role);
    if (st.exists && st.kind !== 'file') {
      throw new PdcError(
        args.role === 'source' ? 'SOURCE_NOT_REGULAR' : 'TARGET_NOT_REGULAR',
        `${args.role} ${args.path} is ${st.kind === 'dir' ? 'a directory' : 'not a regular file (FIFO, device or socket)'}`,
        { hint: 'pdiffcopy copies regular files only' },
      );
    }
    if (write && args.lock) {
      // Taken before anything is created or seeded, so a second run cannot interleave.
      const lock = new TargetLock(args.path);
      lock.acquire(args.path);
      this.lock = lock;
    }
    let created = false;
    try {
      if (write && args.atomic) {
        this.tempPath = tempPathFor(args.path);
        if (args.create) created = !(await prepareTemp(args.path, this.tempPath, st.exists)).resumed && !st.exists;
        this.fh = await fsp.open(this.tempPath, 'r+');
      } else if (!write) {
        this.fh = await fsp.open(args.path, 'r');
      } else if (st.exists) {
        this.fh = await fsp.open(args.path, 'r+');
      } else {
        if (!args.create) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        if (st.symlink) {
          // A dangling symlink: O_EXCL would fail with EEXIST forever. Like cp, refuse to write through it.
          throw new PdcError('TARGET_NOT_REGULAR', `target ${args.path} is a symbolic link to a missing file`, {
            hint: 'remove the link, or name the file it should point to',
          });
        }
        // Not fsp.mkdir(recursive): its ENOENT/EEXIST hid EROFS and "a parent is a file" (see mkdirParents).
        await mkdirParents(dirname(args.path));
        this.fh = await fsp.open(args.path, 'wx+', 0o644);
        created = true;
      }
    } catch (e) {
      this.releaseLock();
      if (write && !retried && (e as NodeJS.ErrnoException).code === 'EEXIST') return this.openNow({ ...args }, true);
      throw fromErrno(e, args.role, args.path);
    }
    const fst = await this.fh.stat();
    return { size: fst.size, mtimeMs: fst.mtimeMs, dev: fst.dev, ino: fst.ino, created };
  }

  async hash(range: BlockRange, method: string): Promise<Buffer> {
    const fh = this.handle();
    // One scratch buffer per concurrent hash request, reused across requests.
    const buf = this.scratch.pop() ?? Buffer.allocUnsafe(Math.max(READ_CHUNK_BYTES, range.blockSize));
    try {
      return await hashFileBlocks(fh, range, method, buf);
    } catch (e) {
      throw this.translate(e);
    } finally {
      this.scratch.push(buf);
    }
  }

  /** Read into a pooled buffer; the caller releases the chunk when done with it. */
  async read(offset: number, length: number): Promise<Chunk> {
    const buf = this.pool.acquire(length);
    try {
      const got = await readFully(this.handle(), buf, length, offset);
      return chunkOf([buf.subarray(0, got)], () => this.pool.release(buf));
    } catch (e) {
      this.pool.release(buf);
      throw this.translate(e);
    }
  }

  /** Positional gather-write of a chunk list (a stream's chunks as received: no copy). */
  async write(offset: number, buffers: readonly Buffer[]): Promise<void> {
    const fh = this.handle();
    try {
      let list = buffers.filter((b) => b.length > 0);
      let pos = offset;
      while (list.length > 0) {
        const { bytesWritten } = await fh.writev(list, pos);
        pos += bytesWritten;
        list = dropFront(list, bytesWritten);
      }
    } catch (e) {
      throw this.translate(e);
    }
  }

  async truncate(size: number): Promise<void> {
    try {
      await this.handle().truncate(size);
    } catch (e) {
      throw this.translate(e);
    }
  }

  async fsync(): Promise<void> {
    try {
      await this.handle().sync();
    } catch (e) {
      throw this.translate(e);
    }
  }

  async digest(method: string, limit: number): Promise<Buffer> {
    try {
      createHash(method);
    } catch {
      throw new PdcError('UNKNOWN_HASH_METHOD', `unknown digest method "${method}"`, { hint: 'use a node:crypto hash such as sha256' });
    }
    try {
      return await digestFile(this.handle(), method, limit);
    } catch (e) {
      throw this.translate(e);
    }
  }

  /** The file the open handle refers to: the temp file while an --atomic target is being built. */
  get activePath(): string {
    return this.tempPath ?? this.path;
  }

  /** --atomic: put the finished temp file in the target's place (no-op otherwise). */
  async commit(): Promise<void> {
    if (!this.tempPath) return;
    try {
      await commitTemp(this.handle(), this.tempPath, this.path);
      this.tempPath = undefined;
    } catch (e) {
      throw this.translate(e);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.scratch.length = 0;
    if (fh) await fh.close().catch(() => undefined);
    this.tempPath = undefined;
    this.releaseLock();
  }

  private releaseLock(): void {
    this.lock?.release();
    this.lock = undefined;
  }

  private handle(): FileHandle {
    if (!this.fh) throw new PdcError('PROTOCOL_ERROR', 'no file is open (send "open" first)');
    return this.fh;
  }

  private translate(e: unknown): PdcError {
    return fromErrno(e, this.role, this.path);
  }
}

/** The buffers left after the first n bytes (after a short writev). */
function dropFront(list: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < list.length && n >= list[i]!.length) n -= list[i++]!.length;
  const rest = list.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}
