import pLimit, { type LimitFunction } from 'p-limit';
import { ByteBudget } from './byte-budget.js';
import { sourceChanged, throwIfAborted } from '../errors/pdc-error.js';
import { type BlockHasher, createBlockHasher } from '../hash/methods.js';
import { zeroDigest } from '../hash/file-hash.js';
import type { FileHost } from '../hosts/file-host.js';
import {
  type ChunkComparison,
  type ChunkMode,
  type Geometry,
  type Run,
  changedBlocks,
  coalesce,
  comparablePrefix,
  hashChunks,
  holeBlocks,
  nextChunkMode,
  runPieces,
  zeroUnit,
  transferRunBytes,
} from './plan.js';
import type { Profiler } from './profile.js';
import { type FirstLevel, type Refiner, refinerFor } from './refine.js';
import { blocksWithDifferingPieces, piecesAlign, runDigests, windowRanges } from './refine-plan.js';
import { type ZeroRun, zeroBytesOf } from '../fileops/zero-runs.js';
import { BufferPool } from '../fileops/buffer-pool.js';
import { REFINE_RUNS_IN_FLIGHT, TRANSFER_RUN_BYTES } from '../protocol/limits.js';
import { readDigestsFit } from '../protocol/ops.js';
import { WrittenCheck } from './written-check.js';
import type { SyncOptions } from './sync.js';

/** Block data in flight at most (at least two runs): what keeps every agent's writes busy. */
const TRANSFER_BYTES_IN_FLIGHT = 64 * 1024 * 1024;

/** The opened file pair a mover works on. */
export interface MoverTarget {
  g: Geometry;
  digestLen: number;
  /** The target's size as opened (0: nothing to compare, every block is sent). */
  targetSize: number;
  targetDevice: boolean;
  /** False for a dry run against a missing target: nothing to hash there. */
  targetOpen: boolean;
  srcName: string;
  dstName: string;
}

/** What moving runs cost: data bytes sent, zero runs written as zeros, zero runs left as holes. */
export interface Moved {
  data: number;
  /** What the data took on the wire (-z: packed, fewer). */
  wire: number;
  zero: number;
  hole: number;
  zeroBlocks: number;
}

/**
 * Moves one file's differing blocks. Both sides hash the same chunk at the same time; as
 * soon as a chunk's two hash lists are in, its differing blocks start moving while later
 * chunks are still being hashed. Once most compared blocks differ, chunks are streamed
 * instead (sent without hashing the target, hashed as sent), with one compared now and
 * then to follow the change rate. Written blocks are read back on the target and checked
 * against the source's hashes (written-check.ts).
 *
 * Cancellation has one path: `signal`, aborted by the caller's signal (until close()) or
 * by the first failed transfer; every step checks it before it starts.
 */
export class BlockMover {
  readonly changed: number[] = [];
  readonly moved: Moved = { data: 0, wire: 0, zero: 0, hole: 0, zeroBlocks: 0 };
  readonly check: WrittenCheck;
  readonly refiner?: Refiner;
  /**
   * The source's block hashes that the written blocks are verified against: for compared
   * chunks the source side's hash lists, for streamed ones (and when every block is sent)
   * the hashes of the bytes as read and sent (so a source changed after a block was sent
   * is not blamed on the target).
   */
  private readonly sourceHashes: Buffer;
  private readonly src: FileHost;
  private readonly dst: FileHost;
  /** An empty target (or -W) has nothing to compare: every block is sent and hashed as sent, so the source is read once. */
  private readonly sendAll: boolean;
  private readonly runBytes: number;
  private readonly transferBudget: ByteBudget;
  private readonly transfers: Promise<void>[] = [];
  /** Rejects with the first failed transfer's error. */
  private readonly failed: Promise<never>;
  private fail!: (e: unknown) => void;
  private readonly stop = new AbortController();
  private readonly signal = this.stop.signal;
  private readonly unlink: () => void;
  /** Zero runs at or past the target's old end stay holes (a device has no holes: all are written). */
  private readonly holesFrom: number;
  private streaming = false;
  private bytesHashed = 0;
  private bytesSent = 0;
  private bytesToSend = 0;
  private readonly bytesToCompare: number;

