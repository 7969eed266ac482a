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
