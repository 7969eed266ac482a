/**
 * How the command line is parsed, as users type it: the built CLI as a child
 * process, real files, local only. Every positional argument is either used or
 * refused; nothing is opened for writing when the arguments are wrong.
 */
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawnSync } from 'node:child_process';
import { OPTIONS, flagsWithValue } from '../../src/cli/option-table.js';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { LISTED_HASH_METHODS } from '../../src/hash/methods.js';
import { CLI, REPO, expectCleanError, jsonOf, runCli } from '../support/cli-child.js';
import { expectSameBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';

let dir: string;
let cleanup: () => void;
let home: string;

beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-args-'));
  home = join(dir, 'home');
  mkdirSync(home);
});
afterAll(() => cleanup?.());

/** A file whose content and mtime a test can check afterwards. */
function untouchable(name: string, seed: number): { path: string; expectUntouched(): void } {
  const path = join(dir, name);
  writeSeededFile(path, 256 * 1024 + seed, seed);
  const sha = sha256File(path);
  const mtime = statSync(path).mtimeMs;
  return {
    path,
    expectUntouched() {
      expect(sha256File(path), `${name} content`).toBe(sha);
      expect(statSync(path).mtimeMs, `${name} mtime`).toBe(mtime);
    },
  };
}

describe('more than two positional arguments', () => {
  it('several sources and a TARGET that is a file, not a directory: exit 2, USAGE, nothing is overwritten', async () => {
    const customers = untouchable('customers.ibd', 1);
    const orders = untouchable('orders.ibd', 2);
    const payments = untouchable('payments.ibd', 3);
    const r = await runCli(['--json', customers.path, orders.path, payments.path], { home });
    expectCleanError(r, EXIT_CODES.usage, /is not an existing directory, and there are 2 sources/);
    const j = jsonOf(r);
    expect(j.ok).toBe(false);
    expect(j.error.code).toBe('USAGE');
    expect(j.error.hint).toMatch(/existing directory/);
    for (const f of [customers, orders, payments]) f.expectUntouched();
  });

  it('three local paths, options after them, TARGET missing: exit 2, nothing written or created', async () => {
    const a = untouchable('three-a', 4);
    const b = untouchable('three-b', 5);
    const c = join(dir, 'three-c-missing');
    const r = await runCli([a.path, b.path, c, '--dry-run'], { home });
    expectCleanError(r, EXIT_CODES.usage, /not an existing directory/);
    for (const f of [a, b]) f.expectUntouched();
    expect(() => statSync(c)).toThrow();
  });

  it('sources on two different hosts: exit 2 before anything connects', async () => {
    const r = await runCli(['--json', 'h1.invalid:/a', 'h2.invalid:/b', join(dir, 'x')], { home });
    expectCleanError(r, EXIT_CODES.usage, /different hosts/);
  });

  it('an extra argument after `--` counts too', async () => {
    const a = untouchable('dash-a', 7);
    const b = untouchable('dash-b', 8);
    const r = await runCli(['--json', a.path, '--', b.path, join(dir, 'dash-c')], { home });
    expectCleanError(r, EXIT_CODES.usage);
    expect(jsonOf(r).error.code).toBe('USAGE');
    b.expectUntouched();
  });

  it('SOURCE and TARGET after `--` are still used (a name may start with a dash there)', async () => {
    const src = untouchable('-dash-src', 9);
    const dst = join(dir, '-dash-dst');
    const r = await runCli(['--json', '--', '-dash-src', '-dash-dst'], { home, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).ok).toBe(true);
    expectSameBytes(dst, src.path);
  });
});

describe('file names that read as numbers', () => {
  it('--json 007 TARGET copies 007, not a file named 7', async () => {
    const src = untouchable('007', 16);
    const decoy = untouchable('7', 17);
    const r = await runCli(['--json', '007', 'copy-of-007'], { home, cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).source).toBe('007');
    expectSameBytes(join(dir, 'copy-of-007'), src.path);
    decoy.expectUntouched();
  });
});

