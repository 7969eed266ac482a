import type { Writable } from 'node:stream';
import { Packr, Unpackr } from 'msgpackr';
import { MAX_FRAME_BYTES } from './limits.js';

/**
 * Frames: an 8-byte header (body length, payload length; both u32 big-endian),
 * a MessagePack body, then an optional raw binary payload (block data, hash lists).
 *
 * The payload travels outside MessagePack on purpose: on these VMs every fresh
 * multi-MiB allocation costs page faults (~150-250 MB/s), so block data must be
 * neither packed (a copy into a new buffer) nor reassembled on receipt. The sender
 * writes the caller's buffer as is; the receiver hands over the stream's own
 * chunks (views, no copy), to be written with writev. A stream whose memory is
 * reused (the SSH connection's) is decoded by copying-decoder.ts instead, into
 * buffers the requests supply (frame-reader.ts picks).
 * Framing takes streams, never sockets or files, so it is tested over pipes.
 */
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export const HEADER_BYTES = 8;

/** Key under which a decoded message carries its payload (a list of chunk views). */
export const PAYLOAD_KEY = 'p';

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
}

export type Payload = Buffer | readonly Buffer[];

export function payloadLength(p: Payload | undefined): number {
  if (!p) return 0;
  if (Buffer.isBuffer(p)) return p.length;
  let n = 0;
  for (const b of p as readonly Buffer[]) n += b.length;
  return n;
}

export function encodeBody(message: unknown): Buffer {
  return packr.pack(message);
}

export function decodeBody(body: Buffer): unknown {
  try {
    return unpackr.unpack(body);
  } catch (e) {
    throw new FrameError(`undecodable frame body (${(e as Error).message})`);
  }
}

/**
 * One frame as the buffers to write in order (header, body, payload buffers): no
 * concatenation of MiB-sized data. Throws FrameError above the limit, before anything is written.
 */
export function encodeFrame(message: unknown, payload?: Payload, maxBytes = MAX_FRAME_BYTES): Buffer[] {
  const body = encodeBody(message);
  const plen = payloadLength(payload);
  if (body.length + plen > maxBytes) throw new FrameError(`frame of ${body.length + plen} bytes exceeds the limit of ${maxBytes}`);
  const header = Buffer.allocUnsafe(HEADER_BYTES);
  header.writeUInt32BE(body.length, 0);
  header.writeUInt32BE(plen, 4);
  const parts = !payload ? [] : Buffer.isBuffer(payload) ? [payload] : (payload as readonly Buffer[]);
  return [header, body, ...parts];
}

/** Write a frame's buffers; `onFlushed` runs once the last has been handed to the stream's sink (then the payload's buffers may be reused). */
export function writeParts(out: Writable, parts: readonly Buffer[], onFlushed?: () => void): void {
  parts.forEach((b, i) => out.write(b, i === parts.length - 1 && onFlushed ? () => onFlushed() : undefined));
}

/** Write one frame at once (encodeFrame, then writeParts). */
export function writeFrame(out: Writable, message: unknown, payload?: Payload, onFlushed?: () => void, maxBytes = MAX_FRAME_BYTES): void {
  writeParts(out, encodeFrame(message, payload, maxBytes), onFlushed);
}

/**
 * Incremental frame decoder: push arbitrary chunks, get whole messages. Lengths
 * are checked against the limit as soon as the header is complete, before
 * anything is allocated for the frame.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private bodyLen = -1; // -1 while reading the header
  private payloadLen = 0;

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Returns the messages completed by this chunk (possibly none). Throws FrameError. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    for (;;) {
      if (this.bodyLen < 0) {
        if (this.buffered < HEADER_BYTES) break;
        const h = this.take(HEADER_BYTES);
        const bodyLen = h.readUInt32BE(0);
        const payloadLen = h.readUInt32BE(4);
        if (bodyLen + payloadLen > this.maxBytes) {
          throw new FrameError(`frame announces ${bodyLen + payloadLen} bytes, above the limit of ${this.maxBytes}`);
        }
        this.bodyLen = bodyLen;
        this.payloadLen = payloadLen;
      }
      if (this.buffered < this.bodyLen + this.payloadLen) break;
      const body = this.take(this.bodyLen);
      const payload = this.payloadLen > 0 ? this.takeChunks(this.payloadLen) : undefined;
      this.bodyLen = -1;
      const msg = decodeBody(body);
      if (payload) {
        if (!msg || typeof msg !== 'object') throw new FrameError('payload attached to a non-object message');
        (msg as Record<string, unknown>)[PAYLOAD_KEY] = payload;
      } else if (msg && typeof msg === 'object' && PAYLOAD_KEY in msg) {
        // Only the frame's raw payload may appear as `p`: a peer's own `p` in the body
        // (any type) would otherwise reach handlers as if it were a list of buffers.
        delete (msg as Record<string, unknown>)[PAYLOAD_KEY];
      }
      out.push(msg);
    }
    return out;
  }

  /** Bytes received but not yet part of a whole frame. */
  get pending(): number {
    return this.buffered;
  }

  /** n bytes as one contiguous buffer (copied only when they span chunks: bodies are small). */
  private take(n: number): Buffer {
    const first = this.chunks[0];
    if (first && first.length >= n) {
      const out = first.subarray(0, n);
      this.advance(n);
      return out;
    }
    return Buffer.concat(this.takeChunks(n), n);
  }

  /** n bytes as a list of views into the received chunks: no copy. */
  private takeChunks(n: number): Buffer[] {
    const out: Buffer[] = [];
    let left = n;
    while (left > 0) {
      const c = this.chunks[0]!;
      if (c.length <= left) {
        out.push(c);
        left -= c.length;
        this.chunks.shift();
        this.buffered -= c.length;
      } else {
        out.push(c.subarray(0, left));
        this.advance(left);
        left = 0;
      }
    }
    return out;
  }

  private advance(n: number): void {
    const first = this.chunks[0]!;
    if (first.length === n) this.chunks.shift();
    else this.chunks[0] = first.subarray(n);
    this.buffered -= n;
  }
}

/** Join a payload's chunks when a contiguous buffer is really needed (small payloads only). */
export function joinPayload(p: Payload | undefined): Buffer {
  if (!p) return Buffer.alloc(0);
  if (Buffer.isBuffer(p)) return p;
  const list = p as readonly Buffer[];
  return list.length === 1 ? list[0]! : Buffer.concat(list as Buffer[]);
}
