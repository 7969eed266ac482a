/**
 * --upload-node against a real OpenSSH sshd whose sessions have no node: their PATH is a
 * directory holding only the tools the upload needs (sh, uname, ls, mkdir, chmod, mv, rm,
 * gzip, sha256sum), and their HOME is a temp directory (the cache goes there, never into
 * the real home). The built CLI runs as a child process.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { buildRemoteCommand, EXIT_CACHED_NODE_BAD } from '../../src/protocol/bootstrap.js';
import { createSshTransport, exitStatusError } from '../../src/ssh/index.js';
import { localNodeBinary, platformOfUname } from '../../src/transport/node-upload.js';
import { expectCleanError, jsonOf, killAllClis, runCli, signal, spawnCli, waitFor } from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { isolated } from '../ssh/helpers.js';

/** What a node-less host is assumed to have (see src/transport/node-upload.ts). */
const TOOLS = ['sh', 'uname', 'ls', 'mkdir', 'chmod', 'mv', 'rm', 'gzip', 'sha256sum'];

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
/** HOME of the local CLI (its ~/.ssh stays empty: -F names the harness's config). */
let home: string;
/** HOME of the remote sessions: the cache lives under it. */
let remoteHome: string;
/** PATH of the remote sessions: no node in it. */
let bin: string;
let src: string;
let cacheDir: string;
let cached: string;
let nodeSha: string;

const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;
const cli = (args: string[]) => runCli(args, { home, timeoutMs: 90_000 });

function which(tool: string): string {
  return execFileSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).trim();
}

/** A fake program in the remote PATH (replacing the real tool of that name until restoreTool). */
function fakeTool(name: string, body: string): void {
  rmSync(join(bin, name), { force: true });
  writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(bin, name), 0o755);
}

function restoreTool(name: string): void {
  rmSync(join(bin, name), { force: true });
  symlinkSync(which(name), join(bin, name));
}

beforeAll(async () => {
  ({ dir, cleanup } = tempDir('pdc-upload-node-'));
  home = join(dir, 'home');
  remoteHome = join(dir, 'remote-home');
  bin = join(dir, 'bin');
  for (const d of [home, remoteHome, bin]) mkdirSync(d, { mode: 0o700 });
  for (const tool of TOOLS) symlinkSync(which(tool), join(bin, tool));
  sshd = await startSshd({ setEnv: { PATH: bin, HOME: remoteHome } });
  src = join(dir, 'source.bin');
  writeSeededFile(src, 3 * 1024 * 1024 + 11, 7);
  const local = await localNodeBinary();
  nodeSha = local.sha256;
  cacheDir = join(remoteHome, '.cache', 'pdiffcopy', local.name);
  cached = join(cacheDir, 'node');
}, 60_000);

afterEach(() => killAllClis());

afterAll(async () => {
  killAllClis();
  await sshd?.stop();
  cleanup?.();
});

