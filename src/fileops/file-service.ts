import { createHash } from 'node:crypto';
import { constants as fsConstants, existsSync, fstatSync, promises as fsp, readSync, writeSync } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fromErrno, notRegular, type Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { digestFile, hashFileBlocks, readFully, READ_CHUNK_BYTES, unitDigests } from '../hash/file-hash.js';
import { createBlockHasher, createDigestWriter, createPiecesWriter } from '../hash/methods.js';
import { inPlaceTail } from '../hash/xxh64-pieces.js';
import { MAX_LEFT_ALONE_LISTED, REFINE_RUNS_IN_FLIGHT, TRANSFER_RUN_BYTES } from '../protocol/limits.js';
import { piecesBytes, piecesDigests } from '../protocol/ops.js';
import type { BlockRange } from '../hash/file-hash.js';
import type { WorkerFile } from '../hash/worker-messages.js';
import type { CommitResult, OpenArgs, OpenResult, SpaceResult, StatResult } from '../protocol/messages.js';
import { alignedBuffer } from './aligned-buffer.js';
import { BufferPool, type Chunk, chunkOf } from './buffer-pool.js';
import { type AtomicTarget, commitTemp, joinTemp, openAtomicTarget, removeStaleTemps, resolveOnce } from './atomic.js';
import { blockDeviceSize, deviceInUse, deviceInUseError } from './block-device.js';
import { resolveDotDot } from './dotdot.js';
import { expandHome, unknownUserError } from './home.js';
import { openInPlaceTarget } from './in-place.js';
import { TargetLock } from './lock.js';
import { DEFAULT_NEW_MODE, PERMISSION_BITS } from './mode.js';
import { dataOutside, findZeroRuns, zeroBuffers } from './zero-runs.js';
import { pseudoFileError, pseudoFsOf } from './pseudo-fs.js';
import { type Window, WindowCache } from './window-cache.js';
import { FALLOCATE_PATHS, findFallocate, punchHole } from './punch-hole.js';

/** Hash workers reopen our descriptor through this, so they read the file we hold even if its name is swapped. */
const PROC_FD_DIR = '/proc/self/fd';
const procFdUsable = existsSync(PROC_FD_DIR);

/** Written bytes after which writing them back to disk is started (see FileService.wrote). */
const EARLY_FLUSH_BYTES = 64 * 1024 * 1024;
/** A write of any size dirties at least one page of the page cache. */
const PAGE_BYTES = 4096;

/**
 * Pieces of one write request at most this far apart are written as one span: the bytes
 * between them are read and written back unchanged (the pieces of a request are sorted, and
 * nothing else of this run writes between them). Measured here: the first write into a
 * clean page costs several microseconds, about what reading and copying 16 KiB does; three
 * 64-byte writes per changed 16 KiB page cost 0.65-0.88 CPU-s per 2 GiB, one 16 KiB write
 * per page 0.38-0.42.
 */
