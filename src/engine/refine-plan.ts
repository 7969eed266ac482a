/**
 * Pure planning of refinement inside differing blocks: no I/O, table-tested.
 *
 * A run of differing blocks is hashed again on both sides in pieces of the first
 * level's size; the pieces that differ are hashed in pieces of the next level's, and
 * so on down to the last level, whose differing pieces are what crosses the wire.
 * Pieces are cut from the start of each range a round hashes (a flat list
 * [offset, length, ...], sorted and disjoint); both sides cut the same way, so a
 * piece's two digests always describe the same bytes.
 * Request sizes come from the op table's caps (protocol/ops.ts), the same ones the
 * agent enforces, so every planned request is one the agent accepts.
 */
import { READ_CHUNK_BYTES } from '../hash/file-hash.js';
import { MAX_HASH_PIECES_BYTES, MAX_PIECES } from '../protocol/limits.js';
import { MAX_READ_BYTES, maxHashBlocks } from '../protocol/ops.js';

/**
 * The piece sizes refinement may use, largest first (measured: BENCHMARKS.md, Refinement).
 * 16 KiB is a database page; 1 KiB and 64 B narrow a row edit and a page's header and
 * trailer down to a few dozen bytes; 1 MiB serves blocks above it (a 16 MiB block).
 * Measured on page edits: 64 B sends about 30% fewer bytes than stopping at 256 B, for
 * the same CPU time (a round's cost is reading and hashing its ranges, not the count
 * of small pieces).
 */
export const DEFAULT_REFINE_LEVELS: readonly number[] = [1024 * 1024, 16 * 1024, 1024, 64];

/**
 * The smallest piece worth a digest: eight digests' length (64 B for xxh64), so a
 * piece's hash costs at most an eighth of its bytes; below it hashes cost about as
 * much as the data they would save.
 */
export function refineFloor(digestLength: number): number {
  return 8 * digestLength;
}

/** The levels a run of blocks of `blockSize` is refined at: those below the block size and not below the floor, largest first. */
export function refineLevels(blockSize: number, digestLength: number, levels: readonly number[] = DEFAULT_REFINE_LEVELS): number[] {
  const floor = refineFloor(digestLength);
  const out = [...new Set(levels)].filter((s) => s < blockSize && s >= floor).sort((a, b) => b - a);
  return out;
}

/**
 * Whether the differing pieces of a range found at one level are hashed again at the next
 * (`nextGrain`): never when every piece differed (the range is new data: it is sent
 * whole, and random blocks cost one round of hashing); always when the next level's
 * digests cost at most 1/64 of the bytes they refine; otherwise (at most 1/8: the floor)
 * only while at most three quarters of the range differed: measured on a clustered range
 * of row edits, 5/8 of a page's 1 KiB pieces differ, yet its 64-byte pieces send a fifth
 * of the bytes, hashes included.
 */
export function keepRefining(differing: number, rangeBytes: number, digestLength: number, nextGrain: number | undefined): boolean {
  if (nextGrain === undefined || differing >= rangeBytes) return false;
  if (digestLength * 64 <= nextGrain) return true;
  return differing * 4 <= rangeBytes * 3;
}

/** Pieces of the next level a probe hashes when every piece of a level differed. */
export const PROBE_PIECES = 16;

/** The probe: the first `bytes` of the first range (all of it when shorter). */
export function probePiece(ranges: readonly number[], bytes: number): number[] {
  return ranges.length === 0 ? [] : [ranges[0]!, Math.min(ranges[1]!, bytes)];
}

/** Merge touching pieces of a sorted flat list. */
export function coalesceRanges(ranges: readonly number[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < ranges.length; i += 2) {
    const n = out.length;
    if (n > 0 && out[n - 2]! + out[n - 1]! === ranges[i]) out[n - 1]! += ranges[i + 1]!;
    else out.push(ranges[i]!, ranges[i + 1]!);
  }
  return out;
}

/** Merge sorted flat lists of disjoint pieces into one sorted list (linear: the lists come sorted). */
export function mergeRanges(lists: readonly (readonly number[])[]): number[] {
  let out: number[] = [];
  for (const list of lists) {
    if (list.length === 0) continue;
    if (out.length === 0 || out[out.length - 2]! < list[0]!) {
      out = out.length === 0 ? [...list] : out.concat(list);
      continue;
    }
    const merged: number[] = [];
    let i = 0;
    let j = 0;
    while (i < out.length || j < list.length) {
      const fromOut = j >= list.length || (i < out.length && out[i]! < list[j]!);
      if (fromOut) merged.push(out[i]!, out[i + 1]!), (i += 2);
      else merged.push(list[j]!, list[j + 1]!), (j += 2);
    }
    out = merged;
  }
  return out;
}

/** The outcome of comparing one level's digests. */
export interface LevelResult {
  /** Differing pieces to hash again at the next level (coalesced). */
  next: number[];
  /** Differing pieces that are final: sent as they are. */
  send: number[];
  /** Pieces compared (the digests of one side). */
  digests: number;
}

