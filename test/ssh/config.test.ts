import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { parseJumpSpec, resolveHost, type ResolveOptions } from '../../src/ssh/config.js';
import { cipherList, parseSshOptions, SUPPORTED_OPTIONS } from '../../src/ssh/options.js';

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

function catchPdc(f: () => unknown): PdcError {
  try {
    f();
  } catch (e) {
    if (e instanceof PdcError) return e;
    throw e;
  }
  throw new Error('expected a PdcError');
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

  it('ProxyCommand: tokens %h %p %r %n %% expanded, the rest of the line kept as written', () => {
    const opts = setup('Host db1\n  HostName 10.0.0.5\n  Port 2200\n  User app\n  ProxyCommand ssh -W "%h:%p" -l %r jump %n 100%%\n');
    expect(resolveHost('db1', opts).proxyCommand).toBe('ssh -W "10.0.0.5:2200" -l app jump db1 100%');
  });

  it('ProxyCommand with an unknown token is a usage error naming the accepted ones', () => {
    const opts = setup('Host db1\n  ProxyCommand nc %h %q\n');
    const e = catchPdc(() => resolveHost('db1', opts));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('%q');
    expect(e.hint).toContain('%p');
  });

  it('ProxyCommand and ProxyJump: whichever comes first wins, none included', () => {
    const opts = setup(
      [
        'Host cmd-first',
        '  ProxyCommand nc %h %p',
        '  ProxyJump bastion',
        'Host jump-first',
        '  ProxyJump bastion',
        '  ProxyCommand nc %h %p',
        'Host none-first',
        '  ProxyCommand none',
        'Host none-first',
        '  ProxyJump bastion',
        '',
      ].join('\n'),
    );
    const a = resolveHost('cmd-first', opts);
    expect(a.proxyCommand).toBe('nc cmd-first 22');
    expect(a.proxyJump).toEqual([]);
    const b = resolveHost('jump-first', opts);
    expect(b.proxyCommand).toBeUndefined();
    expect(b.proxyJump.map((h) => h.hostName)).toEqual(['bastion']);
    const c = resolveHost('none-first', opts);
    expect(c.proxyCommand).toBeUndefined();
    expect(c.proxyJump).toEqual([]);
  });

  it('the first jump host keeps its own ProxyCommand; the destination behind it does not use one', () => {
    const opts = setup('Host inner\n  ProxyJump bastion\nHost bastion\n  ProxyCommand cloudflared access ssh --hostname %h\n');
    const h = resolveHost('inner', opts);
    expect(h.proxyCommand).toBeUndefined();
    expect(h.proxyJump).toHaveLength(1);
    expect(h.proxyJump[0]!.proxyCommand).toBe('cloudflared access ssh --hostname bastion');
  });

  it('Ciphers: a list, +append, -remove (wildcards), ^prepend, unknown names refused', () => {
    const opts = setup(
      'Host a\n  Ciphers aes256-ctr,aes128-ctr\nHost b\n  Ciphers -aes*-gcm*\nHost c\n  Ciphers ^aes256-ctr\nHost d\n  Ciphers rot13\n',
    );
    expect(cipherList(resolveHost('a', opts).ciphers)).toEqual(['aes256-ctr', 'aes128-ctr']);
    const b = cipherList(resolveHost('b', opts).ciphers);
    expect(b.length).toBeGreaterThan(0);
    expect(b.some((c) => /gcm/.test(c))).toBe(false);
    expect(cipherList(resolveHost('c', opts).ciphers)[0]).toBe('aes256-ctr');
    expect(cipherList(resolveHost('e', opts).ciphers)[0]).toBe('aes128-gcm@openssh.com');
    const e = catchPdc(() => resolveHost('d', opts));
    expect(e.code).toBe('USAGE');
    expect(e.message).toContain('rot13');
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

describe('-o options', () => {
  it('accepts Key=value, "Key value" and Key = value, keys in any case; the first value wins', () => {
    expect(parseSshOptions(['Port=2222', 'user admin', 'HOSTNAME = db.internal', 'port=22'])).toEqual({
      port: '2222',
      user: 'admin',
      hostname: 'db.internal',
    });
  });

  it('IdentityFile accumulates; ProxyCommand keeps its quotes; other values may be quoted', () => {
    expect(parseSshOptions(['IdentityFile=/k1', 'identityfile "/my keys/k2"', 'ProxyCommand=ssh -W "%h:%p" j'])).toEqual({
      identityfile: ['/k1', '/my keys/k2'],
      proxycommand: 'ssh -W "%h:%p" j',
    });
  });

  it('ProxyJump and ProxyCommand share one slot: the first given wins', () => {
    expect(parseSshOptions(['ProxyJump=a', 'ProxyCommand=nc %h %p'])).toEqual({ proxyjump: 'a' });
    expect(parseSshOptions(['ProxyCommand=nc %h %p', 'ProxyJump=a'])).toEqual({ proxycommand: 'nc %h %p' });
  });

  it.each([
    ['Compression=yes', /-o Compression: option not supported/],
    ['Port=ssh', /Port=ssh: not a number/],
    ['ConnectTimeout=soon', /ConnectTimeout=soon: not a number/],
    ['IdentitiesOnly=maybe', /expected yes or no/],
    ['StrictHostKeyChecking=sometimes', /expected yes, no, ask or accept-new/],
    ['Ciphers=rot13', /cipher "rot13" is not supported/],
    ['User', /-o User: missing value/],
    ['=x', /not of the form Option=value/],
  ])('%j is a usage error', (opt, message) => {
    const e = catchPdc(() => parseSshOptions([opt]));
    expect(e.code).toBe('USAGE');
    expect(e.message).toMatch(message);
  });

  it('an unsupported option names the supported list in the hint', () => {
    const e = catchPdc(() => parseSshOptions(['ForwardAgent=yes']));
    expect(e.message).toContain('ForwardAgent');
    for (const o of SUPPORTED_OPTIONS) expect(e.hint).toContain(o);
  });

  it('take precedence over the config file; explicit user@, port and -i over both', () => {
    const opts = setup(
      [
        'Host db1',
        '  HostName 10.0.0.5',
        '  User cfguser',
        '  Port 2200',
        '  IdentityFile ~/.ssh/cfg_key',
        '  ConnectTimeout 7',
        '  ServerAliveInterval 9',
        '  StrictHostKeyChecking yes',
        '  UserKnownHostsFile ~/cfg_known_hosts',
        '  IdentitiesOnly no',
        '  Ciphers aes256-ctr',
        '',
      ].join('\n'),
    );
    const options = [
      'HostName=10.9.9.9',
      'User=ouser',
      'Port=2022',
      'IdentityFile=~/o_key',
      'ConnectTimeout=3',
      'ServerAliveInterval=4',
      'StrictHostKeyChecking=accept-new',
      'UserKnownHostsFile=/tmp/o_known_hosts',
      'IdentitiesOnly=yes',
      'Ciphers=aes128-ctr',
    ];
    const h = resolveHost('db1', { ...opts, options });
    expect(h).toMatchObject({
      hostName: '10.9.9.9',
      user: 'ouser',
      port: 2022,
      identityFiles: [join(opts.homeDir, 'o_key'), join(opts.homeDir, '.ssh/cfg_key')],
      connectTimeoutMs: 3000,
      serverAliveIntervalMs: 4000,
      strictHostKeyChecking: 'accept-new',
      userKnownHostsFiles: ['/tmp/o_known_hosts'],
      identitiesOnly: true,
    });
    expect(cipherList(h.ciphers)).toEqual(['aes128-ctr']);
    const explicit = resolveHost('db1', { ...opts, options, user: 'me2', port: 2300, identityFiles: ['/i_key'] });
    expect(explicit).toMatchObject({ user: 'me2', port: 2300 });
    expect(explicit.identityFiles[0]).toBe('/i_key');
  });

  it('-o User takes part in Match user, and -o ProxyJump overrides the config (none included); hops ignore -o', () => {
    const opts = setup(
      [
        'Match user deploy',
        '  Port 2201',
        'Host db1',
        '  ProxyJump none',
        'Host bastion',
        '  Port 2222',
        '',
      ].join('\n'),
    );
    const h = resolveHost('db1', { ...opts, options: ['User=deploy', 'ProxyJump=bastion'] });
    expect(h.port).toBe(2201);
    expect(h.proxyJump.map((j) => [j.hostName, j.port, j.user])).toEqual([['bastion', 2222, me]]);
    expect(resolveHost('db1', opts).proxyJump).toEqual([]);
    const pc = resolveHost('db1', { ...opts, options: ['ProxyCommand=nc %h %p'] });
    expect(pc.proxyCommand).toBe('nc db1 22');
  });
});
