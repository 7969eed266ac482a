// Reading holes vs data, and the cost of finding zeros: node bench/sparse-read.mjs [DIR]
// A 4 GiB file with 256 MiB allocated (16 extents of 16 MiB); plain fs.readSync, 4 MiB reads, medians of 5.
// The first read of a hole allocates and zeroes page-cache pages (the cache grows by the hole's size):
// the first of the 5 hole runs shows that cost, the later ones read those cached zero pages.
import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { randomFillSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildSync } from 'esbuild';

// The zero check the agent uses, bundled from its source for this run.
const zeroRuns = join(tmpdir(), `pdc-zero-runs-${process.pid}.mjs`);
buildSync({ entryPoints: [fileURLToPath(new URL('../src/fileops/zero-runs.ts', import.meta.url))], format: 'esm', outfile: zeroRuns, logLevel: 'warning' });
const { isAllZero } = await import(pathToFileURL(zeroRuns).href);
rmSync(zeroRuns);

const dir = process.argv[2] ?? '/tmp';
const path = join(dir, `pdc-sparse-bench-${process.pid}.img`);
const GiB = 1 << 30, MiB = 1 << 20;
const SIZE = 4 * GiB, EXT = 16 * MiB, STRIDE = SIZE / 16;
const fd = openSync(path, 'w+');
const buf = Buffer.allocUnsafe(4 * MiB);
try {
  randomFillSync(buf);
  for (let e = 0; e < 16; e++) for (let o = 0; o < EXT; o += buf.length) writeSync(fd, buf, 0, buf.length, e * STRIDE + o);
  ftruncateSync(fd, SIZE);
  console.log(`file: ${SIZE / GiB} GiB, allocated ${(statSync(path).blocks * 512) / MiB} MiB`);
  const time = (f) => { const t = process.hrtime.bigint(); const n = f(); return { n, s: Number(process.hrtime.bigint() - t) / 1e9 }; };
  const median = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const rate = (label, f) => {
    const rs = [];
    for (let i = 0; i < 5; i++) { const { n, s } = time(f); rs.push(n / GiB / s); }
    console.log(`${label}: median ${median(rs).toFixed(2)} GiB/s (runs ${rs.map((r) => r.toFixed(2)).join(', ')})`);
  };
  const readRange = (from, len) => () => { let n = 0; for (let p = from; p < from + len; p += buf.length) n += readSync(fd, buf, 0, buf.length, p); return n; };
  // data: the 16 extents (warm in the page cache after writing); holes: 1 GiB between extents
  rate('read data (256 MiB, page cache warm)', () => { let n = 0; for (let e = 0; e < 16; e++) n += readRange(e * STRIDE, EXT)(); return n; });
  rate('read holes (1 GiB)', () => { let n = 0; for (let e = 0; e < 4; e++) n += readRange(e * STRIDE + EXT, STRIDE - EXT)(); return n; });
  const zeros = Buffer.alloc(4 * MiB);
  rate('isAllZero on zeros (1 GiB, 4 MiB buffers)', () => { let n = 0; for (let i = 0; i < 256; i++) { if (isAllZero(zeros)) n += zeros.length; } return n; });
  randomFillSync(buf); // the hole reads left zeros in it
  rate('isAllZero on data (1 GiB, 1 MiB blocks, exits at the first byte)', () => { let n = 0; for (let i = 0; i < 1024; i++) { isAllZero(buf.subarray(0, MiB)); n += MiB; } return n; });
} finally {
  closeSync(fd);
  rmSync(path, { force: true });
}
