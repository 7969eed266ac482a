/**
 * Fault matrix, connection side: against a real sshd, a client killed with
 * SIGKILL, a remote agent killed, the connection dropped and a peer that stops
 * answering. Every failure must be a clean exit 6 within a bounded time (never a
 * hang, never success) and leave no agent behind; after a kill or a drop, a rerun
 * must repair the target while sending only what was still missing.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { EXIT_CODES } from '../../src/errors/codes.js';
import { lockPathFor } from '../../src/fileops/lock.js';
import {
  agentPids,
  type CliResult,
  expectCleanError,
  jsonOf,
  killAllClis,
  runCli,
  signal,
  spawnCli,
  sshdSessionPids,
} from '../support/cli-child.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { allocated, expectAllGone, OutcomeTable, waitForAgents, waitForProgress } from './fault-helpers.js';

const MiB = 1024 * 1024;
/** Big enough that a push over the test sshd lasts several seconds on 2 cores. */
const SIZE = 64 * MiB + 12345;
/** Data the engine may have in flight (and so partly written) when a run dies. */
const IN_FLIGHT_SLACK = 16 * MiB;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let home: string;
let src: string;
const table = new OutcomeTable('connection faults');
/** Processes a test stopped or started: resumed and killed in afterEach whatever happened. */
let stopped: number[] = [];

beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-faults-conn-'));
  home = join(dir, 'home');
  mkdirSync(home);
  src = join(dir, 'source.bin');
  writeSeededFile(src, SIZE, 42);
});

afterEach(() => {
  for (const pid of stopped) signal(pid, 'SIGCONT');
  stopped = [];
  killAllClis();
});

afterAll(async () => {
  killAllClis();
  for (const pid of agentPids(sshd?.pid ?? -1)) signal(pid, 'SIGKILL');
  await sshd?.stop();
  cleanup?.();
  table.print();
});

const ssh = () => ['-F', sshd.sshConfig];
const remote = (path: string) => `${sshd.alias}:${path}`;

/** The rerun after a fault: exit 0, byte-identical, and it sent less than the whole file. */
async function expectRepair(label: string, args: string[], target: string, sentAtMost: number): Promise<CliResult> {
  const r = await runCli([...args, '--json'], { home, timeoutMs: 90_000 });
  table.add(`${label}: rerun`, r);
  expect(r.code, r.stderr).toBe(0);
  const j = jsonOf(r);
  expect(j.ok).toBe(true);
  expectSameBytes(target, src);
  expect(j.bytesSent, 'the rerun sends only what is still different').toBeLessThan(SIZE);
  expect(j.bytesSent).toBeLessThanOrEqual(sentAtMost);
  return r;
}

