import * as net from 'node:net';
import type { Readable } from 'node:stream';
import { DIRECT_CHUNKS, type DirectChunkSource } from '../src/protocol/frame-reader.js';

/** Bytes one read of stdin may bring (a pipe brings at most its capacity, 64 KiB by default). */
const READ_BUFFER_BYTES = 256 * 1024;

/** net.Socket's `onread` (Node 12.13 and later), which the type definitions here leave out. */
type SocketWithOnRead = net.SocketConstructorOpts & { onread: { buffer: Buffer; callback: (n: number) => void } };

/**
 * The agent's requests: a socket of its own on descriptor 0 that reads into one buffer,
 * reused for every read (net.Socket's `onread`), and hands each chunk straight to the frame
 * reader (DIRECT_CHUNKS), which copies out what it keeps. Through process.stdin every read of
 * the pipe is a fresh 64 KiB buffer whose pages the kernel first zeroes, and which is freed
 * only by the garbage collector. Node before 12.13 ignores `onread` and emits 'data'
 * instead: the same consumer takes those chunks. Where descriptor 0 is neither a pipe nor a
 * socket (a terminal, a file), process.stdin.
 * Nothing else may read descriptor 0: the loader reads exactly the agent's code from it.
 */
export function agentStdin(): Readable {
  let consumer: ((chunk: Buffer) => void) | undefined;
  const buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  let socket: net.Socket;
  try {
    const opts: SocketWithOnRead = {
      fd: 0,
      readable: true,
      writable: false,
      onread: { buffer, callback: (n) => void consumer?.(buffer.subarray(0, n)) },
    };
    socket = new net.Socket(opts);
  } catch {
    return process.stdin;
  }
  socket.on('data', (chunk: Buffer) => consumer?.(chunk));
  (socket as DirectChunkSource)[DIRECT_CHUNKS] = (c) => {
    consumer = c;
  };
  return socket;
}
