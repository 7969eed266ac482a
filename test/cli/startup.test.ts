/**
 * Start-up over a real sshd when things go wrong while the first agent starts ahead of the
 * other connections and agents: every failure still ends in its code and exit status, and
 * a failure of the extra connections or agents costs parallelism, never the copy.
 */
import { chmodSync, copyFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { descendants, expectCleanError, jsonOf, runCli, waitFor } from '../support/cli-child.js';
import { expectSameBytes, mutateBlocks, sha256File, tempDir, writeSeededFile } from '../support/files.js';
import { makeKey, startSshd, type TestSshd } from '../support/sshd.js';

const MiB = 1 << 20;

describe('start-up failures', () => {
  let sshd: TestSshd;
  let strict: TestSshd;
  let dir: string;
  let cleanup: () => void;
  let home: string;
  beforeAll(async () => {
    sshd = await startSshd();
    // One unauthenticated connection at a time: a second one opened beside the first is dropped.
    strict = await startSshd({ extraConfig: 'MaxStartups 1' });
    ({ dir, cleanup } = tempDir('pdc-startup-'));
    home = join(dir, 'home');
    mkdirSync(home);
  }, 60_000);
  afterAll(async () => {
    await Promise.all([sshd?.stop(), strict?.stop()]);
    cleanup?.();
  });

  /**
   * A remote "node" (for --remote-node): a shell script whose `body(first, node)` decides what to
   * do; `first` is a test true only on its first call (it makes the `used` directory), `node` the real one.
   */
  function nodeWrapper(name: string, body: (first: string, node: string) => string): { path: string; used: string } {
    const bin = join(dir, `${name}-bin`);
    mkdirSync(bin);
    const used = join(bin, 'used');
    const path = join(bin, `node-${name}`);
    writeFileSync(path, `#!/bin/sh\n${body(`mkdir ${JSON.stringify(used)} 2>/dev/null`, JSON.stringify(process.execPath))}\n`);
    chmodSync(path, 0o755);
    return { path, used };
  }

  it('a second connection dropped while the first comes up: the copy completes over the first', async () => {
    const src = join(dir, 'drop-src');
    const remote = join(dir, 'drop-remote');
    writeSeededFile(src, 6 * MiB + 7, 21);
    copyFileSync(src, remote);
    mutateBlocks(remote, MiB, [1, 5], 22);
    const r = await runCli(['-F', strict.sshConfig, '--connections', '2', '-c', '4', '--json', src, `${strict.alias}:${remote}`], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(remote, src);
    expect(jsonOf(r)).toMatchObject({ ok: true, blocksChanged: 2 });
  }, 60_000);

  it('--connection-threads always: the second connection runs in a thread of its own and the copy is exact', async () => {
    const src = join(dir, 'threads-src');
    const remote = join(dir, 'threads-remote');
    writeSeededFile(src, 9 * MiB + 3, 31);
    copyFileSync(src, remote);
    mutateBlocks(remote, MiB, [0, 4, 8], 32);
    // The second connection joins once the first is up: --bwlimit keeps the run going (about 3 s) until it has.
    const r = await runCli(
      ['-F', sshd.sshConfig, '--connections', '2', '-c', '4', '--connection-threads', 'always', '--bwlimit', '1M', '-v', '--json', src, `${sshd.alias}:${remote}`],
      { home },
    );
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(remote, src);
    expect(jsonOf(r)).toMatchObject({ ok: true, blocksChanged: 3 });
    expect(r.stderr).toMatch(/connection 1 to .* on the main thread/);
    expect(r.stderr).toMatch(/connection 2 to .* on its own thread/);
  }, 60_000);

  it('agents after the first failing to start cost parallelism, not the copy', async () => {
    // A remote "node" that runs the real one once, then fails like a missing binary.
    const { path: once, used } = nodeWrapper('once', (first, node) => `if ${first}; then exec ${node} "$@"; fi\nexit 127`);
    const src = join(dir, 'once-src');
    const remote = join(dir, 'once-remote');
    writeSeededFile(src, 5 * MiB + 1, 23);
    const r = await runCli(['-F', sshd.sshConfig, '-c', '4', '-v', '--remote-node', once, src, `${sshd.alias}:${remote}`], { home });
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(used)).toBe(true);
    expectSameBytes(remote, src);
    expect(r.stderr).toMatch(/an agent did not start/);
  }, 60_000);

  it('a run that ends while agents are still starting: exit 0, the target right, nothing left on the remote', async () => {
    // The first agent starts at once; the others take a while to reach node, so they are still
    // starting when this one-block copy is done.
    const { path: slow } = nodeWrapper('slow', (first, node) => `if ! ${first}; then sleep 1; fi\nexec ${node} "$@"`);
    const src = join(dir, 'slow-src');
    const remote = join(dir, 'slow-remote');
    writeSeededFile(src, 4096, 26);
    const r = await runCli(['-F', sshd.sshConfig, '-c', '4', '--json', '--remote-node', slow, src, `${sshd.alias}:${remote}`], { home });
    expect(r.code, r.stderr).toBe(0);
    expectSameBytes(remote, src);
    // Every session's processes end: no agent, wrapper or node is left behind.
    const left = await waitFor(() => descendants(sshd.pid).filter((p) => p.comm !== 'sshd').length === 0, 15_000);
    expect(left, JSON.stringify(descendants(sshd.pid))).toBe(true);
  }, 60_000);

  it('authentication refused: exit 6 with AUTH_FAILED, the target untouched', async () => {
    const stranger = makeKey(dir, 'stranger');
    const src = join(dir, 'auth-src');
    const remote = join(dir, 'auth-remote');
    writeSeededFile(src, MiB, 24);
    writeSeededFile(remote, MiB, 25);
    const before = sha256File(remote);
    const r = await runCli(
      ['-i', stranger.key, '-o', `UserKnownHostsFile=${sshd.knownHosts}`, '-o', 'IdentitiesOnly=yes', '-p', String(sshd.port), '--json', src, `${sshd.user}@${sshd.host}:${remote}`],
      { home },
    );
    expectCleanError(r, EXIT_CODES.connection);
    expect(jsonOf(r).error.code).toBe('AUTH_FAILED');
    expect(sha256File(remote)).toBe(before);
  }, 60_000);
});
