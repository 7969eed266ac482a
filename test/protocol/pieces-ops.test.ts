/**
 * The refinement ops (hashpieces, readpieces, writepieces) through the real
 * dispatcher on a real file: what they compute, and the limits that keep every
 * request within one frame and refuse anything else before the file is touched.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError } from '../../src/errors/index.js';
import { FileService } from '../../src/fileops/file-service.js';
import { encodeBody, joinPayload } from '../../src/protocol/framing.js';
import { FRAME_BODY_RESERVE, MAX_FRAME_BYTES, MAX_HASH_BLOCKS, MAX_IO_BYTES, MAX_PIECES, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { readArgs } from '../../src/protocol/ops.js';
import { RpcClient, serveRpc } from '../../src/protocol/rpc.js';

let dir: string;
let file: string;
const CONTENT = Buffer.from(Array.from({ length: 10_000 }, (_, i) => (i * 31 + 7) & 0xff));

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pdc-pieces-'));
  file = join(dir, 'file.bin');
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Conn {
  client: RpcClient;
  files: FileService;
  call(op: string, args: unknown, payload?: Buffer[]): Promise<{ p?: Buffer[] }>;
}
const conns: Conn[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) {
    await c.files.close();
    c.client.dispose();
  }
});

/** The real dispatcher on a real FileService with `file` open as the target. */
async function agent(): Promise<Conn> {
  writeFileSync(file, CONTENT);
  const up = new PassThrough();
  const down = new PassThrough();
  const files = new FileService();
  serveRpc(up, down, createDispatcher(files), () => undefined);
  const client = new RpcClient(down, up, 'agent');
  const c: Conn = { client, files, call: (op, args, payload) => client.call(op as 'read', args as never, payload) as Promise<{ p?: Buffer[] }> };
  conns.push(c);
  await c.call('hello', { protocol: PROTOCOL_VERSION, client: 'test' });
  await c.call('open', { path: file, role: 'target' });
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

describe('hashpieces', () => {
  it('one digest per piece cut from each range start, the same as the hash op gives a block there', async () => {
    const c = await agent();
    const pieces = joinPayload((await c.call('hashpieces', { ranges: [1000, 300, 5000, 64], grain: 100, method: 'sha256' })).p);
    expect(pieces.length).toBe((3 + 1) * 32);
    // The piece [1100, 1200) is block 11 of 100 bytes.
    const block = joinPayload((await c.call('hash', { first: 11, count: 1, blockSize: 100, limit: CONTENT.length, method: 'sha256' })).p);
    expect(pieces.subarray(32, 64).equals(block)).toBe(true);
    // The second range is one short piece, [5000, 5064): block 50 of 100 bytes clipped at 5064.
    const short = joinPayload((await c.call('hash', { first: 50, count: 1, blockSize: 100, limit: 5064, method: 'sha256' })).p);
    expect(pieces.subarray(96, 128).equals(short)).toBe(true);
  });

  it('past end of file: the missing pieces still get a digest each, never equal to real bytes', async () => {
    const c = await agent();
    const d = joinPayload((await c.call('hashpieces', { ranges: [9950, 200], grain: 64, method: 'xxh64' })).p);
    expect(d.length).toBe(4 * 8);
    const full = joinPayload((await c.call('hashpieces', { ranges: [9950, 50], grain: 64, method: 'xxh64' })).p);
    expect(d.subarray(0, 8).equals(full)).toBe(true);
  });

  it.each<[string, unknown]>([
    ['unsorted ranges', { ranges: [100, 10, 0, 10], grain: 8, method: 'xxh64' }],
    ['overlapping ranges', { ranges: [0, 10, 5, 10], grain: 8, method: 'xxh64' }],
    ['an empty piece', { ranges: [0, 0], grain: 8, method: 'xxh64' }],
    ['an odd list', { ranges: [0, 10, 20], grain: 8, method: 'xxh64' }],
    ['more pieces than a body holds', { ranges: Array.from({ length: 2 * (MAX_PIECES + 1) }, (_, i) => (i % 2 ? 1 : i)), grain: 8, method: 'xxh64' }],
    ['more bytes than a request may cover', { ranges: [0, MAX_IO_BYTES + 1], grain: MAX_IO_BYTES, method: 'xxh64' }],
    ['more digests than a reply frame holds', { ranges: [0, MAX_HASH_BLOCKS + 1], grain: 1, method: 'xxh64' }],
    ['grain 0', { ranges: [0, 10], grain: 0, method: 'xxh64' }],
  ])('%s -> PROTOCOL_ERROR before the file is read', async (_name, args) => {
    const c = await agent();
    expect(() => readArgs('hashpieces', args)).toThrow(PdcError);
    expect(await codeOf(c.call('hashpieces', args))).toBe('PROTOCOL_ERROR');
  });
});

describe('readpieces and writepieces', () => {
  it('read pieces, write them elsewhere: the bytes land where the ranges say', async () => {
    const c = await agent();
    const got = joinPayload((await c.call('readpieces', { ranges: [0, 4, 9000, 3] })).p);
    expect(got.equals(Buffer.concat([CONTENT.subarray(0, 4), CONTENT.subarray(9000, 9003)]))).toBe(true);
    await c.call('writepieces', { ranges: [10, 2, 500, 5] }, [Buffer.from('ab'), Buffer.from('cdefg')]);
    const want = Buffer.from(CONTENT);
    want.write('ab', 10);
    want.write('cdefg', 500);
    expect(readFileSync(file).equals(want)).toBe(true);
  });

  // Close pieces are written as one span with the bytes between them read back in; far ones,
  // and a span the file ends inside, piece by piece. Either way only the pieces' bytes change.
  const BIG = 300_000;
  it.each<[string, number[]]>([
    ['close together (one span)', [0, 3, 64, 1, 8000, 64, 16383, 2]],
    ['farther apart than a span bridges', [0, 3, 20000, 5, 60000, 2]],
    ['longer than one span', Array.from({ length: 30 }, (_, k) => [k * 10_000, 2]).flat()],
    ['the file ends inside the span', [BIG - 10, 4, BIG + 100, 6]],
  ])('writepieces %s: exactly the pieces change', async (_name, ranges) => {
    const c = await agent();
    // The agent holds the file open: rewritten in place, it is the same file, only longer.
    writeFileSync(file, Buffer.from(Array.from({ length: BIG }, (_, i) => (i * 13 + 5) & 0xff)));
    const before = readFileSync(file);
    const total = ranges.filter((_, i) => i % 2 === 1).reduce((n, x) => n + x, 0);
    const payload = Buffer.alloc(total, 0xa5);
    await c.call('writepieces', { ranges }, [payload]);
    const want = Buffer.alloc(Math.max(before.length, ranges[ranges.length - 2]! + ranges[ranges.length - 1]!));
    before.copy(want);
    for (let i = 0; i < ranges.length; i += 2) want.fill(0xa5, ranges[i]!, ranges[i]! + ranges[i + 1]!);
    expect(readFileSync(file).equals(want)).toBe(true);
  });

  it.each<[string, number[], Buffer]>([
    ['fewer bytes than the pieces cover', [0, 4, 100, 4], Buffer.alloc(7)],
    ['more bytes than the pieces cover', [0, 4], Buffer.alloc(5)],
    ['no payload', [0, 4], Buffer.alloc(0)],
  ])('writepieces with %s -> PROTOCOL_ERROR, the file untouched', async (_name, ranges, payload) => {
    const c = await agent();
    expect(await codeOf(c.call('writepieces', { ranges }, payload.length ? [payload] : undefined))).toBe('PROTOCOL_ERROR');
    expect(readFileSync(file).equals(CONTENT)).toBe(true);
  });

  it('readpieces past what one reply carries -> PROTOCOL_ERROR', async () => {
    const c = await agent();
    expect(await codeOf(c.call('readpieces', { ranges: [0, MAX_IO_BYTES, MAX_IO_BYTES + 10, 1] }))).toBe('PROTOCOL_ERROR');
  });

  it('the largest request allowed fits one frame: MAX_PIECES pieces at 2^52 offsets beside a full payload', () => {
    const ranges: number[] = [];
    const per = Math.floor(MAX_IO_BYTES / MAX_PIECES);
    for (let i = 0; i < MAX_PIECES; i++) ranges.push(2 ** 52 + i * (per + 1), per);
    expect(() => readArgs('writepieces', { ranges })).not.toThrow();
    const body = encodeBody({ t: 'q', id: 2 ** 31, op: 'writepieces', a: { ranges } });
    expect(body.length).toBeLessThanOrEqual(FRAME_BODY_RESERVE);
    expect(body.length + MAX_IO_BYTES).toBeLessThanOrEqual(MAX_FRAME_BYTES);
  });
});

describe('read windows kept between rounds', () => {
  const hash = async (c: Conn, ranges: number[]) => joinPayload((await c.call('hashpieces', { ranges, grain: 64, method: 'xxh64' })).p);
  const fresh = async (ranges: number[]) => {
    // A second service on the same file: nothing kept, reads the file as it is now.
    const files = new FileService();
    await files.open({ path: file, role: 'source' });
    try {
      return await files.hashPieces(ranges, 64, 'xxh64');
    } finally {
      await files.close();
    }
  };

  // Each write path, then the same ranges hashed again: the answer must be the file's bytes now.
  it.each<[string, (c: Conn) => Promise<unknown>]>([
    ['writepieces', (c) => c.call('writepieces', { ranges: [1000, 3] }, [Buffer.from('xyz')])],
    ['write', (c) => c.call('write', { offset: 1024 }, [Buffer.from('12345')])],
    ['zero', (c) => c.call('zero', { offset: 1030, length: 70 })],
    ['truncate', (c) => c.call('truncate', { size: 1100 })],
  ])('after %s through the same agent, the next round sees the new bytes', async (_name, change) => {
    const c = await agent();
    const before = await hash(c, [0, 4096]); // the first round reads and keeps the window
    expect(before.equals(await fresh([0, 4096]))).toBe(true);
    await change(c);
    const after = await hash(c, [960, 256]);
    expect(after.equals(await fresh([960, 256]))).toBe(true);
    expect(after.equals(before.subarray((960 / 64) * 8, (1216 / 64) * 8))).toBe(false);
  });

  it('a later round inside the first round\'s range is answered without reading the file again', async () => {
    const c = await agent();
    const first = await hash(c, [0, 4096]);
    // Changed behind the agent's back: a kept window still answers (the read-back after writing is what catches this).
    const other = Buffer.from(CONTENT);
    other.fill(0, 0, 4096);
    writeFileSync(file, other);
    expect((await hash(c, [128, 64])).equals(first.subarray(16, 24))).toBe(true);
    // Outside every kept window: read from the file.
    expect((await hash(c, [8192, 64])).equals(await fresh([8192, 64]))).toBe(true);
  });
});
