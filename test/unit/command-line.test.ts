/**
 * argv -> cac (declared from the option table) -> resolveConfig, in process: what
 * users type ends up in RunConfig, every declared option has an effect, and no
 * positional argument is swallowed or dropped.
 */
import { describe, expect, it } from 'vitest';
import { type ParsedFlags, createCli, unknownOptionAsTyped } from '../../src/cli/command-line.js';
import { OPTIONS, keyOf } from '../../src/cli/option-table.js';
import { type RunConfig, resolveConfig } from '../../src/cli/options.js';
import { PdcError } from '../../src/errors/pdc-error.js';

/** Parse argv as the CLI does; returns what the action received. */
function parse(argv: string[]): { args: string[]; flags: ParsedFlags } {
  let got: { args: string[]; flags: ParsedFlags } | undefined;
  const cli = createCli((args, flags) => {
    got = { args, flags };
  });
  cli.parse(['node', 'pdiffcopy', ...argv], { run: false });
  cli.runMatchedCommand();
  if (!got) throw new Error('the action did not run');
  return got;
}

function config(argv: string[]): RunConfig {
  const { args, flags } = parse(argv);
  return resolveConfig(args, flags);
}

describe('dashed booleans do not take the next argument', () => {
  it.each<[string[], Partial<RunConfig>]>([
    [['--dry-run', '/s', '/t'], { dryRun: true }],
    [['--whole-file', '/s', '/t'], { wholeFile: true }],
    [['/s', '--dry-run', '/t'], { dryRun: true }],
    [['/s', '/t', '--dry-run'], { dryRun: true }],
    [['-nW', '/s', '/t'], { dryRun: true, wholeFile: true }],
    [['--no-progress', '/s', '/t'], { progress: 'off' }],
    [['--progress', '/s', '/t'], { progress: 'on' }],
    [['/s', '/t'], { progress: 'auto', jsonProgress: false }],
    [['--json-progress', '/s', '/t'], { jsonProgress: true }],
    [['--verify', '--atomic', '/s', '/t'], { verify: true, atomic: true }],
    [['--force-device', '/s', '/t'], { forceDevice: true }],
    [['--sparse', '/s', '/t'], { sparse: true }],
    [['--json', '/s', '/t'], { json: true }],
    [['-vv', '/s', '/t'], { verbosity: 2 }],
    [['--verbose', '--verbose', '-q', '/s', '/t'], { verbosity: 1 }],
  ])('%j', (argv, want) => {
    const c = config(argv);
    expect(c.source).toEqual({ kind: 'local', path: '/s' });
    expect(c.target).toEqual({ kind: 'local', path: '/t' });
    expect(c).toMatchObject(want);
  });

  it('--accept-new-host-key and --sudo before a remote source', () => {
    const c = config(['--accept-new-host-key', '--sudo', 'h:/s', '/t']);
    expect(c.source).toMatchObject({ kind: 'remote', host: 'h', path: '/s' });
    expect(c.ssh).toMatchObject({ acceptNewHostKey: true, sudo: true });
  });
});

describe('positional arguments', () => {
  it.each<[string[], string[]]>([
    [['a', 'b'], ['a', 'b']],
    [['a', 'b', 'c', 'host:/dir/'], ['a', 'b', 'c', 'host:/dir/']],
    [['--', '-a', '-b'], ['-a', '-b']],
    [['a', '--', 'b', 'c'], ['a', 'b', 'c']],
  ])('%j reach resolveConfig as %j', (argv, want) => {
    expect(parse(argv).args).toEqual(want);
  });

  it('more than two: every source kept in order, the last one is TARGET', () => {
    const { args, flags } = parse(['a.ibd', '-r', 'b.ibd', 'c.ibd', 'box:/dir/']);
    const c = resolveConfig(args, flags);
    expect(c.sources.map((s) => s.path)).toEqual(['a.ibd', 'b.ibd', 'c.ibd']);
    expect(c.target).toMatchObject({ kind: 'remote', host: 'box', path: '/dir/' });
    expect(c.recursive).toBe(true);
  });

  it('sources on two hosts are a USAGE error', () => {
    const { args, flags } = parse(['h1:/a', 'h2:/b', './dir']);
    try {
      resolveConfig(args, flags);
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(PdcError);
      expect((e as PdcError).code).toBe('USAGE');
      expect((e as PdcError).message).toMatch(/different hosts/);
    }
  });
});

