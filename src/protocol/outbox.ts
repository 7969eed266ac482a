import type { Writable } from 'node:stream';
import { encodeFrame, type Payload, payloadLength, writeParts } from './framing.js';
import { MAX_FRAME_BYTES } from './limits.js';

/** A payload up to this size (a hash list, a small read) travels as a small frame. */
export const SMALL_PAYLOAD_BYTES = 64 * 1024;

/** Bulk frames are handed to the stream only while it holds less than this. */
export const BULK_ROOM_BYTES = 1024 * 1024;

interface Waiting {
  parts: Buffer[];
  onFlushed?: () => void;
}

/**
 * Frames leave one stream in two lanes. A small frame (no payload, or one up to
 * SMALL_PAYLOAD_BYTES) is written at once; a bulk frame (block data) is handed to the
 * stream only while the stream holds less than `room` bytes, otherwise it waits, in
 * order, until earlier bytes have been flushed. A small frame therefore never queues
 * behind block data this side has not yet handed over: a hash request or answer waits
 * at most `room` plus one bulk frame, not every run read ahead.
 *
 * Frames may thus leave in another order than they were sent; the protocol never
 * relied on order (requests run concurrently and answers are matched by id).
 * Frames are encoded and checked against the limit when sent (FrameError then, as
 * writeFrame throws). When the stream closes, frames still waiting are dropped and
 * their `onFlushed` runs (their buffers are not held by the stream).
 */
export class Outbox {
  private readonly waiting: Waiting[] = [];

  constructor(
    private readonly out: Writable,
    private readonly room = BULK_ROOM_BYTES,
    private readonly maxBytes = MAX_FRAME_BYTES,
  ) {
    out.once('close', () => {
      for (const w of this.waiting.splice(0)) w.onFlushed?.();
    });
  }

  send(message: unknown, payload?: Payload, onFlushed?: () => void): void {
    const parts = encodeFrame(message, payload, this.maxBytes);
    if (payloadLength(payload) <= SMALL_PAYLOAD_BYTES) {
      this.write(parts, onFlushed);
      return;
    }
    this.waiting.push({ parts, onFlushed });
    this.flushWaiting();
  }

  /** Bulk frames waiting for room (tests look). */
  get waitingFrames(): number {
    return this.waiting.length;
  }

  private flushWaiting(): void {
    while (this.waiting.length > 0 && this.out.writableLength < this.room && !this.out.destroyed) {
      const w = this.waiting.shift()!;
      this.write(w.parts, w.onFlushed);
    }
  }

  /** Every frame's flush tries the waiting ones: the stream draining is the only event that makes room. */
  private write(parts: Buffer[], onFlushed?: () => void): void {
    writeParts(this.out, parts, () => {
      onFlushed?.();
      if (this.waiting.length > 0) this.flushWaiting();
    });
  }
}