describe('a remote without node', () => {
  it('the harness really has no node in the sessions PATH', () => {
    expect(existsSync(join(bin, 'node'))).toBe(false);
    expect(existsSync(join(bin, 'nodejs'))).toBe(false);
  });

  it('without --upload-node: REMOTE_NODE_MISSING, the hint names packages, --remote-node and --upload-node; nothing uploaded', async () => {
    const r = await cli([...ssh(), '--json', src, remote(join(dir, 'never.bin'))]);
    expectCleanError(r, EXIT_CODES.connection, /node not found/);
    const err = jsonOf(r).error;
    expect(err.code).toBe('REMOTE_NODE_MISSING');
    expect(err.hint).toMatch(/apt install nodejs/);
    expect(err.hint).toMatch(/dnf install nodejs/);
    expect(err.hint).toMatch(/apk add nodejs/);
    expect(err.hint).toMatch(/zypper install nodejs/);
    expect(err.hint).toMatch(/--remote-node PATH/);
    expect(err.hint).toMatch(/--upload-node/);
    expect(r.stderr).toMatch(/^pdiffcopy: hint: .*apt install nodejs.*--upload-node/m);
    expect(existsSync(join(remoteHome, '.cache'))).toBe(false);
    expect(existsSync(join(dir, 'never.bin'))).toBe(false);
  });

  it('with --upload-node: uploads node into the private cache, and the copy is byte-identical', async () => {
    const out = join(dir, 'pushed.bin');
    const r = await cli([...ssh(), '-v', '--upload-node', src, remote(out)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(out, src);
    expect(r.stderr).toMatch(/node: uploading .* to .*\.cache\/pdiffcopy\/node-v[\d.]+-linux-\w+\/node/);
    expect(sha256(cached)).toBe(nodeSha);
    const file = statSync(cached);
    expect(file.isFile()).toBe(true);
    expect(file.mode & 0o777).toBe(0o700);
    for (const d of [cacheDir, join(remoteHome, '.cache', 'pdiffcopy'), join(remoteHome, '.cache')]) {
      expect(statSync(d).mode & 0o777, d).toBe(0o700);
    }
    // Only the binary: no temp file left behind.
    expect(execFileSync('ls', ['-A', cacheDir], { encoding: 'utf8' }).trim()).toBe('node');
  });

  it('a second run reuses the cached node: checked, not uploaded again (same inode and mtime)', async () => {
    const before = statSync(cached);
    const out = join(dir, 'pulled.bin');
    const r = await cli([...ssh(), '-v', '--upload-node', remote(src), out]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(out, src);
    expect(r.stderr).toMatch(/node: reusing .*node \(sha256 matches\)/);
    expect(r.stderr).not.toMatch(/node: uploading/);
    const after = statSync(cached);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
  });

  it('a corrupted cached node is never run: the launch check refuses it (exit 96), and --upload-node replaces it', async () => {
    const marker = join(dir, 'corrupt-node-ran');
    writeFileSync(cached, `#!/bin/sh\necho ran > ${marker}\n`);
    chmodSync(cached, 0o700);

    // The agents' launch command on its own: the checksum fails, nothing is executed.
    const t = createSshTransport({ host: sshd.host, port: sshd.port, user: sshd.user }, isolated(home, sshd, { identityFiles: [sshd.clientKey], options: [`UserKnownHostsFile=${sshd.knownHosts}`] }));
    try {
      const r = await t.exec(buildRemoteCommand({ cachedNode: { name: cacheDir.split('/').pop()!, sha256: nodeSha } }));
      expect(r.code, r.stderr).toBe(EXIT_CACHED_NODE_BAD);
      expect(existsSync(marker)).toBe(false);
      expect(exitStatusError(r.code, r.stderr, 'db1')?.code).toBe('REMOTE_NODE_UPLOAD_FAILED');
    } finally {
      await t.close();
    }

    const out = join(dir, 'after-corruption.bin');
    const r = await cli([...ssh(), '-v', '--upload-node', src, remote(out)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(out, src);
    expect(r.stderr).toMatch(/node: uploading .*\(the cached one does not match\)/);
    expect(existsSync(marker)).toBe(false);
    expect(sha256(cached)).toBe(nodeSha);
  });

  it('a cached node that is a symlink is not trusted, even to the right binary', async () => {
    unlinkSync(cached);
    symlinkSync(process.execPath, cached);
    const t = createSshTransport({ host: sshd.host, port: sshd.port, user: sshd.user }, isolated(home, sshd, { identityFiles: [sshd.clientKey], options: [`UserKnownHostsFile=${sshd.knownHosts}`] }));
    try {
      const r = await t.exec(buildRemoteCommand({ cachedNode: { name: cacheDir.split('/').pop()!, sha256: nodeSha } }));
      expect(r.code, r.stderr).toBe(EXIT_CACHED_NODE_BAD);
    } finally {
      await t.close();
    }
    unlinkSync(cached);
  });

  it('through the system ssh (-e ssh) too: uploads when the cache is empty, then the copy succeeds', async () => {
    rmSync(join(remoteHome, '.cache'), { recursive: true, force: true });
    const out = join(dir, 'pushed-e.bin');
    const r = await cli([...ssh(), '-e', 'ssh', '-v', '--upload-node', src, remote(out)]);
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(out, src);
    expect(r.stderr).toMatch(/node: uploading/);
    expect(sha256(cached)).toBe(nodeSha);
    const again = await cli([...ssh(), '-e', 'ssh', '-v', '--upload-node', remote(src), join(dir, 'pulled-e.bin')]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/node: reusing/);
    expectSameBytes(join(dir, 'pulled-e.bin'), src);
  });

  it('a cached node in a directory others can write is neither run nor reused: the upload refuses the directory', async () => {
    expect(sha256(cached)).toBe(nodeSha);
    chmodSync(cacheDir, 0o770);
    try {
      const r = await cli([...ssh(), '--json', '--upload-node', src, remote(join(dir, 'never1.bin'))]);
      expectCleanError(r, EXIT_CODES.connection, /not a directory of ours closed to other users/);
      expect(jsonOf(r).error.code).toBe('REMOTE_NODE_UPLOAD_FAILED');
      expect(existsSync(join(dir, 'never1.bin'))).toBe(false);
    } finally {
      chmodSync(cacheDir, 0o700);
    }
  });

  it('a cache directory that is a symlink is refused: nothing written through it, REMOTE_NODE_UPLOAD_FAILED', async () => {
    rmSync(join(remoteHome, '.cache'), { recursive: true, force: true });
    const elsewhere = join(dir, 'elsewhere');
    mkdirSync(elsewhere, { mode: 0o700 });
    symlinkSync(elsewhere, join(remoteHome, '.cache'));
    try {
      const r = await cli([...ssh(), '--json', '--upload-node', src, remote(join(dir, 'never2.bin'))]);
      expectCleanError(r, EXIT_CODES.connection, /not a directory of ours/);
      expect(jsonOf(r).error.code).toBe('REMOTE_NODE_UPLOAD_FAILED');
      expect(execFileSync('ls', ['-A', elsewhere], { encoding: 'utf8' }).trim()).toBe('');
    } finally {
      unlinkSync(join(remoteHome, '.cache'));
    }
  });

  it('SIGINT during the upload: exit 130, and the remote keeps neither a temp file nor a half binary', async () => {
    rmSync(join(remoteHome, '.cache'), { recursive: true, force: true });
    // A remote gzip that starts late, so the upload is surely still running when SIGINT comes.
    fakeTool('gzip', `${which('sleep')} 3; exec ${which('gzip')} "$@"`);
    try {
      const run = spawnCli([...ssh(), '-v', '--upload-node', src, remote(join(dir, 'never4.bin'))], { home, timeoutMs: 60_000 });
      expect(await waitFor(() => /node: uploading/.test(run.stderr()), 30_000), run.stderr()).toBe(true);
      signal(run.pid, 'SIGINT');
      const r = await run.done;
      expect(r.timedOut, r.stderr).toBe(false);
      expect(r.code, r.stderr).toBe(130);
      // The remote gzip gets EOF, fails, and the script removes its temp file.
      const leftovers = () => (existsSync(cacheDir) ? readdirSync(cacheDir) : []);
      expect(await waitFor(() => leftovers().length === 0, 20_000), leftovers().join(' ')).toBe(true);
      expect(existsSync(join(dir, 'never4.bin'))).toBe(false);
    } finally {
      restoreTool('gzip');
    }
  });

  it('another OS or CPU (uname -sm): REMOTE_PLATFORM_MISMATCH, nothing uploaded', async () => {
    rmSync(join(remoteHome, '.cache'), { recursive: true, force: true });
    const foreign = process.arch === 'arm64' ? 'Linux x86_64' : 'Linux aarch64';
    fakeTool('uname', `echo ${foreign}`);
    try {
      const r = await cli([...ssh(), '--json', '--upload-node', src, remote(join(dir, 'never3.bin'))]);
      expectCleanError(r, EXIT_CODES.connection);
      const err = jsonOf(r).error;
      expect(err.code).toBe('REMOTE_PLATFORM_MISMATCH');
      expect(err.message).toContain(foreign);
      expect(existsSync(join(remoteHome, '.cache'))).toBe(false);
    } finally {
      restoreTool('uname');
    }
  });

  it('a remote whose own node is usable gets nothing, even with --upload-node', async () => {
    rmSync(join(remoteHome, '.cache'), { recursive: true, force: true });
    symlinkSync(process.execPath, join(bin, 'node'));
    try {
      const out = join(dir, 'own-node.bin');
      const r = await cli([...ssh(), '-v', '--upload-node', src, remote(out)]);
      expect(r.code, r.stderr).toBe(0);
      expectSameBytes(out, src);
      expect(r.stderr).toMatch(/node: .* has node v\d+.*nothing to upload/);
      expect(existsSync(join(remoteHome, '.cache'))).toBe(false);
    } finally {
      unlinkSync(join(bin, 'node'));
    }
  });
});

describe('platformOfUname', () => {
  it.each([
    ['Linux x86_64', 'linux', 'x64'],
    ['Linux aarch64', 'linux', 'arm64'],
    ['Linux armv7l', 'linux', 'arm'],
    ['Linux i686', 'linux', 'ia32'],
    ['Linux ppc64le', 'linux', 'ppc64'],
    ['Linux s390x', 'linux', 's390x'],
    ['Darwin arm64', 'darwin', 'arm64'],
    ['FreeBSD amd64', 'freebsd', 'x64'],
  ])('%s is %s-%s', (uname, platform, arch) => {
    expect(platformOfUname(uname)).toEqual({ platform, arch });
  });
});