describe('words that read as numbers stay as typed', () => {
  it.each<[string[], string, string]>([
    [['--json', '007', 'dst'], '007', 'dst'],
    [['-n', '1e3', '010'], '1e3', '010'],
    [['--dry-run', '0x10', '--verify', '1.50'], '0x10', '1.50'],
    [['-c', '4', '--json', '04', '4.0'], '04', '4.0'],
    [['--', '007', '08'], '007', '08'],
    [['-W', '', 'x'], '', 'x'],
  ])('%j -> source %j, target %j', (argv, source, target) => {
    expect(parse(argv).args).toEqual([source, target]);
  });

  it('text option values too: -i, -F, -o, -e, -m, --remote-node', () => {
    const c = config(['-i', '01', '-i', '1e3', '-F', '010', '--remote-node=0012', '-m', '05', '-e', '007', 'h:/s', '/t']);
    expect(c.ssh.identityFiles).toEqual(['01', '1e3']);
    expect(c.ssh.configFile).toBe('010');
    expect(c.ssh.remoteNode).toBe('0012');
    expect(c.hashMethod).toBe('05');
    expect(c.rsh).toBe('007');
  });

  it('numeric options still read as numbers', () => {
    const c = config(['-c', '08', '-b', '4096', '--timeout=010', '-p', '2222', 'h:/s', '/t']);
    expect(c).toMatchObject({ concurrency: 8, blockSize: 4096, idleTimeoutMs: 10_000 });
    expect(c.ssh.port).toBe(2222);
  });
});

describe('SSH options from argv', () => {
  it.each<[string[], Partial<RunConfig['ssh']>]>([
    [['-o', 'User=bob', '-o', 'Port 2222'], { options: ['User=bob', 'Port 2222'] }],
    [['--ssh-option=User=bob', '-J', 'jump@bastion:22'], { options: ['ProxyJump=jump@bastion:22', 'User=bob'] }],
    [['--jump', 'a,b'], { options: ['ProxyJump=a,b'] }],
    [['--connect-timeout', '9'], { connectTimeoutMs: 9000 }],
    [['-i', 'k1', '-i', 'k2'], { identityFiles: ['k1', 'k2'] }],
    [['-p', '2222', '-F', 'cfg'], { port: 2222, configFile: 'cfg' }],
  ])('%j', (flags, want) => {
    expect(config([...flags, 'h:/s', '/t']).ssh).toMatchObject(want);
  });

  it('-e keeps its command', () => {
    expect(config(['-e', 'ssh -p 2222', 'h:/s', '/t']).rsh).toBe('ssh -p 2222');
  });
});

