import { constants, existsSync } from 'node:fs';
import { type FileHandle, lstat, open } from 'node:fs/promises';
import { geometry, hashChunks } from '../engine/plan.js';
import type { BlockRange } from '../hash/file-hash.js';
import { digestLength } from '../hash/methods.js';
import type { WorkerFile } from '../hash/worker-messages.js';
import type { Role } from '../protocol/messages.js';
import type { HashPool } from './hash-pool.js';

/** What a file was when it was hashed ahead: its answers are used only for a file opened as exactly this. */
export interface Identity {
  dev: number;
  ino: number;
  size: number;
  mtimeMs: number;
}

const PROC_FD_DIR = '/proc/self/fd';

/**
 * A local file's hash chunks computed before the engine asks for them, while the other
 * side is still connecting. Planned exactly as the engine plans its requests (the same
 * chunks of the file's own size), so a request matches an answer by its range.
 *
 * Rules that keep it from ever answering with stale hashes:
 * - an answer is given only when the file the host opened has the identity (dev, ino,
 *   size, mtime) the hashed file had when it was opened here; otherwise all is dropped;
 * - each answer is given once (a later request for the same range is hashed again);
 * - a write to a range drops the chunks it touches and they are not hashed ahead after.
 * It is best effort: anything unexpected (not a regular file, no /proc, unknown method)
 * makes it do nothing, and the engine hashes as usual.
 */
export class HashAhead {
  private readonly answers = new Map<string, Promise<Buffer>>();
  /** Chunks hashed ahead, by index, once their answer came: what a streamed run's digests are taken from. */
  private readonly hashedChunks = new Map<number, { first: number; digests: Buffer }>();
  /** Chunks not to hash ahead (any more): written to, or already asked for. */
  private readonly skip = new Set<number>();
  private stopped = false;
  /** No more chunks are hashed; those hashed are still answered. */
  private halted = false;
  private fh?: FileHandle;
  private identity?: Identity;
  private chunkBytes = 0;
  private blockSize = 0;
  private method = '';
  private digestLen = 0;
  /** Answers handed to the engine. */
  used = 0;
  /** Chunks whose hashing started. */
  hashed = 0;

  constructor(
    private readonly pool: HashPool,
    private readonly window: number,
  ) {}

  /**
   * Open `path` only if it is a regular file (never a link, a device or a FIFO, whose very
   * opening may do something) and hash its chunks, `window` requests at a time.
   */
  async start(path: string, role: Role, blockSize: number, method: string): Promise<void> {
    if (!existsSync(PROC_FD_DIR)) return;
    try {
      const seen = await lstat(path);
      if (!seen.isFile()) return this.stop();
      this.fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
      const st = await this.fh.stat();
      if (!st.isFile() || st.dev !== seen.dev || st.ino !== seen.ino || this.stopped) return this.stop();
      this.identity = { dev: st.dev, ino: st.ino, size: st.size, mtimeMs: st.mtimeMs };
      const file: WorkerFile = { path: `${PROC_FD_DIR}/${this.fh.fd}`, name: path, dev: st.dev, ino: st.ino };
      this.digestLen = await digestLength(method);
      const chunks = hashChunks(geometry(st.size, blockSize), this.digestLen);
      this.chunkBytes = chunks.length > 0 ? chunks[0]!.length : 0;
      this.blockSize = blockSize;
      this.method = method;
      const inFlight = new Set<Promise<unknown>>();
      for (const [i, c] of chunks.entries()) {
        while (inFlight.size >= this.window) await Promise.race(inFlight);
        if (this.stopped || this.halted) break;
        if (this.skip.has(i)) continue;
        this.hashed++;
        const range: BlockRange = { first: c.first, count: c.count, blockSize, limit: st.size };
        const answer = this.pool.run({ kind: 'hash', file, role, range, method });
        answer.catch(() => undefined); // unused answers may fail (the host closed): never unhandled
        this.answers.set(key(range, method), answer);
        const done = (): void => void inFlight.delete(settled);
        const keep = (digests: Buffer): void => {
          if (!this.stopped && !this.skip.has(i)) this.hashedChunks.set(i, { first: c.first, digests });
          done();
        };
        const settled: Promise<void> = answer.then(keep, done);
        inFlight.add(settled);
      }
      await Promise.allSettled(inFlight);
    } catch {
      this.stop(); // best effort: the engine hashes as usual
    } finally {
      await this.closeFile();
    }
  }

