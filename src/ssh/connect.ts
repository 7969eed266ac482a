/**
 * One authenticated SSH connection (ssh2 Client) to a resolved host, through its
 * ProxyJump hops if any (each hop is a full SSH connection whose `forwardOut` channel
 * carries the next one). The first host of the chain is reached over TCP, or over the
 * stdio of its ProxyCommand (proxy-command.ts). Host keys are verified for every hop.
 * Every ssh2/socket error is translated into a PdcError here, once, naming the host and
 * the fix.
 */
// Before ssh2, which takes its own reference to crypto.randomFillSync when it loads.
import './pooled-random.js';
import ssh2 from 'ssh2';
import type { Algorithms, ClientChannel, ConnectConfig, ServerHostKeyAlgorithm } from 'ssh2';
import { interrupted, PdcError } from '../errors/index.js';
import { type AuthState, createAuth, type SecretCache } from './auth.js';
import type { SshHostConfig } from './config.js';
import { knownHostsName, knownKeyTypes, verifyHostKey } from './known-hosts.js';
import { cipherList, type CipherSpec } from './options.js';
import type { Prompter } from './prompt.js';
import { type ProxyProcess, startProxyCommand } from './proxy-command.js';
import { markStartup } from '../startup-marks.js';
import type { Socket } from 'node:net';
import { guardReceivedMemory } from './receive-guard.js';
import { slabSocket } from './slab-socket.js';

const { Client } = ssh2;
export type Client = InstanceType<typeof Client>;

export const DEFAULT_CONNECT_TIMEOUT_MS = 15_000;
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
export const KEEPALIVE_COUNT_MAX = 3;

export interface ConnectOptions {
  homeDir: string;
  /** --accept-new-host-key: record an unknown host key (a changed one is always refused). */
  acceptNewHostKey: boolean;
  /** Undefined: never ask anything (no TTY, or BatchMode). */
  prompter?: Prompter;
  /** Overrides ConnectTimeout. Covers TCP connect, handshake and authentication, not time spent at prompts. */
  connectTimeoutMs?: number;
  /** Overrides ServerAliveInterval; 0 disables keepalives. */
  keepaliveIntervalMs?: number;
  secrets?: SecretCache;
  /** Abandons the attempt (the transport is closing): rejects with INTERRUPTED. */
  signal?: AbortSignal;
  /** TCP_NODELAY on a direct connection (see SlabSocketOptions.noDelay). */
  noDelay?: boolean;
  log?: (msg: string) => void;
}

export interface SshConnection {
  /** The client connected to the destination (the last hop). */
  readonly client: Client;
  /** "user@host[:port]" of the destination, for messages. */
  readonly display: string;
  /** Milliseconds from start to authenticated, all hops included. */
  readonly setupMs: number;
  /** Settles with the translated error once the connection is gone without close() (lost, keepalive timeout). */
  readonly lost: Promise<PdcError>;
  close(): Promise<void>;
}

/** "user@alias" plus the real address when it differs, and the port when not 22. */
export function hostDisplay(h: Pick<SshHostConfig, 'alias' | 'hostName' | 'port' | 'user'>): string {
  const port = h.port === 22 ? '' : `:${h.port}`;
  const name = h.hostName.includes(':') ? `[${h.hostName}]` : h.hostName;
  const alias = h.alias.includes(':') ? `[${h.alias}]` : h.alias;
  return h.alias === h.hostName ? `${h.user}@${name}${port}` : `${h.user}@${alias} (${name}${port})`;
}

const KEY_TYPE_ALGOS: Record<string, ServerHostKeyAlgorithm[]> = {
  'ssh-ed25519': ['ssh-ed25519'],
  'ecdsa-sha2-nistp256': ['ecdsa-sha2-nistp256'],
  'ecdsa-sha2-nistp384': ['ecdsa-sha2-nistp384'],
  'ecdsa-sha2-nistp521': ['ecdsa-sha2-nistp521'],
  'ssh-rsa': ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'],
  'ssh-dss': ['ssh-dss'],
};

/**
 * Ciphers: the Ciphers option if set, else aes128-gcm first (with AES-NI it is the fastest
 * cipher ssh2 has, measured) and the rest of ssh2's default list. Host key algorithms for
 * which known_hosts has a key come first, as OpenSSH orders them, so a host with several
 * keys shows the one we know.
 */
