/**
 * The main thread's side of a connection thread (connection-worker.ts): an SshLink whose
 * channels are ThreadChannels. Received data is handed to a direct reader (the RPC client's
 * copying decoder) and the buffer goes back to the thread at once; written data is copied into
 * pooled buffers that the thread gives back once ssh2 has encrypted them. So the main thread's
 * per-byte work is one copy each way, and encryption, packets and socket I/O run on another core.
 */
import { Duplex, Readable } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { noUsableConnection, PdcError } from '../errors/pdc-error.js';
import { DIRECT_CHUNKS, type DirectChunkSource } from '../protocol/frame-reader.js';
import { builtFilePath } from '../transport/agent-bundle.js';
import type { ChannelLike, ExitStatus, SshLink } from './exec-channel.js';
import {
  type FromThread,
  THREAD_WRITE_WINDOW_BYTES,
  type ThreadConnectData,
  type ToThread,
  WRITE_PIECE_BYTES,
} from './thread-messages.js';

/** How long close() waits for the thread to end its connection before terminating it. */
const SHUTDOWN_WAIT_MS = 3000;
/** Write buffers kept for reuse per connection (the write window's worth for a few channels). */
const KEEP_WRITE_BUFFERS = 32;

/** Connect in a new thread; resolves once authenticated there. `signal` abandons the attempt. */
export function connectInThread(
  data: ThreadConnectData,
  opts: { display: string; signal?: AbortSignal; log?: (msg: string) => void },
): Promise<SshLink> {
  const conn = new ThreadConnection(data, opts.display, opts.log ?? (() => {}));
  return conn.ready(opts.signal);
}

class ThreadConnection implements SshLink {
  readonly where = 'its own thread';
  setupMs = 0;
  readonly lost: Promise<PdcError>;
  private lose!: (e: PdcError) => void;
  private readonly worker: Worker;
  private readonly channels = new Map<number, ThreadChannel>();
  private readonly opening = new Map<number, { resolve: (c: ThreadChannel) => void; reject: (e: PdcError) => void }>();
  private readonly writeBuffers: ArrayBuffer[] = [];
  private nextChannel = 1;
  /** Settles ready(): with no error once authenticated, else with why not. */
  private onReady: ((err?: PdcError) => void) | undefined;
  private closing: Promise<void> | undefined;
  private onClosed: (() => void) | undefined;
  private gone = false;

  constructor(
    data: ThreadConnectData,
    private readonly display: string,
    private readonly log: (msg: string) => void,
  ) {
    this.lost = new Promise((r) => (this.lose = r));
    this.worker = new Worker(builtFilePath('ssh-worker.js'), { workerData: data });
    this.worker.on('message', (m: FromThread) => this.onMessage(m));
    this.worker.on('error', (err) => this.died(new PdcError('INTERNAL', `the thread of the connection to ${display} failed: ${err.message}`, { cause: err })));
    this.worker.on('exit', () => this.died(new PdcError('CONNECTION_LOST', `the thread of the connection to ${display} ended`, { hint: 'rerun to continue where it stopped' })));
  }

  ready(signal?: AbortSignal): Promise<SshLink> {
    return new Promise((resolve, reject) => {
      const onAbort = () => this.post({ t: 'abort' });
      signal?.addEventListener('abort', onAbort, { once: true });
      this.onReady = (err) => {
        signal?.removeEventListener('abort', onAbort);
        this.onReady = undefined;
        if (!err) return resolve(this);
        void this.worker.terminate();
        reject(err);
      };
    });
  }

  exec(command: string, direct: boolean): Promise<ChannelLike> {
    if (this.gone) return Promise.reject(noUsableConnection(this.display));
    const id = this.nextChannel++;
    return new Promise((resolve, reject) => {
      this.opening.set(id, { resolve, reject });
      this.post({ t: 'exec', ch: id, command, direct });
    });
  }

  close(): Promise<void> {
    return (this.closing ??= (async () => {
      if (!this.gone) {
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, SHUTDOWN_WAIT_MS);
          this.onClosed = () => {
            clearTimeout(timer);
            resolve();
          };
          this.post({ t: 'shutdown' });
        });
      }
      this.gone = true;
      await this.worker.terminate();
      for (const c of this.channels.values()) c.remoteGone();
    })());
  }

  post(m: ToThread, transfer?: ArrayBuffer[]): void {
    if (!this.gone) this.worker.postMessage(m, transfer);
  }

  /** A buffer for written bytes: one the thread gave back, else a new one. */
  takeWriteBuffer(): ArrayBuffer {
    return this.writeBuffers.pop() ?? new ArrayBuffer(WRITE_PIECE_BYTES);
  }

  private onMessage(m: FromThread): void {
    switch (m.t) {
      case 'ready':
        this.setupMs = m.setupMs;
        this.onReady?.();
        return;
      case 'failed':
        this.onReady?.(PdcError.fromWire(m.error));
        return;
      case 'lost':
        if (this.onReady) return this.onReady(PdcError.fromWire(m.error));
        this.lose(PdcError.fromWire(m.error));
        for (const c of this.channels.values()) c.remoteGone();
        return;
      case 'log':
        this.log(m.message);
        return;
      case 'opened': {
        const channel = new ThreadChannel(this, m.ch);
        this.channels.set(m.ch, channel);
        this.opening.get(m.ch)?.resolve(channel);
        this.opening.delete(m.ch);
        return;
      }
      case 'openFailed':
        this.opening.get(m.ch)?.reject(PdcError.fromWire(m.error));
        this.opening.delete(m.ch);
        return;
      case 'data':
        this.channels.get(m.ch)?.received(m.data);
        return;
      case 'stderr':
        this.channels.get(m.ch)?.stderr.push(Buffer.from(m.data.buffer, m.data.byteOffset, m.data.byteLength));
        return;
      case 'recycle':
        if (this.writeBuffers.length < KEEP_WRITE_BUFFERS) this.writeBuffers.push(m.buffer);
        this.channels.get(m.ch)?.written(m.bytes);
        return;
      case 'gone': {
        const channel = this.channels.get(m.ch);
        this.channels.delete(m.ch);
        channel?.exited({ code: m.code, signal: m.signal });
        channel?.remoteGone();
        return;
      }
      case 'closed':
        this.onClosed?.();
        return;
    }
  }

  /** The thread is gone (ended or failed): everything on it is lost. */
  private died(err: PdcError): void {
    if (this.gone) return;
    this.gone = true;
    this.onReady?.(err);
    this.lose(err);
    for (const o of this.opening.values()) o.reject(err);
    this.opening.clear();
    for (const c of this.channels.values()) c.remoteGone();
    this.onClosed?.();
  }
}

