/**
 * Reusable I/O buffers. On these VMs a fresh multi-MiB allocation costs page
 * faults (about 150-250 MB/s, slower than the network), so block data moves
 * through a few buffers allocated once and handed back after each use.
 */
export class BufferPool {
  private readonly free: Buffer[] = [];

  constructor(
    /** Smallest buffer handed out; larger requests get (and later reuse) larger buffers. */
    readonly bufferSize: number,
    /** Buffers kept for reuse at most. */
    private readonly keep = 16,
  ) {}

  /** A buffer of at least `length` bytes (at least bufferSize, so it can be reused for any run). */
  acquire(length: number): Buffer {
    const i = this.free.findIndex((b) => b.length >= length);
    if (i >= 0) return this.free.splice(i, 1)[0]!;
    return Buffer.allocUnsafe(Math.max(length, this.bufferSize));
  }

  release(buf: Buffer): void {
    if (this.free.length < this.keep) this.free.push(buf);
  }
}

/** Bytes read from a file: views into a pooled buffer (or a stream's chunks) and how to give them back. */
export interface Chunk {
  buffers: Buffer[];
  length: number;
  release(): void;
}

export function chunkOf(buffers: Buffer[], release: () => void = () => undefined): Chunk {
  let length = 0;
  for (const b of buffers) length += b.length;
  return { buffers, length, release };
}
