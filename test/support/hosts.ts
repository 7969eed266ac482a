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
