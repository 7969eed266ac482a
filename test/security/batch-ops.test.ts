/**
 * readfiles / writefiles (small files of a tree, many per request) keep every rule of
 * the one-file path, file by file: nothing outside the tree, no write through a link
 * planted where a file of ours is expected (another user's link refused), no source
 * read through a link or from a FIFO, every file verified after fsync, a locked
 * target left alone; one file's refusal is its own and the others are written.
 * Through the agent's dispatcher, as a client sends them.
 */
import { chmodSync, chownSync, existsSync, lstatSync, mkdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { TargetLock } from '../../src/fileops/lock.js';
import { createBlockHasher } from '../../src/hash/methods.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import type { ReadFilesResult, WriteFilesArgs, WriteFilesResult } from '../../src/protocol/messages.js';
import { MAX_BATCH_BYTES, MAX_BATCH_FILES, readResult } from '../../src/protocol/ops.js';
import { WithPayload } from '../../src/protocol/rpc.js';
import { seededBytes, tempDir } from '../support/files.js';
import { HOSTILE, hostileSkipReason } from '../support/hostile-user.js';

let dir: string;
let cleanup: () => void;
let tree: string;
let outside: string;
const VICTIM = Buffer.from('keep me\n');
beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-batch-ops-'));
  tree = join(dir, 'tree');
  outside = join(dir, 'outside');
  mkdirSync(tree);
  mkdirSync(outside);
  writeFileSync(join(outside, 'precious'), VICTIM, { mode: 0o600 });
  symlinkSync(outside, join(tree, 'planted-dir'));
});
afterAll(() => cleanup?.());

type Call = (op: string, args: unknown, payload?: Buffer[]) => Promise<unknown>;
async function agent(): Promise<Call> {
  const call = createDispatcher();
  await call('hello', { protocol: PROTOCOL_VERSION, client: 'test' }, undefined);
  return (op, args, payload) => Promise.resolve(call(op, args, payload));
}

const sha256 = await createBlockHasher('sha256');

/** A writefiles request for these files (name -> bytes) below `tree`. */
function writeArgs(files: Array<[string, Buffer]>, meta?: { mtimeMs: number; mode: number }): [WriteFilesArgs, Buffer[]] {
  return [
    {
      root: tree,
      method: 'sha256',
      files: files.map(([name, data]) => ({ path: name.startsWith('/') ? name : join(tree, name), size: data.length, hash: sha256(data), mode: 0o640, ...(meta ? { meta } : {}) })),
    },
    files.map(([, data]) => data),
  ];
}

async function write(call: Call, files: Array<[string, Buffer]>, meta?: { mtimeMs: number; mode: number }): Promise<WriteFilesResult['files']> {
  const [args, payload] = writeArgs(files, meta);
  return ((await call('writefiles', args, payload)) as WriteFilesResult).files;
}

const codes = (r: Array<{ error?: { code: string } }>) => r.map((f) => f.error?.code ?? 'ok');

