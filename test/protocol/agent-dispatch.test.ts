import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, statfsSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import xxhash from 'xxhash-wasm';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError } from '../../src/errors/index.js';
import { FileService } from '../../src/fileops/file-service.js';
import { joinPayload } from '../../src/protocol/framing.js';
import { MAX_BLOCK_SIZE, MAX_HASH_BLOCKS, MAX_IO_BYTES, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { RpcClient, serveRpc } from '../../src/protocol/rpc.js';

let dir: string;
let srcPath: string;
let src: Buffer;
const SIZE = 3 * 65536 + 1234; // not a multiple of any block size used

function bytesOf(seed: number, n: number): Buffer {
  const key = createHash('sha256').update(`dispatch-${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
}

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pdc-dispatch-'));
  srcPath = join(dir, 'source.bin');
  src = bytesOf(1, SIZE);
  src.copy(src, 65536, 0, 4096); // two equal blocks (0 and 16 at 4 KiB), so equal digests can be checked
  writeFileSync(srcPath, src);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Conn {
  client: RpcClient;
  files: FileService;
  fatal: Error[];
  call(op: string, args?: unknown, payload?: Buffer | Buffer[]): Promise<Record<string, unknown>>;
}
const open: Conn[] = [];
afterEach(async () => {
  for (const c of open.splice(0)) {
    await c.files.close();
    c.client.dispose();
  }
});

/** An agent (the real dispatcher on a real FileService) and a client, over in-memory pipes. */
function agent(): Conn {
  const up = new PassThrough();
  const down = new PassThrough();
  const files = new FileService();
  const fatal: Error[] = [];
  serveRpc(up, down, createDispatcher(files), (e) => fatal.push(e));
  const client = new RpcClient(down, up, 'agent');
  const c: Conn = {
    client,
    files,
    fatal,
    call: (op, args = {}, payload) => client.call(op as 'close', args as Record<string, never>, payload) as unknown as Promise<Record<string, unknown>>,
  };
  open.push(c);
  return c;
}

async function greeted(): Promise<Conn> {
  const c = agent();
  await c.call('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
  return c;
}

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PdcError);
    return (e as PdcError).code;
  }
  return 'resolved';
}

const sha = (method: string, b: Uint8Array) => createHash(method).update(b).digest();

describe('hello', () => {
  it.each(['stat', 'open', 'hash', 'read', 'write', 'close', 'nonsense'])('refuses %s before hello', async (op) => {
    const c = agent();
    expect(await codeOf(c.call(op, { path: srcPath }))).toBe('PROTOCOL_ERROR');
  });

  it('refuses another protocol version, and stays ungreeted', async () => {
    const c = agent();
    expect(await codeOf(c.call('hello', { protocol: PROTOCOL_VERSION + 1, client: 'x' }))).toBe('PROTOCOL_VERSION');
    expect(await codeOf(c.call('hello', { protocol: 'one', client: 'x' }))).toBe('PROTOCOL_ERROR');
    expect(await codeOf(c.call('stat', { path: srcPath, role: 'source' }))).toBe('PROTOCOL_ERROR');
  });

  it('answers with the protocol, the hash methods and who it is', async () => {
    const c = agent();
    const r = await c.call('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
    expect(r.protocol).toBe(PROTOCOL_VERSION);
    expect(r.hashes).toEqual(expect.arrayContaining(['xxh64', 'sha256', 'md5']));
    expect(r.pid).toBe(process.pid);
    expect(r.node).toBe(process.version);
    expect(typeof r.agent).toBe('string');
    expect((await c.call('stat', { path: srcPath, role: 'source' })).exists).toBe(true);
  });
});

describe('stat', () => {
  it('describes files, directories, missing paths and symlinks', async () => {
    const c = await greeted();
    expect(await c.call('stat', { path: srcPath, role: 'source' })).toMatchObject({ exists: true, kind: 'file', size: SIZE, symlink: false });
    expect(await c.call('stat', { path: dir, role: 'source' })).toMatchObject({ exists: true, kind: 'dir', symlink: false });
    expect(await c.call('stat', { path: join(dir, 'nope'), role: 'source' })).toMatchObject({ exists: false, kind: 'missing', size: 0 });
    expect(await c.call('stat', { path: join(srcPath, 'under-a-file'), role: 'source' })).toMatchObject({ exists: false, kind: 'missing' });
    const link = join(dir, 'link-to-source');
    symlinkSync(srcPath, link);
    expect(await c.call('stat', { path: link, role: 'source' })).toMatchObject({ exists: true, kind: 'file', size: SIZE, symlink: true });
  });

  // Each with a valid role, so that the path is what is refused (and one without a role).
  it.each<[unknown]>([
    [{ role: 'source' }],
    [{ path: '', role: 'source' }],
    [{ path: 5, role: 'source' }],
    [{ path: 'a\0b', role: 'source' }],
    [{ path: 'x'.repeat(5000), role: 'source' }],
    [{ path: '/', role: 'both' }],
    [{ path: '/' }],
    [null],
    ['str'],
  ])(
    'rejects bad args %j',
    async (args) => {
      const c = await greeted();
      expect(await codeOf(c.call('stat', args))).toBe('PROTOCOL_ERROR');
    },
  );
});

describe('space', () => {
  it('reports the free space of the file system holding the path, or of its nearest existing ancestor', async () => {
    const c = await greeted();
    const fs = statfsSync(dir);
    for (const path of [srcPath, dir, join(dir, 'missing', 'deeper', 'file'), join(srcPath, 'below-a-file')]) {
      const r = (await c.call('space', { path })) as { available: number | null };
      expect(Number.isSafeInteger(r.available), path).toBe(true);
      expect(r.available!, path).toBeGreaterThan(0);
      expect(r.available!, path).toBeLessThanOrEqual(fs.blocks * fs.bsize);
    }
  });

  it('a relative path that does not exist is answered for the working directory', async () => {
    const c = await greeted();
    const r = (await c.call('space', { path: 'no-such-dir-pdc/x' })) as { available: number | null };
    expect(r.available!).toBeGreaterThan(0);
  });
});

describe('source operations on a real file', () => {
  it('opens, hashes, reads and digests like an independent computation', async () => {
    const c = await greeted();
    const o = await c.call('open', { path: srcPath, role: 'source' });
    expect(o).toMatchObject({ size: SIZE, created: false });

    for (const [method, bs] of [
      ['sha256', 4096],
      ['md5', 65536],
      ['sha1', 1000],
    ] as const) {
      const count = Math.ceil(SIZE / bs);
      const r = await c.call('hash', { first: 0, count, blockSize: bs, limit: SIZE, method });
      const want = Buffer.concat(Array.from({ length: count }, (_, i) => sha(method, src.subarray(i * bs, Math.min(SIZE, (i + 1) * bs)))));
      expect(joinPayload(r.p as Buffer[]).equals(want), `${method}/${bs}`).toBe(true);
    }

    // a middle range, clipped at a limit below the file size
    const r2 = await c.call('hash', { first: 3, count: 4, blockSize: 4096, limit: 5 * 4096 + 10, method: 'sha256' });
    const want2 = Buffer.concat([3, 4, 5, 6].map((i) => sha('sha256', src.subarray(i * 4096, Math.min(5 * 4096 + 10, (i + 1) * 4096)))));
    expect(joinPayload(r2.p as Buffer[]).equals(want2)).toBe(true);

    // xxh64: compare with xxhash-wasm directly
    const { h64Raw } = await xxhash();
    const count = Math.ceil(SIZE / 4096);
    const r3 = joinPayload((await c.call('hash', { first: 0, count, blockSize: 4096, limit: SIZE, method: 'xxh64' })).p as Buffer[]);
    expect(r3.length).toBe(8 * count);
    for (let i = 0; i < count; i++) {
      expect(r3.readBigUInt64BE(8 * i)).toBe(h64Raw(src.subarray(i * 4096, Math.min(SIZE, (i + 1) * 4096))));
    }
    expect(r3.subarray(0, 8).equals(r3.subarray(16 * 8, 17 * 8))).toBe(true); // the two equal blocks

    // count 0: no payload at all
    const r4 = await c.call('hash', { first: 0, count: 0, blockSize: 4096, limit: SIZE, method: 'sha256' });
    expect(joinPayload(r4.p as Buffer[] | undefined).length).toBe(0);

    for (const [offset, length] of [
      [0, 100],
      [SIZE - 10, 10],
      [SIZE - 10, 1000], // short at EOF
      [12345, 65536 * 2],
      [SIZE, 10], // at EOF: nothing
      [2 ** 40, 10], // far beyond EOF, offset above 2^32
    ]) {
      const r = await c.call('read', { offset, length });
      expect(joinPayload(r.p as Buffer[] | undefined).equals(src.subarray(offset, offset + length)), `read ${offset}+${length}`).toBe(true);
    }

    // a read with its units' digests: the same digests a hash request returns, the bytes unchanged
    const xxh64Digest = (b: Uint8Array) => {
      const out = Buffer.alloc(8);
      out.writeBigUInt64BE(h64Raw(b));
      return out;
    };
    const zeroBytes = (z?: number[]) => (z ?? []).reduce((n, v, i) => (i % 2 ? n + v : n), 0);
    for (const [offset, length, unit, method] of [
      [0, SIZE, 4096, 'xxh64'],
      [12288, 3 * 4096 + 100, 4096, 'sha256'],
      [SIZE - 10, 1000, 4096, 'xxh64'], // short at EOF: one digest of the 10 bytes
    ] as const) {
      const r = await c.call('read', { offset, length, zeroUnit: unit, hash: method });
      const got = Math.min(length, SIZE - offset);
      const want = Buffer.concat(
        Array.from({ length: Math.ceil(got / unit) }, (_, i) => src.subarray(offset + i * unit, offset + Math.min(got, (i + 1) * unit))).map((b) =>
          method === 'xxh64' ? xxh64Digest(b) : sha(method, b),
        ),
      );
      expect(Buffer.from(r.digests as Uint8Array).equals(want), `read ${offset}+${length} digests`).toBe(true);
      expect(joinPayload(r.p as Buffer[] | undefined).length + zeroBytes(r.zeros as number[] | undefined)).toBe(got);
    }

    const d = await c.call('digest', { method: 'sha256', limit: SIZE });
    expect(Buffer.from(d.digest as Uint8Array).equals(sha('sha256', src))).toBe(true);
    const d2 = await c.call('digest', { method: 'md5', limit: 1000 });
    expect(Buffer.from(d2.digest as Uint8Array).equals(sha('md5', src.subarray(0, 1000)))).toBe(true);
    const d3 = await c.call('digest', { method: 'sha256', limit: 2 ** 50 }); // beyond EOF: the whole file
    expect(Buffer.from(d3.digest as Uint8Array).equals(sha('sha256', src))).toBe(true);

    expect(c.fatal).toEqual([]);
  });

  it('refuses to write, truncate or fsync through a source (read-only) without touching it', async () => {
    const c = await greeted();
    await c.call('open', { path: srcPath, role: 'source' });
    expect(await codeOf(c.call('write', { offset: 0 }, Buffer.from('xx')))).toBe('SOURCE_IO');
    expect(await codeOf(c.call('truncate', { size: 0 }))).toBe('SOURCE_IO');
    expect(readFileSync(srcPath).equals(src)).toBe(true);
  });

  it('unknown hash and digest methods are UNKNOWN_HASH_METHOD', async () => {
    const c = await greeted();
    await c.call('open', { path: srcPath, role: 'source' });
    expect(await codeOf(c.call('hash', { first: 0, count: 1, blockSize: 4096, limit: SIZE, method: 'rot13' }))).toBe('UNKNOWN_HASH_METHOD');
    expect(await codeOf(c.call('digest', { method: 'rot13', limit: SIZE }))).toBe('UNKNOWN_HASH_METHOD');
  });

  it('file operations before open are PROTOCOL_ERROR', async () => {
    const c = await greeted();
    for (const [op, args] of [
      ['read', { offset: 0, length: 1 }],
      ['hash', { first: 0, count: 1, blockSize: 1, limit: 1, method: 'sha256' }],
      ['write', { offset: 0 }],
      ['truncate', { size: 0 }],
      ['fsync', {}],
      ['digest', { method: 'sha256', limit: 1 }],
    ] as const) {
      expect(await codeOf(c.call(op, args)), op).toBe('PROTOCOL_ERROR');
    }
    expect(await c.call('close')).toEqual({}); // closing nothing is fine
  });
});

describe('target operations on a real file', () => {
  it('creates missing parents, writes (also above 4 GiB), truncates, fsyncs and digests', async () => {
    const c = await greeted();
    const path = join(dir, 'new', 'deeper', 'target.bin');
    const o = await c.call('open', { path, role: 'target', create: true });
    expect(o).toMatchObject({ size: 0, created: true });
    expect(statSync(path).isFile()).toBe(true);

    const a = bytesOf(2, 70_000);
    await c.call('write', { offset: 0 }, [a.subarray(0, 1), a.subarray(1, 50_000), a.subarray(50_000)]);
    await c.call('write', { offset: 10 }, Buffer.from('hello'));
    const want = Buffer.from(a);
    Buffer.from('hello').copy(want, 10);
    expect(readFileSync(path).equals(want)).toBe(true);

    const far = 2 ** 32 + 4096; // sparse: costs no disk space
    await c.call('write', { offset: far }, Buffer.from('far away'));
    expect(statSync(path).size).toBe(far + 8);
    expect(Buffer.from(joinPayload((await c.call('read', { offset: far, length: 100 })).p as Buffer[])).toString()).toBe('far away');

    await c.call('truncate', { size: 1000 });
    await c.call('fsync');
    expect(readFileSync(path).equals(want.subarray(0, 1000))).toBe(true);
    const d = await c.call('digest', { method: 'sha256', limit: 1000 });
    expect(Buffer.from(d.digest as Uint8Array).equals(sha('sha256', want.subarray(0, 1000)))).toBe(true);

    // reopening the existing file: not created, size kept
    expect(await c.call('open', { path, role: 'target', create: true })).toMatchObject({ size: 1000, created: false });
    await c.call('close');
  });

  it('a missing target without create is refused and nothing is created (only the first agent creates; a follower finds it gone)', async () => {
    const c = await greeted();
    expect(await codeOf(c.call('open', { path: join(dir, 'absent', 'x'), role: 'target' }))).toBe('TARGET_CHANGED');
    expect(existsSync(join(dir, 'absent'))).toBe(false);
  });

  it('write:false opens the target read-only', async () => {
    const path = join(dir, 'ro-target.bin');
    writeFileSync(path, 'abc');
    const c = await greeted();
    expect(await c.call('open', { path, role: 'target', write: false })).toMatchObject({ size: 3 });
    expect(await codeOf(c.call('write', { offset: 0 }, Buffer.from('X')))).toBe('TARGET_IO');
    expect(readFileSync(path, 'utf8')).toBe('abc');
  });

  it('a dangling symlink as target fails cleanly instead of looping', async () => {
    const link = join(dir, 'dangling');
    symlinkSync(join(dir, 'does-not-exist', 'x'), link);
    const c = await greeted();
    const code = await Promise.race([
      codeOf(c.call('open', { path: link, role: 'target', create: true })),
      new Promise<string>((resolve) => setTimeout(() => resolve('still running after 5 s'), 5000)),
    ]);
    expect(code).toMatch(/^TARGET_/);
  });
});

describe('concurrent opens on one stream', () => {
  /** Open descriptors of this process that point at `path`. */
  const fdsOn = (path: string) =>
    readdirSync('/proc/self/fd').filter((fd) => {
      try {
        return readlinkSync(`/proc/self/fd/${fd}`) === path;
      } catch {
        return false;
      }
    }).length;

  it('leave exactly one file open, and close closes it (no leaked descriptors or locks)', async () => {
    const path = join(dir, 'concurrent.bin');
    writeFileSync(path, 'abc');
    const c = await greeted();
    const results = await Promise.allSettled(
      Array.from({ length: 8 }, (_, i) => c.call('open', { path: i % 2 ? path : srcPath, role: i % 2 ? 'target' : 'source', lock: true })),
    );
    expect(results.every((r) => r.status === 'fulfilled')).toBe(true);
    expect(fdsOn(path) + fdsOn(srcPath)).toBe(1);
    await c.call('close');
    expect(fdsOn(path) + fdsOn(srcPath)).toBe(0);
    // no lock left behind: another stream may lock the target now
    const other = await greeted();
    expect(await other.call('open', { path, role: 'target', lock: true })).toMatchObject({ size: 3 });
  });
});

describe('not regular files', () => {
  it.each<['source' | 'target', string]>([
    ['source', 'SOURCE_NOT_REGULAR'],
    ['target', 'TARGET_NOT_REGULAR'],
  ])('a directory as %s is %s', async (role, want) => {
    const c = await greeted();
    expect(await codeOf(c.call('open', { path: dir, role, create: true }))).toBe(want);
  });

  it.each<['source' | 'target', string]>([
    ['source', 'SOURCE_NOT_REGULAR'],
    ['target', 'TARGET_NOT_REGULAR'],
  ])('a FIFO as %s is %s, without hanging', async (role, want) => {
    const fifo = join(dir, `fifo-${role}`);
    execFileSync('mkfifo', [fifo]);
    const c = await greeted();
    expect(await codeOf(c.call('open', { path: fifo, role, create: true }))).toBe(want);
  });

  it('a missing source is SOURCE_NOT_FOUND', async () => {
    const c = await greeted();
    expect(await codeOf(c.call('open', { path: join(dir, 'missing'), role: 'source' }))).toBe('SOURCE_NOT_FOUND');
    expect(await codeOf(c.call('open', { path: join(srcPath, 'below-a-file'), role: 'source' }))).toBe('SOURCE_NOT_FOUND');
  });

  it('a bad role is PROTOCOL_ERROR', async () => {
    const c = await greeted();
    expect(await codeOf(c.call('open', { path: srcPath, role: 'both' }))).toBe('PROTOCOL_ERROR');
  });
});

describe('target lock', () => {
  it('a second locked open of the same target is TARGET_LOCKED until the first closes', async () => {
    const path = join(dir, 'locked.bin');
    writeFileSync(path, 'x');
    const a = await greeted();
    const b = await greeted();
    await a.call('open', { path, role: 'target', lock: true });
    // The lock is pid-based and this process is alive, so a second run is refused.
    expect(await codeOf(b.call('open', { path, role: 'target', lock: true }))).toBe('TARGET_LOCKED');
    // Unlocked and read-only opens are not affected.
    expect(await b.call('open', { path, role: 'target', write: false, lock: true })).toMatchObject({ size: 1 });
    await a.call('close');
    expect(await b.call('open', { path, role: 'target', lock: true })).toMatchObject({ size: 1 });
    // and b's lock is released when b opens something else
    await b.call('open', { path: srcPath, role: 'source' });
    expect(await a.call('open', { path, role: 'target', lock: true })).toMatchObject({ size: 1 });
  });
});

describe('argument limits (checked before anything is allocated)', () => {
  const HASH = { first: 0, count: 1, blockSize: 4096, limit: SIZE, method: 'sha256' };
  it.each<[string, Record<string, unknown>]>([
    ['hash count above MAX_HASH_BLOCKS', { ...HASH, count: MAX_HASH_BLOCKS + 1 }],
    ['hash count 2^53', { ...HASH, count: 2 ** 53 }],
    ['hash blockSize above MAX_BLOCK_SIZE', { ...HASH, blockSize: MAX_BLOCK_SIZE + 1 }],
    ['hash blockSize 0', { ...HASH, blockSize: 0 }],
    ['hash negative first', { ...HASH, first: -1 }],
    ['hash float first', { ...HASH, first: 1.5 }],
    ['hash string count', { ...HASH, count: '1' }],
    ['hash missing method', { ...HASH, method: undefined }],
    ['hash NaN limit', { ...HASH, limit: NaN }],
    ['hash Infinity limit', { ...HASH, limit: Infinity }],
  ])('%s -> PROTOCOL_ERROR', async (_name, args) => {
    const c = await greeted();
    await c.call('open', { path: srcPath, role: 'source' });
    const spy = vi.spyOn(c.files, 'hash');
    expect(await codeOf(c.call('hash', args))).toBe('PROTOCOL_ERROR');
    expect(spy).not.toHaveBeenCalled();
  });

  it.each<[string, Record<string, unknown>]>([
    ['read length above MAX_IO_BYTES', { offset: 0, length: MAX_IO_BYTES + 1 }],
    ['read length 2^40', { offset: 0, length: 2 ** 40 }],
    ['read negative offset', { offset: -1, length: 10 }],
    ['read float offset', { offset: 0.5, length: 10 }],
    ['read negative length', { offset: 0, length: -10 }],
    ['read float length', { offset: 0, length: 1.5 }],
    ['read offset beyond 2^53', { offset: 2 ** 60, length: 10 }],
    ['read BigInt offset', { offset: 2n ** 60n, length: 10 }],
    ['read boolean length', { offset: 0, length: true }],
    ['read no args', {}],
  ])('%s -> PROTOCOL_ERROR', async (_name, args) => {
    const c = await greeted();
    await c.call('open', { path: srcPath, role: 'source' });
    const spy = vi.spyOn(c.files, 'read');
    const before = process.memoryUsage().arrayBuffers;
    expect(await codeOf(c.call('read', args))).toBe('PROTOCOL_ERROR');
    expect(spy).not.toHaveBeenCalled();
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(MAX_IO_BYTES / 2);
  });

  it.each<[string, string, Record<string, unknown>]>([
    ['write negative offset', 'write', { offset: -5 }],
    ['write float offset', 'write', { offset: 1.25 }],
    ['truncate negative size', 'truncate', { size: -1 }],
    ['truncate float size', 'truncate', { size: 0.5 }],
    ['digest negative limit', 'digest', { method: 'sha256', limit: -1 }],
    ['digest empty method', 'digest', { method: '', limit: 1 }],
  ])('%s -> PROTOCOL_ERROR, file untouched', async (_name, op, args) => {
    const path = join(dir, 'limits-target.bin');
    writeFileSync(path, 'unchanged');
    const c = await greeted();
    await c.call('open', { path, role: 'target' });
    expect(await codeOf(c.call(op, args, Buffer.from('zz')))).toBe('PROTOCOL_ERROR');
    expect(readFileSync(path, 'utf8')).toBe('unchanged');
  });

  it('an unknown op after hello is PROTOCOL_ERROR', async () => {
    const c = await greeted();
    expect(await codeOf(c.call('rm -rf', {}))).toBe('PROTOCOL_ERROR');
    expect(await codeOf(c.call('__proto__', {}))).toBe('PROTOCOL_ERROR');
  });
});

it('the agent keeps serving after every kind of refusal', async () => {
  const c = await greeted();
  await codeOf(c.call('read', { offset: -1, length: 1 }));
  await codeOf(c.call('open', { path: join(dir, 'missing'), role: 'source' }));
  await c.call('open', { path: srcPath, role: 'source' });
  const r = await c.call('read', { offset: 0, length: 16 });
  expect(joinPayload(r.p as Buffer[]).equals(src.subarray(0, 16))).toBe(true);
  expect(c.fatal).toEqual([]);
  expect(c.client.failed).toBeUndefined();
  mkdirSync(join(dir, 'unused'), { recursive: true });
});
