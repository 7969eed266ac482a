#!/usr/bin/env node
// Codec candidates for -z, measured on this box: compress and decompress MB/s (of raw bytes)
// and ratio on database-like pages (bench/lib/data-db.mjs) and on random bytes, 1 MiB units.
// node:zlib codecs run async (libuv threadpool, 4 threads), with zlib's default 16 KiB output
// chunks (each a trip to the pool), 64 KiB ones (what -z packs with; it unpacks into one chunk
// per unit) or one output chunk as large as the unit. Here every buffer is soon reused, so a
// large chunk's fresh pages (what made it lose in a real -z push) do not show; a pure-JS or
// wasm codec given by --lz4js DIR / --zstdwasm DIR (a package in the node_modules of a scratch
// install: lz4js, @bokuweb/zstd-wasm) runs on the calling thread.
//   node bench/codecs.mjs [--mib 64] [--lz4js /tmp/codecs/node_modules/lz4js]
//     [--zstdwasm /tmp/codecs/node_modules/@bokuweb/zstd-wasm]
import crypto from 'node:crypto';
import os from 'node:os';
import { createRequire } from 'node:module';
import { parseArgs, promisify } from 'node:util';
import zlib from 'node:zlib';
import { fillDb } from './lib/data-db.mjs';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, lz4js: { type: 'string' }, zstdwasm: { type: 'string' }, runs: { type: 'string', default: '3' } } });
const UNIT = 1 << 20;
const units = Number(values.mib);
const runs = Number(values.runs);
const db = Array.from({ length: units }, (_, i) => fillDb(Buffer.allocUnsafe(UNIT), UNIT, i * UNIT, 1));
const rnd = Array.from({ length: units }, () => crypto.randomBytes(UNIT));

const p = (f) => promisify(f);
/** brotli at `quality` on 1 MiB units; `co`/`dO`: more compress/decompress options (output chunk sizes). */
const brotli = (quality, co = {}, dO = {}) => ({
  c: p(zlib.brotliCompress),
  d: p(zlib.brotliDecompress),
  co: { ...co, params: { [zlib.constants.BROTLI_PARAM_QUALITY]: quality, [zlib.constants.BROTLI_PARAM_SIZE_HINT]: UNIT } },
  do: dO,
});
const codecs = {
  'deflateRaw 1 (async)': { c: p(zlib.deflateRaw), d: p(zlib.inflateRaw), co: { level: 1 } },
  'deflateRaw 6 (async)': { c: p(zlib.deflateRaw), d: p(zlib.inflateRaw), co: { level: 6 } },
  'brotli q0 (async)': brotli(0),
  'brotli q0 (async, 64 KiB output chunks: pdiffcopy -z)': brotli(0, { chunkSize: 64 * 1024 }, { chunkSize: UNIT }),
  'brotli q0 (async, one output chunk)': brotli(0, { chunkSize: UNIT }, { chunkSize: UNIT }),
  'brotli q1 (async)': brotli(1),
};
if (values.lz4js) {
  const lz4 = createRequire(import.meta.url)(values.lz4js);
  codecs['lz4js (pure JS, main thread)'] = {
    c: async (b) => Buffer.from(lz4.compress(b)),
    d: async (b) => Buffer.from(lz4.decompress(b, UNIT)),
    co: {},
  };
}

if (values.zstdwasm) {
  const zstd = createRequire(import.meta.url)(values.zstdwasm);
  await zstd.init();
  for (const level of [-1, 1]) {
    codecs[`zstd ${level} (wasm, main thread)`] = {
      c: async (b) => Buffer.from(zstd.compress(b, level)),
      d: async (b) => Buffer.from(zstd.decompress(b)),
      co: {},
    };
  }
}

/** Wall seconds and CPU seconds (user+system of the whole process, threadpool included). */
async function time(fn, bufs, parallel) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const out = new Array(bufs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < bufs.length) {
        const i = next++;
        out[i] = await fn(bufs[i]);
      }
    }),
  );
  const c = process.cpuUsage(c0);
  return { s: Number(process.hrtime.bigint() - t0) / 1e9, cpu: (c.user + c.system) / 1e6, out };
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [name, k] of Object.entries(codecs)) {
  for (const [dataName, bufs] of [['db pages', db], ['random', rnd]]) {
    for (const parallel of [1, 2, 4]) {
      const cs = [], ds = [], ccpu = [], dcpu = [];
      let ratio = 0;
      for (let r = 0; r < runs; r++) {
        const c = await time((b) => k.c(b, k.co), bufs, parallel);
        const d = await time((b) => k.d(b, k.do ?? {}), c.out, parallel);
        for (let i = 0; i < Math.min(3, bufs.length); i++) if (!d.out[i].equals(bufs[i])) throw new Error(`${name}: round trip differs`);
        ratio = (units * UNIT) / c.out.reduce((s, b) => s + b.length, 0);
        cs.push(c.s);
        ds.push(d.s);
        ccpu.push(c.cpu);
        dcpu.push(d.cpu);
      }
      const mb = (units * UNIT) / 1e6;
      rows.push(
        `| ${name} | ${dataName} | ${parallel} | ${(mb / median(cs)).toFixed(0)} | ${(mb / median(ccpu)).toFixed(0)} | ${(mb / median(ds)).toFixed(0)} | ${(mb / median(dcpu)).toFixed(0)} | ${ratio.toFixed(2)} |`,
      );
      process.stderr.write(`${rows.at(-1)}\n`);
    }
  }
}
console.log(
  `| codec | data | units in flight | compress MB/s (wall) | compress MB per CPU-s | decompress MB/s (wall) | decompress MB per CPU-s | ratio |\n|---|---|---:|---:|---:|---:|---:|---:|\n${rows.join('\n')}`,
);
console.log(`\n${os.cpus().length} vCPU ${os.cpus()[0].model}, node ${process.version}, ${units} MiB, medians of ${runs}, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`);
