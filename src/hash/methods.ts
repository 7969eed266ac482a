import { createHash, getHashes } from 'node:crypto';
import xxhash from 'xxhash-wasm';
import { PdcError } from '../errors/pdc-error.js';

/**
 * Block hash methods. The default is xxh64 from a WebAssembly build (xxhash-wasm,
 * bundled into the agent): about 7-8 GB/s on one core here against 1.3-1.7 GB/s
 * for sha1/sha256, computed identically on every Node >= 12 without native code.
 * xxhash-wasm passes the 64-bit result as a BigInt across the wasm boundary,
 * which V8 allows only from Node 15; on older Nodes (remote agents on Node 12-14)
 * the same XXH64 comes from hash-wasm, which returns it through wasm memory
 * (slower, about 1.5 GB/s here, but identical values).
 * 64 bits suffice for comparing the same block position on two sides (a chance
 * collision is about 2^-64 per block), and every run can add --verify (sha256).
 * Any node:crypto hash available on both sides may be chosen with -m.
 */
export const DEFAULT_HASH_METHOD = 'xxh64';
export const DIGEST_METHOD = 'sha256';
const XXH64_DIGEST_BYTES = 8;

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

let xxh: Promise<BlockHasher> | undefined;

function loadXxh64(): Promise<BlockHasher> {
  return (xxh ??= xxhash()
    .then((api) => {
      const hasher: BlockHasher = (data) => {
        const out = Buffer.allocUnsafe(XXH64_DIGEST_BYTES);
        out.writeBigUInt64BE(api.h64Raw(data), 0);
        return out;
      };
      hasher(new Uint8Array(1)); // throws where wasm cannot return a BigInt (Node < 15)
      return hasher;
    })
    .catch(async () => {
      // Loaded only here: the fallback is rarely needed and costs start-up everywhere else.
      const h = await (await import('./xxh64-fallback.js')).createXXHash64();
      return (data: Uint8Array) => {
        h.init();
        h.update(data);
        return h.digest('binary');
      };
    }));
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

let xxhInto: Promise<DigestWriter> | undefined;

export async function createDigestWriter(method: string): Promise<DigestWriter> {
  const viaHasher = async (): Promise<DigestWriter> => {
    const h = await createBlockHasher(method);
    return (data, out, at) => void out.set(h(data), at);
  };
  if (method !== DEFAULT_HASH_METHOD) return viaHasher();
  return (xxhInto ??= xxhash()
    .then((api) => {
      const w: DigestWriter = (data, out, at) => void out.writeBigUInt64BE(api.h64Raw(data), at);
      w(new Uint8Array(1), Buffer.alloc(XXH64_DIGEST_BYTES), 0); // throws where wasm cannot return a BigInt (Node < 15)
      return w;
    })
    .catch(viaHasher));
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
