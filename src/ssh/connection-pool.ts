/**
 * The SSH transport's connections to one host and the channels on them. One connection is one
 * sshd process (one core) on the remote, so channels are spread over the connections by load,
 * never more than MAX_CHANNELS_PER_CONNECTION on one. A connection that is lost stays in the
 * list (its number keeps naming it in logs) but takes no new channels.
 */
import { noUsableConnection, PdcError } from '../errors/index.js';
import type { ChannelLike, SshLink } from './exec-channel.js';

/** OpenSSH's default MaxSessions: channels allowed per connection. */
export const MAX_CHANNELS_PER_CONNECTION = 10;

export interface Conn {
  index: number;
  link: SshLink;
  /** Channels open or reserved on it. */
  live: number;
  dead: boolean;
  channelsOpened: number;
}

export interface ConnectionPoolOptions {
  /** Connections to keep open at least. */
  wanted: number;
  /** The host, for messages. */
  display: string;
  /** Makes one authenticated connection. */
  connect: () => Promise<SshLink>;
  /** The transport's error once it is closed, else undefined: a connection made after that is closed again. */
  closedError: () => PdcError | undefined;
  log: (msg: string) => void;
}

export class ConnectionPool {
  readonly conns: Conn[] = [];
  /** Per-connection setup times in ms, in the order connections were opened. */
  readonly setupTimesMs: number[] = [];
  /** The last ensure()'s openings, settled: ensure() calls run one after another. */
  private opening: Promise<void> = Promise.resolve();

  constructor(private readonly o: ConnectionPoolOptions) {}

  /**
   * Make sure there are enough live connections for `extra` more channels; opens them in
   * parallel. A lone first channel (the first agent) goes out on the first connection
   * that is up, while the others finish opening; every other call waits for all of
   * them, so that its channels spread over every connection.
   */
  ensure(extra: number): Promise<void> {
    // Serialised, so two concurrent spawnAgents calls do not both open the missing connections.
    const run = this.opening.then(() => this.openMissing(extra));
    this.opening = run.then((r) => r.all).catch(() => undefined);
    return run.then((r) => r.enough);
  }

  /** Settles once the connections being opened are up or have failed. */
  settled(): Promise<void> {
    return this.opening;
  }

  /** Reserve a channel slot on the least loaded live connection (release() gives it back). */
  reserve(): Conn {
    let best: Conn | undefined;
    for (const c of this.conns) {
      if (c.dead || c.live >= MAX_CHANNELS_PER_CONNECTION) continue;
      if (!best || c.live < best.live) best = c;
    }
    if (!best) throw noUsableConnection(this.o.display);
    best.live++;
    return best;
  }

  release(conn: Conn): void {
    conn.live--;
  }

  /** Open a channel in a slot reserve() gave; the slot is released if it cannot be opened. */
  async openChannel(conn: Conn, command: string, direct: boolean): Promise<ChannelLike> {
    try {
      return await conn.link.exec(command, direct);
    } catch (err) {
      this.release(conn);
      throw err;
    }
  }

  /** Live channels per connection, for the log. */
  layout(): string {
    return this.conns.map((c) => `conn ${c.index + 1}: ${c.live}`).join(', ');
  }

  closeAll(): Promise<unknown> {
    return Promise.allSettled(this.conns.map((c) => c.link.close()));
  }

  private openMissing(extra: number): { all: Promise<void>; enough: Promise<void> } {
    const { display, log } = this.o;
    const alive = this.conns.filter((c) => !c.dead);
    const live = alive.reduce((n, c) => n + c.live, 0);
    const need = Math.max(this.o.wanted, Math.ceil((live + extra) / MAX_CHANNELS_PER_CONNECTION)) - alive.length;
    if (need <= 0) return { all: Promise.resolve(), enough: Promise.resolve() };
    const attempts = Array.from({ length: need }, () => this.openConnection());
    const all = Promise.allSettled(attempts).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failed) return;
      // A host that took some connections but dropped another (MaxStartups, a flaky link) is
      // still usable with fewer; host key, authentication and usage errors are not.
      const transient = failed.reason instanceof PdcError && /^CONNECTION_/.test(failed.reason.code);
      const capacity = this.conns.filter((c) => !c.dead).length * MAX_CHANNELS_PER_CONNECTION - live;
      if (!transient || capacity < extra) throw failed.reason;
      log(`ssh: continuing with fewer connections to ${display}: ${(failed.reason as PdcError).message}`);
    });
    const first = alive.length === 0 && extra === 1;
    // Any() rejects only when every attempt failed: then `all` has the error to report.
    const enough = first ? Promise.any(attempts).then(() => undefined, () => all) : all;
    // Whoever waits on `enough` alone must not leave a later failure of `all` unhandled.
    all.catch(() => undefined);
    return { all, enough };
  }

  private async openConnection(): Promise<Conn> {
    const { display, log } = this.o;
    const link = await this.o.connect();
    const conn: Conn = { index: this.conns.length, link, live: 0, dead: false, channelsOpened: 0 };
    const closed = this.o.closedError();
    if (closed) {
      await link.close();
      throw closed;
    }
    this.conns.push(conn);
    this.setupTimesMs.push(link.setupMs);
    log(`ssh: connection ${conn.index + 1} to ${display} ready in ${Math.round(link.setupMs)} ms, on ${link.where}`);
    void link.lost.then((err) => {
      conn.dead = true;
      log(`ssh: connection ${conn.index + 1}: ${err.message}`);
    });
    return conn;
  }
}
