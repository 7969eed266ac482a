import { createHash } from 'node:crypto';
import { alignedBuffer } from '../fileops/aligned-buffer.js';
import { isAllZero } from '../fileops/zero-runs.js';
import { type BlockHasher, createBlockHasher } from './methods.js';

/** Preferred size of one read: big reads into aligned buffers are what make file I/O fast here (aligned-buffer.ts). */
export const READ_CHUNK_BYTES = 4 * 1024 * 1024;

/** What hashing needs of an open file: positional reads (a FileHandle, or a raw descriptor's). */
export interface PositionalReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

export interface BlockRange {
  first: number;
  count: number;
  blockSize: number;
  /** File length the blocks are clipped to (the source's size). */
  limit: number;
}

/**
 * Hash blocks [first, first+count) of an open file, reading several blocks per
 * read into one reused buffer. Returns the digests concatenated.
 * A block the file is too short for is hashed over the bytes that exist, which
 * the caller never compares as equal (plan.ts only compares blocks both sides hold).
 */
export async function hashFileBlocks(
  fh: PositionalReader,
  range: BlockRange,
  method: string,
  scratch?: Buffer,
): Promise<Buffer> {
  const hasher = await createBlockHasher(method);
  const { first, count, blockSize, limit } = range;
  const perRead = Math.max(1, Math.floor(READ_CHUNK_BYTES / blockSize));
  const bufBytes = perRead * blockSize;
  const buf = scratch && scratch.length >= bufBytes ? scratch : Buffer.allocUnsafe(bufBytes);
  const parts: Uint8Array[] = [];
  let i = first;
  const end = first + count;
  while (i < end) {
    const n = Math.min(perRead, end - i);
    const start = i * blockSize;
    const want = Math.max(0, Math.min(n * blockSize, limit - start));
    const got = await readFully(fh, buf, want, start);
    for (let k = 0; k < n; k++) {
      const s = Math.min(k * blockSize, got);
      const e = Math.min(k * blockSize + blockSize, got);
      parts.push(hashBlock(hasher, buf.subarray(s, e)));
    }
    i += n;
  }
  return Buffer.concat(parts);
}

/**
 * One block's digest. An all-zero block (a sparse image's holes, most of it) costs a
 * memcmp, several times cheaper than any hash, and gets the zero digest for its length.
 */
export function hashBlock(hasher: BlockHasher, block: Uint8Array): Uint8Array {
  return isAllZero(block) ? zeroDigest(hasher, block.length) : hasher(block);
}

/**
 * The digest of each `unit` bytes of `data` (the last one shorter at the end), concatenated:
 * the same digests a hash request would return for these blocks (zero blocks included).
 */
export function unitDigests(data: Buffer, unit: number, hasher: BlockHasher): Buffer {
  const parts: Uint8Array[] = [];
  for (let at = 0; at < data.length; at += unit) parts.push(hashBlock(hasher, data.subarray(at, Math.min(data.length, at + unit))));
  return Buffer.concat(parts);
}

/** The digest of an all-zero block of `len` bytes, computed once per hasher and length (a file has at most two). */
const zeroDigests = new WeakMap<BlockHasher, Map<number, Uint8Array>>();
export function zeroDigest(hasher: BlockHasher, len: number): Uint8Array {
  let byLen = zeroDigests.get(hasher);
  if (!byLen) zeroDigests.set(hasher, (byLen = new Map()));
  let d = byLen.get(len);
  if (!d) byLen.set(len, (d = Uint8Array.from(hasher(Buffer.alloc(len)))));
  return d;
}

/** Read up to `length` bytes at `position`, looping over short reads; stops at EOF. */
export async function readFully(fh: PositionalReader, buf: Buffer, length: number, position: number): Promise<number> {
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
}

/** Whole-file strong digest of bytes [0, limit). */
export async function digestFile(fh: PositionalReader, method: string, limit: number, scratch?: Buffer): Promise<Buffer> {
  const h = createHash(method);
  const buf = scratch && scratch.length >= READ_CHUNK_BYTES ? scratch : alignedBuffer(READ_CHUNK_BYTES);
  let pos = 0;
  while (pos < limit) {
    const got = await readFully(fh, buf, Math.min(buf.length, limit - pos), pos);
    if (got === 0) break;
    h.update(buf.subarray(0, got));
    pos += got;
  }
  return h.digest();
}
