import type { SyncOptions } from '../../src/engine/sync.js';
import type { FileHost } from '../../src/hosts/file-host.js';

/** `host` with some of its methods replaced (the rest still run on `host` itself): faults and probes for engine tests. */
export function hostWith(host: FileHost, over: Partial<FileHost>): FileHost {
  return new Proxy(host, {
    get(t, k) {
      if (k in over) return over[k as keyof FileHost];
      const v = Reflect.get(t, k, t) as unknown;
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

/**
 * `host` recording which blocks of `blockSize` are written to (write, zero, writePieces). A
 * run hashes a target block for comparing before it writes it: a later hash of a block in
 * `written` is the read-back.
 */
export function recordingWrites(host: FileHost, blockSize: number): { host: FileHost; written: Set<number> } {
  const written = new Set<number>();
  const writing = (offset: number, length: number) => {
    for (let b = Math.floor(offset / blockSize); b * blockSize < offset + length; b++) written.add(b);
  };
  const recorded = hostWith(host, {
    write: (offset, buffers) => {
      writing(offset, buffers.reduce((n, b) => n + b.length, 0));
      return host.write(offset, buffers);
    },
    zero: (offset, length, punch) => {
      writing(offset, length);
      return host.zero(offset, length, punch);
    },
    writePieces: (ranges, buffers) => {
      for (let i = 0; i < ranges.length; i += 2) writing(ranges[i]!, ranges[i + 1]!);
      return host.writePieces(ranges, buffers);
    },
  });
  return { host: recorded, written };
}

/** Options for one plain sync of `src` on `source` to `dst` on `target` (delta, xxh64, no events), with `over` on top. */
export function plainSync(source: FileHost, src: string, target: FileHost, dst: string, over: Partial<SyncOptions> = {}): SyncOptions {
  return {
    source: { host: source, path: src },
    target: { host: target, path: dst },
    blockSize: 1 << 20,
    hashMethod: 'xxh64',
    wholeFile: false,
    dryRun: false,
    verify: false,
    concurrency: 2,
    emit: () => undefined,
    ...over,
  };
}
