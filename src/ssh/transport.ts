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
import type { PdcError } from '../errors/index.js';
import type { Readable } from 'node:stream';
import type { CachedNode } from '../protocol/bootstrap.js';
import type { RemoteRunner } from '../transport/node-upload.js';
import { agentCommand, agentPayload, prepareAgentNode } from '../transport/remote-command.js';
import { AGENT_KILL_GRACE_MS, type AgentProcess, checkSpawn, type Transport, transportClosed } from '../transport/types.js';
import type { SecretCache } from './auth.js';
import { resolveHost, type SshHostConfig } from './config.js';
import { connectSsh, hostDisplay } from './connect.js';
import { type Conn, ConnectionPool } from './connection-pool.js';
import { type ChannelLike, type ExitStatus, openExec, type SshLink } from './exec-channel.js';
import { type Prompter, ttyPrompter } from './prompt.js';
import { connectInThread } from './thread-connection.js';
import { CONNECTION_THREADS_MIN_CORES } from './thread-messages.js';

// The agent pool explains early exits with this; exported here too so callers need one import.
export { exitStatusError } from './remote-exit.js';

export { MAX_CHANNELS_PER_CONNECTION } from './connection-pool.js';
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

type ExecResult = Awaited<ReturnType<SshTransport['exec']>>;

/** What the transport's operations share. */
interface TransportState {
  readonly display: string;
  readonly opts: SshTransportOptions;
  readonly log: (msg: string) => void;
  readonly pool: ConnectionPool;
  /** Runs the --upload-node probe and upload, through exec(). */
  readonly runner: RemoteRunner;
  readonly agents: Set<SshAgentProcess>;
  /** Channels of exec() still running: close() ends them (an upload must not hold it up). */
  readonly execChannels: Set<ChannelLike>;
  /** The node the agents run (--upload-node decides once, on the first spawn). */
  remoteNode: Promise<CachedNode | undefined> | undefined;
  /** Set by close(): every later operation fails. */
  closed: Promise<void> | undefined;
}

export function createSshTransport(
  loc: { user?: string; host: string; port?: number },
  opts: SshTransportOptions = {},
): SshTransport {
  const homeDir = opts.homeDir ?? homedir();
  const log = opts.log ?? (() => {});
  // Resolved now (a few small file reads) so `description` names the real destination.
  const target = resolveTarget(loc, opts, homeDir);
  const display = hostDisplay(target);
  const interactive = opts.interactive ?? Boolean(process.stdin.isTTY);
  const prompter = interactive ? ttyPrompter() : undefined;
  // close() abandons connection attempts still in progress (and any prompt they wait at).
  const abort = new AbortController();
  logRoute(target, display, log);
  const connect = linkConnector(target, opts, { homeDir, display, ...(prompter ? { prompter } : {}), secrets: {}, signal: abort.signal, log });
  const wanted = Math.max(1, Math.floor(opts.connections ?? DEFAULT_CONNECTIONS));
  const state: TransportState = {
    display,
    opts,
    log,
    pool: new ConnectionPool({ wanted, display, connect, closedError: () => (state.closed ? closedError() : undefined), log }),
    runner: { run: (command, input) => transport.exec(command, input) },
    agents: new Set(),
    execChannels: new Set(),
    remoteNode: undefined,
    closed: undefined,
  };
  /** Spawns and execs in flight: close() lets them settle first, so that no channel is left behind. */
  const pending = new Set<Promise<unknown>>();
  const track = <T>(p: Promise<T>): Promise<T> => {
    pending.add(p);
    void p.finally(() => pending.delete(p)).catch(() => undefined);
    return p;
  };
  const transport: SshTransport = {
    description: display,
    target,
    setupTimesMs: state.pool.setupTimesMs,
    spawnAgents: (count) => track(spawnAgents(state, count)),
    exec: (command, input) => track(execCommand(state, command, input)),
    close: () => (state.closed ??= closeTransport(state, abort, prompter, pending)),
  };
  return transport;
}

