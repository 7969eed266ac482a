import { cpus } from 'node:os';
import { join } from 'node:path';
import type { Chunk } from '../fileops/buffer-pool.js';
import { FileService } from '../fileops/file-service.js';
import type { BlockRange } from '../hash/file-hash.js';
import { DIGEST_METHOD, localHashMethods } from '../hash/methods.js';
import type { CommitResult, ListArgs, ListResult, MkdirArgs, OpenArgs, OpenResult, Role, SetMetaArgs, SpaceResult, StatResult, SymlinkArgs, TreeChangeResult, RemoveArgs, RemoveResult } from '../protocol/messages.js';
import type { ReadFilesArgs, ReadFilesResult, WriteFilesArgs, WriteFilesResult } from '../protocol/messages.js';
import { readSmallFiles, writeSmallFiles } from '../fileops/small-files.js';
import { listDir, makeDir, makeSymlink, removeEntry, setMeta } from '../fileops/tree.js';
import type { FileHost } from './file-host.js';
import { HashAhead, type Identity } from './hash-ahead.js';
import { HashPool } from './hash-pool.js';

/**
 * The CLI's own machine: file I/O in this process (positional reads and writes
 * into reused buffers), hashing in worker threads so it runs beside the transfer.
 */
export class LocalHost implements FileHost {
  readonly name = 'local';
  readonly machineId = 'local';
  readonly hashMethods: ReadonlySet<string> = new Set(localHashMethods());
  readonly parallelism: number;
  private readonly files = new FileService();
  private readonly pool: HashPool;
  private role: Role = 'source';
  private ahead?: HashAhead;
  private opened?: Identity;

  constructor(workers = Math.max(1, Math.min(4, cpus().length))) {
    this.parallelism = workers;
    this.pool = new HashPool(workers);
    this.pool.warm();
  }

  display(path: string): string {
    return path;
  }

  join(dir: string, name: string): string {
    return join(dir, name);
  }

  stat(path: string, role: Role): Promise<StatResult> {
    return this.files.stat(path, role);
  }

  space(path: string): Promise<SpaceResult> {
    return this.files.space(path);
  }

  async open(args: OpenArgs): Promise<OpenResult> {
    const r = await this.files.open(args);
    this.role = args.role;
    this.opened = r;
    return r;
  }

  /**
   * Start hashing `path` now, before it is opened (while the other side is still
   * connecting): the hash requests of the engine for that same file are then answered
   * from what was hashed (see HashAhead for when an answer is never used). Settles
   * once everything was hashed ahead, or it stopped.
   */
  hashAhead(path: string, role: Role, blockSize: number, method: string): Promise<void> {
    this.ahead?.stop();
    this.ahead = new HashAhead(this.pool, this.parallelism);
    return this.ahead.start(path, role, blockSize, method); // never rejects
  }

  /** Hash requests answered from what was hashed ahead. */
  get hashedAhead(): number {
    return this.ahead?.used ?? 0;
  }

  /** Reads whose digests were those hashed ahead. */
  digestedAhead = 0;

  /** Chunks hashed ahead (used or not). */
  get chunksHashedAhead(): number {
    return this.ahead?.hashed ?? 0;
  }

  streaming(): void {
    this.ahead?.halt();
  }

  async hash(range: BlockRange, method: string): Promise<Buffer> {
    const early = this.opened && this.ahead?.take(range, method, this.opened);
    return early ?? this.pool.run({ kind: 'hash', file: this.files.workerFile(), role: this.role, range, method });
  }

  /** With `hashMethod`, the digests are those hashed ahead where every block was (the file is hashed once), else taken from the bytes read. */
  async read(offset: number, length: number, zeroUnit?: number, hashMethod?: string): Promise<Chunk> {
    const known = hashMethod && zeroUnit && this.opened ? this.ahead?.digestsOf(offset, length, zeroUnit, hashMethod, this.opened) : undefined;
    if (!known) return this.files.read(offset, length, zeroUnit, hashMethod);
    this.digestedAhead++;
    return { ...(await this.files.read(offset, length, zeroUnit)), digests: known };
  }

  /** One process holds the file here: every affinity is the same. */
  hashPieces(ranges: readonly number[], grain: number, method: string, _affinity?: number): Promise<Buffer> {
    return this.files.hashPieces(ranges, grain, method);
  }

  readPieces(ranges: readonly number[], _affinity?: number): Promise<Chunk> {
    return this.files.readPieces(ranges);
  }

  writePieces(ranges: readonly number[], buffers: readonly Buffer[]): Promise<void> {
    for (let i = 0; i < ranges.length; i += 2) this.ahead?.written(ranges[i]!, ranges[i + 1]!);
    return this.files.writePieces(ranges, buffers);
  }

  zero(offset: number, length: number, punch?: boolean): Promise<boolean> {
    this.ahead?.written(offset, length);
    return this.files.zero(offset, length, punch);
  }

  write(offset: number, buffers: readonly Buffer[]): Promise<void> {
    this.ahead?.written(offset, buffers.reduce((n, b) => n + b.length, 0));
    return this.files.write(offset, buffers);
  }

  truncate(size: number): Promise<void> {
    this.ahead?.stop();
    return this.files.truncate(size);
  }

  fsync(): Promise<void> {
    return this.files.fsync();
  }

  async digest(method: string = DIGEST_METHOD, limit: number): Promise<Buffer> {
    return this.pool.run({ kind: 'digest', file: this.files.workerFile(), role: this.role, method, limit });
  }

  commit(size: number): Promise<CommitResult> {
    return this.files.commit(size);
  }

  list(args: ListArgs): Promise<ListResult> {
    return listDir(args);
  }

  mkdir(args: MkdirArgs): Promise<TreeChangeResult> {
    return makeDir(args);
  }

  symlink(args: SymlinkArgs): Promise<TreeChangeResult> {
    return makeSymlink(args);
  }

  setmeta(args: SetMetaArgs): Promise<void> {
    return setMeta(args);
  }

  remove(args: RemoveArgs): Promise<RemoveResult> {
    return removeEntry(args);
  }

  async readFiles(args: ReadFilesArgs): Promise<{ files: ReadFilesResult['files']; data: Buffer[] }> {
    const { result, buffers } = await readSmallFiles(args);
    let k = 0;
    return { files: result.files, data: result.files.map((f, i) => (f.error || args.files[i]!.size === 0 ? Buffer.alloc(0) : buffers[k++]!)) };
  }

  writeFiles(args: WriteFilesArgs, data: readonly Buffer[]): Promise<WriteFilesResult> {
    return writeSmallFiles(args, data);
  }

  async close(): Promise<void> {
    this.ahead?.stop();
    await Promise.all([this.files.close(), this.pool.close()]);
  }
}
