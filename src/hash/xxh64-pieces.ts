import { XXH64_PIECES_WASM_BASE64 } from './xxh64-pieces-wasm.js';

/**
 * XXH64 (seed 0) of many small pieces in one WebAssembly call (src/hash/xxh64-pieces.wat).
 * Calling a hash per piece costs about half a microsecond of boundary crossing (copy in,
 * BigInt out), which for 64-byte pieces is 50 times the hashing itself: here the bytes
 * are copied into wasm memory once per call and all their digests come back in one copy.
 * Digests are big-endian, byte for byte those of xxhash-wasm's h64Raw written with
 * writeBigUInt64BE. Runs on Node 12 (no i64 crosses the boundary).
 */

/** Digest each `grain`-byte piece of `data` (the last clipped) into `out` from `at`; returns how many (none for empty data). */
export type PiecesDigester = (data: Uint8Array, grain: number, out: Uint8Array, at: number) => number;

export const XXH64_BYTES = 8;

interface PiecesExports {
  memory: WebAssembly.Memory;
  pieces(ptr: number, len: number, grain: number, out: number): number;
  whole(ptr: number, len: number, out: number): void;
}

const WASM_PAGE_BYTES = 64 * 1024;
/**
 * Input bytes copied into wasm memory per call (a whole number of pieces): bounds the
 * module's memory whatever the caller passes, and is big enough that the per-call cost
 * vanishes. A piece longer than this is copied whole.
 */
const CHUNK_BYTES = 4 * 1024 * 1024;

let module: WebAssembly.Module | undefined;

/** A digester with its own wasm instance (synchronous: the module is under a kilobyte). */
export function createPiecesDigester(): { pieces: PiecesDigester; whole: (data: Uint8Array, out: Uint8Array, at: number) => void } {
  module ??= new WebAssembly.Module(Buffer.from(XXH64_PIECES_WASM_BASE64, 'base64'));
  const wasm = new WebAssembly.Instance(module, {}).exports as unknown as PiecesExports;
  let mem = new Uint8Array(wasm.memory.buffer);

  /** Room for `bytes` at address 0 (growing detaches the old view: take a new one). */
  const reserve = (bytes: number): Uint8Array => {
    if (bytes > mem.length) {
      wasm.memory.grow(Math.ceil((bytes - mem.length) / WASM_PAGE_BYTES));
      mem = new Uint8Array(wasm.memory.buffer);
    }
    return mem;
  };

  const pieces: PiecesDigester = (data, grain, out, at) => {
    if (!(Number.isInteger(grain) && grain >= 1)) throw new RangeError(`piece size must be a positive integer, got ${grain}`);
    const step = grain >= CHUNK_BYTES ? grain : CHUNK_BYTES - (CHUNK_BYTES % grain);
    let k = 0;
    for (let s = 0; s < data.length; s += step) {
      const n = Math.min(step, data.length - s);
      const digestsAt = n; // digests right after the bytes
      const m = reserve(n + Math.ceil(n / grain) * XXH64_BYTES);
      m.set(data.subarray(s, s + n), 0);
      const count = wasm.pieces(0, n, grain, digestsAt);
      out.set(m.subarray(digestsAt, digestsAt + count * XXH64_BYTES), at + k * XXH64_BYTES);
      k += count;
    }
    return k;
  };

  const whole = (data: Uint8Array, out: Uint8Array, at: number): void => {
    const m = reserve(data.length + XXH64_BYTES);
    m.set(data, 0);
    wasm.whole(0, data.length, data.length);
    out.set(m.subarray(data.length, data.length + XXH64_BYTES), at);
  };

  return { pieces, whole };
}
