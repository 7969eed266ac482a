import { createCipheriv, createHash } from 'node:crypto';

/**
 * Deterministic pseudo-random bytes (an AES-CTR keystream): fast, incompressible,
 * and the same for the same (seed, offset), so a mutation can be replayed exactly.
 */
export function seededBytes(seed: number, length: number, offset = 0): Buffer {
  const key = createHash('sha256').update(`pdiffcopy-seed-${seed}`).digest();
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(Math.floor(offset / 16) % 2 ** 32, 12);
  iv.writeUInt32BE(Math.floor(offset / 16 / 2 ** 32), 8);
  const skip = offset % 16;
  return createCipheriv('aes-256-ctr', key, iv).update(Buffer.alloc(length + skip)).subarray(skip);
}

/** xorshift32: a tiny seeded PRNG for choosing block positions. */
export function seededRandom(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s / 0x100000000;
  };
}

/** k distinct block indices out of n, scattered at random (seeded), sorted. */
export function pickBlocks(n: number, k: number, seed: number): number[] {
  const want = Math.min(k, n);
  if (want === n) return Array.from({ length: n }, (_, i) => i);
  const r = seededRandom(seed);
  const set = new Set<number>();
  while (set.size < want) set.add(Math.floor(r() * n));
  return [...set].sort((a, b) => a - b);
}