  private constructor(
    private readonly o: SyncOptions,
    private readonly t: MoverTarget,
    private readonly prof: Profiler,
    /** Hashes what is sent in streamed runs (none in a dry run). */
    private readonly sentHasher: BlockHasher | undefined,
  ) {
    const { g, digestLen } = t;
    this.src = o.source.host;
    this.dst = o.target.host;
    this.sourceHashes = Buffer.alloc(g.blocks * digestLen);
    this.sendAll = o.wholeFile || (!o.dryRun && t.targetSize === 0);
    this.bytesToCompare = this.sendAll ? 0 : g.size;
    this.holesFrom = t.targetDevice ? Infinity : t.targetSize;
    // Differing blocks are refined to the pieces that differ (a dry run too: its estimate of the bytes that differ).
    this.refiner = this.sendAll
      ? undefined
      : refinerFor({ src: this.src, dst: this.dst, method: o.hashMethod, digestLength: digestLen, blockSize: g.blockSize, levels: o.refineLevels, targetSize: t.targetSize, srcName: t.srcName });
    this.runBytes = transferRunBytes(g.blockSize);
    // Counted in bytes, so scattered one-block runs keep as much moving as whole runs.
    const runsInFlight = Math.max(2, Math.min(o.concurrency * 2, Math.floor(TRANSFER_BYTES_IN_FLIGHT / this.runBytes)));
    this.transferBudget = new ByteBudget(runsInFlight * this.runBytes);
    this.check = new WrittenCheck({
      source: this.src,
      target: this.dst,
      g,
      method: o.hashMethod,
      sourceHashes: this.sourceHashes,
      digestLen,
      concurrency: o.concurrency,
      srcName: t.srcName,
      dstName: t.dstName,
      signal: this.signal,
      prof,
    });
    this.unlink = linkAbort(o.signal, this.stop);
    this.failed = new Promise<never>((_, reject) => (this.fail = reject));
    this.failed.catch(() => undefined);
  }

  static async create(o: SyncOptions, t: MoverTarget, prof: Profiler): Promise<BlockMover> {
    return new BlockMover(o, t, prof, o.dryRun ? undefined : await createBlockHasher(o.hashMethod));
  }

  /** Move every differing block (a dry run: find them); returns once all are written and their read-backs taken. */
  async moveAll(): Promise<void> {
    try {
      if (this.sendAll) this.schedule(blocksOf(0, this.t.g.blocks), true);
      else {
        const comparing = this.compareChunks();
        comparing.catch(() => undefined); // after a failed transfer, what comparing throws is moot
        await Promise.race([comparing, this.failed]);
      }
      await Promise.race([Promise.all(this.transfers), this.failed]);
    } catch (e) {
      this.stop.abort(); // queued hash requests, transfers and read-backs bail out instead of running on
      throw e;
    }
    this.changed.sort((a, b) => a - b);
    this.progress();
  }

  /** Stop following the caller's signal (the read-back's last requests follow it until then). */
  close(): void {
    this.unlink();
  }

  private progress(): void {
    this.o.emit({
      type: 'progress',
      bytesHashed: this.bytesHashed,
      bytesToCompare: this.bytesToCompare,
      bytesSent: this.bytesSent,
      bytesToSend: this.bytesToSend,
      bytesZero: this.moved.zero + this.moved.hole,
      blocksChanged: this.changed.length,
      bytesTotal: this.t.g.size,
    });
  }

  /**
   * Send `blocks` (sorted); `hashAsSent`: their source hashes are taken from the bytes sent;
   * `firstOf`: a run's first-level digests, where its chunk was compared in pieces.
   * A failed transfer aborts the run at once: a failed write (no space, agent gone) must not
   * wait for the whole file to be hashed, nor surface later as an unhandled rejection.
   */
  private schedule(blocks: number[], hashAsSent = false, firstOf?: (run: Run) => FirstLevel): Promise<void>[] {
    for (const b of blocks) this.changed.push(b);
    if (this.o.dryRun && !this.refiner) return [];
    const mine: Promise<void>[] = [];
    for (const run of coalesce(blocks, this.t.g, this.runBytes)) {
      this.bytesToSend += run.length;
      const t = this.transfer(run, hashAsSent, firstOf?.(run));
      t.catch((e) => {
        this.fail(e); // first, so that it is this error (not a later interrupted()) that ends the run
        this.stop.abort();
      });
      this.transfers.push(t);
      mine.push(t);
    }
    return mine;
  }

