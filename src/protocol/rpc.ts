import type { Readable, Writable } from 'node:stream';
import { PdcError, toWireError } from '../errors/pdc-error.js';
import { type FrameReader, readFrames } from './frame-reader.js';
import { FrameError, PAYLOAD_KEY, type Payload } from './framing.js';
import { MAX_IN_FLIGHT } from './limits.js';
import { type OpName, type Ops, isRequestFrame, isResponseFrame } from './messages.js';
import { isOpName, readResult } from './ops.js';
import { Outbox } from './outbox.js';

interface Pending {
  op: string;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** Where the answer's payload is copied, when payloads are copied at all (see call). */
  into?: Buffer;
}

export interface RpcClientOptions {
  /** Fail every outstanding request when nothing arrives for this long while some are pending. 0 = off. */
  idleTimeoutMs?: number;
  /** Called once when the client fails; may supply a better error (e.g. from the exit status). */
  explainFailure?: (err: PdcError) => PdcError;
}

/**
 * The calling side of the protocol over any pair of streams. Many requests may be
 * in flight; responses are matched by id. The first failure (stream end, framing
 * error, idle timeout) rejects everything outstanding and every later call.
 */
export class RpcClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private failure: PdcError | undefined;
  private lastInbound = Date.now();
  private idleTimer: NodeJS.Timeout | undefined;
  private readonly outbox: Outbox;
  private readonly reader: FrameReader;

  constructor(
    input: Readable,
    output: Writable,
    readonly label: string,
    private readonly options: RpcClientOptions = {},
  ) {
    this.outbox = new Outbox(output);
    this.reader = readFrames(
      input,
      (m) => this.onMessage(m),
      (e) => this.fail(new PdcError('PROTOCOL_ERROR', `${label}: ${e.message}`, { cause: e })),
      {
        payloadInto: (m) => (isResponseFrame(m) ? this.pending.get(m.id)?.into : undefined),
        onChunk: () => (this.lastInbound = Date.now()),
      },
    );
    // A failure while the reader was being set up (bytes already buffered) could not stop it.
    if (this.failure) this.reader.stop();
    const ended = () => this.fail(new PdcError('AGENT_DIED', `${label}: the agent's stream closed unexpectedly`));
    input.on('end', ended);
    input.on('close', ended);
    input.on('error', (e) => this.fail(new PdcError('CONNECTION_LOST', `${label}: ${e.message}`, { cause: e })));
    output.on('error', (e) => this.fail(new PdcError('CONNECTION_LOST', `${label}: ${e.message}`, { cause: e })));
    const idle = options.idleTimeoutMs ?? 0;
    if (idle > 0) {
      this.idleTimer = setInterval(() => {
        if (this.pending.size > 0 && Date.now() - this.lastInbound > idle) {
          this.fail(
            new PdcError('IDLE_TIMEOUT', `${label}: no answer for ${Math.round(idle / 1000)} s`, {
              hint: 'the connection or the remote host stalled; raise --timeout if the remote disk is very slow',
            }),
          );
        }
      }, Math.min(1000, idle)).unref();
    }
  }

  get inFlight(): number {
    return this.pending.size;
  }

  get failed(): PdcError | undefined {
    return this.failure;
  }

  /**
   * True when answers' payloads are copied out of the stream (into the buffer a call supplies,
   * else a new one); false when they arrive as views of the stream's chunks and `into` goes unused.
   */
  get copiesPayloads(): boolean {
    return this.reader.copies;
  }

  /**
   * Send a request (with an optional raw payload, e.g. block data) and resolve with the result;
   * a response payload arrives as result.p. Where payloads are copied (copiesPayloads), one that
   * fits lands in `into`, which the caller must not reuse before the call has settled.
   */
  call<K extends OpName>(op: K, args: Ops[K]['args'], payload?: Payload, into?: Buffer): Promise<Ops[K]['result']> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.lastInbound = Date.now();
      this.pending.set(id, { op, resolve: resolve as (v: unknown) => void, reject, into });
      try {
        this.outbox.send({ t: 'q', id, op, a: args }, payload);
      } catch (e) {
        this.pending.delete(id);
        reject(e instanceof FrameError ? new PdcError('PROTOCOL_ERROR', `${this.label}: ${e.message}`) : e);
      }
    });
  }

  /** Fail all outstanding and future calls with `err` (first failure wins). */
  fail(err: PdcError): void {
    if (this.failure) return;
    this.failure = this.options.explainFailure ? this.options.explainFailure(err) : err;
    // Nothing more is copied into the buffers of the calls rejected here: their owners reuse them.
    this.reader?.stop();
    if (this.idleTimer) clearInterval(this.idleTimer);
    for (const p of this.pending.values()) p.reject(this.failure);
    this.pending.clear();
  }

  /** Stop timers; the owner closes the streams. */
  dispose(): void {
    if (this.idleTimer) clearInterval(this.idleTimer);
    this.fail(new PdcError('AGENT_DIED', `${this.label}: closed`));
  }

  private onMessage(m: unknown): void {
    if (!isResponseFrame(m)) {
      this.fail(new PdcError('PROTOCOL_ERROR', `${this.label}: unexpected message from the agent`));
      return;
    }
    const p = this.pending.get(m.id);
    if (!p) {
      this.fail(new PdcError('PROTOCOL_ERROR', `${this.label}: response to unknown request ${m.id}`));
      return;
    }
    this.pending.delete(m.id);
    if (m.e) {
      p.reject(PdcError.fromWire(m.e));
      return;
    }
    const payload = (m as unknown as Record<string, unknown>)[PAYLOAD_KEY];
    let result: Record<string, unknown>;
    try {
      result = this.readAnswer(p.op, m.r, !!payload);
    } catch (e) {
      p.reject(new PdcError('PROTOCOL_ERROR', `${this.label}: ${(e as Error).message}`, { cause: e }));
      return;
    }
    if (payload) result[PAYLOAD_KEY] = payload;
    p.resolve(result);
  }

  /**
   * An answer's body, read through the op table for the protocol's ops (only
   * declared fields, each valid). Only the frame's raw payload counts, never a `p` in the body.
   */
  private readAnswer(op: string, body: unknown, hasPayload: boolean): Record<string, unknown> {
    if (isOpName(op)) return readResult(op, body, hasPayload) as Record<string, unknown>;
    const result = (body && typeof body === 'object' ? body : {}) as Record<string, unknown>;
    delete result[PAYLOAD_KEY];
    return result;
  }
}

