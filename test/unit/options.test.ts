import { describe, expect, it } from 'vitest';
import { PdcError } from '../../src/errors/index.js';
import {
  DEFAULT_BLOCK_SIZE,
  DEFAULT_CONCURRENCY,
  DEFAULT_IDLE_TIMEOUT_S,
  MAX_CONCURRENCY,
  type RawFlags,
  type RunConfig,
  resolveConfig,
} from '../../src/cli/options.js';
import { DEFAULT_HASH_METHOD } from '../../src/hash/methods.js';
import { MAX_BLOCK_SIZE } from '../../src/protocol/limits.js';
import { DEFAULT_REFINE_LEVELS } from '../../src/engine/refine-plan.js';

const ARGS = ['/tmp/src.img', '/tmp/dst.img'];

/** Run resolveConfig and return the PdcError code it throws (fails the test if it does not throw one). */
function codeOf(args: string[], flags: RawFlags): string {
  try {
    resolveConfig(args, flags);
  } catch (e) {
    expect(e).toBeInstanceOf(PdcError);
    return (e as PdcError).code;
  }
  throw new Error('resolveConfig did not throw');
}

/** cac hands flags over as `any`: let tests pass what it really produces (numbers, arrays). */
const raw = (f: Record<string, unknown>): RawFlags => f as RawFlags;

describe('resolveConfig defaults', () => {
  it('fills every default for two local paths and no flags', () => {
    const c = resolveConfig(ARGS, {});
    expect(c).toEqual({
      sources: [{ kind: 'local', path: '/tmp/src.img' }],
      source: { kind: 'local', path: '/tmp/src.img' },
      target: { kind: 'local', path: '/tmp/dst.img' },
      recursive: false,
      meta: { perms: false, times: false, owner: false, group: false },
      checksum: false,
      delete: false,
      blockSize: DEFAULT_BLOCK_SIZE,
      hashMethod: DEFAULT_HASH_METHOD,
      wholeFile: false,
      dryRun: false,
      verify: false,
      atomic: false,
      forceDevice: false,
      sparse: false,
      refineLevels: [...DEFAULT_REFINE_LEVELS],
      concurrency: DEFAULT_CONCURRENCY,
      fitAgentsToCores: true,
      verbosity: 0,
      json: false,
      progress: 'auto',
      jsonProgress: false,
      idleTimeoutMs: DEFAULT_IDLE_TIMEOUT_S * 1000,
      ssh: {
        port: undefined,
        identityFiles: [],
        configFile: undefined,
        acceptNewHostKey: false,
        remoteNode: undefined,
        sudo: false,
        connections: undefined,
        connectionThreads: 'auto',
        options: [],
        connectTimeoutMs: undefined,
      },
      rsh: undefined,
      benchmark: undefined,
      yes: false,
    });
  });

  it('passes booleans and ssh flags through', () => {
    const c = resolveConfig(['host:/x', './y'], {
      wholeFile: true,
      dryRun: true,
      verify: true,
      json: true,
      progress: false,
      port: '2222',
      identity: ['k1', 'k2'],
      sshConfig: '/etc/cfg',
      acceptNewHostKey: true,
      remoteNode: '/opt/node',
      sudo: true,
      connections: 3,
      connectionThreads: ' Always ',
      timeout: '5',
      hashMethod: ' SHA256 ',
      yes: true,
    });
    expect(c.source).toMatchObject({ kind: 'remote', host: 'host', path: '/x' });
    expect(c).toMatchObject({ wholeFile: true, dryRun: true, verify: true, json: true, progress: 'off', yes: true });
    expect(c.hashMethod).toBe('sha256');
    expect(c.idleTimeoutMs).toBe(5000);
    expect(c.ssh).toEqual({
      port: 2222,
      identityFiles: ['k1', 'k2'],
      configFile: '/etc/cfg',
      acceptNewHostKey: true,
      remoteNode: '/opt/node',
      sudo: true,
      connections: 3,
      connectionThreads: 'always',
      options: [],
      connectTimeoutMs: undefined,
    });
    expect(resolveConfig(ARGS, { identity: 'one' }).ssh.identityFiles).toEqual(['one']);
  });
});

