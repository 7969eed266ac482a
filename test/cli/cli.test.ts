/**
 * The command line as users run it: a child process, real files, and a real sshd
 * for the remote forms. Every sync checks the target byte for byte.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCleanError, runCli } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const MiB = 1 << 20;

describe('pdiffcopy CLI, local', () => {
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir('pdc-cli-'));
    home = join(dir, 'home');
    mkdirSync(home);
  });
  afterAll(() => cleanup?.());

  it('--help lists the options and the exit codes', async () => {
    const r = await runCli(['--help'], { home });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('--block-size');
    expect(r.stdout).toContain('--dry-run');
    expect(r.stdout).toMatch(/Exit codes[\s\S]*130/);
  });

  it('syncs a file, prints one JSON summary with --json, and only the changed blocks move', async () => {
    const src = join(dir, 'json-src');
    const dst = join(dir, 'json-dst');
    writeSeededFile(src, 20 * MiB + 5, 1);
    copyFileSync(src, dst);
    mutateBlocks(dst, MiB, [2, 3, 17], 9);
    const r = await runCli(['--json', src, dst], { home });
    expect(r.code).toBe(0);
    expectSameBytes(dst, src);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(1);
    const s = JSON.parse(lines[0]!);
    expect(s).toMatchObject({ ok: true, bytesTotal: 20 * MiB + 5, blocksTotal: 21, blocksChanged: 3, bytesSent: 3 * MiB, verified: 'blocks' });
    expect(s.similarity).toBeCloseTo((18 / 21) * 100, 1);
  });

  it('--dry-run prints the similarity index on stdout and leaves the target untouched', async () => {
    const src = join(dir, 'dry-src');
    const dst = join(dir, 'dry-dst');
    writeSeededFile(src, 10 * MiB, 2);
    copyFileSync(src, dst);
    mutateBlocks(dst, MiB, [0], 3);
    const before = sha256File(dst);
    const r = await runCli(['--dry-run', src, dst], { home });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/90\.00% of 10 blocks already match/);
    expect(r.stdout).toMatch(/would send 1 block/);
    expect(sha256File(dst)).toBe(before);
  });

  it('-W, -b 5K, -m sha256 --verify and -c 1 all end byte-identical', async () => {
    const src = join(dir, 'opts-src');
    writeSeededFile(src, 3 * MiB + 77, 4);
    for (const [i, flags] of [['-W'], ['-b', '5K'], ['-m', 'sha256', '--verify'], ['-c', '1'], ['--atomic']].entries()) {
      const dst = join(dir, `opts-dst-${i}`);
      writeSeededFile(dst, 2 * MiB, 5 + i);
      const r = await runCli([...flags, '--json', src, dst], { home });
      expect(r.code, `${flags.join(' ')}: ${r.stderr}`).toBe(0);
      expectSameBytes(dst, src);
    }
  });

  it('prints nothing animated when stderr is not a terminal', async () => {
    const src = join(dir, 'plain-src');
    writeSeededFile(src, MiB, 6);
    const r = await runCli([src, join(dir, 'plain-dst')], { home });
    expect(r.code).toBe(0);
    expect(r.stderr).not.toContain('\r');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/verified/);
  });

  it('a missing source: one error line, exit 3, no stack, nothing created', async () => {
    const dst = join(dir, 'never');
    const r = await runCli([join(dir, 'no-such-file'), dst], { home });
    expectCleanError(r, 3, /does not exist/);
    expect(r.stderr).toMatch(/pdiffcopy: hint: /);
    expect(existsSync(dst)).toBe(false);
  });

  it('--json reports errors as one JSON object with the stable code', async () => {
    const r = await runCli(['--json', '-b', '0', 'a', 'b'], { home });
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout)).toMatchObject({ ok: false, error: { code: 'BAD_BLOCK_SIZE' }, exitCode: 2 });
  });
});

describe('pdiffcopy CLI over SSH', () => {
  let sshd: TestSshd;
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = tempDir('pdc-cli-ssh-'));
    home = join(dir, 'home');
    mkdirSync(home);
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    cleanup?.();
  });

  it('pushes and pulls through an ssh_config alias, byte-identical', async () => {
    const src = join(dir, 'push-src');
    const remote = join(dir, 'remote', 'dir with space', "it's $x.img");
    writeSeededFile(src, 12 * MiB + 3, 10);
    const push = await runCli(['-F', sshd.sshConfig, '--json', src, `${sshd.alias}:${remote}`], { home });
    expect(push.code, push.stderr).toBe(0);
    expectSameBytes(remote, src);
    expect(JSON.parse(push.stdout)).toMatchObject({ ok: true, bytesSent: 12 * MiB + 3 });

    mutateBlocks(remote, MiB, [4, 11], 11);
    const back = join(dir, 'pulled');
    copyFileSync(src, back);
    const pull = await runCli(['-F', sshd.sshConfig, '--json', `${sshd.alias}:${remote}`, back], { home });
    expect(pull.code, pull.stderr).toBe(0);
    expectSameBytes(back, remote);
    expect(JSON.parse(pull.stdout)).toMatchObject({ ok: true, blocksChanged: 2 });
  }, 60_000);

  it('--json and -v say when each start-up step was reached, in the order they happen', async () => {
    const src = join(dir, 'startup-src');
    const remote = join(dir, 'remote', 'startup.img');
    writeSeededFile(src, 3 * MiB + 1, 12);
    const json = await runCli(['-F', sshd.sshConfig, '--json', src, `${sshd.alias}:${remote}`], { home });
    expect(json.code, json.stderr).toBe(0);
    expectSameBytes(remote, src);
    const startup = JSON.parse(json.stdout).startup as Record<string, number>;
    const order = ['modules', 'sshReady', 'tcp', 'kex', 'auth', 'exec', 'agent', 'hello', 'opened'];
    expect(Object.keys(startup)).toEqual(order);
    const times = order.map((k) => startup[k]!);
    expect(times[0]).toBeGreaterThan(0);
    expect(times).toEqual([...times].sort((a, b) => a - b));

    const verbose = await runCli(['-F', sshd.sshConfig, '-v', src, `${sshd.alias}:${remote}`], { home });
    expect(verbose.code, verbose.stderr).toBe(0);
    expect(verbose.stderr).toMatch(/start-up [\d.]+ s of [\d.]+ s .*\(reached at: ssh client [\d.]+, TCP [\d.]+, kex [\d.]+, auth [\d.]+, exec [\d.]+, agent running [\d.]+, hello [\d.]+\)/);
  }, 60_000);

  it('-e runs the agents through the system ssh, and -o reaches it: push and pull byte-identical', async () => {
    const src = join(dir, 'rsh-src');
    const remote = join(dir, 'rsh remote', 'x.img');
    writeSeededFile(src, 5 * MiB + 7, 13);
    // -F goes through pdiffcopy's own flag, the identity through -o: both must reach ssh.
    const rsh = ['-e', 'ssh', '-F', sshd.sshConfig, '-o', `IdentityFile=${sshd.clientKey}`, '--json'];
    const push = await runCli([...rsh, src, `${sshd.alias}:${remote}`], { home });
    expect(push.code, push.stderr).toBe(0);
    expectSameBytes(remote, src);
    mutateBlocks(remote, MiB, [1, 4], 14);
    const back = join(dir, 'rsh-pulled');
    copyFileSync(src, back);
    const pull = await runCli([...rsh, `${sshd.alias}:${remote}`, back], { home });
    expect(pull.code, pull.stderr).toBe(0);
    expectSameBytes(back, remote);
    expect(JSON.parse(pull.stdout)).toMatchObject({ ok: true, blocksChanged: 2 });
  }, 60_000);

  it('refuses an unknown host key (exit 7, fingerprint), then --accept-new-host-key records it', async () => {
    const src = join(dir, 'hk-src');
    writeSeededFile(src, MiB, 12);
    const target = `ssh://${sshd.user}@127.0.0.1:${sshd.port}${join(dir, 'hk-dst')}`;
    const freshHome = join(dir, 'fresh-home');
    mkdirSync(freshHome);
    const args = ['-i', sshd.clientKey, src, target];
    const refused = await runCli(args, { home: freshHome });
    expect(expectCleanError(refused, 7)).toContain(sshd.hostKeyFingerprint);
    expect(existsSync(join(dir, 'hk-dst'))).toBe(false);

    const accepted = await runCli(['--accept-new-host-key', ...args], { home: freshHome });
    expect(accepted.code, accepted.stderr).toBe(0);
    expectSameBytes(join(dir, 'hk-dst'), src);
    // Recorded as OpenSSH would (hashed when the system config says HashKnownHosts): let ssh-keygen find it.
    const found = execFileSync('ssh-keygen', ['-F', `[127.0.0.1]:${sshd.port}`, '-f', join(freshHome, '.ssh', 'known_hosts')], { encoding: 'utf8' });
    expect(found).toContain(sshd.hostKeyPub.split(' ')[1]);

    const again = await runCli(args, { home: freshHome });
    expect(again.code, again.stderr).toBe(0);
    expect(statSync(join(dir, 'hk-dst')).size).toBe(MiB);
  }, 60_000);
});
