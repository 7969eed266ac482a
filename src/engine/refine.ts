/**
 * Refinement inside differing blocks: send the bytes that changed, not whole blocks.
 *
 * A run of differing blocks that the target holds entirely is hashed again on both
 * sides, level by level in smaller pieces (refine-plan.ts decides how far), and only
 * the pieces that still differ at the end are read from the source and written to the
 * target. Each run goes through its rounds on its own, so rounds of different runs
 * overlap with each other and with the hashing of later chunks: no run waits for
 * another's round trip. Nothing here weakens verification: every block of the run is
 * still re-read after the fsync and checked against the source's full block hash, so a
 * target that changed between two rounds (a piece found equal, then overwritten)
 * fails verification instead of passing as copied.
 */
import pLimit from 'p-limit';
import { sourceChanged, throwIfAborted } from '../errors/pdc-error.js';
import type { FileHost } from '../hosts/file-host.js';
import { REFINE_RUNS_IN_FLIGHT } from '../protocol/limits.js';
import { piecesBytes } from '../protocol/ops.js';
import type { RefinementState, Run } from './plan.js';
import { PROBE_PIECES, coalesceRanges, compareLevel, hashBatches, ioBatches, mergeRanges, probePiece, refineLevels } from './refine-plan.js';

export interface RefineOptions {
  src: FileHost;
  dst: FileHost;
  method: string;
  digestLength: number;
  /** Piece sizes, largest first (refineLevels()); empty: refinement is off. */
  levels: readonly number[];
  /** The target's size when opened: only runs it holds entirely are refined. */
  targetSize: number;
  srcName: string;
}

/** What refinement found and moved, over all runs. */
export interface RefineStats {
  /** Bytes of the differing blocks that differ at the finest level each was refined to (unrefined blocks count whole). */
  bytesDiffering: number;
  /** Digest bytes one side sent for refinement (the remote side's cross the wire). */
  bytesHashes: number;
  /** Runs whose differing pieces were sent instead of their blocks. */
  runsRefined: number;
}

/**
 * A run's digests at the first level, already hashed on both sides (the chunk it lies in
 * was compared in pieces), and the affinity they were hashed with (where their read
 * windows are kept).
 */
export interface FirstLevel {
  s: Buffer;
  d: Buffer;
  affinity: number;
}

/** Runs judged to tell whether refinement still finds equal pieces (recentlyWhole). */
export const WHOLE_WINDOW_RUNS = 4;

/**
 * While runs differ all over, one run in this many is still refined (a probe); each probe
 * that finds nothing doubles the gap, up to REFINE_PROBE_MAX_GAP, and a run found with
 * equal pieces brings it back. A probe delays its run's send by two round trips, which
 * on a busy link queue behind the data in flight: measured on random 1 MiB blocks at
 * 1 Gbit, a probe every 8 runs cost ~5% of the time, no probes none.
 */
export const REFINE_PROBE_EVERY = 8;
export const REFINE_PROBE_MAX_GAP = 64;

/** The runs, counted from the first one judged whole, that are refined as probes: gaps doubling from REFINE_PROBE_EVERY to REFINE_PROBE_MAX_GAP. */
export function probeRuns(wholeRuns: number): number {
  let n = 0;
  for (let gap = REFINE_PROBE_EVERY, at = gap; at <= wholeRuns; gap = Math.min(gap * 2, REFINE_PROBE_MAX_GAP), at += gap) n++;
  return n;
}