describe('writefiles', () => {
  it('writes each file, verified, with its metadata; refusals stay in their own slots', async () => {
    const call = await agent();
    const a = seededBytes(1, 5000);
    const b = seededBytes(2, 70_000);
    const r = await write(
      call,
      [
        ['a', a],
        ['../outside/precious', seededBytes(3, 10)],
        ['planted-dir/precious', seededBytes(4, 10)],
        [join(outside, 'precious'), seededBytes(5, 10)],
        ['b', b],
      ],
      { mtimeMs: Date.UTC(2020, 0, 2), mode: 0o604 },
    );
    expect(codes(r)).toEqual(['ok', 'TARGET_OUTSIDE_TREE', 'TARGET_NOT_REGULAR', 'TARGET_OUTSIDE_TREE', 'ok']);
    expect(readFileSync(join(tree, 'a')).equals(a)).toBe(true);
    expect(readFileSync(join(tree, 'b')).equals(b)).toBe(true);
    expect(statSync(join(tree, 'b')).mode & 0o7777).toBe(0o604);
    expect(statSync(join(tree, 'b')).mtimeMs).toBe(Date.UTC(2020, 0, 2));
    expect(r[0]!.created).toBe(true);
    expect(readFileSync(join(outside, 'precious')).equals(VICTIM)).toBe(true);
    expect(statSync(join(outside, 'precious')).mode & 0o7777).toBe(0o600);
  });

  it('an existing file is rewritten in place and cut to size; a wrong hash is VERIFY_FAILED for that file alone', async () => {
    const call = await agent();
    writeFileSync(join(tree, 'shrinks'), seededBytes(6, 9000));
    const ino = statSync(join(tree, 'shrinks')).ino;
    const data = seededBytes(7, 1000);
    const [args, payload] = writeArgs([
      ['shrinks', data],
      ['bad-hash', seededBytes(8, 100)],
    ]);
    args.files[1]!.hash = sha256(seededBytes(9, 100));
    const r = ((await call('writefiles', args, payload)) as WriteFilesResult).files;
    expect(codes(r)).toEqual(['ok', 'VERIFY_FAILED']);
    expect(r[0]!.created).toBe(false);
    expect(statSync(join(tree, 'shrinks')).ino).toBe(ino);
    expect(readFileSync(join(tree, 'shrinks')).equals(data)).toBe(true);
  });

  it("our temp file an earlier --atomic run left at a file's name is removed once that file is written; another file's stays", async () => {
    const call = await agent();
    const stale = join(tree, '.with-temp.pdiffcopy-tmp');
    const other = join(tree, '.not-written.pdiffcopy-tmp');
    writeFileSync(stale, 'half', { mode: 0o600 });
    writeFileSync(other, 'half', { mode: 0o600 });
    const [r] = await write(call, [['with-temp', seededBytes(30, 100)]]);
    expect(r).toEqual({ created: true, removed: [{ path: stale, size: 4 }] });
    expect(existsSync(stale)).toBe(false);
    expect(existsSync(other)).toBe(true);
  });

  it('a file another run holds locked is left alone', async () => {
    const call = await agent();
    writeFileSync(join(tree, 'locked'), 'old');
    const lock = new TargetLock(join(tree, 'locked'));
    lock.acquire('locked');
    try {
      expect(codes(await write(call, [['locked', seededBytes(10, 50)], ['free', seededBytes(11, 50)]]))).toEqual(['TARGET_LOCKED', 'ok']);
      expect(readFileSync(join(tree, 'locked'), 'utf8')).toBe('old');
    } finally {
      lock.release();
    }
  });

  it.skipIf(!!hostileSkipReason)("another user's symlink at a file's name is refused, never written through", async () => {
    const call = await agent();
    const link = join(tree, 'hostile-link');
    symlinkSync(join(outside, 'precious'), link);
    chownSync(join(tree), 0, 0);
    execFileSync('chown', ['-h', `${HOSTILE!.uid}:${HOSTILE!.gid}`, link]);
    const [r] = await write(call, [['hostile-link', seededBytes(12, 10)]]);
    expect(r!.error?.code).toMatch(/^TARGET_/);
    expect(readFileSync(join(outside, 'precious')).equals(VICTIM)).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('a payload that does not match the sizes, or too many files or bytes, is a bad request', async () => {
    const call = await agent();
    const [args] = writeArgs([['x', seededBytes(13, 10)]]);
    await expect(call('writefiles', args, [Buffer.alloc(9)])).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    const many = { ...args, files: Array.from({ length: MAX_BATCH_FILES + 1 }, (_, i) => ({ ...args.files[0]!, path: join(tree, `m${i}`) })) };
    await expect(call('writefiles', many, [])).rejects.toBeInstanceOf(PdcError);
    const big = { ...args, files: [{ ...args.files[0]!, size: MAX_BATCH_BYTES }, { ...args.files[0]!, size: 1 }] };
    await expect(call('writefiles', big, [])).rejects.toMatchObject({ code: 'PROTOCOL_ERROR' });
    expect(existsSync(join(tree, 'x'))).toBe(false);
  });
});

describe('long paths', () => {
  it('an error about a path near PATH_MAX still fits its slot of the answer (the client reads it through the op table)', async () => {
    const call = await agent();
    // A link loop early in the path: the errno's own text names the whole path a second time.
    symlinkSync('loop', join(dir, 'loop'));
    const long = `${dir}/loop/${'x/'.repeat(2100)}`.slice(0, 4094);
    const r = (await call('readfiles', { files: [{ path: long, size: 3 }] })) as WithPayload;
    expect(Buffer.byteLength((r.result as ReadFilesResult).files[0]!.error!.message)).toBeGreaterThan(4000);
    const result = readResult('readfiles', r.result, false);
    expect(result.files[0]!.error?.code).toMatch(/^SOURCE_/);
    const w = (await call('writefiles', { root: dir, method: 'sha256', files: [{ path: long, size: 0, hash: sha256(Buffer.alloc(0)) }] }, [])) as WriteFilesResult;
    expect(readResult('writefiles', w, false).files[0]!.error?.code).toMatch(/^TARGET_/);
  });
});

describe('readfiles', () => {
  it('reads each regular file whole; a link, a FIFO, a changed size or a missing file fail alone', async () => {
    const call = await agent();
    const src = join(dir, 'src');
    mkdirSync(src);
    const one = seededBytes(20, 3000);
    const two = seededBytes(21, 40_000);
    writeFileSync(join(src, 'one'), one);
    writeFileSync(join(src, 'two'), two);
    symlinkSync(join(outside, 'precious'), join(src, 'link'));
    execFileSync('mkfifo', [join(src, 'fifo')]);
    chmodSync(join(src, 'fifo'), 0o644);
    const files = [
      { path: join(src, 'one'), size: one.length },
      { path: join(src, 'link'), size: VICTIM.length },
      { path: join(src, 'fifo'), size: 0 },
      { path: join(src, 'two'), size: two.length + 1 },
      { path: join(src, 'gone'), size: 5 },
      { path: join(src, 'two'), size: two.length },
    ];
    const r = (await call('readfiles', { files })) as WithPayload;
    expect(r).toBeInstanceOf(WithPayload);
    const result = r.result as ReadFilesResult;
    expect(codes(result.files)).toEqual(['ok', 'SOURCE_NOT_REGULAR', 'SOURCE_NOT_REGULAR', 'SOURCE_CHANGED', 'SOURCE_NOT_FOUND', 'ok']);
    const bytes = Buffer.concat(r.payload as Buffer[]);
    expect(bytes.equals(Buffer.concat([one, two]))).toBe(true);
    expect(result.files[0]!.mtimeMs).toBe(statSync(join(src, 'one')).mtimeMs);
  });
});
