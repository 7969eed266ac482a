/**
 * All-zero stretches of a buffer read from a file: they cross the wire as
 * "zero run" (offset, length) instead of bytes, and a target that is new or grown
 * past them keeps them as holes. Node 12 syntax: the agent bundles this file.
 *
 * Zeros are found by comparing each unit (the engine's block) with a shared
 * all-zero buffer (Buffer#equals is a memcmp, which stops at the first non-zero
 * byte, so a data block costs next to nothing and a zero block one pass).
 * At most MAX_ZERO_RUNS runs are reported per buffer: zeros after that many travel as
 * data (correct, only not sparse).
 */
import { MAX_ZERO_RUNS } from '../protocol/limits.js';

/** A stretch of zeros, relative to the start of the buffer it was found in. */
export interface ZeroRun {
  offset: number;
  length: number;
}

/** The shared zero buffer: compared against, and written from (never modified). */
const ZERO = Buffer.alloc(1024 * 1024);

/** True when every byte of buf is 0. */
export function isAllZero(buf: Uint8Array): boolean {
  for (let at = 0; at < buf.length; at += ZERO.length) {
    const n = Math.min(ZERO.length, buf.length - at);
    if (Buffer.compare(buf.subarray(at, at + n), ZERO.subarray(0, n)) !== 0) return false;
  }
  return true;
}

/**
 * The all-zero units of buf (unit bytes each from its start; the last may be short),
 * merged into runs, at most maxRuns of them.
 */
export function findZeroRuns(buf: Buffer, unit: number, maxRuns = MAX_ZERO_RUNS): ZeroRun[] {
  const runs: ZeroRun[] = [];
  for (let at = 0; at < buf.length; at += unit) {
    const n = Math.min(unit, buf.length - at);
    if (!isAllZero(buf.subarray(at, at + n))) continue;
    const last = runs[runs.length - 1];
    if (last && last.offset + last.length === at) {
      last.length += n;
    } else {
      if (runs.length === maxRuns) break;
      runs.push({ offset: at, length: n });
    }
  }
  return runs;
}

/** The bytes of buf outside the (sorted, disjoint) runs, in order: what crosses the wire as data. */
export function dataOutside(buf: Buffer, runs: readonly ZeroRun[]): Buffer[] {
  const out: Buffer[] = [];
  let at = 0;
  for (const r of runs) {
    if (r.offset > at) out.push(buf.subarray(at, r.offset));
    at = r.offset + r.length;
  }
  if (at < buf.length) out.push(buf.subarray(at));
  return out;
}

/** Views of the shared zero buffer covering `length` bytes (to write zeros without allocating). */
export function zeroBuffers(length: number): Buffer[] {
  const out: Buffer[] = [];
  for (let left = length; left > 0; left -= ZERO.length) out.push(ZERO.subarray(0, Math.min(ZERO.length, left)));
  return out;
}

/** Zero runs as the wire carries them: [offset, length, offset, length, ...]. */
export function flattenRuns(runs: readonly ZeroRun[]): number[] {
  const out: number[] = [];
  for (const r of runs) out.push(r.offset, r.length);
  return out;
}

export function unflattenRuns(flat: readonly number[] | undefined): ZeroRun[] {
  const out: ZeroRun[] = [];
  if (!flat) return out;
  for (let i = 0; i + 1 < flat.length; i += 2) out.push({ offset: flat[i]!, length: flat[i + 1]! });
  return out;
}

export function zeroBytesOf(runs: readonly ZeroRun[]): number {
  let n = 0;
  for (const r of runs) n += r.length;
  return n;
}
