/**
 * The SSH transport against a real OpenSSH sshd on 127.0.0.1: connect, exec, agent
 * channels, host keys, authentication, ssh_config, and how failures are reported.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAGIC } from '../../src/protocol/bootstrap.js';
import { createSshTransport, exitStatusError } from '../../src/ssh/index.js';
import { freePort, makeKey, startSshd, type TestSshd } from '../support/sshd.js';
import { ECHO_AGENT, echoStarted, echoThrough, isolated, makeHome, pdcError, readAll, readBytes, sleep, transportTo } from './helpers.js';
import { slabStats } from '../../src/ssh/slab-socket.js';
import { waitFor } from '../support/cli-child.js';

/** A stand-in agent: says the magic, then echoes stdin; exits on EOF. Its title makes it findable with pgrep. */
function echoAgent(title: string): Buffer {
  return Buffer.from(
    `process.title=${JSON.stringify(title)};` +
      `process.stdout.write(Buffer.from(${JSON.stringify(AGENT_MAGIC.toString('latin1'))},'latin1'));` +
      'process.stdin.pipe(process.stdout);',
  );
}

function pgrep(pattern: string): string[] {
  const r = spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean);
}

async function waitGone(pattern: string, ms = 5000): Promise<string[]> {
  const end = Date.now() + ms;
  let left = pgrep(pattern);
  while (left.length && Date.now() < end) {
    await sleep(50);
    left = pgrep(pattern);
  }
  return left;
}

let sshd: TestSshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 30_000);
afterAll(() => sshd?.stop());

describe('connect and exec', () => {
  it('runs a command and reports its output and exit status', async () => {
    const logs: string[] = [];
    const t = transportTo(sshd, { connections: 1, log: (m) => logs.push(m) });
    try {
      const r = await t.exec('echo hello; echo oops >&2; exit 3');
      expect(r).toEqual({ code: 3, signal: null, stdout: 'hello\n', stderr: 'oops\n' });
      expect(t.description).toBe(`${sshd.user}@127.0.0.1:${sshd.port}`);
      expect(t.setupTimesMs).toHaveLength(1);
      expect(t.setupTimesMs[0]).toBeGreaterThan(0);
      expect(logs.join('\n')).toMatch(/connection 1 to .* ready in \d+ ms/);
    } finally {
      await t.close();
    }
  }, 30_000);

  it('connects over IPv6 ([::1]:port in known_hosts)', async () => {
    const v6 = await startSshd({ listen: '::1', authorizedKeys: [sshd.clientKeyPub] });
    try {
      const t = transportTo(v6, { connections: 1 });
      try {
        expect(t.description).toBe(`${v6.user}@[::1]:${v6.port}`);
        expect((await t.exec('echo $SSH_CONNECTION')).stdout).toMatch(new RegExp(`^::1 \\d+ ::1 ${v6.port}\n$`));
      } finally {
        await t.close();
      }
    } finally {
      await v6.stop();
    }
  }, 30_000);

  it('negotiates aes128-gcm@openssh.com', async () => {
    const logs: string[] = [];
    const t = transportTo(sshd, { connections: 1, log: (m) => logs.push(m) });
    try {
      await t.exec('true');
      expect(logs.join('\n')).toMatch(/host key ssh-ed25519, cipher aes128-gcm@openssh\.com/);
    } finally {
      await t.close();
    }
  }, 30_000);
});

