/**
 * ssh2 builds every outgoing packet in a fresh `Buffer.allocUnsafe` (a 32 KiB data packet:
 * 65,536 of them per 2 GiB pushed), encrypts it in place and writes it to the socket. Each
 * is an ArrayBuffer of its own that V8 must track, collect and free on the client's main thread
 * (measured in BENCHMARKS.md, "Outgoing packets from a pool").
 *
 * Here packets of up to PACKET_BUFFER_BYTES come from a free list instead, and a buffer goes
 * back on the list only from the callback of the socket write that carried it: Node calls it
 * once the kernel has taken the bytes, and nothing else holds a packet after ssh2 has
 * written it. A packet that is not written as it was allocated (a cipher that encrypts into
 * another buffer) is never handed back: it is collected as before, and the list takes a
 * fresh buffer.
 *
 * ssh2 exposes no hook for this: during its cipher's `allocPacket`, and only then,
 * `Buffer.allocUnsafe` hands out pooled buffers. The cipher object is replaced at every key
 * exchange, so each write checks that the current one is wrapped.
 */
import type { Client } from 'ssh2';

/** The largest packet pooled: a full data packet (32 KiB payload, headers, padding, tag). */
export const PACKET_BUFFER_BYTES = 33 * 1024;
/** Free buffers kept (8.25 MiB); beyond that a returned buffer is left to the collector. */
const KEEP_FREE = 256;

const free: Buffer<ArrayBuffer>[] = [];
/** A packet handed out -> the pooled buffer it is a view of. */
const baseOf = new WeakMap<Uint8Array, Buffer<ArrayBuffer>>();
const stats = { allocated: 0, reused: 0, returned: 0 };

const allocUnsafe = Buffer.allocUnsafe;
/** Marks a cipher or socket already wrapped. */
const wrapped = Symbol('pdc.pooledPackets');

function pooledAllocUnsafe(size: number): Buffer<ArrayBuffer> {
  if (!(Number.isInteger(size) && size >= 0 && size <= PACKET_BUFFER_BYTES)) return allocUnsafe(size);
  let base = free.pop();
  if (base) stats.reused++;
  else {
    base = allocUnsafe(PACKET_BUFFER_BYTES);
    stats.allocated++;
  }
  const packet = base.subarray(0, size);
  baseOf.set(packet, base);
  return packet;
}

/** Counters for tests: buffers allocated, handed out again, and returned by finished writes. */
export function packetPoolStats(): Readonly<typeof stats> {
  return { ...stats };
}

type Cipher = { allocPacket?: (payloadLen: number) => Buffer; [wrapped]?: true };

function wrapCipher(cipher: Cipher | undefined): void {
  if (!cipher || cipher[wrapped] || typeof cipher.allocPacket !== 'function') return;
  const alloc = cipher.allocPacket;
  cipher.allocPacket = function (this: Cipher, payloadLen: number) {
    Buffer.allocUnsafe = pooledAllocUnsafe;
    try {
      return alloc.call(this, payloadLen);
    } finally {
      Buffer.allocUnsafe = allocUnsafe;
    }
  };
  cipher[wrapped] = true;
}

type WritableSocket = { write: (...args: unknown[]) => boolean; [wrapped]?: true };
type ClientInternals = { _sock?: WritableSocket; _protocol?: { _cipher?: Cipher } };

/** Pool the packets `client` sends (once per client; later calls do nothing). */
export function poolPackets(client: Client): void {
  const internals = client as unknown as ClientInternals;
  const sock = internals._sock;
  if (!sock || sock[wrapped] || typeof sock.write !== 'function') return;
  sock[wrapped] = true;
  const write = sock.write.bind(sock);
  wrapCipher(internals._protocol?._cipher);
  sock.write = (...args: unknown[]) => {
    wrapCipher(internals._protocol?._cipher);
    const base = args.length === 1 && args[0] instanceof Uint8Array ? baseOf.get(args[0]) : undefined;
    if (!base) return write(...args);
    return write(args[0], () => {
      stats.returned++;
      if (free.length < KEEP_FREE) free.push(base);
    });
  };
}
