import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readSync, openSync, closeSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildSync } from 'esbuild';
import { afterAll, describe, expect, it } from 'vitest';
import { alignedBuffer, wasmRegionOf } from '../../src/fileops/aligned-buffer.js';

const dir = mkdtempSync(join(tmpdir(), 'pdc-aligned-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('alignedBuffer', () => {
  it.each([1, 4096, 256 * 1024, 4 * 1024 * 1024, 4 * 1024 * 1024 + 1])('%i bytes: a Buffer of exactly that length that reads and writes like one', (size) => {
    const b = alignedBuffer(size);
    expect(Buffer.isBuffer(b)).toBe(true);
    expect(b.length).toBe(size);
    b.fill(0xab);
    b[size - 1] = 1;
    expect(b[size - 1]).toBe(1);
    expect(b.subarray(0, size - 1).every((x) => x === 0xab)).toBe(true);
  });

  it('large ones live in their own page-aligned memory, each separate from the others', () => {
    const a = alignedBuffer(4 * 1024 * 1024);
    const b = alignedBuffer(4 * 1024 * 1024);
    expect(a.byteOffset).toBe(0);
    expect(a.buffer).not.toBe(b.buffer);
    a.fill(1);
    b.fill(2);
    expect(a[123]).toBe(1);
  });

  it('with a tail: room after the bytes, in the same memory, outside the Buffer', () => {
    const b = alignedBuffer(4 * 1024 * 1024, 512 * 1024);
    const r = wasmRegionOf(b.subarray(100, 200))!;
    expect(r.memory.buffer).toBe(b.buffer);
    expect(r.tailAt).toBe(b.length);
    expect(r.tailBytes).toBeGreaterThanOrEqual(512 * 1024);
    new Uint8Array(r.memory.buffer, r.tailAt, r.tailBytes).fill(9);
    expect(b.every((x) => x === 0)).toBe(true);
    expect(wasmRegionOf(alignedBuffer(4 * 1024 * 1024))).toBeUndefined();
    expect(wasmRegionOf(Buffer.alloc(10))).toBeUndefined();
  });

  it('a file read into one holds the file bytes', () => {
    const file = join(dir, 'f.bin');
    const data = Buffer.from(Array.from({ length: 300_000 }, (_, i) => (i * 7) & 0xff));
    writeFileSync(file, data);
    const b = alignedBuffer(data.length);
    const fd = openSync(file, 'r');
    try {
      expect(readSync(fd, b, 0, b.length, 0)).toBe(data.length);
    } finally {
      closeSync(fd);
    }
    expect(b.equals(readFileSync(file))).toBe(true);
  });

  it('under an address-space limit (ulimit -v) it still returns a working buffer', () => {
    // A WebAssembly.Memory reserves far more address space than it uses: 4 GB leaves no room for that.
    const script = `const { alignedBuffer } = require(${JSON.stringify(join(dir, 'ab.cjs'))}); const b = alignedBuffer(4 << 20, 1 << 19); b.fill(3); process.stdout.write(String(b.length + b[9]));`;
    buildSync({ entryPoints: [join(__dirname, '../../src/fileops/aligned-buffer.ts')], bundle: true, platform: 'node', format: 'cjs', outfile: join(dir, 'ab.cjs'), logLevel: 'error' });
    const out = execFileSync('bash', ['-c', `ulimit -v 4000000; exec ${JSON.stringify(process.execPath)} -e ${JSON.stringify(script)}`], { encoding: 'utf8' });
    expect(out).toBe(String((4 << 20) + 3));
  });
});
