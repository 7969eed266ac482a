/**
 * A job: every SOURCE into one TARGET, over one set of hosts opened once. Each
 * regular file goes through the engine (syncFile) on those same hosts, one after
 * another; directories and symlinks are made on the target, metadata set after.
 * A failure of one file is reported and the job goes on; only failures that stop
 * every file (connection, interruption, a bug) end it.
 */
import type { SyncSummary } from '../engine/events.js';
import { syncFile } from '../engine/sync.js';
import { ERROR_CATEGORY } from '../errors/codes.js';
import { PdcError, throwIfAborted } from '../errors/pdc-error.js';
import { PERMISSION_BITS } from '../fileops/mode.js';
import { notRegular, sourceNotFound } from '../errors/errno.js';
import type { FileHost } from '../hosts/file-host.js';
import type { DirEntry, FileMeta, Role } from '../protocol/messages.js';
import { SmallFileBatches, sentInBatch } from './batch.js';
import { MAX_LIST_ENTRIES } from '../protocol/ops.js';
import type { FileFailure, JobEmit, JobTotals } from './events.js';
import { type EntryPlan, baseName, dirName, landing, namesContents, planEntry, toDelete } from './plan.js';

/** Which metadata targets get from their source (rsync's -p, -t, -o, -g). */
export interface MetaOptions {
  perms: boolean;
  times: boolean;
  owner: boolean;
  group: boolean;
}

export interface JobOptions {
  blockSize: number;
  hashMethod: string;
  wholeFile: boolean;
  dryRun: boolean;
  verify: boolean;
  atomic: boolean;
  /** Read or write a block device even when it is in use. */
  forceDevice: boolean;
  /** Punch zero runs inside an existing target as holes. */
  sparse: boolean;
  concurrency: number;
  recursive: boolean;
  meta: MetaOptions;
  /** Never skip a file because its size and mtime match. */
  checksum: boolean;
  /** Piece sizes to refine differing blocks at (empty: --no-refine). */
  refineLevels: number[];
  /** Remove target entries of a synced directory that the source does not have. */
  delete?: boolean;
}

export interface Job {
  /** Paths on the source host, as the user gave them (a trailing `/` matters with -r). */
  sources: string[];
  /** A path on the target host. */
  target: string;
  options: JobOptions;
}

export interface JobHosts {
  source: FileHost;
  target: FileHost;
}

export interface JobResult {
  /** A single-file job: the engine's summary of its one file. */
  single?: SyncSummary;
  totals: JobTotals;
}

/** Errors after which no other file can succeed either: they end the job instead of one file. */
const FATAL = new Set<string>(['connection', 'hostkey', 'interrupted', 'terminated', 'internal', 'usage']);

/**
 * Run a job. One SOURCE that is a file (or any SOURCE without -r, alone) is a
 * single-file job: its error ends the run. Otherwise TARGET is a
 * directory and every entry is tried, its failure reported as a `file-failed` event.
 */
export async function runJob(job: Job, hosts: JobHosts, emit: JobEmit, signal?: AbortSignal): Promise<JobResult> {
  const runner = new JobRunner(job, hosts, emit, signal);
  const top = job.sources.length === 1 && job.options.recursive ? await runner.entryOf(hosts.source, job.sources[0]!, 'source') : undefined;
  if (job.sources.length === 1 && top?.kind !== 'dir' && top?.kind !== 'symlink') return runner.single();
  return runner.many();
}

class JobRunner {
  private readonly started = performance.now();
  private readonly totals: JobTotals = {
    files: 0,
    filesSynced: 0,
    filesUpToDate: 0,
    filesFailed: 0,
    dirsCreated: 0,
    symlinksCreated: 0,
    skipped: 0,
    deleted: 0,
    bytesTotal: 0,
    bytesSent: 0,
    bytesData: 0,
    seconds: 0,
  };
  private readonly src: FileHost;
  private readonly dst: FileHost;
  private readonly o: JobOptions;
  /** Several files or a tree: small files go through batches (see batch.ts). */
  private batches: SmallFileBatches | undefined;

