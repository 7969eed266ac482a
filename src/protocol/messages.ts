/**
 * The one message schema, imported by both the CLI and the agent.
 *
 * Envelope: a request {t:'q', id, op, a} gets exactly one response
 * {t:'r', id, r} (result) or {t:'r', id, e} (error as {code, message, hint}).
 * Bulk bytes (block data, hash lists) travel as the frame's raw payload, outside
 * MessagePack (see framing.ts), and show up on the receiving side as `p`.
 * Ids let many requests be in flight on one stream; responses may come in any order.
 * The first request on every stream is `hello`; the agent refuses anything else before it.
 * How each op's arguments are checked, and which way its payload travels: ops.ts.
 */
import type { WireError } from '../errors/pdc-error.js';
import type { Packed, PackRequest } from './compress.js';

export type Role = 'source' | 'target';

export interface HelloArgs {
  protocol: number;
  client: string; // client version, named in a version mismatch
}
export interface HelloResult {
  protocol: number;
  agent: string; // agent version
  node: string; // process.version on the agent's host
  hashes: string[]; // hash methods available there
  pid: number;
  host: string;
  /** -z codecs this agent can pack and unpack (absent: none). */
  codecs?: string[];
  /** Cores the agent may run on (its CPU affinity, else os.cpus(); absent or 0: unknown): caps the default number of agents. */
  cpus?: number;
}

export interface StatArgs {
  path: string;
  /** Which side the path is: errors about it are that side's (SOURCE_* or TARGET_*). */
  role: Role;
}
export interface StatResult {
  exists: boolean;
  kind: 'file' | 'dir' | 'block' | 'other' | 'missing';
  /** Bytes; for a block device, the device's size (from sysfs: stat itself says 0). */
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  /** Permission bits (rwx for user, group, other; no setuid/setgid/sticky); 0 when missing. */
  mode: number;
  /** Set when the path is a symlink (its target is what the other fields describe). */
  symlink: boolean;
}

export interface OpenArgs {
  path: string;
  role: Role;
  /** Target only: create the file (and missing parent directories) if absent. */
  create?: boolean;
  /** Target only: false opens it read-only (dry runs). Default true. */
  write?: boolean;
  /** Target only (--atomic): build the new version in a temp file beside it; commit renames it into place. */
  atomic?: boolean;
  /** Target only: take the advisory lock that keeps two runs off one target. */
  lock?: boolean;
  /** --atomic, every agent but the first: open the temp file the first one made, only if it is that file. */
  join?: { path: string; dev: number; ino: number };
  /**
   * Target only: permission bits a NEW target gets (the source's), narrowed by the
   * umask as cp and scp do. An existing target keeps its own mode.
   */
  mode?: number;
  /**
   * Accept a block device at path (absent: refused, as any non-regular file): 'check'
   * refuses one in use (mounted or held exclusively), 'force' does not (--force-device),
   * 'checked' is every agent after the first, which made the check.
   */
  device?: 'check' | 'force' | 'checked';
  /**
   * Read windows to keep for refinement's rounds (default REFINE_RUNS_IN_FLIGHT): a host
   * served by several agents spreads the runs in flight over them (windowsPerAgent).
   */
  windows?: number;
}
export interface OpenResult {
  size: number;
  mtimeMs: number;
  dev: number;
  ino: number;
  /** Permission bits of the opened file (see StatResult.mode). */
  mode: number;
  created: boolean;
  /** --atomic: the temp file being built (dev and ino above are its own). */
  temp?: string;
  /** --atomic: the temp file is our leftover of an earlier run, taken over. */
  resumed?: boolean;
  /** --atomic: files at temp names that are not ours, left untouched (the first MAX_LEFT_ALONE_LISTED). */
  leftAlone?: string[];
  /** --atomic: how many more such files there are beyond those named in leftAlone. */
  leftAloneMore?: number;
}

/** Free space where the target is (or will be created): the nearest existing ancestor's file system. */
export interface SpaceArgs {
  path: string;
}
export interface SpaceResult {
  /** Bytes an unprivileged user may still write there; null where this host cannot tell. */
  available: number | null;
  /** Why available is null (e.g. this Node has no fs.statfs), for the verbose log. */
  unknownReason?: string;
}

/** Hash blocks [first, first+count) of `blockSize`; the last block is clipped at `limit` bytes. */
export interface HashArgs {
  first: number;
  count: number;
  blockSize: number;
  limit: number;
  method: string;
}
export interface HashResult {
  /** Payload: count digests concatenated, each of the method's fixed length. */
  p?: Buffer[];
}