function algorithmsFor(knownTypes: string[], ciphers: CipherSpec | undefined): Algorithms {
  const algorithms: Algorithms = { cipher: cipherList(ciphers) as Algorithms['cipher'] };
  const preferred = knownTypes.flatMap((t) => KEY_TYPE_ALGOS[t] ?? []);
  if (preferred.length) algorithms.serverHostKey = { remove: preferred, prepend: preferred, append: [] };
  return algorithms;
}

/** Connect to `target` through its ProxyJump hops. Resolves when authenticated on the last hop. */
export async function connectSsh(target: SshHostConfig, opts: ConnectOptions): Promise<SshConnection> {
  const started = performance.now();
  const hops = [...target.proxyJump, target];
  const clients: Client[] = [];
  let lostResolve!: (e: PdcError) => void;
  const lost = new Promise<PdcError>((r) => (lostResolve = r));
  let closing = false;
  const closeAll = async () => {
    closing = true;
    // Destination first, then the hops it runs through.
    for (const c of [...clients].reverse()) await endClient(c);
  };
  try {
    for (let i = 0; i < hops.length; i++) {
      if (opts.signal?.aborted) throw cancelledError(hostDisplay(target));
      const hop = hops[i]!;
      const via = i > 0 ? hops[i - 1]! : undefined;
      const sock = via ? await forwardOut(clients[i - 1]!, via, hop) : undefined;
      const t0 = performance.now();
      const client = await connectOne(sock, hop, opts, via, i === hops.length - 1);
      clients.push(client);
      opts.log?.(`ssh: ${hostDisplay(hop)} authenticated in ${Math.round(performance.now() - t0)} ms${via ? ` via ${hostDisplay(via)}` : ''}`);
      watchLost(client, hostDisplay(hop), () => closing, lostResolve);
    }
  } catch (err) {
    await closeAll();
    throw err;
  }
  const setupMs = performance.now() - started;
  let closed: Promise<void> | undefined;
  return {
    client: clients[clients.length - 1]!,
    display: hostDisplay(target),
    setupMs,
    lost,
    close: () => (closed ??= closeAll()),
  };
}

/** After authentication: an error or a close that close() did not cause is the connection lost, translated once. */
function watchLost(client: Client, display: string, closing: () => boolean, lose: (e: PdcError) => void): void {
  client.on('error', (err: Error & { level?: string }) => {
    if (closing()) return;
    if (keyChangedOnRenewal.has(client)) {
      lose(
        new PdcError('HOST_KEY_CHANGED', `${display} presented a different host key when renewing the session keys`, {
          hint: 'the connection may have been taken over; check the host before rerunning',
          cause: err,
        }),
      );
      return;
    }
    lose(
      new PdcError('CONNECTION_LOST', `connection to ${display} lost: ${err.message}`, {
        hint: /keepalive/i.test(err.message)
          ? 'the host stopped answering; check the network, then rerun to continue'
          : 'rerun to continue where it stopped',
        cause: err,
      }),
    );
  });
  client.on('close', () => {
    if (closing()) return;
    const proxyExit = proxyOf.get(client)?.exitError();
    lose(
      new PdcError('CONNECTION_LOST', `connection to ${display} ${proxyExit ? `lost: ${proxyExit.message}` : 'closed by the remote side'}`, {
        hint: 'rerun to continue where it stopped',
        ...(proxyExit ? { cause: proxyExit } : {}),
      }),
    );
  });
}

function cancelledError(display: string): PdcError {
  return interrupted(`connection to ${display} cancelled`);
}

/** Clients whose socket has closed (ssh2 has no public flag for it). */
const closedClients = new WeakSet<Client>();
/** The ProxyCommand carrying a client, to explain a connection lost because it exited. */
const proxyOf = new WeakMap<Client, ProxyProcess>();
/** Clients whose server presented another host key when renewing keys (the connection is refused then). */
const keyChangedOnRenewal = new WeakSet<Client>();

function endClient(c: Client): Promise<void> {
  return new Promise((resolve) => {
    if (closedClients.has(c)) return resolve();
    const timer = setTimeout(() => {
      // ssh2's destroy() acts only on a socket that is still writable, and end() has
      // already half-closed it: a silent peer would keep it open forever. Destroy the
      // socket itself.
      c.destroy();
      (c as unknown as { _sock?: { destroy(): void } })._sock?.destroy();
      resolve();
    }, 2000);
    timer.unref();
    c.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    c.end();
  });
}

