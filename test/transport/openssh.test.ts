/**
 * The OpenSSH transport (-e/--rsh) against a real OpenSSH sshd on 127.0.0.1, through
 * the system /usr/bin/ssh and the ssh_config the harness writes: the sync conformance
 * suite (push and pull), how ssh's failures are reported, the COMMAND's quoting, the
 * staged start on a terminal, and that nothing is left running.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { syncFile } from '../../src/engine/sync.js';
import { AGENT_MAGIC } from '../../src/protocol/bootstrap.js';
import { createOpenSshTransport, type OpenSshTransport, type OpenSshTransportOptions } from '../../src/transport/openssh.js';
import type { RshDestination } from '../../src/transport/rsh-command.js';
import type { AgentProcess } from '../../src/transport/types.js';
import { defineSyncSuite } from '../e2e/sync-suite.js';
import { pdcError, readBytes, sleep } from '../ssh/helpers.js';
import { expectSameBytes, writeSeededFile } from '../support/files.js';
import { freePort, makeKey, startSshd, type TestSshd } from '../support/sshd.js';

let sshd: TestSshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);
afterAll(() => sshd?.stop());

/** This machine's ssh-agent stays out of the tests: only the harness's key is offered. */
const env = { ...process.env };
delete env.SSH_AUTH_SOCK;

const rsh = () => `ssh -F ${sshd.sshConfig}`;

function transport(over: { rsh?: string; dest?: Partial<RshDestination>; opts?: OpenSshTransportOptions } = {}): OpenSshTransport {
  return createOpenSshTransport(over.rsh ?? rsh(), { host: sshd.alias, ...over.dest }, { interactive: false, env, ...over.opts });
}

function startAgents(t: OpenSshTransport, agents = 4, log?: (line: string) => void): Promise<AgentHost> {
  return AgentHost.start(t, {
    agents,
    machineId: 'openssh:test',
    name: 'test-sshd',
    displayPrefix: 'test-sshd:',
    startTimeoutMs: 30_000,
    idleTimeoutMs: 30_000,
    explainExit: (code, stderr) => t.explainExit(code, stderr),
    ...(log ? { log } : {}),
  });
}

/** ssh_config for the test sshd written into `dir`, with `over` replacing the harness's lines of the same keyword (null: dropping them). */
function configWith(dir: string, name: string, over: Record<string, string | null>): string {
  const lines = readFileSync(sshd.sshConfig, 'utf8')
    .split('\n')
    .filter((l) => !Object.keys(over).some((k) => l.trim().startsWith(k + ' ')));
  const added = Object.entries(over).flatMap(([k, v]) => (v === null ? [] : [`  ${k} ${v}`]));
  const file = join(dir, name);
  writeFileSync(file, [...lines.filter(Boolean), ...added, ''].join('\n'));
  return file;
}

/** A stand-in agent: says the magic, then echoes stdin; exits on EOF. Its title makes it findable with pgrep. */
function echoAgent(title: string): Buffer {
  return Buffer.from(
    `process.title=${JSON.stringify(title)};` +
      `process.stdout.write(Buffer.from(${JSON.stringify(AGENT_MAGIC.toString('latin1'))},'latin1'));` +
      'process.stdin.pipe(process.stdout);',
  );
}

function pgrep(pattern: string): string[] {
  return spawnSync('pgrep', ['-f', pattern], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean);
}

/** The stand-in agent's magic arrives, then `text` comes back. */
async function echoes(agent: AgentProcess, text: string): Promise<void> {
  expect(await readBytes(agent.stdout, AGENT_MAGIC.length)).toEqual(AGENT_MAGIC);
  agent.stdin.write(text);
  expect((await readBytes(agent.stdout, text.length)).toString()).toBe(text);
}

