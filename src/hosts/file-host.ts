import type { Chunk } from '../fileops/buffer-pool.js';
import type { BlockRange } from '../hash/file-hash.js';
import type {
  CommitResult,
  ListArgs,
  ListResult,
  MkdirArgs,
  OpenArgs,
  OpenResult,
  ReadFilesArgs,
  ReadFilesResult,
  Role,
  SetMetaArgs,
  SpaceResult,
  StatResult,
  RemoveArgs,
  RemoveResult,
  SymlinkArgs,
  TreeChangeResult,
  WriteFilesArgs,
  WriteFilesResult,
} from '../protocol/messages.js';

/**
 * One side of a copy: a machine on which one file is stat'ed, opened, hashed, read
 * or written. The engine sees only this interface, so a local file (the CLI's own
 * process plus hash worker threads) and a file behind agents (a local child
 * process, or remote agents over SSH) are the same to it.
 */
export interface FileHost {
  /** "local" or "user@host": prefixes messages about remote files. */
  readonly name: string;
  /** Identifies the machine: two hosts with the same id share a filesystem namespace. */
  readonly machineId: string;
  /** Hash methods this host can compute. */
  readonly hashMethods: ReadonlySet<string>;
  /** How many hash requests it pays to keep in flight here. */
  readonly parallelism: number;
  /** How the user would name `path` on this host, e.g. "db1:/var/lib/mysql/x.ibd". */
  display(path: string): string;
  /** `name` inside directory `dir`, in this host's path syntax (for "copy into it"). */
  join(dir: string, name: string): string;

  /** Errors about `path` are those of `role` (SOURCE_* or TARGET_*). */
  stat(path: string, role: Role): Promise<StatResult>;
  /** Free space where a target is, or will be created (null where the host cannot tell). */
  space(path: string): Promise<SpaceResult>;
  open(args: OpenArgs): Promise<OpenResult>;
  hash(range: BlockRange, method: string): Promise<Buffer>;
  /**
   * The run now streams (sends chunks whole without comparing them), so hashes computed
   * before the engine asks would go unused: a host that hashes ahead stops (what it has
   * hashed stays available). Hosts that never hash ahead leave it out.
   */
  streaming?(): void;
  /**
   * The bytes at offset (fewer only at end of file); release the chunk after use.
   * With zeroUnit, all-zero units come back as the chunk's zero runs, not as bytes; with
   * `hashMethod` too, the chunk carries each unit's digest, taken from the bytes as read on
   * this host (only where readDigestsFit: the agents refuse more).
   */
  read(offset: number, length: number, zeroUnit?: number, hashMethod?: string): Promise<Chunk>;
  /** Resolves with the bytes that crossed a transport to write them (-z: packed, fewer), or nothing when written on this host. */
  write(offset: number, buffers: readonly Buffer[]): Promise<number | void>;
  /**
   * Refinement inside differing blocks; `ranges` is a flat [offset, length, ...] list.
   * hashPieces: one digest per piece of `grain` bytes cut from each range's start.
   * Requests with the same `affinity` (one run's rounds) go to the same process where the
   * host has several: the bytes it read for the first round are kept there for the next.
   */
  hashPieces(ranges: readonly number[], grain: number, method: string, affinity?: number): Promise<Buffer>;
  /** The pieces' bytes concatenated in order (release the chunk after use). */
  readPieces(ranges: readonly number[], affinity?: number): Promise<Chunk>;
  /** Write the pieces from their bytes concatenated in order. */
  writePieces(ranges: readonly number[], buffers: readonly Buffer[]): Promise<void>;
  /** Write `length` zero bytes at offset; with punch, make them a hole where the host can (true when it did). */
  zero(offset: number, length: number, punch?: boolean): Promise<boolean>;
  truncate(size: number): Promise<void>;
  fsync(): Promise<void>;
  digest(method: string, limit: number): Promise<Buffer>;
  /**
   * The run succeeded (every check passed): --atomic renames the finished temp file over
   * the target; both modes remove our obsolete temp files. `size`: the size the target must have.
   */
  commit(size: number): Promise<CommitResult>;
  /** Trees: one page of a directory's entries (lstat'ed, sorted by name). */
  list(args: ListArgs): Promise<ListResult>;
  /** Trees, target only: each refuses a path outside `root` or below a symlinked directory. */
  mkdir(args: MkdirArgs): Promise<TreeChangeResult>;
  symlink(args: SymlinkArgs): Promise<TreeChangeResult>;
  setmeta(args: SetMetaArgs): Promise<void>;
  /** --delete: an entry of the tree, a directory with its contents; links are removed, never followed. */
  remove(args: RemoveArgs): Promise<RemoveResult>;
  /** Trees, source: small files read whole, many per request (see ReadFilesArgs); `data[i]` holds file i's bytes. */
  readFiles(args: ReadFilesArgs): Promise<{ files: ReadFilesResult['files']; data: Buffer[] }>;
  /** Trees, target: small files written whole, many per request (see WriteFilesArgs); `data[i]` holds file i's bytes. */
  writeFiles(args: WriteFilesArgs, data: readonly Buffer[]): Promise<WriteFilesResult>;
  /** Close the file and end every process or thread this host started. Idempotent. */
  close(): Promise<void>;
}
