/**
 * Protocol fuzzing (fast-check, fixed seeds, bounded runs): whatever arrives on the
 * wire, the agent answers each request with a clean error or result (or calls
 * onFatal with a FrameError), never allocates what a peer merely announces, and
 * the client fails with PROTOCOL_ERROR instead of crashing.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createDispatcher } from '../../agent/dispatch.js';
import { PdcError, isErrorCode } from '../../src/errors/index.js';
import { FileService } from '../../src/fileops/file-service.js';
import { FrameDecoder, FrameError, HEADER_BYTES, encodeBody } from '../../src/protocol/framing.js';
import { MAX_BLOCK_SIZE, MAX_FRAME_BYTES, MAX_HASH_BLOCKS, MAX_IO_BYTES, PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { OP_NAMES, isRequestFrame, isResponseFrame } from '../../src/protocol/messages.js';
import { RpcClient, serveRpc } from '../../src/protocol/rpc.js';

const SEED = 20_261_126;
/**
 * Every legitimate allocation the generators below can cause stays under this
 * (4 MiB read/hash buffers plus a 64 KiB block); honouring any announced size
 * (frame lengths, read lengths, hash counts) would exceed it by far.
 */
const ALLOC_BOUND = 8.5 * 1024 * 1024;

let dir: string;
let sourcePath: string;
let targetPath: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pdc-fuzz-'));
  sourcePath = join(dir, 'source.bin');
  targetPath = join(dir, 'target.bin');
  writeFileSync(sourcePath, Buffer.alloc(50_000, 7));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Largest Buffer allocation requested through the public Buffer API while a test runs. */
let maxAlloc = 0;
beforeEach(() => {
  maxAlloc = 0;
  for (const name of ['alloc', 'allocUnsafe', 'allocUnsafeSlow'] as const) {
    const original = Buffer[name].bind(Buffer) as (size: number, ...rest: unknown[]) => Buffer;
    vi.spyOn(Buffer, name).mockImplementation(((size: number, ...rest: unknown[]) => {
      if (size > maxAlloc) maxAlloc = size;
      return original(size, ...rest);
    }) as never);
  }
});
afterEach(() => vi.restoreAllMocks());

function frame(message: unknown, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const body = encodeBody(message);
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(body.length, 0);
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, body, payload]);
}

function rawFrame(body: Uint8Array, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(body.length, 0);
  h.writeUInt32BE(payload.length, 4);
  return Buffer.concat([h, body, payload]);
}

const settle = () => new Promise((resolve) => setImmediate(resolve));

interface AgentRun {
  responses: Array<Record<string, unknown>>;
  fatal: Error[];
  /** Errors that escaped into the stream plumbing (a throw out of the 'data' handler). */
  escaped: unknown[];
  /** Payloads as handed to the handler: must be undefined or a list of Buffers, whatever the body said. */
  payloads: unknown[];
}

/** Run the real dispatcher over pipes, feed it `chunks`, wait for `expected` responses. */
async function runAgent(chunks: Buffer[], expected: number): Promise<AgentRun> {
  const up = new PassThrough();
  const down = new PassThrough();
  const files = new FileService();
  const run: AgentRun = { responses: [], fatal: [], escaped: [], payloads: [] };
  const dispatch = createDispatcher(files);
  const dec = new FrameDecoder();
  down.on('data', (c: Buffer) => run.responses.push(...(dec.push(c) as Array<Record<string, unknown>>)));
  up.on('error', (e) => run.escaped.push(e));
  serveRpc(
    up,
    down,
    (op, a, payload) => {
      run.payloads.push(payload);
      return dispatch(op, a, payload);
    },
    (e) => run.fatal.push(e),
  );
  for (const c of chunks) {
    try {
      up.write(c);
    } catch (e) {
      run.escaped.push(e);
    }
  }
  // Handlers run on real files: wait (bounded) until every request has its answer.
  for (let i = 0; i < 2000 && run.responses.length < expected; i++) await new Promise((r) => setTimeout(r, 2));
  await settle();
  await files.close();
  up.destroy();
  down.destroy();
  return run;
}

