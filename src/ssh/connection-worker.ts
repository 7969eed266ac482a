/**
 * A connection thread: one SSH connection (ssh2 client, key exchange, encryption, packets and
 * socket I/O) running in a worker thread of its own, so that several connections use several
 * cores instead of sharing the main thread. The main thread keeps the protocol (framing, RPC,
 * the run's bookkeeping) and sees each channel as a ThreadChannel (thread-connection.ts).
 *
 * It never prompts: it connects after the main thread's first connection has authenticated,
 * with the same resolved host configuration, and fails (the transport then connects on the
 * main thread) where authentication would need a question answered.
 */
import { parentPort, workerData } from 'node:worker_threads';
import type { ClientChannel } from 'ssh2';
import { toWireError } from '../errors/pdc-error.js';
import { DIRECT_CHUNKS, type DirectChunkSource } from '../protocol/frame-reader.js';
import { connectSsh, type SshConnection } from './connect.js';
import { openExec } from './exec-channel.js';
import { RECEIVE_BATCH_BYTES, type FromThread, type ThreadConnectData, type ToThread } from './thread-messages.js';

const port = parentPort!;
const data = workerData as ThreadConnectData;
const abort = new AbortController();
const channels = new Map<number, ClientChannel>();
/** Receive buffers the main thread has given back. */
const free: ArrayBuffer[] = [];
let ssh: SshConnection | undefined;

function post(m: FromThread, transfer?: ArrayBuffer[]): void {
  port.postMessage(m, transfer);
}

/**
 * Gathers a channel's output into RECEIVE_BATCH_BYTES buffers and hands each over when it is
 * full, or at the end of the event loop's turn, so a small answer is never held back.
 */
class Batcher {
  private buf: Uint8Array | undefined;
  private used = 0;
  private scheduled = false;

  constructor(private readonly ch: number) {}

  add(chunk: Uint8Array): void {
    for (let off = 0; off < chunk.length; ) {
      this.buf ??= new Uint8Array(free.pop() ?? new ArrayBuffer(RECEIVE_BATCH_BYTES));
      const n = Math.min(chunk.length - off, this.buf.length - this.used);
      this.buf.set(chunk.subarray(off, off + n), this.used);
      this.used += n;
      off += n;
      if (this.used === this.buf.length) this.flush();
    }
    if (this.buf && !this.scheduled) {
      this.scheduled = true;
      setImmediate(() => {
        this.scheduled = false;
        this.flush();
      });
    }
  }

  flush(): void {
    const b = this.buf;
    if (!b || this.used === 0) return;
    const used = this.used;
    this.buf = undefined;
    this.used = 0;
    post({ t: 'data', ch: this.ch, data: new Uint8Array(b.buffer, 0, used) }, [b.buffer as ArrayBuffer]);
  }
}

function openChannel(id: number, command: string, direct: boolean): void {
  if (!ssh) return post({ t: 'openFailed', ch: id, error: { code: 'CONNECTION_LOST', message: 'the connection is not up' } });
  openExec(ssh.client, ssh.display, command, direct).then(
    (channel) => {
      channels.set(id, channel);
      const out = new Batcher(id);
      const take = (channel as unknown as DirectChunkSource)[DIRECT_CHUNKS];
      if (take) {
        // What arrived before this reader came, first and in order.
        for (let c: Buffer | null; (c = channel.read() as Buffer | null) !== null; ) out.add(c);
        // A reader taking chunks directly must copy them before returning: the batch is that copy.
        take((chunk) => out.add(chunk));
      }
      channel.on('data', (chunk: Buffer) => out.add(chunk));
      channel.stderr.on('data', (chunk: Buffer) => post({ t: 'stderr', ch: id, data: new Uint8Array(chunk) }));
      channel.on('error', () => {});
      channel.once('close', () => {
        out.flush();
        channels.delete(id);
        void channel.exitStatus.then(({ code, signal }) => post({ t: 'gone', ch: id, code, signal }));
      });
      post({ t: 'opened', ch: id });
    },
    (err: unknown) => post({ t: 'openFailed', ch: id, error: toWireError(err) }),
  );
}

function write(id: number, bytes: Uint8Array): void {
  const channel = channels.get(id);
  // Written to a channel that has closed: dropped, as ssh2 drops them (the reader sees the close).
  if (!channel) return;
  const buffer = bytes.buffer as ArrayBuffer;
  // ssh2 has encrypted the bytes into packets of its own once the write's callback runs.
  channel.write(Buffer.from(buffer, bytes.byteOffset, bytes.byteLength), () =>
    post({ t: 'recycle', ch: id, buffer, bytes: bytes.byteLength }, [buffer]),
  );
}

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'exec':
      return openChannel(m.ch, m.command, m.direct);
    case 'write':
      return write(m.ch, m.data);
    case 'end':
      channels.get(m.ch)?.end();
      return;
    case 'signal':
      channels.get(m.ch)?.signal(m.name);
      return;
    case 'close':
      channels.get(m.ch)?.close();
      return;
    case 'recycle':
      if (m.buffer.byteLength === RECEIVE_BATCH_BYTES) free.push(m.buffer);
      return;
    case 'abort':
      abort.abort();
      return;
    case 'shutdown':
      abort.abort();
      void (ssh?.close() ?? Promise.resolve()).finally(() => post({ t: 'closed' }));
      return;
  }
});

connectSsh(data.target, {
  homeDir: data.homeDir,
  acceptNewHostKey: data.acceptNewHostKey,
  ...(data.connectTimeoutMs !== undefined ? { connectTimeoutMs: data.connectTimeoutMs } : {}),
  ...(data.keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs: data.keepaliveIntervalMs } : {}),
  secrets: data.password !== undefined ? { password: Promise.resolve(data.password) } : {},
  signal: abort.signal,
  noDelay: data.noDelay,
  log: (message) => post({ t: 'log', message }),
}).then(
  (connection) => {
    ssh = connection;
    void connection.lost.then((err) => post({ t: 'lost', error: err.toWire() }));
    post({ t: 'ready', setupMs: connection.setupMs });
  },
  (err: unknown) => post({ t: 'failed', error: toWireError(err) }),
);
