import pLimit from 'p-limit';
import { ByteBudget } from './byte-budget.js';
import { PdcError, sourceChanged } from '../errors/pdc-error.js';
import { type BlockHasher, DIGEST_METHOD, createBlockHasher, digestLength, unknownHashMethod } from '../hash/methods.js';
import type { FileHost } from '../hosts/file-host.js';
import type { OpenResult, StatResult } from '../protocol/messages.js';
import type { Emit, SyncSummary } from './events.js';
import {
  type ChunkComparison,
  type ChunkMode,
  type Geometry,
  type Run,
  changedBlocks,
  coalesce,
  comparablePrefix,
  geometry,
  hashChunks,
  holeBlocks,
  nextChunkMode,
  runPieces,
  similarity,
  zeroUnit,
  spaceNeeded,
  spanOf,
  transferRunBytes,
} from './plan.js';
import { Profiler, profileText } from './profile.js';
import { ensureSpace } from './space.js';
import { zeroDigest } from '../hash/file-hash.js';
import { type FirstLevel, type Refiner, byteSimilarity, refinerFor } from './refine.js';
import { blocksWithDifferingPieces, piecesAlign, runDigests, windowRanges } from './refine-plan.js';
import { deviceTooSmall } from '../fileops/block-device.js';
import { type ZeroRun, zeroBytesOf } from '../fileops/zero-runs.js';
import { BufferPool } from '../fileops/buffer-pool.js';
import { TRANSFER_BUFFER_BYTES } from '../fileops/file-service.js';
import { REFINE_RUNS_IN_FLIGHT } from '../protocol/limits.js';
import { readDigestsFit } from '../protocol/ops.js';
import { WrittenCheck } from './written-check.js';

export interface Endpoint {
  host: FileHost;
  path: string;
}

export interface SyncOptions {
  source: Endpoint;
  target: Endpoint;
  blockSize: number;
  hashMethod: string;
  wholeFile: boolean;
  dryRun: boolean;
  /** Also compare whole-file sha256 digests computed independently on both sides. */
  verify: boolean;
  /** Build the new version in a temp file beside the target and rename it into place at the end. */
  atomic?: boolean;
  /** Read or write a block device even when it is in use (mounted or held exclusively). */
  forceDevice?: boolean;
  /** Zero runs inside an existing target become holes where the target's host can punch them. */
  sparse?: boolean;
  /**
   * Piece sizes to refine differing blocks at (largest first; those not below the block
   * size or below the floor are dropped): default DEFAULT_REFINE_LEVELS; empty: off.
   */
  refineLevels?: readonly number[];
  /** Hash chunks in flight (and twice as many block transfers). */
  concurrency: number;
  signal?: AbortSignal;
  emit: Emit;
}

/**
 * Make target byte-identical to source, moving only differing blocks.
 *
 * Both sides hash the same chunk at the same time; as soon as a chunk's two hash
 * lists are in, its differing blocks start moving while later chunks are still
 * being hashed. Once most compared blocks differ, chunks are streamed instead
 * (sent without hashing the target, hashed as sent), with one compared now and
 * then to follow the change rate. Written blocks are read back on the target and checked
 * against the source's hashes (written-check.ts: runs moved whole at once, refined ones
 * after the fsync); after the last write: resize, fsync, and judge the read-back.
 */
