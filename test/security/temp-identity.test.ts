/**
 * Threat: in a directory another user owns, they can rename our temp file away and put
 * their own file at its name while a run is in progress. Rule pinned: the CLI's own
 * side (the target of a pull, hashed in worker threads) hashes and digests the file it
 * holds open, never whatever the name means now, and the commit refuses to rename a
 * file that is not the one written; the old target stays as it was. (Here root does
 * the swap, standing in for the other user: the point is what the run reads and renames.)
 */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { LocalHost } from '../../src/hosts/local-host.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { seededBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-temp-identity-')));
afterAll(() => cleanup?.());

const BS = 64 * 1024;
const SIZE = 8 * BS;

it('hashes and digests come from the temp file we hold, and the commit refuses a swapped name', async () => {
  const dst = join(dir, 'target.bin');
  writeSeededFile(dst, SIZE, 51);
  const old = sha256File(dst);
  const ours = seededBytes(52, SIZE);
  const reference = join(dir, 'reference.bin');
  writeFileSync(reference, ours);

  const temp = join(dir, '.target.bin.pdiffcopy-tmp');
  const target = new LocalHost(2);
  const ref = new LocalHost(1);
  try {
    await target.open({ path: dst, role: 'target', create: true, lock: true, atomic: true });
    await target.write(0, [ours]);
    await target.fsync();
    // Someone moves our temp file away and puts a file of theirs at its name.
    renameSync(temp, `${temp}.moved`);
    writeFileSync(temp, Buffer.alloc(SIZE, 0x41));

    await ref.open({ path: reference, role: 'source' });
    const range = { first: 0, count: SIZE / BS, blockSize: BS, limit: SIZE };
    expect((await target.hash(range, 'xxh64')).equals(await ref.hash(range, 'xxh64')), 'block hashes of the file we wrote').toBe(true);
    expect((await target.digest('sha256', SIZE)).equals(await ref.digest('sha256', SIZE)), 'digest of the file we wrote').toBe(true);

    const err = await target.commit(SIZE).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(PdcError);
    expect((err as PdcError).code).toBe('TARGET_CHANGED');
    expect((err as PdcError).message).toMatch(/no longer the file this run wrote.*the target is unchanged/);
    expect(sha256File(dst), 'old target byte-identical').toBe(old);
    expect(readFileSync(temp).equals(Buffer.alloc(SIZE, 0x41)), 'their file is left as it was').toBe(true);
  } finally {
    await Promise.all([target.close(), ref.close()]);
  }
});
