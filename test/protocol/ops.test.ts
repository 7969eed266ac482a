/**
 * The op table (src/protocol/ops.ts), table-driven: every argument of every op is
 * refused out of range with PROTOCOL_ERROR by the real dispatcher before the file
 * service is reached or anything sizeable is allocated, and every request the
 * engine plans is one the agent accepts, for every block size the CLI accepts and
 * the digest length of every hash method.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { coalesceBlocks, geometry, hashChunks, hashRequestBlocks, transferRunBytes } from '../../src/engine/plan.js';
import { PdcError } from '../../src/errors/index.js';
import { FileService } from '../../src/fileops/file-service.js';
import { digestLength, knownDigestLength, localHashMethods } from '../../src/hash/methods.js';
import { MAX_BLOCK_SIZE, MAX_PAYLOAD_BYTES, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import type { OpName, Ops } from '../../src/protocol/messages.js';
import { MAX_READ_BYTES, OPS, OP_NAMES, maxHashBlocks, readArgs, readDigestsFit } from '../../src/protocol/ops.js';
import { RpcClient, WithPayload, serveRpc } from '../../src/protocol/rpc.js';

let dir: string;
let file: string;
const CONTENT = Buffer.from('the op table test file\n');

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pdc-ops-'));
  file = join(dir, 'file.bin');
  writeFileSync(file, CONTENT);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A valid request for every op; each out-of-range case changes exactly one argument of it. */
const valid = (): { [K in OpName]: Ops[K]['args'] } => ({
  hello: { protocol: PROTOCOL_VERSION, client: 'test' },
  stat: { path: file, role: 'target' },
  open: { path: file, role: 'target', create: false, write: true, atomic: false, lock: false },
  space: { path: file },
  hash: { first: 0, count: 1, blockSize: 4096, limit: CONTENT.length, method: 'sha256' },
  read: { offset: 0, length: 10, zeroUnit: 4096 },
  write: { offset: 0 },
  zero: { offset: 0, length: 10, punch: true },
  hashpieces: { ranges: [0, 10, 12, 5], grain: 4, method: 'sha256' },
  readpieces: { ranges: [0, 4, 8, 2] },
  writepieces: { ranges: [0, 1] },
  truncate: { size: 0 },
  fsync: {},
  digest: { method: 'sha256', limit: 10 },
  commit: { size: 0 },
  close: {},
  list: { path: dir, role: 'source', max: 10 },
  mkdir: { root: dir, path: join(dir, 'sub') },
  symlink: { root: dir, path: join(dir, 'link'), linkTarget: 'file.bin' },
  setmeta: { root: dir, path: file, mtimeMs: 1e12 },
  remove: { root: dir, path: join(dir, 'no-such-entry') },
  readfiles: { files: [{ path: file, size: CONTENT.length }] },
  writefiles: { root: dir, method: 'sha256', files: [{ path: join(dir, 'batched'), size: 0, hash: Buffer.alloc(32), mode: 0o644, meta: { mtimeMs: 1e12 } }] },
});

const FILE_METHODS = ['stat', 'open', 'space', 'hash', 'read', 'write', 'zero', 'truncate', 'fsync', 'digest', 'commit', 'close'] as const;

interface Conn {
  client: RpcClient;
  files: FileService;
  call(op: string, args: unknown, payload?: Buffer): Promise<unknown>;
}
const conns: Conn[] = [];
afterEach(async () => {
  vi.restoreAllMocks();
  for (const c of conns.splice(0)) {
    await c.files.close();
    c.client.dispose();
  }
});