  /** Move one run: refined to its differing pieces where it can be, else whole; then have it read back. */
  private async transfer(run: Run, hashAsSent: boolean, first?: FirstLevel): Promise<void> {
    const { o, refiner } = this;
    // Refinement rounds move digests and small pieces: more runs go through them at once than
    // whole runs move (refine.ts), so their round trips overlap instead of queueing for a slot.
    // A streamed run has no target hashes to refine against: it goes whole.
    const refined = refiner && !hashAsSent ? await refiner.move(run, !o.dryRun, this.signal, first) : undefined;
    if (refiner && hashAsSent) refiner.sentUncompared(run);
    if (refined !== undefined) this.bytesToSend -= run.length - refined; // only the differing pieces move
    if (o.dryRun) return;
    if (refined !== undefined) {
      addMoved(this.moved, { data: refined, wire: refined, zero: 0, hole: 0, zeroBlocks: 0 });
      this.bytesSent += refined;
      this.progress();
      return this.check.writtenRefined(run);
    }
    const { g, digestLen, targetDevice, srcName } = this.t;
    const holes = await this.transferBudget.run(run.length, async () => {
      throwIfAborted(this.signal);
      const sent = hashAsSent && this.sentHasher ? { method: o.hashMethod, hasher: this.sentHasher, out: this.sourceHashes, digestLen } : undefined;
      const place = { holesFrom: this.holesFrom, punch: !!o.sparse && !targetDevice };
      const m = await this.prof.time('transfer', () => sendRun(this.src, this.dst, run, g, place, srcName, sent));
      addMoved(this.moved, m);
      this.bytesSent += m.data;
      this.progress();
      return m.holeBlocks;
    });
    await this.check.written(run, holes);
  }

  /**
   * Compare chunk by chunk in file order; the change rate learnt so far decides whether the
   * next chunk is compared by blocks, compared by refinement's pieces, or streamed. A chunk
   * holds its slot until it is compared (or, streamed, until its blocks are written), so each
   * chunk's mode is decided from what the chunks before it showed, no more than a slot count
   * behind, and streaming runs no further ahead than hashing would.
   */
  private async compareChunks(): Promise<void> {
    const { g, digestLen, targetSize, targetOpen } = this.t;
    const { refiner, src, dst } = this;
    const chunks = hashChunks(g, digestLen);
    const choose = chunkModes(this.o.dryRun, refiner);
    const hashing = new HashSlots(src, dst, this.signal, this.prof);
    // A chunk compared in pieces holds its slot until its runs are moved: their next rounds
    // read the chunk's windows from memory only while no more chunks are in pieces than
    // each side keeps windows for.
    const windowsPerChunk = refiner ? windowRanges(0, chunks[0]?.length ?? 0, refiner.firstGrain).length / 2 : 1;
    const piecesLimit = pLimit(Math.max(1, Math.floor(REFINE_RUNS_IN_FLIGHT / Math.max(1, windowsPerChunk))));
    const inFlight = pLimit(Math.max(2, src.parallelism * 2, dst.parallelism * 2));
    await Promise.all(
      chunks.map((chunk) =>
        inFlight(async () => {
          throwIfAborted(this.signal);
          const mode = choose.next();
          const comparable = comparablePrefix(g, chunk.first, chunk.count, targetSize);
          if (mode === 'stream') {
            this.startStreaming();
            this.prof.profile.chunks.streamed++;
            await Promise.all(this.schedule(blocksOf(chunk.first, chunk.count), true));
          } else if (mode === 'pieces' && refiner && targetOpen && comparable === chunk.count && piecesAlign(g.blockSize, refiner.firstGrain)) {
            this.prof.profile.chunks.compared++;
            this.prof.profile.chunks.inPieces++;
            await piecesLimit(() => this.comparePieces(chunk, refiner, hashing, choose.history));
          } else {
            this.prof.profile.chunks.compared++;
            this.schedule(await this.compareBlocks(chunk, comparable, hashing, choose.history));
          }
          this.bytesHashed += chunk.length;
          this.progress();
        }),
      ),
    );
  }

  /** Both hosts hear once that the run streams: hashes computed ahead of requests would go unused. */
  private startStreaming(): void {
    if (this.streaming) return;
    this.streaming = true;
    this.src.streaming?.();
    this.dst.streaming?.();
  }

