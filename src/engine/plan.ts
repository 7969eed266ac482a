/**
 * Pure block planning and comparison: no I/O, table-tested.
 * A file of `size` bytes is cut into blocks of `blockSize`; the last may be short.
 * Request sizes come from the op table's caps (protocol/ops.ts), the same ones the
 * agent enforces, so every planned request is one the agent accepts.
 */
import type { ZeroRun } from '../fileops/zero-runs.js';
import { TRANSFER_RUN_BYTES } from '../protocol/limits.js';
import { MAX_READ_BYTES, maxHashBlocks } from '../protocol/ops.js';

export interface Geometry {
  size: number;
  blockSize: number;
  blocks: number;
}

/** A span of consecutive blocks, moved or hashed as one request. */
export interface Run {
  first: number;
  count: number;
  offset: number;
  length: number;
}

/** How many bytes of blocks one hash request covers: big enough to amortise a round trip, small enough to pipeline. */
export const HASH_CHUNK_BYTES = 16 * 1024 * 1024;
/** Largest read/write request: consecutive changed blocks are merged up to this. */
export { TRANSFER_RUN_BYTES };

export function geometry(size: number, blockSize: number): Geometry {
  if (!(blockSize > 0)) throw new RangeError('blockSize must be positive');
  return { size, blockSize, blocks: Math.ceil(size / blockSize) };
}

export function spanOf(g: Geometry, first: number, count: number): Run {
  const offset = first * g.blockSize;
  const end = Math.min(g.size, (first + count) * g.blockSize);
  return { first, count, offset, length: Math.max(0, end - offset) };
}

/**
 * Blocks per hash request: about chunkBytes of file (at least one block), and never
 * more than the agent accepts for digests of this length (the reply must fit a frame).
 */
export function hashRequestBlocks(blockSize: number, digestLength: number, chunkBytes = HASH_CHUNK_BYTES): number {
  return Math.min(maxHashBlocks(digestLength), Math.max(1, Math.floor(chunkBytes / blockSize)));
}

/** Cut all blocks into hash requests of hashRequestBlocks blocks each (the last may be shorter). */
export function hashChunks(g: Geometry, digestLength: number, chunkBytes = HASH_CHUNK_BYTES): Run[] {
  const per = hashRequestBlocks(g.blockSize, digestLength, chunkBytes);
  const out: Run[] = [];
  for (let first = 0; first < g.blocks; first += per) out.push(spanOf(g, first, Math.min(per, g.blocks - first)));
  return out;
}

/** Bytes per read/write request: changed blocks merged up to TRANSFER_RUN_BYTES, one block at least, at most one read's reply. */
export function transferRunBytes(blockSize: number): number {
  return Math.min(MAX_READ_BYTES, Math.max(blockSize, TRANSFER_RUN_BYTES));
}

/**
 * Of the blocks [first, first+count), how many (a prefix) the target holds entirely,
 * so that comparing hashes means something. The rest must be sent.
 */
export function comparablePrefix(g: Geometry, first: number, count: number, targetSize: number): number {
  let n = 0;
  while (n < count) {
    const s = spanOf(g, first + n, 1);
    if (s.offset + s.length > targetSize) break;
    n++;
  }
  return n;
}

/**
 * Blocks of a chunk that differ: those whose digests differ among the first
 * `comparable`, plus every block after them.
 */
export function changedBlocks(
  first: number,
  count: number,
  comparable: number,
  source: Uint8Array,
  target: Uint8Array | undefined,
  digestLength: number,
): number[] {
  const out: number[] = [];
  for (let k = 0; k < count; k++) {
    if (k >= comparable || !target || !digestEqual(source, target, k * digestLength, digestLength)) out.push(first + k);
  }
  return out;
}

