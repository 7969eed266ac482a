/**
 * The op table: for every operation of the protocol, how each argument is checked
 * (type and limits), which way a raw payload travels, and the request sizes the
 * frame limit allows. The agent's dispatcher reads arguments through it, the
 * client's calls are typed by the same Ops, and the engine plans its hash and read
 * requests from the caps below, so the three cannot disagree.
 *
 * Every field of an op's *Args and *Result interfaces (messages.ts) must have a
 * Field here: the table is typed so that a field added there and not here does not
 * compile. The dispatcher passes on only the arguments the table read (unknown keys
 * are refused), and the client only the answer fields it declares.
 * Node 12 syntax and built-ins only: the agent bundles this file.
 */
import { PdcError } from '../errors/pdc-error.js';
import { knownDigestLength } from '../hash/methods.js';
import { CODECS, type Codec, MAX_COMPRESS_LEVEL, MIN_PACK_UNIT, MIN_COMPRESS_LEVEL, packedProblem } from './compress.js';
import { FRAME_BODY_RESERVE, MAX_BLOCK_SIZE, MAX_FRAME_BYTES, MAX_HASH_BLOCKS, MAX_HASH_PIECES_BYTES, MAX_IO_BYTES, MAX_PAYLOAD_BYTES, MAX_PIECES, MAX_LEFT_ALONE_LISTED, MAX_ZERO_RUNS, MODE_BITS, PATH_MAX, REFINE_RUNS_IN_FLIGHT } from './limits.js';
import type { OpName, Ops, Role } from './messages.js';

const INVALID: unique symbol = Symbol('invalid');
type Invalid = typeof INVALID;

/** One argument: reads a wire value, returning it typed or INVALID. */
export interface Field<T> {
  /** What a valid value is, for the error message ("an integer from 0 to 64"). */
  readonly expects: string;
  read(value: unknown): T | Invalid;
  /** Values just outside what is accepted (wrong type, one past each bound): tests send each to every op. */
  readonly outOfRange: readonly unknown[];
}

export type Fields<A> = { readonly [K in keyof A]-?: Field<A[K]> };

/** Which way an op's raw payload travels beside the MessagePack body. */
export type PayloadDirection = 'none' | 'request' | 'response';

export interface OpSpec<A, R> {
  readonly args: Fields<A>;
  /** The result's body (a payload travels beside it, see `payload`); the client reads answers through it. */
  readonly result: Fields<Omit<R, 'p'>>;
  readonly payload: PayloadDirection;
  /** Checks across arguments once each one is valid: what is wrong, or undefined. */
  readonly check?: (args: A) => string | undefined;
}

export type OpTable = { readonly [K in OpName]: OpSpec<Ops[K]['args'], Ops[K]['result']> };

/** An integer in [min, max] (safe integers only: MessagePack may carry 2^64). */
export function uint(max = Number.MAX_SAFE_INTEGER, min = 0): Field<number> {
  return {
    expects: `an integer from ${min} to ${max}`,
    read: (v) => (typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max ? v : INVALID),
    outOfRange: [min - 1, min + 0.5, max === Number.MAX_SAFE_INTEGER ? 2 ** 53 : max + 1, String(min), null, true],
  };
}

/** A non-empty string without NUL of at most maxBytes bytes of UTF-8 (what the kernel counts, not characters). */
export function text(maxBytes: number): Field<string> {
  return {
    expects: `a string of 1 to ${maxBytes} bytes without NUL`,
    read: (v) => (typeof v === 'string' && v.length > 0 && v.indexOf('\0') < 0 && Buffer.byteLength(v) <= maxBytes ? v : INVALID),
    outOfRange: ['', 'a\0b', 'x'.repeat(maxBytes + 1), '\u00e9'.repeat(Math.floor(maxBytes / 2) + 1), 7, null],
  };
}

/** Any finite number (timestamps with fractions, device and inode numbers). */
export function num(): Field<number> {
  return {
    expects: 'a finite number',
    read: (v) => (typeof v === 'number' && Number.isFinite(v) ? v : INVALID),
    outOfRange: [Infinity, NaN, '1', null],
  };
}

/** Bytes (a digest), at most maxBytes of them. */
export function bytes(maxBytes: number): Field<Uint8Array> {
  return {
    expects: `at most ${maxBytes} bytes`,
    read: (v) => (v instanceof Uint8Array && v.length <= maxBytes ? v : INVALID),
    outOfRange: [new Uint8Array(maxBytes + 1), 'ab', [1, 2], null],
  };
}

