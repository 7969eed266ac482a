import { wasmRegionOf } from '../fileops/aligned-buffer.js';
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

/**
 * The smallest piece hashed in place: refinement's floor, eight digests' length
 * (refineFloor in engine/refine-plan.ts). A buffer made with inPlaceTail(size) bytes
 * after it has room for the digests of its pieces.
 */
export const IN_PLACE_MIN_GRAIN = 8 * XXH64_BYTES;
export function inPlaceTail(size: number): number {
  return Math.ceil(size / IN_PLACE_MIN_GRAIN) * XXH64_BYTES;
}

let module: WebAssembly.Module | undefined;
const compiled = (): WebAssembly.Module => (module ??= new WebAssembly.Module(Buffer.from(XXH64_PIECES_WASM_BASE64, 'base64')));
const instantiate = (memory: WebAssembly.Memory): PiecesExports =>
  new WebAssembly.Instance(compiled(), { env: { memory } }).exports as unknown as PiecesExports;

/** One instance per aligned buffer's memory, made on first use. */
const inPlaceInstances = new WeakMap<WebAssembly.Memory, PiecesExports>();

/**
 * Hash `data` where it lies when it is a view of an aligned buffer with room for the
 * digests after it (no copy into another memory); undefined when it is not.
 */
function piecesInPlace(data: Uint8Array, grain: number, out: Uint8Array, at: number): number | undefined {
  const region = wasmRegionOf(data);
  const count = Math.ceil(data.length / grain);
  if (!region || count * XXH64_BYTES > region.tailBytes) return undefined;
  let wasm = inPlaceInstances.get(region.memory);
  if (!wasm) inPlaceInstances.set(region.memory, (wasm = instantiate(region.memory)));
  wasm.pieces(data.byteOffset, data.length, grain, region.tailAt);
  out.set(new Uint8Array(region.memory.buffer, region.tailAt, count * XXH64_BYTES), at);
  return count;
}

/** A digester with its own wasm instance (synchronous: the module is under a kilobyte). */
export function createPiecesDigester(): { pieces: PiecesDigester; whole: (data: Uint8Array, out: Uint8Array, at: number) => void } {
  const memory = new WebAssembly.Memory({ initial: 1 });
  const wasm = instantiate(memory);
  let mem = new Uint8Array(memory.buffer);

  /** Room for `bytes` at address 0 (growing detaches the old view: take a new one). */
  const reserve = (bytes: number): Uint8Array => {
    if (bytes > mem.length) {
      memory.grow(Math.ceil((bytes - mem.length) / WASM_PAGE_BYTES));
      mem = new Uint8Array(memory.buffer);
    }
    return mem;
  };

  const pieces: PiecesDigester = (data, grain, out, at) => {
    if (!(Number.isInteger(grain) && grain >= 1)) throw new RangeError(`piece size must be a positive integer, got ${grain}`);
    if (data.length === 0) return 0;
    const done = piecesInPlace(data, grain, out, at);
    if (done !== undefined) return done;
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