  constructor(
    private readonly job: Job,
    hosts: JobHosts,
    private readonly emit: JobEmit,
    private readonly signal?: AbortSignal,
  ) {
    this.src = hosts.source;
    this.dst = hosts.target;
    this.o = job.options;
  }

  /** One file, its errors the run's: the target is resolved as cp does (into a directory). */
  async single(): Promise<JobResult> {
    const source = this.job.sources[0]!;
    const t = await this.dst.stat(this.job.target, 'target');
    const into = t.kind === 'dir' || (!t.exists && this.job.target.endsWith('/'));
    const target = into ? this.dst.join(this.job.target, baseName(source)) : this.job.target;
    this.totals.files = 1;
    const summary = await this.syncOne(source, target);
    if (!this.o.dryRun && this.wantsMeta()) {
      const entry = await this.entryOf(this.src, source, 'source');
      if (entry) await this.setMeta(dirName(target), target, entry);
    }
    return { single: summary, totals: this.finishTotals() };
  }

  /** Several sources, or a tree: TARGET is a directory (made for one directory source). */
  async many(): Promise<JobResult> {
    const targetDir = this.job.target.replace(/(.)\/+$/, '$1');
    await this.ensureTargetDir(targetDir);
    this.batches = this.newBatches(targetDir);
    this.emit({ type: 'phase', phase: 'syncing' });
    for (const source of this.job.sources) {
      this.abort();
      await this.attempt(source, this.dst.display(targetDir), () => this.copyTop(source, targetDir));
    }
    await this.batches.flush();
    const totals = this.finishTotals();
    this.emit({ type: 'job-done', totals });
    return { totals };
  }

  /** Each top-level source: a file, a tree (-r), a link (-r: recreated; else its file), or skipped. */
  private async copyTop(source: string, targetDir: string): Promise<void> {
    const entry = await this.entryOf(this.src, source, 'source');
    if (!entry) throw sourceNotFound(this.src.display(source));
    const isDir = entry.kind === 'dir';
    const target = landing(source, isDir, targetDir, (d, n) => this.dst.join(d, n));
    if (isDir && !this.o.recursive) {
      throw notRegular('source', this.src.display(source), 'a directory', 'pass -r to copy directories');
    }
    if (isDir) return this.copyTree(source, target, targetDir, entry);
    this.found([entry]);
    const existing = await this.entryOf(this.dst, target, 'target');
    const named = { ...entry, name: baseName(target) };
    if (entry.kind === 'symlink' && !this.o.recursive) return this.apply({ do: 'sync', exists: !!existing }, named, source, target, targetDir);
    return this.apply(planEntry(named, existing, this.entryOptions()), named, source, target, targetDir);
  }

  /**
   * A directory and everything below it, depth first: each directory's entries are
   * listed on both sides (page by page) and planned; the directories' own metadata
   * is set last, deepest first, so adding their contents does not change it again.
   */
  private async copyTree(source: string, target: string, root: string, top: DirEntry): Promise<void> {
    const made: Array<{ path: string; entry: DirEntry }> = [];
    const topExists = await this.makeDir(target, root, top, await this.entryOf(this.dst, target, 'target'));
    made.push({ path: target, entry: top });
    if (topExists) await this.noteTargetDir(target);
    const stack = [{ src: source, dst: target, exists: topExists }];
    while (stack.length > 0) {
      this.abort();
      const dir = stack.pop()!;
      if (await this.isTargetDir(dir.src)) {
        this.emit({ type: 'item', action: 'skipped', path: this.src.display(dir.src), reason: 'it is the target tree itself' });
        continue;
      }
      const theirs = dir.exists ? new Map((await this.listAll(this.dst, dir.dst, 'target')).map((e) => [e.name, e])) : new Map<string, DirEntry>();
      const below: typeof stack = [];
      const ours = await this.listAll(this.src, dir.src, 'source');
      this.found(ours);
      if (this.o.delete) await this.deleteExtra(dir.dst, root, ours, [...theirs.values()]);
      for (const entry of ours) {
        const sp = this.src.join(dir.src, entry.name);
        const tp = this.dst.join(dir.dst, entry.name);
        const plan = planEntry(entry, theirs.get(entry.name), this.entryOptions());
        await this.attempt(this.src.display(sp), this.dst.display(tp), async () => {
          if (plan.do === 'dir') {
            const exists = await this.makeDir(tp, root, entry, theirs.get(entry.name));
            if (exists) await this.noteTargetDir(tp);
            below.push({ src: sp, dst: tp, exists });
            made.push({ path: tp, entry });
          } else await this.apply(plan, entry, sp, tp, root);
        });
      }
      stack.push(...below.reverse());
    }
    // The directories' metadata comes after every file in them, batched ones included.
    await this.batches?.flush();
    if (this.o.dryRun || !this.wantsMeta()) return;
    for (const d of made.reverse()) await this.attempt(this.src.display(d.path), this.dst.display(d.path), () => this.setMeta(root, d.path, d.entry));
  }