/** A direct-tcpip channel from `via` to the next hop, used as that hop's socket. */
function forwardOut(via: Client, viaHost: SshHostConfig, hop: SshHostConfig): Promise<ClientChannel> {
  return new Promise((resolve, reject) => {
    via.forwardOut('127.0.0.1', 0, hop.hostName, hop.port, (err, stream) => {
      if (!err) return resolve(stream);
      const msg = err.message.replace(/^\(SSH\) /, '');
      const where = `${hop.hostName}:${hop.port} (through jump host ${hostDisplay(viaHost)})`;
      if (/refused/i.test(msg)) {
        reject(new PdcError('CONNECTION_REFUSED', `connection to ${where} refused`, { hint: 'is sshd running there, and is the port right?', cause: err }));
      } else if (/prohibited/i.test(msg)) {
        reject(
          new PdcError('CONNECTION_REFUSED', `jump host ${hostDisplay(viaHost)} refused to forward to ${hop.hostName}:${hop.port}`, {
            hint: 'the jump host must allow TCP forwarding (AllowTcpForwarding in its sshd_config)',
            cause: err,
          }),
        );
      } else if (/resolve|not known|getaddrinfo|name/i.test(msg)) {
        reject(new PdcError('HOST_UNRESOLVED', `jump host ${hostDisplay(viaHost)} cannot resolve ${hop.hostName}`, { hint: 'check the host name', cause: err }));
      } else {
        reject(new PdcError('CONNECTION_REFUSED', `cannot reach ${where}: ${msg}`, { hint: 'check that the host is reachable from the jump host', cause: err }));
      }
    });
  });
}

/** A deadline that stops counting while the user is at a prompt. */
function pausableTimer(ms: number, onFire: () => void) {
  let remaining = ms;
  let startedAt = Date.now();
  let timer: NodeJS.Timeout | undefined = setTimeout(onFire, remaining);
  let depth = 0;
  return {
    pause(active: boolean) {
      depth += active ? 1 : -1;
      if (active && depth === 1 && timer) {
        clearTimeout(timer);
        timer = undefined;
        remaining -= Date.now() - startedAt;
      } else if (!active && depth === 0 && !timer) {
        startedAt = Date.now();
        timer = setTimeout(onFire, Math.max(remaining, 1000));
      }
    },
    clear() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      depth = -1e9; // never restarts
    },
  };
}

/** `last`: the destination, whose channels are the agents' (a jump host's carry the next hop). */
function connectOne(
  channel: ClientChannel | undefined,
  hop: SshHostConfig,
  opts: ConnectOptions,
  via: SshHostConfig | undefined,
  last: boolean,
): Promise<Client> {
  const display = hostDisplay(hop);
  // The first host of the chain may be reached through its ProxyCommand; later ones through the previous hop.
  const proxy: ProxyProcess | undefined =
    !channel && hop.proxyCommand ? startProxyCommand(hop.proxyCommand, { display, ...(opts.log ? { log: opts.log } : {}) }) : undefined;
  const sock = channel ?? proxy?.sock;
  const timeoutMs = opts.connectTimeoutMs ?? hop.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const prompter = hop.batchMode ? undefined : opts.prompter;

  return new Promise<Client>((resolve, reject) => {
    const client = hopClient(proxy);
    let settled = false;
    /** The TCP socket, when the host is reached directly (not through a ProxyCommand or a jump host). */
    let direct: Socket | undefined;
    let hostKeyError: PdcError | undefined;

    const onAbort = () => fail(cancelledError(display));
    /** The attempt settles once: later events find it settled. */
    const settle = (): boolean => {
      if (settled) return false;
      settled = true;
      timer.clear();
      opts.signal?.removeEventListener('abort', onAbort);
      return true;
    };
    const fail = (e: PdcError) => {
      if (!settle()) return;
      abandon(client, sock, direct);
      reject(e);
    };
    const timer = pausableTimer(timeoutMs, () => fail(connectTimeoutError(display, timeoutMs, proxy ? hop.proxyCommand : undefined)));
    const auth = hopAuth(hop, opts, prompter, timer);
    opts.signal?.addEventListener('abort', onAbort, { once: true });
    watchHandshake(client, display, opts.log, {
      ready: () => {
        if (!settle()) return;
        markStartup('auth');
        resolve(client);
      },
      error: (err) => fail(proxy?.exitError() ?? translateConnectError(err, { display, hop, hostKeyError, auth, via })),
      closed: () => fail(hostKeyError ?? proxy?.exitError() ?? handshakeClosedError(display)),
    });
    const config = clientConfig(hop, opts, prompter, timer, auth, {
      refused: (err) => (hostKeyError = err instanceof PdcError ? err : new PdcError('HOST_KEY_UNKNOWN', `cannot verify the host key of ${display}: ${String(err)}`)),
      renewalKeyChanged: () => keyChangedOnRenewal.add(client),
    });
    try {
      dial(client, config, hop, sock, { noDelay: opts.noDelay ?? false, last }, (tcp) => (direct = tcp));
    } catch (err) {
      fail(new PdcError('CONNECTION_LOST', `cannot start an SSH connection to ${display}: ${(err as Error).message}`, { cause: err }));
    }
  });
}

