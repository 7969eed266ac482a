/**
 * The OpenSSH Transport (`-e, --rsh COMMAND`): every agent runs behind its own
 * process of the system `ssh` client instead of an ssh2 channel, so whatever the
 * user's OpenSSH does works unchanged: Match blocks, certificates, FIDO keys, GSSAPI,
 * ProxyCommand, ControlMaster, the user's known_hosts exactly. Each ssh process is its
 * own connection unless the user's ssh_config multiplexes them (ControlMaster).
 *
 * As over ssh2, the remote command is the constant loader (src/protocol/bootstrap.ts)
 * and the agent's code follows on stdin; user paths never enter the command line.
 * Host keys and authentication are the system ssh's business.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { basename, delimiter, join } from 'node:path';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { PdcError } from '../errors/index.js';
import { shellQuote } from '../protocol/bootstrap.js';
import { exitStatusError } from '../ssh/remote-exit.js';
import type { RemoteRunner } from './node-upload.js';
import { agentCommand, agentPayload, prepareAgentNode } from './remote-command.js';
import { buildSshArgs, type RshDestination, splitRshCommand } from './rsh-command.js';
import { AGENT_KILL_GRACE_MS, type AgentProcess, checkSpawn, type Transport, transportClosed } from './types.js';

/** This transport in its errors. */
const TRANSPORT_NAME = 'OpenSSH';
/** After ssh has exited, how long its stderr may take to drain (so errors can quote it). */
const STDERR_DRAIN_MS = 1000;
/** ssh's exit status for its own failures (connection, authentication, host key). */
const SSH_EXIT_ERROR = 255;

export interface OpenSshTransportOptions {
  /** Node binary on the remote (default: node, then nodejs, from PATH). */
  remoteNode?: string;
  /** Run the agent through `sudo -n`. */
  sudo?: boolean;
  /**
   * --upload-node: when the remote has no usable node and runs this host's OS and CPU
   * architecture, send this process's node to its cache and run the agents with it
   * (one extra ssh for the probe, one more for the upload when it is needed).
   */
  uploadNode?: boolean;
  log?: (msg: string) => void;
  /** Code sent to the loader instead of dist/agent.cjs (tests, stand-in agents). */
  agentCode?: Buffer;
  /** -F FILE for ssh (pdiffcopy's -F). */
  configFile?: string;
  /** -i FILE for ssh, each (pdiffcopy's -i). */
  identityFiles?: string[];
  /** Let ssh record an unknown host key (StrictHostKeyChecking=accept-new); a changed one is still refused. */
  acceptNewHostKey?: boolean;
  /** pdiffcopy's -o options (and -J as ProxyJump=...), passed on to ssh as `-o OPTION`. */
  options?: readonly string[];
  /**
   * A terminal can answer ssh's questions (password, passphrase, FIDO touch, new host
   * key). Default: process.stdin.isTTY. Without one, ssh runs with BatchMode=yes and
   * fails at once instead of waiting for an answer that cannot come, and all agents'
   * ssh processes start together. With one, each agent's ssh starts once the previous
   * one is through, so questions come one at a time (and a ControlMaster the first one
   * opens serves the others); work starts as soon as the first is up.
   */
  interactive?: boolean;
  /** Environment for ssh (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface OpenSshTransport extends Transport {
  /** The program and arguments each agent's ssh runs with (the last one is the loader command). */
  readonly argv: readonly string[];
  /**
   * Why an agent's ssh ended before the agent said hello: ssh's own failures (exit 255)
   * from its stderr, else the loader's exit statuses (node missing, too old, sudo).
   * Pass it to AgentHost.start as `explainExit`.
   */
  explainExit(code: number | null, stderr: string): PdcError | undefined;
}

/** What the transport's operations share. */
interface OpenSshState {
  readonly opts: OpenSshTransportOptions;
  readonly program: string;
  readonly env: NodeJS.ProcessEnv;
  readonly display: string;
  readonly interactive: boolean;
  readonly log: (msg: string) => void;
  /** ssh's argv (without the program) that runs `remoteCommand`. */
  readonly sshArgs: (remoteCommand: string) => string[];
  /** Runs the --upload-node probe and upload, each in an ssh of its own. */
  readonly runner: RemoteRunner;
  /** The agents' argv; with --upload-node it names the cached node once that is decided. */
  args: string[];
  readonly agents: Set<AgentProcess>;
  /** ssh processes of the probe and upload still running: close() stops them. */
  readonly plainRuns: Set<ChildProcessWithoutNullStreams>;
  started: number;
  payload: Buffer | undefined;
  nodeDecided: Promise<void> | undefined;
  closed: Promise<void> | undefined;
}

