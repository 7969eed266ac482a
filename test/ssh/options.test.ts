/**
 * `-o Option=value` (SshTransportOptions.options) against the real test sshd: a connection
 * set up from -o alone (no config file), -o ProxyJump overriding the config's `ProxyJump
 * none`, -o ConnectTimeout and -o Ciphers taking effect, and an unsupported option refused.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { createSshTransport } from '../../src/ssh/index.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { isolated, makeHome, pdcError } from './helpers.js';

let sshd: TestSshd;
beforeAll(async () => {
  sshd = await startSshd();
}, 60_000);
afterAll(() => sshd?.stop());

describe('-o options', () => {
  it('connects with -o Port, User, IdentityFile and UserKnownHostsFile and no config file', async () => {
    const home = makeHome(sshd);
    const t = createSshTransport(
      { host: '127.0.0.1' },
      isolated(home, sshd, {
        connections: 1,
        options: [`Port=${sshd.port}`, `User ${sshd.user}`, `identityfile=${sshd.clientKey}`, `UserKnownHostsFile=${sshd.knownHosts}`],
      }),
    );
    try {
      expect(t.target.configFiles).toEqual([]);
      expect(t.description).toBe(`${sshd.user}@127.0.0.1:${sshd.port}`);
      expect((await t.exec('echo from-o')).stdout).toBe('from-o\n');
    } finally {
      await t.close();
    }
  }, 30_000);

  it('-o ProxyJump overrides `ProxyJump none` in the config file', async () => {
    const jump = await startSshd({ logLevel: 'DEBUG1', authorizedKeys: [sshd.clientKeyPub] });
    try {
      const home = makeHome(sshd);
      const kh = join(home, 'known_hosts');
      writeFileSync(kh, readFileSync(sshd.knownHosts, 'utf8') + readFileSync(jump.knownHosts, 'utf8'));
      const cfg = join(home, 'config');
      writeFileSync(
        cfg,
        [
          'Host inner',
          '  HostName 127.0.0.1',
          `  Port ${sshd.port}`,
          '  ProxyJump none',
          'Host *',
          `  User ${sshd.user}`,
          `  IdentityFile ${sshd.clientKey}`,
          `  UserKnownHostsFile ${kh}`,
          '',
        ].join('\n'),
      );
      const t = createSshTransport(
        { host: 'inner' },
        isolated(home, sshd, { connections: 1, configFile: cfg, options: [`ProxyJump=127.0.0.1:${jump.port}`] }),
      );
      try {
        expect((await t.exec('echo jumped')).stdout).toBe('jumped\n');
      } finally {
        await t.close();
      }
      const forwards = jump.log().match(new RegExp(`server_request_direct_tcpip: .*target 127\\.0\\.0\\.1 port ${sshd.port}`, 'g')) ?? [];
      expect(forwards).toHaveLength(1);
    } finally {
      await jump.stop();
    }
  }, 60_000);

  it('-o Ciphers sets the cipher offered', async () => {
    const logs: string[] = [];
    const t = createSshTransport(
      { host: sshd.host, port: sshd.port, user: sshd.user },
      isolated(makeHome(sshd, { knowHost: true }), sshd, {
        connections: 1,
        identityFiles: [sshd.clientKey],
        options: ['Ciphers=aes256-ctr'],
        log: (m) => logs.push(m),
      }),
    );
    try {
      await t.exec('true');
      expect(logs.join('\n')).toMatch(/cipher aes256-ctr\b/);
    } finally {
      await t.close();
    }
  }, 30_000);

  it('-o ConnectTimeout sets the connect timeout, and the hint names the options that raise it', async () => {
    const silent: Server = createServer(() => {});
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    const port = (silent.address() as { port: number }).port;
    try {
      const t = createSshTransport(
        { host: '127.0.0.1', port, user: sshd.user },
        { ...isolated(makeHome(sshd), sshd, { connections: 1, identityFiles: [sshd.clientKey] }), connectTimeoutMs: undefined, options: ['ConnectTimeout=1'] },
      );
      const e = await pdcError(t.exec('true'));
      await t.close();
      expect(e.code).toBe('CONNECTION_TIMEOUT');
      expect(e.message).toContain('timed out after 1 s');
      expect(e.hint).toContain('--connect-timeout SECONDS or -o ConnectTimeout=SECONDS');
    } finally {
      silent.close();
    }
  }, 30_000);

  it('an unsupported option is a USAGE error (exit 2) naming it and the supported ones', () => {
    let err: unknown;
    try {
      createSshTransport({ host: sshd.host }, isolated(makeHome(sshd), sshd, { options: ['ForwardX11=yes'] }));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PdcError);
    const e = err as PdcError;
    expect(e.code).toBe('USAGE');
    expect(e.exitCode).toBe(2);
    expect(e.message).toContain('ForwardX11');
    expect(e.hint).toContain('ProxyCommand');
  });
});