  /**
   * Source and target on one machine: the target's directories by dev/ino, so that a
   * target inside the source is never walked as source (it would grow as it is copied).
   */
  private readonly targetDirs = new Set<string>();

  private async noteTargetDir(path: string): Promise<void> {
    if (this.src.machineId !== this.dst.machineId) return;
    const st = await this.dst.stat(path, 'target');
    if (st.kind === 'dir') this.targetDirs.add(`${st.dev}:${st.ino}`);
  }

  private async isTargetDir(path: string): Promise<boolean> {
    if (this.targetDirs.size === 0) return false;
    const st = await this.src.stat(path, 'source');
    return this.targetDirs.has(`${st.dev}:${st.ino}`);
  }

  /** --delete: what this synced directory holds on the target and not in the source (before anything new is written). */
  private async deleteExtra(dir: string, root: string, ours: DirEntry[], theirs: DirEntry[]): Promise<void> {
    for (const extra of toDelete(new Set(ours.map((e) => e.name)), theirs)) {
      const path = this.dst.join(dir, extra.name);
      const shown = `${this.dst.display(path)}${extra.kind === 'dir' ? '/' : ''}`;
      await this.attempt(shown, shown, async () => {
        if (!this.o.dryRun) await this.dst.remove({ root, path });
        this.totals.deleted++;
        this.emit({ type: 'item', action: this.o.dryRun ? 'would-delete' : 'deleted', path: shown });
      });
    }
  }

  /** Carry out one entry's plan (not directories: copyTree walks those). */
  private async apply(plan: EntryPlan, entry: DirEntry, source: string, target: string, root: string): Promise<void> {
    const shown = this.dst.display(target);
    if (entry.kind === 'file' || plan.do === 'sync') this.totals.files++;
    switch (plan.do) {
      case 'fail':
        throw new PdcError(plan.code, `target ${shown}: ${plan.reason}`, { hint: 'remove or rename it on the target, then rerun' });
      case 'skip':
        this.totals.skipped++;
        this.emit({ type: 'item', action: 'skipped', path: this.src.display(source), reason: plan.reason });
        return;
      case 'uptodate':
        if (entry.kind === 'file') this.totals.filesUpToDate++;
        this.emit({ type: 'item', action: 'uptodate', path: shown, ...(entry.kind === 'file' ? { size: entry.size } : {}) });
        return;
      case 'symlink':
        if (!this.o.dryRun) await this.dst.symlink({ root, path: target, linkTarget: entry.linkTarget! });
        this.totals.symlinksCreated++;
        this.emit({ type: 'item', action: 'symlink', path: shown, reason: `-> ${entry.linkTarget}` });
        return;
      case 'sync':
        if (this.o.dryRun) {
          // A dry run lists every file; one that exists is also compared (its report follows).
          this.emit({ type: 'item', action: plan.exists ? 'would-update' : 'would-create', path: shown });
          if (!plan.exists) return;
        }
        if (this.batches && entry.kind === 'file' && sentInBatch(entry.size, this.o) && this.dst.hashMethods.has(this.o.hashMethod)) {
          return this.batches.add({ source, target, entry });
        }
        await this.batches?.send();
        await this.syncOne(source, target);
        if (!this.o.dryRun && this.wantsMeta()) await this.setMeta(root, target, entry);
        return;
      case 'dir':
        throw new PdcError('INTERNAL', `${shown}: a directory reached apply()`);
    }
  }