/**
 * Agents through the system ssh. `rsh` is the -e COMMAND (e.g. `ssh -F cfg`), split as
 * rsync splits it; `dest` is the remote location (`user@` becomes `-l user`, a port
 * `-p PORT`). Throws RSH_COMMAND_INVALID for a COMMAND that cannot be split.
 */
export function createOpenSshTransport(rsh: string, dest: RshDestination, opts: OpenSshTransportOptions = {}): OpenSshTransport {
  const words = splitRshCommand(rsh);
  const interactive = opts.interactive ?? Boolean(process.stdin.isTTY);
  const program = words[0]!;
  const sshArgs = (remoteCommand: string) =>
    buildSshArgs(words, dest, remoteCommand, {
      batchMode: !interactive,
      ...(opts.configFile !== undefined ? { configFile: opts.configFile } : {}),
      ...(opts.identityFiles ? { identityFiles: opts.identityFiles } : {}),
      ...(opts.acceptNewHostKey ? { acceptNewHostKey: true } : {}),
      ...(opts.options?.length ? { options: opts.options } : {}),
    });
  const env = opts.env ?? process.env;
  const display = destinationDisplay(dest);
  const plainRuns = new Set<ChildProcessWithoutNullStreams>();
  const s: OpenSshState = {
    opts,
    program,
    env,
    display,
    interactive,
    log: opts.log ?? (() => {}),
    sshArgs,
    runner: { run: (command, input) => runSsh(program, sshArgs(command), env, display, input, plainRuns) },
    args: sshArgs(agentCommand(opts)),
    agents: new Set(),
    plainRuns,
    started: 0,
    payload: undefined,
    nodeDecided: undefined,
    closed: undefined,
  };
  return {
    description: display,
    get argv() {
      return [program, ...s.args];
    },
    explainExit: (code, stderr) => opensshExitError(code, stderr, display),
    spawnAgents: (count) => spawnAgents(s, count),
    close: () => (s.closed ??= closeTransport(s)),
  };
}

/** "user@host:port" of the destination, an IPv6 address in brackets. */
function destinationDisplay(dest: RshDestination): string {
  const host = dest.host.includes(':') ? `[${dest.host}]` : dest.host;
  return `${dest.user !== undefined ? `${dest.user}@` : ''}${host}${dest.port !== undefined ? `:${dest.port}` : ''}`;
}

/** Start `count` agents, each behind an ssh process of its own (one after another when ssh may ask questions). */
async function spawnAgents(s: OpenSshState, count: number): Promise<AgentProcess[]> {
  checkSpawn(TRANSPORT_NAME, s.closed, count);
  await checkProgram(s.program, s.env);
  if (s.closed) throw closedError();
  if (s.opts.uploadNode) {
    await (s.nodeDecided ??= (async () => {
      const cachedNode = await prepareAgentNode(s.runner, s.opts, s.display, s.log);
      s.args = s.sshArgs(agentCommand(s.opts, cachedNode));
    })());
    if (s.closed) throw closedError();
  }
  const label = () => `${s.display} ssh#${++s.started}`;
  const start = (name: string, stdoutSink?: PassThrough) => startSsh(s, name, stdoutSink);
  s.log(`ssh: starting ${count} agent(s) with: ${[s.program, ...s.args.slice(0, -1)].map(shellQuote).join(' ')} LOADER`);
  if (!s.interactive) return Array.from({ length: count }, () => track(s, start(label())));
  // One after another: each waits until the one before it is through.
  const chain: Array<SshProcessAgent | DeferredAgent> = [track(s, start(label(), bulkPassThrough()))];
  for (let i = 1; i < count; i++) chain.push(track(s, new DeferredAgent(label(), chain[i - 1]!.through, start)));
  return chain;
}

/** One agent's ssh, started now: the loader reads the agent's code from its stdin. */
function startSsh(s: OpenSshState, label: string, stdoutSink?: PassThrough): SshProcessAgent {
  const child = spawn(s.program, s.args, { stdio: ['pipe', 'pipe', 'pipe'], env: s.env });
  child.stdin.write((s.payload ??= agentPayload(s.opts)));
  return new SshProcessAgent(label, child, stdoutSink);
}

function track<A extends AgentProcess>(s: OpenSshState, agent: A): A {
  s.agents.add(agent);
  void agent.exited.then(() => s.agents.delete(agent));
  return agent;
}

/** OpenSshTransport.close: stop the probe or upload, end the agents and wait (bounded) until their ssh has exited. */
async function closeTransport(s: OpenSshState): Promise<void> {
  for (const child of s.plainRuns) child.kill('SIGTERM');
  const all = [...s.agents];
  for (const a of all) {
    a.kill();
    // Nobody reads their output any more, and unread output would keep ssh from exiting.
    a.stdout.resume();
    a.stderr.resume();
  }
  await Promise.race([Promise.allSettled(all.map((a) => a.exited)), delay(2 * AGENT_KILL_GRACE_MS + STDERR_DRAIN_MS)]);
}

