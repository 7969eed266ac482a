import { describe, expect, it } from 'vitest';
import { startupText } from '../../src/cli/sync-once.js';
import { Profiler, profileText } from '../../src/engine/profile.js';

describe('profileText', () => {
  it('names every step that took time, the waits during the transfer and the chunks', () => {
    const text = profileText({
      seconds: { setup: 0.2, transfer: 3.456, fsync: 0.1, verify: 0.5, digest: 0, commit: 0.01 },
      busy: { sourceHash: 1.2, targetHash: 0.8, transfer: 3.3, verify: 0.4 },
      chunks: { compared: 9, inPieces: 4, streamed: 119 },
    });
    expect(text).toBe(
      'time (s): setup 0.20, transfer 3.46, fsync 0.10, verify 0.50, commit 0.01; during transfer: source hashing 1.20, ' +
        'target hashing 0.80, block transfers 3.30, read-back 0.40; chunks compared 9 (in pieces 4), streamed 119',
    );
  });
});

describe('Profiler', () => {
  it('counts overlapping requests of one kind once, and laps add up to the elapsed time', async () => {
    const p = new Profiler();
    const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const t0 = performance.now();
    await Promise.all([p.time('transfer', () => wait(30)), p.time('transfer', () => wait(30))]);
    p.lap('transfer');
    const elapsed = (performance.now() - t0) / 1000;
    const { busy, seconds } = p.profile;
    expect(busy.transfer).toBeLessThanOrEqual(elapsed + 1e-3); // once, not twice
    expect(busy.transfer).toBeGreaterThan(0);
    expect(seconds.setup + seconds.transfer).toBeGreaterThanOrEqual(busy.transfer - 1e-3);
  });
});

describe('startupText', () => {
  it('says what start-up cost and its share of the run', () => {
    expect(startupText({ modules: 0.8, opened: 2.1 }, 4.2)).toBe(
      'start-up 2.10 s of 4.20 s (50%): Node and modules 0.80 s, connecting and starting agents 1.30 s',
    );
  });
  it('lists the steps reached, in start-up order', () => {
    expect(startupText({ modules: 0.2, hello: 0.61, tcp: 0.31, sshReady: 0.28, kex: 0.35, auth: 0.4, exec: 0.42, agent: 0.6, opened: 0.62 }, 0.7)).toBe(
      'start-up 0.62 s of 0.70 s (89%): Node and modules 0.20 s, connecting and starting agents 0.42 s ' +
        '(reached at: ssh client 0.28, TCP 0.31, kex 0.35, auth 0.40, exec 0.42, agent running 0.60, hello 0.61)',
    );
  });
});
