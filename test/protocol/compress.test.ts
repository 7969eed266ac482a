/**
 * -z on the wire: packing and unpacking block data, and what the agent does with a packed
 * payload that lies (corrupt bytes, a unit that inflates past what it declared, sizes that do
 * not add up): a clear COMPRESSED_DATA_CORRUPT or PROTOCOL_ERROR, never a crash, nothing written.
 */
import { createCipheriv, createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { brotliCompressSync as brotliDefault, constants as zc } from 'node:zlib';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError } from '../../src/errors/index.js';
import { exitCodeFor } from '../../src/errors/codes.js';
import { FileService } from '../../src/fileops/file-service.js';
import { type Packed, MIN_PACK_UNIT, localCodecs, pack, packUnit, packedProblem, sampleEntropy, unpack } from '../../src/protocol/compress.js';
import { joinPayload } from '../../src/protocol/framing.js';
import { MAX_IO_BYTES, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { readArgs } from '../../src/protocol/ops.js';
import { RpcClient, serveRpc } from '../../src/protocol/rpc.js';

const KiB = 1024;
const WORDS = 'order customer shipped pending paid refund invoice delivery warehouse north south blue red small large'.split(' ');

/** Text from a small vocabulary: compresses well. */
function textBytes(n: number, seed: number): Buffer {
  const out = Buffer.alloc(n);
  let x = seed;
  for (let at = 0; at < n; ) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    at += out.write(`${WORDS[x % WORDS.length]} ${x % 997} `, at);
  }
  return out;
}