export class Refiner {
  readonly stats: RefineStats = { bytesDiffering: 0, bytesHashes: 0, runsRefined: 0 };
  /**
   * Runs refined at once. Their rounds are round trips that move little, so twice as many as
   * the whole-run transfers keep both sides busy through the latency; each holds at most one
   * run's digests, a read window on each side (kept there for its next rounds) and its
   * differing pieces (<= one run).
   */
  private readonly limit = pLimit(REFINE_RUNS_IN_FLIGHT);
  /** For the last runs moved: 1 where the run differed all over (went whole), 0 where pieces matched. */
  private readonly outcomes: number[] = [];
  private sinceProbe = 0;
  private probeGap = REFINE_PROBE_EVERY;
  /** Tells the hosts which requests belong to one run (affinity: its rounds go to one agent). */
  private runs = 0;
  /** Runs that went into refinement, and those of them judged (or failed). */
  private started = 0;
  private settled = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly o: RefineOptions) {}

  /** A run sent without comparing (streamed, or -W): nothing is known of its bytes, so all of them count as differing. */
  sentUncompared(run: Run): void {
    this.stats.bytesDiffering += run.length;
  }

  /**
   * Find the differing pieces of a run of differing blocks and, when `write`, move them.
   * Returns the data bytes moved (a dry run: that would be moved), or undefined when
   * the run is to be sent whole (it is not refinable, or all of it differs). Only a run
   * that is refined takes one of the `limit` slots (once it has one, a run stops there if
   * `signal` is aborted); a run going whole returns at once.
   */
  async move(run: Run, write: boolean, signal?: AbortSignal, first?: FirstLevel): Promise<number | undefined> {
    // No await between this check and `started++`: runs handed over together see each other.
    // A run whose first level is hashed already is refined: the costly round is behind it.
    while (write && !first && this.refinable(run) && this.judging()) await new Promise<void>((resolve) => this.waiting.push(resolve));
    if (!this.refinable(run) || (write && !first && this.skipWhileWhole())) {
      this.stats.bytesDiffering += run.length;
      return undefined;
    }
    this.started++;
    return this.limit(async () => {
      throwIfAborted(signal);
      const affinity = first ? first.affinity : this.affinity();
      // A run is judged as soon as equal pieces show up in it (edits), else when its rounds end.
      let judged = false;
      const judge = (whole: boolean | undefined) => {
        if (judged) return;
        judged = true;
        if (whole !== undefined) this.outcomes.push(whole ? 1 : 0);
        if (this.outcomes.length > WHOLE_WINDOW_RUNS) this.outcomes.shift();
        this.settle();
      };
      let pieces: number[] | undefined;
      try {
        pieces = await this.differingPieces(run, affinity, () => judge(false), first);
        judge(pieces === undefined || piecesBytes(pieces) === run.length);
      } finally {
        judge(undefined); // failed: no outcome, but runs waiting for judgements look again
      }
      const bytes = pieces === undefined ? run.length : piecesBytes(pieces);
      this.stats.bytesDiffering += bytes;
      if (pieces === undefined || bytes === run.length) return undefined;
      this.stats.runsRefined++;
      if (write) await Promise.all(ioBatches(pieces).map((batch) => this.copyPieces(batch, affinity)));
      return bytes;
    });
  }

  /**
   * Until the first WHOLE_WINDOW_RUNS runs have been judged, no more than that many are
   * refined: on new data the rest would all be hashed twice for nothing (every run
   * arriving meanwhile waits for the first judgements, then goes whole or is refined).
   */
  private judging(): boolean {
    return this.settled < WHOLE_WINDOW_RUNS && this.started >= WHOLE_WINDOW_RUNS;
  }

  /** A refined run was judged (or failed): runs waiting for the first judgements look again. */
  private settle(): void {
    this.settled++;
    for (const wake of this.waiting.splice(0)) wake();
  }

  /** The first level's piece size (a chunk compared in pieces is hashed at it). */
  get firstGrain(): number {
    return this.o.levels[0]!;
  }

  /** A new affinity: requests made with it go to one agent, which keeps their read windows. */
  affinity(): number {
    return this.runs++;
  }

  /** What refinement has learnt: see RefinementState. */
  state(): RefinementState {
    if (this.recentlyWhole()) return 'whole';
    return this.outcomes.includes(0) ? 'edits' : 'judging';
  }

  /**
   * First-level digests of `ranges` from one side (a chunk compared in pieces); those
   * of the target cross the wire and are counted with refinement's hashes.
   */
  async hashFirstLevel(host: FileHost, ranges: readonly number[], affinity: number, counted: boolean): Promise<Buffer> {
    const digests = await this.hash(host, ranges, this.firstGrain, affinity);
    if (counted) this.stats.bytesHashes += digests.length;
    return digests;
  }

  /**
   * The last WHOLE_WINDOW_RUNS runs all differed all over (new data, not edits): refining
   * finds nothing, so chunks may stream (state 'whole'). False until that many were seen.
   */
  private recentlyWhole(): boolean {
    return this.outcomes.length >= WHOLE_WINDOW_RUNS && this.outcomes.every((x) => x === 1);
  }

  /**
   * While the recent runs differed all over (new data), refining a run costs a hash of it on
   * both sides for nothing: only a few runs are refined, at growing gaps (REFINE_PROBE_EVERY), as probes that
   * notice when edits start again; the others go whole. (A dry run refines every run: its
   * estimate is what it reports.)
   */
  private skipWhileWhole(): boolean {
    if (!this.recentlyWhole()) {
      this.sinceProbe = 0;
      this.probeGap = REFINE_PROBE_EVERY;
      return false;
    }
    if (++this.sinceProbe < this.probeGap) return true;
    this.sinceProbe = 0;
    this.probeGap = Math.min(this.probeGap * 2, REFINE_PROBE_MAX_GAP);
    return false;
  }

  /** A run the target holds entirely, with levels to refine at. */
  private refinable(run: Run): boolean {
    return this.o.levels.length > 0 && run.length > 0 && run.offset + run.length <= this.o.targetSize;
  }

  /**
   * The run's differing pieces (sorted, coalesced), or undefined when it is not refined;
   * `edits` is called once equal pieces are found inside the run (it is not new data).
   */
  private async differingPieces(run: Run, affinity: number, edits: () => void, first?: FirstLevel): Promise<number[] | undefined> {
    const { levels, digestLength } = this.o;
    let ranges = [run.offset, run.length];
    const send: number[][] = []; // each level's final pieces, sorted
    for (let i = 0; i < levels.length && ranges.length > 0; i++) {
      const grain = levels[i]!;
      const given = i === 0 ? first : undefined; // counted where its chunk was hashed
      const [s, d] = given ? [given.s, given.d] : await Promise.all([this.hash(this.o.src, ranges, grain, affinity), this.hash(this.o.dst, ranges, grain, affinity)]);
      const r = compareLevel(ranges, grain, s, d, digestLength, levels[i + 1]);
      if (!given) this.stats.bytesHashes += r.digests * digestLength;
      if (piecesBytes(r.send) + piecesBytes(r.next) < piecesBytes(ranges)) edits();
      if (levels[i + 1] !== undefined && r.next.length === 0 && piecesBytes(r.send) === piecesBytes(ranges) && (await this.probeFindsEqual(ranges, levels[i + 1]!, affinity))) {
        edits();
        ranges = r.send; // every piece differs, but not all over: small edits in every piece
        continue;
      }
      send.push(r.send);
      ranges = r.next;
    }
    return coalesceRanges(mergeRanges(send));
  }

  /**
   * Every piece of a level differed: new data (sent whole), or a few bytes changed in every
   * piece (every page of a table touched)? One piece hashed at the next level tells: new
   * data has no equal sub-piece. It costs a round trip and one piece's digests.
   */
  private async probeFindsEqual(ranges: readonly number[], nextGrain: number, affinity: number): Promise<boolean> {
    const probe = probePiece(ranges, nextGrain * PROBE_PIECES);
    const [s, d] = await Promise.all([this.hash(this.o.src, probe, nextGrain, affinity), this.hash(this.o.dst, probe, nextGrain, affinity)]);
    const r = compareLevel(probe, nextGrain, s, d, this.o.digestLength, undefined);
    this.stats.bytesHashes += r.digests * this.o.digestLength;
    return piecesBytes(r.send) < piecesBytes(probe);
  }

  private async hash(host: FileHost, ranges: readonly number[], grain: number, affinity: number): Promise<Buffer> {
    const parts = await Promise.all(hashBatches(ranges, grain, this.o.digestLength).map((b) => host.hashPieces(b, grain, this.o.method, affinity)));
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  }

  private async copyPieces(batch: number[], affinity: number): Promise<void> {
    const chunk = await this.o.src.readPieces(batch, affinity);
    try {
      if (chunk.length !== piecesBytes(batch)) throw sourceChanged(this.o.srcName, 'it became shorter');
      await this.o.dst.writePieces(batch, chunk.buffers);
    } finally {
      chunk.release();
    }
  }
}

