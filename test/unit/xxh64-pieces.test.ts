/**
 * Our XXH64 WebAssembly module (src/hash/xxh64-pieces.wat) against xxhash-wasm's h64Raw,
 * the implementation whose digests are on the wire: every piece of every length and grain
 * must give the same 8 bytes that writeBigUInt64BE(h64Raw(piece)) gives.
 * The committed module is checked by what it computes (these digests), not by its bytes;
 * test/unit/xxh64-pieces-gen.test.ts checks that it is what the .wat compiles to.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import * as esbuild from 'esbuild';
import xxhash from 'xxhash-wasm';
import { beforeAll, describe, expect, it } from 'vitest';
import { alignedBuffer, wasmRegionOf } from '../../src/fileops/aligned-buffer.js';
import { createPiecesDigester, inPlaceTail, XXH64_BYTES } from '../../src/hash/xxh64-pieces.js';
import { seededBytes, tempDir } from '../support/files.js';

let h64Raw: (data: Uint8Array) => bigint;
beforeAll(async () => {
  ({ h64Raw } = await xxhash());
});

const MiB = 1 << 20;
const GRAINS = [1, 7, 8, 31, 32, 33, 64, 1000, 1024, 16384];

/** The reference: h64Raw per piece, big-endian, concatenated. */
function reference(data: Uint8Array, grain: number): Buffer {
  const n = Math.ceil(data.length / grain);
  const out = Buffer.alloc(n * XXH64_BYTES);
  for (let k = 0; k < n; k++) out.writeBigUInt64BE(h64Raw(data.subarray(k * grain, Math.min(data.length, (k + 1) * grain))), k * XXH64_BYTES);
  return out;
}

function batch(data: Uint8Array, grain: number, digester = createPiecesDigester()): Buffer {
  const out = Buffer.alloc(Math.ceil(data.length / grain) * XXH64_BYTES);
  const n = digester.pieces(data, grain, out, 0);
  expect(n * XXH64_BYTES).toBe(out.length);
  return out;
}

describe('xxh64 pieces: known vectors', () => {
  it.each([
    ['', 0xef46db3751d8e999n],
    ['a', 0xd24ec4f1a98c6e5bn],
    ['abc', 0x44bc2cf5ad770999n],
    ['Nobody inspects the spammish repetition', 0xfbcea83c8a378bf1n],
  ])('xxh64(%j) = %s, as h64Raw says', (text, want) => {
    const data = Buffer.from(text);
    expect(h64Raw(data)).toBe(want);
    const out = Buffer.alloc(XXH64_BYTES);
    createPiecesDigester().whole(data, out, 0);
    expect(out.readBigUInt64BE(0)).toBe(want);
    if (data.length > 0) expect(batch(data, data.length).readBigUInt64BE(0)).toBe(want);
  });
});

describe('xxh64 pieces: equal to h64Raw per piece', () => {
  const data = seededBytes(4242, 600);
  it.each(GRAINS)('every length 0..600, grain %i', (grain) => {
    const d = createPiecesDigester(); // one instance across all lengths, as the agent uses it
    const wrong: number[] = [];
    for (let len = 0; len <= 600; len++) {
      const piece = data.subarray(0, len);
      if (!batch(piece, grain, d).equals(reference(piece, grain))) wrong.push(len);
    }
    expect(wrong).toEqual([]);
  });

  it.each(GRAINS)('whole buffers of every length 0..600 (grain %i irrelevant, whole() once per length)', (grain) => {
    const d = createPiecesDigester();
    const wrong: number[] = [];
    for (let len = grain % 7; len <= 600; len += 7) {
      const out = Buffer.alloc(XXH64_BYTES);
      d.whole(data.subarray(0, len), out, 0);
      if (out.readBigUInt64BE(0) !== h64Raw(data.subarray(0, len))) wrong.push(len);
    }
    expect(wrong).toEqual([]);
  });

  it.each([MiB, MiB + 7, 4 * MiB + 7, 9 * MiB + 3])('%i bytes in many grains (more than one copy into wasm memory past 4 MiB)', (size) => {
    const big = seededBytes(size, size);
    const d = createPiecesDigester();
    // Grains below 31 on the biggest sizes would only slow the reference down: covered above.
    const grains = [...GRAINS, MiB, 5 * MiB].filter((g) => g >= 31 || size <= 2 * MiB);
    for (const grain of grains) expect(batch(big, grain, d).equals(reference(big, grain)), `grain ${grain}`).toBe(true);
    const out = Buffer.alloc(XXH64_BYTES);
    d.whole(big, out, 0);
    expect(out.readBigUInt64BE(0)).toBe(h64Raw(big));
  });

  it('a view into a larger buffer, written at an offset of the output, after memory grew and shrank its use', () => {
    const d = createPiecesDigester();
    const backing = seededBytes(7, 3 * MiB);
    batch(backing, 64, d); // grows memory past the first page
    const view = backing.subarray(1001, 1001 + 5000);
    const out = Buffer.alloc(24 + Math.ceil(5000 / 64) * XXH64_BYTES + 16, 0xaa);
    expect(d.pieces(view, 64, out, 24)).toBe(Math.ceil(5000 / 64));
    expect(out.subarray(24, out.length - 16).equals(reference(view, 64))).toBe(true);
    expect(out.subarray(0, 24).every((b) => b === 0xaa)).toBe(true);
    expect(out.subarray(out.length - 16).every((b) => b === 0xaa)).toBe(true);
  });

  it.each([0, -1, 1.5, NaN])('grain %s is refused (it would never advance)', (grain) => {
    expect(() => createPiecesDigester().pieces(Buffer.alloc(10), grain, Buffer.alloc(80), 0)).toThrow(RangeError);
  });
});

