import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import '../../src/ssh/connect.js';

const fill = crypto.randomFillSync as unknown as (buf: unknown, offset?: number, size?: number) => unknown;

describe('pooled randomFillSync (installed before ssh2 loads)', () => {
  it('is installed once the SSH layer is loaded', () => {
    expect((crypto.randomFillSync as unknown as { pooled?: boolean }).pooled).toBe(true);
  });

  it('fills exactly the range asked, and nothing around it', () => {
    const b = Buffer.alloc(64, 0xee);
    expect(fill(b, 10, 20)).toBe(b);
    expect(b.subarray(0, 10).every((x) => x === 0xee)).toBe(true);
    expect(b.subarray(30).every((x) => x === 0xee)).toBe(true);
  });

  it('hands out fresh bytes each time, across pool refills (no repeat of 16-byte runs in 1 MiB drawn)', () => {
    const seen = new Set<string>();
    const b = Buffer.alloc(16);
    for (let i = 0; i < 65536; i++) {
      fill(b, 0, 16);
      const k = b.toString('hex');
      expect(seen.has(k)).toBe(false);
      seen.add(k);
    }
  });

  // What is not a small fill of a byte array goes to the original, with its checks and errors.
  it.each<[string, () => unknown]>([
    ['a size past the buffer', () => fill(Buffer.alloc(8), 4, 8)],
    ['a negative offset', () => fill(Buffer.alloc(8), -1, 2)],
    ['not a buffer', () => fill('text', 0, 2)],
  ])('%s: the original error', (_name, call) => {
    expect(call).toThrow();
  });

  it.each<[string, unknown]>([
    ['a whole Buffer', Buffer.alloc(32)],
    ['a Uint32Array', new Uint32Array(8)],
    ['an ArrayBuffer', new ArrayBuffer(32)],
    ['a large fill', Buffer.alloc(4096)],
  ])('%s: filled by the original', (_name, buf) => {
    expect(fill(buf)).toBe(buf);
    const bytes = buf instanceof ArrayBuffer ? new Uint8Array(buf) : new Uint8Array((buf as Uint8Array).buffer);
    expect(bytes.some((x) => x !== 0)).toBe(true);
  });
});