/**
 * The refiner for one file, or undefined when no level fits its blocks (or `levels`
 * is empty: --no-refine).
 */
export function refinerFor(o: Omit<RefineOptions, 'levels'> & { blockSize: number; levels?: readonly number[] }): Refiner | undefined {
  const levels = refineLevels(o.blockSize, o.digestLength, o.levels);
  return levels.length === 0 ? undefined : new Refiner({ ...o, levels });
}

/** How similar the files are: the share of bytes that match, estimated from what refinement found. */
export interface ByteSimilarity {
  /** Bytes that differ: inside refined runs the differing pieces, other changed blocks whole. */
  bytesDiffering: number;
  /** Percentage of bytes that already matched (estimated as above; 100 for an empty file). */
  similarityBytes: number;
  /** Digest bytes sent for refinement by one side (the remote side's cross the wire). */
  bytesRefineHashes: number;
}

export function byteSimilarity(stats: RefineStats | undefined, bytesChanged: number, bytesTotal: number): ByteSimilarity {
  const differing = stats ? stats.bytesDiffering : bytesChanged;
  const similar = bytesTotal === 0 ? 100 : Math.round(((bytesTotal - differing) / bytesTotal) * 10000) / 100;
  return { bytesDiffering: differing, similarityBytes: similar, bytesRefineHashes: stats ? stats.bytesHashes : 0 };
}