/** A client for one hop; its ProxyCommand (if any) ends with it. */
function hopClient(proxy: ProxyProcess | undefined): Client {
  const client = new Client();
  if (proxy) proxyOf.set(client, proxy);
  client.once('close', () => {
    closedClients.add(client);
    proxy?.kill();
  });
  return client;
}

/**
 * Start the handshake over `sock` (a jump host's channel or a ProxyCommand's stdio), else over a
 * new TCP socket, handed to `onDirect` as soon as it exists.
 */
function dial(
  client: Client,
  config: ConnectConfig,
  hop: SshHostConfig,
  sock: ConnectConfig['sock'],
  o: { noDelay: boolean; last: boolean },
  onDirect: (tcp: Socket) => void,
): void {
  const direct = sock ? undefined : slabSocket(hop.hostName, hop.port, { noDelay: o.noDelay });
  if (direct) onDirect(direct);
  client.connect({ ...config, sock: sock ?? direct });
  // Reached through a jump host or ProxyCommand, the memory is the hop's or the pipe's: not
  // reused. A jump host's data is the next hop's stream, which the guard would copy packet by
  // packet: it keeps fresh slabs, passed on as views.
  if (direct && o.last) guardReceivedMemory(client, direct);
}

/** Tear down a failed attempt: the client and whatever carries it. */
function abandon(client: Client, ...carriers: Array<{ destroy(): unknown } | undefined>): void {
  client.removeAllListeners('ready');
  // Keep an error listener: ssh2 may emit more errors while tearing down.
  client.on('error', () => {});
  client.destroy();
  for (const c of carriers) c?.destroy();
}

/** The connect timeout ran out (`proxyCommand`: the host was reached through it). */
function connectTimeoutError(display: string, timeoutMs: number, proxyCommand: string | undefined): PdcError {
  return new PdcError(
    'CONNECTION_TIMEOUT',
    `timed out after ${Math.round(timeoutMs / 1000)} s connecting to ${display}${proxyCommand ? ` through ProxyCommand: ${proxyCommand}` : ''}`,
    {
      hint:
        (proxyCommand ? 'run the ProxyCommand by hand to see where it waits' : 'check the host name, port and firewall') +
        '; on slow links raise it with --connect-timeout SECONDS or -o ConnectTimeout=SECONDS',
    },
  );
}

function handshakeClosedError(display: string): PdcError {
  return new PdcError('CONNECTION_LOST', `${display} closed the connection during the SSH handshake`, {
    hint: 'is it an SSH server? it may also be refusing connections (MaxStartups, firewall, TCP wrappers)',
  });
}

/** Authentication on `hop` with its config's methods; the connect timer stops while the user is at a prompt. */
function hopAuth(hop: SshHostConfig, opts: ConnectOptions, prompter: Prompter | undefined, timer: { pause(active: boolean): void }): AuthState {
  return createAuth({
    user: hop.user,
    display: `${hop.user}@${hop.alias}`,
    identityFiles: hop.identityFiles,
    identitiesOnly: hop.identitiesOnly,
    ...(hop.agentSocket ? { agentSocket: hop.agentSocket } : {}),
    homeDir: opts.homeDir,
    pubkey: hop.pubkeyAuthentication,
    password: hop.passwordAuthentication,
    keyboardInteractive: hop.kbdInteractiveAuthentication,
    ...(prompter ? { prompter } : {}),
    ...(opts.secrets ? { secrets: opts.secrets } : {}),
    onPrompt: (active) => timer.pause(active),
    ...(opts.log ? { log: opts.log } : {}),
  });
}