/** A list of at most maxItems items. */
export function list<T>(item: Field<T>, maxItems: number): Field<T[]> {
  return {
    expects: `a list of at most ${maxItems} items, each ${item.expects}`,
    read: (v) => {
      if (!Array.isArray(v) || v.length > maxItems) return INVALID;
      for (const x of v) if (item.read(x) === INVALID) return INVALID;
      return v as T[];
    },
    outOfRange: [[item.outOfRange[0]], 'a', null],
  };
}

/**
 * Pieces as a flat list [offset, length, ...]: at most MAX_PIECES of them, each at least
 * one byte, sorted and disjoint, at most maxBytes in all (so a reply or a buffer sized
 * from it is bounded before anything is read or allocated).
 */
export function pieces(maxBytes: number): Field<number[]> {
  return {
    expects: `a list [offset, length, ...] of at most ${MAX_PIECES} sorted, disjoint pieces of at least 1 byte, at most ${maxBytes} bytes in all`,
    read: (v) => {
      if (!Array.isArray(v) || v.length % 2 !== 0 || v.length > 2 * MAX_PIECES) return INVALID;
      let end = 0;
      let total = 0;
      for (let i = 0; i < v.length; i += 2) {
        const off = v[i] as unknown;
        const len = v[i + 1] as unknown;
        if (typeof off !== 'number' || !Number.isSafeInteger(off) || off < end) return INVALID;
        if (typeof len !== 'number' || !Number.isSafeInteger(len) || len < 1 || !Number.isSafeInteger(off + len)) return INVALID;
        end = off + len;
        total += len;
        if (total > maxBytes) return INVALID;
      }
      return v as number[];
    },
    outOfRange: [[0], [0, 0], [10, 1, 5, 1], [0, maxBytes + 1], [-1, 1], new Array(2 * MAX_PIECES + 2).fill(1).map((x, i) => (i % 2 ? 1 : i)), 'a', null],
  };
}

/** Bytes the pieces cover. */
export function piecesBytes(ranges: readonly number[]): number {
  let n = 0;
  for (let i = 1; i < ranges.length; i += 2) n += ranges[i]!;
  return n;
}

/** Digests a hashpieces reply holds: each range cut into pieces of `grain` from its start. */
export function piecesDigests(ranges: readonly number[], grain: number): number {
  let n = 0;
  for (let i = 1; i < ranges.length; i += 2) n += Math.ceil(ranges[i]! / grain);
  return n;
}

/** A value, or null where the answer is unknown. */
export function nullable<T>(field: Field<T>): Field<T | null> {
  return {
    expects: `null or ${field.expects}`,
    read: (v) => (v === null ? null : field.read(v)),
    outOfRange: field.outOfRange.filter((v) => v !== null),
  };
}

/** A map with exactly these fields (extra keys refused, as for a request's arguments). */
export function record<T>(fields: Fields<T>): Field<T> {
  const keys = Object.keys(fields) as Array<keyof T & string>;
  return {
    expects: `a map of ${keys.join(', ')}`,
    read: (v) => {
      if (!v || typeof v !== 'object' || Array.isArray(v) || Buffer.isBuffer(v)) return INVALID;
      const given = v as Record<string, unknown>;
      if (Object.keys(given).some((k) => !has(fields, k))) return INVALID;
      const out: Partial<T> = {};
      for (const k of keys) {
        const r = fields[k].read(given[k]);
        if (r === INVALID) return INVALID;
        if (r !== undefined) out[k] = r;
      }
      return out as T;
    },
    outOfRange: ['x', [], null, { ...Object.fromEntries(keys.map((k) => [k, fields[k].outOfRange[0]])) }],
  };
}

/** One of a few strings. */
export function oneOf<T extends string>(...values: T[]): Field<T> {
  return {
    expects: `one of ${values.map((v) => `"${v}"`).join(', ')}`,
    read: (v) => (values.indexOf(v as T) >= 0 ? (v as T) : INVALID),
    outOfRange: ['', `${values[0]}x`, 1, null],
  };
}

/** An optional argument: absent is undefined, present must be valid. */
export function optional<T>(field: Field<T>): Field<T | undefined> {
  return {
    expects: `absent or ${field.expects}`,
    read: (v) => (v === undefined ? undefined : field.read(v)),
    outOfRange: field.outOfRange.filter((v) => v !== undefined),
  };
}

