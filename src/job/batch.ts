/**
 * Small files travel in batches: the source reads many whole files in one request,
 * the CLI hashes each, and the target writes, fsyncs, verifies and sets the
 * metadata of all of them in one request. A file that fits one block has nothing to
 * compare block by block: sending it whole costs at most that block, and saves the
 * dozen round trips the one-file path pays. Several batches are in flight at once
 * (reading the next while the last is written), each on whichever agent is free.
 */
import type { SyncSummary } from '../engine/events.js';
import { geometry, similarity } from '../engine/plan.js';
import { PdcError, type WireError, throwIfAborted } from '../errors/pdc-error.js';
import { PERMISSION_BITS } from '../fileops/mode.js';
import { createBlockHasher } from '../hash/methods.js';
import type { FileHost } from '../hosts/file-host.js';
import type { DirEntry, FileMeta, WriteFilesArgs } from '../protocol/messages.js';
import { MAX_BATCH_BYTES, MAX_BATCH_FILES } from '../protocol/ops.js';

/** The bytes one batch gathers before it is sent: far below what one request may carry, so several stay in flight cheaply. */
export const BATCH_BYTES = Math.min(MAX_BATCH_BYTES, 8 << 20);

export interface BatchOptions {
  blockSize: number;
  hashMethod: string;
  dryRun: boolean;
  atomic: boolean;
  verify: boolean;
}

/**
 * Whether a file is sent in a batch: small enough (one block, and a batch's share),
 * and nothing asked for that only the one-file path does (a dry run's comparison,
 * --atomic's temp file, --verify's sha256 digests).
 */
export function sentInBatch(size: number, o: BatchOptions): boolean {
  return !o.dryRun && !o.atomic && !o.verify && size <= Math.min(o.blockSize, BATCH_BYTES);
}

export interface BatchedFile {
  source: string;
  target: string;
  entry: DirEntry;
}

export interface BatchSink {
  /** The metadata the target gets from this source entry (mtime as the source was read). */
  metaOf(entry: DirEntry): FileMeta | undefined;
  /** A file synced and verified. */
  synced(summary: SyncSummary): void;
  /** A file that failed alone (throws when the failure must end the job). */
  failed(file: BatchedFile, error: PdcError): void;
  /** A line for -v. */
  note(message: string): void;
}

export class SmallFileBatches {
  private pending: BatchedFile[] = [];
  private bytes = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private error: unknown;

  constructor(
    private readonly src: FileHost,
    private readonly dst: FileHost,
    private readonly root: string,
    private readonly o: BatchOptions & { concurrency: number },
    private readonly sink: BatchSink,
    private readonly signal?: AbortSignal,
  ) {}

  /** Queue a file; a full batch is sent (waiting only while too many are in flight). */
  async add(file: BatchedFile): Promise<void> {
    this.rethrow();
    if (this.pending.length >= MAX_BATCH_FILES || this.bytes + file.entry.size > BATCH_BYTES) await this.send();
    this.pending.push(file);
    this.bytes += file.entry.size;
  }

  /** Send what is queued and wait for every batch in flight. */
  async flush(): Promise<void> {
    await this.send();
    await Promise.all(this.inFlight);
    this.rethrow();
  }

  /** Send what is queued now (before a big file, so that small files listed before it are not held back behind it). */
  async send(): Promise<void> {
    const files = this.pending;
    this.pending = [];
    this.bytes = 0;
    if (files.length === 0) return;
    // Memory stays bounded: at most this many batches' bytes in flight.
    while (this.inFlight.size >= Math.max(2, this.o.concurrency)) await Promise.race(this.inFlight);
    this.rethrow();
    const p = this.run(files).catch((e: unknown) => {
      this.error ??= e;
    });
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private rethrow(): void {
    if (this.error !== undefined) throw this.error;
    throwIfAborted(this.signal);
  }

  /** A batch whose request failed as a whole: each of its files failed (a failure that ends the job is thrown). */
  private async run(files: BatchedFile[]): Promise<void> {
    try {
      await this.runNow(files);
    } catch (e) {
      if (!(e instanceof PdcError) || this.signal?.aborted) throw e;
      for (const f of files) this.sink.failed(f, e);
    }
  }

  /** One batch: read on the source, hash here, write on the target, then each file's outcome. */
  private async runNow(files: BatchedFile[]): Promise<void> {
    const started = performance.now();
    const read = await this.src.readFiles({ files: files.map((f) => ({ path: f.source, size: f.entry.size })) });
    const hasher = await createBlockHasher(this.o.hashMethod);
    const sending: Array<{ file: BatchedFile; data: Buffer }> = [];
    const args: WriteFilesArgs = { root: this.root, method: this.o.hashMethod, files: [] };
    read.files.forEach((r, i) => {
      const file = files[i]!;
      if (r.error) return this.sink.failed(file, fromHost(this.src, r.error));
      const data = read.data[i]!;
      const meta = this.sink.metaOf({ ...file.entry, mtimeMs: r.mtimeMs });
      args.files.push({ path: file.target, size: data.length, hash: hasher(data), mode: file.entry.mode & PERMISSION_BITS, ...(meta ? { meta } : {}) });
      sending.push({ file, data });
    });
    if (sending.length === 0) return;
    throwIfAborted(this.signal);
    const written = await this.dst.writeFiles(args, sending.map((s) => s.data));
    const seconds = (performance.now() - started) / 1000;
    written.files.forEach((w, i) => {
      const { file, data } = sending[i]!;
      if (w.error) return this.sink.failed(file, fromHost(this.dst, w.error));
      for (const r of w.removed ?? []) {
        this.sink.note(`removed ${this.dst.display(r.path)} (${r.size} bytes), a temp file an earlier --atomic run left`);
      }
      this.sink.synced(this.summaryOf(file, data.length, w.created, seconds));
    });
  }

  private summaryOf(file: BatchedFile, size: number, created: boolean, seconds: number): SyncSummary {
    const g = geometry(size, this.o.blockSize);
    return {
      source: this.src.display(file.source),
      target: this.dst.display(file.target),
      dryRun: false,
      wholeFile: true,
      hashMethod: this.o.hashMethod,
      blockSize: g.blockSize,
      bytesTotal: size,
      bytesSent: size,
      bytesData: size,
      blocksTotal: g.blocks,
      blocksChanged: g.blocks,
      similarity: similarity(g.blocks, g.blocks),
      bytesDiffering: size,
      similarityBytes: 0,
      bytesRefineHashes: 0,
      seconds: Math.round(seconds * 1000) / 1000,
      throughput: seconds > 0 ? Math.round(size / seconds) : 0,
      verified: 'blocks',
      targetCreated: created,
      blocksZero: 0,
      bytesZero: 0,
      bytesHoles: 0,
      targetDevice: false,
      bytesBeyondSource: 0,
    };
  }
}

/** One file's error as its host reported it: a remote host's named first, as AgentHost names its errors. */
function fromHost(host: FileHost, e: WireError): PdcError {
  return PdcError.fromWire(e, host.display('') === '' ? undefined : host.name);
}
