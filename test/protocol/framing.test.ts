import { createHash } from 'node:crypto';
import { seededBytes, seededRandom } from '../../src/benchmark/seeded.js';
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import {
  FrameDecoder,
  FrameError,
  HEADER_BYTES,
  PAYLOAD_KEY,
  type Payload,
  decodeBody,
  encodeBody,
  joinPayload,
  payloadLength,
  writeFrame,
} from '../../src/protocol/framing.js';
import { MAX_FRAME_BYTES } from '../../src/protocol/limits.js';
import { readFrames } from '../../src/protocol/frame-reader.js';



/** Compare binary by content: a digest keeps MiB-sized comparisons cheap. */
const fingerprint = (b: Uint8Array) => `${b.length}:${createHash('sha256').update(b).digest('hex')}`;

interface Frame {
  msg: unknown;
  payload?: Payload;
}

/** Everything writeFrame writes, as one buffer. */
function framesToBytes(frames: Frame[], maxBytes?: number): Buffer {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (c: Buffer) => chunks.push(c));
  for (const f of frames) writeFrame(out, f.msg, f.payload, undefined, maxBytes);
  out.end();
  return Buffer.concat(chunks);
}

function header(bodyLen: number, payloadLen = 0): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(bodyLen, 0);
  h.writeUInt32BE(payloadLen, 4);
  return h;
}

/** Normalise a decoded message so binary values (and the payload chunk list) compare by content. */
function norm(v: unknown): unknown {
  if (v instanceof Uint8Array) return { bin: fingerprint(v) };
  if (Array.isArray(v)) return v.map(norm);
  if (v && typeof v === 'object') {
    const o = Object.fromEntries(Object.entries(v).map(([k, x]) => [k, norm(x)]));
    const p = (v as Record<string, unknown>)[PAYLOAD_KEY];
    if (Array.isArray(p)) o[PAYLOAD_KEY] = { payload: fingerprint(joinPayload(p as Buffer[])) };
    return o;
  }
  return v;
}

/** What the receiver should see for a frame. */
function expected(f: Frame): unknown {
  const len = payloadLength(f.payload);
  if (len === 0) return norm(f.msg);
  return { ...(norm(f.msg) as object), [PAYLOAD_KEY]: { payload: fingerprint(joinPayload(f.payload)) } };
}

const SMALL: Frame[] = [
  { msg: { t: 'q', id: 1, op: 'hello', a: { protocol: 1, client: 'test' } } },
  { msg: { t: 'r', id: 1, r: {} } },
  { msg: { t: 'q', id: 2, op: 'read', a: { offset: 2 ** 32 + 7, length: 4096 } } },
  { msg: { t: 'q', id: 3, op: 'write', a: { offset: 2 ** 52 } }, payload: Buffer.from([0, 1, 2, 255]) },
  { msg: { t: 'q', id: 4, op: 'write', a: { offset: 5 } }, payload: [Buffer.from('ab'), Buffer.alloc(0), Buffer.from('cde')] },
  { msg: { t: 'r', id: 3, e: { code: 'TARGET_IO', message: 'ünïcödé ✓', hint: 'h' } } },
  { msg: { t: 'q', id: Number.MAX_SAFE_INTEGER, op: 'hash', a: { first: 0, count: 0, blockSize: 1, limit: 0, method: 'xxh64' } } },
  { msg: { t: 'r', id: 4, r: { digest: Buffer.from('00ff', 'hex') } } },
  { msg: { nested: [1, -1, 1.5, null, true, false, 'x', [[]], {}] } },
  { msg: 'a bare string' },
  { msg: 0 },
  { msg: { t: 'r', id: 5, r: {} }, payload: [] }, // an empty payload is no payload
];