export async function syncFile(o: SyncOptions): Promise<SyncSummary> {
  const started = performance.now();
  const prof = new Profiler();
  const { source, emit } = o;
  const src = source.host;
  const dst = o.target.host;
  const abort = () => {
    if (o.signal?.aborted) throw new PdcError('INTERRUPTED', 'interrupted');
  };

  emit({ type: 'phase', phase: 'syncing' });
  const { path: targetPath, stat: targetStat, srcStat } = await resolveTarget(o);
  const srcName = src.display(source.path);
  const dstName = dst.display(targetPath);
  checkHashMethod(o.hashMethod, src, dst);

  const srcOpen = await src.open({ path: source.path, role: 'source', ...deviceArg(srcStat, o) });
  const targetDevice = targetStat.kind === 'block';
  if (targetDevice && targetStat.size < srcOpen.size) throw deviceTooSmall(dstName, targetStat.size, srcOpen.size);
  const needed = spaceNeeded({ sourceSize: srcOpen.size, targetSize: targetStat.exists ? targetStat.size : 0, atomic: !!o.atomic, dryRun: o.dryRun });
  await ensureSpace(dst, targetPath, needed, emit);
  const { targetSize, targetCreated, targetOpen } = await openTarget(o, targetPath, targetStat, srcOpen.mode);

  const g = geometry(srcOpen.size, o.blockSize);
  const digestLen = await digestLength(o.hashMethod);
  emit({
    type: 'start',
    source: srcName,
    target: dstName,
    bytesTotal: g.size,
    blocksTotal: g.blocks,
    blockSize: g.blockSize,
    targetSize,
    hashMethod: o.hashMethod,
    mode: o.dryRun ? 'dry-run' : o.wholeFile ? 'whole-file' : 'delta',
  });
  prof.lap('setup');

  // The source's block hashes that the written blocks are verified against: for compared
  // chunks the source side's hash lists, for streamed ones (and in whole-file mode) the
  // hashes of the bytes as read and sent (so a source changed after a block was sent is
  // not blamed on the target).
  const sourceHashes = Buffer.alloc(g.blocks * digestLen);
  // An empty target has nothing to compare: every block is sent, and hashed as sent, so the
  // source is read once (not hashed, then read again: for a sparse image, its holes twice).
  const sendAll = o.wholeFile || (!o.dryRun && targetSize === 0);
  const sentHasher = o.dryRun ? undefined : await createBlockHasher(o.hashMethod);
  // Differing blocks are refined to the pieces that differ (a dry run too: its estimate of the bytes that differ).
  const refiner = sendAll ? undefined : refinerFor({ src, dst, method: o.hashMethod, digestLength: digestLen, blockSize: g.blockSize, levels: o.refineLevels, targetSize, srcName });
  const changed: number[] = [];
  let bytesHashed = 0;
  let bytesSent = 0;
  let bytesToSend = 0;
  const bytesToCompare = sendAll ? 0 : g.size;
  const progress = () =>
    emit({ type: 'progress', bytesHashed, bytesToCompare, bytesSent, bytesToSend, bytesZero: moved.zero + moved.hole, blocksChanged: changed.length, bytesTotal: g.size });

  // Each side hashes ahead at its own pace with a couple of requests queued per agent or
  // worker, so none of them idles through a round trip; a chunk is compared once both
  // of its hash lists are in. (Pairing the two sides in shared slots left both ~70% idle.)
  const srcLimit = pLimit(Math.max(2, src.parallelism * 2));
  const dstLimit = pLimit(Math.max(2, dst.parallelism * 2));
  let stopped = false;
  const guard = () => {
    if (stopped) throw new PdcError('INTERRUPTED', 'stopped after an earlier failure');
    abort();
  };
  const runBytes = transferRunBytes(g.blockSize);
  // Block data in flight: what two runs of up to runBytes per agent would hold, at most about
  // 64 MiB, at least 2 runs; counted in bytes, so scattered one-block runs keep as much moving.
  const transferBudget = new ByteBudget(Math.max(2, Math.min(o.concurrency * 2, Math.floor((64 << 20) / runBytes))) * runBytes);
  const transfers: Promise<void>[] = [];
  // Every transfer is handled at once and the first failure ends the hashing phase: a
  // failed write (no space, agent gone) must not wait for the whole file to be hashed,
  // nor surface later as an unhandled rejection.
  let failTransfers!: (e: unknown) => void;
  const transferFailed = new Promise<never>((_, reject) => (failTransfers = reject));
  transferFailed.catch(() => undefined);

  // Zero runs at or past the target's old end stay holes (a device has no holes: all are written).
  const holesFrom = targetDevice ? Infinity : targetSize;
  const moved: Moved = { data: 0, wire: 0, zero: 0, hole: 0, zeroBlocks: 0 };
  const check = new WrittenCheck({ source: src, target: dst, g, method: o.hashMethod, sourceHashes, digestLen, concurrency: o.concurrency, srcName, dstName, abort, prof });
  const transfer = async (run: Run, hashAsSent: boolean, first?: FirstLevel) => {
    // Refinement rounds move digests and small pieces: more runs go through them at once than
    // whole runs move (refine.ts), so their round trips overlap instead of queueing for a slot.
    // A streamed run has no target hashes to refine against: it goes whole.
    const refined = refiner && !hashAsSent ? await refiner.move(run, !o.dryRun, abort, first) : undefined;
    if (refiner && hashAsSent) refiner.sentUncompared(run);
    if (refined !== undefined) bytesToSend -= run.length - refined; // only the differing pieces move
    if (o.dryRun) return;
    if (refined !== undefined) {
      addMoved(moved, { data: refined, wire: refined, zero: 0, hole: 0, zeroBlocks: 0 });
      bytesSent += refined;
      progress();
      return check.writtenRefined(run);
    }
    const holes = await transferBudget.run(run.length, async () => {
      abort();
      const sent = hashAsSent && sentHasher ? { method: o.hashMethod, hasher: sentHasher, out: sourceHashes, digestLen } : undefined;
      const m = await prof.time('transfer', () => sendRun(src, dst, run, g, { holesFrom, punch: !!o.sparse && !targetDevice }, srcName, sent));
      addMoved(moved, m);
      bytesSent += m.data;
      progress();
      return m.holeBlocks;
    });
    await check.written(run, holes);
  };

  /**
   * Send `blocks` (sorted); `hashAsSent`: their source hashes are taken from the bytes sent;
   * `firstOf`: a run's first-level digests, where its chunk was compared in pieces.
   */
  const schedule = (blocks: number[], hashAsSent = false, firstOf?: (run: Run) => FirstLevel): Promise<void>[] => {
    for (const b of blocks) changed.push(b);
    if (o.dryRun && !refiner) return [];
    const mine: Promise<void>[] = [];
    for (const run of coalesce(blocks, g, runBytes)) {
      bytesToSend += run.length;
      const t = transfer(run, hashAsSent, firstOf?.(run));
      t.catch(failTransfers);
      transfers.push(t);
      mine.push(t);
    }
    return mine;
  };
  const blocksOf = (first: number, count: number) => Array.from({ length: count }, (_, i) => first + i);

  if (sendAll) {
    schedule(blocksOf(0, g.blocks), true);
  } else {
    // The change rate learnt so far decides, chunk by chunk in file order, whether the
    // next one is compared or streamed (a dry run always compares: it reports differences).
    const history: ChunkComparison[] = [];
    let sinceCompared = 0;
    const modeNext = (): ChunkMode => {
      const mode = nextChunkMode(history, sinceCompared, refiner ? refiner.state() : 'off');
      // A dry run never streams: it reports the blocks that differ.
      const m = o.dryRun && mode === 'stream' ? 'compare' : mode;
      sinceCompared = m === 'stream' ? sinceCompared + 1 : 0;
      return m;
    };
    const range = (chunk: Run, count: number) => ({ first: chunk.first, count, blockSize: g.blockSize, limit: g.size });
    // Both hosts hear once that the run streams: hashes computed ahead of requests would go unused.
    let streaming = false;
    const startStreaming = () => {
      if (streaming) return;
      streaming = true;
      src.streaming?.();
      dst.streaming?.();
    };

    /** Compare a chunk by block hashes; returns its differing blocks. */
    const compareBlocks = async (chunk: Run, comparable: number): Promise<number[]> => {
      const d = comparable > 0 && targetOpen ? dstLimit(() => (guard(), prof.time('targetHash', () => dst.hash(range(chunk, comparable), o.hashMethod)))) : undefined;
      d?.catch(() => undefined); // a failure is reported where it is awaited below
      const s = await srcLimit(() => (guard(), prof.time('sourceHash', () => src.hash(range(chunk, chunk.count), o.hashMethod))));
      const t = await d;
      s.copy(sourceHashes, chunk.first * digestLen);
      const differing = changedBlocks(chunk.first, chunk.count, comparable, s, t, digestLen);
      if (t) history.push({ compared: comparable, differing: differing.length - (chunk.count - comparable) });
      return differing;
    };

    /**
     * Compare a chunk the target holds entirely by refinement's first-level pieces (the
     * source's block hashes still come along: written blocks are verified against them);
     * its differing runs go on from the next level.
     */
    const comparePieces = async (chunk: Run, r: Refiner): Promise<void> => {
      const grain = r.firstGrain;
      const affinity = r.affinity();
      const ranges = windowRanges(chunk.offset, chunk.length, grain);
      const d = dstLimit(() => (guard(), prof.time('targetHash', () => r.hashFirstLevel(dst, ranges, affinity, true))));
      d.catch(() => undefined); // a failure is reported where it is awaited below
      const [s, sp] = await srcLimit(() =>
        (guard(), prof.time('sourceHash', () => Promise.all([src.hash(range(chunk, chunk.count), o.hashMethod), r.hashFirstLevel(src, ranges, affinity, false)]))),
      );
      const dp = await d;
      s.copy(sourceHashes, chunk.first * digestLen);
      const differing = blocksWithDifferingPieces(chunk.first, chunk.count, chunk.length, g.blockSize, grain, sp, dp, digestLen);
      history.push({ compared: chunk.count, differing: differing.length });
      const at = (digests: Buffer, run: Run) => runDigests(digests, chunk.offset, run.offset, run.length, grain, digestLen);
      await Promise.all(schedule(differing, false, (run) => ({ s: at(sp, run), d: at(dp, run), affinity })));
    };
    const chunks = hashChunks(g, digestLen);
    // A chunk compared in pieces holds its slot until its runs are moved: their next rounds
    // read the chunk's windows from memory only while no more chunks are in pieces than
    // each side keeps windows for.
    const windowsPerChunk = refiner ? windowRanges(0, chunks[0]?.length ?? 0, refiner.firstGrain).length / 2 : 1;
    const piecesLimit = pLimit(Math.max(1, Math.floor(REFINE_RUNS_IN_FLIGHT / Math.max(1, windowsPerChunk))));

    // A chunk holds its slot until it is compared (or, streamed, until its blocks are
    // written), so each chunk's mode is decided from what the chunks before it showed,
    // no more than a slot count behind, and streaming runs no further ahead than hashing would.
    const inFlight = pLimit(Math.max(2, src.parallelism * 2, dst.parallelism * 2));
    const hashing = Promise.all(
      chunks.map((chunk) =>
        inFlight(async () => {
          guard();
          const mode = modeNext();
          const comparable = comparablePrefix(g, chunk.first, chunk.count, targetSize);
          if (mode === 'stream') {
            startStreaming();
            prof.profile.chunks.streamed++;
            await Promise.all(schedule(blocksOf(chunk.first, chunk.count), true));
          } else if (mode === 'pieces' && refiner && targetOpen && comparable === chunk.count && piecesAlign(g.blockSize, refiner.firstGrain)) {
            prof.profile.chunks.compared++;
            prof.profile.chunks.inPieces++;
            await piecesLimit(() => comparePieces(chunk, refiner));
          } else {
            prof.profile.chunks.compared++;
            schedule(await compareBlocks(chunk, comparable));
          }
          bytesHashed += chunk.length;
          progress();
        }),
      ),
    );
    hashing.catch(() => undefined); // when a transfer failed first, later hash failures are moot
    try {
      await Promise.race([hashing, transferFailed]);
    } catch (e) {
      stopped = true; // queued hash requests bail out instead of running on
      throw e;
    }
  }
  await Promise.all(transfers);
  changed.sort((a, b) => a - b);
  progress();
  prof.lap('transfer');

  const verified = o.dryRun
    ? 'none'
    : await finishTarget(o, { g, check, srcName, dstName, targetPath, targetSize, targetDevice, srcMtime: srcOpen.mtimeMs, prof });

  const seconds = (performance.now() - started) / 1000;
  const bytesChanged = changed.reduce((sum, b) => sum + spanOf(g, b, 1).length, 0);
  const summary: SyncSummary = {
    source: srcName,
    target: dstName,
    dryRun: o.dryRun,
    wholeFile: o.wholeFile,
    hashMethod: o.wholeFile ? 'none' : o.hashMethod,
    blockSize: g.blockSize,
    bytesTotal: g.size,
    bytesSent: o.dryRun ? (refiner ? refiner.stats.bytesDiffering : bytesChanged) : moved.wire,
    bytesData: o.dryRun ? (refiner ? refiner.stats.bytesDiffering : bytesChanged) : moved.data,
    blocksTotal: g.blocks,
    blocksChanged: changed.length,
    similarity: similarity(changed.length, g.blocks),
    ...byteSimilarity(refiner?.stats, bytesChanged, g.size),
    seconds: Math.round(seconds * 1000) / 1000,
    throughput: seconds > 0 ? Math.round(g.size / seconds) : 0,
    verified,
    targetCreated,
    blocksZero: moved.zeroBlocks,
    bytesZero: moved.zero + moved.hole,
    bytesHoles: moved.hole,
    targetDevice,
    bytesBeyondSource: targetDevice ? Math.max(0, targetSize - g.size) : 0,
    profile: prof.rounded(),
  };
  emit({ type: 'log', level: 1, message: `${dstName}: ${profileText(summary.profile!)}` });
  emit({ type: 'phase', phase: 'done' });
  emit({ type: 'done', summary });
  return summary;
}