const PIECES_SPAN_GAP = 16 * 1024;
/** Longest span read and written back at once. */
const PIECES_SPAN_BYTES = 256 * 1024;


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
  /** --atomic, on the agent that made the temp file: what commit() needs. */
  private atomic: AtomicTarget | undefined;
  /** Permission bits (before the umask) for a target this run creates. */
  private newMode = DEFAULT_NEW_MODE;
  private readonly scratch: Buffer[] = [];
  /** Refinement's read windows, kept for its next rounds over the same run (window-cache.ts); as many as the open asked for. */
  private windows = new WindowCache(REFINE_RUNS_IN_FLIGHT);
  /** Where writePieces joins close pieces with the bytes between them (allocated on first use). */
  private spanBuffer?: Buffer;
  /** Read buffers, each as large as the engine's largest transfer run. */
  private readonly pool = new BufferPool(TRANSFER_RUN_BYTES);
  private opening: Promise<unknown> = Promise.resolve();
  /** The open file is a block device (written in place, never truncated). */
  private device = false;
  /** Bytes (whole pages for pieces) written since the last flush was started. */
  private unflushed = 0;
  /** The flush started while writing (settles with its failure, if any: fsync() reports it). */
  private flushing: Promise<unknown> | undefined;
  /** fallocate(1) for --sparse: null until looked for, undefined when missing or failing. */
  private fallocate: string | undefined | null = null;

  /** fallocatePaths: where fallocate(1) is looked for (tests name a missing one). */
  constructor(private readonly fallocatePaths: readonly string[] = FALLOCATE_PATHS) {}

  async stat(givenPath: string, role: Role): Promise<StatResult> {
    let symlink = false;
    const path = await expandHome(givenPath);
    if (path === undefined) throw unknownUserError(givenPath, role);
    try {
      symlink = (await fsp.lstat(path)).isSymbolicLink();
      const st = await fsp.stat(path);
      const block = st.isBlockDevice();
      return {
        exists: true,
        kind: st.isFile() ? 'file' : st.isDirectory() ? 'dir' : block ? 'block' : 'other',
        // stat says 0 for a device: its size comes from sysfs.
        size: block ? blockDeviceSize(path, st.rdev) : st.size,
        mtimeMs: st.mtimeMs,
        dev: st.dev,
        ino: st.ino,
        mode: st.mode & PERMISSION_BITS,
        symlink,
      };
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') {
        return missingStat(symlink);
      }
      throw fromErrno(e, role, path);
    }
  }

  /**
   * Free space where `path` is, or will be created: the file system of its nearest
   * existing ancestor. Unknown (null) where this Node has no fs.statfs (before 18.15).
   * A read-only file system is TARGET_PERMISSION here: no amount of free space helps.
   */
  async space(givenPath: string): Promise<SpaceResult> {
    const path = await resolvePath(givenPath, 'target', true);
    // A kernel file system's "free space" means nothing: say what the target is instead.
    await refusePseudoFile(path, 'target');
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
  private async openNow(given: OpenArgs, retried = false): Promise<OpenResult> {
    await this.close();
    this.windows = new WindowCache(given.windows ?? REFINE_RUNS_IN_FLIGHT);
    const write = given.role === 'target' && given.write !== false;
    const args = { ...given, path: await resolvePath(given.path, given.role, write) };
    this.path = args.path;
    this.role = args.role;
    const st = await this.stat(args.path, args.role);
    // A block device only where the caller asked for one (args.device): everything else stays refused.
    if (st.exists && st.kind === 'block' && args.device) return this.openDevice(args, write);
    if (st.exists && st.kind !== 'file') {
      const what = st.kind === 'dir' ? 'a directory' : 'not a regular file (FIFO, device or socket)';
      throw notRegular(args.role, args.path, what, 'pdiffcopy copies regular files only');
    }
    if (st.exists || write) await refusePseudoFile(args.path, args.role);
    if (write && args.lock) {
      // Taken before anything is created or seeded, so a second run cannot interleave.
      const lock = new TargetLock(args.path);
      lock.acquire(args.path);
      this.lock = lock;
    }
    let created = false;
    let extra: Pick<OpenResult, 'temp' | 'resumed' | 'leftAlone' | 'leftAloneMore'> = {};
    this.newMode = args.mode ?? DEFAULT_NEW_MODE;
    try {
      if (write && !st.exists && st.symlink) throw danglingLink(args.path);
      if (write && args.atomic && args.join) {
        // Another agent of this run made the temp file: open exactly that file.
        this.fh = await joinTemp(args.join.path, args.join);
        this.tempPath = args.join.path;
      } else if (write && args.atomic) {
        const t = await openAtomicTarget(args.path);
        this.atomic = t;
        this.fh = t.fh;
        this.tempPath = t.temp;
        created = !t.old;
        extra = { temp: t.temp, resumed: t.resumed, ...leftAloneAnswer(t.leftAlone) };
      } else if (!write) {
        this.fh = await openToRead(args.path, args.role);
      } else {
        ({ fh: this.fh, created } = await openInPlaceTarget(args.path, !!args.create, (args.mode ?? DEFAULT_NEW_MODE) & PERMISSION_BITS));
      }
    } catch (e) {
      this.releaseLock();
      if (write && !retried && (e as NodeJS.ErrnoException).code === 'EEXIST') return this.openNow({ ...args }, true);
      throw fromErrno(e, args.role, args.path);
    }
    const fst = await this.fh.stat();
    return { size: fst.size, mtimeMs: fst.mtimeMs, dev: fst.dev, ino: fst.ino, mode: fst.mode & PERMISSION_BITS, created, ...extra };
  }

  /**
   * A block device, written in place (never created, truncated or replaced): a symlink to
   * it is followed once, as for a file (root's or ours only), then opened with O_NOFOLLOW
   * and checked to be a block device. One in use is refused unless forced; the agents
   * after the first skip that check ('checked'), the first one made it.
   */
  private async openDevice(args: OpenArgs, write: boolean): Promise<OpenResult> {
    const role = args.role;
    if (args.atomic) {
      throw new PdcError('USAGE', `--atomic cannot be used with block device ${args.path}: a device is not replaced by renaming`, {
        hint: 'drop --atomic: a device is written in place',
      });
    }
    try {
      const real = write ? await resolveOnce(args.path) : args.path;
      if (write && args.lock) {
        const lock = new TargetLock(args.path);
        lock.acquire(args.path);
        this.lock = lock;
      }
      // O_NONBLOCK: a FIFO swapped in at the name must fail the check below, not hang the open.
      const fh = await fsp.open(real, (write ? fsConstants.O_RDWR | fsConstants.O_NOFOLLOW : fsConstants.O_RDONLY) | fsConstants.O_NONBLOCK);
      this.fh = fh;
      const fst = await fh.stat();
      if (!fst.isBlockDevice()) {
        throw new PdcError(role === 'source' ? 'SOURCE_CHANGED' : 'TARGET_CHANGED', `${role} ${args.path} changed under this run (it is no longer a block device)`, {
          hint: 'check who else renames files there, then rerun',
        });
      }
      if (args.device === 'check') {
        const why = await deviceInUse(real, fst.rdev);
        if (why !== undefined) throw deviceInUseError(args.path, role, why);
      }
      this.device = true;
      return { size: blockDeviceSize(real, fst.rdev), mtimeMs: fst.mtimeMs, dev: fst.dev, ino: fst.ino, mode: fst.mode & PERMISSION_BITS, created: false };
    } catch (e) {
      await this.close();
      throw fromErrno(e, role, args.path);
    }
  }

  async hash(range: BlockRange, method: string): Promise<Buffer> {
    const fh = this.handle();
    // One scratch buffer per concurrent hash request, reused across requests.
    const size = Math.max(READ_CHUNK_BYTES, range.blockSize);
    const buf = this.scratch.pop() ?? alignedBuffer(size, inPlaceTail(size));
    try {
      return await hashFileBlocks(fh, range, method, buf);
    } catch (e) {
      throw this.translate(e);
    } finally {
      this.scratch.push(buf);
    }
  }

  /**
   * Read into a pooled buffer; the caller releases the chunk when done with it.
   * With zeroUnit, the all-zero units (of that many bytes from `offset`) are reported
   * as zero runs and left out of the chunk's buffers; with `hashMethod` too, each unit's
   * digest comes with the chunk (see unitDigests).
   */
  async read(offset: number, length: number, zeroUnit?: number, hashMethod?: string): Promise<Chunk> {
    // Read to be sent whole: refinement is done with these bytes.
    this.forget(offset, length);
    const buf = this.pool.acquire(length);
    try {
      const got = await readFully(this.handle(), buf, length, offset);
      const release = () => this.pool.release(buf);
      const data = buf.subarray(0, got);
      if (!zeroUnit) return chunkOf([data], release);
      const digests = hashMethod ? unitDigests(data, zeroUnit, await createBlockHasher(hashMethod)) : undefined;
      const zeros = findZeroRuns(data, zeroUnit);
      const chunk = chunkOf(dataOutside(data, zeros), release, zeros);
      return digests ? { ...chunk, digests } : chunk;
    } catch (e) {
      this.pool.release(buf);
      throw this.translate(e);
    }
  }

  /** Positional gather-write of a chunk list (a stream's chunks as received: no copy). */
  async write(offset: number, buffers: readonly Buffer[]): Promise<void> {
    const fh = this.handle();
    this.forget(offset, buffers.reduce((n, b) => n + b.length, 0));
    try {
      let list = buffers.filter((b) => b.length > 0);
      let pos = offset;
      while (list.length > 0) {
        const { bytesWritten } = await fh.writev(list, pos);
        pos += bytesWritten;
        list = dropFront(list, bytesWritten);
      }
      this.wrote(pos - offset);
    } catch (e) {
      throw this.translate(e);
    }
  }

  /**
   * Digests of the pieces of each range (`grain` bytes from the range's start, the last
   * clipped), concatenated: refinement inside a differing block. The ranges are read a
   * window at a time, not piece by piece.
   */
  async hashPieces(ranges: readonly number[], grain: number, method: string): Promise<Buffer> {
    const len = (await createBlockHasher(method))(Buffer.alloc(0)).length;
    const digest = await createDigestWriter(method);
    const pieces = await createPiecesWriter(method);
    const out = Buffer.allocUnsafe(piecesDigests(ranges, grain) * len);
    let k = 0;
    await this.eachPiece(ranges, (missingTo, bytes) => {
      k += pieces(bytes, grain, out, k * len);
      // A range the file ends inside: its missing pieces hash as empty (never equal to real bytes on the other side).
      for (let s = Math.ceil(bytes.length / grain) * grain; s < missingTo; s += grain, k++) digest(bytes.subarray(0, 0), out, k * len);
    });
    return out;
  }

  /** The pieces' bytes, concatenated in order, in a pooled buffer (release the chunk after use). */
  async readPieces(ranges: readonly number[]): Promise<Chunk> {
    const out = this.pool.acquire(piecesBytes(ranges));
    let n = 0;
    try {
      await this.eachPiece(ranges, (_, bytes) => {
        n += bytes.copy(out, n);
      });
      // The run's last round on this side: its windows are not needed again.
      for (let i = 0; i < ranges.length; i += 2) this.forget(ranges[i]!, ranges[i + 1]!);
    } catch (e) {
      this.pool.release(out);
      throw e;
    }
    return chunkOf([out.subarray(0, n)], () => this.pool.release(out));
  }

  /** Write each piece from the payload (the pieces' bytes concatenated, exactly as many as they cover). */
  async writePieces(ranges: readonly number[], buffers: readonly Buffer[]): Promise<void> {
    const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers);
    if (data.length !== piecesBytes(ranges)) {
      throw new PdcError('PROTOCOL_ERROR', `bad "writepieces" request: ${data.length} bytes of payload for ${piecesBytes(ranges)} bytes of pieces`);
    }
    // Pieces are small and many (a few dozen bytes each): a synchronous positional write into
    // the page cache costs a few microseconds, an asynchronous one a thread-pool round trip each.
    const fd = this.handle().fd;
    for (let i = 0; i < ranges.length; i += 2) this.forget(ranges[i]!, ranges[i + 1]!);
    try {
      for (let i = 0, at = 0; i < ranges.length; ) {
        const j = spanEnd(ranges, i);
        const start = ranges[i]!;
        const end = ranges[j - 2]! + ranges[j - 1]!;
        let bytes = 0;
        for (let k = i + 1; k < j; k += 2) bytes += ranges[k]!;
        if (j === i + 2 || !this.writeSpan(fd, ranges, i, j, data, at)) {
          for (let k = i, from = at; k < j; from += ranges[k + 1]!, k += 2) writeFullySync(fd, data, from, ranges[k + 1]!, ranges[k]!);
        }
        this.wrote(Math.max(PAGE_BYTES, end - start));
        at += bytes;
        i = j;
      }
    } catch (e) {
      throw this.translate(e);
    }
  }

  /**
   * Pieces i..j (ranges indices) written as one span: the bytes between them read from the
   * file, the pieces copied in, the span written once. False (nothing written) where the
   * file ends inside the span.
   */
  private writeSpan(fd: number, ranges: readonly number[], i: number, j: number, data: Buffer, at: number): boolean {
    const start = ranges[i]!;
    const length = ranges[j - 2]! + ranges[j - 1]! - start;
    const span = (this.spanBuffer ??= alignedBuffer(PIECES_SPAN_BYTES));
    let got = 0;
    while (got < length) {
      const n = readSync(fd, span, got, length - got, start + got);
      if (n === 0) return false;
      got += n;
    }
    for (let k = i, from = at; k < j; from += ranges[k + 1]!, k += 2) data.copy(span, ranges[k]! - start, from, from + ranges[k + 1]!);
    writeFullySync(fd, span, 0, length, start);
    return true;
  }

  /**
   * Call `fn` with each range's bytes as read (shorter only at end of file; the second
   * argument of fn is then the range's length, else 0). Reads a window of up to
   * READ_CHUNK_BYTES reaching to the last range it can hold, so close pieces cost one read.
   */
  private async eachPiece(ranges: readonly number[], fn: (missingTo: number, bytes: Buffer) => void): Promise<void> {
    const fh = this.handle();
    try {
      for (let i = 0; i < ranges.length; i += 2) {
        const off = ranges[i]!;
        const len = ranges[i + 1]!;
        if (len > READ_CHUNK_BYTES) {
          // Longer than a window: read it on its own.
          const big = Buffer.allocUnsafe(len);
          const got = await readFully(fh, big, len, off);
          fn(got < len ? len : 0, big.subarray(0, got));
          continue;
        }
        // Used synchronously only: an await may hand the window's buffer to another read.
        const w = this.windows.find(off, len) ?? (await this.readWindow(fh, ranges, i));
        const s = off - w.start;
        const got = Math.max(0, Math.min(len, w.length - s));
        fn(got < len ? len : 0, w.buf.subarray(s, s + got));
      }
    } catch (e) {
      throw this.translate(e);
    }
  }

  /** Read a window from range i reaching to the last of the following ranges it can hold, and keep it. */
  private async readWindow(fh: FileHandle, ranges: readonly number[], i: number): Promise<Window> {
    const off = ranges[i]!;
    let reach = off + ranges[i + 1]!;
    for (let j = i + 2; j < ranges.length && ranges[j]! + ranges[j + 1]! - off <= READ_CHUNK_BYTES; j += 2) reach = ranges[j]! + ranges[j + 1]!;
    // Room after the bytes: their pieces are hashed where they were read (xxh64-pieces.ts).
    const buf = this.scratch.pop() ?? alignedBuffer(READ_CHUNK_BYTES, inPlaceTail(READ_CHUNK_BYTES));
    let length: number;
    try {
      length = await readFully(fh, buf, reach - off, off);
    } catch (e) {
      this.scratch.push(buf);
      throw e;
    }
    const w = { start: off, asked: reach - off, length, buf };
    this.scratch.push(...this.windows.keep(w));
    return w;
  }

  /**
   * No kept window may answer for [offset, offset+length) any more: a write is coming
   * there, or the run is done with refinement (read to be sent, its pieces read).
   */
  private forget(offset: number, length: number): void {
    this.scratch.push(...this.windows.invalidate(offset, length));
  }

  /**
   * Zeros at offset (a zero run inside the target's old extent): with punch (--sparse)
   * a hole where this host can make one (true), otherwise `length` zero bytes written.
   * A device gets zeros: it has no holes.
   */
  async zero(offset: number, length: number, punch = false): Promise<boolean> {
    this.forget(offset, length);
    if (punch && !this.device && (await this.punch(offset, length))) return true;
    await this.write(offset, zeroBuffers(length));
    return false;
  }

  /** Make a hole; after one failure (no program, a file system that cannot) zeros are written instead. */
  private async punch(offset: number, length: number): Promise<boolean> {
    if (this.fallocate === null) this.fallocate = findFallocate(this.fallocatePaths);
    if (!this.fallocate) return false;
    const done = await punchHole(this.fallocate, this.handle().fd, offset, length);
    if (!done) this.fallocate = undefined;
    return done;
  }

  async truncate(size: number): Promise<void> {
    if (this.device) throw new PdcError('PROTOCOL_ERROR', `${this.path} is a block device: it is never truncated`);
    this.forget(0, Infinity);
    try {
      await this.handle().truncate(size);
    } catch (e) {
      throw this.translate(e);
    }
  }

  /**
   * Start writing dirty pages back once EARLY_FLUSH_BYTES were written since the last start,
   * so that the disk works during the transfer instead of during the final fsync (which
   * still runs and still decides success).
   */
  private wrote(bytes: number): void {
    this.unflushed += bytes;
    if (this.unflushed < EARLY_FLUSH_BYTES || this.flushing || !this.fh) return;
    this.unflushed = 0;
    const flush = this.fh.datasync().then(
      () => undefined,
      (e: unknown) => e,
    );
    this.flushing = flush;
    void flush.then((failed) => {
      if (!failed && this.flushing === flush) this.flushing = undefined;
    });
  }

  async fsync(): Promise<void> {
    try {
      const failed = await this.flushing;
      this.flushing = undefined;
      if (failed) throw failed;
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

  /**
   * A path a hash worker thread of this process can open to read the file we hold:
   * our descriptor through /proc (a swapped name cannot redirect it), else the name;
   * dev and ino let the worker check that it opened that very file.
   */
  workerFile(): WorkerFile {
    const fh = this.handle();
    const st = fstatSync(fh.fd);
    return { path: procFdUsable ? `${PROC_FD_DIR}/${fh.fd}` : this.activePath, name: this.path, dev: st.dev, ino: st.ino };
  }

  /**
   * The run succeeded: --atomic renames the finished temp file into the target's place;
   * either way, temp files of this target that are ours are now obsolete and removed.
   * `size` is the size the engine finished with.
   */
  async commit(size: number): Promise<CommitResult> {
    this.handle();
    try {
      let target = this.path;
      if (this.atomic) {
        await commitTemp(this.atomic, { size, newMode: this.newMode });
        target = this.atomic.renameTo;
        this.atomic = undefined;
        this.tempPath = undefined;
      }
      return { removed: await removeStaleTemps(target) };
    } catch (e) {
      throw this.translate(e);
    }
  }

  async close(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    this.scratch.length = 0;
    this.windows.clear();
    // A flush still running is waited for (it holds the descriptor); its failure no longer matters.
    await this.flushing;
    this.flushing = undefined;
    this.unflushed = 0;
    if (fh) await fh.close().catch(() => undefined);
    this.tempPath = undefined;
    this.atomic = undefined;
    this.device = false;
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
    const err = fromErrno(e, this.role, this.path);
    if (err.code !== 'TARGET_NO_SPACE' || !this.tempPath || !this.fh) return err;
    // The temp file is kept for the next run; say where it is, since it holds the space.
    let size = 0;
    try {
      size = fstatSync(this.fh.fd).size;
    } catch {
      /* closed meanwhile: size unknown */
    }
    return new PdcError(
      err.code,
      `${err.message}; the partly built new version ${this.tempPath} (${size} bytes) is kept for the next run (rm ${this.tempPath} frees its space)`,
      { hint: err.hint, cause: e },
    );
  }
}

/** A dangling symlink as the target: O_EXCL would fail with EEXIST forever. Like cp, refuse to write through it. */
function danglingLink(path: string): PdcError {
  return notRegular('target', path, 'a symbolic link to a missing file', 'remove the link, or name the file it should point to');
}

/** Kernel-generated files (/proc, /sys, ...) are neither copied nor written. */
async function refusePseudoFile(path: string, role: Role): Promise<void> {
  let fsName: string | undefined;
  try {
    fsName = await pseudoFsOf(path);
  } catch (e) {
    throw fromErrno(e, role, path);
  }
  if (fsName !== undefined) throw pseudoFileError(path, role, fsName);
}

function missingStat(symlink: boolean): StatResult {
  return { exists: false, kind: 'missing', size: 0, mtimeMs: 0, dev: 0, ino: 0, mode: 0, symlink };
}

/**
 * The path as this host's kernel will see it: `~`/`~user` expanded, and for a
 * target being written, `..` checked and resolved (so no stray parent is created).
 */
async function resolvePath(path: string, role: Role, write: boolean): Promise<string> {
  const expanded = await expandHome(path);
  if (expanded === undefined) throw unknownUserError(path, role);
  if (!write) return expanded;
  try {
    return await resolveDotDot(expanded);
  } catch (e) {
    throw fromErrno(e, role, path);
  }
}

/**
 * A file to read (the source, or the target of a dry run), checked to be a regular file when it
 * was stat'ed: opened with O_NONBLOCK, so that a FIFO swapped in at its name since cannot hold
 * the open forever (no effect on a regular file's reads), and checked again once open.
 */
async function openToRead(path: string, role: Role): Promise<FileHandle> {
  const fh = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
  if (!(await fh.stat()).isFile()) {
    await fh.close();
    throw notRegular(role, path, 'no longer a regular file (it was replaced during the run)', 'check who else writes there, then rerun');
  }
  return fh;
}

/** The buffers left after the first n bytes (after a short writev). */
function dropFront(list: Buffer[], n: number): Buffer[] {
  let i = 0;
  while (i < list.length && n >= list[i]!.length) n -= list[i++]!.length;
  const rest = list.slice(i);
  if (n > 0 && rest.length > 0) rest[0] = rest[0]!.subarray(n);
  return rest;
}

/** Index (in ranges) just past the last piece of the span that starts at piece i (see PIECES_SPAN_GAP). */
function spanEnd(ranges: readonly number[], i: number): number {
  const start = ranges[i]!;
  let end = start + ranges[i + 1]!;
  let j = i + 2;
  while (j < ranges.length && ranges[j]! - end <= PIECES_SPAN_GAP && ranges[j]! + ranges[j + 1]! - start <= PIECES_SPAN_BYTES) {
    end = ranges[j]! + ranges[j + 1]!;
    j += 2;
  }
  return j;
}

function writeFullySync(fd: number, buf: Buffer, from: number, length: number, position: number): void {
  for (let done = 0; done < length; ) done += writeSync(fd, buf, from + done, length - done, position + done);
}

/** The files at temp names left alone, as an `open` answer carries them: the first few named, the rest counted. */
function leftAloneAnswer(paths: readonly string[]): Pick<OpenResult, 'leftAlone' | 'leftAloneMore'> {
  const more = paths.length - MAX_LEFT_ALONE_LISTED;
  return { leftAlone: paths.slice(0, MAX_LEFT_ALONE_LISTED), ...(more > 0 ? { leftAloneMore: more } : {}) };
}
