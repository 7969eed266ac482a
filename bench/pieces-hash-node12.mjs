#!/usr/bin/env node
// What a Node 12 agent gets (xxhash-wasm cannot return its BigInt there, so before the batch
// module xxh64 came from hash-wasm): GiB/s of 64-byte pieces, hash-wasm per piece against
// the batch module, and of whole 1 MiB blocks, hash-wasm against the module's whole().
// Bundles a small script for Node 12 and runs it under .cache/node12 (scripts/fetch-node12.sh).
//   node bench/pieces-hash-node12.mjs [--node .cache/node12/bin/node]
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { buildSync } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values } = parseArgs({ options: { node: { type: 'string', default: join(root, '.cache/node12/bin/node') } } });

const entry = `
import { createXXHash64 } from 'hash-wasm';
import { createPiecesDigester } from ${JSON.stringify(join(root, 'src/hash/xxh64-pieces.ts'))};
const MiB = 1 << 20;
const med = (x: number[]) => [...x].sort((a, b) => a - b)[x.length >> 1];
const gibs = (bytes: number, t0: bigint) => bytes / 2 ** 30 / (Number(process.hrtime.bigint() - t0) / 1e9);
async function main() {
  const hw = await createXXHash64();
  const d = createPiecesDigester();
  const size = 256 * MiB;
  const data = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i += 4) data.writeUInt32LE((i * 2654435761) >>> 0, i);
  const hwOne = (b: Uint8Array, out: Buffer, at: number) => { hw.init(); hw.update(b); out.set(hw.digest('binary'), at); };
  const blocks: Record<string, number[]> = { 'hash-wasm': [], 'ours, whole()': [] };
  const pieces: Record<string, number[]> = { 'hash-wasm per piece': [], 'ours, batch': [] };
  const small = data.subarray(0, 64 * MiB);
  for (let r = 0; r < 5; r++) {
    const order = r % 2 ? [1, 0] : [0, 1];
    for (const i of order) {
      const out = Buffer.alloc(size / MiB * 8);
      const t0 = process.hrtime.bigint();
      for (let s = 0, k = 0; s < size; s += MiB, k++) (i ? (b: Uint8Array, o: Buffer, a: number) => d.whole(b, o, a) : hwOne)(data.subarray(s, s + MiB), out, k * 8);
      blocks[Object.keys(blocks)[i]!]!.push(gibs(size, t0));
    }
    for (const i of order) {
      const out = Buffer.alloc(small.length / 8);
      const t0 = process.hrtime.bigint();
      if (i) d.pieces(small, 64, out, 0);
      else for (let s = 0, k = 0; s < small.length; s += 64, k++) hwOne(small.subarray(s, s + 64), out, k * 8);
      pieces[Object.keys(pieces)[i]!]!.push(gibs(small.length, t0));
    }
  }
  const show = (o: Record<string, number[]>) => Object.entries(o).map(([n, v]) => n + ' ' + med(v).toFixed(2)).join(', ');
  console.log('Node ' + process.version + ', medians of 5, GiB/s. 64 B pieces (64 MiB): ' + show(pieces) + '. 1 MiB blocks (256 MiB): ' + show(blocks));
}
main();
`;
const dir = mkdtempSync(join(os.tmpdir(), 'pdc-pieces12-'));
try {
  writeFileSync(join(dir, 'entry.ts'), entry);
  buildSync({ entryPoints: [join(dir, 'entry.ts')], bundle: true, platform: 'node', format: 'cjs', target: 'node12', outfile: join(dir, 'b.cjs'), nodePaths: [join(root, 'node_modules')], logLevel: 'warning' });
  console.log(`load average before: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
  execFileSync(values.node, [join(dir, 'b.cjs')], { stdio: 'inherit' });
  console.log(`load average after: ${os.loadavg().map((l) => l.toFixed(2)).join(' ')}`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