/**
 * ssh's own failures (it exits 255) mapped from its stderr where the message is
 * unambiguous; everything else exits with the loader's statuses (exitStatusError).
 */
export function opensshExitError(code: number | null, stderrText: string, hostDisplay: string): PdcError | undefined {
  if (code !== SSH_EXIT_ERROR) return exitStatusError(code, stderrText, hostDisplay);
  const stderr = stderrText.replace(/\r/g, '');
  const last = lastLine(stderr);
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for \S+ has changed/i.test(stderr)) {
    return new PdcError('HOST_KEY_CHANGED', `the host key of ${hostDisplay} has changed (ssh refused it)`, {
      hint: 'if the host was really reinstalled, remove the old key with ssh-keygen -R HOST; otherwise someone may be intercepting the connection',
    });
  }
  if (/Host key verification failed/i.test(stderr)) {
    return new PdcError('HOST_KEY_UNKNOWN', `ssh could not verify the host key of ${hostDisplay}: ${last}`, {
      hint: 'accept it with --accept-new-host-key, or connect once with ssh on a terminal; without a terminal pdiffcopy runs ssh with BatchMode=yes, which never asks',
    });
  }
  if (/Permission denied|Too many authentication failures/i.test(stderr)) {
    return new PdcError('AUTH_FAILED', `ssh could not log in to ${hostDisplay}: ${last}`, {
      hint: 'check the user and key (ssh -v shows what was tried); with no terminal ssh runs in BatchMode, so load the key into ssh-agent',
    });
  }
  if (/Connection refused/i.test(stderr)) {
    return new PdcError('CONNECTION_REFUSED', `connection to ${hostDisplay} refused: ${last}`, {
      hint: 'is sshd running there, and is the port right (-p, or Port in ~/.ssh/config)?',
    });
  }
  if (/Could not resolve hostname/i.test(stderr)) {
    return new PdcError('HOST_UNRESOLVED', `cannot resolve ${hostDisplay}: ${last}`, {
      hint: 'check the spelling, or the HostName in ~/.ssh/config',
    });
  }
  if (/Connection timed out|Operation timed out/i.test(stderr)) {
    return new PdcError('CONNECTION_TIMEOUT', `timed out connecting to ${hostDisplay}: ${last}`, {
      hint: 'check the host name, port and firewall; raise ConnectTimeout in ~/.ssh/config on slow links',
    });
  }
  return new PdcError('CONNECTION_LOST', `ssh to ${hostDisplay} failed${last ? `: ${last}` : ''}`, {
    hint: 'run the same ssh command by hand with -v to see why',
  });
}

function lastLine(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  const line = lines[lines.length - 1] ?? '';
  return line.length > 300 ? line.slice(0, 297) + '...' : line;
}

/** Fail before spawning anything when the -e program is not there or not executable. */
async function checkProgram(program: string, env: NodeJS.ProcessEnv): Promise<void> {
  const candidates = program.includes('/')
    ? [program]
    : (env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).map((dir) => join(dir || '.', program));
  for (const file of candidates) {
    try {
      await access(file, constants.X_OK);
      if ((await stat(file)).isFile()) return;
    } catch {
      /* next */
    }
  }
  const isSsh = basename(program) === 'ssh';
  throw new PdcError('RSH_NOT_FOUND', `cannot run ${JSON.stringify(program)} (-e/--rsh): ${program.includes('/') ? 'no such executable file' : 'not found on PATH'}`, {
    hint: isSsh
      ? 'install the OpenSSH client (Debian/Ubuntu: apt install openssh-client; Fedora/RHEL: dnf install openssh-clients), or leave out -e to use the built-in SSH client'
      : 'check the program name in -e, or leave out -e to use the built-in SSH client',
  });
}

function closedError(): PdcError {
  return transportClosed(TRANSPORT_NAME);
}

/**
 * One ssh run of a plain remote command (the --upload-node probe and upload), `input` piped
 * to its stdin. ssh's own failures (exit 255) become their PdcError here; the command's
 * status is the caller's to read.
 */
function runSsh(
  program: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  display: string,
  input: Readable | undefined,
  running: Set<ChildProcessWithoutNullStreams>,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], env });
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    // EPIPE when ssh is gone early: its exit status tells why.
    child.stdin.on('error', () => undefined);
    if (input) {
      input.once('error', (err) => {
        stderr += `pdiffcopy: reading the local input failed: ${err.message}\n`;
        child.kill('SIGTERM');
      });
      input.pipe(child.stdin);
    } else {
      child.stdin.end();
    }
    child.once('error', (err) => reject(new PdcError('RSH_NOT_FOUND', `cannot run ${JSON.stringify(program)}: ${err.message}`, { hint: 'check the program name in -e' })));
    child.once('close', (code) => {
      running.delete(child);
      input?.destroy();
      const sshFailed = code === SSH_EXIT_ERROR ? opensshExitError(code, stderr, display) : undefined;
      if (sshFailed) reject(sshFailed);
      else resolve({ code, stdout, stderr });
    });
  });
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms).unref());
}