  /** Compare a chunk by block hashes; returns its differing blocks. */
  private async compareBlocks(chunk: Run, comparable: number, hashing: HashSlots, history: ChunkComparison[]): Promise<number[]> {
    const { digestLen } = this.t;
    const method = this.o.hashMethod;
    const d = comparable > 0 && this.t.targetOpen ? hashing.target('targetHash', () => this.dst.hash(this.range(chunk, comparable), method)) : undefined;
    const s = await hashing.source('sourceHash', () => this.src.hash(this.range(chunk, chunk.count), method));
    const t = await d;
    s.copy(this.sourceHashes, chunk.first * digestLen);
    const differing = changedBlocks(chunk.first, chunk.count, comparable, s, t, digestLen);
    if (t) history.push({ compared: comparable, differing: differing.length - (chunk.count - comparable) });
    return differing;
  }

  /**
   * Compare a chunk the target holds entirely by refinement's first-level pieces (the
   * source's block hashes still come along: written blocks are verified against them);
   * its differing runs go on from the next level.
   */
  private async comparePieces(chunk: Run, r: Refiner, hashing: HashSlots, history: ChunkComparison[]): Promise<void> {
    const { g, digestLen } = this.t;
    const grain = r.firstGrain;
    const affinity = r.affinity();
    const ranges = windowRanges(chunk.offset, chunk.length, grain);
    const d = hashing.target('targetHash', () => r.hashFirstLevel(this.dst, ranges, affinity, true));
    const [s, sp] = await hashing.source('sourceHash', () =>
      Promise.all([this.src.hash(this.range(chunk, chunk.count), this.o.hashMethod), r.hashFirstLevel(this.src, ranges, affinity, false)]),
    );
    const dp = await d;
    s.copy(this.sourceHashes, chunk.first * digestLen);
    const differing = blocksWithDifferingPieces(chunk.first, chunk.count, chunk.length, g.blockSize, grain, sp, dp, digestLen);
    history.push({ compared: chunk.count, differing: differing.length });
    const at = (digests: Buffer, run: Run) => runDigests(digests, chunk.offset, run.offset, run.length, grain, digestLen);
    await Promise.all(this.schedule(differing, false, (run) => ({ s: at(sp, run), d: at(dp, run), affinity })));
  }

  private range(chunk: Run, count: number) {
    return { first: chunk.first, count, blockSize: this.t.g.blockSize, limit: this.t.g.size };
  }
}

/**
 * Each side hashes ahead at its own pace with a couple of requests queued per agent or
 * worker, so none of them idles through a round trip; a chunk is compared once both of its
 * hash lists are in. A request still queued when the run is stopped is not sent.
 */
class HashSlots {
  private readonly srcLimit: LimitFunction;
  private readonly dstLimit: LimitFunction;

  constructor(
    src: FileHost,
    dst: FileHost,
    private readonly signal: AbortSignal,
    private readonly prof: Profiler,
  ) {
    this.srcLimit = pLimit(Math.max(2, src.parallelism * 2));
    this.dstLimit = pLimit(Math.max(2, dst.parallelism * 2));
  }

  source<T>(phase: 'sourceHash', f: () => Promise<T>): Promise<T> {
    return this.srcLimit(() => (throwIfAborted(this.signal), this.prof.time(phase, f)));
  }

  /** The target's side, started before the source's is awaited: a failure is reported where it is awaited. */
  target<T>(phase: 'targetHash', f: () => Promise<T>): Promise<T> {
    const p = this.dstLimit(() => (throwIfAborted(this.signal), this.prof.time(phase, f)));
    p.catch(() => undefined);
    return p;
  }
}

/** The mode of each next chunk, from the comparisons so far (a dry run never streams: it reports the blocks that differ). */
function chunkModes(dryRun: boolean, refiner: Refiner | undefined): { next(): ChunkMode; history: ChunkComparison[] } {
  const history: ChunkComparison[] = [];
  let sinceCompared = 0;
  return {
    history,
    next() {
      const mode = nextChunkMode(history, sinceCompared, refiner ? refiner.state() : 'off');
      const m = dryRun && mode === 'stream' ? 'compare' : mode;
      sinceCompared = m === 'stream' ? sinceCompared + 1 : 0;
      return m;
    },
  };
}

/** Aborts `stop` when `outer` is (or already was); returns the unlinking. */
function linkAbort(outer: AbortSignal | undefined, stop: AbortController): () => void {
  if (!outer) return () => undefined;
  if (outer.aborted) {
    stop.abort();
    return () => undefined;
  }
  const onAbort = () => stop.abort();
  outer.addEventListener('abort', onAbort, { once: true });
  return () => outer.removeEventListener('abort', onAbort);
}

function blocksOf(first: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => first + i);
}