interface Finish {
  g: Geometry;
  /** Holds what the read-back of the written blocks found. */
  check: WrittenCheck;
  srcName: string;
  dstName: string;
  targetPath: string;
  /** The target's size when opened (a device's size: it is never resized). */
  targetSize: number;
  targetDevice: boolean;
  srcMtime: number;
  prof: Profiler;
}

/**
 * After the last write (runs moved whole already read back): size the target (a
 * device never), fsync, judge the read-back (and with --verify compare the whole-file
 * digests), check the source did not change, then commit. Returns what was verified.
 */
async function finishTarget(o: SyncOptions, f: Finish): Promise<SyncSummary['verified']> {
  const { g } = f;
  const { emit } = o;
  const src = o.source.host;
  const dst = o.target.host;
  emit({ type: 'phase', phase: 'finishing' });
  if (f.targetSize !== g.size && !f.targetDevice) await dst.truncate(g.size);
  await dst.fsync();
  f.prof.lap('fsync');
  emit({ type: 'phase', phase: 'verifying' });
  await f.check.judge();
  f.prof.lap('verify');
  let verified: SyncSummary['verified'] = 'blocks';
  if (o.verify) {
    emit({ type: 'phase', phase: 'digesting' });
    const [a, b] = await Promise.all([src.digest(DIGEST_METHOD, g.size), dst.digest(DIGEST_METHOD, g.size)]);
    if (!a.equals(b)) {
      throw new PdcError('VERIFY_FAILED', `${f.dstName} does not match ${f.srcName} (sha256 ${b.toString('hex')} vs ${a.toString('hex')})`, {
        hint: 'rerun to repair; if it persists, check the target disk and memory',
      });
    }
    verified = 'sha256';
    f.prof.lap('digest');
  }
  await checkFinalState(o, g, f.targetPath, f.targetDevice ? f.targetSize : g.size, f.srcMtime, f.srcName, f.dstName);
  if (o.signal?.aborted) throw new PdcError('INTERRUPTED', 'interrupted');
  await commit(o, g.size);
  f.prof.lap('commit');
  return verified;
}

