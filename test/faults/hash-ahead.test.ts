/**
 * Hashing a local file ahead (while the other side connects) must never answer with
 * hashes of other bytes than the engine would read: not after the file changed before
 * it was opened, not for blocks the run itself wrote (the read-back of written blocks), not
 * through a symlink. Engine level, real files on two LocalHosts.
 */
import { copyFileSync, symlinkSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashAheadFile } from '../../src/cli/open-hosts.js';
import { HASH_CHUNK_BYTES } from '../../src/engine/plan.js';
import { plainSync } from '../support/hosts.js';
import { syncFile } from '../../src/engine/sync.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import type { PdcError } from '../../src/errors/pdc-error.js';
import { expectSameBytes, mutateBlocks, tempDir, writeSeededFile } from '../support/files.js';

const BS = 1024 * 1024;
const SIZE = 4 * HASH_CHUNK_BYTES + 777;
const BLOCKS = Math.ceil(SIZE / BS);

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-hash-ahead-')));
afterAll(() => cleanup?.());

/** Sync src to dst after hashing `ahead` (a side's path) ahead on that side's host; returns the answers used. */
async function syncAfterHashAhead(src: string, dst: string, ahead: { side: 'source' | 'target'; path: string; before?: () => void }) {
  const source = new LocalHost(1);
  const target = new LocalHost(1);
  const host = ahead.side === 'source' ? source : target;
  try {
    await host.hashAhead(ahead.path, ahead.side, BS, 'xxh64');
    ahead.before?.();
    const summary = await syncFile(plainSync(source, src, target, dst, { blockSize: BS }));
    return { summary, used: host.hashedAhead };
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

describe('hashing ahead', () => {
  it('an unchanged source: its hash requests are answered from what was hashed ahead', async () => {
    const src = join(dir, 'same-src');
    const dst = join(dir, 'same-dst');
    writeSeededFile(src, SIZE, 1);
    copyFileSync(src, dst);
    mutateBlocks(dst, BS, [5, 40], 2);
    const r = await syncAfterHashAhead(src, dst, { side: 'source', path: src });
    expectSameBytes(dst, src);
    expect(r.used).toBe(5); // every chunk
    expect(r.summary.blocksChanged).toBe(2);
  });

  it('a source changed after it was hashed ahead: nothing hashed ahead is used, the change is copied', async () => {
    const src = join(dir, 'changed-src');
    const dst = join(dir, 'changed-dst');
    writeSeededFile(src, SIZE, 3);
    copyFileSync(src, dst);
    const r = await syncAfterHashAhead(src, dst, {
      side: 'source',
      path: src,
      before: () => {
        mutateBlocks(src, BS, [7, 50], 4);
        utimesSync(src, new Date(), new Date(Date.now() + 5000)); // a distinct mtime, whatever the clock's grain
      },
    });
    expectSameBytes(dst, src);
    expect(r.used).toBe(0);
    expect(r.summary.blocksChanged).toBe(2);
  });

  it('a target hashed ahead and then rewritten by the run: the read-back is hashed again (no false VERIFY_FAILED)', async () => {
    const src = join(dir, 'rewrite-src');
    const dst = join(dir, 'rewrite-dst');
    writeSeededFile(src, SIZE, 5);
    writeSeededFile(dst, SIZE, 6);
    const r = await syncAfterHashAhead(src, dst, { side: 'target', path: dst });
    expectSameBytes(dst, src);
    expect(r.summary.verified).toBe('blocks');
    expect(r.summary.blocksChanged).toBe(BLOCKS);
  });

  it('a symlink is not followed: nothing is hashed ahead, the sync still runs', async () => {
    const src = join(dir, 'link-src');
    const link = join(dir, 'link');
    const dst = join(dir, 'link-dst');
    writeSeededFile(src, SIZE, 7);
    copyFileSync(src, dst);
    symlinkSync(src, link);
    const r = await syncAfterHashAhead(link, dst, { side: 'source', path: link });
    expectSameBytes(dst, src);
    expect(r.used).toBe(0);
  });
});

/** A LocalHost that counts the engine's streaming() calls. */
class WatchedHost extends LocalHost {
  streamingCalls = 0;
  override streaming(): void {
    this.streamingCalls++;
    super.streaming();
  }
}

describe('hashing ahead stops when the run streams', () => {
  it('a run that streams tells both hosts once; one that only compares never does', async () => {
    for (const changed of ['all', 'two blocks'] as const) {
      const src = join(dir, `stream-src-${changed}`);
      const dst = join(dir, `stream-dst-${changed}`);
      writeSeededFile(src, SIZE, 11);
      if (changed === 'all') writeSeededFile(dst, SIZE, 12);
      else {
        copyFileSync(src, dst);
        mutateBlocks(dst, BS, [3, 30], 13);
      }
      const source = new WatchedHost(1);
      const target = new WatchedHost(1);
      try {
        // Without refinement (whose judging keeps comparing for a while) a file that differs
        // everywhere streams from the first chunk whose comparison came back.
        const summary = await syncFile(plainSync(source, src, target, dst, { blockSize: BS, refineLevels: [] }));
        expectSameBytes(dst, src);
        const streamed = summary.profile!.chunks.streamed;
        if (changed === 'all') expect(streamed).toBeGreaterThan(0);
        else expect(streamed).toBe(0);
        const calls = streamed > 0 ? 1 : 0;
        expect([source.streamingCalls, target.streamingCalls]).toEqual([calls, calls]);
      } finally {
        await Promise.all([source.close(), target.close()]);
      }
    }
  });

  it('halted before its first chunk, it hashes none; halted after the last, its answers are still used', async () => {
    const src = join(dir, 'halt-src');
    const dst = join(dir, 'halt-dst');
    writeSeededFile(src, SIZE, 14);
    copyFileSync(src, dst);
    mutateBlocks(dst, BS, [9], 15);
    for (const when of ['before', 'after'] as const) {
      const source = new LocalHost(1);
      const target = new LocalHost(1);
      try {
        const ahead = source.hashAhead(src, 'source', BS, 'xxh64');
        if (when === 'before') source.streaming();
        await ahead;
        if (when === 'after') source.streaming();
        expect(source.chunksHashedAhead).toBe(when === 'before' ? 0 : 5);
        await syncFile(plainSync(source, src, target, dst, { blockSize: BS }));
        expectSameBytes(dst, src);
        expect(source.hashedAhead).toBe(when === 'before' ? 0 : 5);
      } finally {
        await Promise.all([source.close(), target.close()]);
      }
    }
  });
});

describe('a streamed run is checked against the digests hashed ahead', () => {
  const WHOLE_SECOND = 1_700_000_000;
  /** Push src over a target that differs everywhere (so the run streams), the source hashed ahead first. */
  async function streamAfterHashAhead(name: string, before?: (src: string) => void) {
    const src = join(dir, `${name}-src`);
    const dst = join(dir, `${name}-dst`);
    writeSeededFile(src, SIZE, 21);
    writeSeededFile(dst, SIZE, 22);
    utimesSync(src, WHOLE_SECOND, WHOLE_SECOND); // a time that can be put back exactly
    const source = new LocalHost(1);
    const target = new LocalHost(1);
    try {
      await source.hashAhead(src, 'source', BS, 'xxh64');
      before?.(src);
      const run = syncFile(plainSync(source, src, target, dst, { blockSize: BS, refineLevels: [] }));
      const summary = await run.catch((error: PdcError) => ({ error }));
      return { src, dst, summary, digestedAhead: source.digestedAhead };
    } finally {
      await Promise.all([source.close(), target.close()]);
    }
  }

  it('the streamed runs take their digests from hashing ahead (the source is hashed once) and verify', async () => {
    const r = await streamAfterHashAhead('digested');
    expectSameBytes(r.dst, r.src);
    expect('error' in r.summary).toBe(false);
    if ('error' in r.summary) return;
    expect(r.summary.profile!.chunks.streamed).toBeGreaterThan(0);
    expect(r.summary.verified).toBe('blocks');
    expect(r.digestedAhead).toBeGreaterThan(0);
  });

  it('bytes rewritten after hashing ahead (the mtime put back, so the file looks the same) fail the read-back, which blames the source: SOURCE_CHANGED (exit 3)', async () => {
    const r = await streamAfterHashAhead('rewritten', (src) => {
      mutateBlocks(src, BS, [1], 23);
      utimesSync(src, WHOLE_SECOND, WHOLE_SECOND);
    });
    expect(r.digestedAhead).toBeGreaterThan(0);
    expect('error' in r.summary && r.summary.error.code).toBe('SOURCE_CHANGED');
  });
});

describe('hashAheadFile', () => {
  const local = (path: string) => ({ kind: 'local' as const, path });
  const remote = (path: string) => ({ kind: 'remote' as const, host: 'h', path, display: `h:${path}` });
  const base = { recursive: false, wholeFile: false, atomic: false };
  it.each([
    ['push: the source', { ...base, sources: [local('/a')], target: remote('/b') }, { path: '/a', role: 'source' }],
    ['local copy: the source', { ...base, sources: [local('/a')], target: local('/b') }, { path: '/a', role: 'source' }],
    ['pull: the target', { ...base, sources: [remote('/a')], target: local('/b') }, { path: '/b', role: 'target' }],
    ['pull --atomic: nothing (a new file is built)', { ...base, atomic: true, sources: [remote('/a')], target: local('/b') }, undefined],
    ['-W: nothing (nothing is compared)', { ...base, wholeFile: true, sources: [local('/a')], target: remote('/b') }, undefined],
    ['-r: nothing', { ...base, recursive: true, sources: [local('/a')], target: remote('/b') }, undefined],
    ['several sources: nothing', { ...base, sources: [local('/a'), local('/c')], target: remote('/b') }, undefined],
  ])('%s', (_name, cfg, want) => {
    expect(hashAheadFile(cfg)).toEqual(want);
  });
});
