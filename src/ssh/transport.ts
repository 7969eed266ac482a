/**
 * The SSH Transport: agents are `node` processes on the remote host, each behind one
 * exec channel. Channels are spread over several connections because one connection is
 * one sshd process (one core) on the remote; each channel's window bounds what it moves per
 * round trip (agent channels: receive-guard.ts). OpenSSH allows MaxSessions (10) channels per
 * connection, so we never put more on one.
 *
 * Nothing is installed or written remotely (but the node that --upload-node caches, when
 * asked): the command is the constant loader from src/protocol/bootstrap.ts and the
 * agent's code follows on stdin. User paths never appear in the command line.
 */
import { availableParallelism, homedir } from 'node:os';
import { noUsableConnection, PdcError } from '../errors/index.js';
import type { Readable } from 'node:stream';
import { buildRemoteCommand, type CachedNode, encodeAgentPayload } from '../protocol/bootstrap.js';
import { agentBundleCode } from '../transport/agent-bundle.js';
import { prepareRemoteNode } from '../transport/node-upload.js';
import { AGENT_KILL_GRACE_MS, type AgentProcess, checkSpawn, type Transport, transportClosed } from '../transport/types.js';
import type { SecretCache } from './auth.js';
import { resolveHost, type SshHostConfig } from './config.js';
import { connectSsh, hostDisplay } from './connect.js';
import { type ChannelLike, type ExitStatus, openExec, type SshLink } from './exec-channel.js';
import { ttyPrompter } from './prompt.js';
import { connectInThread } from './thread-connection.js';
import { CONNECTION_THREADS_MIN_CORES } from './thread-messages.js';

// The agent pool explains early exits with this; exported here too so callers need one import.
export { exitStatusError } from './remote-exit.js';

/** OpenSSH's default MaxSessions: channels allowed per connection. */
export const MAX_CHANNELS_PER_CONNECTION = 10;
/** Connections opened by default (see the measurements in the SSH layer report). */
export const DEFAULT_CONNECTIONS = 2;
/** This transport in its errors. */
const TRANSPORT_NAME = 'SSH';

export interface SshTransportOptions {
  /** -p/--port; overrides the location's port and ssh_config. */
  port?: number;
  /** -i FILE (repeatable), tried before IdentityFile from the config. */
  identityFiles?: string[];
  /** -F FILE: use only this ssh_config. */
  configFile?: string;
  /**
   * -o Option=value (repeatable), in the order given: they override the config files, the
   * first value wins. An unsupported option is a USAGE error (see SUPPORTED_OPTIONS).
   */
  options?: string[];
  /** Record an unknown host key in known_hosts (a changed key is always refused). */
  acceptNewHostKey?: boolean;
  /** Node binary on the remote (default: node, then nodejs, from PATH). */
  remoteNode?: string;
  /** Run the agent through `sudo -n`. */
  sudo?: boolean;
  /**
   * --upload-node: when the remote has no usable node and runs this host's OS and CPU
   * architecture, send this process's node to its cache and run the agents with it.
   */
  uploadNode?: boolean;
  /**
   * The remote is the source: this side mostly sends small requests and waits for their
   * answers, which Nagle's algorithm would hold back (TCP_NODELAY; see SlabSocketOptions).
   */
  pulling?: boolean;
  /** Connections to open (default DEFAULT_CONNECTIONS); more are opened if agents need them. */
  connections?: number;
  /**
   * Run every connection after the first in a worker thread of its own, so that their encryption
   * and socket I/O use other cores than the main thread (see connection-worker.ts). Default: where
   * this host has CONNECTION_THREADS_MIN_CORES cores or more.
   */
  connectionThreads?: boolean;
  /** --connect-timeout; overrides ConnectTimeout from -o and the config files. */
  connectTimeoutMs?: number;
  keepaliveIntervalMs?: number;
  /** Home directory whose .ssh is used (default os.homedir()). */
  homeDir?: string;
  /** May prompt on /dev/tty (passphrases, passwords, new host keys). Default: process.stdin.isTTY. */
  interactive?: boolean;
  log?: (msg: string) => void;
  /** System ssh_config (default /etc/ssh/ssh_config); null skips it. */
  systemConfigFile?: string | null;
  /** Where the global known_hosts files are (default /etc/ssh). */
  systemDir?: string;
  /** ssh-agent socket (default $SSH_AUTH_SOCK); '' disables the agent. */
  sshAuthSock?: string;
  /** Code sent to the loader instead of dist/agent.cjs (tests, stand-in agents). */
  agentCode?: Buffer;
}