const boolean: Field<boolean> = {
  expects: 'true or false',
  read: (v) => (typeof v === 'boolean' ? v : INVALID),
  outOfRange: ['true', 1, null],
};
const flag = optional(boolean);

/**
 * A path as the wire carries it, within the kernel's limit. A longer one never gets here from our client:
 * AgentHost refuses it first as that side's error (pathTooLong), where the role is known.
 */
const path = text(PATH_MAX - 1);
const role = oneOf<Role>('source', 'target');
const method = text(64);
const name = text(1024);
const empty = {};
const fileIdentity = { size: uint(), mtimeMs: num(), dev: num(), ino: num() };
/** Permission bits (with set-id and sticky bits where a file has them). */
const mode = uint(MODE_BITS);

const codec = oneOf<Codec>(...CODECS);
/**
 * -z: how a block payload was packed. The raw length is declared and capped here (and the
 * unit count and each unit's size checked against it) before a byte is allocated or inflated.
 */
const packed = record({
  codec,
  unit: uint(MAX_IO_BYTES, MIN_PACK_UNIT),
  length: uint(MAX_IO_BYTES, 1),
  sizes: list(uint(MAX_IO_BYTES, 1), Math.ceil(MAX_IO_BYTES / MIN_PACK_UNIT)),
});
/** -z on a read: the side that reads packs the data it sends. */
const pack = record({ codec, level: uint(MAX_COMPRESS_LEVEL, MIN_COMPRESS_LEVEL), unit: uint(MAX_IO_BYTES, MIN_PACK_UNIT) });

/** The most blocks one hash request may cover when each digest is digestLength bytes: the reply must fit one frame. */
export function maxHashBlocks(digestLength: number): number {
  return Math.max(1, Math.min(MAX_HASH_BLOCKS, Math.floor(MAX_PAYLOAD_BYTES / digestLength)));
}

/** The largest read one request may ask for: the reply's payload must fit one frame. */
export const MAX_READ_BYTES = Math.min(MAX_IO_BYTES, MAX_PAYLOAD_BYTES);

/**
 * The most digest bytes a read may return beside its data: they travel in the body, which
 * shares FRAME_BODY_RESERVE with the zero-run list (at most 2 * MAX_ZERO_RUNS numbers).
 */
export const MAX_READ_DIGEST_BYTES = FRAME_BODY_RESERVE / 4;

/** Whether a read of `length` bytes in units of `unit` may ask for its digests of `digestLength` bytes. */
export function readDigestsFit(length: number, unit: number, digestLength: number): boolean {
  return Math.ceil(length / unit) * digestLength <= MAX_READ_DIGEST_BYTES;
}

/** Entries per `list` page: with names and link targets at their limits a page stays far below one frame. */
export const MAX_LIST_ENTRIES = 1000;

/** Files one readfiles/writefiles request carries. */
export const MAX_BATCH_FILES = 256;
/** The longest message (and hint) one file's error in a batch answer carries, in bytes (the agent shortens longer ones). */
export const MAX_ERROR_TEXT_BYTES = 2 * PATH_MAX;
/** A batch entry's body at most: its path, an error's message and hint, and 2 KiB for the rest (size, mode, metadata, a digest of up to 1024 bytes, keys). */
const BATCH_ENTRY_BYTES = PATH_MAX + 2 * MAX_ERROR_TEXT_BYTES + 2048;
/** The bytes one batch carries: what a frame leaves beside a body of MAX_BATCH_FILES entries at their limits. */
export const MAX_BATCH_BYTES = MAX_FRAME_BYTES - FRAME_BODY_RESERVE - MAX_BATCH_FILES * BATCH_ENTRY_BYTES;

const wireError = record({ code: name, message: text(MAX_ERROR_TEXT_BYTES), hint: optional(text(MAX_ERROR_TEXT_BYTES)) });
const batchSize = uint(MAX_BATCH_BYTES);
/** A batch's files together stay within MAX_BATCH_BYTES. */
function batchTooBig(files: ReadonlyArray<{ size: number }>): string | undefined {
  let total = 0;
  for (const f of files) total += f.size;
  return total > MAX_BATCH_BYTES ? `the files' sizes add up to ${total} bytes, more than ${MAX_BATCH_BYTES}` : undefined;
}