function addMoved(to: Moved, m: Moved): void {
  to.data += m.data;
  to.wire += m.wire;
  to.zero += m.zero;
  to.hole += m.hole;
  to.zeroBlocks += m.zeroBlocks;
}

/**
 * Move one run: read it on the source with its all-zero blocks reported as zero runs,
 * send the data between them, write zero runs inside the target's old extent as zeros
 * (or punch them as holes with `punch`, where the target can), and leave those from
 * `holesFrom` on unwritten (holes).
 */
async function sendRun(
  src: FileHost,
  dst: FileHost,
  run: Run,
  g: Geometry,
  place: { holesFrom: number; punch: boolean },
  srcName: string,
  sent?: { method: string; hasher: BlockHasher; out: Buffer; digestLen: number },
): Promise<Moved & { holeBlocks: number[] }> {
  const { blockSize } = g;
  // The source hashes what it reads where it reads it (before any transport or memory of ours
  // holds the bytes), when the digests fit its answer; otherwise they are taken here.
  const digestsThere = sent && readDigestsFit(run.length, blockSize, sent.digestLen) ? sent.method : undefined;
  const chunk = await src.read(run.offset, run.length, zeroUnit(blockSize), digestsThere);
  let joined: Buffer | undefined;
  try {
    const zeros = chunk.zeros ?? [];
    if (chunk.length + zeroBytesOf(zeros) !== run.length) {
      throw sourceChanged(srcName, 'it became shorter');
    }
    // A run that came in many pieces (pulled: the stream's chunks) is joined once, into a pooled
    // buffer where its blocks hash in place, instead of a fresh allocation per run.
    if (chunk.buffers.length > 1) joinInto(chunk.buffers, (joined = joinPool.acquire(chunk.length)));
    const data = joined ? joined.subarray(0, chunk.length) : (chunk.buffers[0] ?? Buffer.alloc(0));
    if (sent && chunk.digests?.length === run.count * sent.digestLen) chunk.digests.copy(sent.out, run.first * sent.digestLen);
    else if (sent) hashRun(data, zeros, run, blockSize, sent.hasher, sent.out, sent.digestLen);
    const moved: Moved = { data: chunk.length, wire: 0, zero: 0, hole: 0, zeroBlocks: 0 };
    for (const z of zeros) moved.zeroBlocks += Math.ceil(z.length / blockSize);
    const pieces = runPieces(run.offset, run.length, zeros, place.holesFrom);
    let written = 0;
    await Promise.all(
      pieces.map(async (p) => {
        if (p.kind === 'hole') return (moved.hole += p.length), undefined;
        if (p.kind === 'zero') {
          const punched = await dst.zero(p.offset, p.length, place.punch);
          if (punched) moved.hole += p.length;
          else moved.zero += p.length;
          return;
        }
        const sent = await dst.write(p.offset, [data.subarray(p.at, p.at + p.length)]);
        written += sent ?? p.length;
      }),
    );
    // What crossed: what the read brought over when the source is behind a transport, else what the writes sent.
    moved.wire = chunk.wireBytes ?? written;
    return { ...moved, holeBlocks: holeBlocks(pieces, g) };
  } finally {
    if (joined) joinPool.release(joined);
    chunk.release();
  }
}

/** Buffers runs are joined in: at most as many as the transfers in flight can hold. */
const joinPool = new BufferPool(TRANSFER_RUN_BYTES, Math.ceil(TRANSFER_BYTES_IN_FLIGHT / TRANSFER_RUN_BYTES), true);

function joinInto(buffers: readonly Buffer[], out: Buffer): void {
  let at = 0;
  for (const b of buffers) at += b.copy(out, at);
}

/**
 * Hash each block of a run from its bytes as read into `out`: `data` holds the bytes
 * outside the zero runs (which are block-aligned: the source found them block by block).
 */
function hashRun(data: Buffer, zeros: readonly ZeroRun[], run: Run, blockSize: number, hasher: BlockHasher, out: Buffer, digestLen: number): void {
  let at = 0;
  let z = 0;
  for (let k = 0; k < run.count; k++) {
    const start = k * blockSize;
    const len = Math.min(blockSize, run.length - start);
    while (z < zeros.length && zeros[z]!.offset + zeros[z]!.length <= start) z++;
    const zero = z < zeros.length && zeros[z]!.offset <= start;
    const digest = zero ? zeroDigest(hasher, len) : hasher(data.subarray(at, at + len));
    if (!zero) at += len;
    out.set(digest, (run.first + k) * digestLen);
  }
}