describe('block size', () => {
  it.each<[string | number, number]>([
    ['5K', 5120],
    ['1', 1],
    [4096, 4096], // cac turns numeric strings into numbers
    ['4096', 4096],
    ['64MiB', MAX_BLOCK_SIZE],
    ['64M', MAX_BLOCK_SIZE],
    [MAX_BLOCK_SIZE, MAX_BLOCK_SIZE],
    ['1.5K', 1536],
  ])('%j is valid -> %d', (bs, want) => {
    expect(resolveConfig(ARGS, { blockSize: bs }).blockSize).toBe(want);
  });

  it.each<string | number>([0, '0', -1, '-1', '-4K', 'abc', '', '65M', '64MiB1', MAX_BLOCK_SIZE + 1, '1G', 1.5, '1.5'])(
    '%j -> BAD_BLOCK_SIZE',
    (bs) => {
      expect(codeOf(ARGS, { blockSize: bs })).toBe('BAD_BLOCK_SIZE');
    },
  );

  it.each<[Record<string, unknown>, number[]]>([
    [{ refine: false }, []],
    [{ refine: false, refineLevels: '16K,1K' }, []],
    [{ refineLevels: '16K,1K,64' }, [16384, 1024, 64]],
    [{ refineLevels: '64' }, [64]],
    [{ refineLevels: 4096 }, [4096]],
    [{ refineLevels: ['1K', '4K'] }, [4096]],
  ])('refinement flags %j -> levels %j', (flags, want) => {
    expect(resolveConfig(ARGS, raw(flags)).refineLevels).toEqual(want);
  });

  it.each<string | number>(['', 'x', '16K,,1K', '0', '-1', '16K,abc', '65M', 1.5])('--refine-levels %j -> BAD_REFINE_LEVELS (exit 2)', (v) => {
    expect(codeOf(ARGS, raw({ refineLevels: v }))).toBe('BAD_REFINE_LEVELS');
  });

  it('BAD_BLOCK_SIZE is a usage error (exit 2) with a hint', () => {
    try {
      resolveConfig(ARGS, { blockSize: '0' });
      expect.unreachable();
    } catch (e) {
      expect((e as PdcError).exitCode).toBe(2);
      expect((e as PdcError).hint).toMatch(/64 MiB/);
    }
  });
});

describe('concurrency', () => {
  it.each<[string | number, number]>([
    [1, 1],
    ['8', 8],
    [MAX_CONCURRENCY, MAX_CONCURRENCY],
  ])('%j is valid', (c, want) => {
    expect(resolveConfig(ARGS, { concurrency: c }).concurrency).toBe(want);
  });

  it('the remote runs no more agents than it has cores only while -c is not given', () => {
    expect(resolveConfig(ARGS, {}).fitAgentsToCores).toBe(true);
    expect(resolveConfig(ARGS, { concurrency: DEFAULT_CONCURRENCY }).fitAgentsToCores).toBe(false);
  });

  it.each<string | number>([0, '0', 65, '65', 'x', '', '-1', -1, 1.5, '1.5', '4x'])('%j -> BAD_CONCURRENCY', (c) => {
    expect(codeOf(ARGS, { concurrency: c })).toBe('BAD_CONCURRENCY');
  });
});

describe('other integer flags', () => {
  it.each<[Record<string, unknown>]>([
    [{ port: 0 }],
    [{ port: 65536 }],
    [{ port: 'ssh' }],
    [{ timeout: 0 }],
    [{ timeout: 'soon' }],
    [{ connections: 17 }],
    [{ connectionThreads: 'yes' }],
    [{ connectionThreads: '' }],
    [{ benchmark: 0 }],
    [{ benchmark: 101 }],
  ])('%j -> USAGE', (f) => {
    expect(codeOf(ARGS, raw(f))).toBe('USAGE');
  });
});

