/**
 * Block hashes of a file with all-zero blocks: the zero shortcut (a memcmp and a cached
 * digest) gives exactly the digests hashing the bytes gives, for every method and length.
 */
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { hashBlock, hashFileBlocks } from '../../src/hash/file-hash.js';
import { createBlockHasher } from '../../src/hash/methods.js';
import { tempDir } from '../support/files.js';

const { dir, cleanup } = tempDir();
afterAll(() => cleanup());

const BS = 4096;
/** zero, data, zero, data whose last byte only is non-zero, zero, a short all-zero tail. */
function blocks(): Buffer[] {
  const data = Buffer.alloc(BS, 0x5a);
  const lastByte = Buffer.alloc(BS);
  lastByte[BS - 1] = 1;
  return [Buffer.alloc(BS), data, Buffer.alloc(BS), lastByte, Buffer.alloc(BS), Buffer.alloc(17)];
}

it.each(['xxh64', 'sha1', 'md5', 'sha256'])('%s: the digests of zero blocks are those of their bytes', async (method) => {
  const path = join(dir, `${method}.bin`);
  const parts = blocks();
  await writeFile(path, Buffer.concat(parts));
  const size = parts.reduce((n, b) => n + b.length, 0);
  const hasher = await createBlockHasher(method);
  const expected = Buffer.concat(parts.map((b) => Buffer.from(hasher(b))));
  const fh = await open(path, 'r');
  try {
    expect((await hashFileBlocks(fh, { first: 0, count: parts.length, blockSize: BS, limit: size }, method)).equals(expected)).toBe(true);
  } finally {
    await fh.close();
  }
  for (const b of parts) expect(Buffer.from(hashBlock(hasher, b)).equals(Buffer.from(hasher(b)))).toBe(true);
});
