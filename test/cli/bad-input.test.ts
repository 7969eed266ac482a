/**
 * Bad-input matrix: every bad argument, path or remote set-up fails with
 * exactly one `pdiffcopy: error:` line (plus at most one hint), the documented exit
 * code, no stack trace, quickly, and without touching the target.
 *
 * Runs the built CLI (bin/pdiffcopy.js -> dist/) as a child process against a real
 * OpenSSH sshd on 127.0.0.1 (test/support/sshd.ts). HOME is a temp dir.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, linkSync, lstatSync, mkdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { type CliResult, expectCleanError, jsonOf, killAllClis, runCli } from '../support/cli-child.js';
import { expectSameBytes, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { freePort, startSshd, type TestSshd } from '../support/sshd.js';

/** Local failures must be quick; remote ones include an SSH login (and node start-up) on a 2-core box. */
const LOCAL_MS = 5_000;
const REMOTE_MS = 15_000;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let src: string;
let dst: string;
let dstSha: string;
let dstMtime: number;
/** Observed outcomes, printed at the end (the lead's table for issue 5). */
const table: string[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-badinput-'));
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  dst = join(dir, 'target.bin');
  writeSeededFile(src, 3 * 1024 * 1024 + 7, 1);
  writeSeededFile(dst, 2 * 1024 * 1024, 2);
  dstSha = sha256File(dst);
  dstMtime = statSync(dst).mtimeMs;
});

afterEach(() => {
  killAllClis();
});

afterAll(async () => {
  killAllClis();
  await sshd?.stop();
  cleanup?.();
  if (table.length) console.log(['bad-input matrix (exit, ms, error line):', ...table].join('\n'));
});

/** -F: the harness's ssh_config (Host pdc-sshd, its key, its known_hosts). */
const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;

async function cli(label: string, args: string[], timeoutMs = 30_000): Promise<CliResult> {
  const r = await runCli(args, { home, timeoutMs });
  const line = r.stderr.split('\n').find((l) => l.startsWith('pdiffcopy: error: ')) ?? '(no error line)';
  table.push(`| ${label} | ${r.code} | ${r.ms} | ${line} |`);
  return r;
}

function expectTargetUntouched(): void {
  expect(sha256File(dst), 'target content').toBe(dstSha);
  expect(statSync(dst).mtimeMs, 'target mtime').toBe(dstMtime);
}

function expectQuick(r: CliResult, ms: number): void {
  expect(r.ms, `took ${r.ms} ms`).toBeLessThan(ms);
}