  /** The answer for `range`, once, if `opened` is the file that was hashed; else undefined (and if it is not that file, everything is dropped). */
  take(range: BlockRange, method: string, opened: Identity): Promise<Buffer> | undefined {
    if (this.stopped || !this.sameFile(opened)) return undefined;
    const k = key(range, method);
    const answer = this.answers.get(k);
    if (!answer) {
      if (this.chunkBytes > 0) this.skip.add(chunkIndexOf(k, this.chunkBytes)); // hashed by the engine's request now
      return undefined;
    }
    this.answers.delete(k);
    this.used++;
    return answer;
  }

  /**
   * The digests of the blocks of [offset, offset+length), if every one of them was hashed ahead
   * in units of `unit` bytes with `method` and `opened` is the file that was hashed; else
   * undefined. Unlike take(), asking does not use anything up: these digests are what a streamed
   * run's read-back is checked against, taken by the hash workers from their own read of the file.
   */
  digestsOf(offset: number, length: number, unit: number, method: string, opened: Identity): Buffer | undefined {
    if (this.stopped || !this.sameFile(opened) || unit !== this.blockSize || method !== this.method || length <= 0 || offset % unit !== 0) return undefined;
    const first = offset / unit;
    const count = Math.ceil(length / unit);
    const out = Buffer.allocUnsafe(count * this.digestLen);
    for (let b = first; b < first + count; b++) {
      // Block b lies in the chunk its offset falls in, so it is never before that chunk's first.
      const chunk = this.hashedChunks.get(Math.floor((b * unit) / this.chunkBytes));
      const at = chunk ? (b - chunk.first) * this.digestLen : 0;
      if (!chunk || at + this.digestLen > chunk.digests.length) return undefined;
      chunk.digests.copy(out, (b - first) * this.digestLen, at, at + this.digestLen);
    }
    return out;
  }

  /** Bytes [offset, offset+length) are being written: drop the chunks they touch, for good. */
  written(offset: number, length: number): void {
    if (this.chunkBytes === 0) return this.stop(); // not planned yet: nothing can be trusted to stay as hashed
    const last = Math.floor((offset + Math.max(0, length - 1)) / this.chunkBytes);
    let fresh = false; // refinement writes many small pieces into one chunk: only the first drops anything
    for (let i = Math.floor(offset / this.chunkBytes); i <= last; i++) {
      if (this.skip.has(i)) continue;
      this.skip.add(i);
      fresh = true;
    }
    if (!fresh) return;
    for (const [k, _] of this.answers) {
      const i = chunkIndexOf(k, this.chunkBytes);
      if (this.skip.has(i)) this.answers.delete(k);
    }
    for (const i of this.hashedChunks.keys()) if (this.skip.has(i)) this.hashedChunks.delete(i);
  }

  stop(): void {
    this.stopped = true;
    this.answers.clear();
    this.hashedChunks.clear();
  }

  /** True if `opened` is the file that was hashed; if it is not, everything is dropped. */
  private sameFile(opened: Identity): boolean {
    const id = this.identity;
    if (!id) return false;
    if (opened.dev === id.dev && opened.ino === id.ino && opened.size === id.size && opened.mtimeMs === id.mtimeMs) return true;
    this.stop();
    return false;
  }

  /** Hash no more chunks (the engine no longer asks for most: it streams); answers already computed stay. */
  halt(): void {
    this.halted = true;
  }

  private async closeFile(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close().catch(() => undefined);
  }
}

function key(range: BlockRange, method: string): string {
  return `${range.first}:${range.count}:${range.blockSize}:${range.limit}:${method}`;
}

/** The chunk a key's range starts in. */
function chunkIndexOf(k: string, chunkBytes: number): number {
  const [first, , blockSize] = k.split(':').map(Number) as [number, number, number];
  return Math.floor((first * blockSize) / chunkBytes);
}