describe('writeFrame + FrameDecoder', () => {
  it('round-trips a small sequence split at every byte boundary', () => {
    const bytes = framesToBytes(SMALL);
    const want = SMALL.map(expected);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const d = new FrameDecoder();
      const got = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
      expect(got.map(norm), `cut at ${cut}`).toEqual(want);
      expect(d.pending).toBe(0);
    }
  });

  it('round-trips when fed one byte at a time, and at every pair of cut points for a short prefix', () => {
    const bytes = framesToBytes(SMALL);
    const d = new FrameDecoder();
    const got: unknown[] = [];
    for (let i = 0; i < bytes.length; i++) got.push(...d.push(bytes.subarray(i, i + 1)));
    expect(got.map(norm)).toEqual(SMALL.map(expected));

    const few = SMALL.slice(2, 5);
    const three = framesToBytes(few);
    const want = few.map(expected);
    for (let a = 0; a <= three.length; a++) {
      for (let b = a; b <= three.length; b++) {
        const d2 = new FrameDecoder();
        const out = [...d2.push(three.subarray(0, a)), ...d2.push(three.subarray(a, b)), ...d2.push(three.subarray(b))];
        expect(out.map(norm)).toEqual(want);
      }
    }
  });

  it('decodes nothing until a frame is whole, and keeps the partial bytes pending', () => {
    const bytes = framesToBytes([{ msg: { a: 1 }, payload: Buffer.from('xyz') }]);
    const d = new FrameDecoder();
    expect(d.push(bytes.subarray(0, 2))).toEqual([]);
    expect(d.pending).toBe(2);
    expect(d.push(bytes.subarray(2, bytes.length - 1))).toEqual([]);
    // the header has been consumed; body and partial payload wait
    expect(d.pending).toBe(bytes.length - 1 - HEADER_BYTES);
    const got = d.push(bytes.subarray(bytes.length - 1));
    expect(got.map(norm)).toEqual([{ a: 1, [PAYLOAD_KEY]: { payload: fingerprint(Buffer.from('xyz')) } }]);
    expect(d.pending).toBe(0);
  });

  it('round-trips 1 MiB payloads and offsets above 2^32 with random split points', () => {
    const r = seededRandom(7);
    const frames: Frame[] = Array.from({ length: 6 }, (_, i) => ({
      msg: { t: 'q', id: i + 1, op: 'write', a: { offset: 2 ** 32 * (i + 1) + i * 4096 + 1 } },
      payload: i % 2 ? seededBytes(i, (1 << 20) - i) : [seededBytes(i, 1000), seededBytes(i + 50, (1 << 20) - 1000)],
    }));
    frames.push({ msg: { t: 'r', id: 7, r: { digest: seededBytes(9, 1 << 20) } } }); // 1 MiB inside MessagePack too
    frames.push({ msg: { t: 'q', id: 99, op: 'read', a: { offset: 2 ** 53 - 1, length: 0 } } });
    const bytes = framesToBytes(frames);
    const want = frames.map(expected);
    for (let trial = 0; trial < 12; trial++) {
      const d = new FrameDecoder();
      const got: unknown[] = [];
      let at = 0;
      while (at < bytes.length) {
        // mix tiny and large pieces so headers, bodies and payloads straddle chunk edges
        const n = r() < 0.3 ? 1 + Math.floor(r() * 10) : 1 + Math.floor(r() * 600_000);
        got.push(...d.push(bytes.subarray(at, at + n)));
        at += n;
      }
      expect(got.length).toBe(frames.length);
      expect(got.map(norm)).toEqual(want);
      const first = got[0] as { a: { offset: number }; p: Buffer[] };
      expect(typeof first.a.offset).toBe('number'); // a float64 on the wire, never a BigInt
      expect(first.a.offset).toBe(2 ** 32 + 1);
      expect(Array.isArray(first.p)).toBe(true);
      expect(first.p.every((b) => Buffer.isBuffer(b))).toBe(true);
      expect((got.at(-1) as { a: { offset: number } }).a.offset).toBe(2 ** 53 - 1);
    }
  });

  it('hands the payload over as views of the received chunks (no copy when it sits in one chunk)', () => {
    const payload = seededBytes(1, 5000);
    const bytes = framesToBytes([{ msg: { t: 'r', id: 1, r: {} }, payload }]);
    const [m] = new FrameDecoder().push(bytes) as Array<{ p: Buffer[] }>;
    expect(m!.p).toHaveLength(1);
    expect(m!.p[0]!.buffer).toBe(bytes.buffer);
    expect(m!.p[0]!.equals(payload)).toBe(true);
  });

  it('accepts a frame of exactly the limit and refuses one byte more', () => {
    const msg = { x: 'y'.repeat(100) };
    const body = encodeBody(msg);
    const frame = Buffer.concat([header(body.length, 10), body, Buffer.alloc(10, 7)]);
    const got = new FrameDecoder(body.length + 10).push(frame);
    expect(got.map(norm)).toEqual([{ ...msg, [PAYLOAD_KEY]: { payload: fingerprint(Buffer.alloc(10, 7)) } }]);
    expect(() => new FrameDecoder(body.length + 9).push(frame)).toThrow(FrameError);
  });

  it('writeFrame refuses a frame above the limit (body + payload), writing nothing', () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (c: Buffer) => chunks.push(c));
    expect(() => writeFrame(out, { data: Buffer.alloc(1000) }, undefined, undefined, 100)).toThrow(FrameError);
    expect(() => writeFrame(out, { t: 'r' }, Buffer.alloc(98), undefined, 100)).toThrow(FrameError);
    expect(chunks).toEqual([]);
  });

  it('calls onFlushed once the payload is written', async () => {
    const out = new PassThrough();
    out.resume();
    const flushed: string[] = [];
    writeFrame(out, { a: 1 }, [Buffer.from('a'), Buffer.from('b')], () => flushed.push('payload'));
    writeFrame(out, { a: 2 }, undefined, () => flushed.push('body only'));
    await new Promise<void>((resolve) => out.end(resolve));
    expect(flushed).toEqual(['payload', 'body only']);
  });
});