defineSyncSuite('openssh push (remote agents write, -e ssh)', {
  randomRounds: 4,
  open: async () => {
    const source = new LocalHost(2);
    const target = await startAgents(transport());
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

defineSyncSuite('openssh pull (remote agents read, -e ssh)', {
  randomRounds: 4,
  open: async () => {
    const source = await startAgents(transport());
    const target = new LocalHost(2);
    return { source, target, close: async () => void (await Promise.all([source.close(), target.close()])) };
  },
});

describe('the -e COMMAND and the location', () => {
  it('passes quoted words with spaces to ssh intact (-F and -i paths with spaces)', async () => {
    const dir = join(sshd.dir, 'with space');
    mkdirSync(dir, { recursive: true });
    const key = join(dir, 'client key');
    copyFileSync(sshd.clientKey, key);
    chmodSync(key, 0o600);
    // This config names no key, so a mangled -i (or -F) word fails the copy.
    const cfg = configWith(dir, 'ssh config', { IdentityFile: null });
    const t = transport({ rsh: `ssh -F '${cfg}' -i "${key}"` });
    expect(t.argv.slice(0, 5)).toEqual(['ssh', '-F', cfg, '-i', key]);
    const src = join(dir, 'source.bin');
    const dst = join(dir, 'target.bin');
    writeSeededFile(src, 300_000, 7);
    const source = new LocalHost(2);
    const target = await startAgents(t, 2);
    try {
      const summary = await syncFile({
        source: { host: source, path: src },
        target: { host: target, path: dst },
        blockSize: 4096,
        hashMethod: 'xxh64',
        wholeFile: false,
        dryRun: false,
        verify: true,
        concurrency: 2,
        emit: () => {},
      });
      expect(summary.verified).toBe('sha256');
    } finally {
      await Promise.all([source.close(), target.close()]);
    }
    expectSameBytes(dst, src);
  });

  it("passes pdiffcopy's -F, -i and --accept-new-host-key to ssh", async () => {
    const known = join(sshd.dir, 'known_hosts.accept-new');
    writeFileSync(known, '');
    // Names no key and knows no host key: only the options below make the login work.
    const cfg = configWith(sshd.dir, 'ssh_config.flags', { IdentityFile: null, UserKnownHostsFile: known, GlobalKnownHostsFile: '/dev/null' });
    const flags = { configFile: cfg, identityFiles: [sshd.clientKey] };
    const host = await startAgents(transport({ rsh: 'ssh', opts: { ...flags, acceptNewHostKey: true } }), 2);
    try {
      expect((await host.stat(sshd.dir, 'source')).kind).toBe('dir');
    } finally {
      await host.close();
    }
    expect(readFileSync(known, 'utf8')).toContain(sshd.hostKeyPub);
    // Recorded: the next run needs no acceptance.
    const again = await startAgents(transport({ rsh: 'ssh', opts: flags }), 1);
    await again.close();
  });

  it('a ProxyCommand (which the built-in client does not support) works: quoted, with spaces, through ssh', async () => {
    const accepted = () => (sshd.log().match(/Accepted publickey/g) ?? []).length;
    const before = accepted();
    // The sshd is its own jump host: one login for the hop, one for the agent behind it.
    const t = transport({ rsh: `${rsh()} -o "ProxyCommand=ssh -F ${sshd.sshConfig} -W %h:%p ${sshd.alias}"` });
    const host = await startAgents(t, 1);
    try {
      expect((await host.stat(sshd.dir, 'source')).kind).toBe('dir');
    } finally {
      await host.close();
    }
    expect(accepted() - before).toBe(2);
  });

  it('maps the location port to -p, overriding ssh_config: a closed port is CONNECTION_REFUSED (exit 6)', async () => {
    const port = await freePort();
    const t = transport({ dest: { port } });
    expect(t.argv).toEqual(expect.arrayContaining(['-p', String(port)]));
    expect(t.description).toBe(`${sshd.alias}:${port}`);
    const e = await pdcError(startAgents(t, 2));
    expect(e.code).toBe('CONNECTION_REFUSED');
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/Connection refused/);
  });

  it('maps user@ to -l, overriding ssh_config: a user the server refuses is AUTH_FAILED (exit 6)', async () => {
    const t = transport({ dest: { user: 'pdc-no-such-user' } });
    expect(t.argv.slice(t.argv.indexOf('-l'), t.argv.indexOf('-l') + 2)).toEqual(['-l', 'pdc-no-such-user']);
    const e = await pdcError(startAgents(t, 2));
    expect(e.code).toBe('AUTH_FAILED');
    expect(e.exitCode).toBe(6);
    expect(e.message).toMatch(/Permission denied/);
    expect(sshd.log()).toMatch(/Invalid user pdc-no-such-user/);
  });

  it('a name ssh cannot resolve is HOST_UNRESOLVED (exit 6)', async () => {
    // An IPv6 literal under AddressFamily inet fails in getaddrinfo without asking any DNS server.
    const e = await pdcError(startAgents(transport({ rsh: `${rsh()} -o AddressFamily=inet`, dest: { host: '::1' } }), 1));
    expect(e.code).toBe('HOST_UNRESOLVED');
    expect(e.exitCode).toBe(6);
  });

  it('a missing ssh program is RSH_NOT_FOUND naming the package; nothing is started', async () => {
    const e = await pdcError(transport({ rsh: '/nonexistent/bin/ssh -v' }).spawnAgents(2));
    expect(e.code).toBe('RSH_NOT_FOUND');
    expect(e.exitCode).toBe(6);
    expect(e.hint).toMatch(/openssh-client/);
    const onPath = await pdcError(transport({ rsh: 'pdc-no-such-rsh' }).spawnAgents(1));
    expect(onPath.code).toBe('RSH_NOT_FOUND');
    expect(onPath.message).toMatch(/not found on PATH/);
  });

  it('an unbalanced quote is refused before anything runs (RSH_COMMAND_INVALID, exit 2)', () => {
    let err: unknown;
    try {
      transport({ rsh: `ssh -o 'ProxyJump=gw` });
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({ code: 'RSH_COMMAND_INVALID', exitCode: 2 });
  });
});

describe('host keys are the system ssh\'s business (BatchMode without a terminal)', () => {
  it('an unknown host key fails at once with HOST_KEY_UNKNOWN (exit 7)', async () => {
    const cfg = configWith(sshd.dir, 'ssh_config.unknown', { UserKnownHostsFile: '/dev/null', GlobalKnownHostsFile: '/dev/null' });
    const t = transport({ rsh: `ssh -F ${cfg}` });
    expect(t.argv).toEqual(expect.arrayContaining(['-o', 'BatchMode=yes']));
    const e = await pdcError(startAgents(t, 2));
    expect(e.code).toBe('HOST_KEY_UNKNOWN');
    expect(e.exitCode).toBe(7);
    expect(e.message).toMatch(/Host key verification failed/);
  });

  it('a changed host key is HOST_KEY_CHANGED (exit 7)', async () => {
    const other = makeKey(sshd.dir, 'other_host_key');
    const known = join(sshd.dir, 'known_hosts.changed');
    writeFileSync(known, `[${sshd.host}]:${sshd.port} ${other.pub.trim().split(/\s+/).slice(0, 2).join(' ')}\n`);
    const cfg = configWith(sshd.dir, 'ssh_config.changed', { UserKnownHostsFile: known, GlobalKnownHostsFile: '/dev/null' });
    const e = await pdcError(startAgents(transport({ rsh: `ssh -F ${cfg}` }), 2));
    expect(e.code).toBe('HOST_KEY_CHANGED');
    expect(e.exitCode).toBe(7);
  });
});

describe('the remote side', () => {
  it('a missing remote node is REMOTE_NODE_MISSING (the loader\'s exit status, through ssh)', async () => {
    const e = await pdcError(startAgents(transport({ opts: { remoteNode: '/nonexistent/node' } }), 1));
    expect(e.code).toBe('REMOTE_NODE_MISSING');
    expect(e.exitCode).toBe(6);
  });

  const node12 = join(process.cwd(), '.cache/node12/bin/node');
  it.skipIf(!existsSync(node12))('--remote-node reaches the loader: the real agent runs on Node 12', async () => {
    const logs: string[] = [];
    const host = await startAgents(transport({ opts: { remoteNode: node12 } }), 1, (l) => logs.push(l));
    try {
      expect((await host.stat(sshd.dir, 'source')).kind).toBe('dir');
    } finally {
      await host.close();
    }
    expect(logs.join('\n')).toMatch(/first agent up \(node v12\./);
  });

  it('close() ends every ssh and every remote agent', async () => {
    const title = `pdc-openssh-close-${process.pid}`;
    const t = transport({ opts: { agentCode: echoAgent(title) } });
    const agents = await t.spawnAgents(3);
    await Promise.all(agents.map((a, i) => echoes(a, `hello ${i}\n`)));
    expect(pgrep(title)).toHaveLength(3);
    await t.close();
    const statuses = await Promise.all(agents.map((a) => a.exited));
    // The agents exited on EOF, so each ssh ended with their status rather than a signal.
    expect(statuses).toEqual(Array(3).fill({ code: 0, signal: null }));
    let left = pgrep(title);
    for (let i = 0; left.length && i < 100; i++) {
      await sleep(50);
      left = pgrep(title);
    }
    expect(left).toEqual([]);
    await expect(t.spawnAgents(1)).rejects.toMatchObject({ code: 'INTERNAL' });
  });
});

describe('on a terminal (interactive: no BatchMode, the ssh processes start one after another)', () => {
  it('starts each ssh once the one before it is through', async () => {
    // This stand-in reports when its node started and when it sent the magic (one clock: the same machine).
    const code = Buffer.from(
      'var started=Date.now()-process.uptime()*1000,sent=Date.now();' +
        `process.stdout.write(Buffer.from(${JSON.stringify(AGENT_MAGIC.toString('latin1'))},'latin1'));` +
        'process.stdout.write(started+" "+sent+"\\n");process.stdin.resume();',
    );
    const t = transport({ opts: { interactive: true, agentCode: code } });
    expect(t.argv).not.toContain('BatchMode=yes');
    const agents = await t.spawnAgents(3);
    try {
      const times = await Promise.all(
        agents.map(async (a) => {
          expect(await readBytes(a.stdout, AGENT_MAGIC.length)).toEqual(AGENT_MAGIC);
          let line = '';
          while (!line.endsWith('\n')) line += (await readBytes(a.stdout, 1)).toString();
          const [started, sent] = line.trim().split(' ').map(Number);
          return { started: started!, sent: sent! };
        }),
      );
      // Each remote node was started only after the one before it had answered.
      expect(times[1]!.started).toBeGreaterThan(times[0]!.sent);
      expect(times[2]!.started).toBeGreaterThan(times[1]!.sent);
    } finally {
      await t.close();
    }
  });

  it('a push and a pull through the staged agents are byte-identical', async () => {
    const dir = join(sshd.dir, 'staged');
    mkdirSync(dir, { recursive: true });
    const src = join(dir, 'source.bin');
    writeSeededFile(src, 9 * 1024 * 1024 + 5, 11);
    for (const direction of ['push', 'pull'] as const) {
      const dst = join(dir, `${direction}.bin`);
      writeSeededFile(dst, 4 * 1024 * 1024, 12);
      const logs: string[] = [];
      const far = await startAgents(transport({ opts: { interactive: true } }), 3, (l) => logs.push(l));
      const near = new LocalHost(2);
      const [source, target] = direction === 'push' ? [near, far] : [far, near];
      try {
        // All three up first, so that the deferred agents (behind pass-through streams) carry part of the traffic.
        for (let i = 0; i < 50 && !logs.some((l) => /3 of 3 agents up/.test(l)); i++) await sleep(100);
        expect(logs.join('\n')).toMatch(/3 of 3 agents up/);
        await syncFile({
          source: { host: source, path: src },
          target: { host: target, path: dst },
          blockSize: 64 * 1024,
          hashMethod: 'xxh64',
          wholeFile: false,
          dryRun: false,
          verify: true,
          concurrency: 3,
          emit: () => {},
        });
      } finally {
        await Promise.all([far.close(), near.close()]);
      }
      expectSameBytes(dst, src);
    }
  });

  it('when the first ssh fails, the later ones are never started and the first one\'s error is reported', async () => {
    const t = transport({ dest: { port: await freePort() }, opts: { interactive: true } });
    const agents = await t.spawnAgents(3);
    const statuses = await Promise.all(agents.map((a) => a.exited));
    expect(statuses[0]).toEqual({ code: 255, signal: null });
    expect(statuses.slice(1)).toEqual([
      { code: null, signal: null },
      { code: null, signal: null },
    ]);
    const e = await pdcError(startAgents(transport({ dest: { port: await freePort() }, opts: { interactive: true } }), 3));
    expect(e.code).toBe('CONNECTION_REFUSED');
  });

  it('with ControlMaster in the COMMAND, the later agents share the first one\'s connection', async () => {
    const before = (sshd.log().match(/Accepted publickey/g) ?? []).length;
    const control = `-o ControlMaster=auto -o ControlPath=${join(sshd.dir, 'cm-%C')} -o ControlPersist=no`;
    const t = transport({ rsh: `${rsh()} ${control}`, opts: { interactive: true, agentCode: echoAgent(`pdc-openssh-mux-${process.pid}`) } });
    const agents = await t.spawnAgents(3);
    try {
      await Promise.all(agents.map((a, i) => echoes(a, `mux ${i}\n`)));
      expect((sshd.log().match(/Accepted publickey/g) ?? []).length - before).toBe(1);
    } finally {
      await t.close();
    }
  });
});