describe('connection problems', () => {
  it('unknown host key: exit 7, names the fingerprint, nothing written', async () => {
    // No -F: HOME's empty ~/.ssh has no known_hosts, so the harness key is unknown.
    const r = await cli('unknown host key', ['-i', sshd.clientKey, '-p', String(sshd.port), src, `127.0.0.1:${dst}`]);
    expectCleanError(r, EXIT_CODES.hostkey, /host key .*not known.*SHA256:/);
    expect(r.stderr).toContain(sshd.hostKeyFingerprint);
    expect(r.stderr).toMatch(/pdiffcopy: hint: .*--accept-new-host-key/);
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('unresolvable host name: exit 6', async () => {
    const r = await cli('unresolvable name', [src, 'nosuch.invalid:/x']);
    expectCleanError(r, EXIT_CODES.connection, /nosuch\.invalid/);
    expectQuick(r, REMOTE_MS);
  });

  it('closed port: exit 6 (refused)', async () => {
    const port = await freePort();
    const r = await cli('closed port', ['-p', String(port), src, `127.0.0.1:${dst}`]);
    expectCleanError(r, EXIT_CODES.connection, /refused/);
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('--json on a connection error: one JSON object with ok:false and the code', async () => {
    const r = await cli('--json, unresolvable', ['--json', src, 'nosuch.invalid:/x']);
    expectCleanError(r, EXIT_CODES.connection);
    const j = jsonOf(r);
    expect(j.ok).toBe(false);
    expect(j.error.code).toBe('HOST_UNRESOLVED');
    expect(j.exitCode).toBe(6);
  });
});

describe('usage errors', () => {
  it('both sides remote: exit 2', async () => {
    const r = await cli('both remote', ['--json', 'a.invalid:/x', 'b.invalid:/y']);
    expectCleanError(r, EXIT_CODES.usage, /both remote/);
    expect(jsonOf(r).error.code).toBe('BOTH_REMOTE');
    expectQuick(r, LOCAL_MS);
  });

  it('source and target the same file: exit 2, SAME_FILE', async () => {
    const r = await cli('same file', ['--json', dst, dst]);
    expectCleanError(r, EXIT_CODES.usage, /same file/);
    expect(jsonOf(r).error.code).toBe('SAME_FILE');
    expectQuick(r, LOCAL_MS);
    expectTargetUntouched();
  });

  it('the same file under another name (hard link, symlink, ./): SAME_FILE', async () => {
    const hard = join(dir, 'hard-link.bin');
    const soft = join(dir, 'soft-link.bin');
    linkSync(dst, hard);
    symlinkSync(dst, soft);
    for (const other of [hard, soft, join(dir, '.', 'target.bin')]) {
      const r = await cli(`same file (${other.slice(dir.length + 1)})`, ['--json', dst, other]);
      expectCleanError(r, EXIT_CODES.usage);
      expect(jsonOf(r).error.code).toBe('SAME_FILE');
    }
    expectTargetUntouched();
  });

  for (const bs of ['0', '-1', 'abc', '65M', '1.5.5K']) {
    it(`block size ${bs}: exit 2`, async () => {
      // `-b -1` reaches cac as an unknown option "-1" (exit 2, code USAGE); `--block-size=-1` is a bad size.
      const r = await cli(`-b ${bs}`, ['--json', '-b', bs, src, dst]);
      expectCleanError(r, EXIT_CODES.usage);
      expect(['BAD_BLOCK_SIZE', 'USAGE']).toContain(jsonOf(r).error.code);
      expectQuick(r, LOCAL_MS);
      expectTargetUntouched();
    });
  }

  it('--block-size=-1: exit 2, BAD_BLOCK_SIZE', async () => {
    const r = await cli('--block-size=-1', ['--json', '--block-size=-1', src, dst]);
    expectCleanError(r, EXIT_CODES.usage, /block size/);
    expect(jsonOf(r).error.code).toBe('BAD_BLOCK_SIZE');
    expectTargetUntouched();
  });

  it('block size 5K is valid', async () => {
    const out = join(dir, 'bs5k.bin');
    const r = await cli('-b 5K (valid)', ['--json', '-b', '5K', src, out]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).blockSize).toBe(5 * 1024);
    expectSameBytes(out, src);
  });

  for (const c of ['0', '1000', 'x']) {
    it(`concurrency ${c}: exit 2`, async () => {
      const r = await cli(`-c ${c}`, ['--json', '-c', c, src, dst]);
      expectCleanError(r, EXIT_CODES.usage, /concurrency/);
      expect(jsonOf(r).error.code).toBe('BAD_CONCURRENCY');
      expectQuick(r, LOCAL_MS);
      expectTargetUntouched();
    });
  }

  it('unknown hash method: exit 2, the hint lists the choices', async () => {
    const r = await cli('-m nosuchhash', ['-m', 'nosuchhash', src, dst]);
    expectCleanError(r, EXIT_CODES.usage, /nosuchhash/);
    expect(r.stderr).toMatch(/pdiffcopy: hint: .*xxh64.*sha256/);
    expectQuick(r, LOCAL_MS);
    expectTargetUntouched();
  });

  it('unknown hash method over SSH: exit 2, nothing written', async () => {
    const r = await cli('-m nosuchhash (ssh)', [...ssh(), '--json', '-m', 'nosuchhash', src, remote(dst)]);
    expectCleanError(r, EXIT_CODES.usage);
    const j = jsonOf(r);
    expect(j.error.code).toBe('UNKNOWN_HASH_METHOD');
    expect(j.error.hint).toMatch(/xxh64/);
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('unknown option and missing arguments: exit 2', async () => {
    const a = await cli('unknown option', ['--no-such-option', src, dst]);
    expectCleanError(a, EXIT_CODES.usage);
    const b = await cli('one argument', [src]);
    expectCleanError(b, EXIT_CODES.usage, /required/);
    expectTargetUntouched();
  });
});

describe('source problems', () => {
  it('source missing: exit 3', async () => {
    const r = await cli('source missing', ['--json', join(dir, 'nope.bin'), dst]);
    expectCleanError(r, EXIT_CODES.source, /does not exist/);
    expect(jsonOf(r).error.code).toBe('SOURCE_NOT_FOUND');
    expectTargetUntouched();
  });

  it('source a directory: exit 3', async () => {
    const r = await cli('source a directory', ['--json', home, dst]);
    expectCleanError(r, EXIT_CODES.source, /directory/);
    expect(jsonOf(r).error.code).toBe('SOURCE_NOT_REGULAR');
    expectQuick(r, LOCAL_MS);
    expectTargetUntouched();
  });

  it('source a FIFO: exit 3 without hanging (nobody writes to it)', async () => {
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await cli('source a FIFO', ['--json', fifo, dst], 15_000);
    expectCleanError(r, EXIT_CODES.source, /not a regular file/);
    expect(jsonOf(r).error.code).toBe('SOURCE_NOT_REGULAR');
    expectQuick(r, LOCAL_MS);
    expectTargetUntouched();
  });

  it('remote source a FIFO: exit 3 without hanging', async () => {
    const fifo = join(dir, 'fifo-remote');
    execFileSync('mkfifo', [fifo]);
    const out = join(dir, 'from-fifo.bin');
    const r = await cli('remote source a FIFO', [...ssh(), '--json', remote(fifo), out], 20_000);
    expectCleanError(r, EXIT_CODES.source, /not a regular file/);
    expect(jsonOf(r).error.code).toBe('SOURCE_NOT_REGULAR');
    expectQuick(r, REMOTE_MS);
    expect(() => lstatSync(out)).toThrow();
  });

  it('source a character device (/dev/zero): exit 3', async () => {
    const r = await cli('source /dev/zero', ['--json', '/dev/zero', dst], 15_000);
    expectCleanError(r, EXIT_CODES.source, /not a regular file/);
    expect(jsonOf(r).error.code).toBe('SOURCE_NOT_REGULAR');
    expectQuick(r, LOCAL_MS);
    expectTargetUntouched();
  });

  // Not here: an unreadable source. Tests run as root, which ignores mode bits; SOURCE_PERMISSION
  // (EACCES/EPERM) is covered by the errno translation unit tests.
});

describe('target problems', () => {
  it('target a symlink to a file: writes through to the file it points to (like cp), the link stays', async () => {
    const real = join(dir, 'link-dest.bin');
    const link = join(dir, 'link.bin');
    writeSeededFile(real, 1024 * 1024, 5);
    symlinkSync(real, link);
    const r = await cli('target symlink to a file', ['--json', src, link]);
    expect(r.code, r.stderr).toBe(0);
    expect(jsonOf(r).ok).toBe(true);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expectSameBytes(real, src);
  });

  it('remote target a symlink to a file: writes through too', async () => {
    const real = join(dir, 'rlink-dest.bin');
    const link = join(dir, 'rlink.bin');
    writeSeededFile(real, 1024 * 1024, 6);
    symlinkSync(real, link);
    const r = await cli('remote target symlink to a file', [...ssh(), '--json', src, remote(link)]);
    expect(r.code, r.stderr).toBe(0);
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expectSameBytes(real, src);
  });

  it('target a dangling symlink: exit 4, nothing created', async () => {
    const link = join(dir, 'dangling.bin');
    const pointsTo = join(dir, 'missing-dir', 'missing.bin');
    symlinkSync(pointsTo, link);
    const r = await cli('target dangling symlink', ['--json', src, link]);
    expectCleanError(r, EXIT_CODES.target, /symbolic link/);
    expect(jsonOf(r).error.code).toBe('TARGET_NOT_REGULAR');
    expectQuick(r, LOCAL_MS);
    expect(() => statSync(pointsTo)).toThrow();
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('remote target a dangling symlink: exit 4', async () => {
    const link = join(dir, 'rdangling.bin');
    symlinkSync(join(dir, 'missing.bin'), link);
    const r = await cli('remote target dangling symlink', [...ssh(), '--json', src, remote(link)]);
    expectCleanError(r, EXIT_CODES.target, /symbolic link/);
    expect(jsonOf(r).error.code).toBe('TARGET_NOT_REGULAR');
    expectQuick(r, REMOTE_MS);
  });

  it('target a FIFO: exit 4 without hanging', async () => {
    const fifo = join(dir, 'target-fifo');
    execFileSync('mkfifo', [fifo]);
    const r = await cli('target a FIFO', ['--json', src, fifo], 15_000);
    expectCleanError(r, EXIT_CODES.target, /not a regular file/);
    expect(jsonOf(r).error.code).toBe('TARGET_NOT_REGULAR');
    expectQuick(r, LOCAL_MS);
  });
});

describe('remote node problems', () => {
  let bin: string;
  beforeAll(() => {
    bin = join(dir, 'bin');
    mkdirSync(bin);
    const fake = join(bin, 'fake-old-node.cjs');
    writeFileSync(
      fake,
      "Object.defineProperty(process.versions, 'node', { value: '10.0.0', enumerable: true });\n" +
        "Object.defineProperty(process, 'version', { value: 'v10.0.0' });\n",
    );
    const script = (name: string, body: string) => {
      const p = join(bin, name);
      writeFileSync(p, `#!/bin/sh\n${body}\n`);
      chmodSync(p, 0o755);
      return p;
    };
    script('old-node', `exec ${JSON.stringify(process.execPath)} --require ${JSON.stringify(fake)} "$@"`);
    script('banner-node', `echo "Welcome to banner-host, have a nice day"\nexec ${JSON.stringify(process.execPath)} "$@"`);
  });

  it('remote node too old: exit 6, names the host', async () => {
    const r = await cli('remote node too old', [...ssh(), '--json', '--remote-node', join(bin, 'old-node'), src, remote(dst)]);
    expectCleanError(r, EXIT_CODES.connection, /too old/);
    expect(r.stderr).toMatch(new RegExp(`error: .*${sshd.alias}`));
    expect(r.stderr).toMatch(/v10\.0\.0/);
    expect(jsonOf(r).error.code).toBe('REMOTE_NODE_TOO_OLD');
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('remote node missing: exit 6', async () => {
    const r = await cli('remote node missing', [...ssh(), '--json', '--remote-node', '/nonexistent', src, remote(dst)]);
    expectCleanError(r, EXIT_CODES.connection, /not found/);
    expect(r.stderr).toMatch(new RegExp(`error: .*${sshd.alias}`));
    expect(jsonOf(r).error.code).toBe('REMOTE_NODE_MISSING');
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('garbage on the remote stream: exit 6, shows the stray text', async () => {
    const r = await cli('remote shell not clean', [...ssh(), '--json', '--remote-node', join(bin, 'banner-node'), src, remote(dst)]);
    expectCleanError(r, EXIT_CODES.connection, /Welcome to banner-host/);
    expect(jsonOf(r).error.code).toBe('REMOTE_SHELL_NOT_CLEAN');
    expect(r.stderr).toMatch(/pdiffcopy: hint: .*(bashrc|profile|silent)/);
    expectQuick(r, REMOTE_MS);
    expectTargetUntouched();
  });

  it('a control run with the same set-up succeeds (the failures above are the faults, not the harness)', async () => {
    const out = join(dir, 'control.bin');
    const r = await cli('control (ssh push)', [...ssh(), '--json', src, remote(out)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(out, src);
  });
});