describe('limits before allocation', () => {
  it.each<[number, number]>([
    [MAX_FRAME_BYTES + 1, 0],
    [0, MAX_FRAME_BYTES + 1],
    [MAX_FRAME_BYTES, 1], // each part legal, the sum not
    [0xffffffff, 0xffffffff], // the sum does not wrap around
    [2 ** 31, 0],
  ])('a header announcing %d + %d bytes throws at once', (bodyLen, payloadLen) => {
    const d = new FrameDecoder();
    // Only the header arrives: the decoder must throw now, not wait for (or allocate) the rest.
    expect(() => d.push(header(bodyLen, payloadLen))).toThrow(FrameError);
    expect(d.pending).toBeLessThanOrEqual(HEADER_BYTES);
  });

  it('throws on the header even when it arrives a byte at a time', () => {
    const d = new FrameDecoder(1000);
    const h = header(500, 501);
    for (let i = 0; i < HEADER_BYTES - 1; i++) expect(d.push(h.subarray(i, i + 1))).toEqual([]);
    expect(() => d.push(h.subarray(HEADER_BYTES - 1))).toThrow(/above the limit/);
    expect(d.pending).toBe(0);
  });

  it('does not allocate the announced size for a legal but incomplete frame', () => {
    const d = new FrameDecoder();
    const before = process.memoryUsage().arrayBuffers;
    // MAX_FRAME_BYTES announced, 10 bytes delivered: only those 10 bytes are held.
    for (let i = 0; i < 20; i++) {
      const di = new FrameDecoder();
      expect(di.push(Buffer.concat([header(100, MAX_FRAME_BYTES - 100), Buffer.alloc(10)]))).toEqual([]);
      expect(di.pending).toBe(10);
    }
    expect(d.push(Buffer.concat([header(MAX_FRAME_BYTES, 0), Buffer.alloc(10)]))).toEqual([]);
    expect(d.pending).toBe(10);
    const grew = process.memoryUsage().arrayBuffers - before;
    expect(grew).toBeLessThan(32 << 20); // 21 x 64 MiB had it allocated up front
  });

  it('a frame after a good one that announces too much still throws', () => {
    const good = framesToBytes([{ msg: { ok: 1 } }]);
    const d = new FrameDecoder(1000);
    expect(() => d.push(Buffer.concat([good, header(5000)]))).toThrow(FrameError);
  });
});

