/**
 * The last few read windows of one file, so that refinement's later rounds over a run
 * (smaller pieces, then the differing pieces' bytes) come from memory instead of
 * reading the same megabytes from the page cache again; on these machines a read from
 * the page cache costs several times what hashing the bytes does.
 *
 * Rules the users of this cache keep:
 * - A window's buffer is used only synchronously right after `find` or `keep`: any
 *   await may evict it and hand its buffer to another read.
 * - Every write through the same file service calls `invalidate` for its range first, and a
 *   run done with refinement (read to be sent, or its pieces read) drops its windows.
 * Writers outside this process (another agent, another program) are not seen: a stale
 * window can only make refinement judge pieces wrongly, and the read-back after the
 * write re-reads every block from the file and fails the run if a byte is wrong.
 */
export interface Window {
  start: number;
  /** Bytes the read asked for: the window answers for [start, start+asked). */
  asked: number;
  /** Bytes it got (fewer than asked only where the file ended). */
  length: number;
  buf: Buffer;
}

export class WindowCache {
  /** Least recently used first. */
  private readonly windows: Window[] = [];

  constructor(private readonly capacity: number) {}

  /** The window whose read covered [offset, offset+length), if one is held. */
  find(offset: number, length: number): Window | undefined {
    for (let i = this.windows.length - 1; i >= 0; i--) {
      const w = this.windows[i]!;
      if (offset >= w.start && offset + length <= w.start + w.asked) {
        this.windows.splice(i, 1);
        this.windows.push(w);
        return w;
      }
    }
    return undefined;
  }

  /** Hold a window just read; returns the buffers it displaces (for reuse), least recent first. */
  keep(w: Window): Buffer[] {
    this.windows.push(w);
    const out: Buffer[] = [];
    while (this.windows.length > this.capacity) out.push(this.windows.shift()!.buf);
    return out;
  }

  /** Drop every window overlapping [offset, offset+length) (Infinity: to the end); returns their buffers. */
  invalidate(offset: number, length: number): Buffer[] {
    const out: Buffer[] = [];
    for (let i = this.windows.length - 1; i >= 0; i--) {
      const w = this.windows[i]!;
      if (w.start < offset + length && offset < w.start + w.asked) out.push(...this.windows.splice(i, 1).map((x) => x.buf));
    }
    return out;
  }

  /** Drop everything (the file is closed); returns the buffers. */
  clear(): Buffer[] {
    return this.windows.splice(0).map((w) => w.buf);
  }
}