function randomBytes(n: number, seed: number): Buffer {
  const key = createHash('sha256').update(`compress-${seed}`).digest();
  return createCipheriv('aes-256-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(n));
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

/** Quality 1: the default (11) takes seconds on tens of MiB. */
const brotliCompressSync = (b: Buffer) => brotliDefault(b, { params: { [zc.BROTLI_PARAM_QUALITY]: 1 } });

const MiB1 = () => 1024 * KiB;

const REQ = { codec: 'brotli' as const, level: 1, unit: 64 * KiB };

describe('packing', () => {
  it('compressible data shrinks and unpacks to the same bytes', async () => {
    const data = textBytes(300 * KiB, 1);
    const r = await pack([data], REQ);
    expect(r).toBeDefined();
    const wire = r!.payload.reduce((n, b) => n + b.length, 0);
    expect(wire).toBeLessThan(data.length / 2);
    expect(r!.packed.sizes).toHaveLength(5);
    expect(packedProblem(r!.packed)).toBeUndefined();
    expect((await unpack(r!.packed, r!.payload, 'peer')).equals(data)).toBe(true);
  });

  it('a unit packed into many of zlib\'s output chunks (1 MiB, 3/8 of it random) unpacks to the same bytes', async () => {
    const data = Buffer.alloc(1024 * KiB);
    for (let at = 0, i = 0; at < data.length; at += 8 * KiB, i++) {
      textBytes(5 * KiB, 10 + i).copy(data, at);
      randomBytes(3 * KiB, 100 + i).copy(data, at + 5 * KiB);
    }
    const r = (await pack([data], { ...REQ, unit: 1024 * KiB }))!;
    expect(r.packed.sizes).toHaveLength(1);
    expect(r.packed.sizes[0]).toBeGreaterThan(256 * KiB); // several 64 KiB output chunks
    expect(r.packed.sizes[0]).toBeLessThan(1024 * KiB * 0.95);
    expect((await unpack(r.packed, r.payload, 'peer')).equals(data)).toBe(true);
  });

  it('data that does not shrink is not packed at all', async () => {
    expect(await pack([randomBytes(200 * KiB, 2)], REQ)).toBeUndefined();
  });

  it('a mix: units that do not shrink travel raw beside packed ones, split across several buffers', async () => {
    const parts = [textBytes(64 * KiB, 3), randomBytes(64 * KiB, 4), textBytes(64 * KiB + 100, 5)];
    const data = Buffer.concat(parts);
    const r = (await pack(parts, REQ))!;
    expect(r.packed.sizes[1]).toBe(64 * KiB); // raw: its size is its length
    expect(r.packed.sizes[0]).toBeLessThan(64 * KiB * 0.95);
    expect(r.packed.length).toBe(data.length);
    expect((await unpack(r.packed, [joinPayload(r.payload)], 'peer')).equals(data)).toBe(true);
  });

  it.each<[number, number, number]>([
    [4 * KiB, 1024 * KiB, 64 * KiB],
    [1, 1024 * KiB, 64 * KiB],
    [100 * KiB, 1024 * KiB, 100 * KiB],
    [1024 * KiB, 1024 * KiB, 1024 * KiB],
    [64 * 1024 * KiB, 1024 * KiB, 1024 * KiB],
    [3000, 1024 * KiB, 66000],
  ])('block size %d, at most %d: units of %d bytes', (block, max, unit) => {
    expect(packUnit(block, max)).toBe(unit);
    expect(packUnit(block, max)).toBeGreaterThanOrEqual(MIN_PACK_UNIT);
  });

  it.each<[string, Buffer, number, number]>([
    ['random bytes', randomBytes(MiB1(), 12), 7.9, 8],
    ['text from a small vocabulary', textBytes(MiB1(), 13), 0, 5],
    ['all zeros', Buffer.alloc(MiB1()), 0, 0],
    ['a short random unit (under one sample)', randomBytes(300, 14), 7.0, 8],
  ])('sampled entropy of %s: %d to %d bits per byte', (_, buf, lo, hi) => {
    const e = sampleEntropy(buf);
    expect(e).toBeGreaterThanOrEqual(lo);
    expect(e).toBeLessThanOrEqual(hi);
  });

  it('this Node has brotli', () => {
    expect(localCodecs()).toEqual(['brotli']);
  });
});

describe('a packed declaration is checked before anything is inflated', () => {
  const p = (o: Partial<Packed>): Packed => ({ codec: 'brotli', unit: 64 * KiB, length: 100 * KiB, sizes: [10, 36 * KiB], ...o });
  it.each<[string, Packed, RegExp | undefined]>([
    ['fine', p({}), undefined],
    ['one unit too few', p({ sizes: [10] }), /must list 2 units/],
    ['one unit too many', p({ sizes: [10, 10, 10] }), /must list 2 units/],
    ['a unit larger than its raw bytes', p({ sizes: [64 * KiB + 1, 10] }), /unit 0 takes/],
    ['the last unit larger than its raw bytes', p({ sizes: [10, 36 * KiB + 1] }), /unit 1 takes/],
    ['an empty unit', p({ sizes: [0, 10] }), /unit 0 takes 0/],
  ])('%s', (_, packed, problem) => {
    const found = packedProblem(packed);
    if (problem) expect(found).toMatch(problem);
    else expect(found).toBeUndefined();
  });

  it.each<[string, unknown]>([
    ['a length above the frame limit (no allocation of it)', { codec: 'brotli', unit: 1024 * KiB, length: MAX_IO_BYTES + 1, sizes: [1] }],
    ['an unknown codec', { codec: 'zstd', unit: 64 * KiB, length: 10, sizes: [10] }],
    ['a unit below the minimum', { codec: 'brotli', unit: 100, length: 10, sizes: [10] }],
    ['sizes that do not match the length', { codec: 'brotli', unit: 64 * KiB, length: 200 * KiB, sizes: [10] }],
    ['an extra key', { codec: 'brotli', unit: 64 * KiB, length: 10, sizes: [10], more: 1 }],
  ])('the op table refuses a write with %s', (_, packed) => {
    expect(() => readArgs('write', { offset: 0, packed })).toThrow(PdcError);
  });
});

describe('unpacking what a peer sent', () => {
  const from = 'db1';
  it('garbage where a compressed unit should be is COMPRESSED_DATA_CORRUPT (exit 6), naming the peer', async () => {
    const packed: Packed = { codec: 'brotli', unit: 64 * KiB, length: 64 * KiB, sizes: [1000] };
    const e = await unpack(packed, [randomBytes(1000, 9)], from).catch((x: unknown) => x);
    expect(e).toBeInstanceOf(PdcError);
    expect((e as PdcError).code).toBe('COMPRESSED_DATA_CORRUPT');
    expect(exitCodeFor('COMPRESSED_DATA_CORRUPT')).toBe(6);
    expect((e as PdcError).message).toMatch(/from db1 is corrupt: unit 0/);
    expect((e as PdcError).hint).toMatch(/without -z/);
  });

  it('a unit that inflates past its declared size (a bomb) is stopped and refused', async () => {
    const bomb = brotliCompressSync(Buffer.alloc(64 * 1024 * KiB));
    expect(bomb.length).toBeLessThan(64 * KiB);
    const packed: Packed = { codec: 'brotli', unit: 64 * KiB, length: 64 * KiB, sizes: [bomb.length] };
    expect(await codeOf(unpack(packed, [bomb], from))).toBe('COMPRESSED_DATA_CORRUPT');
  });

  it('a unit that inflates to fewer bytes than declared is refused', async () => {
    const small = brotliCompressSync(textBytes(10 * KiB, 1));
    const packed: Packed = { codec: 'brotli', unit: 64 * KiB, length: 64 * KiB, sizes: [small.length] };
    expect(await codeOf(unpack(packed, [small], from))).toBe('COMPRESSED_DATA_CORRUPT');
  });

  it('a payload that does not hold the declared sizes is refused', async () => {
    const r = (await pack([textBytes(128 * KiB, 2)], REQ))!;
    const wire = joinPayload(r.payload);
    expect(await codeOf(unpack(r.packed, [wire.subarray(0, wire.length - 1)], from))).toBe('COMPRESSED_DATA_CORRUPT');
    expect(await codeOf(unpack(r.packed, [wire, Buffer.from([1])], from))).toBe('COMPRESSED_DATA_CORRUPT');
  });

  it('a truncated compressed unit is refused', async () => {
    const whole = brotliCompressSync(textBytes(64 * KiB, 3));
    const cut = whole.subarray(0, whole.length - 4);
    const packed: Packed = { codec: 'brotli', unit: 64 * KiB, length: 64 * KiB, sizes: [cut.length] };
    expect(await codeOf(unpack(packed, [cut], from))).toBe('COMPRESSED_DATA_CORRUPT');
  });
});

describe('the agent with -z', () => {
  let dir: string;
  beforeAll(() => (dir = mkdtempSync(join(tmpdir(), 'pdc-compress-'))));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const conns: Array<{ files: FileService; client: RpcClient }> = [];
  afterEach(async () => {
    for (const c of conns.splice(0)) {
      await c.files.close();
      c.client.dispose();
    }
  });

  async function agent() {
    const up = new PassThrough();
    const down = new PassThrough();
    const files = new FileService();
    const fatal: Error[] = [];
    serveRpc(up, down, createDispatcher(files), (e) => fatal.push(e));
    const client = new RpcClient(down, up, 'agent');
    conns.push({ files, client });
    const call = (op: string, args: unknown, payload?: Buffer[]) =>
      client.call(op as 'close', args as Record<string, never>, payload) as unknown as Promise<Record<string, unknown> & { p?: Buffer[] }>;
    const hello = await call('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
    return { call, hello, fatal };
  }

  it('says in hello which codecs it has', async () => {
    expect((await agent()).hello.codecs).toEqual(['brotli']);
  });

  it('packs what it reads, where it reads it: the answer unpacks to the file bytes', async () => {
    const path = join(dir, 'read.bin');
    const data = Buffer.concat([textBytes(200 * KiB, 7), randomBytes(70 * KiB, 8)]);
    writeFileSync(path, data);
    const a = await agent();
    await a.call('open', { path, role: 'source' });
    const r = await a.call('read', { offset: 0, length: data.length, pack: REQ });
    const packed = r.packed as Packed;
    expect(packed.length).toBe(data.length);
    expect(joinPayload(r.p!).length).toBeLessThan(data.length * 0.7);
    expect((await unpack(packed, r.p!, 'agent')).equals(data)).toBe(true);
  });

  it('unpacks a packed write before writing it', async () => {
    const path = join(dir, 'write.bin');
    const data = textBytes(150 * KiB, 9);
    const a = await agent();
    await a.call('open', { path, role: 'target', create: true });
    const r = (await pack([data], REQ))!;
    await a.call('write', { offset: 4096, packed: r.packed }, r.payload);
    await a.call('fsync', {});
    expect(readFileSync(path).subarray(4096).equals(data)).toBe(true);
  });

  it('a corrupt packed write is COMPRESSED_DATA_CORRUPT: nothing is written, and the agent goes on answering', async () => {
    const path = join(dir, 'corrupt.bin');
    const before = randomBytes(128 * KiB, 10);
    writeFileSync(path, before);
    const a = await agent();
    await a.call('open', { path, role: 'target' });
    const good = (await pack([textBytes(128 * KiB, 11)], REQ))!;
    const bad = Buffer.from(joinPayload(good.payload));
    bad.fill(0x5a, 0, Math.min(64, bad.length)); // the first unit's stream header and start
    expect(await codeOf(a.call('write', { offset: 0, packed: good.packed }, [bad]))).toBe('COMPRESSED_DATA_CORRUPT');
    const bomb = brotliCompressSync(Buffer.alloc(16 * 1024 * KiB));
    expect(await codeOf(a.call('write', { offset: 0, packed: { codec: 'brotli', unit: 64 * KiB, length: 64 * KiB, sizes: [bomb.length] } }, [bomb]))).toBe(
      'COMPRESSED_DATA_CORRUPT',
    );
    expect(await codeOf(a.call('write', { offset: 0, packed: { codec: 'brotli', unit: 64 * KiB, length: MAX_IO_BYTES + 1, sizes: [1] } }, [bomb]))).toBe(
      'PROTOCOL_ERROR',
    );
    await a.call('fsync', {});
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(a.fatal).toEqual([]);
    expect((await a.call('stat', { path, role: 'target' })).size).toBe(before.length);
  });
});