/** The real dispatcher on a real FileService, greeted, over in-memory pipes. */
async function agent(): Promise<Conn> {
  const up = new PassThrough();
  const down = new PassThrough();
  const files = new FileService();
  serveRpc(up, down, createDispatcher(files), () => undefined);
  const client = new RpcClient(down, up, 'agent');
  const c: Conn = { client, files, call: (op, args, payload) => client.call(op as 'close', args as Record<string, never>, payload) };
  conns.push(c);
  await c.call('hello', valid().hello);
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

/** [op, argument, bad value] for every argument of every op, from the table's own out-of-range values. */
const outOfRange: [OpName, string, unknown][] = OP_NAMES.flatMap((op) =>
  Object.entries(OPS[op].args as Record<string, { outOfRange: readonly unknown[] }>).flatMap(([key, field]) =>
    field.outOfRange.map((bad): [OpName, string, unknown] => [op, key, bad]),
  ),
);

describe('the table', () => {
  it('covers every op, and every op has a valid example that passes', () => {
    expect([...OP_NAMES].sort()).toEqual(Object.keys(valid()).sort());
    for (const op of OP_NAMES) expect(() => readArgs(op, valid()[op]), op).not.toThrow();
  });

  it('declares the payload directions: write sends one, hash and read answer with one', () => {
    const dirs = Object.fromEntries(OP_NAMES.map((op) => [op, OPS[op].payload]));
    expect(dirs).toMatchObject({ write: 'request', hash: 'response', read: 'response', stat: 'none', open: 'none', digest: 'none' });
  });

  it('has out-of-range values for every argument (at least a wrong type and a bound)', () => {
    for (const op of OP_NAMES) {
      for (const [key, field] of Object.entries(OPS[op].args as Record<string, { outOfRange: readonly unknown[] }>)) {
        expect(field.outOfRange.length, `${op}.${key}`).toBeGreaterThanOrEqual(3);
      }
    }
  });

  it('reads only what it declares: optional arguments stay absent, nothing else passes', () => {
    expect(readArgs('open', { path: file, role: 'source' })).toEqual({ path: file, role: 'source' });
    expect(() => readArgs('stat', { path: file })).toThrow(/"role" must be one of "source", "target"/);
  });
});

describe('the dispatcher refuses out-of-range arguments before reaching the file', () => {
  it.each(outOfRange)('%s with %s = %j -> PROTOCOL_ERROR', async (op, key, bad) => {
    const c = await agent();
    await c.files.open({ path: file, role: 'target', write: true });
    const spies = FILE_METHODS.map((m) => vi.spyOn(c.files, m));
    let largest = 0;
    for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
      const original = Buffer[name].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
      vi.spyOn(Buffer, name).mockImplementation(((size: number, ...rest: unknown[]) => {
        largest = Math.max(largest, size);
        return original(size, ...rest);
      }) as never);
    }
    const args = { ...valid()[op], [key]: bad };
    expect(await codeOf(c.call(op, args, op === 'write' ? Buffer.from('zz') : undefined))).toBe('PROTOCOL_ERROR');
    for (const spy of spies) expect(spy, spy.getMockName()).not.toHaveBeenCalled();
    expect(largest).toBeLessThan(64 * 1024);
    expect(readFileSync(file).equals(CONTENT)).toBe(true);
  });

  it.each(OP_NAMES.filter((op) => op !== 'hello'))('%s with an unknown argument -> PROTOCOL_ERROR', async (op) => {
    const c = await agent();
    const spies = FILE_METHODS.map((m) => vi.spyOn(c.files, m));
    expect(await codeOf(c.call(op, { ...valid()[op], extra: 1 }))).toBe('PROTOCOL_ERROR');
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
  });

  it.each(OP_NAMES.filter((op) => OPS[op].payload !== 'request' && op !== 'hello'))('%s with a payload it does not take -> PROTOCOL_ERROR', async (op) => {
    const c = await agent();
    await c.files.open({ path: file, role: 'target', write: true });
    const spies = FILE_METHODS.map((m) => vi.spyOn(c.files, m));
    expect(await codeOf(c.call(op, valid()[op], Buffer.from('stray')))).toBe('PROTOCOL_ERROR');
    for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    expect(readFileSync(file).equals(CONTENT)).toBe(true);
  });

  it.each([
    ['a path of PATH_MAX bytes', 'x'.repeat(4096)],
    ['a multi-byte path of PATH_MAX bytes but fewer characters', '\u00e9'.repeat(2048)],
  ])('stat of %s -> PROTOCOL_ERROR (the client refuses it first, naming the side)', async (_name, path) => {
    const c = await agent();
    expect(await codeOf(c.call('stat', { path, role: 'target' }))).toBe('PROTOCOL_ERROR');
  });
});

