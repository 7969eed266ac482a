import { PassThrough, Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { FrameDecoder, HEADER_BYTES, encodeBody, encodeFrame, joinPayload, writeFrame } from '../../src/protocol/framing.js';
import { DIRECT_CHUNKS, type DirectChunkSource } from '../../src/protocol/frame-reader.js';
import { MAX_IN_FLIGHT } from '../../src/protocol/limits.js';
import { BULK_ROOM_BYTES } from '../../src/protocol/outbox.js';
import { type RpcHandler, RpcClient, WithPayload, serveRpc } from '../../src/protocol/rpc.js';

/** Two one-way pipes: client -> server and server -> client. */
function pipes() {
  return { up: new PassThrough(), down: new PassThrough() };
}

const clients: RpcClient[] = [];
afterEach(() => {
  for (const c of clients.splice(0)) c.dispose();
});

function connect(handler: RpcHandler, opts: ConstructorParameters<typeof RpcClient>[3] = {}) {
  const { up, down } = pipes();
  const fatal: Error[] = [];
  serveRpc(up, down, handler, (e) => fatal.push(e));
  const client = new RpcClient(down, up, 'test', opts);
  clients.push(client);
  return { client, up, down, fatal };
}

/** The client's `call` is typed per op; the toy handlers take anything. */
function call(client: RpcClient, op: string, args: unknown, payload?: Buffer | Buffer[]): Promise<Record<string, unknown>> {
  return client.call(op as 'close', args as Record<string, never>, payload) as unknown as Promise<Record<string, unknown>>;
}

async function rejection(p: Promise<unknown>): Promise<PdcError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(PdcError);
    return e as PdcError;
  }
  throw new Error('expected a rejection');
}

const tick = (ms = 0) => new Promise((resolve) => setTimeout(resolve, ms));

