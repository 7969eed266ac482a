/**
 * ProxyCommand against the real test sshd: the connection is carried over the stdio of
 * `ssh -W %h:%p` (OpenSSH's client through the same sshd) and of a Node TCP relay; a
 * push through each is checked byte for byte, and a failing command is a clear
 * CONNECTION_PROXY_FAILED (exit 6), without hanging.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSshTransport } from '../../src/ssh/index.js';
import { expectCleanError, runCli, waitFor } from '../support/cli-child.js';
import { expectSameBytes, writeSeededFile } from '../support/files.js';
import { freePort, startSshd, type TestSshd } from '../support/sshd.js';
import { isolated, makeHome, pdcError } from './helpers.js';

const MiB = 1 << 20;
let sshd: TestSshd;
let relay: string;

/** Pipes its stdio to host:port; writes its pid to argv[4] if given. */
const RELAY = `
const net = require('net');
const [host, port, pidFile] = process.argv.slice(2);
if (pidFile) require('fs').writeFileSync(pidFile, String(process.pid));
const s = net.connect(+port, host);
s.on('error', (e) => { process.stderr.write('relay: ' + e.message + '\\n'); process.exit(3); });
process.stdin.pipe(s);
s.pipe(process.stdout);
s.on('close', () => process.exit(0));
`;

beforeAll(async () => {
  sshd = await startSshd();
  relay = join(sshd.dir, 'relay.cjs');
  writeFileSync(relay, RELAY);
}, 60_000);
afterAll(() => sshd?.stop());

/** A name that does not resolve: a connection to it can only have gone through the proxy. */
const UNREACHABLE = 'only-via-proxy.invalid';

/** An ssh_config reaching the test sshd as `target` (HostName `hostName`) through `proxyCommand`. */
function configWith(home: string, proxyCommand: string, hostName = '127.0.0.1'): string {
  const cfg = join(home, 'config');
  const kh = join(home, 'known_hosts');
  writeFileSync(kh, `${readFileSync(sshd.knownHosts, 'utf8')}[${UNREACHABLE}]:${sshd.port} ${sshd.hostKeyPub}\n`);
  writeFileSync(
    cfg,
    [
      'Host target',
      `  HostName ${hostName}`,
      `  Port ${sshd.port}`,
      `  User ${sshd.user}`,
      `  IdentityFile ${sshd.clientKey}`,
      '  IdentitiesOnly yes',
      `  UserKnownHostsFile ${kh}`,
      `  ProxyCommand ${proxyCommand}`,
      '',
    ].join('\n'),
  );
  return cfg;
}

/** OpenSSH's client as the proxy: a second connection to the same sshd, forwarding with -W. */
function sshW(): string {
  return [
    'ssh -F /dev/null -o BatchMode=yes',
    `-o UserKnownHostsFile=${sshd.knownHosts}`,
    `-i ${sshd.clientKey}`,
    `-p ${sshd.port} -l ${sshd.user}`,
    '-W 127.0.0.1:%p 127.0.0.1',
  ].join(' ');
}

async function pushThrough(proxyCommand: string, name: string): Promise<void> {
  const home = makeHome(sshd);
  const cfg = configWith(home, proxyCommand, UNREACHABLE);
  const src = join(home, `${name}-src`);
  const dst = join(home, `${name}-dst.img`);
  writeSeededFile(src, 6 * MiB + 5, 21);
  const r = await runCli(['-F', cfg, '-v', src, `target:${dst}`], { home, timeoutMs: 60_000 });
  expect(r.code, r.stderr).toBe(0);
  expectSameBytes(dst, src);
  expect(r.stderr).toContain('through ProxyCommand');
}