export const OPS: OpTable = {
  hello: {
    args: { protocol: uint(), client: name },
    result: { protocol: uint(), agent: name, node: name, hashes: list(method, 1000), pid: uint(), host: name, codecs: optional(list(name, 16)), cpus: optional(uint()) },
    payload: 'none',
  },
  stat: {
    args: { path, role },
    result: { exists: boolean, kind: oneOf('file', 'dir', 'block', 'other', 'missing'), ...fileIdentity, mode, symlink: boolean },
    payload: 'none',
  },
  open: {
    args: {
      path,
      role,
      create: flag,
      write: flag,
      atomic: flag,
      lock: flag,
      join: optional(record({ path, dev: uint(), ino: uint() })),
      mode: optional(mode),
      device: optional(oneOf('check', 'force', 'checked')),
      windows: optional(uint(REFINE_RUNS_IN_FLIGHT, 1)),
    },
    result: {
      ...fileIdentity,
      mode,
      created: boolean,
      temp: optional(path),
      resumed: optional(boolean),
      leftAlone: optional(list(path, MAX_LEFT_ALONE_LISTED)),
      leftAloneMore: optional(uint()),
    },
    payload: 'none',
  },
  space: { args: { path }, result: { available: nullable(uint()), unknownReason: optional(name) }, payload: 'none' },
  hash: {
    args: { first: uint(), count: uint(MAX_HASH_BLOCKS), blockSize: uint(MAX_BLOCK_SIZE, 1), limit: uint(), method },
    result: empty,
    payload: 'response',
    check: (a) => {
      const len = knownDigestLength(a.method);
      // An unknown method is the handler's to report (UNKNOWN_HASH_METHOD).
      if (len !== undefined && a.count > maxHashBlocks(len)) {
        return `"count" must be at most ${maxHashBlocks(len)} for ${a.method} (the reply must fit one frame)`;
      }
      return undefined;
    },
  },
  read: {
    args: { offset: uint(), length: uint(MAX_READ_BYTES), zeroUnit: optional(uint(MAX_BLOCK_SIZE, 1)), pack: optional(pack), hash: optional(method) },
    result: { zeros: optional(list(uint(MAX_READ_BYTES), 2 * MAX_ZERO_RUNS)), packed: optional(packed), digests: optional(bytes(MAX_READ_DIGEST_BYTES)) },
    payload: 'response',
    check: (a) => {
      if (a.hash === undefined) return undefined;
      if (a.zeroUnit === undefined) return '"hash" needs "zeroUnit": the digests are of its units';
      const len = knownDigestLength(a.hash);
      if (len !== undefined && !readDigestsFit(a.length, a.zeroUnit, len)) {
        return `the units' digests of ${a.hash} must take at most ${MAX_READ_DIGEST_BYTES} bytes (they travel in the body)`;
      }
      return undefined;
    },
  },
  write: { args: { offset: uint(), packed: optional(packed) }, result: empty, payload: 'request', check: (a) => (a.packed ? packedProblem(a.packed) : undefined) },
  zero: { args: { offset: uint(), length: uint(MAX_IO_BYTES), punch: flag }, result: { punched: flag }, payload: 'none' },
  hashpieces: {
    args: { ranges: pieces(MAX_HASH_PIECES_BYTES), grain: uint(MAX_BLOCK_SIZE, 1), method },
    result: empty,
    payload: 'response',
    check: (a) => {
      const len = knownDigestLength(a.method);
      if (len !== undefined && piecesDigests(a.ranges, a.grain) > maxHashBlocks(len)) {
        return `the pieces must make at most ${maxHashBlocks(len)} digests of ${a.method} (the reply must fit one frame)`;
      }
      return undefined;
    },
  },
  readpieces: { args: { ranges: pieces(MAX_READ_BYTES) }, result: empty, payload: 'response' },
  writepieces: { args: { ranges: pieces(MAX_IO_BYTES) }, result: empty, payload: 'request' },
  truncate: { args: { size: uint() }, result: empty, payload: 'none' },
  fsync: { args: empty, result: empty, payload: 'none' },
  digest: { args: { method, limit: uint() }, result: { digest: bytes(1024) }, payload: 'none' },
  commit: { args: { size: uint() }, result: { removed: list(record({ path, size: uint() }), 1000) }, payload: 'none' },
  close: { args: empty, result: empty, payload: 'none' },
  list: {
    args: { path, role, after: optional(name), name: optional(name), max: uint(MAX_LIST_ENTRIES, 1) },
    result: {
      entries: list(
        record({
          name,
          kind: oneOf('file', 'dir', 'symlink', 'other'),
          size: uint(),
          mtimeMs: num(),
          mode,
          uid: uint(),
          gid: uint(),
          linkTarget: optional(path),
        }),
        MAX_LIST_ENTRIES,
      ),
      more: boolean,
    },
    payload: 'none',
  },
  mkdir: { args: { root: path, path, mode: optional(mode) }, result: { created: boolean }, payload: 'none' },
  symlink: { args: { root: path, path, linkTarget: path }, result: { created: boolean }, payload: 'none' },
  setmeta: {
    args: { root: path, path, mode: optional(mode), uid: optional(uint(0xffffffff)), gid: optional(uint(0xffffffff)), mtimeMs: optional(num()) },
    result: empty,
    payload: 'none',
  },
  remove: { args: { root: path, path }, result: { removed: uint() }, payload: 'none' },
  readfiles: {
    args: { files: list(record({ path, size: batchSize }), MAX_BATCH_FILES) },
    result: { files: list(record({ mtimeMs: num(), error: optional(wireError) }), MAX_BATCH_FILES) },
    payload: 'response',
    check: (a) => batchTooBig(a.files),
  },
  writefiles: {
    args: {
      root: path,
      method,
      files: list(
        record({
          path,
          size: batchSize,
          hash: bytes(1024),
          mode: optional(mode),
          meta: optional(record({ mode: optional(mode), uid: optional(uint(0xffffffff)), gid: optional(uint(0xffffffff)), mtimeMs: optional(num()) })),
        }),
        MAX_BATCH_FILES,
      ),
    },
    result: {
      files: list(record({ created: boolean, removed: optional(list(record({ path, size: uint() }), 1000)), error: optional(wireError) }), MAX_BATCH_FILES),
    },
    payload: 'request',
    check: (a) => batchTooBig(a.files),
  },
};