/** The target as given, or the source's name inside it when it is a directory (as cp does). */
async function resolveTarget(o: SyncOptions): Promise<{ path: string; stat: StatResult; srcStat: StatResult }> {
  const { host, path } = o.target;
  const srcStat = await o.source.host.stat(o.source.path, 'source');
  const srcName = o.source.host.display(o.source.path);
  if (!srcStat.exists) {
    throw new PdcError('SOURCE_NOT_FOUND', `source ${srcName} does not exist`, { hint: 'check the path' });
  }
  if (srcStat.kind !== 'file' && srcStat.kind !== 'block') {
    throw new PdcError('SOURCE_NOT_REGULAR', `source ${srcName} is ${srcStat.kind === 'dir' ? 'a directory' : 'not a regular file or block device'}`, {
      hint: 'pdiffcopy copies one regular file or block device; name one as the source',
    });
  }
  let targetPath = path;
  let stat = await host.stat(targetPath, 'target');
  if (stat.kind === 'dir' || (!stat.exists && /\/$/.test(path))) {
    targetPath = host.join(path, basename(o.source.path));
    stat = await host.stat(targetPath, 'target');
  }
  if (stat.exists && stat.kind !== 'file' && stat.kind !== 'block') {
    throw new PdcError('TARGET_NOT_REGULAR', `target ${host.display(targetPath)} is ${stat.kind === 'dir' ? 'a directory' : 'not a regular file or block device'}`, {
      hint: 'name a regular file, a block device (or a directory to copy into) as the target',
    });
  }
  if (o.atomic && (srcStat.kind === 'block' || stat.kind === 'block')) {
    const which = stat.kind === 'block' ? `target ${host.display(targetPath)}` : `source ${srcName}`;
    throw new PdcError('USAGE', `--atomic cannot be used with a block device (${which})`, {
      hint: 'drop --atomic: a device target is written in place (a device source needs no --atomic)',
    });
  }
  if (stat.exists && o.source.host.machineId === host.machineId && stat.dev === srcStat.dev && stat.ino === srcStat.ino) {
    throw new PdcError('SAME_FILE', `source and target are the same file (${srcName})`, { hint: 'name a different target' });
  }
  return { path: targetPath, stat, srcStat };
}