describe('client killed with SIGKILL mid-transfer', () => {
  it('push: the remote agents go away, the rerun repairs and sends only the rest', async () => {
    const dst = join(dir, 'kill-client-push.bin');
    const args = [...ssh(), src, remote(dst)];
    const run = spawnCli(args, { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 2, 60_000, run);
    const agents = agentPids(sshd.pid);
    expect(agents.length).toBeGreaterThan(0);
    const done = allocated(dst);
    signal(run.pid, 'SIGKILL');
    const r = await run.done;
    table.add('kill -9 client (push)', r);
    expect(r.signal).toBe('SIGKILL');
    // sshd sees the TCP connection close, closes the channels, the agents read EOF and exit.
    const goneMs = await expectAllGone(agents, 10_000);
    console.log(`kill -9 client (push): ${agents.length} agents gone ${goneMs} ms after the kill`);
    await expectRepair('kill -9 client (push)', args, dst, SIZE - done + IN_FLIGHT_SLACK);
  }, 150_000);

  it('pull: the stale lock of the dead client is taken over, the rerun repairs', async () => {
    const dst = join(dir, 'kill-client-pull.bin');
    const args = [...ssh(), remote(src), dst];
    const run = spawnCli(args, { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 2, 60_000, run);
    const agents = agentPids(sshd.pid);
    const done = allocated(dst);
    signal(run.pid, 'SIGKILL');
    const r = await run.done;
    table.add('kill -9 client (pull)', r);
    expect(r.signal).toBe('SIGKILL');
    await expectAllGone(agents, 10_000);
    // The local target's lock (src/fileops/lock.ts) is left behind, naming the dead client.
    const lock = lockPathFor(dst);
    expect(readFileSync(lock, 'utf8')).toMatch(new RegExp(`^${run.pid} `));
    await expectRepair('kill -9 client (pull)', args, dst, SIZE - done + IN_FLIGHT_SLACK);
  }, 150_000);
});

describe('remote side fails mid-transfer', () => {
  it('one remote agent killed with SIGKILL: exit 6 promptly, no agent left, rerun repairs', async () => {
    const dst = join(dir, 'kill-agent.bin');
    const args = [...ssh(), src, remote(dst)];
    const run = spawnCli(args, { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 3, 60_000, run);
    const agents = agentPids(sshd.pid);
    expect(agents.length).toBeGreaterThan(0);
    const done = allocated(dst);
    const t0 = Date.now();
    signal(agents[agents.length - 1]!, 'SIGKILL');
    const r = await run.done;
    const ms = Date.now() - t0;
    table.add('kill -9 one remote agent', r, ms);
    expectCleanError(r, EXIT_CODES.connection, /agent/);
    expect(ms, 'time from kill to exit').toBeLessThan(15_000);
    await expectAllGone(agents, 10_000);
    await expectRepair('kill -9 one remote agent', args, dst, SIZE - done + IN_FLIGHT_SLACK);
  }, 150_000);

  it('connection dropped (sshd session processes killed): exit 6 promptly, rerun repairs', async () => {
    const dst = join(dir, 'drop-conn.bin');
    const args = [...ssh(), src, remote(dst)];
    const run = spawnCli(args, { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 3, 60_000, run);
    const agents = agentPids(sshd.pid);
    const sessions = sshdSessionPids(sshd.pid);
    expect(sessions.length).toBeGreaterThan(0);
    const done = allocated(dst);
    const t0 = Date.now();
    for (const pid of sessions) signal(pid, 'SIGKILL');
    const r = await run.done;
    const ms = Date.now() - t0;
    table.add('connection dropped (kill -9 sshd sessions)', r, ms);
    expectCleanError(r, EXIT_CODES.connection);
    expect(ms, 'time from drop to exit').toBeLessThan(15_000);
    await expectAllGone(agents, 10_000);
    await expectRepair('connection dropped', args, dst, SIZE - done + IN_FLIGHT_SLACK);
  }, 150_000);
});

describe('a peer that stops answering is detected (--timeout 3)', () => {
  it('remote agents stopped (SIGSTOP): exit 6 IDLE_TIMEOUT within a bounded time', async () => {
    const dst = join(dir, 'stall-agents.bin');
    const args = [...ssh(), '--timeout', '3', src, remote(dst)];
    const run = spawnCli([...args, '--json'], { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 4, 60_000, run);
    const agents = await waitForAgents(sshd.pid, 1);
    const t0 = Date.now();
    for (const pid of agents) {
      stopped.push(pid);
      signal(pid, 'SIGSTOP');
    }
    const r = await run.done;
    const ms = Date.now() - t0;
    table.add('remote agents SIGSTOPped, --timeout 3', r, ms);
    expectCleanError(r, EXIT_CODES.connection);
    expect(['IDLE_TIMEOUT', 'CONNECTION_LOST']).toContain(jsonOf(r).error.code);
    expect(ms, 'time from stall to exit').toBeGreaterThanOrEqual(2_500);
    expect(ms, 'time from stall to exit').toBeLessThan(20_000);
    // Resumed, they find their channels closed and exit.
    for (const pid of agents) signal(pid, 'SIGCONT');
    stopped = [];
    await expectAllGone(agents, 10_000);
  }, 150_000);

  it('sshd session stopped (SIGSTOP, like a network black hole): exit 6 within a bounded time', async () => {
    const dst = join(dir, 'stall-sshd.bin');
    const args = [...ssh(), '--timeout', '3', src, remote(dst)];
    const run = spawnCli([...args, '--json'], { home, timeoutMs: 90_000 });
    await waitForProgress(dst, SIZE / 4, 60_000, run);
    const agents = agentPids(sshd.pid);
    const sessions = sshdSessionPids(sshd.pid);
    expect(sessions.length).toBeGreaterThan(0);
    const t0 = Date.now();
    for (const pid of sessions) {
      stopped.push(pid);
      signal(pid, 'SIGSTOP');
    }
    const r = await run.done;
    const ms = Date.now() - t0;
    table.add('sshd sessions SIGSTOPped, --timeout 3', r, ms);
    expectCleanError(r, EXIT_CODES.connection);
    expect(['IDLE_TIMEOUT', 'CONNECTION_LOST']).toContain(jsonOf(r).error.code);
    expect(ms, 'time from stall to exit').toBeLessThan(20_000);
    for (const pid of sessions) signal(pid, 'SIGCONT');
    stopped = [];
    await expectAllGone(agents, 15_000);
  }, 150_000);
});
