import { PdcError, sourceChanged, throwIfAborted, verifyFailed } from '../errors/pdc-error.js';
import { notRegular, sourceNotFound } from '../errors/errno.js';
import { DIGEST_METHOD, digestLength, unknownHashMethod } from '../hash/methods.js';
import type { FileHost } from '../hosts/file-host.js';
import type { OpenResult, StatResult } from '../protocol/messages.js';
import type { Emit, SyncSummary } from './events.js';
import { type Geometry, geometry, similarity, spaceNeeded, spanOf } from './plan.js';
import { Profiler, profileText } from './profile.js';
import { ensureSpace } from './space.js';
import { byteSimilarity } from './refine.js';
import { deviceTooSmall } from '../fileops/block-device.js';
import { BlockMover, type MoverTarget } from './block-mover.js';
import { baseName } from '../path-names.js';
import type { WrittenCheck } from './written-check.js';

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
  /** Read-backs in flight, and half the block runs in flight (hashing follows the hosts' parallelism). */
  concurrency: number;
  signal?: AbortSignal;
  emit: Emit;
}

/**
 * Make target byte-identical to source, moving only differing blocks (block-mover.ts):
 * open both sides, move the differences, then resize, fsync, judge the read-back of the
 * written blocks, check the source did not change, and commit.
 */
export async function syncFile(o: SyncOptions): Promise<SyncSummary> {
  const started = performance.now();
  const prof = new Profiler();
  o.emit({ type: 'phase', phase: 'syncing' });
  const opened = await openBoth(o);
  prof.lap('setup');
  const mover = await BlockMover.create(o, opened, prof);
  let verified: SyncSummary['verified'];
  try {
    await mover.moveAll();
    prof.lap('transfer');
    verified = o.dryRun ? 'none' : await finishTarget(o, { ...opened, check: mover.check, prof });
  } finally {
    mover.close();
  }
  const summary = summarize(o, opened, mover, verified, (performance.now() - started) / 1000, prof);
  o.emit({ type: 'log', level: 1, message: `${opened.dstName}: ${profileText(summary.profile!)}` });
  o.emit({ type: 'phase', phase: 'done' });
  o.emit({ type: 'done', summary });
  return summary;
}

/** Both sides opened, the target's room checked, and the run's geometry. */
interface Opened extends MoverTarget {
  targetPath: string;
  targetCreated: boolean;
  srcMtime: number;
}

/** Resolve and open source and target (checking the target has room), then announce the run. */
async function openBoth(o: SyncOptions): Promise<Opened> {
  const src = o.source.host;
  const dst = o.target.host;
  const { path: targetPath, stat: targetStat, srcStat } = await resolveTarget(o);
  const srcName = src.display(o.source.path);
  const dstName = dst.display(targetPath);
  checkHashMethod(o.hashMethod, src, dst);

  const srcOpen = await src.open({ path: o.source.path, role: 'source', ...deviceArg(srcStat, o) });
  const targetDevice = targetStat.kind === 'block';
  if (targetDevice && targetStat.size < srcOpen.size) throw deviceTooSmall(dstName, targetStat.size, srcOpen.size);
  const needed = spaceNeeded({ sourceSize: srcOpen.size, targetSize: targetStat.exists ? targetStat.size : 0, atomic: !!o.atomic, dryRun: o.dryRun });
  await ensureSpace(dst, targetPath, needed, o.emit);
  const { targetSize, targetCreated, targetOpen } = await openTarget(o, targetPath, targetStat, srcOpen.mode);

  const g = geometry(srcOpen.size, o.blockSize);
  const digestLen = await digestLength(o.hashMethod);
  o.emit({
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
  return { g, digestLen, targetSize, targetDevice, targetOpen, srcName, dstName, targetPath, targetCreated, srcMtime: srcOpen.mtimeMs };
}

/** The run's summary, as `done` reports it. */
function summarize(o: SyncOptions, f: Opened, mover: BlockMover, verified: SyncSummary['verified'], seconds: number, prof: Profiler): SyncSummary {
  const { g, targetDevice } = f;
  const { changed, moved, refiner } = mover;
  const bytesChanged = changed.reduce((sum, b) => sum + spanOf(g, b, 1).length, 0);
  const bytesDiffering = refiner ? refiner.stats.bytesDiffering : bytesChanged;
  return {
    source: f.srcName,
    target: f.dstName,
    dryRun: o.dryRun,
    wholeFile: o.wholeFile,
    hashMethod: o.wholeFile ? 'none' : o.hashMethod,
    blockSize: g.blockSize,
    bytesTotal: g.size,
    bytesSent: o.dryRun ? bytesDiffering : moved.wire,
    bytesData: o.dryRun ? bytesDiffering : moved.data,
    blocksTotal: g.blocks,
    blocksChanged: changed.length,
    similarity: similarity(changed.length, g.blocks),
    ...byteSimilarity(refiner?.stats, bytesChanged, g.size),
    seconds: Math.round(seconds * 1000) / 1000,
    throughput: seconds > 0 ? Math.round(g.size / seconds) : 0,
    verified,
    targetCreated: f.targetCreated,
    blocksZero: moved.zeroBlocks,
    bytesZero: moved.zero + moved.hole,
    bytesHoles: moved.hole,
    targetDevice,
    bytesBeyondSource: targetDevice ? Math.max(0, f.targetSize - g.size) : 0,
    profile: prof.rounded(),
  };
}

interface Finish extends Opened {
  /** Holds what the read-back of the written blocks found. */
  check: WrittenCheck;
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
      throw verifyFailed(`${f.dstName} does not match ${f.srcName} (sha256 ${b.toString('hex')} vs ${a.toString('hex')})`);
    }
    verified = 'sha256';
    f.prof.lap('digest');
  }
  await checkFinalState(o, g, f.targetPath, f.targetDevice ? f.targetSize : g.size, f.srcMtime, f.srcName, f.dstName);
  throwIfAborted(o.signal);
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
    throw sourceNotFound(srcName);
  }
  if (srcStat.kind !== 'file' && srcStat.kind !== 'block') {
    throw notRegular('source', srcName, kindText(srcStat), 'pdiffcopy copies one regular file or block device; name one as the source');
  }
  let targetPath = path;
  let stat = await host.stat(targetPath, 'target');
  if (stat.kind === 'dir' || (!stat.exists && /\/$/.test(path))) {
    targetPath = host.join(path, baseName(o.source.path));
    stat = await host.stat(targetPath, 'target');
  }
  if (stat.exists && stat.kind !== 'file' && stat.kind !== 'block') {
    throw notRegular('target', host.display(targetPath), kindText(stat), 'name a regular file, a block device (or a directory to copy into) as the target');
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

/** What a path that is neither a regular file nor a block device is, for notRegular(). */
function kindText(st: StatResult): string {
  return st.kind === 'dir' ? 'a directory' : 'not a regular file or block device';
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
  if (r.leftAloneMore) {
    emit({ type: 'log', level: 1, message: `left ${r.leftAloneMore} more files at temp names beside ${dst.display(r.temp)} alone: not temp files this user made either (check who created them)` });
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