function checkAgentRun(run: AgentRun, expected: number): void {
  expect(run.escaped).toEqual([]);
  for (const p of run.payloads) {
    if (p !== undefined) {
      expect(Array.isArray(p), `payload ${String(p)}`).toBe(true);
      for (const b of p as unknown[]) expect(Buffer.isBuffer(b)).toBe(true);
    }
  }
  for (const e of run.fatal) expect(e).toBeInstanceOf(FrameError);
  expect(run.responses).toHaveLength(expected);
  for (const r of run.responses) {
    expect(isResponseFrame(r)).toBe(true);
    if (r.e !== undefined) {
      const e = r.e as { code: unknown; message: unknown };
      expect(isErrorCode(e.code), JSON.stringify(e)).toBe(true);
      // INTERNAL would mean an unexpected exception (a TypeError...) leaked out of a handler.
      expect(e.code, JSON.stringify(e)).not.toBe('INTERNAL');
      expect(typeof e.message).toBe('string');
    } else {
      expect(r.r).toBeTypeOf('object');
    }
  }
  expect(maxAlloc).toBeLessThanOrEqual(ALLOC_BOUND);
}

// ---------- generators ----------

/** Values that must never pass as a count, offset or size. */
const junkNumber = fc.oneof(
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.double({ noNaN: false, noDefaultInfinity: false }).filter((x) => !Number.isSafeInteger(x)),
  fc.constantFrom(NaN, Infinity, -Infinity, -0.5, 0.5, 2 ** 53, 2 ** 64, 1e300, -(2 ** 53)),
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.string({ maxLength: 8 }),
  fc.boolean(),
  fc.constant(null),
  fc.array(fc.integer(), { maxLength: 3 }),
  fc.dictionary(fc.string({ maxLength: 4 }), fc.integer(), { maxKeys: 2 }),
);
const small = fc.integer({ min: 0, max: 70_000 });
/** Any field: a sensible value most of the time, junk otherwise, sometimes absent. */
const field = <T>(ok: fc.Arbitrary<T>) => fc.option(fc.oneof({ weight: 3, arbitrary: ok }, { weight: 2, arbitrary: junkNumber }), { freq: 8 });

const path = fc.oneof(
  fc.constant(() => sourcePath),
  fc.constant(() => targetPath),
  fc.constant(() => dir),
  fc.constant(() => join(dir, 'missing', 'deep', 'file')),
  fc.stringMatching(/^[a-z]{1,6}$/).map((name) => () => join(dir, 'made', name)),
  fc.constantFrom('', 'a\0b', 'x'.repeat(5000)).map((p) => () => p),
  junkNumber.map((v) => () => v),
);

const hashMethod = fc.oneof(fc.constantFrom('xxh64', 'sha256', 'md5', 'sha1', 'nope', '', 'SHA256'), junkNumber);

