/**
 * The copying frame decoder (chunks whose memory is reused once push() returns) and the frame
 * reader over a stream that hands its chunks over directly. Every chunk is fed from one scratch
 * buffer that is overwritten right after each push: a view kept anywhere would show the garbage.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { CopyingFrameDecoder } from '../../src/protocol/copying-decoder.js';
import { DIRECT_CHUNKS, readFrames } from '../../src/protocol/frame-reader.js';
import { FrameError, HEADER_BYTES, PAYLOAD_KEY, encodeFrame, joinPayload } from '../../src/protocol/framing.js';
import { RpcClient } from '../../src/protocol/rpc.js';

const bytesOf = (msg: unknown, payload?: Buffer | Buffer[]) => Buffer.concat(encodeFrame(msg, payload));

const FRAMES: { msg: Record<string, unknown> | string | number; payload?: Buffer }[] = [
  { msg: { t: 'q', id: 1, op: 'hello', a: { protocol: 1 } } },
  { msg: { t: 'r', id: 1, r: { digest: Buffer.from('00ff', 'hex') } } },
  { msg: { t: 'q', id: 2, op: 'write', a: { offset: 2 ** 40 } }, payload: Buffer.from([0, 1, 2, 255, 7]) },
  { msg: { t: 'r', id: 3, e: { code: 'TARGET_IO', message: 'ünïcödé ✓' } } },
  { msg: 'a bare string' },
  { msg: { t: 'r', id: 4, r: {} }, payload: Buffer.from('the last payload') },
];
const STREAM = Buffer.concat(FRAMES.map((f) => bytesOf(f.msg, f.payload)));

/** A decoded message with its payload joined, for comparing by content. */
function plain(m: unknown): unknown {
  if (!m || typeof m !== 'object') return m;
  const o = { ...(m as Record<string, unknown>) };
  if (PAYLOAD_KEY in o) o[PAYLOAD_KEY] = joinPayload(o[PAYLOAD_KEY] as Buffer[]).toString('hex');
  return JSON.parse(JSON.stringify(o));
}
const WANT = FRAMES.map((f) => plain(f.payload ? { ...(f.msg as object), [PAYLOAD_KEY]: [f.payload] } : f.msg));

/** Push `bytes` in pieces cut at `cuts`, each through the same scratch buffer, poisoned after the push. */
function feedThroughScratch(push: (chunk: Buffer) => unknown[] | void, bytes: Buffer, cuts: number[]): unknown[] {
  const scratch = Buffer.alloc(bytes.length);
  const out: unknown[] = [];
  let at = 0;
  for (const end of [...cuts, bytes.length]) {
    const n = bytes.copy(scratch, 0, at, end);
    out.push(...(push(scratch.subarray(0, n)) ?? []));
    scratch.fill(0xee);
    at = end;
  }
  return out;
}

describe('CopyingFrameDecoder', () => {
  it('decodes every frame right when cut at every byte boundary, though each chunk is overwritten after push()', () => {
    for (let cut = 0; cut <= STREAM.length; cut++) {
      const d = new CopyingFrameDecoder();
      const got = feedThroughScratch((c) => d.push(c), STREAM, [cut]);
      // Compared only after all pushes: a payload or body kept as a view would have been poisoned.
      expect(got.map(plain), `cut at ${cut}`).toEqual(WANT);
      expect(d.pending).toBe(0);
    }
  });

  it('decodes one byte at a time', () => {
    const d = new CopyingFrameDecoder();
    const cuts = Array.from({ length: STREAM.length - 1 }, (_, i) => i + 1);
    expect(feedThroughScratch((c) => d.push(c), STREAM, cuts).map(plain)).toEqual(WANT);
  });

  it('copies a payload into the buffer payloadInto gives for that message, else into a new one', () => {
    const into = Buffer.alloc(64);
    const asked: unknown[] = [];
    const d = new CopyingFrameDecoder(undefined, (msg, length) => {
      asked.push([msg.id, length]);
      return msg.id === 2 ? into : msg.id === 4 ? Buffer.alloc(3) : undefined;
    });
    const got = d.push(STREAM) as Record<string, unknown>[];
    expect(asked).toEqual([
      [2, 5],
      [4, 16],
    ]);
    const p2 = (got[2]![PAYLOAD_KEY] as Buffer[])[0]!;
    expect(p2.buffer).toBe(into.buffer);
    expect(into.subarray(0, 5)).toEqual(Buffer.from([0, 1, 2, 255, 7]));
    // A buffer too small for the payload is not used.
    const p4 = (got[5]![PAYLOAD_KEY] as Buffer[])[0]!;
    expect(p4.toString()).toBe('the last payload');
    expect(p4.length).toBe(16);
  });

  it('refuses a frame above the limit from its header, before asking for a buffer', () => {
    let asked = false;
    const d = new CopyingFrameDecoder(1000, () => {
      asked = true;
      return undefined;
    });
    const h = Buffer.alloc(HEADER_BYTES);
    h.writeUInt32BE(10, 0);
    h.writeUInt32BE(1_000_000, 4);
    expect(() => d.push(h)).toThrow(FrameError);
    expect(asked).toBe(false);
  });

  it('refuses a payload on a message that is not an object, and drops a `p` that is not the payload', () => {
    expect(() => new CopyingFrameDecoder().push(bytesOf('text', Buffer.from('x')))).toThrow(/non-object/);
    expect(new CopyingFrameDecoder().push(bytesOf({ a: 1, p: 'forged' }))).toEqual([{ a: 1 }]);
    const empty = Buffer.alloc(HEADER_BYTES);
    expect(() => new CopyingFrameDecoder().push(empty)).toThrow(FrameError);
  });
});

