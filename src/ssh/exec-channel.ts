/**
 * Opening an exec channel on an authenticated client, tuned for pdiffcopy's traffic, and the
 * shape of a channel the rest of the SSH layer relies on (ChannelLike): an ssh2 ClientChannel
 * on this thread, or a ThreadChannel whose connection runs in a worker thread.
 */
import type { Duplex, Readable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { PdcError } from '../errors/index.js';
import { markStartup } from '../startup-marks.js';
import { poolPackets } from './packet-pool.js';
import { offerDirectChunks } from './receive-guard.js';

export interface ExitStatus {
  code: number | null;
  signal: string | null;
}

/**
 * What the transport uses of a channel: its stdout and stdin as one duplex stream, stderr, the
 * exit status and 'close' once the output has been read to its end.
 */
export interface ChannelLike extends Duplex {
  readonly stderr: Readable;
  /**
   * The command's exit status (both null if the channel closed without one), listened for from
   * the moment the channel opened: a command that ends at once reports its status before whoever
   * asked for the channel has had a chance to listen.
   */
  readonly exitStatus: Promise<ExitStatus>;
  /** Ask the server to send this signal (e.g. 'KILL') to the command. */
  signal(name: string): unknown;
  /** Close the channel at once (no EOF first). */
  close(): unknown;
}

/** One authenticated SSH connection as the transport uses it, whichever thread runs it. */
export interface SshLink {
  /** Milliseconds from start to authenticated, all hops included. */
  readonly setupMs: number;
  /** Settles with the translated error once the connection is gone without close(). */
  readonly lost: Promise<PdcError>;
  /** "the main thread" or "its own thread", for -v logs. */
  readonly where: string;
  /**
   * Run `command` on a new exec channel. `direct`: an agent channel, whose reader takes chunks
   * directly (offerDirectChunks); otherwise its output is read as a stream.
   */
  exec(command: string, direct: boolean): Promise<ChannelLike>;
  close(): Promise<void>;
}

/** Open an exec channel on `client` (errors translated for `display`), tuned as tuneChannel says. */
export function openExec(client: Client, display: string, command: string, direct: boolean): Promise<ClientChannel & ChannelLike> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, channel) => {
      if (err) {
        reject(
          new PdcError('CONNECTION_LOST', `cannot start a session on ${display}: ${err.message.replace(/^\(SSH\) /, '')}`, {
            hint: "the server may allow fewer sessions per connection than OpenSSH's default 10 (MaxSessions), or be shutting down; try fewer agents",
            cause: err,
          }),
        );
        return;
      }
      markStartup('exec');
      corkWrites(client);
      poolPackets(client);
      if (direct) offerDirectChunks(client, channel);
      const exitStatus = new Promise<ExitStatus>((settle) => {
        channel.once('exit', (code: number | null, signal?: string) => settle({ code: code ?? null, signal: signal ?? null }));
        channel.once('close', () => settle({ code: null, signal: null }));
      });
      resolve(Object.assign(channel, { exitStatus }));
    });
  });
}

/**
 * ssh2 writes every 32 KiB packet to the socket separately: for a 1 MiB block that
 * is 32 system calls, which cost more CPU here than the encryption. Corking the
 * socket until the end of the tick turns all packets written in one tick (a whole
 * frame, or everything a window adjustment releases) into one writev.
 */
const corkedSockets = new WeakSet<object>();
function corkWrites(client: Client): void {
  type CorkableSocket = { write: (...args: unknown[]) => boolean; cork?: () => void; uncork?: () => void };
  const sock = (client as unknown as { _sock?: CorkableSocket })._sock;
  if (!sock || corkedSockets.has(sock) || typeof sock.cork !== 'function' || typeof sock.uncork !== 'function') return;
  corkedSockets.add(sock);
  const write = sock.write.bind(sock);
  let corked = false;
  sock.write = (...args: unknown[]) => {
    if (!corked) {
      corked = true;
      sock.cork!();
      process.nextTick(() => {
        corked = false;
        sock.uncork!();
      });
    }
    return write(...args);
  };
}
