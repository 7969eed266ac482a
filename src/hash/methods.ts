import { createHash, getHashes } from 'node:crypto';
import { PdcError } from '../errors/pdc-error.js';
import { createPiecesDigester, XXH64_BYTES } from './xxh64-pieces.js';

/**
 * Block hash methods. The default is xxh64 from our own WebAssembly module
 * (xxh64-pieces.ts, bundled into the agent): about 7 GB/s on one core here against
 * 1.3-1.7 GB/s for sha1/sha256, computed identically on every Node >= 12 without
 * native code (no 64-bit value crosses the wasm boundary, which Node < 15 cannot pass).
 * Bytes read into an aligned buffer are hashed where they lie, without a copy.
 * 64 bits suffice for comparing the same block position on two sides (a chance
 * collision is about 2^-64 per block), and every run can add --verify (sha256).
 * Any node:crypto hash available on both sides may be chosen with -m.
 */
export const DEFAULT_HASH_METHOD = 'xxh64';
export const DIGEST_METHOD = 'sha256';
const XXH64_DIGEST_BYTES = XXH64_BYTES;

/**
 * The methods an error or the help names: node:crypto knows dozens more (mostly
 * OpenSSL aliases such as RSA-SHA256), which are still accepted but not listed.
 */
export const LISTED_HASH_METHODS = [DEFAULT_HASH_METHOD, 'sha1', 'sha256', 'sha512', 'md5', 'blake2b512'] as const;

/** `method` is not one this side (or both sides) can compute; the hint names the useful ones of `available`. */
export function unknownHashMethod(method: string, available: Iterable<string>, where = 'available'): PdcError {
  const have = new Set(available);
  const listed = LISTED_HASH_METHODS.filter((m) => have.has(m));
  return new PdcError('UNKNOWN_HASH_METHOD', `hash method "${method}" is not ${where}`, {
    hint: `choose one of: ${listed.join(', ')} (or another node:crypto hash ${where})`,
  });
}

/** Hash one block's bytes to a fixed-length digest. */
export type BlockHasher = (data: Uint8Array) => Uint8Array;

let xxh: ReturnType<typeof createPiecesDigester> | undefined;

/** xxh64 of one block: one piece as long as the block (hashed in place where the block lies in an aligned buffer). */
function loadXxh64(): BlockHasher {
  const d = (xxh ??= createPiecesDigester());
  return (data) => {
    const out = Buffer.allocUnsafe(XXH64_DIGEST_BYTES);
    if (data.length === 0) d.whole(data, out, 0);
    else d.pieces(data, data.length, out, 0);
    return out;
  };
}

/** Methods this process can compute: xxh64 plus node:crypto's fixed-length digests. */
export function localHashMethods(): string[] {
  const crypto = getHashes().filter((name) => !/^shake/i.test(name));
  return [DEFAULT_HASH_METHOD, ...crypto];
}

export async function createBlockHasher(method: string): Promise<BlockHasher> {
  if (method === DEFAULT_HASH_METHOD) return loadXxh64();
  try {
    createHash(method);
  } catch {
    throw unknownHashMethod(method, localHashMethods());
  }
  return (data) => createHash(method).update(data).digest();
}

/** Hash `data` and write its digest into `out` at `at`: many small pieces without a buffer per digest. */
export type DigestWriter = (data: Uint8Array, out: Buffer, at: number) => void;

export async function createDigestWriter(method: string): Promise<DigestWriter> {
  const h = await createBlockHasher(method);
  return (data, out, at) => void out.set(h(data), at);
}

/**
 * Digest each `grain`-byte piece of `data` (the last clipped) into `out` from `at`, the
 * digests concatenated; returns how many. xxh64 hashes all pieces in one wasm call (per
 * call overhead would dominate 64-byte pieces); other methods hash piece by piece.
 */
export type PiecesWriter = (data: Uint8Array, grain: number, out: Buffer, at: number) => number;

export async function createPiecesWriter(method: string): Promise<PiecesWriter> {
  if (method === DEFAULT_HASH_METHOD) return (xxh ??= createPiecesDigester()).pieces;
  const digest = await createDigestWriter(method);
  const len = await digestLength(method);
  return (data, grain, out, at) => {
    let k = 0;
    for (let s = 0; s < data.length; s += grain, k++) digest(data.subarray(s, Math.min(data.length, s + grain)), out, at + k * len);
    return k;
  };
}

export async function digestLength(method: string): Promise<number> {
  const h = await createBlockHasher(method);
  return h(Buffer.alloc(0)).length;
}

/** A method's digest length without loading a hasher (sync); undefined for a method this process does not know. */
export function knownDigestLength(method: string): number | undefined {
  if (method === DEFAULT_HASH_METHOD) return XXH64_DIGEST_BYTES;
  try {
    return createHash(method).digest().length;
  } catch {
    return undefined;
  }
}