/**
 * A handler's result that carries a raw payload. `release` runs once the payload
 * has been handed to the output stream (pooled buffers go back to their pool).
 */
export class WithPayload {
  constructor(
    readonly result: unknown,
    readonly payload: Payload,
    readonly release?: () => void,
  ) {}
}

/** Handlers get the request's payload as the third argument: views of the input's chunks, or copies (ServeRpcOptions.payloads). */
export type RpcHandler = (op: string, args: unknown, payload: Buffer[] | undefined) => Promise<unknown> | unknown;

export interface ServeRpcOptions {
  /**
   * Where requests' payloads are copied when the input's chunks are lent (DIRECT_CHUNKS): a
   * buffer is acquired per payload and released once its request was answered (so a handler
   * must not keep its payload past its answer). Absent: a new buffer per payload.
   */
  payloads?: { acquire(length: number): Buffer; release(buf: Buffer): void };
}

/**
 * The serving side: decode requests, run the handler, write one response each.
 * A framing error answers nothing (the stream is no longer trustworthy): onFatal is called.
 */
export function serveRpc(input: Readable, output: Writable, handler: RpcHandler, onFatal: (err: Error) => void, opts: ServeRpcOptions = {}): void {
  let inFlight = 0;
  const outbox = new Outbox(output);
  const { payloads } = opts;
  const lent = new WeakMap<object, Buffer>();
  const giveBack = (m: object) => {
    const buf = lent.get(m);
    if (!buf) return;
    lent.delete(m);
    payloads!.release(buf);
  };
  const respond = (frame: unknown, payload?: Payload, release?: () => void) => {
    try {
      outbox.send(frame, payload, release);
    } catch (e) {
      release?.();
      onFatal(e as Error);
    }
  };
  readFrames(
    input,
    (m) => {
      if (!isRequestFrame(m)) {
        onFatal(new FrameError('malformed request frame'));
        return;
      }
      if (inFlight >= MAX_IN_FLIGHT) {
        giveBack(m);
        respond({ t: 'r', id: m.id, e: { code: 'PROTOCOL_ERROR', message: `more than ${MAX_IN_FLIGHT} requests in flight` } });
        return;
      }
      inFlight++;
      Promise.resolve()
        .then(() => handler(m.op, m.a, (m as unknown as Record<string, Buffer[] | undefined>)[PAYLOAD_KEY]))
        .then(
          (r) =>
            r instanceof WithPayload
              ? respond({ t: 'r', id: m.id, r: r.result ?? {} }, r.payload, r.release)
              : respond({ t: 'r', id: m.id, r: r ?? {} }),
          (e) => respond({ t: 'r', id: m.id, e: toWireError(e) }),
        )
        .finally(() => {
          inFlight--;
          giveBack(m);
        });
    },
    onFatal,
    {
      payloadInto: payloads
        ? (msg, length) => {
            const buf = payloads.acquire(length);
            lent.set(msg, buf);
            return buf;
          }
        : undefined,
    },
  );
}

