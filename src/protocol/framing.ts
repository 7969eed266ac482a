import type { Readable, Writable } from 'node:stream';
import { Packr, Unpackr } from 'msgpackr';
import { MAX_FRAME_BYTES } from './limits.js';

/**
 * Frames: 4-byte big-endian body length, then a MessagePack body.
 * Framing takes streams, never sockets or files, so it is tested over pipes.
 */
const packr = new Packr({ useRecords: false, moreTypes: false });
const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true });

export class FrameError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'FrameError';
  }
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
 * Write one frame. Header and body go as two writes: concatenating a MiB-sized
 * body costs a memcpy per frame for nothing. Returns write()'s backpressure flag.
 */
export function writeFrame(out: Writable, message: unknown, maxBytes = MAX_FRAME_BYTES): boolean {
  const body = encodeBody(message);
  if (body.length > maxBytes) throw new FrameError(`frame of ${body.length} bytes exceeds the limit of ${maxBytes}`);
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(body.length, 0);
  out.write(header);
  return out.write(body);
}

/**
 * Incremental frame decoder: push arbitrary chunks, get whole message bodies.
 * The announced length is checked against the limit before any allocation.
 */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // body length of the frame being assembled, -1 while reading the header

  constructor(private readonly maxBytes = MAX_FRAME_BYTES) {}

  /** Returns the decoded messages completed by this chunk (possibly none). Throws FrameError. */
  push(chunk: Buffer): unknown[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const out: unknown[] = [];
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break;
        const len = this.take(4).readUInt32BE(0);
        if (len > this.maxBytes) throw new FrameError(`frame announces ${len} bytes, above the limit of ${this.maxBytes}`);
        this.need = len;
      }
      if (this.buffered < this.need) break;
      const body = this.take(this.need);
      this.need = -1;
      out.push(decodeBody(body));
    }
    return out;
  }

  /** Bytes received but not yet part of a whole frame (for leak/limit checks). */
  get pending(): number {
    return this.buffered;
  }

  private take(n: number): Buffer {
    const first = this.chunks[0]!;
    if (first.length >= n) {
      // Fast path: the bytes sit in one chunk. subarray is a view; decoded `bin`
      // values are views too, so the chunk stays alive as long as they do.
      const out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
      this.buffered -= n;
      return out;
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const c = this.chunks[0]!;
      const want = n - filled;
      if (c.length <= want) {
        c.copy(out, filled);
        filled += c.length;
        this.chunks.shift();
      } else {
        c.copy(out, filled, 0, want);
        this.chunks[0] = c.subarray(want);
        filled += want;
      }
    }
    this.buffered -= n;
    return out;
  }
}

/** Feed a readable into a decoder; calls onMessage per frame, onError once on a framing error. */
export function readFrames(
  input: Readable,
  onMessage: (msg: unknown) => void,
  onError: (err: Error) => void,
  maxBytes = MAX_FRAME_BYTES,
): void {
  const decoder = new FrameDecoder(maxBytes);
  let failed = false;
  input.on('data', (chunk: Buffer) => {
    if (failed) return;
    let msgs: unknown[];
    try {
      msgs = decoder.push(chunk);
    } catch (e) {
      failed = true;
      onError(e as Error);
      return;
    }
    for (const m of msgs) onMessage(m);
  });
  // A stream paused on purpose (after the magic, or by the SSH loader) is not
  // resumed by adding a 'data' listener: resume explicitly.
  input.resume();
}