describe('agent channels', () => {
  it('starts agents over several connections, speaks through the loader, leaves nothing behind', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const logs: string[] = [];
    const t = transportTo(sshd, { connections: 2, agentCode: echoAgent(title), log: (m) => logs.push(m) });
    try {
      const agents = await t.spawnAgents(4);
      expect(agents).toHaveLength(4);
      // Round-robin: two channels on each of the two connections.
      const conns = agents.map((a) => /conn (\d+)\//.exec(a.label)![1]);
      expect(conns.sort()).toEqual(['1', '1', '2', '2']);
      expect(t.setupTimesMs).toHaveLength(2);
      for (const a of agents) {
        expect((await readBytes(a.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
        const msg = randomBytes(100_000);
        a.stdin.write(msg);
        expect((await readBytes(a.stdout, msg.length)).equals(msg)).toBe(true);
      }
      expect(pgrep(title)).toHaveLength(4);
      // EOF on stdin ends the agent; its channel closes with status 0.
      agents[0]!.stdin.end();
      agents[0]!.stdout.resume();
      expect(await agents[0]!.exited).toEqual({ code: 0, signal: null });
      expect(logs.join('\n')).toMatch(/4 agent channel\(s\)/);
    } finally {
      await t.close();
    }
    expect(await waitGone(title)).toEqual([]);
  }, 30_000);

  it('a lone first agent starts on the first connection up; the next agents spread over every connection', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const t = transportTo(sshd, { connections: 2, agentCode: echoAgent(title) });
    try {
      const [first] = await t.spawnAgents(1);
      expect((await readBytes(first!.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
      const rest = await t.spawnAgents(3);
      expect(t.setupTimesMs).toHaveLength(2);
      const conns = [first!, ...rest].map((a) => /conn (\d+)\//.exec(a.label)![1]);
      expect(conns.sort()).toEqual(['1', '1', '2', '2']);
      for (const a of rest) expect((await readBytes(a.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
      expect(pgrep(title)).toHaveLength(4);
    } finally {
      await t.close();
    }
    expect(await waitGone(title)).toEqual([]);
  }, 30_000);

  it('opens more connections rather than exceed MaxSessions (10 per connection)', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const t = transportTo(sshd, { connections: 1, agentCode: echoAgent(title) });
    try {
      const agents = await t.spawnAgents(12);
      const perConn = new Map<string, number>();
      for (const a of agents) {
        const c = /conn (\d+)\//.exec(a.label)![1]!;
        perConn.set(c, (perConn.get(c) ?? 0) + 1);
      }
      expect(perConn.size).toBe(2);
      for (const n of perConn.values()) expect(n).toBeLessThanOrEqual(10);
      for (const a of agents) expect((await readBytes(a.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
    } finally {
      await t.close();
    }
    expect(await waitGone(title)).toEqual([]);
  }, 30_000);

  it('kill() ends the remote process', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const t = transportTo(sshd, { connections: 1, agentCode: echoAgent(title) });
    try {
      const [a] = await t.spawnAgents(1);
      await readBytes(a!.stdout, AGENT_MAGIC.length);
      expect(pgrep(title)).toHaveLength(1);
      a!.kill();
      a!.stdout.resume();
      const status = await a!.exited;
      expect(status.code).toBe(0);
      expect(await waitGone(title)).toEqual([]);
    } finally {
      await t.close();
    }
  }, 30_000);
});

/**
 * Remote agent processes started through this test's sshd: their command line starts with
 * `title` and their environment names our sshd's port (other pdiffcopy runs on this machine
 * are not ours).
 */
function agentsBehind(port: number, title: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = readFileSync(`/proc/${name}/cmdline`, 'latin1');
      if (!cmdline.startsWith(title)) continue;
      const env = readFileSync(`/proc/${name}/environ`, 'latin1').split('\0');
      const conn = env.find((v) => v.startsWith('SSH_CONNECTION='));
      if (conn && conn.endsWith(` ${port}`)) pids.push(+name);
    } catch {
      /* gone meanwhile */
    }
  }
  return pids;
}

const realAgent = join(process.cwd(), 'dist/agent.cjs');
describe.skipIf(!existsSync(realAgent))('the real agent (dist/agent.cjs)', () => {
  it('starts, says AGENT_MAGIC, exits on stdin EOF, and nothing is left after close()', async () => {
    const t = transportTo(sshd, { connections: 2 });
    let pids: number[] = [];
    try {
      const agents = await t.spawnAgents(3);
      for (const a of agents) {
        const magic = await readBytes(a.stdout, AGENT_MAGIC.length, 20_000);
        expect(magic.equals(AGENT_MAGIC)).toBe(true);
      }
      pids = agentsBehind(sshd.port, 'pdiffcopy-agent');
      expect(pids).toHaveLength(3);
      // EOF on one agent's stdin ends that agent only.
      agents[0]!.stdin.end();
      agents[0]!.stdout.resume();
      agents[0]!.stderr.resume();
      expect((await agents[0]!.exited).code).toBe(0);
      const end = Date.now() + 5000;
      while (agentsBehind(sshd.port, 'pdiffcopy-agent').length > 2 && Date.now() < end) await sleep(50);
      expect(agentsBehind(sshd.port, 'pdiffcopy-agent')).toHaveLength(2);
    } finally {
      await t.close();
    }
    const end = Date.now() + 5000;
    while (agentsBehind(sshd.port, 'pdiffcopy-agent').length && Date.now() < end) await sleep(50);
    expect(agentsBehind(sshd.port, 'pdiffcopy-agent')).toEqual([]);
  }, 60_000);

  const node12 = join(process.cwd(), '.cache/node12/bin/node');
  it.skipIf(!existsSync(node12))('runs on the remote Node 12', async () => {
    const t = transportTo(sshd, { connections: 1, remoteNode: node12 });
    try {
      const [a] = await t.spawnAgents(1);
      const magic = await readBytes(a!.stdout, AGENT_MAGIC.length, 20_000);
      expect(magic.equals(AGENT_MAGIC)).toBe(true);
      const [pid] = agentsBehind(sshd.port, 'pdiffcopy-agent');
      expect(pid).toBeDefined();
      expect(readlinkSync(`/proc/${pid}/exe`)).toBe(node12);
    } finally {
      await t.close();
    }
  }, 60_000);
});

describe('remote node', () => {
  async function earlyExit(remoteNode: string) {
    const t = transportTo(sshd, { connections: 1, remoteNode, agentCode: Buffer.from('process.exit(0)') });
    try {
      const [a] = await t.spawnAgents(1);
      const [stdout, stderr, status] = await Promise.all([readAll(a!.stdout), readAll(a!.stderr), a!.exited]);
      return { stdout, stderr, status, error: exitStatusError(status.code, stderr, t.description) };
    } finally {
      await t.close();
    }
  }

  it('missing node binary gives REMOTE_NODE_MISSING with a --remote-node hint', async () => {
    const r = await earlyExit('/nonexistent/node');
    expect(r.status.code).toBe(127);
    expect(r.error?.code).toBe('REMOTE_NODE_MISSING');
    expect(r.error?.message).toContain(`127.0.0.1:${sshd.port}`);
    expect(r.error?.hint).toContain('--remote-node');
  }, 30_000);

  const node12 = join(process.cwd(), '.cache/node12/bin/node');
  it.skipIf(!existsSync(node12))('too old node gives REMOTE_NODE_TOO_OLD with its message', async () => {
    // A real node that reports version 10, so the real loader's check is what fails.
    const fake = join(sshd.dir, 'fake10.js');
    writeFileSync(fake, "Object.defineProperty(process.versions, 'node', { value: '10.0.0' });\n");
    const wrapper = join(sshd.dir, 'node10');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${node12} --require ${fake} "$@"\n`, { mode: 0o755 });
    const r = await earlyExit(wrapper);
    expect(r.status.code).toBe(97);
    expect(r.error?.code).toBe('REMOTE_NODE_TOO_OLD');
    expect(r.error?.message).toMatch(/too old.*need 12/);
  }, 30_000);

  it.skipIf(!existsSync(node12))('the loader runs an agent on Node 12', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const t = transportTo(sshd, { connections: 1, remoteNode: node12, agentCode: echoAgent(title) });
    try {
      const [a] = await t.spawnAgents(1);
      expect((await readBytes(a!.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
      a!.stdin.write('v12?');
      expect((await readBytes(a!.stdout, 4)).toString()).toBe('v12?');
      const procs = pgrep(title);
      expect(procs).toHaveLength(1);
      // It really is the Node 12 binary running it.
      expect(readlinkSync(`/proc/${procs[0]}/exe`)).toBe(node12);
    } finally {
      await t.close();
    }
    expect(await waitGone(title)).toEqual([]);
  }, 30_000);
});

describe('sudo', () => {
  /** An sshd whose sessions find our fake `sudo` first on PATH (this machine has no real sudo). */
  async function withFakeSudo(script: string, run: (t: ReturnType<typeof transportTo>, title: string, bin: string) => Promise<void>) {
    const bin = mkdtempSync(join(sshd.dir, 'bin-'));
    writeFileSync(join(bin, 'sudo'), script, { mode: 0o755 });
    const s = await startSshd({ authorizedKeys: [sshd.clientKeyPub], setEnv: { PATH: `${bin}:/usr/local/bin:/usr/bin:/bin` } });
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const t = transportTo(s, { connections: 1, sudo: true, agentCode: echoAgent(title) });
    try {
      await run(t, title, bin);
    } finally {
      await t.close();
      await s.stop();
    }
  }

  it('runs the agent through sudo -n', async () => {
    // Records its arguments, then runs the command like a NOPASSWD sudo would.
    const script = '#!/bin/sh\nprintf "%s\\n" "$*" > "$(dirname "$0")/args"\n[ "$1" = -n ] && shift\nexec "$@"\n';
    await withFakeSudo(script, async (t, title, bin) => {
      const [a] = await t.spawnAgents(1);
      expect((await readBytes(a!.stdout, AGENT_MAGIC.length)).equals(AGENT_MAGIC)).toBe(true);
      expect(pgrep(title)).toHaveLength(1);
      // Never prompts: -n, then the node binary.
      expect(readFileSync(join(bin, 'args'), 'utf8')).toMatch(/^-n \/\S*node -e /);
    });
  }, 30_000);

  it('sudo wanting a password gives REMOTE_SUDO_FAILED with a NOPASSWD hint', async () => {
    const script = '#!/bin/sh\necho "sudo: a password is required" >&2\nexit 1\n';
    await withFakeSudo(script, async (t) => {
      const [a] = await t.spawnAgents(1);
      const [, stderr, status] = await Promise.all([readAll(a!.stdout), readAll(a!.stderr), a!.exited]);
      expect(status.code).toBe(1);
      const e = exitStatusError(status.code, stderr, t.description);
      expect(e?.code).toBe('REMOTE_SUDO_FAILED');
      expect(e?.hint).toContain('NOPASSWD');
    });
  }, 30_000);
});

describe('host keys', () => {
  it('refuses an unknown host key with HOST_KEY_UNKNOWN and its fingerprint', async () => {
    const home = makeHome(sshd);
    const t = transportTo(sshd, { connections: 1 }, home);
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('HOST_KEY_UNKNOWN');
    expect(e.exitCode).toBe(7);
    expect(e.message).toContain(`ED25519 key fingerprint is ${sshd.hostKeyFingerprint}`);
    expect(e.message).toContain(`the host key of [127.0.0.1]:${sshd.port} is not known`);
    expect(e.hint).toContain('--accept-new-host-key');
    expect(existsSync(join(home, '.ssh', 'known_hosts'))).toBe(false);
  }, 30_000);

  it('acceptNewHostKey records the key once (like accept-new) and the next connection trusts it', async () => {
    const home = makeHome(sshd);
    const logs: string[] = [];
    const t = transportTo(sshd, { connections: 3, acceptNewHostKey: true, log: (m) => logs.push(m) }, home);
    await t.exec('true');
    await t.close();
    const kh = join(home, '.ssh', 'known_hosts');
    expect(readFileSync(kh, 'utf8')).toBe(`[127.0.0.1]:${sshd.port} ${sshd.hostKeyPub}\n`);
    expect(statSync(join(home, '.ssh')).mode & 0o777).toBe(0o700);
    expect(logs.join('\n')).toContain(`recorded the ED25519 host key ${sshd.hostKeyFingerprint}`);
    // OpenSSH itself finds the entry.
    expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', kh], { encoding: 'utf8' })).toContain(sshd.hostKeyPub);
    const t2 = transportTo(sshd, { connections: 1 }, home);
    try {
      expect((await t2.exec('echo again')).stdout).toBe('again\n');
    } finally {
      await t2.close();
    }
  }, 30_000);

  it('refuses a changed host key with HOST_KEY_CHANGED, even with acceptNewHostKey', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const other = makeKey(home, 'other_host_key');
    const kh = join(home, '.ssh', 'known_hosts');
    const otherPub = other.pub.trim().split(' ').slice(0, 2).join(' ');
    writeFileSync(kh, `# a comment\n[127.0.0.1]:${sshd.port} ${otherPub}\n`);
    const t = transportTo(sshd, { connections: 1, acceptNewHostKey: true }, home);
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('HOST_KEY_CHANGED');
    expect(e.message).toContain('CHANGED');
    expect(e.message).toContain(sshd.hostKeyFingerprint);
    expect(e.message).toContain(`${kh}:2`);
    expect(e.hint).toContain(`ssh-keygen -R '[127.0.0.1]:${sshd.port}'`);
    // Nothing was added.
    expect(readFileSync(kh, 'utf8')).toBe(`# a comment\n[127.0.0.1]:${sshd.port} ${otherPub}\n`);
  }, 30_000);

  it('accepts hashed known_hosts entries (hashed by ssh-keygen -H)', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const kh = join(home, '.ssh', 'known_hosts');
    execFileSync('ssh-keygen', ['-H', '-f', kh], { stdio: 'ignore' });
    expect(readFileSync(kh, 'utf8')).toMatch(/^\|1\|/);
    const t = transportTo(sshd, { connections: 1 }, home);
    try {
      expect((await t.exec('echo hashed')).stdout).toBe('hashed\n');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('records hashed entries when HashKnownHosts is yes, and OpenSSH can find them', async () => {
    const home = makeHome(sshd);
    const cfg = join(home, 'config');
    writeFileSync(cfg, 'Host *\n  HashKnownHosts yes\n');
    const t = transportTo(sshd, { connections: 1, acceptNewHostKey: true, configFile: cfg }, home);
    await t.exec('true');
    await t.close();
    const kh = join(home, '.ssh', 'known_hosts');
    const text = readFileSync(kh, 'utf8');
    expect(text).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
    expect(text).not.toContain('127.0.0.1');
    expect(execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', kh], { encoding: 'utf8' })).toContain('ssh-ed25519');
  }, 30_000);
});

describe('authentication', () => {
  it('fails fast with AUTH_FAILED listing what was tried, without a TTY', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const wrong = makeKey(home, 'wrong_key');
    const t0 = Date.now();
    const t = transportTo(sshd, { connections: 1, identityFiles: [wrong.key, join(home, 'missing_key')] }, home);
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.code).toBe('AUTH_FAILED');
    expect(e.exitCode).toBe(6);
    expect(e.message).toContain(`authentication to ${sshd.user}@127.0.0.1:${sshd.port} failed`);
    expect(e.message).toContain(`key ${wrong.key} (refused)`);
    expect(e.message).toContain(`key ${join(home, 'missing_key')} (no such file)`);
    expect(e.message).toMatch(/server accepts: publickey/);
    expect(e.hint).toContain('-i');
  }, 30_000);

  it('skips an encrypted key without a TTY and says so', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const enc = makeKey(home, 'enc_key', { passphrase: 'secret words' });
    const t = transportTo(sshd, { connections: 1, identityFiles: [enc.key] }, home);
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('AUTH_FAILED');
    expect(e.message).toContain(`key ${enc.key} (encrypted, and no terminal to ask its passphrase)`);
  }, 30_000);

  it('uses the default key ~/.ssh/id_ed25519 when no -i or IdentityFile is given', async () => {
    const home = makeHome(sshd, { knowHost: true });
    writeFileSync(join(home, '.ssh', 'id_ed25519'), readFileSync(sshd.clientKey), { mode: 0o600 });
    const t = createSshTransport({ host: sshd.host, port: sshd.port, user: sshd.user }, isolated(home, sshd, { connections: 1 }));
    try {
      expect((await t.exec('echo default-key')).stdout).toBe('default-key\n');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('-i takes a key from anywhere, and the default keys are then not used', async () => {
    const home = makeHome(sshd, { knowHost: true });
    // A wrong default key must not matter when -i names the right one.
    makeKey(join(home, '.ssh'), 'id_ed25519');
    const t = transportTo(sshd, { connections: 1, identityFiles: [sshd.clientKey] }, home);
    try {
      expect((await t.exec('echo with-i')).stdout).toBe('with-i\n');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('uses keys from ssh-agent (SSH_AUTH_SOCK)', async () => {
    const home = makeHome(sshd, { knowHost: true });
    const sock = join(home, 'agent.sock');
    const agentOut = execFileSync('ssh-agent', ['-s', '-a', sock], { encoding: 'utf8' });
    const pid = /SSH_AGENT_PID=(\d+)/.exec(agentOut)![1]!;
    try {
      execFileSync('ssh-add', [sshd.clientKey], { env: { ...process.env, SSH_AUTH_SOCK: sock }, stdio: 'ignore' });
      const logs: string[] = [];
      const t = createSshTransport(
        { host: sshd.host, port: sshd.port, user: sshd.user },
        isolated(home, sshd, { connections: 1, sshAuthSock: sock, log: (m) => logs.push(m) }),
      );
      try {
        expect((await t.exec('echo via-agent')).stdout).toBe('via-agent\n');
        expect(logs.join('\n')).toMatch(/trying agent/);
      } finally {
        await t.close();
      }
    } finally {
      process.kill(+pid);
    }
  }, 30_000);
});

describe('ssh_config', () => {
  it('resolves an alias: HostName, Port, User, IdentityFile, UserKnownHostsFile', async () => {
    const home = makeHome(sshd);
    const t = createSshTransport({ host: sshd.alias }, isolated(home, sshd, { connections: 1, configFile: sshd.sshConfig }));
    try {
      expect(t.description).toBe(`${sshd.user}@${sshd.alias} (127.0.0.1:${sshd.port})`);
      expect((await t.exec('echo alias')).stdout).toBe('alias\n');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('reaches a host through ProxyJump (a second sshd)', async () => {
    // DEBUG1 makes the jump sshd log the forwarding it does for us.
    const jump = await startSshd({ logLevel: 'DEBUG1', authorizedKeys: [sshd.clientKeyPub] });
    try {
      const home = makeHome(sshd);
      const kh = join(home, 'known_hosts');
      writeFileSync(kh, readFileSync(sshd.knownHosts, 'utf8') + readFileSync(jump.knownHosts, 'utf8'));
      const cfg = join(home, 'config');
      writeFileSync(
        cfg,
        [
          'Host jump',
          '  HostName 127.0.0.1',
          `  Port ${jump.port}`,
          'Host inner',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          '  ProxyJump jump',
          'Host *',
          `  User ${sshd.user}`,
          `  IdentityFile ${sshd.clientKey}`,
          `  UserKnownHostsFile ${kh}`,
          '',
        ].join('\n'),
      );
      const logs: string[] = [];
      const t = createSshTransport(
        { host: 'inner' },
        isolated(home, sshd, { connections: 2, configFile: cfg, agentCode: ECHO_AGENT, log: (m) => logs.push(m) }),
      );
      try {
        expect((await t.exec('echo inside')).stdout).toBe('inside\n');
        // Both connections went through the jump host (the second, in its own thread, once the first is up).
        await waitFor(() => t.setupTimesMs.length === 2, 10_000);
        const forwards = jump.log().match(new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${sshd.port}`, 'g')) ?? [];
        expect(forwards).toHaveLength(2);
        expect(logs.join('\n')).toContain(`via ${sshd.user}@jump (127.0.0.1:${jump.port})`);
        // Data through the jump host's socket: the next hop's stream, kept in fresh slabs (never refilled).
        const before = slabStats().reused;
        const [agent] = await t.spawnAgents(1);
        await echoStarted(agent!);
        const msg = randomBytes(8 << 20);
        expect((await echoThrough(agent!, msg)).equals(msg)).toBe(true);
        expect(slabStats().reused).toBe(before);
      } finally {
        await t.close();
      }
    } finally {
      await jump.stop();
    }
  }, 60_000);

  it('reports a refused connection behind a jump host', async () => {
    const port = await freePort();
    const home = makeHome(sshd);
    const cfg = join(home, 'config');
    writeFileSync(
      cfg,
      [
        'Host inner',
        '  HostName 127.0.0.1',
        `  Port ${port}`,
        `  ProxyJump ${sshd.user}@127.0.0.1:${sshd.port}`,
        'Host *',
        `  IdentityFile ${sshd.clientKey}`,
        `  UserKnownHostsFile ${sshd.knownHosts}`,
        '',
      ].join('\n'),
    );
    const t = createSshTransport({ host: 'inner' }, isolated(home, sshd, { connections: 1, configFile: cfg }));
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('CONNECTION_REFUSED');
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.message).toContain('jump host');
  }, 30_000);
});

describe('connection failures', () => {
  it('a closed port gives CONNECTION_REFUSED', async () => {
    const port = await freePort();
    const t = transportTo(sshd, { port, connections: 1 });
    const t0 = Date.now();
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(e.code).toBe('CONNECTION_REFUSED');
    expect(e.message).toContain(`127.0.0.1:${port}`);
    expect(e.hint).toMatch(/port/);
  }, 30_000);

  it('an unresolvable name gives HOST_UNRESOLVED', async () => {
    const home = makeHome(sshd);
    const t = createSshTransport({ host: 'no-such-host.invalid', user: 'x' }, isolated(home, sshd, { connections: 1 }));
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('HOST_UNRESOLVED');
    expect(e.message).toContain('no-such-host.invalid');
  }, 30_000);

  it('a server that never speaks gives CONNECTION_TIMEOUT after ConnectTimeout', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const t = transportTo(sshd, { port, connections: 1, connectTimeoutMs: 700 });
      const t0 = Date.now();
      const e = await pdcError(t.exec('true'));
      await t.close();
      expect(Date.now() - t0).toBeGreaterThanOrEqual(600);
      expect(Date.now() - t0).toBeLessThan(5000);
      expect(e.code).toBe('CONNECTION_TIMEOUT');
      expect(e.message).toContain(`127.0.0.1:${port}`);
    } finally {
      silent.close();
    }
  }, 30_000);

  it('close() abandons a connection attempt in progress', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const t = transportTo(sshd, { port, connections: 2, connectTimeoutMs: 20_000 });
      const spawning = pdcError(t.spawnAgents(2));
      await sleep(200);
      const t0 = Date.now();
      await t.close();
      expect(Date.now() - t0).toBeLessThan(3000);
      const e = await spawning;
      expect(e.code).toBe('INTERRUPTED');
    } finally {
      silent.close();
    }
  }, 30_000);

  it('a server that hangs up gives CONNECTION_LOST', async () => {
    const rude: Server = createServer((s) => s.destroy());
    await new Promise<void>((r) => rude.listen(0, '127.0.0.1', r));
    const port = (rude.address() as { port: number }).port;
    try {
      const t = transportTo(sshd, { port, connections: 1 });
      const e = await pdcError(t.exec('true'));
      await t.close();
      expect(e.code).toBe('CONNECTION_LOST');
      expect(e.message).toContain(`127.0.0.1:${port}`);
    } finally {
      rude.close();
    }
  }, 30_000);
});

describe('connection threads', () => {
  it('connections after the first run in threads of their own, carry data both ways intact, and stay on the main thread when turned off', async () => {
    for (const threads of [true, false]) {
      const logs: string[] = [];
      const t = transportTo(sshd, { connections: 2, connectionThreads: threads, agentCode: ECHO_AGENT, log: (m) => logs.push(m) });
      try {
        const agents = await t.spawnAgents(4);
        expect(agents.map((a) => /conn (\d+)\//.exec(a.label)![1]).sort()).toEqual(['1', '1', '2', '2']);
        await Promise.all(
          agents.map(async (a) => {
            await echoStarted(a);
            // More than the thread's write window and its receive batches, in both directions at once.
            const msg = randomBytes(24 << 20);
            expect((await echoThrough(a, msg)).equals(msg)).toBe(true);
          }),
        );
        const text = logs.join('\n');
        expect(text).toMatch(/connection 1 to .* on the main thread/);
        expect(text).toMatch(threads ? /connection 2 to .* on its own thread/ : /connection 2 to .* on the main thread/);
        // EOF through the thread ends the agent with status 0.
        const last = agents.find((a) => /conn 2\//.test(a.label))!;
        last.stdin.end();
        last.stdout.resume();
        expect(await last.exited).toEqual({ code: 0, signal: null });
      } finally {
        await t.close();
      }
    }
  }, 60_000);

  it('a killed server session behind a connection thread ends its agent and is logged as lost', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const logs: string[] = [];
    const lostSshd = await startSshd({ authorizedKeys: [sshd.clientKeyPub] });
    try {
      const t = transportTo(lostSshd, { connections: 2, connectionThreads: true, agentCode: echoAgent(title), log: (m) => logs.push(m) });
      try {
        const agents = await t.spawnAgents(2);
        const threaded = agents.find((a) => /conn 2\//.test(a.label))!;
        await readBytes(threaded.stdout, AGENT_MAGIC.length);
        threaded.stdout.resume();
        expect(logs.join('\n')).toMatch(/connection 2 to .* on its own thread/);
        const before = new Set(lostSshd.sessionPids());
        for (const pid of before) process.kill(pid, 'SIGKILL');
        const status = await threaded.exited;
        expect(status.code).toBeNull();
        await waitFor(() => /connection 2: .*(closed|lost)/.test(logs.join('\n')), 10_000);
        expect(logs.join('\n')).toMatch(/connection 2: .*(closed|lost)/);
      } finally {
        await t.close();
      }
      expect(await waitGone(title)).toEqual([]);
    } finally {
      await lostSshd.stop();
    }
  }, 30_000);
});

describe('losing the connection', () => {
  it('a killed server session ends the agents (exited settles) and is logged as CONNECTION_LOST', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const logs: string[] = [];
    const lostSshd = await startSshd({ authorizedKeys: [sshd.clientKeyPub] });
    try {
      const t = transportTo(lostSshd, { connections: 1, agentCode: echoAgent(title), log: (m) => logs.push(m) });
      try {
        const [a] = await t.spawnAgents(1);
        await readBytes(a!.stdout, AGENT_MAGIC.length);
        a!.stdout.resume();
        for (const pid of lostSshd.sessionPids()) process.kill(pid, 'SIGKILL');
        const status = await a!.exited;
        expect(status.code).toBeNull();
        expect(logs.join('\n')).toMatch(/CONNECTION_LOST|connection to .* (closed|lost)/);
      } finally {
        await t.close();
      }
      expect(await waitGone(title)).toEqual([]);
    } finally {
      await lostSshd.stop();
    }
  }, 30_000);

  it('keepalives notice a server that stopped answering', async () => {
    const title = `pdc-standin-${randomBytes(6).toString('hex')}`;
    const logs: string[] = [];
    const frozen = await startSshd({ authorizedKeys: [sshd.clientKeyPub] });
    let stopped: number[] = [];
    try {
      const t = transportTo(frozen, { connections: 1, keepaliveIntervalMs: 200, agentCode: echoAgent(title), log: (m) => logs.push(m) });
      try {
        const [a] = await t.spawnAgents(1);
        await readBytes(a!.stdout, AGENT_MAGIC.length);
        a!.stdout.resume();
        stopped = frozen.sessionPids();
        for (const pid of stopped) process.kill(pid, 'SIGSTOP');
        const t0 = Date.now();
        await a!.exited;
        // 3 unanswered keepalives at 200 ms.
        expect(Date.now() - t0).toBeGreaterThanOrEqual(400);
        expect(Date.now() - t0).toBeLessThan(5000);
        expect(logs.join('\n')).toMatch(/lost: Keepalive timeout/);
      } finally {
        for (const pid of stopped) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {}
        }
        await t.close();
      }
      expect(await waitGone(title)).toEqual([]);
    } finally {
      await frozen.stop();
    }
  }, 30_000);
});
