#!/usr/bin/env node
// XXH64 of many small pieces, one thread, data in memory: GiB/s per grain for
//   - h64Raw per piece (xxhash-wasm, written with writeBigUInt64BE: hashPieces before),
//   - hash-wasm per piece (what Node < 15 agents used before: no BigInt from wasm there),
//   - our batch module (src/hash/xxh64-pieces.wat) over the whole buffer (one call per 4 MiB),
//   - the batch module called once per range of the previous refinement level (what
//     hashPieces does when the differing ranges are not adjacent: 16 KiB ranges at 1 KiB ...),
// and whole 1 MiB blocks (the block hash): h64Raw, hash-wasm, our whole().
// Variants rotate their order each repetition; medians of --runs (5).
//   node bench/pieces-hash.mjs [--mib 64] [--runs 5]
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { build } from 'esbuild';
import { createXXHash64 } from 'hash-wasm';
import xxhash from 'xxhash-wasm';

const { values } = parseArgs({ options: { mib: { type: 'string', default: '64' }, runs: { type: 'string', default: '5' } } });
const MiB = 1 << 20;
const size = Number(values.mib) * MiB;
const runs = Number(values.runs);

// The wrapper is TypeScript: bundle it once into a scratch module.
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(os.tmpdir(), 'pdc-pieces-bench-'));
const bundled = join(scratch, 'xxh64-pieces.mjs');
await build({ entryPoints: [join(root, 'src/hash/xxh64-pieces.ts')], bundle: true, platform: 'node', format: 'esm', outfile: bundled, logLevel: 'silent' });
const { createPiecesDigester } = await import(pathToFileURL(bundled).href);
rmSync(scratch, { recursive: true, force: true });

const { h64Raw } = await xxhash();
const hw = await createXXHash64();
const digester = createPiecesDigester();

const data = Buffer.allocUnsafe(size);
for (let i = 0, x = 0x9e3779b9; i < size; i += 4) data.writeUInt32LE((x = (Math.imul(x ^ (x >>> 15), 0x2c1b3c6d) + 0x6b43a9b5) >>> 0), i);

/** Refinement's levels, and the range size each is hashed over (the previous level's piece). */
const GRAINS = [64, 1024, 16 * 1024, MiB];
const RANGE_OF = { 64: 1024, 1024: 16 * 1024, [16 * 1024]: MiB, [MiB]: MiB };

const perPiece = {
  'h64Raw per piece (before)': (grain, out) => {
    for (let s = 0, k = 0; s < size; s += grain, k++) out.writeBigUInt64BE(h64Raw(data.subarray(s, s + grain)), k * 8);
  },
  'hash-wasm per piece (before, Node < 15)': (grain, out) => {
    for (let s = 0, k = 0; s < size; s += grain, k++) {
      hw.init();
      hw.update(data.subarray(s, s + grain));
      out.set(hw.digest('binary'), k * 8);
    }
  },
  'batch, one call per 4 MiB': (grain, out) => digester.pieces(data, grain, out, 0),
  'batch, one call per range': (grain, out) => {
    const range = RANGE_OF[grain];
    for (let s = 0, k = 0; s < size; s += range) k += digester.pieces(data.subarray(s, s + range), grain, out, k * 8);
  },
};

const whole = {
  'h64Raw': (out) => {
    for (let s = 0, k = 0; s < size; s += MiB, k++) out.writeBigUInt64BE(h64Raw(data.subarray(s, s + MiB)), k * 8);
  },
  'hash-wasm': (out) => {
    for (let s = 0, k = 0; s < size; s += MiB, k++) {
      hw.init();
      hw.update(data.subarray(s, s + MiB));
      out.set(hw.digest('binary'), k * 8);
    }
  },
  'ours, whole()': (out) => {
    for (let s = 0, k = 0; s < size; s += MiB, k++) digester.whole(data.subarray(s, s + MiB), out, k * 8);
  },
};

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const gibs = (seconds) => size / 2 ** 30 / seconds;

/** Median GiB/s of each variant, the variants rotated each run; every variant's digests must agree. */
function measure(variants, argsOf) {
  const names = Object.keys(variants);
  const times = Object.fromEntries(names.map((n) => [n, []]));
  let agreed;
  for (let r = 0; r < runs; r++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + r) % names.length];
      const out = Buffer.alloc(argsOf.outBytes);
      const t0 = process.hrtime.bigint();
      variants[name](...argsOf.args, out);
      times[name].push(Number(process.hrtime.bigint() - t0) / 1e9);
      if (agreed === undefined) agreed = out;
      else if (!out.equals(agreed)) throw new Error(`${name}: digests differ from the other variants'`);
    }
  }
  return Object.fromEntries(names.map((n) => [n, gibs(median(times[n]))]));
}

console.log(`Node ${process.version}, ${os.cpus()[0]?.model}, ${values.mib} MiB in memory, medians of ${runs}, load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
const names = Object.keys(perPiece);
console.log(`\n| grain | ${names.join(' | ')} |`);
console.log(`|---|${names.map(() => '---:').join('|')}|`);
for (const grain of GRAINS) {
  const r = measure(perPiece, { args: [grain], outBytes: Math.ceil(size / grain) * 8 });
  console.log(`| ${grain >= MiB ? `${grain / MiB} MiB` : grain >= 1024 ? `${grain / 1024} KiB` : `${grain} B`} (ranges of ${RANGE_OF[grain] >= MiB ? `${RANGE_OF[grain] / MiB} MiB` : `${RANGE_OF[grain] / 1024} KiB`}) | ${names.map((n) => r[n].toFixed(2)).join(' | ')} |`);
}
const w = measure(whole, { args: [], outBytes: (size / MiB) * 8 });
console.log(`\nWhole 1 MiB blocks, GiB/s: ${Object.entries(w).map(([n, v]) => `${n} ${v.toFixed(2)}`).join(', ')}`);
console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