  /** One file through the engine, on the job's hosts. */
  private async syncOne(source: string, target: string): Promise<SyncSummary> {
    const o = this.o;
    const summary = await syncFile({
      source: { host: this.src, path: source },
      target: { host: this.dst, path: target },
      blockSize: o.blockSize,
      hashMethod: o.hashMethod,
      wholeFile: o.wholeFile,
      dryRun: o.dryRun,
      verify: o.verify,
      atomic: o.atomic,
      forceDevice: o.forceDevice,
      sparse: o.sparse,
      refineLevels: o.refineLevels,
      concurrency: o.concurrency,
      signal: this.signal,
      emit: this.emit,
    });
    this.countSynced(summary);
    return summary;
  }

  private countSynced(summary: SyncSummary): void {
    this.totals.filesSynced++;
    this.totals.bytesTotal += summary.bytesTotal;
    this.totals.bytesSent += summary.bytesSent;
    this.totals.bytesData += summary.bytesData;
  }

  /** The batches of a job into `root`: each file's outcome is told as the engine tells one file's. */
  private newBatches(root: string): SmallFileBatches {
    return new SmallFileBatches(
      this.src,
      this.dst,
      root,
      this.o,
      {
        metaOf: (e) => (this.wantsMeta() ? this.metaOf(e) : undefined),
        synced: (summary) => {
          this.countSynced(summary);
          // No 'start': a batch's file ends as it is told, and a big file may be under way meanwhile.
          this.emit({ type: 'done', summary });
        },
        failed: (file, e) => this.recordFailure(this.src.display(file.source), this.dst.display(file.target), e),
        note: (message) => this.emit({ type: 'log', level: 1, message }),
      },
      this.signal,
    );
  }

  /** Tell the renderers of the regular files among these entries (the progress bar's files and bytes to do). */
  private found(entries: readonly DirEntry[]): void {
    const files = entries.filter((e) => e.kind === 'file');
    if (files.length > 0) this.emit({ type: 'found', files: files.length, bytes: files.reduce((sum, e) => sum + e.size, 0) });
  }

  /** Make a directory of the tree unless it is there; says whether it exists now (a dry run makes nothing). */
  private async makeDir(path: string, root: string, entry: DirEntry, existing: DirEntry | undefined): Promise<boolean> {
    if (existing) {
      if (existing.kind !== 'dir') throw notRegular('target', this.dst.display(path), 'not a directory; left alone', 'remove or rename it on the target, then rerun');
      return true;
    }
    this.totals.dirsCreated++;
    this.emit({ type: 'item', action: this.o.dryRun ? 'would-create' : 'mkdir', path: `${this.dst.display(path)}/` });
    if (this.o.dryRun) return false;
    // Writable for us while its contents are made; --perms sets its own mode afterwards.
    await this.dst.mkdir({ root, path, mode: (entry.mode | 0o700) & PERMISSION_BITS });
    return true;
  }

  /** Several sources need an existing directory; one directory source may create it. */
  private async ensureTargetDir(targetDir: string): Promise<void> {
    const t = await this.dst.stat(targetDir, 'target');
    if (t.kind === 'dir') return;
    if (this.job.sources.length > 1 || t.exists) throw needsDirectoryTarget(this.dst.display(this.job.target), this.job.sources.length);
    this.totals.dirsCreated++;
    this.emit({ type: 'item', action: this.o.dryRun ? 'would-create' : 'mkdir', path: `${this.dst.display(targetDir)}/` });
    if (!this.o.dryRun) await this.dst.mkdir({ root: dirName(targetDir), path: targetDir });
  }