describe('RpcClient <-> serveRpc', () => {
  it('resolves many concurrent requests with the right results', async () => {
    const { client, fatal } = connect((op, a) => {
      const { n } = a as { n: number };
      return { op, square: n * n, big: n * 2 ** 33 };
    });
    const results = await Promise.all(Array.from({ length: 500 }, (_, n) => call(client, 'sq', { n })));
    results.forEach((r, n) => expect(r).toEqual({ op: 'sq', square: n * n, big: n * 2 ** 33 }));
    expect(client.inFlight).toBe(0);
    expect(fatal).toEqual([]);
  });

  it('matches responses that come back out of order by id', async () => {
    const order: number[] = [];
    const { client } = connect(async (_op, a) => {
      const { n } = a as { n: number };
      await tick((10 - n) * 5); // later requests answer first
      order.push(n);
      return { n };
    });
    const results = await Promise.all(Array.from({ length: 10 }, (_, n) => call(client, 'x', { n })));
    expect(results.map((r) => r.n)).toEqual(Array.from({ length: 10 }, (_, n) => n));
    expect(order[0]).toBe(9); // the responses really were out of order
  });

  it('carries payloads both ways', async () => {
    const { client } = connect((_op, _a, payload) => {
      const data = joinPayload(payload);
      return new WithPayload({ got: data.length }, [Buffer.from(data).reverse(), Buffer.from('!')]);
    });
    const data = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i & 255));
    const r = await call(client, 'echo', {}, [data.subarray(0, 10), data.subarray(10)]);
    expect(r.got).toBe(data.length);
    expect(joinPayload(r.p as Buffer[]).equals(Buffer.concat([Buffer.from(data).reverse(), Buffer.from('!')]))).toBe(true);
  });

  it('releases a payload once it is written', async () => {
    let released = 0;
    const { client } = connect(() => new WithPayload({}, Buffer.alloc(100), () => released++));
    await call(client, 'x', {});
    await tick(10); // the write callback may run just after the client saw the bytes
    expect(released).toBe(1);
  });

  it('turns handler errors into PdcErrors with their code and hint, and keeps serving', async () => {
    const { client, fatal } = connect((op) => {
      if (op === 'pdc') throw new PdcError('TARGET_NO_SPACE', 'disk full', { hint: 'free some' });
      if (op === 'plain') throw new Error('kaboom');
      if (op === 'string') throw 'just a string'; // eslint-disable-line no-throw-literal
      if (op === 'reject') return Promise.reject(new PdcError('SOURCE_CHANGED', 'changed'));
      return { ok: true };
    });
    const e1 = await rejection(call(client, 'pdc', {}));
    expect(e1.code).toBe('TARGET_NO_SPACE');
    expect(e1.message).toBe('disk full');
    expect(e1.hint).toBe('free some');
    const e2 = await rejection(call(client, 'plain', {}));
    expect(e2.code).toBe('INTERNAL');
    expect(e2.message).toContain('kaboom');
    expect((await rejection(call(client, 'string', {}))).message).toContain('just a string');
    expect((await rejection(call(client, 'reject', {}))).code).toBe('SOURCE_CHANGED');
    expect(await call(client, 'ok', {})).toEqual({ ok: true });
    expect(client.failed).toBeUndefined();
    expect(fatal).toEqual([]);
  });

  it('a handler returning nothing gives an empty result', async () => {
    const { client } = connect(() => undefined);
    expect(await call(client, 'x', {})).toEqual({});
  });

  it('rejects pending calls with AGENT_DIED when the stream ends, and every later call too', async () => {
    const { client, down } = connect(() => new Promise(() => undefined));
    const p = Promise.all([call(client, 'a', {}), call(client, 'b', {})]);
    await tick();
    down.end();
    expect((await rejection(p)).code).toBe('AGENT_DIED');
    expect(client.inFlight).toBe(0);
    expect((await rejection(call(client, 'c', {}))).code).toBe('AGENT_DIED');
  });

  it('rejects with CONNECTION_LOST on a stream error', async () => {
    const { client, down } = connect(() => new Promise(() => undefined));
    const p = call(client, 'a', {});
    await tick();
    down.destroy(new Error('ECONNRESET'));
    expect((await rejection(p)).code).toBe('CONNECTION_LOST');
  });

  it('rejects with IDLE_TIMEOUT when the agent never answers', async () => {
    const { client } = connect(() => new Promise(() => undefined), { idleTimeoutMs: 300 });
    const e = await rejection(call(client, 'hang', {}));
    expect(e.code).toBe('IDLE_TIMEOUT');
    expect(e.hint).toMatch(/--timeout/);
    expect(client.failed?.code).toBe('IDLE_TIMEOUT');
  });

  it('does not time out while nothing is pending', async () => {
    const { client } = connect(() => ({ ok: 1 }), { idleTimeoutMs: 100 });
    await call(client, 'x', {});
    await tick(400);
    expect(client.failed).toBeUndefined();
    expect(await call(client, 'x', {})).toEqual({ ok: 1 });
  });

  it('lets explainFailure replace the error', async () => {
    const { client, down } = connect(() => new Promise(() => undefined), {
      explainFailure: () => new PdcError('REMOTE_NODE_MISSING', 'no node there'),
    });
    const p = call(client, 'a', {});
    await tick();
    down.end();
    expect((await rejection(p)).code).toBe('REMOTE_NODE_MISSING');
  });

  it('rejects pending calls with PROTOCOL_ERROR on a framing error', async () => {
    const { up, down } = pipes();
    up.resume();
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const p = call(client, 'a', {});
    const h = Buffer.alloc(HEADER_BYTES);
    h.writeUInt32BE(0xffffffff, 0); // announces 4 GB
    down.write(h);
    const e = await rejection(p);
    expect(e.code).toBe('PROTOCOL_ERROR');
    expect(e.message).toMatch(/above the limit/);
  });

  it.each<[string, unknown]>([
    ['a request instead of a response', { t: 'q', id: 1, op: 'x', a: {} }],
    ['a response to an unknown id', { t: 'r', id: 42, r: {} }],
    ['a response with a string id', { t: 'r', id: '1', r: {} }],
    ['a bare number', 7],
  ])('rejects with PROTOCOL_ERROR on %s', async (_name, frame) => {
    const { up, down } = pipes();
    up.resume();
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const p = call(client, 'a', {});
    writeFrame(down, frame);
    expect((await rejection(p)).code).toBe('PROTOCOL_ERROR');
  });

  it('rejects with PROTOCOL_ERROR for an undecodable body', async () => {
    const { up, down } = pipes();
    up.resume();
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const p = call(client, 'a', {});
    const h = Buffer.alloc(HEADER_BYTES); // announces an empty body, which cannot be decoded
    down.write(h);
    expect((await rejection(p)).code).toBe('PROTOCOL_ERROR');
  });

  it('maps an unknown error code from the agent to INTERNAL', async () => {
    const { up, down } = pipes();
    up.resume();
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const p = call(client, 'a', {});
    writeFrame(down, { t: 'r', id: 1, e: { code: 'FROM_THE_FUTURE', message: 'new' } });
    const e = await rejection(p);
    expect(e.code).toBe('INTERNAL');
    expect(e.message).toBe('new');
  });

  it('does not take a "p" inside the result for a payload', async () => {
    const { up, down } = pipes();
    up.resume();
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const p = call(client, 'a', {});
    writeFrame(down, { t: 'r', id: 1, r: { x: 1, p: 'junk' } });
    const r = await p;
    expect(r.x).toBe(1);
    expect(r.p).toBeUndefined();
  });

  it('a call whose frame is too large rejects with PROTOCOL_ERROR and leaves the client usable', async () => {
    const { client } = connect(() => ({ ok: 1 }));
    const e = await rejection(call(client, 'big', {}, Buffer.alloc(70 << 20)));
    expect(e.code).toBe('PROTOCOL_ERROR');
    expect(client.inFlight).toBe(0);
    expect(await call(client, 'x', {})).toEqual({ ok: 1 });
  });
  it('answers a small request ahead of block data the agent has not yet handed to its stream', async () => {
    // The agent's stdout as a pipe sshd drains slowly: a block's bytes reach the client, but its
    // write completes only when the test lets it, so the stream counts it as still held.
    const { up, down } = pipes();
    const held: Array<() => void> = [];
    const gate = new Writable({
      write(chunk: Buffer, _enc, cb) {
        down.write(chunk);
        if (chunk.length < 64 * 1024) cb();
        else held.push(() => cb());
      },
    });
    const step = async () => {
      held.shift()!();
      await tick(20);
    };
    const blocks = [1, 2, 3].map((i) => Buffer.alloc(BULK_ROOM_BYTES * 2, i));
    serveRpc(up, gate, (op, a) => (op === 'read' ? new WithPayload({}, blocks[(a as { i: number }).i]!) : { small: true }), () => undefined);
    const client = new RpcClient(down, up, 'test');
    clients.push(client);
    const answered: string[] = [];
    const reads = [0, 1, 2].map((i) => call(client, 'read', { i }).then((r) => (answered.push(`read ${i}`), r)));
    await tick(20); // all three reads answered by the handler; only the first fits the stream's room
    const small = call(client, 'tiny', {}).then((r) => (answered.push('tiny'), r));
    await tick(20);
    expect(answered).toEqual(['read 0']); // its block's write has not completed
    await step();
    // The small answer went to the stream while reads 1 and 2 waited for room: it comes next.
    expect(answered).toEqual(['read 0', 'tiny', 'read 1']);
    await step();
    const got = await Promise.all(reads);
    expect(await small).toEqual({ small: true });
    expect(answered).toEqual(['read 0', 'tiny', 'read 1', 'read 2']);
    got.forEach((r, i) => expect(joinPayload(r.p as Buffer[]).equals(blocks[i]!)).toBe(true));
  });
});