describe('arguments', () => {
  it.each<[string[], string]>([
    [[], 'USAGE'],
    [['/only/one'], 'USAGE'],
    [['h1:/a', './b', 'c'], 'USAGE'],
    [['h1:/a', 'h2:/b', './c'], 'USAGE'],
    [['a', 'b', 'host:/c', 'host:/dir/'], 'USAGE'],
    [['h1:/a', 'h1:/b', 'h2:/dir/'], 'BOTH_REMOTE'],
    [['h1:/a', 'h2:/b'], 'BOTH_REMOTE'],
    [['ssh://h1/a', 'u@h2:/b'], 'BOTH_REMOTE'],
    [['', '/b'], 'BAD_LOCATION'],
  ])('%j -> %s', (args, code) => {
    expect(codeOf(args, {})).toBe(code);
  });

  it('takes several sources on one host, in order, the last argument as TARGET', () => {
    const c = resolveConfig(['h1:/a', 'h1:/b/', 'h1:c', './dir'], {});
    expect(c.sources.map((s) => s.path)).toEqual(['/a', '/b/', 'c']);
    expect(c.source).toEqual(c.sources[0]);
    expect(c.target).toEqual({ kind: 'local', path: './dir' });
  });

  it.each<[string, Record<string, boolean>, boolean, Partial<RunConfig>]>([
    ['-a as root', { archive: true }, true, { recursive: true, meta: { perms: true, times: true, owner: true, group: true } }],
    ['-a as a user: no owner/group', { archive: true }, false, { recursive: true, meta: { perms: true, times: true, owner: false, group: false } }],
    ['-t alone', { times: true }, false, { recursive: false, meta: { perms: false, times: true, owner: false, group: false } }],
    ['--perms --owner -g', { perms: true, owner: true, group: true }, false, { meta: { perms: true, times: false, owner: true, group: true } }],
    ['-r --checksum', { recursive: true, checksum: true }, false, { recursive: true, checksum: true }],
    ['-a --delete', { archive: true, delete: true }, false, { recursive: true, delete: true }],
  ])('%s', (_name, flags, isRoot, want) => {
    expect(resolveConfig(['/s/', '/t'], flags, isRoot)).toMatchObject(want);
  });

  it('--delete without -r is a USAGE error (it acts inside a recursive run only)', () => {
    expect(codeOf(['/s/', '/t'], { delete: true })).toBe('USAGE');
  });

  it('accepts exactly one remote side', () => {
    expect(resolveConfig(['h1:/a', './b'], {}).source.kind).toBe('remote');
    expect(resolveConfig(['./a', 'h1:/b'], {}).target.kind).toBe('remote');
  });
});

describe('verbosity', () => {
  it.each<[Record<string, unknown>, number]>([
    [{}, 0],
    [{ verbose: true }, 1],
    [{ verbose: [true, true] }, 2], // -v -v / -vv: cac passes an array
    [{ verbose: [true, true, true] }, 3],
    [{ quiet: true }, -1],
    [{ quiet: [true, true] }, -2],
    [{ verbose: [true, true], quiet: true }, 1],
    [{ verbose: false }, 0],
  ])('%j -> %d', (f, want) => {
    expect(resolveConfig(ARGS, raw(f)).verbosity).toBe(want);
  });
});

describe('repeated and numeric valued flags (as cac delivers them)', () => {
  it('the last of a repeated valued flag wins', () => {
    const c = resolveConfig(ARGS, raw({ hashMethod: ['sha1', 'md5'], blockSize: ['4K', '8K'], concurrency: [2, 3], timeout: ['9', '7'] }));
    expect(c.hashMethod).toBe('md5');
    expect(c.blockSize).toBe(8192);
    expect(c.concurrency).toBe(3);
    expect(c.idleTimeoutMs).toBe(7000);
  });

  it('a bad last value is still rejected with its code', () => {
    expect(codeOf(ARGS, raw({ blockSize: ['4K', 'junk'] }))).toBe('BAD_BLOCK_SIZE');
    expect(codeOf(ARGS, raw({ concurrency: [4, 0] }))).toBe('BAD_CONCURRENCY');
  });

  it('string flags that cac turned into numbers stay strings', () => {
    const c = resolveConfig(['h:/a', './b'], raw({ hashMethod: 5, sshConfig: 1, remoteNode: 18 }));
    expect(c.hashMethod).toBe('5');
    expect(c.ssh.configFile).toBe('1');
    expect(c.ssh.remoteNode).toBe('18');
  });
});

describe('--benchmark', () => {
  it('needs a local target', () => {
    expect(codeOf(['./a', 'host:/b'], { benchmark: 3 })).toBe('USAGE');
  });
  it('is accepted with a remote source and a local target', () => {
    expect(resolveConfig(['host:/a', './b'], { benchmark: '3' }).benchmark).toBe(3);
  });
});