export interface SshTransport extends Transport {
  /** The resolved destination (after ssh_config). */
  readonly target: SshHostConfig;
  /** Per-connection setup times in ms, in the order connections were opened. */
  readonly setupTimesMs: readonly number[];
  /**
   * Run a plain command on one of the connections (diagnostics, tests, --upload-node),
   * with `input` (if any) piped to its stdin. Never pass user paths here: they belong in
   * the protocol.
   */
  exec(command: string, input?: Readable): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>;
}

interface Conn {
  index: number;
  link: SshLink;
  live: number;
  dead: boolean;
  channelsOpened: number;
}

export function createSshTransport(
  loc: { user?: string; host: string; port?: number },
  opts: SshTransportOptions = {},
): SshTransport {
  const homeDir = opts.homeDir ?? homedir();
  const log = opts.log ?? (() => {});
  // Resolved now (a few small file reads) so `description` names the real destination.
  const target = resolveHost(loc.host, {
    homeDir,
    ...(opts.configFile ? { configFile: opts.configFile } : {}),
    ...(opts.systemConfigFile !== undefined ? { systemConfigFile: opts.systemConfigFile } : {}),
    ...(opts.systemDir ? { systemDir: opts.systemDir } : {}),
    ...(loc.user !== undefined ? { user: loc.user } : {}),
    ...((opts.port ?? loc.port) !== undefined ? { port: opts.port ?? loc.port } : {}),
    identityFiles: opts.identityFiles ?? [],
    ...(opts.options ? { options: opts.options } : {}),
    sshAuthSock: opts.sshAuthSock ?? process.env.SSH_AUTH_SOCK ?? '',
  });
  const display = hostDisplay(target);
  const interactive = opts.interactive ?? Boolean(process.stdin.isTTY);
  const prompter = interactive ? ttyPrompter() : undefined;
  const secrets: SecretCache = {};
  // close() abandons connection attempts still in progress (and any prompt they wait at).
  const abort = new AbortController();
  const wanted = Math.max(1, Math.floor(opts.connections ?? DEFAULT_CONNECTIONS));

  const conns: Conn[] = [];
  const pending = new Set<Promise<unknown>>();
  const agents = new Set<SshAgentProcess>();
  const setupTimesMs: number[] = [];
  let closed: Promise<void> | undefined;
  let opening: Promise<void> = Promise.resolve();
  /** The node the agents run (--upload-node decides once, on the first spawn). */
  let remoteNode: Promise<CachedNode | undefined> | undefined;
  /** Channels of exec() still running: close() ends them (an upload must not hold it up). */
  const execChannels = new Set<ChannelLike>();

  if (target.proxyJump.length) log(`ssh: ${display} via ${target.proxyJump.map((h) => hostDisplay(h)).join(' -> ')}`);
  const proxyCommand = (target.proxyJump[0] ?? target).proxyCommand;
  if (proxyCommand) log(`ssh: reaching ${hostDisplay(target.proxyJump[0] ?? target)} through ProxyCommand: ${proxyCommand}`);

  /**
   * The first connection is made on this thread: it may prompt (passphrases, passwords, a new
   * host key). With connectionThreads the others wait for it and then connect in threads of
   * their own, with what it was given (the password, the host key now in known_hosts); one that
   * cannot (a passphrase-protected key, say) connects on this thread instead.
   */
  let firstConnection: Promise<unknown> | undefined;
  const threads = opts.connectionThreads ?? availableParallelism() >= CONNECTION_THREADS_MIN_CORES;
  const connectOptions = () => ({
    homeDir,
    acceptNewHostKey: opts.acceptNewHostKey ?? false,
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs: opts.keepaliveIntervalMs } : {}),
    noDelay: opts.pulling ?? false,
  });
  const connectHere = async (): Promise<SshLink> => {
    const ssh = await connectSsh(target, { ...connectOptions(), ...(prompter ? { prompter } : {}), secrets, signal: abort.signal, log });
    return { setupMs: ssh.setupMs, lost: ssh.lost, where: 'the main thread', exec: (command, direct) => openExec(ssh.client, display, command, direct), close: () => ssh.close() };
  };
  const connectLink = async (): Promise<SshLink> => {
    if (!threads || !firstConnection) {
      const here = connectHere();
      firstConnection ??= here;
      return here;
    }
    const first = await firstConnection.then(
      () => true,
      () => false,
    );
    if (!first || abort.signal.aborted) return connectHere();
    try {
      const password = await secrets.password;
      return await connectInThread({ target, ...connectOptions(), ...(password !== undefined ? { password } : {}) }, { display, signal: abort.signal, log });
    } catch (err) {
      if (abort.signal.aborted) throw err;
      log(`ssh: a connection thread could not connect (${(err as Error).message}); connecting on the main thread`);
      return connectHere();
    }
  };

  const openConnection = async (): Promise<Conn> => {
    const link = await connectLink();
    const conn: Conn = { index: conns.length, link, live: 0, dead: false, channelsOpened: 0 };
    if (closed) {
      await link.close();
      throw closedError();
    }
    conns.push(conn);
    setupTimesMs.push(link.setupMs);
    log(`ssh: connection ${conn.index + 1} to ${display} ready in ${Math.round(link.setupMs)} ms, on ${link.where}`);
    void link.lost.then((err) => {
      conn.dead = true;
      log(`ssh: connection ${conn.index + 1}: ${err.message}`);
    });
    return conn;
  };

  /**
   * Make sure there are enough live connections for `extra` more channels; opens them in
   * parallel. A lone first channel (the first agent) goes out on the first connection
   * that is up, while the others finish opening; every other call waits for all of
   * them, so that its channels spread over every connection.
   */
  const ensureConnections = (extra: number): Promise<void> => {
    // Serialised, so two concurrent spawnAgents calls do not both open the missing connections.
    const run = opening.then(() => openMissing(extra));
    opening = run.then((r) => r.all).catch(() => undefined);
    return run.then((r) => r.enough);
  };

  const openMissing = (extra: number): { all: Promise<void>; enough: Promise<void> } => {
    const alive = conns.filter((c) => !c.dead);
    const live = alive.reduce((n, c) => n + c.live, 0);
    const need = Math.max(wanted, Math.ceil((live + extra) / MAX_CHANNELS_PER_CONNECTION)) - alive.length;
    if (need <= 0) return { all: Promise.resolve(), enough: Promise.resolve() };
    const attempts = Array.from({ length: need }, () => openConnection());
    const all = Promise.allSettled(attempts).then((results) => {
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (!failed) return;
      // A host that took some connections but dropped another (MaxStartups, a flaky link) is
      // still usable with fewer; host key, authentication and usage errors are not.
      const transient = failed.reason instanceof PdcError && /^CONNECTION_/.test(failed.reason.code);
      const capacity = conns.filter((c) => !c.dead).length * MAX_CHANNELS_PER_CONNECTION - live;
      if (!transient || capacity < extra) throw failed.reason;
      log(`ssh: continuing with fewer connections to ${display}: ${(failed.reason as PdcError).message}`);
    });
    const first = alive.length === 0 && extra === 1;
    // Any() rejects only when every attempt failed: then `all` has the error to report.
    const enough = first ? Promise.any(attempts).then(() => undefined, () => all) : all;
    // Whoever waits on `enough` alone must not leave a later failure of `all` unhandled.
    all.catch(() => undefined);
    return { all, enough };
  };

  const pickConnection = (): Conn => {
    let best: Conn | undefined;
    for (const c of conns) {
      if (c.dead || c.live >= MAX_CHANNELS_PER_CONNECTION) continue;
      if (!best || c.live < best.live) best = c;
    }
    if (!best) throw noUsableConnection(display);
    return best;
  };

  /** Open a channel on a connection whose `live` count already includes it; undo the count on failure. */
  const openCounted = async (conn: Conn, command: string, direct: boolean): Promise<ChannelLike> => {
    try {
      return await conn.link.exec(command, direct);
    } catch (err) {
      conn.live--;
      throw err;
    }
  };

  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };

  const transport: SshTransport = {
    description: display,
    target,
    setupTimesMs,

    spawnAgents(count: number): Promise<AgentProcess[]> {
      return track(
        (async () => {
          checkSpawn(TRANSPORT_NAME, closed, count);
          await ensureConnections(count);
          if (closed) throw closedError();
          const code = opts.agentCode ?? agentBundleCode();
          const payload = encodeAgentPayload(code);
          const cachedNode = opts.uploadNode
            ? await (remoteNode ??= prepareRemoteNode({ run: (cmd, input) => transport.exec(cmd, input) }, { display, log, ...(opts.remoteNode ? { remoteNode: opts.remoteNode } : {}) }))
            : undefined;
          if (closed) throw closedError();
          const command = buildRemoteCommand({
            ...(opts.remoteNode ? { nodePath: opts.remoteNode } : {}),
            ...(cachedNode ? { cachedNode } : {}),
            ...(opts.sudo ? { sudo: true } : {}),
          });
          // Reserve slots first (round-robin by load), then open all channels in parallel.
          const plan: Conn[] = [];
          for (let i = 0; i < count; i++) {
            const c = pickConnection();
            c.live++;
            plan.push(c);
          }
          const settled = await Promise.allSettled(
            plan.map(async (conn) => {
              const channel = await openCounted(conn, command, true);
              const label = `${display} conn ${conn.index + 1}/ch ${++conn.channelsOpened}`;
              const agent = new SshAgentProcess(label, channel, conn, () => {
                conn.live--;
                agents.delete(agent);
              });
              agents.add(agent);
              channel.write(payload);
              return agent;
            }),
          );
          const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
          const ok = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
          if (failed) {
            for (const a of ok) a.kill();
            throw failed.reason;
          }
          const layout = conns.map((c) => `conn ${c.index + 1}: ${c.live}`).join(', ');
          log(`ssh: ${count} agent channel(s) on ${display}; live channels per connection: ${layout}`);
          return ok;
        })(),
      );
    },

    exec(command: string, input?: Readable) {
      return track(
        (async () => {
          if (closed) throw closedError();
          await ensureConnections(1);
          const conn = pickConnection();
          conn.live++;
          const channel = await openCounted(conn, command, false);
          execChannels.add(channel);
          let stdout = '';
          let stderr = '';
          channel.setEncoding('utf8').on('data', (d: string) => (stdout += d));
          channel.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
          if (input) {
            channel.once('close', () => input.destroy());
            // A local read error must not leave the remote waiting: end the channel, the command fails.
            input.once('error', (err) => {
              stderr += `pdiffcopy: reading the local input failed: ${err.message}\n`;
              channel.close();
            });
            input.pipe(channel);
          } else {
            channel.end();
          }
          return new Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }>((resolve) => {
            channel.once('close', () => {
              execChannels.delete(channel);
              conn.live--;
              void channel.exitStatus.then(({ code, signal }) => resolve({ code, signal, stdout, stderr }));
            });
          });
        })(),
      );
    },

    close(): Promise<void> {
      return (closed ??= (async () => {
        abort.abort();
        prompter?.cancel();
        for (const ch of execChannels) ch.close();
        // Let in-flight spawns finish (or fail) so that no channel is left behind.
        await Promise.allSettled([...pending]);
        await opening;
        for (const a of agents) {
          a.kill();
          // Closing: nobody will read their output any more, and unread output keeps a channel from closing.
          a.discardOutput();
        }
        await Promise.race([
          Promise.allSettled([...agents].map((a) => a.exited)),
          new Promise((r) => setTimeout(r, AGENT_KILL_GRACE_MS + 1000).unref()),
        ]);
        await Promise.allSettled(conns.map((c) => c.link.close()));
      })());
    },
  };
  return transport;
}

