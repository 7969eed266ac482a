import { Worker } from 'node:worker_threads';
import { interrupted, PdcError } from '../errors/pdc-error.js';
import type { WorkerRelease, WorkerRequest, WorkerResponse } from '../hash/worker-messages.js';
import { builtFilePath } from '../transport/agent-bundle.js';

/** How long close() waits for a worker to close its kept file (one stuck in a read is ended anyway). */
const RELEASE_WAIT_MS = 1000;

type Job = { req: WorkerRequest; resolve: (b: Buffer) => void; reject: (e: unknown) => void };
type DistributiveOmit<T, K extends keyof T> = T extends unknown ? Omit<T, K> : never;

/**
 * A small pool of hash worker threads. Each worker takes one job at a time; jobs
 * queue in order. Workers start on first use and end on close().
 */
export class HashPool {
  private readonly idle: Worker[] = [];
  private readonly all: Worker[] = [];
  private readonly queue: Job[] = [];
  private readonly running = new Map<Worker, Job>();
  /** Workers asked to close their kept file, and what to call when they have. */
  private readonly releasing = new Map<Worker, () => void>();
  private nextId = 1;
  private closed = false;

  constructor(readonly size: number) {}

  run(req: DistributiveOmit<WorkerRequest, 'id'>): Promise<Buffer> {
    if (this.closed) return Promise.reject(interrupted('hash pool closed'));
    return new Promise((resolve, reject) => {
      this.queue.push({ req: { ...req, id: this.nextId++ } as WorkerRequest, resolve, reject });
      this.pump();
    });
  }

  /** Start the workers now, so their start-up overlaps with connecting the other side. */
  warm(): void {
    while (!this.closed && this.all.length < this.size) this.idle.push(this.spawn());
  }

  /** Reject what is queued; each worker closes the file it keeps open (at most RELEASE_WAIT_MS), then ends. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(interrupted('hash pool closed'));
    await Promise.all(this.all.map((w) => this.release(w)));
    await Promise.all(this.all.map((w) => w.terminate()));
    this.all.length = 0;
    this.idle.length = 0;
  }

  private release(w: Worker): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, RELEASE_WAIT_MS);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.releasing.set(w, done);
      const msg: WorkerRelease = { kind: 'release' };
      w.postMessage(msg);
    });
  }

  private pump(): void {
    while (this.queue.length > 0) {
      const worker = this.idle.pop() ?? (this.all.length < this.size ? this.spawn() : undefined);
      if (!worker) return;
      const job = this.queue.shift()!;
      this.running.set(worker, job);
      worker.postMessage(job.req);
    }
  }

  private spawn(): Worker {
    const w = new Worker(builtFilePath('hash-worker.js'));
    w.unref();
    w.on('message', (msg: WorkerResponse) => {
      if (msg.released) {
        this.releasing.get(w)?.();
        this.releasing.delete(w);
        return;
      }
      const job = this.running.get(w);
      this.running.delete(w);
      if (!this.closed) this.idle.push(w);
      if (job) {
        if (msg.error) job.reject(PdcError.fromWire(msg.error));
        else job.resolve(Buffer.from(msg.result!.buffer, msg.result!.byteOffset, msg.result!.byteLength));
      }
      this.pump();
    });
    // A worker that ended has nothing left to close.
    w.on('exit', () => this.releasing.get(w)?.());
    w.on('error', (e) => {
      const job = this.running.get(w);
      this.running.delete(w);
      job?.reject(new PdcError('INTERNAL', `hash worker failed: ${e.message}`, { cause: e }));
    });
    this.all.push(w);
    return w;
  }
}