function digestEqual(a: Uint8Array, b: Uint8Array, at: number, len: number): boolean {
  for (let i = at; i < at + len; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Merge sorted block indices into runs of consecutive blocks of at most maxBytes (at least one block). */
export function coalesce(blocks: readonly number[], g: Geometry, maxBytes = TRANSFER_RUN_BYTES): Run[] {
  return coalesceBlocks(blocks, g, Math.max(1, Math.floor(maxBytes / g.blockSize)));
}

/** Merge sorted block indices into runs of at most maxBlocks consecutive blocks. */
export function coalesceBlocks(blocks: readonly number[], g: Geometry, maxBlocks: number): Run[] {
  const out: Run[] = [];
  let start = -1;
  let count = 0;
  for (const b of blocks) {
    if (start >= 0 && b === start + count && count < maxBlocks) {
      count++;
      continue;
    }
    if (start >= 0) out.push(spanOf(g, start, count));
    start = b;
    count = 1;
  }
  if (start >= 0) out.push(spanOf(g, start, count));
  return out;
}

/** Percentage of blocks that already match (100 for an empty file). */
export function similarity(changed: number, total: number): number {
  if (total === 0) return 100;
  return Math.round(((total - changed) / total) * 10000) / 100;
}

export interface SpaceQuestion {
  sourceSize: number;
  /** The target's size now (0 when it does not exist). */
  targetSize: number;
  atomic: boolean;
  dryRun: boolean;
}

/**
 * Bytes the target's file system must have free before a run writes anything.
 * In place: the growth only (rewritten blocks reuse the space they hold; holes of
 * a sparse target are not counted). --atomic: the whole new file, because the temp
 * copy needs it unless the file system can reflink it: conservative, it may refuse
 * a run that a reflink would have fitted. A dry run writes nothing.
 */
export function spaceNeeded(q: SpaceQuestion): number {
  if (q.dryRun) return 0;
  if (q.atomic) return q.sourceSize;
  return Math.max(0, q.sourceSize - q.targetSize);
}

/** Zeros are looked for in units of at least this many bytes: a page, the granularity of a hole. */
export const MIN_ZERO_UNIT = 4096;

/**
 * The unit a read checks for zeros: whole blocks (so every zero run is block-aligned and
 * a block is either all in one or not at all), as many as make a page at least (tiny
 * blocks would otherwise cost one comparison per byte).
 */
export function zeroUnit(blockSize: number): number {
  return blockSize * Math.max(1, Math.ceil(MIN_ZERO_UNIT / blockSize));
}

/** How one part of a transfer run reaches the target. */
export type RunPiece =
  /** Bytes sent as data; `at` is where they start among the run's data bytes (zero runs left out). */
  | { kind: 'data'; offset: number; length: number; at: number }
  /** A zero run inside the target's old extent: written as zeros (no bytes on the wire). */
  | { kind: 'zero'; offset: number; length: number }
  /** A zero run at or past the target's old end: not written, so it stays (or becomes) a hole. */
  | { kind: 'hole'; offset: number; length: number };

/**
 * Cut a run read at `offset` (`length` bytes, whose all-zero stretches are `zeros`,
 * relative and sorted) into pieces: data between the zero runs, and each zero run
 * split at `holesFrom` (the target's size before this run wrote anything; Infinity
 * for a device, which has no holes): zeros below it are written, zeros from it on
 * are left unwritten and read back as zeros once the file is extended to its size.
 */
export function runPieces(offset: number, length: number, zeros: readonly ZeroRun[], holesFrom: number): RunPiece[] {
  const out: RunPiece[] = [];
  let at = 0; // data bytes so far
  let pos = 0; // relative position in the run
  const data = (end: number) => {
    if (end > pos) out.push({ kind: 'data', offset: offset + pos, length: end - pos, at });
    at += Math.max(0, end - pos);
  };
  for (const z of zeros) {
    data(z.offset);
    const start = offset + z.offset;
    const end = start + z.length;
    const split = Math.min(end, Math.max(start, holesFrom));
    if (split > start) out.push({ kind: 'zero', offset: start, length: split - start });
    if (end > split) out.push({ kind: 'hole', offset: split, length: end - split });
    pos = z.offset + z.length;
  }
  data(length);
  return out;
}

/**
 * The blocks that lie wholly inside hole pieces (a block ending at the file's end
 * counts as whole): nothing was written there, so the target reads them back as zeros
 * without being re-read to verify (for a sparse image, most of the file).
 */
export function holeBlocks(pieces: readonly RunPiece[], g: Geometry): number[] {
  const out: number[] = [];
  for (const p of pieces) {
    if (p.kind !== 'hole') continue;
    const end = p.offset + p.length;
    const last = end >= g.size ? g.blocks : Math.floor(end / g.blockSize);
    for (let b = Math.ceil(p.offset / g.blockSize); b < last; b++) out.push(b);
  }
  return out;
}

/** What comparing one hash chunk found: blocks whose hashes were compared, and how many of them differed. */
export interface ChunkComparison {
  compared: number;
  differing: number;
}

/**
 * From this share of differing blocks on, a chunk is streamed instead of compared: its
 * blocks are read once, hashed as sent and written, without hashing the target. Comparing
 * costs a hash of both sides to save sending the matching blocks; on the measured box a
 * hashed byte costs about a third of a sent one (read, encrypt, decrypt, write), so
 * comparing pays while fewer than about two thirds differ.
 */
export const STREAM_FROM_DIFFERING = 0.75;
/** The change rate is judged on the last few compared chunks (16 MiB each by default). */
export const RATE_WINDOW_CHUNKS = 4;
/** While streaming, every this many chunks one is compared again, so a file that stops changing is noticed. */
export const PROBE_EVERY_CHUNKS = 8;

/**
 * What refinement has learnt about the differing blocks: nothing to learn (off), not
 * enough runs judged yet, runs differing all over (new data), or equal pieces found
 * inside differing blocks (edits: a few bytes changed in many pages).
 */
export type RefinementState = 'off' | 'judging' | 'whole' | 'edits';

/**
 * How the next chunk is handled: compared by block hashes, compared by the piece hashes
 * of refinement's first level (its differing blocks then skip that round), or streamed.
 */
export type ChunkMode = 'compare' | 'pieces' | 'stream';

/**
 * The next chunk's mode, from what the run has learnt so far: `history` holds the
 * compared chunks in the order their results came in, `sinceCompared` counts the chunks
 * streamed since the last one compared. Nothing learnt yet, or most blocks match:
 * compare. Most blocks differ: new data streams; edits are compared in pieces, because
 * each of their differing blocks would be hashed in pieces on both sides next anyway
 * (one pass over the target instead of two); while refinement is still judging, compare.
 */
export function nextChunkMode(history: readonly ChunkComparison[], sinceCompared: number, refinement: RefinementState = 'off'): ChunkMode {
  let compared = 0;
  let differing = 0;
  for (const h of history.slice(-RATE_WINDOW_CHUNKS)) {
    compared += h.compared;
    differing += h.differing;
  }
  if (compared === 0 || differing < compared * STREAM_FROM_DIFFERING) return 'compare';
  if (refinement === 'edits') return 'pieces';
  if (refinement === 'judging') return 'compare';
  return sinceCompared + 1 >= PROBE_EVERY_CHUNKS ? 'compare' : 'stream';
}
