import { describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import { type Location, parseLocation } from '../../src/location.js';

const local = (path: string): Location => ({ kind: 'local', path });
const remote = (display: string, host: string, path: string, extra: { user?: string; port?: number } = {}): Location => ({
  kind: 'remote',
  ...(extra.user !== undefined ? { user: extra.user } : {}),
  host,
  ...(extra.port !== undefined ? { port: extra.port } : {}),
  path,
  display,
});

describe('parseLocation', () => {
  const ok: Array<[string, Location]> = [
    // local forms
    ['/var/lib/mysql/x.ibd', local('/var/lib/mysql/x.ibd')],
    ['./a:b', local('./a:b')],
    ['../a:b', local('../a:b')],
    ['file.img', local('file.img')],
    ['dir/a:b', local('dir/a:b')],
    ['/abs/with:colon', local('/abs/with:colon')],
    ['.', local('.')],
    ['[notv6', local('[notv6')],
    // a local `~` reaching us was quoted: a literal name (the file service expands a leading ~)
    ['~/x', local('./~/x')],
    ['~bob/a:b', local('./~bob/a:b')],
    ['~', local('./~')],
    // scp-style remote forms
    ['db1:/var/x.ibd', remote('db1:/var/x.ibd', 'db1', '/var/x.ibd')],
    ['db1:relative/x', remote('db1:relative/x', 'db1', 'relative/x')],
    ['db1:x', remote('db1:x', 'db1', 'x')],
    ['root@db1:/x', remote('root@db1:/x', 'db1', '/x', { user: 'root' })],
    ['a@b@db1:/x', remote('a@b@db1:/x', 'db1', '/x', { user: 'a@b' })],
    ['db1.example.com:/x:y', remote('db1.example.com:/x:y', 'db1.example.com', '/x:y')],
    ['10.0.0.1:/x', remote('10.0.0.1:/x', '10.0.0.1', '/x')],
    ['[::1]:/x', remote('[::1]:/x', '::1', '/x')],
    ['root@[::1]:rel', remote('root@[::1]:rel', '::1', 'rel', { user: 'root' })],
    ['[fe80::1%eth0]:/x', remote('[fe80::1%eth0]:/x', 'fe80::1%eth0', '/x')],
    // ssh:// URIs
    ['ssh://db1/var/x', remote('ssh://db1/var/x', 'db1', '/var/x')],
    // home-relative remote paths, as scp reads them
    ['db1:~/x', remote('db1:~/x', 'db1', '~/x')],
    ['db1:~bob/x', remote('db1:~bob/x', 'db1', '~bob/x')],
    ['ssh://db1/~/x', remote('ssh://db1/~/x', 'db1', '~/x')],
    ['ssh://db1:2222/~bob/x', remote('ssh://db1:2222/~bob/x', 'db1', '~bob/x', { port: 2222 })],
    ['ssh://db1/%7E/x', remote('ssh://db1/%7E/x', 'db1', '~/x')],
    ['ssh://root@db1:2222/var/x', remote('ssh://root@db1:2222/var/x', 'db1', '/var/x', { user: 'root', port: 2222 })],
    ['ssh://[::1]:22/x', remote('ssh://[::1]:22/x', '::1', '/x', { port: 22 })],
    ['ssh://u@[::1]/x', remote('ssh://u@[::1]/x', '::1', '/x', { user: 'u' })],
    ['ssh://db1/a%20b', remote('ssh://db1/a%20b', 'db1', '/a b')],
    ['ssh://db1/a:b', remote('ssh://db1/a:b', 'db1', '/a:b')],
  ];
  it.each(ok)('%s', (arg, expected) => {
    expect(parseLocation(arg)).toEqual(expected);
  });

  const bad: Array<[string, RegExp]> = [
    ['', /empty/],
    ['db1:', /no file after ":"/],
    ['root@db1:', /no file after ":"/],
    ['[::1]:', /no file after ":"/],
    [':x', /no host/],
    ['@db1:/x', /not a valid user/],
    ['-oProxyCommand=x:/y', /not a valid host/],
    ['[nothex]:/x', /not an IPv6 address/],
    ['ssh://db1', /no file after the host/],
    ['ssh://db1/', /no file after the host/],
    ['ssh://db1:0/x', /port "0"/],
    ['ssh://db1:99999/x', /port "99999"/],
    ['ssh://db1:ab/x', /port "ab"/],
    ['ssh:///x', /no host/],
    ['ssh://db1/%zz', /%-escape/],
    ['ssh://[nothex]/x', /not an IPv6 address/],
    ['host name:/x', /not a valid host/],
  ];
  it.each(bad)('rejects %j', (arg, message) => {
    let caught: unknown;
    try {
      parseLocation(arg);
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(PdcError);
    const e = caught as PdcError;
    expect(e.code).toBe('BAD_LOCATION');
    expect(e.message).toMatch(message);
    expect(e.hint).toBeTruthy();
    expect(e.exitCode).toBe(2);
  });

  it('hints at the fix for an empty remote path', () => {
    expect(() => parseLocation('db1:')).toThrow(
      expect.objectContaining({ hint: expect.stringContaining('db1:/abs/path') }),
    );
  });
});