  private async setMeta(root: string, path: string, e: DirEntry): Promise<void> {
    if (e.kind === 'symlink') return; // a link's own metadata is not carried over
    await this.dst.setmeta({ root, path, ...this.metaOf(e) });
  }

  /** What -p, -o, -g and -t carry over from a source entry. */
  private metaOf(e: DirEntry): FileMeta {
    const m = this.o.meta;
    const meta: FileMeta = {};
    if (m.perms) meta.mode = e.mode;
    if (m.owner) meta.uid = e.uid;
    if (m.group) meta.gid = e.gid;
    if (m.times) meta.mtimeMs = e.mtimeMs;
    return meta;
  }

  private wantsMeta(): boolean {
    const m = this.o.meta;
    return m.perms || m.times || m.owner || m.group;
  }

  private entryOptions() {
    return { quickCheck: this.o.meta.times && !this.o.checksum };
  }

  /** Every entry of a directory, page by page. */
  private async listAll(host: FileHost, path: string, role: Role): Promise<DirEntry[]> {
    const all: DirEntry[] = [];
    for (let after: string | undefined; ; ) {
      const page = await host.list({ path, role, max: MAX_LIST_ENTRIES, ...(after === undefined ? {} : { after }) });
      all.push(...page.entries);
      if (!page.more || page.entries.length === 0) return all;
      after = page.entries[page.entries.length - 1]!.name;
    }
  }

  /**
   * What is at `path` (lstat), or undefined. A path naming a directory's contents
   * (`dir/`) is looked at through the link when `dir` is one, as rsync and the kernel do.
   */
  async entryOf(host: FileHost, path: string, role: Role): Promise<DirEntry | undefined> {
    if (namesContents(path)) {
      const page = await host.list({ path: path.replace(/\/\.?$/, '') || '/', role, name: '.', max: 1 });
      return page.entries[0];
    }
    const name = baseName(path);
    if (name === '' || name === '..') {
      const st = await host.stat(path, role);
      if (!st.exists) return undefined;
      // A device at the top of a tree is a special file there (a single device SOURCE is synced by single()).
      const kind = st.kind === 'missing' || st.kind === 'block' ? 'other' : st.kind;
      return { name, kind, size: st.size, mtimeMs: st.mtimeMs, mode: st.mode, uid: 0, gid: 0 };
    }
    const page = await host.list({ path: dirName(path), role, name, max: 1 });
    return page.entries[0];
  }

  /** Run one entry's work; a failure of that entry alone is reported, and the job goes on. */
  private async attempt(source: string, target: string, work: () => Promise<void>): Promise<void> {
    try {
      await work();
    } catch (e) {
      this.recordFailure(source, target, e);
    }
  }

  /** One entry's failure is reported and the job goes on; one that stops every file is thrown on. */
  private recordFailure(source: string, target: string, e: unknown): void {
    if (!(e instanceof PdcError) || FATAL.has(ERROR_CATEGORY[e.code]) || this.signal?.aborted) throw e;
    this.totals.filesFailed++;
    const failure: FileFailure = { source, target, error: e.toWire() };
    this.emit({ type: 'file-failed', ...failure });
  }

  private abort(): void {
    throwIfAborted(this.signal);
  }

  private finishTotals(): JobTotals {
    this.totals.seconds = Math.round(performance.now() - this.started) / 1000;
    return { ...this.totals };
  }
}

/** Several sources (or a directory) need a directory to land in. */
export function needsDirectoryTarget(target: string, sources: number): PdcError {
  const why = sources > 1 ? `and there are ${sources} sources` : 'and the source is a directory';
  return new PdcError('USAGE', `TARGET ${target} is not an existing directory, ${why}`, {
    hint: 'name an existing directory as the last argument (create it first), or copy one file per run',
  });
}