export interface ReadArgs {
  offset: number;
  length: number;
  /** Report the all-zero units of this many bytes (from offset) as zero runs instead of sending them. */
  zeroUnit?: number;
  /** -z: pack the data sent back (units that do not shrink stay raw). */
  pack?: PackRequest;
  /**
   * Hash method: also return the digest of each unit of zeroUnit bytes read (required with
   * it), taken from the bytes as read, before they leave the reading side.
   */
  hash?: string;
}
export interface ReadResult {
  /**
   * With zeroUnit: the all-zero stretches read, as [offset, length, ...] relative to
   * the read's offset, sorted; their bytes are not in the payload.
   */
  zeros?: number[];
  /** -z: how the payload was packed (absent: raw). */
  packed?: Packed;
  /** With hash: one digest per unit read (all-zero units: the digest of zeros), in order. */
  digests?: Uint8Array;
  /** Payload: the bytes read (shorter than asked only at end of file), zero runs left out. */
  p?: Buffer[];
}

/**
 * Pieces of a file, as a flat list [offset, length, offset, length, ...]: sorted,
 * disjoint, each length at least 1 (refinement inside differing blocks).
 */
export type PieceList = number[];

/** Hash each range of `ranges` in pieces of `grain` bytes from its start (its last piece clipped). */
export interface HashPiecesArgs {
  ranges: PieceList;
  grain: number;
  method: string;
}
export interface HashPiecesResult {
  /** Payload: one digest per piece, in order (a piece past end of file is hashed over the bytes that exist). */
  p?: Buffer[];
}

/** Read these pieces. */
export interface ReadPiecesArgs {
  ranges: PieceList;
}
export interface ReadPiecesResult {
  /** Payload: the pieces' bytes, concatenated in order (shorter only at end of file). */
  p?: Buffer[];
}

/** Write these pieces: their bytes, concatenated in order, are the request's payload. */
export interface WritePiecesArgs {
  ranges: PieceList;
}

/** Write `length` zero bytes at offset: a zero run the source sent without its bytes. */
export interface ZeroArgs {
  offset: number;
  length: number;
  /** --sparse: make it a hole where the host can, and write zeros only where it cannot. */
  punch?: boolean;
}

export interface ZeroResult {
  /** The range was made a hole (not written). */
  punched?: boolean;
}

/** The bytes to write travel as the request's payload. */
export interface WriteArgs {
  offset: number;
  /** -z: how the payload was packed (absent: raw); unpacked before anything is written. */
  packed?: Packed;
}

export interface TruncateArgs {
  size: number;
}

export interface DigestArgs {
  method: string;
  /** digest of bytes [0, limit) */
  limit: number;
}
export interface DigestResult {
  digest: Uint8Array;
}

/** The run succeeded: --atomic renames the temp file into place; both modes remove our obsolete temp files. */
export interface CommitArgs {
  /** The size the target must have (checked on the file written before anything is renamed). */
  size: number;
}
export interface CommitResult {
  removed: { path: string; size: number }[];
}

/** What `list` says about one directory entry (lstat: a symlink is described, not followed). */
export interface DirEntry {
  /** The entry's name in its directory: never empty, `.`, `..` or containing `/`. */
  name: string;
  kind: 'file' | 'dir' | 'symlink' | 'other';
  size: number;
  mtimeMs: number;
  /** Permission bits with set-id and sticky bits (mode & 0o7777). */
  mode: number;
  uid: number;
  gid: number;
  /** Symlinks: what the link points to, as stored. */
  linkTarget?: string;
}

/**
 * One page of a directory's entries, sorted by name; `after` continues after that
 * name. Paged so that neither side holds a huge directory in one message.
 */
export interface ListArgs {
  path: string;
  role: Role;
  after?: string;
  /** Only this entry of the directory (none when it is missing). */
  name?: string;
  max: number;
}
export interface ListResult {
  entries: DirEntry[];
  /** More entries follow the last one returned. */
  more: boolean;
}

/**
 * The ops that shape a tree on the target. Each names the tree's `root`; `path` must be
 * inside it (no `..`), and every directory between the root and `path` must be a real
 * directory (not a symlink), so nothing is created or changed outside the tree.
 */
