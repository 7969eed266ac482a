import { inPlaceTail } from '../hash/xxh64-pieces.js';
import { alignedBuffer } from './aligned-buffer.js';
import type { ZeroRun } from './zero-runs.js';

/**
 * Reusable I/O buffers. On these VMs a fresh multi-MiB allocation costs page
 * faults (about 150-250 MB/s, slower than the network), so block data moves
 * through a few buffers allocated once and handed back after each use. They are
 * page aligned (aligned-buffer.ts): reads into them run several times faster.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    /** Smallest buffer handed out; larger requests get (and later reuse) larger buffers. */
    readonly bufferSize: number,
    /** Buffers kept for reuse at most. */
    private readonly keep = 16,
    /** Give each buffer room after its bytes for hashing its blocks in place (xxh64-pieces.ts). */
    private readonly hashInPlace = false,
  ) {}

  /** A buffer of at least `length` bytes (at least bufferSize, so it can be reused for any run). */
  acquire(length: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= length);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    const size = Math.max(length, this.bufferSize);
    return alignedBuffer(size, this.hashInPlace ? inPlaceTail(size) : 0);
  }

  release(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }

  /** acquire(length), with a give-back that releases the buffer once however often it is called. */
  lend(length: number): { buffer: Buffer; giveBack: () => void } {
    const buffer = this.acquire(length);
    let lent = true;
    return {
      buffer,
      giveBack: () => {
        if (lent) this.release(buffer);
        lent = false;
      },
    };
  }
}

/**
 * Bytes read from a file: views into a pooled buffer (or a stream's chunks) and how to give them back.
 * With `zeros`, the all-zero stretches of what was read are listed there (offsets relative to the
 * read) and left out of `buffers`, which then hold only the bytes between them.
 */
export interface Chunk {
  buffers: Buffer[];
  /** Bytes in buffers (the data; zero runs not counted). */
  length: number;
  zeros?: ZeroRun[];
  /** Bytes that crossed a transport to bring this chunk (-z: packed, fewer); absent when read on this host. */
  wireBytes?: number;
  /** When asked for: the digest of each unit read, in order, taken where the bytes were read. */
  digests?: Buffer;
  release(): void;
}

export function chunkOf(buffers: Buffer[], release: () => void = () => undefined, zeros?: ZeroRun[]): Chunk {
  let length = 0;
  for (const b of buffers) length += b.length;
  return zeros && zeros.length > 0 ? { buffers, length, zeros, release } : { buffers, length, release };
}
