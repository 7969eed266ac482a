/**
 * Messages between the main thread and a connection thread (connection-worker.ts). Block data
 * travels in ArrayBuffers that are transferred, never cloned, and handed back for reuse once
 * the other side is done with them ('recycle'), so that neither thread touches fresh memory
 * per byte moved.
 */
import type { WireError } from '../errors/pdc-error.js';
import type { SshHostConfig } from './config.js';

/** What a connection thread is started with (workerData). */
export interface ThreadConnectData {
  target: SshHostConfig;
  homeDir: string;
  acceptNewHostKey: boolean;
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  noDelay: boolean;
  /** The password the main thread's connection was given, if it asked for one (never asked again here). */
  password?: string;
}

/** Main thread to connection thread. */
export type ToThread =
  | { t: 'exec'; ch: number; command: string; direct: boolean }
  /** Bytes for the channel's stdin, in a transferred buffer; answered by 'recycle' once ssh2 has sent them. */
  | { t: 'write'; ch: number; data: Uint8Array }
  | { t: 'end'; ch: number }
  | { t: 'signal'; ch: number; name: string }
  | { t: 'close'; ch: number }
  /** A buffer of received data, given back for the next batch. */
  | { t: 'recycle'; buffer: ArrayBuffer }
  /** Stop connecting (the transport is closing). */
  | { t: 'abort' }
  /** Close the connection; answered by 'closed'. */
  | { t: 'shutdown' };

/** Connection thread to main thread. */
export type FromThread =
  | { t: 'ready'; setupMs: number }
  | { t: 'failed'; error: WireError }
  | { t: 'lost'; error: WireError }
  | { t: 'log'; message: string }
  | { t: 'opened'; ch: number }
  | { t: 'openFailed'; ch: number; error: WireError }
  /** Channel output, in a transferred buffer (stderr: a small copy). */
  | { t: 'data'; ch: number; data: Uint8Array }
  | { t: 'stderr'; ch: number; data: Uint8Array }
  /** A written buffer, given back: its bytes have left this side's stream (the write's acknowledgement). */
  | { t: 'recycle'; ch: number; buffer: ArrayBuffer; bytes: number }
  /** The channel has closed (its output is complete), with the command's exit status if it sent one. */
  | { t: 'gone'; ch: number; code: number | null; signal: string | null }
  | { t: 'closed' };

/** Received channel data crosses in buffers of this size (the last of a burst partly filled). */
export const RECEIVE_BATCH_BYTES = 256 * 1024;
/** Written data crosses in buffers of this size. */
export const WRITE_PIECE_BYTES = 256 * 1024;
/**
 * Written bytes a channel may have in the connection thread before its writes wait: the
 * connection thread's share of the buffering that ssh2's channel does on one thread.
 */
export const THREAD_WRITE_WINDOW_BYTES = 2 * 1024 * 1024;

/**
 * --connection-threads auto (the transport's default) puts the connections after the first in
 * threads of their own on hosts with at least this many cores. On 2 cores shared by both ends a
 * thread added start-up work (0.2-0.5 CPU-s per run) and gained nothing at 100% change
 * (BENCHMARKS.md, connection threads).
 */
export const CONNECTION_THREADS_MIN_CORES = 4;