type Args = () => unknown;
const argsFor: Record<string, fc.Arbitrary<Args>> = {
  hello: fc.record({ protocol: field(fc.constantFrom(PROTOCOL_VERSION, 0, 2)), client: fc.string({ maxLength: 5 }) }).map((a) => () => a),
  stat: fc.record({ path, role: field(fc.constantFrom('source', 'target', 'both')) }).map(({ path: p, role }) => () => ({ path: p(), role })),
  space: path.map((p) => () => ({ path: p() })),
  open: fc
    .record({ path, role: field(fc.constantFrom('source', 'target', 'both')), create: fc.anything({ maxDepth: 0 }), write: fc.option(fc.boolean()), lock: fc.boolean() })
    .map(({ path: p, ...rest }) => () => ({ ...rest, path: p() })),
  hash: fc
    .record({
      first: field(fc.oneof(small, fc.constant(2 ** 40))),
      count: field(fc.oneof(fc.integer({ min: 0, max: 64 }), fc.constantFrom(MAX_HASH_BLOCKS + 1, 2 ** 32, 2 ** 52))),
      blockSize: field(fc.oneof(fc.integer({ min: 0, max: 65_536 }), fc.constantFrom(MAX_BLOCK_SIZE + 1, 2 ** 40))),
      limit: field(fc.oneof(small, fc.constant(2 ** 52))),
      method: hashMethod,
    })
    .map((a) => () => a),
  read: fc
    .record({
      offset: field(fc.oneof(small, fc.constantFrom(2 ** 32 + 1, 2 ** 52))),
      length: field(fc.oneof(small, fc.constantFrom(MAX_IO_BYTES + 1, 2 ** 40, 2 ** 53 - 1))),
      zeroUnit: field(fc.oneof(small, fc.constantFrom(0, MAX_IO_BYTES + 1, 2 ** 40))),
    })
    .map((a) => () => a),
  // Zero runs that pass validation stay small, like writes.
  zero: fc.record({ offset: field(small), length: field(fc.oneof(small, fc.constantFrom(MAX_IO_BYTES + 1, 2 ** 40))), punch: field(fc.boolean()) }).map((a) => () => a),
  // Pieces that pass validation stay small, like writes.
  hashpieces: fc
    .record({
      ranges: field(fc.oneof(fc.constantFrom([0, 10], [0, 4, 8, 8], [4, 1, 2, 1], [0, 0], [0, MAX_IO_BYTES + 1]), fc.array(small, { maxLength: 6 }))),
      grain: field(fc.oneof(fc.integer({ min: 0, max: 65_536 }), fc.constantFrom(MAX_BLOCK_SIZE + 1))),
      method: hashMethod,
    })
    .map((a) => () => a),
  readpieces: fc.record({ ranges: field(fc.oneof(fc.constantFrom([0, 10], [0, 4, 8, 8], [0, MAX_IO_BYTES + 1]), fc.array(small, { maxLength: 6 }))) }).map((a) => () => a),
  writepieces: fc.record({ ranges: field(fc.oneof(fc.constantFrom([0, 10], [0, 4, 8, 8]), fc.array(small, { maxLength: 6 }))) }).map((a) => () => a),
  // Writes and truncates that pass validation stay small: a sparse TiB file would make later digests slow.
  write: fc.record({ offset: field(small) }).map((a) => () => a),
  truncate: fc.record({ size: field(small) }).map((a) => () => a),
  fsync: fc.constant(() => ({})),
  commit: fc.constant(() => ({})),
  digest: fc.record({ method: hashMethod, limit: field(fc.oneof(small, fc.constant(2 ** 52))) }).map((a) => () => a),
  close: fc.constant(() => ({})),
  // Tree ops: the root is always the test's directory (or junk), so whatever passes stays inside it.
  list: fc
    .record({ path, role: field(fc.constantFrom('source', 'target')), after: fc.option(fc.string({ maxLength: 3 })), max: field(fc.integer({ min: 0, max: 2000 })) })
    .map(({ path: p, after, ...rest }) => () => ({ ...rest, path: p(), ...(after === null ? {} : { after }) })),
  mkdir: fc.record({ path, root: field(fc.constant(0)), mode: field(fc.integer({ min: 0, max: 0o7777 })) }).map(({ path: p, root, mode }) => () => ({ root: root === 0 ? dir : root, path: p(), mode })),
  symlink: fc.record({ path, linkTarget: fc.string({ maxLength: 5 }) }).map(({ path: p, linkTarget }) => () => ({ root: dir, path: p(), linkTarget })),
  setmeta: fc
    .record({ path, mode: field(fc.integer({ min: 0, max: 0o777 })), mtimeMs: field(fc.integer({ min: 0, max: 2 ** 41 })) })
    .map(({ path: p, ...rest }) => () => ({ root: dir, path: p(), ...rest })),
  // Only inside a scratch directory of its own: the fuzzed paths name the other ops' files.
  remove: fc.stringMatching(/^[a-z]{1,6}$/).map((name) => () => ({ root: join(dir, 'made'), path: join(dir, 'made', name) })),
  // Batches of small files: read anything; write only small files inside the test's directory (or junk).
  readfiles: fc
    .array(fc.record({ path, size: field(fc.oneof(small, fc.constant(2 ** 40))) }), { maxLength: 4 })
    .map((files) => () => ({ files: files.map(({ path: p, size }) => ({ path: p(), size })) })),
  writefiles: fc
    .record({
      method: hashMethod,
      files: fc.array(fc.record({ path, size: field(fc.integer({ min: 0, max: 100 })), hash: fc.uint8Array({ maxLength: 64 }), mode: field(fc.integer({ min: 0, max: 0o777 })) }), { maxLength: 4 }),
    })
    .map(({ method, files }) => () => ({ root: dir, method, files: files.map(({ path: p, ...rest }) => ({ ...rest, path: p() })) })),
};