describe('serveRpc on its own', () => {
  /** Send raw frames to a server and collect its responses. */
  function server(handler: RpcHandler) {
    const { up, down } = pipes();
    const fatal: Error[] = [];
    const responses: Array<Record<string, unknown>> = [];
    const dec = new FrameDecoder();
    down.on('data', (c: Buffer) => responses.push(...(dec.push(c) as Array<Record<string, unknown>>)));
    serveRpc(up, down, handler, (e) => fatal.push(e));
    return { up, fatal, responses };
  }

  it('calls onFatal (and answers nothing) for a frame that is not a request', async () => {
    const s = server(() => ({}));
    writeFrame(s.up, { t: 'r', id: 1, r: {} });
    await tick(10);
    expect(s.fatal).toHaveLength(1);
    expect(s.fatal[0]!.name).toBe('FrameError');
    expect(s.responses).toEqual([]);
  });

  it('calls onFatal for an oversized header', async () => {
    const s = server(() => ({}));
    const h = Buffer.alloc(HEADER_BYTES);
    h.writeUInt32BE(0xffffffff, 4);
    s.up.write(h);
    await tick(10);
    expect(s.fatal).toHaveLength(1);
    expect(s.fatal[0]!.name).toBe('FrameError');
  });

  it(`answers requests beyond MAX_IN_FLIGHT (${MAX_IN_FLIGHT}) with PROTOCOL_ERROR instead of queueing them`, async () => {
    const hang: Array<() => void> = [];
    const s = server(() => new Promise((resolve) => hang.push(() => resolve({ done: true }))));
    const frames: Buffer[] = [];
    for (let id = 1; id <= MAX_IN_FLIGHT + 5; id++) {
      const body = encodeBody({ t: 'q', id, op: 'x', a: {} });
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32BE(body.length, 0);
      frames.push(h, body);
    }
    s.up.write(Buffer.concat(frames));
    await tick(20);
    expect(hang).toHaveLength(MAX_IN_FLIGHT);
    expect(s.responses.map((r) => r.id)).toEqual([1, 2, 3, 4, 5].map((k) => MAX_IN_FLIGHT + k));
    for (const r of s.responses) expect((r.e as { code: string }).code).toBe('PROTOCOL_ERROR');
    for (const h of hang) h();
    await tick(20);
    expect(s.responses).toHaveLength(MAX_IN_FLIGHT + 5);
  });

  it('an input that lends its chunks: payloads are copied into the pool, each buffer given back once its request is answered', async () => {
    const up = new PassThrough() as PassThrough & DirectChunkSource;
    let lend: ((chunk: Buffer) => void) | undefined;
    up[DIRECT_CHUNKS] = (consumer) => void (lend = consumer);
    const down = new PassThrough();
    const responses: Array<Record<string, unknown>> = [];
    const dec = new FrameDecoder();
    down.on('data', (c: Buffer) => responses.push(...(dec.push(c) as Array<Record<string, unknown>>)));
    const acquired: Buffer[] = [];
    const released: Buffer[] = [];
    const pool = {
      acquire: (n: number) => (acquired.push(Buffer.alloc(n + 16)), acquired.at(-1)!),
      release: (b: Buffer) => void released.push(b),
    };
    const finish: Array<() => void> = [];
    const seen: string[] = [];
    serveRpc(
      up,
      down,
      (_op, _a, payload) => {
        seen.push(joinPayload(payload).toString());
        return new Promise((resolve) => finish.push(() => resolve({})));
      },
      () => undefined,
      { payloads: pool },
    );
    const frames = Buffer.concat([...encodeFrame({ t: 'q', id: 1, op: 'x', a: {} }, Buffer.from('first')), ...encodeFrame({ t: 'q', id: 2, op: 'x', a: {} }, Buffer.from('second'))]);
    lend!(frames);
    frames.fill(0); // the lender reuses its memory at once
    await tick(10);
    expect(seen).toEqual(['first', 'second']);
    expect(acquired.map((b) => b.subarray(0, 6).toString())).toEqual(['first\0', 'second']);
    expect(released).toEqual([]); // nothing given back while its request is unanswered
    finish[1]!();
    await tick(10);
    expect(responses.map((r) => r.id)).toEqual([2]);
    expect(released).toEqual([acquired[1]]);
    finish[0]!();
    await tick(10);
    expect(released).toEqual([acquired[1], acquired[0]]);
  });
});