/** A valid answer body for every op, as the agent sends it. */
const validResult = (): { [K in OpName]: Omit<Ops[K]['result'], 'p'> } => ({
  hello: { protocol: PROTOCOL_VERSION, agent: '0.1.0', node: 'v20.0.0', hashes: ['xxh64', 'sha256'], pid: 12, host: 'db1' },
  stat: { exists: true, kind: 'file', size: 10, mtimeMs: 1.5, dev: 2049, ino: 77, mode: 0o640, symlink: false },
  open: { size: 10, mtimeMs: 1.5, dev: 2049, ino: 77, mode: 0o640, created: false },
  space: { available: 1 << 30 },
  hash: {},
  read: { zeros: [0, 4096] },
  write: {},
  zero: { punched: true },
  hashpieces: {},
  readpieces: {},
  writepieces: {},
  truncate: {},
  fsync: {},
  digest: { digest: Buffer.alloc(32, 1) },
  commit: { removed: [] },
  close: {},
  list: { entries: [{ name: 'a', kind: 'file', size: 1, mtimeMs: 1.5, mode: 0o644, uid: 0, gid: 0 }], more: false },
  mkdir: { created: true },
  symlink: { created: false },
  setmeta: {},
  remove: { removed: 1 },
  readfiles: { files: [{ mtimeMs: 1.5 }, { mtimeMs: 0, error: { code: 'SOURCE_CHANGED', message: 'changed', hint: 'rerun' } }] },
  writefiles: { files: [{ created: true }, { created: false, removed: [{ path: '/t/.x.pdc-tmp', size: 3 }] }] },
});

/** A client and a scripted server that answers every request with `answer(op)`. */
function scripted(answer: (op: OpName) => unknown): RpcClient {
  const up = new PassThrough();
  const down = new PassThrough();
  serveRpc(up, down, (op) => answer(op as OpName), () => undefined);
  const client = new RpcClient(down, up, 'scripted');
  conns.push({ client, files: new FileService(), call: () => Promise.resolve() });
  return client;
}

const badResults: [OpName, string, unknown][] = OP_NAMES.flatMap((op) =>
  Object.entries(OPS[op].result as Record<string, { outOfRange: readonly unknown[] }>).flatMap(([key, field]) =>
    field.outOfRange.map((bad): [OpName, string, unknown] => [op, key, bad]),
  ),
);

describe('the client reads answers through the table', () => {
  it.each(OP_NAMES)('%s: a valid answer passes, with only its declared fields', async (op) => {
    const client = scripted((o) => ({ ...validResult()[o], stray: 'dropped' }));
    const r = await client.call(op, valid()[op] as never);
    expect(r).toEqual(validResult()[op]);
  });

  it.each(badResults)('%s answering %s = %j -> PROTOCOL_ERROR', async (op, key, bad) => {
    const client = scripted((o) => ({ ...validResult()[o], [key]: bad }));
    expect(await codeOf(client.call(op, valid()[op] as never))).toBe('PROTOCOL_ERROR');
    expect(client.failed).toBeUndefined(); // one bad answer fails its call, not the stream
  });

  it.each(OP_NAMES.filter((op) => OPS[op].payload !== 'response'))('%s answering with a payload -> PROTOCOL_ERROR', async (op) => {
    const client = scripted((o) => new WithPayload(validResult()[o], Buffer.from('stray')));
    expect(await codeOf(client.call(op, valid()[op] as never))).toBe('PROTOCOL_ERROR');
  });
});

describe('the stat role travels: errors about the path are that side’s', () => {
  it.each([
    ['source', 'SOURCE_PATH_TOO_LONG'],
    ['target', 'TARGET_PATH_TOO_LONG'],
  ])('a name of 315 bytes as %s is %s', async (role, code) => {
    const c = await agent();
    expect(await codeOf(c.call('stat', { path: join(dir, 'n'.repeat(315)), role }))).toBe(code);
  });
});

