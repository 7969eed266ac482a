/**
 * Admits tasks while the bytes they hold stay within a budget, in the order they asked; a
 * task larger than the whole budget runs alone. Bounding block data in flight by bytes, not
 * by a count of runs, keeps as many small runs moving as large ones would hold.
 */
export class ByteBudget {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; start: () => void }> = [];

  constructor(readonly limit: number) {}

  async run<T>(bytes: number, task: () => Promise<T>): Promise<T> {
    await this.admit(bytes);
    try {
      return await task();
    } finally {
      this.used -= bytes;
      this.startWaiting();
    }
  }

  /** Bytes held by running tasks (tests look). */
  get inUse(): number {
    return this.used;
  }

  private fits(bytes: number): boolean {
    return this.used === 0 || this.used + bytes <= this.limit;
  }

  private admit(bytes: number): Promise<void> {
    if (this.waiting.length === 0 && this.fits(bytes)) {
      this.used += bytes;
      return Promise.resolve();
    }
    return new Promise((resolve) =>
      this.waiting.push({
        bytes,
        start: () => {
          this.used += bytes;
          resolve();
        },
      }),
    );
  }

  private startWaiting(): void {
    while (this.waiting.length > 0 && this.fits(this.waiting[0]!.bytes)) this.waiting.shift()!.start();
  }
}
