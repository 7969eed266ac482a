import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { seededBytes } from '../../src/benchmark/seeded.js';
import { FrameDecoder, FrameError, PAYLOAD_KEY, joinPayload } from '../../src/protocol/framing.js';
import { BULK_ROOM_BYTES, Outbox, SMALL_PAYLOAD_BYTES } from '../../src/protocol/outbox.js';

/**
 * A stream whose sink takes a write only when the test lets it (as a pipe whose reader
 * is busy): what has been handed to it is in `taken`, in order.
 */
class HeldSink extends Writable {
  readonly taken: Buffer[] = [];
  private held: Array<() => void> = [];
  constructor() {
    super({ highWaterMark: 16 * 1024 });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error | null) => void): void {
    this.taken.push(Buffer.from(chunk));
    this.held.push(() => cb());
  }
  /** Let every write handed so far complete, until nothing is held. */
  async drainAll(): Promise<void> {
    while (this.held.length > 0) {
      for (const f of this.held.splice(0)) f();
      await new Promise((r) => setImmediate(r));
    }
  }
  /** The frames handed so far, decoded in order: [id, payload bytes]. */
  frames(): Array<{ id: number; payload?: Buffer }> {
    const d = new FrameDecoder();
    return this.taken.flatMap((c) => d.push(c)).map((m) => {
      const o = m as Record<string, unknown>;
      const p = o[PAYLOAD_KEY] as Buffer[] | undefined;
      return p ? { id: o.id as number, payload: joinPayload(p) } : { id: o.id as number };
    });
  }
}

const MiB = 1024 * 1024;

describe('Outbox', () => {
  it('writes a small frame ahead of bulk frames still waiting for room, and every bulk frame later in order, byte for byte', async () => {
    const sink = new HeldSink();
    const box = new Outbox(sink);
    const bulk = [1, 2, 3, 4].map((i) => seededBytes(i, 2 * MiB));
    bulk.forEach((b, i) => box.send({ id: i + 1 }, b));
    // The first bulk frame went to the stream (it held less than the room); the rest wait.
    expect(box.waitingFrames).toBe(3);
    const small = seededBytes(9, SMALL_PAYLOAD_BYTES);
    box.send({ id: 100 }); // no payload: a request or a plain answer
    box.send({ id: 101 }, small); // a hash list
    await sink.drainAll();
    const order = sink.frames().map((f) => f.id);
    expect(order).toEqual([1, 100, 101, 2, 3, 4]);
    const got = sink.frames();
    expect(got.find((f) => f.id === 101)!.payload!.equals(small)).toBe(true);
    for (const [i, b] of bulk.entries()) expect(got.find((f) => f.id === i + 1)!.payload!.equals(b)).toBe(true);
    expect(box.waitingFrames).toBe(0);
  });

  it('hands a bulk frame over only while the stream holds less than the room', async () => {
    const sink = new HeldSink();
    const box = new Outbox(sink, 3 * MiB);
    for (let i = 1; i <= 4; i++) box.send({ id: i }, Buffer.alloc(MiB, i));
    // 1, 2 and 3 went while under 3 MiB were held; 4 waits for the first flush.
    expect(box.waitingFrames).toBe(1);
    expect(sink.writableLength).toBeGreaterThanOrEqual(3 * MiB);
    await sink.drainAll();
    expect(sink.frames().map((f) => f.id)).toEqual([1, 2, 3, 4]);
  });

  it('runs onFlushed of a bulk frame once its payload was taken, and of waiting ones when the stream closes', async () => {
    const sink = new HeldSink();
    const box = new Outbox(sink, BULK_ROOM_BYTES);
    const flushed: number[] = [];
    for (let i = 1; i <= 3; i++) box.send({ id: i }, Buffer.alloc(2 * MiB, i), () => flushed.push(i));
    expect(flushed).toEqual([]);
    sink.destroy();
    await new Promise((r) => sink.once('close', r));
    // The frames never handed over are released (nothing holds their buffers); the one handed
    // over is the stream's, which never completed its write.
    expect(flushed.sort()).toEqual([2, 3]);
  });

  it('refuses a frame above the limit when sent, writing nothing', () => {
    const sink = new HeldSink();
    const box = new Outbox(sink, BULK_ROOM_BYTES, 100);
    expect(() => box.send({ t: 'r' }, Buffer.alloc(98))).toThrow(FrameError);
    expect(() => box.send({ t: 'r' }, Buffer.alloc(200 * 1024))).toThrow(FrameError);
    expect(sink.taken).toEqual([]);
    expect(box.waitingFrames).toBe(0);
  });
});