/** How a side opens its path: a block device is accepted only when it is one, checked for use unless --force-device. */
function deviceArg(st: StatResult, o: SyncOptions): { device?: 'check' | 'force' } {
  return st.kind === 'block' ? { device: o.forceDevice ? 'force' : 'check' } : {};
}

/**
 * Open the target: for writing (created if missing, locked; --atomic builds a temp
 * file), or read-only for a dry run when it exists. Returns its size as opened.
 */
async function openTarget(
  o: SyncOptions,
  path: string,
  st: StatResult,
  sourceMode: number,
): Promise<{ targetSize: number; targetCreated: boolean; targetOpen: boolean }> {
  const dst = o.target.host;
  const device = deviceArg(st, o);
  if (!o.dryRun) {
    // A new target gets the source's permission bits (narrowed by the target's umask).
    const r = await dst.open({ path, role: 'target', create: true, lock: true, atomic: !!o.atomic, mode: sourceMode, ...device });
    reportTemp(r, dst, o.emit);
    return { targetSize: r.size, targetCreated: r.created, targetOpen: true };
  }
  if (!st.exists) return { targetSize: 0, targetCreated: false, targetOpen: false };
  const r = await dst.open({ path, role: 'target', write: false, ...device });
  return { targetSize: r.size, targetCreated: false, targetOpen: true };
}

