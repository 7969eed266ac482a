/**
 * The TCP socket an SSH connection reads through. Node reads a socket into a fresh 64 KiB
 * buffer per read, each an ArrayBuffer of its own for V8 to track and free: pulling 2 GiB,
 * about 33,000 of them. Here reads land in 1 MiB slabs instead, one after the other: each read
 * gets the unused rest of the current slab, and a new slab starts when less than a read's worth
 * is left. No byte of a slab is read into twice while it is in use, so the views ssh2 keeps of
 * the packet it is assembling stay valid.
 *
 * At first every slab is new, and freed by the collector when its last view goes. Fresh slabs
 * still cost the collector: slabs held by frames in flight outlive a young collection and are
 * freed only by full ones (92 per 2 GiB pulled, started by the external memory they add up to).
 * So once startReusing() is called, two slabs take turns: a slab is filled again only after the
 * other one has been filled, about a MiB of reads later. That is safe only while nothing keeps a
 * view of a slab beyond the read that filled it, except ssh2's packet in progress (at most one
 * packet, completed by the next 16 bytes). src/ssh/receive-guard.ts makes it so, and calls this.
 *
 * ssh2 listens for 'data' on the socket it is given; with `onread` Node emits none, so the read
 * callback emits each read's bytes as 'data' itself. Everything else (connect, pause and resume,
 * end, errors) is the ordinary net.Socket's.
 */
import { connect, type Socket } from 'node:net';

/** Size of each slab. */
export const SLAB_BYTES = 1024 * 1024;
/** A new slab starts when less than this is left in the current one: reads stay at least this large. */
export const MIN_READ_BYTES = 64 * 1024;

interface Slabs {
  current: Buffer;
  used: number;
  /** While reusing: the slab filled before `current`, to be filled next. */
  other: Buffer | undefined;
}

const slabsOf = new WeakMap<Socket, Slabs>();
const stats = { allocated: 0, reused: 0 };
let poison = false;

export interface SlabSocketOptions {
  /** Size of each slab (default SLAB_BYTES). */
  slabBytes?: number;
  /**
   * Turn off Nagle's algorithm (TCP_NODELAY). Nagle holds a small write back while anything
   * written earlier is unacknowledged: right for bulk data (a tick's packets leave as one
   * write anyway, and the tails it joins save the server reads), wrong for a client that
   * mostly sends small requests and window adjustments and waits for what they ask for.
   */
  noDelay?: boolean;
}

/** Connect to host:port; the socket's reads fill slabs (see the module comment) and are emitted as 'data'. */
export function slabSocket(host: string, port: number, { slabBytes = SLAB_BYTES, noDelay = false }: SlabSocketOptions = {}): Socket {
  const slabs: Slabs = { current: newSlab(slabBytes), used: 0, other: undefined };
  const next = (): Buffer => {
    if (slabs.current.length - slabs.used < MIN_READ_BYTES) nextSlab(slabs);
    return slabs.current.subarray(slabs.used);
  };
  const sock: Socket = connect({
    host,
    port,
    noDelay,
    onread: {
      buffer: next,
      // 'data' listeners in flowing mode give no back-pressure either: keep reading.
      callback: (nread: number, buf: Uint8Array) => {
        slabs.used += nread;
        sock.emit('data', Buffer.from(buf.buffer, buf.byteOffset, nread));
        return true;
      },
    },
  });
  slabsOf.set(sock, slabs);
  return sock;
}

/**
 * From the next read on, two new slabs take turns (see the module comment); the slab in use
 * until now is left to the collector. Returns whether a buffer is a view of those two slabs, or
 * undefined when `sock` is not a slab socket.
 */
export function startReusing(sock: Socket): ((b: Uint8Array) => boolean) | undefined {
  const slabs = slabsOf.get(sock);
  if (!slabs) return undefined;
  const size = slabs.current.length;
  // The slab in use holds bytes read before the caller's guard was in place: never refilled.
  slabs.current = newSlab(size);
  slabs.other = newSlab(size);
  slabs.used = 0;
  const a = slabs.current.buffer;
  const b = slabs.other.buffer;
  return (buf) => buf.buffer === a || buf.buffer === b;
}

/** For tests: overwrite a slab before it is filled again, so that a view wrongly kept reads garbage. */
export function poisonReusedSlabs(on: boolean): void {
  poison = on;
}

/** Whether reused receive memory is poisoned (poisonReusedSlabs): the receive guard's partial packets follow it. */
export function poisoning(): boolean {
  return poison;
}

/** Counters for tests: slabs allocated, and slabs filled again. */
export function slabStats(): Readonly<typeof stats> {
  return { ...stats };
}

function newSlab(size: number): Buffer {
  stats.allocated++;
  return Buffer.allocUnsafeSlow(size);
}

function nextSlab(slabs: Slabs): void {
  if (slabs.other) {
    const filled = slabs.current;
    slabs.current = slabs.other;
    slabs.other = filled;
    stats.reused++;
    if (poison) slabs.current.fill(0xee);
  } else {
    slabs.current = newSlab(slabs.current.length);
  }
  slabs.used = 0;
}