/**
 * Compare the digests of `ranges` cut at `grain` (one digest of `digestLength` per
 * piece, in order, on each side) and decide per range whether its differing pieces go
 * on to `nextGrain` or are sent.
 */
export function compareLevel(
  ranges: readonly number[],
  grain: number,
  source: Uint8Array,
  target: Uint8Array,
  digestLength: number,
  nextGrain: number | undefined,
): LevelResult {
  const next: number[] = [];
  const send: number[] = [];
  let k = 0;
  for (let i = 0; i < ranges.length; i += 2) {
    const off = ranges[i]!;
    const len = ranges[i + 1]!;
    const diff: number[] = [];
    let differing = 0;
    for (let s = 0; s < len; s += grain, k++) {
      if (digestsEqual(source, target, k * digestLength, digestLength)) continue;
      const n = Math.min(grain, len - s);
      diff.push(off + s, n);
      differing += n;
    }
    const to = keepRefining(differing, len, digestLength, nextGrain) ? next : send;
    for (const x of diff) to.push(x);
  }
  return { next: coalesceRanges(next), send: coalesceRanges(send), digests: k };
}

function digestsEqual(a: Uint8Array, b: Uint8Array, at: number, len: number): boolean {
  if (a.length < at + len || b.length < at + len) return false;
  for (let i = at; i < at + len; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Split ranges into requests the agent accepts: at most MAX_PIECES ranges, maxBytes
 * bytes and (for hashing at `grain`) as many digests as one reply frame holds. A range
 * longer than a request allows is cut at a multiple of `grain`, so the pieces of the
 * parts are the pieces of the whole.
 */
export function requestBatches(ranges: readonly number[], maxBytes: number, grain = 1, maxDigests = Infinity): number[][] {
  const cap = Math.max(grain, Math.floor(Math.min(maxBytes, maxDigests * grain) / grain) * grain);
  const out: number[][] = [];
  let cur: number[] = [];
  let bytes = 0;
  let digests = 0;
  const flush = () => {
    if (cur.length > 0) out.push(cur);
    cur = [];
    bytes = 0;
    digests = 0;
  };
  for (let i = 0; i < ranges.length; i += 2) {
    let off = ranges[i]!;
    let left = ranges[i + 1]!;
    while (left > 0) {
      const len = Math.min(left, cap);
      const d = Math.ceil(len / grain);
      if (cur.length / 2 >= MAX_PIECES || bytes + len > maxBytes || digests + d > maxDigests) flush();
      cur.push(off, len);
      bytes += len;
      digests += d;
      off += len;
      left -= len;
    }
  }
  flush();
  return out;
}

/** hashpieces requests for `ranges` at `grain`. */
export function hashBatches(ranges: readonly number[], grain: number, digestLength: number): number[][] {
  return requestBatches(ranges, MAX_HASH_PIECES_BYTES, grain, maxHashBlocks(digestLength));
}

/** readpieces/writepieces requests for `ranges`. */
export function ioBatches(ranges: readonly number[]): number[][] {
  return requestBatches(ranges, MAX_READ_BYTES);
}

/**
 * A chunk compared in pieces of `grain`, as ranges of at most one read window each (a
 * multiple of `grain`): each range is read into a window of its own, which the chunk's
 * runs find in memory for their next rounds. Its pieces are the pieces of the chunk.
 */
export function windowRanges(offset: number, length: number, grain: number): number[] {
  const cap = Math.max(grain, Math.floor(READ_CHUNK_BYTES / grain) * grain);
  const out: number[] = [];
  for (let at = 0; at < length; at += cap) out.push(offset + at, Math.min(cap, length - at));
  return out;
}

/** Whether a chunk of `blockSize` blocks can be compared in pieces of `grain`: a block's pieces must be the chunk's. */
export function piecesAlign(blockSize: number, grain: number): boolean {
  return blockSize % grain === 0;
}

/**
 * The blocks of a chunk (first block `first`, `count` blocks of `blockSize`, `length`
 * bytes) with a differing piece: `source` and `target` hold one digest per `grain` piece
 * of the chunk, in order (the last piece may be short, its block too). A digest missing
 * on either side counts as differing.
 */
export function blocksWithDifferingPieces(
  first: number,
  count: number,
  length: number,
  blockSize: number,
  grain: number,
  source: Uint8Array,
  target: Uint8Array,
  digestLength: number,
): number[] {
  const perBlock = blockSize / grain;
  const pieces = Math.ceil(length / grain);
  const out: number[] = [];
  for (let b = 0; b < count; b++) {
    const end = Math.min((b + 1) * perBlock, pieces);
    for (let k = b * perBlock; k < end; k++) {
      if (!digestsEqual(source, target, k * digestLength, digestLength)) {
        out.push(first + b);
        break;
      }
    }
  }
  return out;
}

/** The digests of a run's pieces among a chunk's (both start at block boundaries, pieces of `grain`). */
export function runDigests(digests: Buffer, chunkOffset: number, runOffset: number, runLength: number, grain: number, digestLength: number): Buffer {
  const k = (runOffset - chunkOffset) / grain;
  return digests.subarray(k * digestLength, (k + Math.ceil(runLength / grain)) * digestLength);
}