export interface MkdirArgs {
  root: string;
  /** The directory to make (missing directories between root and it are made too). */
  path: string;
  /** Permission bits of a new directory (narrowed by the umask). */
  mode?: number;
}
export interface SymlinkArgs {
  root: string;
  path: string;
  /** What the link points to, stored as given (never followed). */
  linkTarget: string;
}
export interface TreeChangeResult {
  /** The entry was made (or, for a symlink, replaced) by this call. */
  created: boolean;
}
/** --delete: remove an entry of the tree (a directory with everything in it), never following a link. */
export interface RemoveArgs {
  root: string;
  path: string;
}
export interface RemoveResult {
  /** Entries removed (a directory counts with everything that was in it). */
  removed: number;
}
/** Set metadata through a descriptor opened without following a link (a regular file or a directory only). */
export interface SetMetaArgs {
  root: string;
  path: string;
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
}

/**
 * Trees, source: read several whole small files in one request. Each is opened without
 * following a link and must be a regular file of exactly `size` bytes (what the listing
 * saw) that does not change while it is read.
 */
export interface ReadFilesArgs {
  files: Array<{ path: string; size: number }>;
}
export interface ReadFilesResult {
  /** One per file, in order: its mtime as read, or why it was not read (its bytes then are absent from the payload). */
  files: Array<{ mtimeMs: number; error?: WireError }>;
  /** The files' bytes, one after another. */
  p?: Buffer[];
}
/** Metadata a batch sets on a file it wrote, through the descriptor it wrote (see SetMetaArgs). */
export interface FileMeta {
  mode?: number;
  uid?: number;
  gid?: number;
  mtimeMs?: number;
}
/**
 * Trees, target: write several whole small files in one request (their bytes, one after
 * another, in the payload), each opened as the `open` op opens an in-place target (locked,
 * a new one created exclusively with `mode` narrowed by the umask), inside `root` as the
 * tree ops require; fsynced, read back and checked against `hash` (the `method` digest of
 * the whole file), then given `meta`.
 */
export interface WriteFilesArgs {
  root: string;
  method: string;
  files: Array<{ path: string; size: number; hash: Uint8Array; mode?: number; meta?: FileMeta }>;
}
export interface WriteFilesResult {
  /** One per file, in order. `removed`: our temp files of earlier --atomic runs at that name, now obsolete. */
  files: Array<{ created: boolean; removed?: Array<{ path: string; size: number }>; error?: WireError }>;
}

export type Empty = Record<string, never>;

export interface Ops {
  hello: { args: HelloArgs; result: HelloResult };
  stat: { args: StatArgs; result: StatResult };
  open: { args: OpenArgs; result: OpenResult };
  space: { args: SpaceArgs; result: SpaceResult };
  hash: { args: HashArgs; result: HashResult };
  read: { args: ReadArgs; result: ReadResult };
  write: { args: WriteArgs; result: Empty };
  zero: { args: ZeroArgs; result: ZeroResult };
  hashpieces: { args: HashPiecesArgs; result: HashPiecesResult };
  readpieces: { args: ReadPiecesArgs; result: ReadPiecesResult };
  writepieces: { args: WritePiecesArgs; result: Empty };
  truncate: { args: TruncateArgs; result: Empty };
  fsync: { args: Empty; result: Empty };
  digest: { args: DigestArgs; result: DigestResult };
  commit: { args: CommitArgs; result: CommitResult };
  close: { args: Empty; result: Empty };
  list: { args: ListArgs; result: ListResult };
  mkdir: { args: MkdirArgs; result: TreeChangeResult };
  symlink: { args: SymlinkArgs; result: TreeChangeResult };
  setmeta: { args: SetMetaArgs; result: Empty };
  remove: { args: RemoveArgs; result: RemoveResult };
  readfiles: { args: ReadFilesArgs; result: ReadFilesResult };
  writefiles: { args: WriteFilesArgs; result: WriteFilesResult };
}
export type OpName = keyof Ops;
export { OP_NAMES } from './ops.js';

export interface RequestFrame {
  t: 'q';
  id: number;
  op: string;
  a: unknown;
}
export interface ResponseFrame {
  t: 'r';
  id: number;
  r?: unknown;
  e?: WireError;
}

export function isRequestFrame(m: unknown): m is RequestFrame {
  const f = m as RequestFrame;
  return !!f && typeof f === 'object' && f.t === 'q' && Number.isSafeInteger(f.id) && typeof f.op === 'string';
}
export function isResponseFrame(m: unknown): m is ResponseFrame {
  const f = m as ResponseFrame;
  return !!f && typeof f === 'object' && f.t === 'r' && Number.isSafeInteger(f.id);
}
