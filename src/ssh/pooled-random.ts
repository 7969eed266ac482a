/**
 * ssh2 fills every packet's padding (4-255 bytes) with crypto.randomFillSync, which costs
 * about 5 us a call here (a job object and OpenSSL's locking each time): 0.9 s of the
 * client's main thread per 2 GiB pushed (65,536 packets of 32 KiB), about as much as the
 * encryption itself. The same CSPRNG bytes drawn from a pool that randomFillSync refills
 * 64 KiB at a time cost a copy; every pool byte is handed out once.
 *
 * ssh2 keeps its own reference to the function, taken when it loads, so this module must
 * run first: the CLI's entry imports it before anything else (the bundle hoists ssh2's
 * import to the top of the SSH transport's chunk, which the CLI loads later), and the SSH
 * modules import it before ssh2 for other entry points (tests). Calls that are not small
 * fills of a Buffer or Uint8Array go to the original unchanged.
 */
import crypto from 'node:crypto';

/** Bytes drawn from the CSPRNG per refill. */
const POOL_BYTES = 64 * 1024;
/** Larger requests are not padding: they go to the original. */
const MAX_POOLED = 256;

type RandomFillSync = typeof crypto.randomFillSync;
/** The original, called with whatever it was given. */
const original = crypto.randomFillSync as unknown as ((buf: unknown, offset?: number, size?: number) => unknown) & { pooled?: true };

const pool = Buffer.allocUnsafe(POOL_BYTES);
let used = POOL_BYTES; // empty: the first call fills it

function pooled(buf: unknown, offset?: number, size?: number): unknown {
  if (!(buf instanceof Uint8Array) || !Number.isInteger(offset) || !Number.isInteger(size)) return original(buf, offset, size);
  const at = offset as number;
  const n = size as number;
  if (n < 0 || n > MAX_POOLED || at < 0 || at + n > buf.length) return original(buf, offset, size);
  if (used + n > POOL_BYTES) {
    original(pool);
    used = 0;
  }
  pool.copy(buf, at, used, used + n);
  used += n;
  return buf;
}
(pooled as typeof pooled & { pooled: true }).pooled = true;

if (!original.pooled) crypto.randomFillSync = pooled as unknown as RandomFillSync;
