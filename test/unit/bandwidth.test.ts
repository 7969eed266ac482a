/** --bwlimit's token bucket on a simulated clock: every 10-second window within 5% of the rate. */
import { describe, expect, it } from 'vitest';
import { Bandwidth, type Clock } from '../../src/hosts/bandwidth.js';
import { PdcError } from '../../src/errors/index.js';

const KiB = 1024;
const MiB = 1024 * KiB;

/** Virtual time: sleeps resolve in order of their deadline, and only when the test advances to them. */
class FakeClock implements Clock {
  t = 0;
  private timers: Array<{ at: number; resolve: () => void; reject: (e: unknown) => void; signal?: AbortSignal }> = [];
  now = () => this.t;
  sleep = (ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(new PdcError('INTERRUPTED', 'interrupted'));
      this.timers.push({ at: this.t + ms, resolve, reject, signal });
      signal?.addEventListener('abort', () => reject(new PdcError('INTERRUPTED', 'interrupted')), { once: true });
    });
  /** Run until `until` ms of virtual time have passed (or nothing waits any more). */
  async run(until: number): Promise<void> {
    for (;;) {
      await new Promise((r) => setImmediate(r));
      if (this.timers.length === 0 || this.t >= until) return;
      this.timers.sort((a, b) => a.at - b.at);
      const next = this.timers.shift()!;
      this.t = Math.max(this.t, next.at);
      next.resolve();
    }
  }
}

describe('--bwlimit token bucket', () => {
  it.each<[string, number, number, number]>([
    ['1 MiB/s, 64 KiB requests, 1 sender', 1 * MiB, 64 * KiB, 1],
    ['10 MiB/s, 1 MiB requests, 4 senders', 10 * MiB, 1 * MiB, 4],
    ['50 MiB/s, 4 MiB runs, 8 senders', 50 * MiB, 4 * MiB, 8],
    ['100 MiB/s, 37 KiB requests (odd sizes), 3 senders', 100 * MiB, 37 * KiB, 3],
  ])('%s: every 10 s window within 5%% of the rate', async (_, rate, request, senders) => {
    const clock = new FakeClock();
    const bw = new Bandwidth(rate, clock);
    const sent: Array<[number, number]> = [];
    const END = 40_000;
    const sender = async () => {
      while (clock.t < END) {
        await bw.take(request);
        sent.push([clock.t, request]);
      }
    };
    const all = Promise.all(Array.from({ length: senders }, sender));
    await clock.run(END + 10_000);
    await all;
    const window = 10_000;
    for (let start = 0; start + window <= END; start += 250) {
      const bytes = sent.filter(([t]) => t >= start && t < start + window).reduce((n, [, b]) => n + b, 0);
      const expected = (rate * window) / 1000;
      expect(bytes / expected, `window from ${start} ms`).toBeLessThanOrEqual(1.05);
      expect(bytes / expected, `window from ${start} ms`).toBeGreaterThanOrEqual(0.95);
    }
  });

  it('bytes given back (a read that brought less) are sent again at once, not lost', async () => {
    const clock = new FakeClock();
    const bw = new Bandwidth(MiB, clock);
    await bw.take(MiB); // a read of 1 MiB asked for ...
    bw.giveBack(MiB - 64 * KiB); // ... that brought 64 KiB (zero runs, -z)
    let done = false;
    void bw.take(64 * KiB).then(() => (done = true));
    await clock.run(0);
    expect(done).toBe(true);
    expect(clock.t).toBe(0);
  });

  it('a wait ends with INTERRUPTED when its signal aborts', async () => {
    const clock = new FakeClock();
    const bw = new Bandwidth(KiB, clock);
    await bw.take(1000 * KiB); // deep in debt: the next take waits about 1000 s
    const ac = new AbortController();
    const waiting = bw.take(KiB, ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ code: 'INTERRUPTED' });
  });
});
