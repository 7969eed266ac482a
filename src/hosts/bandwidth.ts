import { interrupted, type PdcError } from '../errors/pdc-error.js';

export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after ms, or rejects when signal aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

const realClock: Clock = {
  now: () => performance.now(),
  sleep: (ms, signal) =>
    new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(waitInterrupted());
      const t = setTimeout(() => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      }, ms);
      const onAbort = () => {
        clearTimeout(t);
        reject(waitInterrupted());
      };
      signal?.addEventListener('abort', onAbort, { once: true });
    }),
};

function waitInterrupted(): PdcError {
  return interrupted('interrupted while waiting for --bwlimit');
}

/**
 * --bwlimit: one token bucket for all of a run's channels. Tokens (bytes) accrue at
 * `rate` per second up to `burst`; a sender waits while the bucket is in debt, then
 * takes what it sends at once (it may go into debt: a block is not split). So over
 * any window the bytes sent stay within rate x window + burst + one request.
 * A read takes its length before it is asked for (what may come back) and gets back
 * what did not come (zero runs, -z savings) once the answer is in.
 */
export class Bandwidth {
  private tokens: number;
  private last: number;

  constructor(
    /** Bytes per second. */
    readonly rate: number,
    private readonly clock: Clock = realClock,
    /** Most bytes saved up while idle: a tenth of a second's worth. */
    private readonly burst = Math.max(1, rate / 10),
  ) {
    this.tokens = this.burst;
    this.last = clock.now();
  }

  /** Wait until the bucket is out of debt, then count `bytes` as sent. */
  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      this.refill();
      if (this.tokens >= 0) {
        this.tokens -= bytes;
        return;
      }
      await this.clock.sleep(Math.ceil((-this.tokens / this.rate) * 1000), signal);
    }
  }

  /** Bytes taken for a request that did not travel after all. */
  giveBack(bytes: number): void {
    this.refill();
    this.tokens = Math.min(this.burst, this.tokens + bytes);
  }

  private refill(): void {
    const now = this.clock.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.rate);
    this.last = now;
  }
}