describe('SSH options declared for the SSH layer and the -e transport', () => {
  it.each<[Record<string, unknown>, string[]]>([
    [{ sshOption: 'ServerAliveInterval=5' }, ['ServerAliveInterval=5']],
    [{ sshOption: ['User=bob', 'Port 2222', 'Compression = yes'] }, ['User=bob', 'Port 2222', 'Compression = yes']],
    [{ jump: 'bastion' }, ['ProxyJump=bastion']],
    [{ jump: 'alice@bastion:2200,[::1]:22', sshOption: ['User=bob'] }, ['ProxyJump=alice@bastion:2200,[::1]:22', 'User=bob']],
    [{ jump: ['first', 'second'] }, ['ProxyJump=second']], // a value option: the last one wins
  ])('%j -> ssh.options %j (-J first, then every -o in order)', (f, want) => {
    expect(resolveConfig(ARGS, raw(f)).ssh.options).toEqual(want);
  });

  it.each<[Record<string, unknown>]>([
    [{ sshOption: 'ServerAliveInterval' }],
    [{ sshOption: '=5' }],
    [{ sshOption: '' }],
    [{ sshOption: ['User=bob', 'nonsense'] }],
    [{ sshOption: 5 }],
    [{ jump: 'a b' }],
    [{ jump: 'host,' }],
    [{ jump: 'user@' }],
    [{ jump: 'host:port' }],
    [{ jump: '' }],
    [{ rsh: '' }],
    [{ rsh: '   ' }],
    [{ connectTimeout: 0 }],
    [{ connectTimeout: 'soon' }],
    [{ connectTimeout: '1.5' }],
  ])('%j -> USAGE', (f) => {
    expect(codeOf(ARGS, raw(f))).toBe('USAGE');
  });

  it('-e is kept as given; --connect-timeout becomes milliseconds', () => {
    const c = resolveConfig(['h:/a', './b'], raw({ rsh: 'ssh -p 2222 -o BatchMode=yes', connectTimeout: '7' }));
    expect(c.rsh).toBe('ssh -p 2222 -o BatchMode=yes');
    expect(c.ssh.connectTimeoutMs).toBe(7000);
  });

  it.each<[Record<string, unknown>, RegExp]>([
    [{ connections: 2 }, /^--connections applies to the built-in SSH client/],
    [{ connectionThreads: 'never' }, /^--connection-threads applies to the built-in SSH client/],
    [{ connections: 3, connectionThreads: 'always' }, /^--connections and --connection-threads apply to the built-in SSH client/],
  ])('-e with %j is a USAGE error naming the fix (the built-in client\'s options would be ignored)', (f, message) => {
    expect(codeOf(['h:/a', './b'], raw({ rsh: 'ssh', ...f }))).toBe('USAGE');
    try {
      resolveConfig(['h:/a', './b'], raw({ rsh: 'ssh', ...f }));
      expect.unreachable();
    } catch (e) {
      expect((e as PdcError).message).toMatch(message);
      expect((e as PdcError).hint).toMatch(/drop -e/);
    }
  });

  it('a bad -o names the fix', () => {
    try {
      resolveConfig(ARGS, raw({ sshOption: 'Nonsense' }));
      expect.unreachable();
    } catch (e) {
      expect((e as PdcError).message).toMatch(/-o "Nonsense"/);
      expect((e as PdcError).hint).toMatch(/Key=value/);
    }
  });
});

describe('-z, --compress-level and --bwlimit', () => {
  it.each<[Record<string, unknown>, Partial<RunConfig>]>([
    [{}, { compressLevel: undefined, bwlimit: undefined }],
    [{ compress: true }, { compressLevel: 0 }],
    [{ compressLevel: 1 }, { compressLevel: 1 }],
    [{ compressLevel: 5 }, { compressLevel: 5 }],
    [{ compressLevel: '0' }, { compressLevel: 0 }],
    [{ compress: true, compressLevel: 11 }, { compressLevel: 11 }],
    [{ bwlimit: '50M' }, { bwlimit: 50 * 1024 * 1024 }],
    [{ bwlimit: '500K' }, { bwlimit: 500 * 1024 }],
    [{ bwlimit: 4096 }, { bwlimit: 4096 }],
    [{ bwlimit: ['1M', '2M'] }, { bwlimit: 2 * 1024 * 1024 }],
  ])('%j -> %j', (flags, want) => {
    expect(resolveConfig(ARGS, raw(flags))).toMatchObject(want);
  });

  it.each<[Record<string, unknown>]>([
    [{ compressLevel: 12 }],
    [{ compressLevel: -1 }],
    [{ compressLevel: 'fast' }],
    [{ compressLevel: 1.5 }],
    [{ bwlimit: 'fast' }],
    [{ bwlimit: '10' }],
    [{ bwlimit: 0 }],
    [{ bwlimit: '' }],
    [{ bwlimit: '-5M' }],
  ])('%j -> USAGE', (flags) => {
    expect(codeOf(ARGS, raw(flags))).toBe('USAGE');
  });
});