/** A request: a known op with fuzzed args, an unknown op, or fully random args; maybe with a payload. */
const request = fc
  .tuple(
    fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...OP_NAMES).chain((op) => argsFor[op]!.map((a) => ({ op: op as unknown, a }))) },
      { weight: 1, arbitrary: fc.string({ maxLength: 10 }).map((op) => ({ op: op as unknown, a: (() => ({})) as Args })) },
      {
        weight: 1,
        arbitrary: fc
          .tuple(fc.constantFrom(...OP_NAMES), fc.anything({ maxDepth: 2, withBigInt: true, withTypedArray: true }))
          .map(([op, a]) => ({ op: op as unknown, a: (() => a) as Args })),
      },
    ),
    fc.option(fc.uint8Array({ maxLength: 64 }), { freq: 3 }),
    fc.option(fc.anything({ maxDepth: 1 }), { freq: 6 }), // a stray "p" in the envelope
  )
  .map(([{ op, a }, payload, stray]) => ({ op, a, payload: payload ?? undefined, stray }));

/** A malformed envelope (must reach onFatal, never the handler). */
const badEnvelope = fc.oneof(
  fc.record({ t: fc.constantFrom('r', 'x', 1), id: fc.integer(), op: fc.constant('stat'), a: fc.constant({}) }),
  fc.record({ t: fc.constant('q'), id: fc.oneof(junkNumber, fc.constant(undefined)), op: fc.constant('hello'), a: fc.constant({}) }),
  fc.record({ t: fc.constant('q'), id: fc.nat(), op: fc.oneof(fc.integer(), fc.constant(null)), a: fc.constant({}) }),
  fc.anything({ maxDepth: 2 }),
);

/** Encode a message, or undefined when msgpackr cannot encode it (e.g. a BigInt beyond 64 bits). */
function tryFrame(message: unknown, payload?: Uint8Array): Buffer | undefined {
  try {
    return frame(message, payload);
  } catch {
    return undefined;
  }
}

/** What the agent will see for a frame, to count the answers it owes. */
function isRequestOnWire(f: Buffer): boolean {
  try {
    const [m] = new FrameDecoder().push(f);
    return isRequestFrame(m);
  } catch {
    return false;
  }
}

/** Cut a buffer into pieces at the given fractions. */
function split(buf: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => Math.floor(c * buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of points) {
    out.push(buf.subarray(at, p));
    at = p;
  }
  out.push(buf.subarray(at));
  return out.filter((b) => b.length > 0);
}

