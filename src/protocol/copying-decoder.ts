import { MAX_FRAME_BYTES } from './limits.js';
import { FrameError, HEADER_BYTES, PAYLOAD_KEY, decodeBody } from './framing.js';

/** Where a frame's payload is copied: a buffer of at least `length` bytes, or undefined for a new one. */
export type PayloadInto = (msg: Record<string, unknown>, length: number) => Buffer | undefined;

const EMPTY = Buffer.alloc(0);

/**
 * The frame decoder for chunks whose memory is reused as soon as push() returns (the SSH
 * connection's receive buffers): every byte is copied out before push() returns, and no view of a
 * chunk is kept. A frame's body is copied into a buffer of its own (bodies are small); its payload
 * goes where `payloadInto` says, decided once the body is decoded (an answer lands in the buffer
 * its request supplied), else into a new buffer. Same frames, same limits and errors as FrameDecoder.
 */
export class CopyingFrameDecoder {
  private readonly header = Buffer.alloc(HEADER_BYTES);
  private phase: 'header' | 'body' | 'payload' = 'header';
  /** Bytes of the current part (header, body or payload) copied so far. */
  private filled = 0;
  private body: Buffer = EMPTY;
  private payloadLen = 0;
  private dest: Buffer = EMPTY;
  private msg: Record<string, unknown> | undefined;

  constructor(
    private readonly maxBytes = MAX_FRAME_BYTES,
    private readonly payloadInto?: PayloadInto,
  ) {}

  /** Returns the messages completed by this chunk (possibly none). Throws FrameError. */
  push(chunk: Buffer): unknown[] {
    const out: unknown[] = [];
    let pos = 0;
    while (pos < chunk.length) {
      if (this.phase === 'header') {
        pos = this.fill(this.header, chunk, pos);
        if (this.filled === HEADER_BYTES) this.startBody();
      } else if (this.phase === 'body') {
        pos = this.fill(this.body, chunk, pos);
        if (this.filled === this.body.length) this.endBody(out);
      } else {
        pos = this.fill(this.dest, chunk, pos, this.payloadLen);
        if (this.filled === this.payloadLen) this.endPayload(out);
      }
    }
    return out;
  }

  /** Bytes of an unfinished frame held (0 between frames). */
  get pending(): number {
    if (this.phase === 'header') return this.filled;
    return HEADER_BYTES + (this.phase === 'body' ? this.filled : this.body.length + this.filled);
  }

  /** Copy from chunk at pos into `to` (up to `limit` bytes of it); returns the new position. */
  private fill(to: Buffer, chunk: Buffer, pos: number, limit = to.length): number {
    const n = Math.min(limit - this.filled, chunk.length - pos);
    chunk.copy(to, this.filled, pos, pos + n);
    this.filled += n;
    return pos + n;
  }

  private startBody(): void {
    const bodyLen = this.header.readUInt32BE(0);
    const payloadLen = this.header.readUInt32BE(4);
    if (bodyLen + payloadLen > this.maxBytes) {
      throw new FrameError(`frame announces ${bodyLen + payloadLen} bytes, above the limit of ${this.maxBytes}`);
    }
    // A body is at least one byte of MessagePack; an empty one fails to decode, as in FrameDecoder.
    if (bodyLen === 0) throw new FrameError('undecodable frame body (empty)');
    this.body = Buffer.allocUnsafe(bodyLen);
    this.payloadLen = payloadLen;
    this.filled = 0;
    this.phase = 'body';
  }

  private endBody(out: unknown[]): void {
    const msg = decodeBody(this.body);
    this.filled = 0;
    if (this.payloadLen === 0) {
      // Only the frame's raw payload may appear as `p` (see FrameDecoder).
      if (msg && typeof msg === 'object' && PAYLOAD_KEY in msg) delete (msg as Record<string, unknown>)[PAYLOAD_KEY];
      out.push(msg);
      this.phase = 'header';
      return;
    }
    if (!msg || typeof msg !== 'object') throw new FrameError('payload attached to a non-object message');
    this.msg = msg as Record<string, unknown>;
    const into = this.payloadInto?.(this.msg, this.payloadLen);
    this.dest = into && into.length >= this.payloadLen ? into : Buffer.allocUnsafe(this.payloadLen);
    this.phase = 'payload';
  }

  private endPayload(out: unknown[]): void {
    this.msg![PAYLOAD_KEY] = [this.dest.subarray(0, this.payloadLen)];
    out.push(this.msg);
    this.msg = undefined;
    this.dest = EMPTY;
    this.body = EMPTY;
    this.filled = 0;
    this.phase = 'header';
  }
}
