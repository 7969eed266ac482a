import { copyFileSync, mkdirSync, mkdtempSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { PdcError } from '../../src/errors/index.js';
import { AgentHost, type AgentHostOptions } from '../../src/hosts/agent-host.js';
import { createSshTransport, exitStatusError, type SshTransport, type SshTransportOptions } from '../../src/ssh/index.js';
import type { TestSshd } from '../support/sshd.js';
import { randomBytes } from 'node:crypto';
import { AGENT_MAGIC } from '../../src/protocol/bootstrap.js';
import type { AgentProcess } from '../../src/transport/types.js';

/** A fresh, empty home directory (so the real ~/.ssh is never read), optionally knowing the sshd's host key. */
export function makeHome(sshd: TestSshd, opts: { knowHost?: boolean } = {}): string {
  const home = mkdtempSync(join(sshd.dir, 'home-'));
  if (opts.knowHost) {
    mkdirSync(join(home, '.ssh'), { mode: 0o700 });
    copyFileSync(sshd.knownHosts, join(home, '.ssh', 'known_hosts'));
  }
  return home;
}

/** Options that isolate a transport from this machine's SSH setup (no agent, no system files, no TTY). */
export function isolated(home: string, sshd: TestSshd, over: SshTransportOptions = {}): SshTransportOptions {
  return {
    homeDir: home,
    systemConfigFile: null,
    systemDir: join(sshd.dir, 'no-etc-ssh'),
    sshAuthSock: '',
    interactive: false,
    connectTimeoutMs: 10_000,
    ...over,
  };
}

/** Transport to the test sshd by address, with its client key and (by default) its host key known. */
export function transportTo(sshd: TestSshd, over: SshTransportOptions = {}, home = makeHome(sshd, { knowHost: true })): SshTransport {
  return createSshTransport(
    { host: sshd.host, port: sshd.port, user: sshd.user },
    isolated(home, sshd, { identityFiles: [sshd.clientKey], ...over }),
  );
}

/** The rejection of `p` as a PdcError (fails the test if it resolves or throws something else). */
export async function pdcError(p: Promise<unknown>): Promise<PdcError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof PdcError) return e;
    throw new Error(`expected a PdcError, got: ${String(e)}`, { cause: e });
  }
  throw new Error('expected a PdcError, but it succeeded');
}

/** Read from a stream until `n` bytes have arrived (or it ends), with a deadline. */
export function readBytes(stream: Readable, n: number, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const done = (err?: Error) => {
      clearTimeout(timer);
      stream.removeListener('data', onData);
      stream.removeListener('end', onEnd);
      stream.pause();
      const all = Buffer.concat(chunks);
      if (all.length > n) stream.unshift(all.subarray(n));
      if (err) reject(err);
      else resolve(all.subarray(0, n));
    };
    const onData = (c: Buffer) => {
      chunks.push(c);
      got += c.length;
      if (got >= n) done();
    };
    const onEnd = () => done();
    const timer = setTimeout(() => done(new Error(`timed out reading ${n} bytes (got ${got})`)), timeoutMs);
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.resume();
  });
}

/** Everything a stream emits until it ends, as text. */
export function readAll(stream: Readable, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`timed out; so far: ${text}`)), timeoutMs);
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => (text += d));
    stream.once('end', () => {
      clearTimeout(timer);
      resolve(text);
    });
    // A stream paused explicitly (readBytes does) does not restart on a new 'data' listener.
    stream.resume();
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Agents on the test sshd (`connections` SSH connections, `agents` agents), as the suites use them. */
export function testAgents(
  sshd: TestSshd,
  o: { connections: number; agents: number; compress?: AgentHostOptions['compress']; connectionThreads?: boolean },
): Promise<AgentHost> {
  return AgentHost.start(transportTo(sshd, { connections: o.connections, ...(o.connectionThreads !== undefined ? { connectionThreads: o.connectionThreads } : {}) }), {
    ...(o.compress ? { compress: o.compress } : {}),
    agents: o.agents,
    machineId: 'ssh:test',
    name: 'test-sshd',
    displayPrefix: 'test-sshd:',
    startTimeoutMs: 30_000,
    idleTimeoutMs: 30_000,
    explainExit: (code, stderr) => exitStatusError(code, stderr, 'test-sshd'),
  });
}

/** Agent code that says the agent's magic, then echoes its input: for moving raw bytes through channels. */
export const ECHO_AGENT = Buffer.from(
  `process.stdout.write(Buffer.from(${JSON.stringify(AGENT_MAGIC.toString('latin1'))},'latin1'));process.stdin.pipe(process.stdout);`,
);

/** Read an echo agent's magic (it must come first and be exact). */
export async function echoStarted(a: AgentProcess): Promise<void> {
  const magic = await readBytes(a.stdout, AGENT_MAGIC.length);
  if (!magic.equals(AGENT_MAGIC)) throw new Error(`the echo agent said ${JSON.stringify(magic.toString('latin1'))}, not its magic`);
}

/** Send `msg` through a started echo agent in 1 MiB writes; resolves with what came back. */
export function echoThrough(a: AgentProcess, msg: Buffer): Promise<Buffer> {
  const back = readBytes(a.stdout, msg.length, 30_000);
  for (let at = 0; at < msg.length; at += 1 << 20) a.stdin.write(msg.subarray(at, at + (1 << 20)));
  return back;
}

/** Start `count` echo agents on `t` and send each `bytes` random bytes: what each was sent, and what came back. */
export async function echoOnAgents(t: SshTransport, count: number, bytes: number): Promise<{ sent: Buffer; back: Buffer }[]> {
  const agents = await t.spawnAgents(count);
  return Promise.all(
    agents.map(async (a) => {
      await echoStarted(a);
      const sent = randomBytes(bytes);
      return { sent, back: await echoThrough(a, sent) };
    }),
  );
}
