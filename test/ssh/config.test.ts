import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { parseJumpSpec, resolveHost, type ResolveOptions } from '../../src/ssh/config.js';

const root = mkdtempSync(join(tmpdir(), 'pdc-cfg-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const me = userInfo().username;

/** A home with ~/.ssh/config = `text` (and extra files), resolved without the system config. */
function setup(text: string, files: Record<string, string> = {}): ResolveOptions {
  const home = mkdtempSync(join(root, 'home-'));
  mkdirSync(join(home, '.ssh'));
  writeFileSync(join(home, '.ssh', 'config'), text);
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(join(home, name, '..'), { recursive: true });
    writeFileSync(join(home, name), content);
  }
  return { homeDir: home, systemConfigFile: null, systemDir: join(home, 'etc') };
}

describe('resolveHost', () => {
  it('uses defaults with no config', () => {
    const opts = setup('');
    const h = resolveHost('db1', opts);
    expect(h).toMatchObject({
      alias: 'db1',
      hostName: 'db1',
      user: me,
      port: 22,
      identityFiles: [],
      identitiesOnly: false,
      proxyJump: [],
      userKnownHostsFiles: [join(opts.homeDir, '.ssh/known_hosts'), join(opts.homeDir, '.ssh/known_hosts2')],
      strictHostKeyChecking: 'ask',
      batchMode: false,
    });
    expect(h.connectTimeoutMs).toBeUndefined();
  });

  it('applies Host blocks, first value wins, IdentityFile accumulates, tokens expand', () => {
    const opts = setup(
      [
        'Host db1',
        '  HostName %h.example.com',
        '  User admin',
        '  Port 2222',
        '  IdentityFile ~/.ssh/db_%r@%h',
        '  IdentitiesOnly yes',
        '  ConnectTimeout 7',
        '  ServerAliveInterval 5',
        '  ServerAliveCountMax 2',
        '  UserKnownHostsFile %d/kh1 ~/kh2',
        '  StrictHostKeyChecking accept-new',
        '  HostKeyAlias dbkey',
        'Host db*',
        '  User ignored',
        '  IdentityFile /keys/%u-%%-%n-%p',
        'Host *',
        '  Port 1',
      ].join('\n'),
    );
    const h = resolveHost('db1', opts);
    const home = opts.homeDir;
    expect(h.hostName).toBe('db1.example.com');
    expect(h.user).toBe('admin');
    expect(h.port).toBe(2222);
    expect(h.identityFiles).toEqual([join(home, '.ssh/db_admin@db1.example.com'), `/keys/${me}-%-db1-2222`]);
    expect(h.identitiesOnly).toBe(true);
    expect(h.connectTimeoutMs).toBe(7000);
    expect(h.serverAliveIntervalMs).toBe(5000);
    expect(h.serverAliveCountMax).toBe(2);
    expect(h.userKnownHostsFiles).toEqual([join(home, 'kh1'), join(home, 'kh2')]);
    expect(h.strictHostKeyChecking).toBe('accept-new');
    expect(h.hostKeyAlias).toBe('dbkey');
  });

  it('lets the command line win: user@, port, -i first', () => {
    const opts = setup('Host db1\n  User admin\n  Port 2222\n  IdentityFile /cfg/key\n');
    const h = resolveHost('db1', { ...opts, user: 'root', port: 22, identityFiles: ['/cli/key'] });
    expect(h.user).toBe('root');
    expect(h.port).toBe(22);
    expect(h.identityFiles).toEqual(['/cli/key', '/cfg/key']);
  });

  it('uses -F FILE alone', () => {
    const opts = setup('Host db1\n  User fromhome\n');
    const f = join(opts.homeDir, 'other_config');
    writeFileSync(f, 'Host db1\n  User fromfile\n');
    expect(resolveHost('db1', { ...opts, configFile: f }).user).toBe('fromfile');
    expect(() => resolveHost('db1', { ...opts, configFile: join(opts.homeDir, 'missing') })).toThrow(/cannot read ssh config/);
  });

  it('follows Include (relative to ~/.ssh, with a wildcard)', () => {
    const opts = setup('Include config.d/*.conf\nHost *\n  User fallback\n', {
      '.ssh/config.d/10-db.conf': 'Host db1\n  HostName 10.0.0.1\n  User fromdotd\n',
      '.ssh/config.d/ignored.txt': 'Host db1\n  User never\n',
    });
    const h = resolveHost('db1', opts);
    expect(h.hostName).toBe('10.0.0.1');
    expect(h.user).toBe('fromdotd');
    expect(resolveHost('other', opts).user).toBe('fallback');
  });

  it('never runs Match exec', () => {
    const marker = join(root, 'match-exec-ran');
    const opts = setup(`Match exec "touch ${marker}"\n  User fromexec\n`);
    expect(resolveHost('db1', opts).user).toBe(me);
    expect(existsSync(marker)).toBe(false);
  });

  it('supports Match host and originalhost', () => {
    const opts = setup('Host short\n  HostName long.example.com\nMatch originalhost short\n  User viaoriginal\n');
    expect(resolveHost('short', opts).user).toBe('viaoriginal');
  });

  it('resolves ProxyJump hops through the config, recursing into the first hop only', () => {
    const opts = setup(
      [
        'Host target',
        '  ProxyJump bastion,admin@inner:2200',
        'Host bastion',
        '  HostName bastion.example.com',
        '  User jumper',
        '  ProxyJump outer',
        'Host inner',
        '  HostName 10.1.1.1',
        '  ProxyJump shouldnotbeused',
        'Host outer',
        '  Port 2022',
      ].join('\n'),
    );
    const h = resolveHost('target', opts);
    expect(h.proxyJump.map((j) => [j.alias, j.hostName, j.user, j.port])).toEqual([
      ['outer', 'outer', me, 2022],
      ['bastion', 'bastion.example.com', 'jumper', 22],
      ['inner', '10.1.1.1', 'admin', 2200],
    ]);
    expect(h.proxyJump.every((j) => j.proxyJump.length === 0)).toBe(true);
    expect(resolveHost('bastion', opts).proxyJump.map((j) => j.alias)).toEqual(['outer']);
  });

  it('detects a ProxyJump loop', () => {
    const opts = setup('Host a\n  ProxyJump b\nHost b\n  ProxyJump a\n');
    expect(() => resolveHost('a', opts)).toThrow(/nests too deep/);
  });

  it('ProxyJump none disables a jump set by a wider block', () => {
    const opts = setup('Host direct\n  ProxyJump none\nHost *\n  ProxyJump bastion\n');
    expect(resolveHost('direct', opts).proxyJump).toEqual([]);
  });

  it('refuses ProxyCommand with a pointer to ProxyJump', () => {
    const opts = setup('Host db1\n  ProxyCommand ssh -W %h:%p bastion\n');
    let err: unknown;
    try {
      resolveHost('db1', opts);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PdcError);
    expect((err as PdcError).message).toContain('ProxyCommand');
    expect((err as PdcError).hint).toContain('ProxyJump');
  });

  it('IdentityAgent none disables the agent; a path overrides SSH_AUTH_SOCK', () => {
    const opts = setup('Host a\n  IdentityAgent none\nHost b\n  IdentityAgent ~/agent.sock\n');
    expect(resolveHost('a', { ...opts, sshAuthSock: '/tmp/sock' }).agentSocket).toBeUndefined();
    expect(resolveHost('b', { ...opts, sshAuthSock: '/tmp/sock' }).agentSocket).toBe(join(opts.homeDir, 'agent.sock'));
    expect(resolveHost('c', { ...opts, sshAuthSock: '/tmp/sock' }).agentSocket).toBe('/tmp/sock');
  });

  it('reports a non-numeric ConnectTimeout', () => {
    const opts = setup('Host db1\n  ConnectTimeout soon\n');
    expect(() => resolveHost('db1', opts)).toThrow(/ConnectTimeout "soon"/);
  });
});

describe('parseJumpSpec', () => {
  const ok: Array<[string, object]> = [
    ['bastion', { host: 'bastion' }],
    ['admin@bastion', { user: 'admin', host: 'bastion' }],
    ['admin@bastion:2222', { user: 'admin', host: 'bastion', port: 2222 }],
    ['[::1]:2222', { host: '::1', port: 2222 }],
    ['ssh://admin@bastion:2222', { user: 'admin', host: 'bastion', port: 2222 }],
  ];
  it.each(ok)('%s', (spec, expected) => expect(parseJumpSpec(spec)).toEqual(expected));
  it.each(['', 'a:b', 'h:70000'])('rejects %j', (spec) => expect(() => parseJumpSpec(spec)).toThrow(PdcError));
});
