/**
 * Lets an SSH connection reuse the memory it receives into (src/ssh/slab-socket.ts) by making
 * sure that nothing keeps a view of it beyond the read that filled it.
 *
 * ssh2 handles each read synchronously: it decrypts whole packets in place and hands each
 * packet's payload, a view of the read, to its handlers; a packet split across reads it copies
 * into memory of its own. Most handlers parse and forget, but some keep the view: the key
 * exchange keeps the peer's KEXINIT and host key until the exchange ends, and channel data is
 * queued in the channel's stream until someone reads it. So every payload passes through here
 * first, and one that is a view of reused memory is copied, except the data of a channel whose
 * reader takes it directly: for those channels ssh2's push() hands each chunk straight to the
 * reader, which copies what it keeps before returning (src/protocol/copying-decoder.ts).
 *
 * A packet split across reads ssh2 assembles in a fresh `Buffer.allocUnsafe` of its size: on a
 * 1 Gbit link, where reads are small, nearly every packet (57 full collections per 2 GiB pulled).
 * Those come from a free list instead (PartialPackets below), and go back once the payload carved
 * from one has been handed on, under the same rule: what others keep of it is copied first.
 *
 * ssh2 has no hook for this. Payloads reach handlers through its decipher's `_onPayload`; the
 * decipher is replaced at every key exchange and its `_onPayload` swapped during one, so both
 * properties are turned into accessors that wrap whatever ssh2 assigns, and its `decrypt` is
 * wrapped too (as src/ssh/packet-pool.ts does for sending: during `decrypt`, but not for the
 * handlers it calls, `Buffer.allocUnsafe` hands out pooled buffers). If ssh2 ever changes
 * shape, the guard is not installed and memory is never reused.
 */
import type { Socket } from 'node:net';
import type { Client, ClientChannel } from 'ssh2';
import { DIRECT_CHUNKS, type DirectChunkSource } from '../protocol/frame-reader.js';
import { poisoning, startReusing } from './slab-socket.js';

/** SSH_MSG_CHANNEL_DATA: type byte, then the recipient channel (ours) as a uint32. */
const CHANNEL_DATA = 94;

type OnPayload = (this: unknown, payload: Buffer) => unknown;
type Decrypt = (this: unknown, data: Buffer, p: number, dataLen: number) => unknown;
type Decipher = { _onPayload?: OnPayload; decrypt?: Decrypt };
type Internals = {
  _protocol?: { _decipher?: Decipher };
  _chanMgr?: { get(id: number): unknown };
};

const DIRECT = Symbol('pdc.directReader');
const allocUnsafe = Buffer.allocUnsafe;

/** The largest packet ssh2 accepts (its MAX_PACKET_SIZE): every partial packet fits. */
export const PARTIAL_PACKET_BYTES = 35000;
/** Free partial-packet buffers kept (2.2 MiB); more go to the collector. */
const KEEP_PARTIALS = 64;

/**
 * Buffers for the packets ssh2 assembles across reads. One is handed out for ssh2's
 * `Buffer.allocUnsafe` inside `decrypt`, and comes back through giveBack() once the payload carved
 * from it has been handed on; a buffer handed out for anything else is simply never given back.
 */
class PartialPackets {
  private readonly free: Buffer[] = [];
  private readonly bases = new WeakMap<ArrayBufferLike, Buffer>();
  readonly stats = { allocated: 0, reused: 0 };
  /** Handlers running (called from inside decrypt): their allocations are ordinary ones. */
  handlers = 0;

  readonly alloc = (size: number): Buffer => {
    if (this.handlers > 0 || !(Number.isInteger(size) && size >= 0 && size <= PARTIAL_PACKET_BYTES)) return allocUnsafe(size);
    let base = this.free.pop();
    if (base) this.stats.reused++;
    else {
      base = Buffer.allocUnsafeSlow(PARTIAL_PACKET_BYTES);
      this.bases.set(base.buffer, base);
      this.stats.allocated++;
    }
    return base.subarray(0, size);
  };

  /** Whether `b` is a view of one of these buffers. */
  owns(b: Uint8Array): boolean {
    return this.bases.has(b.buffer);
  }

  giveBack(payload: Uint8Array): void {
    const base = this.bases.get(payload.buffer);
    if (!base || this.free.length >= KEEP_PARTIALS || this.free.includes(base)) return;
    if (poisoning()) base.fill(0xee);
    this.free.push(base);
  }
}

const partials = new PartialPackets();

/** Counters for tests: partial-packet buffers allocated, and handed out again. */
export function partialPacketStats(): Readonly<PartialPackets['stats']> {
  return { ...partials.stats };
}

/** Clients whose payloads are guarded. */
const guarded = new WeakSet<Client>();

/**
 * Guard `client`'s payloads, and once it is ready (authenticated: the identification lines and
 * first key exchange, read before, are not guarded the same way) let its socket reuse memory.
 * Call right after client.connect(); does nothing when ssh2's internals are not as expected.
 */