/** The destination after ssh_config, -o and the command line. */
function resolveTarget(loc: { user?: string; host: string; port?: number }, opts: SshTransportOptions, homeDir: string): SshHostConfig {
  return resolveHost(loc.host, {
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
}

/** -v: the jump hosts and ProxyCommand the connections go through. */
function logRoute(target: SshHostConfig, display: string, log: (msg: string) => void): void {
  if (target.proxyJump.length) log(`ssh: ${display} via ${target.proxyJump.map((h) => hostDisplay(h)).join(' -> ')}`);
  const proxyCommand = (target.proxyJump[0] ?? target).proxyCommand;
  if (proxyCommand) log(`ssh: reaching ${hostDisplay(target.proxyJump[0] ?? target)} through ProxyCommand: ${proxyCommand}`);
}

interface ConnectContext {
  homeDir: string;
  display: string;
  prompter?: Prompter;
  /** Shared by all connections, so a password is asked once. */
  secrets: SecretCache;
  /** Abandons connection attempts (the transport is closing). */
  signal: AbortSignal;
  log: (msg: string) => void;
}

/**
 * Makes the transport's connections. The first connection is made on this thread: it may prompt
 * (passphrases, passwords, a new host key). With connectionThreads the others wait for it and then
 * connect in threads of their own, with what it was given (the password, the host key now in
 * known_hosts); one that cannot (a passphrase-protected key, say) connects on this thread instead.
 */
function linkConnector(target: SshHostConfig, opts: SshTransportOptions, c: ConnectContext): () => Promise<SshLink> {
  const threads = opts.connectionThreads ?? availableParallelism() >= CONNECTION_THREADS_MIN_CORES;
  const connectOptions = {
    homeDir: c.homeDir,
    acceptNewHostKey: opts.acceptNewHostKey ?? false,
    ...(opts.connectTimeoutMs !== undefined ? { connectTimeoutMs: opts.connectTimeoutMs } : {}),
    ...(opts.keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs: opts.keepaliveIntervalMs } : {}),
    noDelay: opts.pulling ?? false,
  };
  let firstConnection: Promise<unknown> | undefined;
  const connectHere = async (): Promise<SshLink> => {
    const ssh = await connectSsh(target, { ...connectOptions, ...(c.prompter ? { prompter: c.prompter } : {}), secrets: c.secrets, signal: c.signal, log: c.log });
    return { setupMs: ssh.setupMs, lost: ssh.lost, where: 'the main thread', exec: (command, direct) => openExec(ssh.client, c.display, command, direct), close: () => ssh.close() };
  };
  return async (): Promise<SshLink> => {
    if (!threads || !firstConnection) {
      const here = connectHere();
      firstConnection ??= here;
      return here;
    }
    const first = await firstConnection.then(
      () => true,
      () => false,
    );
    if (!first || c.signal.aborted) return connectHere();
    try {
      const password = await c.secrets.password;
      return await connectInThread({ target, ...connectOptions, ...(password !== undefined ? { password } : {}) }, { display: c.display, signal: c.signal, log: c.log });
    } catch (err) {
      if (c.signal.aborted) throw err;
      c.log(`ssh: a connection thread could not connect (${(err as Error).message}); connecting on the main thread`);
      return connectHere();
    }
  };
}

/** Start `count` agents, each on its own exec channel, spread over the connections by load. */
async function spawnAgents(s: TransportState, count: number): Promise<AgentProcess[]> {
  checkSpawn(TRANSPORT_NAME, s.closed, count);
  await s.pool.ensure(count);
  if (s.closed) throw closedError();
  const payload = agentPayload(s.opts);
  const cachedNode = s.opts.uploadNode ? await (s.remoteNode ??= prepareAgentNode(s.runner, s.opts, s.display, s.log)) : undefined;
  if (s.closed) throw closedError();
  const command = agentCommand(s.opts, cachedNode);
  // Reserve slots first (round-robin by load), then open all channels in parallel.
  const slots = Array.from({ length: count }, () => s.pool.reserve());
  const settled = await Promise.allSettled(slots.map((conn) => startAgent(s, conn, command, payload)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  const ok = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  if (failed) {
    for (const a of ok) a.kill();
    throw failed.reason;
  }
  s.log(`ssh: ${count} agent channel(s) on ${s.display}; live channels per connection: ${s.pool.layout()}`);
  return ok;
}

/** One agent in a slot reserved on `conn`: the loader runs on a new channel and reads the agent's code from its stdin. */
async function startAgent(s: TransportState, conn: Conn, command: string, payload: Buffer): Promise<SshAgentProcess> {
  const channel = await s.pool.openChannel(conn, command, true);
  const label = `${s.display} conn ${conn.index + 1}/ch ${++conn.channelsOpened}`;
  const agent = new SshAgentProcess(label, channel, conn, () => {
    s.pool.release(conn);
    s.agents.delete(agent);
  });
  s.agents.add(agent);
  channel.write(payload);
  return agent;
}

/** SshTransport.exec: one plain command on a channel of its own, its output collected as text. */
async function execCommand(s: TransportState, command: string, input?: Readable): Promise<ExecResult> {
  if (s.closed) throw closedError();
  await s.pool.ensure(1);
  const conn = s.pool.reserve();
  const channel = await s.pool.openChannel(conn, command, false);
  s.execChannels.add(channel);
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
  return new Promise<ExecResult>((resolve) => {
    channel.once('close', () => {
      s.execChannels.delete(channel);
      s.pool.release(conn);
      void channel.exitStatus.then(({ code, signal }) => resolve({ code, signal, stdout, stderr }));
    });
  });
}

/** SshTransport.close: abandon what is still connecting, stop the agents, then close the connections. */
async function closeTransport(s: TransportState, abort: AbortController, prompter: Prompter | undefined, pending: Set<Promise<unknown>>): Promise<void> {
  abort.abort();
  prompter?.cancel();
  for (const ch of s.execChannels) ch.close();
  // Let in-flight spawns finish (or fail) so that no channel is left behind.
  await Promise.allSettled([...pending]);
  await s.pool.settled();
  for (const a of s.agents) {
    a.kill();
    // Closing: nobody will read their output any more, and unread output keeps a channel from closing.
    a.discardOutput();
  }
  await Promise.race([
    Promise.allSettled([...s.agents].map((a) => a.exited)),
    new Promise((r) => setTimeout(r, AGENT_KILL_GRACE_MS + 1000).unref()),
  ]);
  await s.pool.closeAll();
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