describe('help and version', () => {
  it('--help lists every option of the table, no cac boilerplate, no "(default: true)"', async () => {
    const r = await runCli(['--help'], { home });
    expect(r.code).toBe(0);
    for (const o of OPTIONS) expect(r.stdout, flagsWithValue(o)).toContain(flagsWithValue(o));
    expect(r.stdout).not.toMatch(/^Commands:/m);
    expect(r.stdout).not.toMatch(/For more info/);
    expect(r.stdout).not.toMatch(/default: true/);
    expect(r.stdout).toMatch(/^ {2}--no-progress {2,}no progress output, not even on a terminal$/m);
    expect(r.stdout).toMatch(/Exit codes:[\s\S]*130/);
  });

  it('-V and --version print the version; -v is --verbose only', async () => {
    for (const flag of ['-V', '--version']) {
      const r = await runCli([flag], { home });
      expect(r.code, r.stderr).toBe(0);
      const { version } = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { version: string };
      expect(r.stdout).toContain(`pdiffcopy/${version}`);
    }
    const help = (await runCli(['-h'], { home })).stdout;
    expect(help.match(/^ {2}-v, /gm)).toHaveLength(1);
    expect(help).toMatch(/^ {2}-v, --verbose /m);
    expect(help).toMatch(/^ {2}-V, --version /m);
    // -v alone is verbosity, so SOURCE and TARGET are still required.
    expectCleanError(await runCli(['-v'], { home }), EXIT_CODES.usage, /SOURCE and TARGET are required/);
  });
});

describe('bad options', () => {
  it('an unknown --no-such-option is named as typed: exit 2, --json ok:false', async () => {
    const a = untouchable('unknown-a', 10);
    const b = untouchable('unknown-b', 11);
    const r = await runCli(['--json', '--no-such-option', a.path, b.path], { home });
    expectCleanError(r, EXIT_CODES.usage, /unknown option --no-such-option$/);
    const j = jsonOf(r);
    expect(j.ok).toBe(false);
    expect(j.error.code).toBe('USAGE');
    expect(j.error.message).toBe('unknown option --no-such-option');
    b.expectUntouched();
  });

  it('an unknown -m lists the useful hash names, not every OpenSSL alias', async () => {
    const a = untouchable('hash-a', 12);
    const b = untouchable('hash-b', 13);
    const r = await runCli(['--json', '-m', 'nosuchhash', a.path, b.path], { home });
    expectCleanError(r, EXIT_CODES.usage, /nosuchhash/);
    const j = jsonOf(r);
    expect(j.error.code).toBe('UNKNOWN_HASH_METHOD');
    expect(j.error.hint).toBe(`choose one of: ${LISTED_HASH_METHODS.join(', ')} (or another node:crypto hash available on both sides)`);
    b.expectUntouched();
  });

  it('a node:crypto hash that is not listed is still accepted on both sides', async () => {
    const a = untouchable('alias-a', 14);
    const dst = join(dir, 'alias-b');
    const r = await runCli(['--json', '-m', 'sha3-256', a.path, dst], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, a.path);
  });
});

describe('SSH options reach the SSH layer', () => {
  it('-o with an option pdiffcopy does not support: exit 2 naming it, before connecting', async () => {
    const a = untouchable('unsupported-o', 15);
    const r = await runCli(['--json', '-o', 'ControlMaster=auto', a.path, 'nosuch.invalid:/x'], { home });
    expectCleanError(r, EXIT_CODES.usage, /ControlMaster/);
    expect(jsonOf(r).error.code).toBe('USAGE');
  });

  it('-J sends the connection through the jump host first', async () => {
    const a = untouchable('jump', 16);
    const r = await runCli(['--json', '-J', 'bastion.invalid', a.path, 'nosuch.invalid:/x'], { home });
    expectCleanError(r, EXIT_CODES.connection, /bastion\.invalid/);
    expect(jsonOf(r).error.code).toBe('HOST_UNRESOLVED');
  });

  it('-e uses the system ssh: its failure to resolve the host is reported as such', async () => {
    const a = untouchable('rsh-unresolved', 17);
    const r = await runCli(['--json', '-e', 'ssh', a.path, 'nosuch.invalid:/x'], { home });
    expectCleanError(r, EXIT_CODES.connection, /nosuch\.invalid/);
    expect(jsonOf(r).error.code).toBe('HOST_UNRESOLVED');
  });
});

describe('the launcher on an old Node', () => {
  const node12 = join(REPO, '.cache/node12/bin/node');

  it('Node 12 gets one clear line naming the versions, exit 2, not a SyntaxError', () => {
    // .ci/run installs this Node 12 binary (scripts/fetch-node12.sh); without it this test fails, it is not skipped.
    expect(execFileSync(node12, ['--version'], { encoding: 'utf8' }).trim()).toMatch(/^v12\./);
    const r = spawnSync(node12, [CLI, '--version'], { encoding: 'utf8', env: { PATH: process.env.PATH, HOME: home } });
    expect(r.status).toBe(EXIT_CODES.usage);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trim().split('\n');
    expect(lines[0]).toMatch(/^pdiffcopy: error: needs Node\.js 20 or later, found 12\.\d+\.\d+ /);
    expect(lines[1]).toMatch(/^pdiffcopy: hint: install Node\.js 20 or later/);
    expect(lines).toHaveLength(2);
    expect(r.stderr).not.toMatch(/SyntaxError/);
  });
});