export const OP_NAMES = Object.keys(OPS) as readonly OpName[];

const has = (o: object, key: string) => Object.prototype.hasOwnProperty.call(o, key);

export function isOpName(op: string): op is OpName {
  return has(OPS, op);
}

function badRequest(op: string, why: string): PdcError {
  return new PdcError('PROTOCOL_ERROR', `bad "${op}" request: ${why}`);
}

/** Read the declared fields of `given`; the first invalid one is named in the error. */
function readFields(op: string, fields: Record<string, Field<unknown>>, given: Record<string, unknown>, what: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(fields)) {
    const field = fields[key]!;
    const v = field.read(has(given, key) ? given[key] : undefined);
    if (v === INVALID) throw new PdcError('PROTOCOL_ERROR', `bad "${op}" ${what}: "${key}" must be ${field.expects}`);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/**
 * Read a request's arguments through the table, before anything is opened or
 * allocated: every field valid, no unknown key, a payload only where the op takes one.
 */
export function readArgs<K extends OpName>(op: K, raw: unknown, payload?: readonly Buffer[]): Ops[K]['args'] {
  const spec = OPS[op] as unknown as OpSpec<Record<string, unknown>, Record<string, unknown>>;
  if (!raw || typeof raw !== 'object' || Array.isArray(raw) || Buffer.isBuffer(raw)) throw badRequest(op, 'the arguments must be a map');
  const given = raw as Record<string, unknown>;
  for (const key of Object.keys(given)) if (!has(spec.args, key)) throw badRequest(op, `unknown argument "${key}"`);
  if (payload && payload.length > 0 && spec.payload !== 'request') throw badRequest(op, 'it takes no payload');
  const out = readFields(op, spec.args as Record<string, Field<unknown>>, given, 'request');
  const problem = spec.check?.(out);
  if (problem) throw badRequest(op, problem);
  return out as Ops[K]['args'];
}

/**
 * Read an answer's body through the table (the client's side): only declared
 * fields pass, each valid; a payload only where the op answers with one.
 */
export function readResult<K extends OpName>(op: K, raw: unknown, hasPayload: boolean): Omit<Ops[K]['result'], 'p'> {
  const spec = OPS[op] as unknown as OpSpec<Record<string, unknown>, Record<string, unknown>>;
  if (hasPayload && spec.payload !== 'response') throw new PdcError('PROTOCOL_ERROR', `bad "${op}" answer: it carries no payload`);
  const given = raw && typeof raw === 'object' && !Array.isArray(raw) ? (raw as Record<string, unknown>) : {};
  return readFields(op, spec.result as Record<string, Field<unknown>>, given, 'answer') as Omit<Ops[K]['result'], 'p'>;
}
