/**
 * The slab socket: reads land in shared slabs, never twice in the same bytes, so every chunk
 * emitted earlier still holds what was received when the stream ends. Real TCP on 127.0.0.1.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { MIN_READ_BYTES, poisonReusedSlabs, slabSocket, slabStats, startReusing } from '../../src/ssh/slab-socket.js';

let server: Server | undefined;
afterEach(() => new Promise<void>((r) => (server ? server.close(() => r()) : r())));

/** A server that sends `data` in writes of random sizes, then ends. Resolves with its port. */
function serve(data: Buffer): Promise<number> {
  return new Promise((resolve) => {
    server = createServer((c) => {
      let at = 0;
      const more = () => {
        while (at < data.length) {
          const n = Math.min(data.length - at, 1 + Math.floor(Math.random() * 200_000));
          const ok = c.write(data.subarray(at, at + n));
          at += n;
          if (!ok) return void c.once('drain', more);
        }
        c.end();
      };
      more();
    });
    server.listen(0, '127.0.0.1', () => resolve((server!.address() as { port: number }).port));
  });
}

function collect(sock: Socket): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    sock.on('data', (c: Buffer) => chunks.push(c));
    sock.on('end', () => resolve(chunks));
    sock.on('error', reject);
  });
}

/** Node's own record of TCP_NODELAY for a socket, which it applies to the handle once connected. */
function noDelayOf(sock: Socket): unknown {
  const key = Object.getOwnPropertySymbols(sock).find((k) => k.description === 'kSetNoDelay');
  if (!key) throw new Error("this Node keeps no kSetNoDelay on its sockets: the test needs another way to read TCP_NODELAY");
  return (sock as unknown as Record<symbol, unknown>)[key];
}

describe('slabSocket', () => {
  it('turns Nagle off only when asked (pulling), and the bytes arrive either way', async () => {
    const data = randomBytes(1 << 20);
    for (const noDelay of [false, true]) {
      const port = await serve(data);
      const sock = slabSocket('127.0.0.1', port, { noDelay });
      expect(noDelayOf(sock)).toBe(noDelay);
      expect(Buffer.concat(await collect(sock)).equals(data)).toBe(true);
      await new Promise<void>((r) => server!.close(() => r()));
      server = undefined;
    }
  }, 30_000);

  it('every chunk keeps its bytes to the end, across many slabs', async () => {
    const data = randomBytes(24 << 20);
    const port = await serve(data);
    const slab = 256 * 1024;
    const chunks = await collect(slabSocket('127.0.0.1', port, { slabBytes: slab }));
    // Checked only now: a slab region read into twice would have changed an earlier chunk.
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    const slabs = new Set(chunks.map((c) => c.buffer));
    expect(slabs.size).toBeGreaterThan((24 << 20) / slab - 1);
    for (const c of chunks) expect(c.buffer.byteLength).toBe(slab);
    // Chunks of one slab lie one after the other, never overlapping.
    const ends = new Map<ArrayBufferLike, number>();
    for (const c of chunks) {
      expect(c.byteOffset).toBeGreaterThanOrEqual(ends.get(c.buffer) ?? 0);
      ends.set(c.buffer, c.byteOffset + c.length);
    }
  }, 30_000);

  it('a read gets at least MIN_READ_BYTES of room', async () => {
    const data = randomBytes(8 << 20);
    const port = await serve(data);
    const chunks = await collect(slabSocket('127.0.0.1', port, { slabBytes: MIN_READ_BYTES * 3 }));
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    // Each read was given the rest of its slab, and a new slab started before that rest fell under MIN_READ_BYTES.
    for (const c of chunks) expect(c.buffer.byteLength - c.byteOffset).toBeGreaterThanOrEqual(MIN_READ_BYTES);
  }, 30_000);

  it('pause() stops the data and resume() brings the rest', async () => {
    const data = randomBytes(4 << 20);
    const port = await serve(data);
    const sock = slabSocket('127.0.0.1', port);
    const chunks: Buffer[] = [];
    sock.pause();
    sock.on('data', (c: Buffer) => chunks.push(c));
    await new Promise<void>((r) => sock.once('connect', () => r()));
    await new Promise((r) => setTimeout(r, 200));
    expect(chunks).toHaveLength(0);
    const ended = new Promise<void>((r) => sock.once('end', () => r()));
    sock.resume();
    await ended;
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
  }, 30_000);

  it('once reusing, two slabs take turns; a slab is filled again only after the other one', async () => {
    const data = randomBytes(24 << 20);
    const port = await serve(data);
    const slab = 256 * 1024;
    const sock = slabSocket('127.0.0.1', port, { slabBytes: slab });
    const copies: Buffer[] = [];
    const views: Buffer[] = [];
    let isReused: ((b: Uint8Array) => boolean) | undefined;
    const before = slabStats();
    poisonReusedSlabs(true);
    try {
      await new Promise<void>((resolve, reject) => {
        sock.on('data', (c: Buffer) => {
          // The reader copies within the event, as the receive guard makes ssh2 and the frame reader do.
          copies.push(Buffer.from(c));
          if (isReused) views.push(c);
          // Switched after the first MiB: the slab filled until then is never filled again.
          else if (copies.reduce((n, b) => n + b.length, 0) > 1 << 20) isReused = startReusing(sock);
        });
        sock.on('end', resolve);
        sock.on('error', reject);
      });
    } finally {
      poisonReusedSlabs(false);
    }
    expect(Buffer.concat(copies).equals(data)).toBe(true);
    const slabs = [...new Set(views.map((c) => c.buffer))];
    expect(slabs).toHaveLength(2);
    for (const c of views) expect(isReused!(c)).toBe(true);
    expect(isReused!(copies[0]!)).toBe(false);
    const after = slabStats();
    expect(after.reused - before.reused).toBeGreaterThan((22 << 20) / slab);
    // Each chunk was overwritten since (poisoned, then refilled): a view kept past its read is garbage.
    const kept = views.slice(0, 10);
    expect(kept.some((c, i) => !c.equals(copies[copies.length - views.length + i]!))).toBe(true);
    // Within a slab, reads follow each other; the next slab starts from its beginning.
    let last = views[0]!;
    for (const c of views.slice(1)) {
      if (c.buffer === last.buffer) expect(c.byteOffset).toBe(last.byteOffset + last.length);
      else expect(c.byteOffset).toBe(0);
      last = c;
    }
  }, 30_000);

  it('startReusing is undefined for a socket that is not a slab socket', () => {
    expect(startReusing(new Socket())).toBeUndefined();
  });

  it('a refused connection is an error event (ECONNREFUSED), as from any socket', async () => {
    const port = await serve(Buffer.alloc(0));
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    const err = await new Promise<NodeJS.ErrnoException>((resolve) => slabSocket('127.0.0.1', port).on('error', resolve));
    expect(err.code).toBe('ECONNREFUSED');
  });
});