/** A stream offering direct chunks: the consumer a reader installs is returned by `consumer()`. */
function directStream(): { stream: PassThrough; consumer: () => (chunk: Buffer) => void } {
  const stream = new PassThrough();
  let taken: ((chunk: Buffer) => void) | undefined;
  (stream as unknown as Record<symbol, unknown>)[DIRECT_CHUNKS] = (c: (chunk: Buffer) => void) => (taken = c);
  return { stream, consumer: () => taken! };
}

describe('readFrames over a stream that hands its chunks over directly', () => {
  it('reads what the stream buffered first, then copies every directly handed chunk', () => {
    const { stream, consumer } = directStream();
    stream.pause();
    const first = bytesOf(FRAMES[0]!.msg);
    stream.write(first.subarray(0, 5));
    const got: unknown[] = [];
    const reader = readFrames(stream, (m) => got.push(m), (e) => got.push(e));
    expect(reader.copies).toBe(true);
    const rest = Buffer.concat([first.subarray(5), STREAM.subarray(first.length)]);
    feedThroughScratch(consumer(), rest, [3, 40, 41]);
    expect(got.map(plain)).toEqual(WANT);
  });

  it('after stop(), nothing more is copied into a payload buffer', () => {
    const { stream, consumer } = directStream();
    const into = Buffer.alloc(32, 0x11);
    const got: unknown[] = [];
    const reader = readFrames(stream, (m) => got.push(m), () => undefined, { payloadInto: () => into });
    const frame = bytesOf({ t: 'r', id: 9, r: {} }, Buffer.alloc(20, 0x22));
    consumer()(frame.subarray(0, frame.length - 10));
    expect(into.subarray(0, 10)).toEqual(Buffer.alloc(10, 0x22));
    reader.stop();
    consumer()(frame.subarray(frame.length - 10));
    expect(into.subarray(10, 20)).toEqual(Buffer.alloc(10, 0x11));
    expect(got).toEqual([]);
  });

  it('a stream without the offer is read through data events, its payloads views (copies is false)', async () => {
    const stream = new PassThrough();
    const got: unknown[] = [];
    const reader = readFrames(stream, (m) => got.push(m), () => undefined);
    expect(reader.copies).toBe(false);
    stream.end(STREAM);
    await new Promise((r) => stream.on('end', r));
    expect(got.map(plain)).toEqual(WANT);
  });
});

describe('RpcClient over a stream read directly', () => {
  it('lands an answer in the buffer its call supplied; once failed, copies nothing more into it', async () => {
    const { stream, consumer } = directStream();
    const rpc = new RpcClient(stream, new PassThrough(), 'test');
    expect(rpc.copiesPayloads).toBe(true);
    const into = Buffer.alloc(4096, 0x11);
    const answered = rpc.call('read', { offset: 0, length: 100 }, undefined, into);
    consumer()(bytesOf({ t: 'r', id: 1, r: {} }, Buffer.alloc(100, 0x33)));
    const r = (await answered) as { p: Buffer[] };
    expect(r.p[0]!.buffer).toBe(into.buffer);
    expect(r.p[0]).toEqual(Buffer.alloc(100, 0x33));

    const into2 = Buffer.alloc(4096, 0x11);
    const second = rpc.call('read', { offset: 0, length: 100 }, undefined, into2);
    const frame = bytesOf({ t: 'r', id: 2, r: {} }, Buffer.alloc(100, 0x44));
    consumer()(frame.subarray(0, 60));
    rpc.dispose();
    await expect(second).rejects.toMatchObject({ code: 'AGENT_DIED' });
    // The caller has its buffer back and may reuse it: the rest of the answer must not land there.
    into2.fill(0x55);
    consumer()(frame.subarray(60));
    expect(into2).toEqual(Buffer.alloc(4096, 0x55));
  });
});
