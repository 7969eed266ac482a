import pLimit, { type LimitFunction } from 'p-limit';
import { sourceChanged, throwIfAborted, verifyFailed } from '../errors/pdc-error.js';
import type { FileHost } from '../hosts/file-host.js';
import { type Geometry, type Run, coalesceBlocks, hashRequestBlocks } from './plan.js';
import type { Profiler } from './profile.js';

export interface WrittenCheckOptions {
  source: FileHost;
  target: FileHost;
  g: Geometry;
  method: string;
  /** The source's hash of every block, filled before any of its blocks is written. */
  sourceHashes: Buffer;
  digestLen: number;
  /** Read-backs in flight at once. */
  concurrency: number;
  srcName: string;
  dstName: string;
  /** Read-backs not started yet are not started once this is aborted. */
  signal: AbortSignal;
  prof: Profiler;
}

/**
 * The read-back of written blocks: each block is hashed again on the target once every
 * write into its run is answered (by then the bytes are in the file: any later reader,
 * and the fsync, see exactly these) and compared with the source's hashes. A run moved
 * whole is read back at once, overlapping the transfer, from the page cache while its
 * bytes are still there (after the fsync a large file's would come from the disk); a
 * refined run is read back after the fsync, because its rounds are round trips that a
 * read-back queued on the same agents would hold up (2 GiB of page edits: 0.5-0.8 s slower).
 * Mismatches are collected and judged once, after the last write and the fsync.
 */
export class WrittenCheck {
  private readonly bad: number[] = [];
  /** Blocks of refined runs, read back after the fsync. */
  private readonly later: number[] = [];
  private readonly limit: LimitFunction;

  constructor(private readonly c: WrittenCheckOptions) {
    this.limit = pLimit(Math.max(1, c.concurrency));
  }

  /** `run` is written, except the blocks in `holes` (left wholly as holes: never written, so not read back). */
  async written(run: Run, holes: readonly number[]): Promise<void> {
    const skip = new Set(holes);
    const blocks: number[] = [];
    for (let b = run.first; b < run.first + run.count; b++) if (!skip.has(b)) blocks.push(b);
    await this.readBackAll(blocks);
  }

  /** `run` is written: read it back with the rest after the fsync (see judge). */
  writtenRefined(run: Run): void {
    for (let b = run.first; b < run.first + run.count; b++) this.later.push(b);
  }

  /**
   * After the last write and the fsync: read back the runs left for now, then throw if any
   * written block read back wrong (blaming the source if it changed).
   */
  async judge(): Promise<void> {
    // In file order and in requests as large as comparing makes, as many in flight as it keeps.
    await this.readBackAll(this.later.splice(0).sort((a, b) => a - b));
    if (this.bad.length === 0) return;
    const { g, digestLen: len, sourceHashes } = this.c;
    const first = this.bad.reduce((a, b) => Math.min(a, b));
    const now = await this.c.source.hash({ first, count: 1, blockSize: g.blockSize, limit: g.size }, this.c.method);
    if (!now.equals(sourceHashes.subarray(first * len, (first + 1) * len))) throw sourceChanged(this.c.srcName);
    throw verifyFailed(`${this.c.dstName}: ${this.bad.length} written block(s) read back wrong (first: block ${first})`);
  }

  /** Read back `blocks` (ascending) in requests of consecutive blocks. */
  private async readBackAll(blocks: number[]): Promise<void> {
    const { g, digestLen } = this.c;
    const requests = coalesceBlocks(blocks, g, hashRequestBlocks(g.blockSize, digestLen));
    await Promise.all(requests.map((r) => this.limit(() => this.readBack(r))));
  }

  private async readBack(r: Run): Promise<void> {
    throwIfAborted(this.c.signal);
    const { g, digestLen: len, sourceHashes } = this.c;
    const range = { first: r.first, count: r.count, blockSize: g.blockSize, limit: g.size };
    const d = await this.c.prof.time('verify', () => this.c.target.hash(range, this.c.method));
    for (let k = 0; k < r.count; k++) {
      const b = r.first + k;
      if (!d.subarray(k * len, (k + 1) * len).equals(sourceHashes.subarray(b * len, (b + 1) * len))) this.bad.push(b);
    }
  }
}