/** A client's events until it is authenticated: progress for -v and the startup marks, then ready, an error, or closed. */
function watchHandshake(
  client: Client,
  display: string,
  log: ((msg: string) => void) | undefined,
  on: { ready(): void; error(err: Error & { level?: string; code?: string }): void; closed(): void },
): void {
  client.once('connect', () => markStartup('tcp'));
  client.on('handshake', (n: { kex: string; serverHostKey: string; cs: { cipher: string } }) => {
    markStartup('kex');
    log?.(`ssh: ${display}: kex ${n.kex}, host key ${n.serverHostKey}, cipher ${n.cs.cipher}`);
  });
  client.on('ready', () => on.ready());
  client.on('error', (err: Error & { level?: string; code?: string }) => {
    // ssh2 reports an unusable agent as an error but goes on with the next method.
    if (err.level === 'agent') {
      log?.(`ssh: ${display}: ssh-agent: ${err.message}`);
      return;
    }
    on.error(err);
  });
  client.on('close', () => on.closed());
}

/** ssh2's settings for `hop`: keepalives, algorithms, authentication and host key checking against known_hosts. */
function clientConfig(
  hop: SshHostConfig,
  opts: ConnectOptions,
  prompter: Prompter | undefined,
  timer: { pause(active: boolean): void },
  auth: AuthState,
  hostKey: { refused(err: unknown): void; renewalKeyChanged(): void },
): ConnectConfig {
  const name = knownHostsName(hop.hostName, hop.port, hop.hostKeyAlias);
  const khFiles = [...hop.userKnownHostsFiles, ...hop.globalKnownHostsFiles];
  const acceptNew =
    opts.acceptNewHostKey || hop.strictHostKeyChecking === 'accept-new' || hop.strictHostKeyChecking === 'no';
  return {
    host: hop.hostName,
    port: hop.port,
    username: hop.user,
    // Our own pausable timer replaces readyTimeout, which would also count prompt time.
    readyTimeout: 0,
    keepaliveInterval: opts.keepaliveIntervalMs ?? hop.serverAliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
    keepaliveCountMax: hop.serverAliveCountMax ?? KEEPALIVE_COUNT_MAX,
    algorithms: algorithmsFor(knownKeyTypes(khFiles, name), hop.ciphers),
    authHandler: auth.handler,
    hostVerifier: renewalSafeVerifier(
      (key) =>
        verifyHostKey(key, {
          // As OpenSSH names it (and records it in known_hosts): `host`, or `[host]:port` off port 22.
          display: name,
          name,
          files: khFiles,
          userFile: hop.userKnownHostsFiles[0]!,
          acceptNew,
          hashNew: hop.hashKnownHosts,
          ...(prompter && hop.strictHostKeyChecking === 'ask' ? { confirm: askYesNo(prompter, timer) } : {}),
          ...(opts.log ? { log: opts.log } : {}),
        }),
      (err) => hostKey.refused(err),
      () => hostKey.renewalKeyChanged(),
    ),
  };
}

/**
 * ssh2's hostVerifier for one connection. The key presented when connecting is checked by
 * `verifyFirst` (known_hosts, maybe a question: asynchronous); a key renewal presents the host
 * key again, and it is compared at once with the key accepted then. At once, because ssh2 (1.16)
 * corrupts the outgoing stream when a renewal's key is verified asynchronously while channel
 * data flows (OpenSSH's sshd: "Bad packet length"); the same key, as OpenSSH's client requires.
 */
export function renewalSafeVerifier(
  verifyFirst: (key: Buffer) => Promise<unknown>,
  onRefused: (err: unknown) => void,
  onRenewalKeyChanged: () => void,
): (key: Buffer, verify: (ok: boolean) => void) => boolean | undefined {
  let accepted: Buffer | undefined;
  return (key, verify) => {
    if (accepted) {
      if (key.equals(accepted)) return true;
      onRenewalKeyChanged();
      return false;
    }
    verifyFirst(key).then(
      () => {
        accepted = Buffer.from(key);
        verify(true);
      },
      (err: unknown) => {
        onRefused(err);
        verify(false);
      },
    );
    return undefined;
  };
}

