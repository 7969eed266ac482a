import { promises as fsp } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromErrno, type Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { digestFile, hashFileBlocks, readFully, READ_CHUNK_BYTES } from '../hash/file-hash.js';
import type { BlockRange } from '../hash/file-hash.js';
import type { OpenArgs, OpenResult, StatResult } from '../protocol/messages.js';
import { TargetLock } from './lock.js';

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
  private readonly scratch: Buffer[] = [];

  async stat(path: string, role: Role = 'source'): Promise<StatResult> {
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

  async open(args: OpenArgs): Promise<OpenResult> {
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
    let created = false;
    try {
      if (!write) {
        this.fh = await fsp.open(args.path, 'r');
      } else if (st.exists) {
        this.fh = await fsp.open(args.path, 'r+');
      } else {
        if (!args.create) throw Object.assign(new Error('missing'), { code: 'ENOENT' });
        await fsp.mkdir(dirname(args.path), { recursive: true });
        this.fh = await fsp.open(args.path, 'wx+', 0o644);
        created = true;
      }
    } catch (e) {
      if (write && (e as NodeJS.ErrnoException).code === 'EEXIST') return this.open({ ...args });
      throw fromErrno(e, args.role, args.path);
    }
    const fst = await this.fh.stat();
    if (write && args.lock) {
      this.lock = new TargetLock(fst.dev, fst.ino);
      try {
        this.lock.acquire(args.path);
      } catch (e) {
        this.lock = undefined;
        await this.close();
        throw e;
      }
    }
    return { size: fst.size, mtimeMs: fst.mtimeMs, dev: fst.dev, ino: fst.ino, created };
  }

  async hash(range: BlockRange, method: string): Promise<Buffer> {
    const fh = this.handle();
    const buf = this.scratch.pop();
    try {
      return await hashFileBlocks(fh, range, method, buf);
    } catch (e) {
      throw this.translate(e);
    } finally {
      if (buf) this.scratch.push(buf);
      else this.scratch.push(Buffer.allocUnsafe(Math.max(READ_CHUNK_BYTES, range.blockSize)));
    }
  }

  async read(offset: number, length: number): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    try {
      const got = await readFully(this.handle(), buf, length, offset);
      return got === length ? buf : buf.subarray(0, got);
    } catch (e) {
      throw this.translate(e);
    }
  }

  async write(offset: number, data: Uint8Array): Promise<void> {
    const fh = this.handle();
    try {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, offset + done);
        done += bytesWritten;
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
      return await digestFile(this.handle(), method, limit);
    } catch (e) {
      throw this.translate(e);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.scratch.length = 0;
    if (fh) await fh.close().catch(() => undefined);
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