describe('agent fuzzing', () => {
  it('answers every (well-framed) request cleanly, with or without hello first', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.boolean(),
        fc.array(fc.oneof({ weight: 9, arbitrary: request.map((r) => ({ kind: 'req' as const, r })) }, { weight: 1, arbitrary: badEnvelope.map((b) => ({ kind: 'bad' as const, b })) }), {
          minLength: 1,
          maxLength: 12,
        }),
        fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { maxLength: 6 }),
        async (greet, items, cuts) => {
          const frames: Buffer[] = [];
          if (greet) frames.push(frame({ t: 'q', id: 1, op: 'hello', a: { protocol: PROTOCOL_VERSION, client: 'fuzz' } }));
          if (greet) frames.push(frame({ t: 'q', id: 2, op: 'open', a: { path: sourcePath, role: 'source' } }));
          let id = 10;
          for (const it of items) {
            const f =
              it.kind === 'req'
                ? tryFrame({ t: 'q', id: id++, op: it.r.op, a: it.r.a(), ...(it.r.stray !== null ? { p: it.r.stray } : {}) }, it.r.payload)
                : tryFrame(it.b);
            if (f) frames.push(f);
          }
          const expected = frames.filter(isRequestOnWire).length;
          const run = await runAgent(split(Buffer.concat(frames), cuts), expected);
          checkAgentRun(run, expected);
        },
      ),
      { seed: SEED, numRuns: 300, endOnFailure: true },
    );
  });

  it('copes with valid headers around random bodies and payloads', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.uint8Array({ maxLength: 48 }), fc.uint8Array({ maxLength: 16 })), { minLength: 1, maxLength: 8 }), async (parts) => {
        const frames = [frame({ t: 'q', id: 1, op: 'hello', a: { protocol: PROTOCOL_VERSION, client: 'fuzz' } }), ...parts.map(([b, p]) => rawFrame(b, p))];
        // Once a frame fails to decode the stream is dead: only frames before it are answered.
        let expected = 0;
        const dec = new FrameDecoder();
        try {
          for (const f of frames) for (const m of dec.push(f)) if (isRequestFrame(m)) expected++;
        } catch {
          /* the agent stops at the same place */
        }
        const run = await runAgent(frames, expected);
        checkAgentRun(run, expected);
      }),
      { seed: SEED + 1, numRuns: 200, endOnFailure: true },
    );
  });

  it('survives random bytes, and never allocates what a header announces', async () => {
    const header = fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32BE(a >>> 0, 0);
      h.writeUInt32BE(b >>> 0, 4);
      return h;
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), header), { minLength: 1, maxLength: 6 }),
        async (chunks) => {
          let expected = 0;
          const dec = new FrameDecoder();
          try {
            for (const c of chunks) for (const m of dec.push(c)) if (isRequestFrame(m)) expected++;
          } catch {
            /* as above */
          }
          const run = await runAgent(chunks, expected);
          checkAgentRun(run, expected);
          const announced = chunks.reduce((n, c) => n + c.length, 0);
          expect(maxAlloc).toBeLessThanOrEqual(Math.max(ALLOC_BOUND, announced));
        },
      ),
      { seed: SEED + 2, numRuns: 200, endOnFailure: true },
    );
  });

  it('headers announcing more than the limit are refused at once (table)', async () => {
    for (const [b, p] of [
      [MAX_FRAME_BYTES + 1, 0],
      [0, MAX_FRAME_BYTES + 1],
      [0xffffffff, 0xffffffff],
      [MAX_FRAME_BYTES, MAX_FRAME_BYTES],
    ]) {
      const h = Buffer.alloc(HEADER_BYTES);
      h.writeUInt32BE(b!, 0);
      h.writeUInt32BE(p!, 4);
      const run = await runAgent([h], 0);
      expect(run.fatal).toHaveLength(1);
      expect(run.fatal[0]).toBeInstanceOf(FrameError);
      expect(maxAlloc).toBeLessThan(1 << 20);
    }
  });
});