/** A yes/no question for an unknown host key, asked on the terminal; the connect timer stops meanwhile. */
function askYesNo(prompter: Prompter, timer: { pause(on: boolean): void }): (question: string) => Promise<boolean> {
  return async (question) => {
    timer.pause(true);
    try {
      for (;;) {
        const a = (await prompter.ask(question, true)).trim().toLowerCase();
        if (a === 'yes') return true;
        if (a === 'no') return false;
        question = "Please type 'yes' or 'no': ";
      }
    } finally {
      timer.pause(false);
    }
  };
}

interface ErrorContext {
  display: string;
  hop: SshHostConfig;
  hostKeyError: PdcError | undefined;
  auth: AuthState | undefined;
  via: SshHostConfig | undefined;
}

/** ssh2 and socket errors to PdcError: one line naming the host, and a hint naming the fix. */
export function translateConnectError(err: Error & { level?: string; code?: string }, ctx: ErrorContext): PdcError {
  if (ctx.hostKeyError) return ctx.hostKeyError;
  if (err instanceof PdcError) return err;
  const { display, hop } = ctx;
  const addr = `${hop.hostName}:${hop.port}`;
  if (err.level === 'client-authentication') {
    const tried = ctx.auth?.attempts.length ? ctx.auth.attempts.join(', ') : 'nothing (no key, agent or terminal)';
    const allowed = ctx.auth?.serverMethods();
    return new PdcError(
      'AUTH_FAILED',
      `authentication to ${display} failed; tried: ${tried}${allowed ? `; the server accepts: ${allowed.join(', ')}` : ''}`,
      {
        hint: 'pass the right key with -i FILE, load it into ssh-agent, or set IdentityFile in ~/.ssh/config (passwords and passphrases need a terminal)',
        cause: err,
      },
    );
  }
  switch (err.code) {
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EAI_NONAME':
    case 'EAI_FAIL':
    case 'EAI_NODATA':
      return new PdcError('HOST_UNRESOLVED', `cannot resolve host name ${hop.hostName}${hop.alias !== hop.hostName ? ` (for ${hop.alias})` : ''}`, {
        hint: err.code === 'EAI_AGAIN' ? 'DNS did not answer; check the network and the name' : 'check the spelling, or the HostName in ~/.ssh/config',
        cause: err,
      });
    case 'ECONNREFUSED':
      return new PdcError('CONNECTION_REFUSED', `connection to ${addr} refused (${display})`, {
        hint: 'is sshd running there, and is the port right (--port, or Port in ~/.ssh/config)?',
        cause: err,
      });
    case 'ETIMEDOUT':
      return new PdcError('CONNECTION_TIMEOUT', `timed out connecting to ${addr} (${display})`, {
        hint: 'check the address and any firewall in between',
        cause: err,
      });
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'EADDRNOTAVAIL':
      return new PdcError('CONNECTION_REFUSED', `no route to ${addr} (${display}): ${err.code}`, {
        hint: 'check the address and the network (VPN, routes)',
        cause: err,
      });
    case 'ECONNRESET':
    case 'EPIPE':
      return new PdcError('CONNECTION_LOST', `${display} reset the connection during the SSH handshake`, {
        hint: 'is it an SSH server? it may also be limiting connections (MaxStartups) or filtered',
        cause: err,
      });
  }
  if (err.level === 'client-timeout') {
    return new PdcError('CONNECTION_TIMEOUT', `${display} stopped answering during the SSH handshake`, {
      hint: 'check the network; on slow links raise --connect-timeout SECONDS or -o ConnectTimeout=SECONDS',
      cause: err,
    });
  }
  if (err.level === 'handshake' || err.level === 'protocol') {
    return new PdcError('CONNECTION_LOST', `SSH handshake with ${display} failed: ${err.message}`, {
      hint: /no matching/i.test(err.message)
        ? 'the server and ssh2 share no algorithm; the server may be too old or restricted'
        : 'is it an SSH server?',
      cause: err,
    });
  }
  return new PdcError('CONNECTION_LOST', `SSH connection to ${display} failed: ${err.message}`, {
    hint: 'rerun with -v for details',
    cause: err,
  });
}