function closedError(): PdcError {
  return transportClosed(TRANSPORT_NAME);
}

/** One agent behind one exec channel. */
class SshAgentProcess implements AgentProcess {
  readonly stdin: ChannelLike;
  readonly stdout: ChannelLike;
  readonly stderr: ChannelLike['stderr'];
  readonly exited: Promise<{ code: number | null; signal: string | null }>;
  private killTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    readonly label: string,
    private readonly channel: ChannelLike,
    conn: Conn,
    onGone: () => void,
  ) {
    this.stdin = channel;
    this.stdout = channel;
    this.stderr = channel.stderr;
    let known: ExitStatus | undefined;
    void channel.exitStatus.then((s) => (known = s));
    this.exited = new Promise((resolve) => {
      const finish = (status: ExitStatus) => {
        if (this.done) return;
        this.done = true;
        if (this.killTimer) clearTimeout(this.killTimer);
        onGone();
        resolve(status);
      };
      // The status is known by 'close', which comes once the output has been read to its end.
      channel.once('close', () => void channel.exitStatus.then(finish));
      // If the connection dies, the channel may never get its own close.
      void conn.link.lost.then(() => finish(known ?? { code: null, signal: null }));
    });
    // Writing to a channel whose remote end is gone must not crash the process:
    // the reader of stdout/exited learns about it.
    channel.on('error', () => {});
  }

  discardOutput(): void {
    this.channel.resume();
    this.channel.stderr.resume();
  }

  abort(): void {
    if (this.done || this.killTimer) return;
    // Servers that do not take signal requests (OpenSSH before 7.9) ignore it: then EOF ends it.
    this.channel.signal('KILL');
    this.kill();
  }

  kill(): void {
    if (this.done || this.killTimer) return;
    // EOF on stdin: the agent (and the loader before it) exits on its own.
    this.channel.end();
    this.killTimer = setTimeout(() => {
      // Still there: drop our interest in its output (so 'close' can happen) and close the channel.
      this.discardOutput();
      this.channel.signal('KILL');
      this.channel.close();
    }, AGENT_KILL_GRACE_MS);
    this.killTimer.unref();
  }
}
