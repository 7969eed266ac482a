/**
 * -z and --bwlimit as users run them: the built CLI, real files, a real sshd for push and
 * pull. Every sync checks the target byte for byte; --json says what crossed the wire.
 */
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectCleanError, jsonOf, runCli } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, seededBytes, tempDir, textBytes, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';

const MiB = 1 << 20;

describe('-z and --bwlimit, local', () => {
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(() => {
    ({ dir, cleanup } = tempDir('pdc-cli-z-'));
    home = join(dir, 'home');
    mkdirSync(home);
  });
  afterAll(() => cleanup?.());

  it('-z: byte-identical, fewer bytes sent than data, and the summary line says so', async () => {
    const src = join(dir, 'z-src');
    const dst = join(dir, 'z-dst');
    writeFileSync(src, textBytes(6 * MiB + 11, 1));
    const json = await runCli(['-z', '--json', src, dst], { home });
    expect(json.code, json.stderr).toBe(0);
    expectSameBytes(dst, src);
    const s = jsonOf(json);
    expect(s.bytesData).toBe(6 * MiB + 11);
    expect(s.bytesSent).toBeLessThan(s.bytesData / 2);
    writeSeededFile(dst, 6 * MiB + 11, 2);
    const plain = await runCli(['--compress-level', '5', src, dst], { home });
    expect(plain.code, plain.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(plain.stderr).toMatch(/sent [\d.]+ [KM]iB \(6\.00 MiB of data compressed [\d.]+:1\)/);
  });

  it('-z on random data: sent raw, bytesSent equals bytesData', async () => {
    const src = join(dir, 'zr-src');
    const dst = join(dir, 'zr-dst');
    writeSeededFile(src, 5 * MiB + 3, 3);
    const r = await runCli(['-z', '--json', src, dst], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(jsonOf(r)).toMatchObject({ bytesSent: 5 * MiB + 3, bytesData: 5 * MiB + 3 });
  });

  it('--bwlimit: byte-identical, the data all sent', async () => {
    const src = join(dir, 'bw-src');
    const dst = join(dir, 'bw-dst');
    writeSeededFile(src, 3 * MiB, 4);
    writeSeededFile(dst, 3 * MiB, 5);
    const r = await runCli(['--bwlimit', '8M', '-c', '3', '--json', src, dst], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(dst, src);
    expect(jsonOf(r)).toMatchObject({ bytesSent: 3 * MiB, bytesData: 3 * MiB });
  });

  it.each([
    [['--bwlimit', 'fast'], /--bwlimit "fast"/],
    [['--bwlimit', '100'], /at least 1K/],
    [['--compress-level', '12'], /--compress-level must be a whole number from 0 to 11/],
  ])('%j is a usage error (exit 2) naming the fix, nothing written', async (flags, message) => {
    const dst = join(dir, `bad-${flags.join('')}`);
    const r = await runCli([...flags, join(dir, 'z-src'), dst], { home });
    expect(expectCleanError(r, 2)).toMatch(message);
  });
});

describe('-z over SSH', () => {
  let sshd: TestSshd;
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(async () => {
    sshd = await startSshd();
    ({ dir, cleanup } = tempDir('pdc-cli-z-ssh-'));
    home = join(dir, 'home');
    mkdirSync(home);
  }, 60_000);
  afterAll(async () => {
    await sshd?.stop();
    cleanup?.();
  });

  it('push and pull with -z and --bwlimit, changed blocks of text and of random bytes, byte-identical', async () => {
    const src = join(dir, 'src');
    const data = Buffer.concat([textBytes(8 * MiB, 6), seededBytes(7, 2 * MiB), textBytes(MiB + 5, 8)]);
    writeFileSync(src, data);
    const remote = join(dir, 'remote.bin');
    writeSeededFile(remote, data.length, 9);
    const push = await runCli(['-F', sshd.sshConfig, '-z', '--bwlimit', '64M', '--json', src, `${sshd.alias}:${remote}`], { home });
    expect(push.code, push.stderr).toBe(0);
    expectSameBytes(remote, src);
    const p = jsonOf(push);
    expect(p.bytesData).toBe(data.length);
    expect(p.bytesSent).toBeLessThan(p.bytesData * 0.6);
    expect(p.bytesSent).toBeGreaterThan(2 * MiB); // the random part went raw

    const back = join(dir, 'back.bin');
    copyFileSync(src, back);
    mutateBlocks(back, MiB, [0, 4, 8, 10], 10);
    const pull = await runCli(['-F', sshd.sshConfig, '-z', '--json', `${sshd.alias}:${remote}`, back], { home });
    expect(pull.code, pull.stderr).toBe(0);
    expectSameBytes(back, src);
    const q = jsonOf(pull);
    expect(q.blocksChanged).toBe(4);
    expect(q.bytesData).toBe(4 * MiB);
    // Block 8 is random (sent raw), the other three text (packed).
    expect(q.bytesSent).toBeGreaterThan(MiB);
    expect(q.bytesSent).toBeLessThan(q.bytesData * 0.75);
  }, 60_000);
});