export function guardReceivedMemory(client: Client, sock: Socket): void {
  const internals = client as unknown as Internals;
  const proto = internals._protocol;
  if (!proto || !('_decipher' in proto)) return;
  let reusing = false;
  let inSlabs: (b: Uint8Array) => boolean = () => false;
  const isReused = (b: Uint8Array) => inSlabs(b) || partials.owns(b);

  const readsDirectly = (payload: Buffer): boolean => {
    if (payload.length < 5 || payload[0] !== CHANNEL_DATA) return false;
    try {
      const channel = internals._chanMgr?.get(payload.readUInt32BE(1)) as Record<symbol, unknown> | undefined;
      return !!channel && channel[DIRECT] === true;
    } catch {
      return false;
    }
  };
  const guard = (payload: Buffer): Buffer => (isReused(payload) && !readsDirectly(payload) ? Buffer.from(payload) : payload);

  onEveryDecipher(proto, (d) => wrapDecipher(d, guard, () => reusing));
  guarded.add(client);
  client.once('ready', () => {
    const slabs = startReusing(sock);
    if (!slabs) return;
    inSlabs = slabs;
    reusing = true;
  });
}

/** Call `wrap` on the protocol's decipher now and on every one ssh2 puts in its place later. */
function onEveryDecipher(proto: { _decipher?: Decipher }, wrap: (d: Decipher | undefined) => void): void {
  let decipher = proto._decipher;
  wrap(decipher);
  Object.defineProperty(proto, '_decipher', {
    configurable: true,
    enumerable: true,
    get: () => decipher,
    set: (d: Decipher | undefined) => {
      wrap(d);
      decipher = d;
    },
  });
}

/**
 * Every payload `decipher` hands on passes through `guard` first, whatever `_onPayload` ssh2
 * assigns; while `reusing()`, the packets it assembles across reads come from the free list.
 */
function wrapDecipher(decipher: Decipher | undefined, guard: (payload: Buffer) => Buffer, reusing: () => boolean): void {
  if (!decipher || typeof decipher !== 'object') return;
  let inner = decipher._onPayload;
  // Handlers allocate as usual (partials.alloc passes their calls on); the payload's memory,
  // if pooled, is free once they return.
  const outer: OnPayload = function (payload) {
    partials.handlers++;
    try {
      return inner!.call(this, guard(payload));
    } finally {
      partials.handlers--;
      partials.giveBack(payload);
    }
  };
  const decrypt = decipher.decrypt;
  if (typeof decrypt === 'function') {
    decipher.decrypt = function (data, p, dataLen) {
      if (!reusing()) return decrypt.call(this, data, p, dataLen);
      const before = Buffer.allocUnsafe;
      Buffer.allocUnsafe = partials.alloc as typeof Buffer.allocUnsafe;
      try {
        return decrypt.call(this, data, p, dataLen);
      } finally {
        Buffer.allocUnsafe = before;
      }
    };
  }
  Object.defineProperty(decipher, '_onPayload', {
    configurable: true,
    enumerable: true,
    get: () => (inner ? outer : inner),
    set: (f: OnPayload | undefined) => {
      inner = f;
    },
  });
}

/**
 * The window a channel read directly keeps open to the server (ssh2's own: 2 MiB). Larger is
 * not better here: OpenSSH's sshd spends more per byte the more it may buffer for a channel
 * (pulling 2 GiB: sshd 1.7-1.9 CPU-s at 4 MiB, 2.5-2.6 at 8 MiB, 5.8-6.2 at 16 MiB).
 */
export const DIRECT_WINDOW_BYTES = 4 * 1024 * 1024;
/** Window handed back in steps of this many bytes read (ssh2: every MiB, one packet and one write each). */
export const WINDOW_STEP_BYTES = 2 * 1024 * 1024;

type DirectChannel = DirectChunkSource &
  Record<symbol, unknown> & {
    push: (chunk: unknown, enc?: BufferEncoding) => boolean;
    incoming: { window: number };
    outgoing: { id: number; state: string };
  };
type WindowProtocol = { channelWindowAdjust(id: number, amount: number): void };

/**
 * Offer direct reading on an exec channel of a guarded client (DIRECT_CHUNKS): once a reader
 * takes it, ssh2's push() hands it each chunk and the guard stops copying that channel's data.
 *
 * Such a reader never holds data back (what arrives is what its requests asked for), so the
 * window only paces the server: it is opened to DIRECT_WINDOW_BYTES and handed back every
 * WINDOW_STEP_BYTES read, which keeps it above ssh2's own threshold (ssh2 then never adjusts it).
 * ssh2's 2 MiB, topped up every MiB, paced a pull of 2 GiB at 4.27-4.67 s against 3.81-3.86 s.
 */
export function offerDirectChunks(client: Client, channel: ClientChannel): void {
  if (!guarded.has(client)) return;
  const protocol = (client as unknown as { _protocol?: Partial<WindowProtocol> })._protocol;
  const ch = channel as unknown as DirectChannel;
  if (typeof protocol?.channelWindowAdjust !== 'function' || typeof ch.incoming?.window !== 'number') return;
  const grant = (bytes: number) => {
    if (bytes <= 0 || ch.outgoing.state === 'closed') return;
    ch.incoming.window += bytes;
    protocol.channelWindowAdjust!(ch.outgoing.id, bytes);
  };
  ch[DIRECT_CHUNKS] = (consumer) => {
    const push = ch.push;
    let read = 0;
    ch.push = function (chunk, enc) {
      if (!Buffer.isBuffer(chunk)) return push.call(this, chunk, enc);
      consumer(chunk);
      read += chunk.length;
      if (read >= WINDOW_STEP_BYTES) {
        grant(read);
        read = 0;
      }
      return true;
    };
    // Only now: until push() delivers directly, the guard copies this channel's data.
    ch[DIRECT] = true;
    grant(DIRECT_WINDOW_BYTES - ch.incoming.window);
  };
}