/**
 * An exec channel whose connection runs in a thread, shaped as ssh2's ClientChannel is used
 * here: stdin and stdout as one duplex stream, `stderr`, the exit status, and 'close' once the
 * output has been read to its end. A reader may take its output directly (DIRECT_CHUNKS).
 */
class ThreadChannel extends Duplex implements ChannelLike, DirectChunkSource {
  readonly stderr = new Readable({ read() {} });
  readonly exitStatus: Promise<ExitStatus>;
  /** Settles exitStatus (the first call wins). */
  readonly exited: (status: ExitStatus) => void;
  [DIRECT_CHUNKS]?: (consumer: (chunk: Buffer) => void) => void;
  private consumer: ((chunk: Buffer) => void) | undefined;
  /** Written bytes the thread has not yet handed to ssh2. */
  private inFlight = 0;
  /** The callback of a write made while over the window: runs once the thread catches up. */
  private waiting: (() => void) | undefined;
  private ended = false;

  constructor(
    private readonly conn: ThreadConnection,
    private readonly id: number,
  ) {
    super({ allowHalfOpen: true, autoDestroy: false });
    let settle!: (status: ExitStatus) => void;
    this.exitStatus = new Promise((r) => (settle = r));
    this.exited = settle;
    this[DIRECT_CHUNKS] = (consumer) => {
      this.consumer = consumer;
    };
  }

  received(data: Uint8Array): void {
    const chunk = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    if (!this.consumer) {
      this.push(chunk);
      return;
    }
    this.consumer(chunk);
    // The consumer copied what it keeps: the buffer goes back for the thread's next batch.
    this.conn.post({ t: 'recycle', buffer: data.buffer as ArrayBuffer }, [data.buffer as ArrayBuffer]);
  }

  written(bytes: number): void {
    this.inFlight -= bytes;
    if (this.waiting && this.inFlight <= THREAD_WRITE_WINDOW_BYTES) this.release();
  }

  /** The channel closed at the far end (or its connection went): output ends, 'close' follows once it is read. */
  remoteGone(): void {
    if (this.ended) return;
    this.ended = true;
    this.exited({ code: null, signal: null });
    this.release();
    this.push(null);
    this.stderr.push(null);
    if (this.readableEnded) this.destroy();
    else this.once('end', () => this.destroy());
  }

  signal(name: string): void {
    this.conn.post({ t: 'signal', ch: this.id, name });
  }

  close(): void {
    this.conn.post({ t: 'close', ch: this.id });
  }

  override _read(): void {}

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    this.send([chunk], cb);
  }

  override _writev(chunks: Array<{ chunk: Buffer }>, cb: (err?: Error | null) => void): void {
    this.send(
      chunks.map((c) => c.chunk),
      cb,
    );
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.conn.post({ t: 'end', ch: this.id });
    cb();
  }

  /** Copy `parts` into write buffers and hand them to the thread; `cb` waits while the window is full. */
  private send(parts: Buffer[], cb: () => void): void {
    if (this.ended) return cb();
    let piece: Uint8Array | undefined;
    let used = 0;
    const flush = () => {
      const buffer = piece!.buffer as ArrayBuffer;
      this.conn.post({ t: 'write', ch: this.id, data: new Uint8Array(buffer, 0, used) }, [buffer]);
      this.inFlight += used;
      piece = undefined;
      used = 0;
    };
    for (const part of parts) {
      for (let off = 0; off < part.length; ) {
        piece ??= new Uint8Array(this.conn.takeWriteBuffer());
        const n = Math.min(part.length - off, piece.length - used);
        piece.set(part.subarray(off, off + n), used);
        used += n;
        off += n;
        if (used === piece.length) flush();
      }
    }
    if (used > 0) flush();
    if (this.inFlight <= THREAD_WRITE_WINDOW_BYTES) cb();
    else this.waiting = cb;
  }

  private release(): void {
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }
}