// The agent's floor: the module and its wrapper, bundled for Node 12 as the agent is, run under
// that binary on the same lengths and grains; its digests must be h64Raw's.
const node12 = join(process.cwd(), '.cache/node12/bin/node');
describe.skipIf(!existsSync(node12))('xxh64 pieces on Node 12 (skipped without .cache/node12: scripts/fetch-node12.sh)', () => {
  it('every length 0..600 in every grain, and 1 MiB + 7 bytes, equal h64Raw per piece', async () => {
    const { dir, cleanup } = tempDir('pdc-xxh64-node12-');
    try {
      await esbuild.build({
        stdin: {
          contents: `
            const { createPiecesDigester } = require(${JSON.stringify(join(process.cwd(), 'src/hash/xxh64-pieces.ts'))});
            const { data, grains, big } = JSON.parse(require('fs').readFileSync(0, 'utf8'));
            const bytes = Buffer.from(data, 'base64');
            const d = createPiecesDigester();
            const out = [];
            for (const grain of grains) {
              for (let len = 0; len <= 600; len++) {
                const o = Buffer.alloc(Math.ceil(len / grain) * 8);
                d.pieces(bytes.subarray(0, len), grain, o, 0);
                out.push(o.toString('hex'));
              }
              const o = Buffer.alloc(Math.ceil(big / grain) * 8);
              d.pieces(bytes.subarray(0, big), grain, o, 0);
              out.push(o.toString('hex'));
            }
            process.stdout.write(JSON.stringify({ version: process.version, out }));`,
          resolveDir: process.cwd(),
          loader: 'ts',
        },
        bundle: true,
        platform: 'node',
        format: 'cjs',
        target: 'node12',
        outfile: join(dir, 'run.cjs'),
        logLevel: 'silent',
      });
      const big = MiB + 7;
      const bytes = seededBytes(12, big);
      const grains = GRAINS.filter((g) => g >= 7); // grain 1 over 1 MiB: a million reference calls for nothing new
      const r = spawnSync(node12, [join(dir, 'run.cjs')], { input: JSON.stringify({ data: bytes.toString('base64'), grains, big }), encoding: 'utf8', maxBuffer: 64 * MiB });
      expect(r.stderr).toBe('');
      const { version, out } = JSON.parse(r.stdout) as { version: string; out: string[] };
      expect(version).toMatch(/^v12\./);
      const want: string[] = [];
      for (const grain of grains) {
        for (let len = 0; len <= 600; len++) want.push(reference(bytes.subarray(0, len), grain).toString('hex'));
        want.push(reference(bytes.subarray(0, big), grain).toString('hex'));
      }
      expect(out.length).toBe(want.length);
      const wrong = out.flatMap((h, i) => (h === want[i] ? [] : [i]));
      expect(wrong).toEqual([]);
    } finally {
      cleanup();
    }
  }, 120_000);
});

describe('xxh64 pieces hashed in place (views of an aligned buffer with room after it)', () => {
  const size = 4 * MiB;
  const buf = alignedBuffer(size, inPlaceTail(size));
  seededBytes(99, size).copy(buf);
  // [offset into the buffer, length, grain]: odd offsets, the whole buffer, one byte, the last bytes.
  it.each<[number, number, number]>([
    [0, size, 64],
    [0, size, 16384],
    [1, 1023, 64],
    [4093, 70_000, 1000],
    [size - 1, 1, 64],
    [size - 100, 100, 64],
    [12345, 1, 1],
  ])('view at %i of %i bytes, grain %i: the digests of a copy', (off, len, grain) => {
    const view = buf.subarray(off, off + len);
    expect(wasmRegionOf(view)).toBeDefined();
    expect(batch(view, grain).equals(reference(Buffer.from(view), grain))).toBe(true);
  });

  it('more digests than the room after it holds: copied and hashed elsewhere, the same digests', () => {
    const view = buf.subarray(0, 100_000);
    const region = wasmRegionOf(view)!;
    expect(100_000 * XXH64_BYTES).toBeGreaterThan(region.tailBytes); // grain 1: the in-place path cannot take it
    expect(batch(view, 1).equals(reference(view, 1))).toBe(true);
  });
});
