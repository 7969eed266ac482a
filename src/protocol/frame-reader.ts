import type { Readable } from 'node:stream';
import { CopyingFrameDecoder, type PayloadInto } from './copying-decoder.js';
import { FrameDecoder } from './framing.js';
import { MAX_FRAME_BYTES } from './limits.js';

/**
 * Offered by a stream that can hand its chunks to one consumer directly, synchronously and in
 * order, instead of emitting 'data'. The memory of such a chunk is reused once the consumer
 * returns, so the consumer must copy what it keeps. The SSH transport offers it on agent channels
 * (see src/ssh/receive-guard.ts); a stream without it is read through 'data' and its chunks kept as views.
 */
export const DIRECT_CHUNKS = Symbol('pdc.directChunks');

export interface DirectChunkSource {
  [DIRECT_CHUNKS]?: (consumer: (chunk: Buffer) => void) => void;
}

export interface ReadFramesOptions {
  maxBytes?: number;
  /** Where an answer's payload is copied, for streams read directly (ignored otherwise: payloads stay views). */
  payloadInto?: PayloadInto;
  /** Called for every chunk received (before decoding): the reader's sign of life. */
  onChunk?: () => void;
}

export interface FrameReader {
  /** True when payloads are copied (into payloadInto's buffers); false when they are views of the stream's chunks. */
  readonly copies: boolean;
  /** Ignore everything from now on: after this, nothing is decoded or copied anywhere. */
  stop(): void;
}

/** Feed a readable into a decoder; calls onMessage per frame, onError once on a framing error. */
export function readFrames(
  input: Readable,
  onMessage: (msg: unknown) => void,
  onError: (err: Error) => void,
  opts: ReadFramesOptions = {},
): FrameReader {
  const direct = (input as unknown as DirectChunkSource)[DIRECT_CHUNKS];
  const maxBytes = opts.maxBytes ?? MAX_FRAME_BYTES;
  const decoder = direct ? new CopyingFrameDecoder(maxBytes, opts.payloadInto) : new FrameDecoder(maxBytes);
  let stopped = false;
  const feed = (chunk: Buffer) => {
    if (stopped) return;
    opts.onChunk?.();
    let msgs: unknown[];
    try {
      msgs = decoder.push(chunk);
    } catch (e) {
      stopped = true;
      onError(e as Error);
      return;
    }
    for (const m of msgs) if (!stopped) onMessage(m);
  };
  if (direct) {
    // What the stream buffered before this reader came (bytes after the agent's magic) is ordinary memory.
    for (let c: Buffer | null; (c = input.read() as Buffer | null) !== null; ) feed(c);
    direct(feed);
  } else {
    input.on('data', feed);
  }
  // A stream paused on purpose (after the magic, or by the SSH loader) is not resumed by adding
  // a 'data' listener: resume explicitly (read directly, it must flow to emit 'end').
  input.resume();
  return {
    copies: !!direct,
    stop: () => {
      stopped = true;
    },
  };
}