describe('every declared option has an effect', () => {
  /** One way to give each option (a table entry without a sample here fails the test). */
  const SAMPLES: Record<string, string[]> = {
    'block-size': ['-b', '4K'],
    'hash-method': ['-m', 'sha256'],
    'whole-file': ['-W'],
    concurrency: ['-c', '2'],
    'dry-run': ['-n'],
    verify: ['--verify'],
    atomic: ['--atomic'],
    'force-device': ['--force-device'],
    sparse: ['--sparse'],
    'no-refine': ['--no-refine'],
    'refine-levels': ['--refine-levels', '4K,64'],
    compress: ['-z'],
    'compress-level': ['--compress-level', '5'],
    bwlimit: ['--bwlimit', '50M'],
    timeout: ['--timeout', '5'],
    port: ['-p', '2200'],
    identity: ['-i', 'key'],
    'ssh-config': ['-F', 'cfg'],
    'ssh-option': ['-o', 'User=x'],
    jump: ['-J', 'bastion'],
    rsh: ['-e', 'ssh'],
    'connect-timeout': ['--connect-timeout', '3'],
    'accept-new-host-key': ['--accept-new-host-key'],
    'remote-node': ['--remote-node', '/opt/node'],
    'upload-node': ['--upload-node'],
    sudo: ['--sudo'],
    connections: ['--connections', '2'],
    'connection-threads': ['--connection-threads', 'never'],
    json: ['--json'],
    progress: ['--progress'],
    'no-progress': ['--no-progress'],
    'json-progress': ['--json-progress'],
    verbose: ['-v'],
    quiet: ['-q'],
    benchmark: ['-B', '3'],
    yes: ['-y'],
    recursive: ['-r'],
    archive: ['-a'],
    perms: ['--perms'],
    times: ['-t'],
    owner: ['--owner'],
    group: ['-g'],
    checksum: ['--checksum'],
    delete: ['-r', '--delete'],
  };
  const base = config(['h:/s', '/t']);
  for (const o of OPTIONS.filter((o) => !o.builtin)) {
    it(`--${o.long}`, () => {
      const sample = SAMPLES[o.long];
      expect(sample, `a sample for --${o.long}`).toBeDefined();
      const { flags } = parse([...sample!, 'h:/s', '/t']);
      expect(flags[keyOf(o) as keyof ParsedFlags], `cac key ${keyOf(o)}`).toBeDefined();
      expect(config([...sample!, 'h:/s', '/t'])).not.toEqual(base);
    });
  }
});

describe('the option table', () => {
  it('has unique long and short names', () => {
    const longs = OPTIONS.map((o) => o.long);
    const shorts = OPTIONS.flatMap((o) => (o.short ? [o.short] : []));
    expect(new Set(longs).size).toBe(longs.length);
    expect(new Set(shorts).size).toBe(shorts.length);
  });

  it('-V is the version and -v only --verbose; -h is the help', () => {
    expect(OPTIONS.find((o) => o.short === 'V')?.builtin).toBe('version');
    expect(OPTIONS.find((o) => o.short === 'v')?.long).toBe('verbose');
    expect(OPTIONS.find((o) => o.short === 'h')?.builtin).toBe('help');
  });

  it('value options name their value; flags do not', () => {
    for (const o of OPTIONS) expect(!!o.value, o.long).toBe(o.kind === 'value' || o.kind === 'list');
  });

  it('the documented connect timeout default is the SSH layer\'s', async () => {
    const { DEFAULT_CONNECT_TIMEOUT_MS } = await import('../../src/ssh/connect.js');
    expect(OPTIONS.find((o) => o.long === 'connect-timeout')?.default).toMatch(new RegExp(`else ${DEFAULT_CONNECT_TIMEOUT_MS / 1000}$`));
  });
});

describe('unknown options are named as typed', () => {
  it.each<[string, string[], string]>([
    ['Unknown option `--suchOption`', ['--no-such-option', 'a', 'b'], 'unknown option --no-such-option'],
    ['Unknown option `--noSuchOption`', ['--no-such-option'], 'unknown option --no-such-option'],
    ['Unknown option `--fooBar`', ['a', '--foo-bar=1', 'b'], 'unknown option --foo-bar'],
    ['Unknown option `--frob`', ['--frob'], 'unknown option --frob'],
    ['Unknown option `-x`', ['-nx', 'a', 'b'], 'unknown option -x'],
  ])('%s from %j', (message, argv, want) => {
    expect(unknownOptionAsTyped(message, argv)).toBe(want);
  });

  it('what cac really says for --no-such-option maps back to it', () => {
    const cli = createCli(() => undefined);
    cli.parse(['node', 'pdiffcopy', '--no-such-option', 'a', 'b'], { run: false });
    let message = '';
    try {
      cli.runMatchedCommand();
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^Unknown option/);
    expect(unknownOptionAsTyped(message, ['--no-such-option', 'a', 'b'])).toBe('unknown option --no-such-option');
  });
});
