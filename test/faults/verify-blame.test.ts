/**
 * Who is blamed when a written block reads back different: the source (it changed
 * after the block was read: SOURCE_CHANGED, exit 3) or the target (it stored other
 * bytes than it was sent: VERIFY_FAILED, exit 5). Engine level, real files on two
 * LocalHosts; a wrapper makes the target "disk" store one wrong byte, or rewrites
 * the source right after a block was read. Both in delta and in whole-file mode.
 */
import { openSync, closeSync, writeSync, copyFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncFile } from '../../src/engine/sync.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { expectSameBytes, mutateBlocks, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { hostWith } from '../support/hosts.js';

const BS = 64 * 1024;
const SIZE = 40 * BS + 123;
/** The block the faults hit (inside the first transfer run). */
const VICTIM = 3;

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-verify-blame-')));
afterAll(() => cleanup?.());

/** A target whose disk stores the victim block with its first byte flipped. */
function corruptingTarget(host: FileHost): FileHost {
  return hostWith(host, {
    write: (offset, buffers) => {
      const at = VICTIM * BS - offset;
      const bytes = Buffer.concat(buffers);
      if (at >= 0 && at < bytes.length) bytes[at] ^= 0xff;
      return host.write(offset, [bytes]);
    },
  });
}

/** A source that is rewritten (victim block, same size) right after the run holding it was read. */
function changingSource(host: FileHost, path: string): FileHost {
  let done = false;
  return hostWith(host, {
    read: async (offset, length) => {
      const chunk = await host.read(offset, length);
      if (!done && offset <= VICTIM * BS && VICTIM * BS < offset + length) {
        done = true;
        const fd = openSync(path, 'r+');
        writeSync(fd, Buffer.alloc(BS, 0x5a), 0, BS, VICTIM * BS);
        closeSync(fd);
      }
      return chunk;
    },
  });
}

async function syncWith(mode: 'delta' | 'whole-file', src: string, dst: string, fault: 'source' | 'target'): Promise<unknown> {
  const source = new LocalHost(1);
  const target = new LocalHost(1);
  try {
    await syncFile({
      source: { host: fault === 'source' ? changingSource(source, src) : source, path: src },
      target: { host: fault === 'target' ? corruptingTarget(target) : target, path: dst },
      blockSize: BS,
      hashMethod: 'xxh64',
      wholeFile: mode === 'whole-file',
      dryRun: false,
      verify: false,
      concurrency: 2,
      emit: () => undefined,
    });
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

describe.each(['delta', 'whole-file'] as const)('%s mode', (mode) => {
  it('a target that stores a wrong byte: VERIFY_FAILED (exit 5)', async () => {
    const src = join(dir, `${mode}-t-src`);
    const dst = join(dir, `${mode}-t-dst`);
    writeSeededFile(src, SIZE, 1);
    copyFileSync(src, dst);
    mutateBlocks(dst, BS, [VICTIM], 2); // delta mode sends the victim block too
    const e = await syncWith(mode, src, dst, 'target');
    expect(e).toBeInstanceOf(PdcError);
    expect((e as PdcError).code).toBe('VERIFY_FAILED');
    expect((e as PdcError).exitCode).toBe(5);
    expect((e as PdcError).message).toMatch(new RegExp(`block ${VICTIM}\\b`));
  });

  it('a source rewritten after its block was read: SOURCE_CHANGED (exit 3); a rerun repairs the target', async () => {
    const src = join(dir, `${mode}-s-src`);
    const dst = join(dir, `${mode}-s-dst`);
    writeSeededFile(src, SIZE, 3);
    writeSeededFile(dst, SIZE, 4);
    const e = await syncWith(mode, src, dst, 'source');
    expect(e).toBeInstanceOf(PdcError);
    expect((e as PdcError).code).toBe('SOURCE_CHANGED');
    expect((e as PdcError).exitCode).toBe(3);

    const source = new LocalHost(1);
    const target = new LocalHost(1);
    try {
      const s = await syncFile({
        source: { host: source, path: src },
        target: { host: target, path: dst },
        blockSize: BS,
        hashMethod: 'xxh64',
        wholeFile: mode === 'whole-file',
        dryRun: false,
        verify: true,
        concurrency: 2,
        emit: () => undefined,
      });
      expect(s.verified).toBe('sha256');
    } finally {
      await Promise.all([source.close(), target.close()]);
    }
    expectSameBytes(dst, src);
    expect(sha256File(dst)).toBe(sha256File(src));
  });
});