describe('client fuzzing', () => {
  /** A client with one call (id 1) pending; returns what happened after `bytes` arrived. */
  async function feedClient(chunks: Buffer[]) {
    const up = new PassThrough();
    const down = new PassThrough();
    up.resume();
    const client = new RpcClient(down, up, 'fuzz');
    let outcome: { ok: true; value: unknown } | { ok: false; error: unknown } | undefined;
    const p = client.call('hello', { protocol: PROTOCOL_VERSION, client: 'fuzz' }).then(
      (value) => (outcome = { ok: true, value }),
      (error) => (outcome = { ok: false, error }),
    );
    const escaped: unknown[] = [];
    for (const c of chunks) {
      try {
        down.write(c);
      } catch (e) {
        escaped.push(e);
      }
    }
    await settle();
    await settle();
    const before = outcome;
    const failedBefore = client.failed;
    down.end();
    await p;
    await settle();
    client.dispose();
    return { before, after: outcome!, failedBefore, escaped };
  }

  /** What a correct client must conclude from these bytes. */
  function model(chunks: Buffer[]): { msgs: unknown[]; threw: boolean } {
    const dec = new FrameDecoder();
    const msgs: unknown[] = [];
    try {
      for (const c of chunks) msgs.push(...dec.push(c));
      return { msgs, threw: false };
    } catch {
      return { msgs, threw: true };
    }
  }

  const responseLike = fc.oneof(
    fc.record({ t: fc.constantFrom('r', 'q'), id: fc.oneof(fc.constantFrom(1, 2), junkNumber), r: fc.anything({ maxDepth: 2 }) }),
    fc.record({ t: fc.constant('r'), id: fc.constant(1), e: fc.anything({ maxDepth: 2 }) }),
    fc.record({ t: fc.constant('r'), id: fc.constant(1), e: fc.record({ code: fc.string(), message: fc.anything({ maxDepth: 1 }), hint: fc.anything({ maxDepth: 1 }) }) }),
    fc.anything({ maxDepth: 2, withBigInt: true }),
  );
  const wire = fc.oneof(
    fc.uint8Array({ maxLength: 80 }).map((b) => [Buffer.from(b)]),
    fc.tuple(fc.uint8Array({ maxLength: 40 }), fc.uint8Array({ maxLength: 8 })).map(([b, p]) => [rawFrame(b, p)]),
    fc.array(fc.tuple(responseLike, fc.option(fc.uint8Array({ maxLength: 8 }))), { minLength: 1, maxLength: 3 }).map((list) =>
      list.map(([m, p]) => tryFrame(m, p ?? undefined)).filter((f): f is Buffer => f !== undefined),
    ),
  );

  it('fails with PROTOCOL_ERROR (or AGENT_DIED at the end of an incomplete frame), never crashes', async () => {
    await fc.assert(
      fc.asyncProperty(wire, async (chunks) => {
        const { msgs, threw } = model(chunks);
        const r = await feedClient(chunks);
        expect(r.escaped).toEqual([]);
        const first = msgs[0];
        if (msgs.length === 0 && !threw) {
          // nothing complete arrived: still waiting, then the stream's end fails it
          expect(r.before).toBeUndefined();
          expect(r.failedBefore).toBeUndefined();
          expect(r.after.ok).toBe(false);
          expect(((r.after as { error: PdcError }).error as PdcError).code).toBe('AGENT_DIED');
        } else if (isResponseFrame(first) && first.id === 1) {
          // a real answer to our call (however odd its contents)
          expect(r.before).toBeDefined();
          if (!r.before!.ok) expect((r.before as { error: unknown }).error).toBeInstanceOf(PdcError);
          else expect(r.before!.value).toBeTypeOf('object');
          if (msgs.length > 1 || threw) expect(r.failedBefore?.code).toBe('PROTOCOL_ERROR');
        } else {
          expect(r.before).toBeDefined();
          expect(r.before!.ok).toBe(false);
          const e = (r.before as { error: unknown }).error;
          expect(e).toBeInstanceOf(PdcError);
          expect((e as PdcError).code).toBe('PROTOCOL_ERROR');
        }
      }),
      { seed: SEED + 3, numRuns: 300, endOnFailure: true },
    );
  });
});