function basename(p: string): string {
  const parts = p.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? p;
}

function checkHashMethod(method: string, a: FileHost, b: FileHost): void {
  // Checked in whole-file mode too: the written blocks are verified with this hash.
  if (a.hashMethods.has(method) && b.hashMethods.has(method)) return;
  throw unknownHashMethod(method, [...a.hashMethods].filter((m) => b.hashMethods.has(m)), 'available on both sides');
}

/** --atomic: say where the new version is built, and which files at temp names were not ours. */
function reportTemp(r: OpenResult, dst: FileHost, emit: Emit): void {
  if (r.temp === undefined) return;
  for (const path of r.leftAlone ?? []) {
    emit({ type: 'log', level: 1, message: `left ${dst.display(path)} alone: it is not a temp file this user made (check who created it)` });
  }
  emit({ type: 'temp', path: dst.display(r.temp), resumed: !!r.resumed });
  if (r.resumed) emit({ type: 'log', level: 1, message: `resuming in ${dst.display(r.temp)}, left by an earlier run` });
}

/**
 * The last step, after every check has passed: --atomic renames the new version into
 * place (the host checks the temp file's size and that both names still mean the
 * files they meant, renames, then checks the target is the file written). Both modes
 * then drop our obsolete temp files.
 */
async function commit(o: SyncOptions, size: number): Promise<void> {
  const dst = o.target.host;
  if (o.atomic) o.emit({ type: 'commit', stage: 'renaming' });
  const { removed } = await dst.commit(size);
  if (o.atomic) o.emit({ type: 'commit', stage: 'renamed' });
  for (const r of removed) {
    o.emit({ type: 'log', level: 1, message: `removed ${dst.display(r.path)} (${r.size} bytes), a temp file an earlier --atomic run left` });
  }
}

/**
 * The source did not change during the copy; in place, the target has the final size
 * (--atomic: the host checks the temp file's size on commit, before renaming).
 */
async function checkFinalState(
  o: SyncOptions,
  g: Geometry,
  targetPath: string,
  targetEnd: number,
  srcMtime: number,
  srcName: string,
  dstName: string,
): Promise<void> {
  const [s, t] = await Promise.all([
    o.source.host.stat(o.source.path, 'source'),
    o.atomic ? undefined : o.target.host.stat(targetPath, 'target'),
  ]);
  if (s.size !== g.size || s.mtimeMs !== srcMtime) throw sourceChanged(srcName);
  if (t && t.size !== targetEnd) {
    throw new PdcError('VERIFY_FAILED', `${dstName} ended with ${t.size} bytes instead of ${targetEnd}`, {
      hint: 'something else is writing the target; stop it and rerun',
    });
  }
}

/** What moving runs cost: data bytes sent, zero runs written as zeros, zero runs left as holes. */
interface Moved {
  data: number;
  /** What the data took on the wire (-z: packed, fewer). */
  wire: number;
  zero: number;
  hole: number;
  zeroBlocks: number;
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

/** Buffers runs are joined in (at most the transfers in flight: about 64 MiB of runs). */
const joinPool = new BufferPool(TRANSFER_BUFFER_BYTES, 16, true);

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
