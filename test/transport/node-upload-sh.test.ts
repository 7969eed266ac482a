/**
 * The --upload-node shell scripts under dash (a strict POSIX sh, the login shell of many
 * service users), run locally with only the tools they are documented to need on PATH.
 * The real-sshd tests (upload-node.test.ts) run them under the test user's bash.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildRemoteCommand, EXIT_CACHED_NODE_BAD } from '../../src/protocol/bootstrap.js';
import { buildProbeCommand, buildUploadCommand, parseProbe } from '../../src/transport/node-upload.js';
import { tempDir } from '../support/files.js';

const DASH = '/usr/bin/dash';
const TOOLS = ['uname', 'ls', 'mkdir', 'chmod', 'mv', 'rm', 'gzip', 'sha256sum'];
const NAME = 'node-v99.0.0-linux-x64';

let dir: string;
let cleanup: () => void;
let home: string;
let bin: string;
let ran: string;
/** A stand-in "node": answers --version, and records that it was run (with its first argument). */
let fake: Buffer;
let fakeSha: string;

function sh(command: string, input?: Buffer) {
  return spawnSync(DASH, ['-c', command], { cwd: dir, env: { PATH: bin, HOME: home }, input: input ?? Buffer.alloc(0), encoding: 'utf8' });
}

beforeAll(() => {
  ({ dir, cleanup } = tempDir('pdc-upload-sh-'));
  home = join(dir, 'home');
  bin = join(dir, 'bin');
  ran = join(dir, 'ran');
  mkdirSync(home, { mode: 0o700 });
  mkdirSync(bin);
  for (const t of TOOLS) symlinkSync(execFileSync('sh', ['-c', `command -v ${t}`], { encoding: 'utf8' }).trim(), join(bin, t));
  fake = Buffer.from(`#!${DASH}\nif [ "$1" = --version ]; then echo v99.0.0; exit 0; fi\necho "$1" > ${ran}\n`);
  fakeSha = createHash('sha256').update(fake).digest('hex');
});

afterAll(() => cleanup?.());

describe.skipIf(!existsSync(DASH))('the --upload-node scripts under dash', () => {
  const cached = () => join(home, '.cache', 'pdiffcopy', NAME, 'node');

  it('probe: uname, no node, no missing tool, no cache', () => {
    const r = sh(buildProbeCommand(NAME));
    expect(r.status, r.stderr).toBe(0);
    const p = parseProbe(r.stdout);
    expect(p.uname).toBe(execFileSync('uname', ['-sm'], { encoding: 'utf8' }).trim());
    expect(p.nodeMajor).toBeUndefined();
    expect(p.missingTools).toEqual([]);
    expect(p.cachedSha256).toBeUndefined();
  });

  it('upload: writes the checked binary 0700 in 0700 directories, and the probe then sees it', () => {
    const r = sh(buildUploadCommand({ name: NAME, sha256: fakeSha }), gzipSync(fake));
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(cached())).toEqual(fake);
    expect(statSync(cached()).mode & 0o777).toBe(0o700);
    expect(statSync(join(home, '.cache', 'pdiffcopy', NAME)).mode & 0o777).toBe(0o700);
    expect(parseProbe(sh(buildProbeCommand(NAME)).stdout).cachedSha256).toBe(fakeSha);
  });

  it('launch: runs the cached binary with the loader when its sha256 matches', () => {
    const r = sh(buildRemoteCommand({ cachedNode: { name: NAME, sha256: fakeSha } }));
    expect(r.status, r.stderr).toBe(0);
    expect(readFileSync(ran, 'utf8').trim()).toBe('-e');
  });

  it('launch: a binary whose sha256 differs is not run (exit 96)', () => {
    const r = sh(buildRemoteCommand({ cachedNode: { name: NAME, sha256: '0'.repeat(64) } }));
    expect(r.status).toBe(EXIT_CACHED_NODE_BAD);
    expect(r.stderr).toMatch(/failed its checksum/);
  });

  it('upload: a stream that does not match the sha256 is refused and leaves nothing', () => {
    const r = sh(buildUploadCommand({ name: NAME, sha256: '1'.repeat(64) }), gzipSync(Buffer.from('not node')));
    expect(r.status).toBe(92);
    expect(r.stderr).toMatch(/does not match its sha256/);
    expect(execFileSync('ls', ['-A', join(home, '.cache', 'pdiffcopy', NAME)], { encoding: 'utf8' }).trim()).toBe('node');
  });

  it('upload: a truncated gzip stream is refused and leaves nothing', () => {
    const gz = gzipSync(fake);
    const r = sh(buildUploadCommand({ name: NAME, sha256: fakeSha }), gz.subarray(0, gz.length - 9));
    expect(r.status, r.stderr).not.toBe(0);
    expect(execFileSync('ls', ['-A', join(home, '.cache', 'pdiffcopy', NAME)], { encoding: 'utf8' }).trim()).toBe('node');
  });

  it('upload: a binary that does not run here is refused (exit 93) and not kept', () => {
    const broken = Buffer.from('#!/nonexistent/interpreter\n');
    const r = sh(buildUploadCommand({ name: 'node-broken', sha256: createHash('sha256').update(broken).digest('hex') }), gzipSync(broken));
    expect(r.status).toBe(93);
    expect(r.stderr).toMatch(/does not run here/);
    expect(existsSync(join(home, '.cache', 'pdiffcopy', 'node-broken', 'node'))).toBe(false);
  });

  it('launch: a group-writable cache directory makes even the right binary untrusted', () => {
    chmodSync(join(home, '.cache', 'pdiffcopy'), 0o770);
    try {
      const r = sh(buildRemoteCommand({ cachedNode: { name: NAME, sha256: fakeSha } }));
      expect(r.status).toBe(EXIT_CACHED_NODE_BAD);
      expect(parseProbe(sh(buildProbeCommand(NAME)).stdout).cachedSha256).toBeUndefined();
    } finally {
      chmodSync(join(home, '.cache', 'pdiffcopy'), 0o700);
    }
  });

  it('the cache name and sha256 are shell-quoted: a hostile name is a literal directory name', () => {
    // `: > pwned` needs no tool on PATH: only the quoting stands in its way.
    const name = 'x; : > pwned';
    const r = sh(buildUploadCommand({ name, sha256: fakeSha }), gzipSync(fake));
    expect(r.status, r.stderr).toBe(0);
    expect(existsSync(join(home, '.cache', 'pdiffcopy', name, 'node'))).toBe(true);
    expect(existsSync(join(dir, 'pwned'))).toBe(false);
    expect(existsSync(join(home, 'pwned'))).toBe(false);
  });
});