describe('the engine’s planned requests are ones the agent accepts', () => {
  const MiB = 1 << 20;
  /** Every power of two the CLI accepts, its neighbours, and the odd sizes people type. */
  const blockSizes = [
    ...new Set(
      Array.from({ length: 27 }, (_, i) => 2 ** i)
        .flatMap((p) => [p - 1, p, p + 1])
        .concat([1000, 5 * 1024, 1_000_000, 3 * MiB])
        .filter((b) => b >= 1 && b <= MAX_BLOCK_SIZE),
    ),
  ].sort((a, b) => a - b);

  it('block sizes cover 1 B to 64 MiB', () => {
    expect(blockSizes[0]).toBe(1);
    expect(blockSizes.at(-1)).toBe(MAX_BLOCK_SIZE);
  });

  it('for every hash method: hash, verify and read requests pass the table, and replies fit a frame', async () => {
    const methods = localHashMethods();
    const lengths = new Map<number, string>();
    for (const m of methods) {
      const len = await digestLength(m); // what the engine plans with
      expect(knownDigestLength(m), m).toBe(len); // what the agent's table checks with
      lengths.set(len, m);
    }
    expect(lengths.size).toBeGreaterThan(3); // 8 (xxh64), 16, 20, 32, 64, ...
    let checked = 0;
    for (const [len, method] of lengths) {
      expect(maxHashBlocks(len) * len, method).toBeLessThanOrEqual(MAX_PAYLOAD_BYTES);
      for (const bs of blockSizes) {
        const per = hashRequestBlocks(bs, len);
        // a file of two full hash requests and a bit: every chunk of it, including the short last one
        const g = geometry(2 * per * bs + Math.ceil(bs / 2), bs);
        for (const run of hashChunks(g, len)) {
          expect(() => readArgs('hash', { first: run.first, count: run.count, blockSize: bs, limit: g.size, method }), `${method} -b ${bs}`).not.toThrow();
          checked++;
        }
        // verification re-hashes runs of changed blocks of the same size
        const [verify] = coalesceBlocks([0, 1, 2], g, per);
        expect(() => readArgs('hash', { first: 0, count: verify!.count, blockSize: bs, limit: g.size, method })).not.toThrow();
        // transfer runs: whole blocks, up to transferRunBytes
        const runLength = Math.max(1, Math.floor(transferRunBytes(bs) / bs)) * bs;
        expect(runLength).toBeLessThanOrEqual(MAX_READ_BYTES);
        expect(() => readArgs('read', { offset: 0, length: runLength }), `read -b ${bs}`).not.toThrow();
        // streamed runs ask the source for their digests exactly when they fit (sync.ts sendRun)
        const withDigests = () => readArgs('read', { offset: 0, length: runLength, zeroUnit: bs, hash: method });
        if (readDigestsFit(runLength, bs, len)) expect(withDigests, `read with digests -b ${bs}`).not.toThrow();
        else expect(withDigests, `read with digests -b ${bs}`).toThrow(/travel in the body/);
      }
    }
    expect(checked).toBeGreaterThan(blockSizes.length * lengths.size * 2);
  });

  it('a read asks for digests only of its zero units', () => {
    expect(() => readArgs('read', { offset: 0, length: 4096, hash: 'xxh64' })).toThrow(/needs "zeroUnit"/);
    expect(() => readArgs('read', { offset: 0, length: 4096, zeroUnit: 1024, hash: 'xxh64' })).not.toThrow();
  });

  it('the agent serves the largest planned hash request for the smallest blocks (-b 1, xxh64)', async () => {
    const c = await agent();
    const per = hashRequestBlocks(1, 8);
    const path = join(dir, 'small-blocks.bin');
    writeFileSync(path, Buffer.alloc(per + 3, 1));
    await c.call('open', { path, role: 'source' });
    const r = (await c.call('hash', { first: 0, count: per, blockSize: 1, limit: per + 3, method: 'xxh64' })) as { p?: Buffer[] };
    expect(Buffer.concat(r.p ?? []).length).toBe(per * 8);
  }, 60_000);
});