/**
 * A pass-through for the agent's byte streams. Blocks are up to 4 MiB and ssh delivers
 * 64 KiB reads: with the default 16 KiB buffer every read would pause and resume the pipe.
 */
function bulkPassThrough(): PassThrough {
  return new PassThrough({ highWaterMark: 1 << 20 });
}

type ExitStatus = { code: number | null; signal: string | null };

/** One agent behind one ssh process. */
class SshProcessAgent implements AgentProcess {
  readonly stdin: Writable;
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly exited: Promise<ExitStatus>;
  /**
   * With a stdout sink: settles true once the remote side has sent its first byte (ssh is
   * through), false if ssh ended first. Without one: settles false when ssh ends.
   */
  readonly through: Promise<boolean>;
  private killTimer: NodeJS.Timeout | undefined;
  private done = false;

  constructor(
    readonly label: string,
    private readonly child: ChildProcessWithoutNullStreams,
    stdoutSink?: PassThrough,
  ) {
    this.stdin = child.stdin;
    this.stderr = child.stderr;
    // EPIPE when ssh is gone: whoever reads stdout or `exited` learns about it.
    child.stdin.on('error', () => undefined);
    this.exited = new Promise((resolve) => {
      const finish = (status: ExitStatus) => {
        if (this.done) return;
        this.done = true;
        if (this.killTimer) clearTimeout(this.killTimer);
        resolve(status);
      };
      // 'close' comes once stdout and stderr are drained, so stderr is complete for explainExit;
      // unread stdout would hold it back, hence the bounded wait after 'exit'.
      child.once('close', (code, signal) => finish({ code, signal }));
      child.once('exit', (code, signal) => void delay(STDERR_DRAIN_MS).then(() => finish({ code, signal })));
      child.once('error', () => finish({ code: null, signal: null }));
    });
    if (stdoutSink) {
      // Watching for the first byte means listening on ssh's stdout, which sets it flowing:
      // the pipe into the sink keeps every byte for the reader, whenever it comes.
      child.stdout.pipe(stdoutSink);
      this.stdout = stdoutSink;
      this.through = new Promise((resolve) => {
        child.stdout.once('data', () => resolve(true));
        void this.exited.then(() => resolve(false));
      });
    } else {
      this.stdout = child.stdout;
      this.through = this.exited.then(() => false);
    }
  }

  kill(): void {
    if (this.done || this.killTimer) return;
    // EOF on stdin: the agent exits, then the session and ssh.
    this.child.stdin.end();
    this.killTimer = setTimeout(() => {
      this.stdout.resume();
      this.stderr.resume();
      this.child.kill('SIGTERM');
      this.killTimer = setTimeout(() => this.child.kill('SIGKILL'), AGENT_KILL_GRACE_MS);
      this.killTimer.unref();
    }, AGENT_KILL_GRACE_MS);
    this.killTimer.unref();
  }
}

/**
 * An agent whose ssh starts only once `gate` settles true (the agent before it is
 * through). If it settles false, that one failed: this one (and so every later one)
 * ends without starting, so the user is not asked the failed question again.
 */
class DeferredAgent implements AgentProcess {
  readonly stdin = bulkPassThrough();
  readonly stdout = bulkPassThrough();
  readonly stderr = new PassThrough();
  readonly exited: Promise<ExitStatus>;
  /** As SshProcessAgent.through, for the next agent in the chain. */
  readonly through: Promise<boolean>;
  private inner: SshProcessAgent | undefined;
  private killed = false;

  constructor(
    readonly label: string,
    gate: Promise<boolean>,
    start: (label: string, stdoutSink: PassThrough) => SshProcessAgent,
  ) {
    const started = gate.then((go) => {
      if (!go || this.killed) {
        this.stdout.end();
        this.stderr.end();
        return undefined;
      }
      const inner = (this.inner = start(label, this.stdout));
      this.stdin.pipe(inner.stdin);
      inner.stderr.pipe(this.stderr);
      return inner;
    });
    this.exited = started.then((inner) => (inner ? inner.exited : { code: null, signal: null }));
    this.through = started.then((inner) => (inner ? inner.through : false));
  }

  kill(): void {
    this.killed = true;
    this.stdin.end();
    this.inner?.kill();
  }
}