describe('ProxyCommand', () => {
  it('pushes through `ssh -W` (OpenSSH through the same sshd) byte for byte', async () => {
    await pushThrough(sshW(), 'ssh-w');
  }, 90_000);

  it('pushes through a Node relay (`node relay.cjs HOST %p`) byte for byte', async () => {
    await pushThrough(`${process.execPath} ${relay} 127.0.0.1 %p`, 'relay');
  }, 90_000);

  it('runs the command with its tokens expanded and kills it when the connection closes', async () => {
    const home = makeHome(sshd);
    const pidFile = join(home, 'relay.pid');
    const cfg = configWith(home, `${process.execPath} ${relay} %h %p ${pidFile}`);
    const logs: string[] = [];
    const t = createSshTransport({ host: 'target' }, isolated(home, sshd, { connections: 1, configFile: cfg, log: (m) => logs.push(m) }));
    let pid: number;
    try {
      expect((await t.exec('echo through-relay')).stdout).toBe('through-relay\n');
      pid = +readFileSync(pidFile, 'utf8');
      // `exec`: the shell was replaced by the command, so its pid is the one we started.
      expect(readFileSync(`/proc/${pid}/cmdline`, 'latin1')).toContain('relay.cjs');
    } finally {
      await t.close();
    }
    expect(await waitFor(() => !existsSync(`/proc/${pid}`), 5000)).toBe(true);
    expect(logs.join('\n')).toContain(`through ProxyCommand: ${process.execPath} ${relay} 127.0.0.1 ${sshd.port} ${pidFile}`);
  }, 60_000);

  it('a command that dies once connected: the connection is lost, the log says why, a new one is opened', async () => {
    const home = makeHome(sshd);
    const pidFile = join(home, 'relay.pid');
    const cfg = configWith(home, `${process.execPath} ${relay} %h %p ${pidFile}`);
    const logs: string[] = [];
    const t = createSshTransport({ host: 'target' }, isolated(home, sshd, { connections: 1, configFile: cfg, log: (m) => logs.push(m) }));
    try {
      await t.exec('true');
      process.kill(+readFileSync(pidFile, 'utf8'), 'SIGKILL');
      const lost = await waitFor(() => logs.find((l) => /connection 1: connection to .* lost: ProxyCommand/.test(l)), 10_000);
      expect(lost).toContain('was killed by SIGKILL');
      // The transport replaces the dead connection, through a new run of the command.
      expect((await t.exec('echo again')).stdout).toBe('again\n');
      expect(t.setupTimesMs).toHaveLength(2);
    } finally {
      await t.close();
    }
  }, 30_000);

  it('a command that exits early gives CONNECTION_PROXY_FAILED naming it, its status and its last words', async () => {
    const home = makeHome(sshd);
    const port = await freePort();
    const cfg = configWith(home, `${process.execPath} ${relay} 127.0.0.1 ${port}`);
    const logs: string[] = [];
    const t = createSshTransport({ host: 'target' }, isolated(home, sshd, { connections: 1, configFile: cfg, log: (m) => logs.push(m) }));
    const e = await pdcError(t.exec('true'));
    await t.close();
    // Its stderr goes to the log (-v).
    expect(logs.join('\n')).toMatch(/ssh: ProxyCommand: relay: connect ECONNREFUSED/);
    expect(e.code).toBe('CONNECTION_PROXY_FAILED');
    expect(e.message).toContain(`relay.cjs 127.0.0.1 ${port}`);
    expect(e.message).toContain('exited with status 3');
    expect(e.message).toContain('ECONNREFUSED');
  }, 30_000);

  it('a command that cannot run fails the CLI with exit 6 and one clear error line', async () => {
    const home = makeHome(sshd);
    const cfg = configWith(home, '/nonexistent/proxy-helper %h %p');
    const src = join(home, 'src');
    writeSeededFile(src, 4096, 3);
    const r = await runCli(['-F', cfg, src, `target:${join(home, 'never')}`], { home, timeoutMs: 30_000 });
    const line = expectCleanError(r, 6);
    expect(line).toContain('ProxyCommand for');
    expect(line).toContain('/nonexistent/proxy-helper 127.0.0.1');
    expect(line).toContain('exited with status 127');
    expect(existsSync(join(home, 'never'))).toBe(false);
  }, 40_000);

  it('a jump host reached through its own ProxyCommand carries the connection to the destination', async () => {
    const jump = await startSshd({ logLevel: 'DEBUG1', authorizedKeys: [sshd.clientKeyPub] });
    try {
      const home = makeHome(sshd);
      const kh = join(home, 'kh');
      writeFileSync(kh, readFileSync(sshd.knownHosts, 'utf8') + `[${UNREACHABLE}]:${jump.port} ${jump.hostKeyPub}\n`);
      const cfg = join(home, 'jump-config');
      writeFileSync(
        cfg,
        [
          'Host jump',
          `  HostName ${UNREACHABLE}`,
          `  Port ${jump.port}`,
          `  ProxyCommand ${process.execPath} ${relay} 127.0.0.1 %p`,
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
      const t = createSshTransport({ host: 'inner' }, isolated(home, sshd, { connections: 1, configFile: cfg }));
      try {
        expect((await t.exec('echo inner-via-proxied-jump')).stdout).toBe('inner-via-proxied-jump\n');
      } finally {
        await t.close();
      }
      expect(jump.log()).toMatch(new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${sshd.port}`));
    } finally {
      await jump.stop();
    }
  }, 60_000);

  it('a command that never delivers a connection times out (ConnectTimeout), naming the command', async () => {
    const home = makeHome(sshd);
    const cfg = configWith(home, 'sleep 600');
    const t = createSshTransport(
      { host: 'target' },
      { ...isolated(home, sshd, { connections: 1, configFile: cfg }), connectTimeoutMs: undefined, options: ['ConnectTimeout=1'] },
    );
    const e = await pdcError(t.exec('true'));
    await t.close();
    expect(e.code).toBe('CONNECTION_TIMEOUT');
    expect(e.message).toContain('through ProxyCommand: sleep 600');
    expect(e.hint).toContain('-o ConnectTimeout=SECONDS');
  }, 30_000);

  it('ProxyCommand none connects directly', async () => {
    const home = makeHome(sshd);
    const cfg = configWith(home, 'none');
    const t = createSshTransport({ host: 'target' }, isolated(home, sshd, { connections: 1, configFile: cfg }));
    try {
      expect((await t.exec('echo direct')).stdout).toBe('direct\n');
    } finally {
      await t.close();
    }
  }, 30_000);
});