describe('garbage bodies', () => {
  it.each<[string, Buffer]>([
    ['empty body', Buffer.alloc(0)],
    ['truncated map', Buffer.from('82a161', 'hex')],
    ['trailing bytes after a value', Buffer.from('0102', 'hex')],
    ['array32 claiming 4G entries', Buffer.from('ddffffffff', 'hex')],
    ['map32 claiming 4G entries', Buffer.from('dfffffffff', 'hex')],
    ['str32 claiming 4 GB', Buffer.from('dbffffffff61', 'hex')],
    ['bin32 claiming 4 GB', Buffer.from('c6ffffffff61', 'hex')],
    ['unknown extension', Buffer.from('c7010161', 'hex')],
    ['record extension without data', Buffer.from('d47201', 'hex')],
    ['reference extension', Buffer.from('d46901', 'hex')],
  ])('%s -> FrameError', (_name, body) => {
    expect(() => decodeBody(body)).toThrow(FrameError);
    const d = new FrameDecoder();
    expect(() => d.push(Buffer.concat([header(body.length), body]))).toThrow(FrameError);
  });

  it('a payload attached to a non-object message is a FrameError', () => {
    const body = encodeBody(42);
    expect(() => new FrameDecoder().push(Buffer.concat([header(body.length, 3), body, Buffer.from('abc')]))).toThrow(FrameError);
  });

  it('a "p" inside the body is never taken for a payload', () => {
    for (const p of ['junk', 5, [1, 2], { x: 1 }, [Buffer.from('ab')], null]) {
      const body = encodeBody({ t: 'q', id: 1, op: 'write', a: { offset: 0 }, [PAYLOAD_KEY]: p });
      const [m] = new FrameDecoder().push(Buffer.concat([header(body.length), body])) as Array<Record<string, unknown>>;
      expect(m![PAYLOAD_KEY]).toBeUndefined();
      const [m2] = new FrameDecoder().push(Buffer.concat([header(body.length, 2), body, Buffer.from('zz')])) as Array<Record<string, unknown>>;
      expect(norm(m2)).toMatchObject({ [PAYLOAD_KEY]: { payload: fingerprint(Buffer.from('zz')) } });
    }
  });

  it('never throws anything but FrameError for random bodies and payloads', () => {
    const r = seededRandom(99);
    let errors = 0;
    for (let i = 0; i < 3000; i++) {
      const body = seededBytes(i, 1 + Math.floor(r() * 64));
      const plen = r() < 0.3 ? Math.floor(r() * 16) : 0;
      try {
        new FrameDecoder().push(Buffer.concat([header(body.length, plen), body, Buffer.alloc(plen)]));
      } catch (e) {
        expect(e).toBeInstanceOf(FrameError);
        errors++;
      }
    }
    expect(errors).toBeGreaterThan(0);
  });
});

describe('readFrames over a pipe', () => {
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('delivers every message in order across arbitrary chunking', async () => {
    const pipe = new PassThrough();
    const got: unknown[] = [];
    const errs: Error[] = [];
    readFrames(pipe, (m) => got.push(m), (e) => errs.push(e));
    const bytes = framesToBytes(SMALL);
    for (let i = 0; i < bytes.length; i += 3) pipe.write(bytes.subarray(i, i + 3));
    await new Promise<void>((resolve) => pipe.end(resolve));
    await settle();
    expect(errs).toEqual([]);
    expect(got.map(norm)).toEqual(SMALL.map(expected));
  });

  it('reports one framing error, then ignores the rest of the stream', async () => {
    const pipe = new PassThrough();
    const got: unknown[] = [];
    const errs: Error[] = [];
    readFrames(pipe, (m) => got.push(m), (e) => errs.push(e), { maxBytes: 1000 });
    pipe.write(framesToBytes([{ msg: { n: 1 } }]));
    pipe.write(header(1_000_000));
    pipe.write(framesToBytes([{ msg: { n: 2 } }]));
    pipe.write(Buffer.from([1, 2, 3]));
    await new Promise<void>((resolve) => pipe.end(resolve));
    await settle();
    expect(got).toEqual([{ n: 1 }]);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toBeInstanceOf(FrameError);
  });

  it('resumes a stream that was paused on purpose', async () => {
    const pipe = new PassThrough();
    pipe.pause();
    const got: unknown[] = [];
    readFrames(pipe, (m) => got.push(m), () => undefined);
    pipe.end(framesToBytes([{ msg: { n: 1 } }]));
    await new Promise((resolve) => pipe.on('end', resolve));
    expect(got).toEqual([{ n: 1 }]);
  });
});
