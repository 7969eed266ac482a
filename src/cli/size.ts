/**
 * Parse a byte count as users write it: 1048576, 5K, 1M, 1MiB, 1MB, 2g.
 * K, M, G and T are binary multiples (1K = 1024), with or without "B" or "iB",
 * as block sizes are. Returns NaN for anything else.
 */
const UNITS: Record<string, number> = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 };

export function parseSize(text: string | number): number {
  if (typeof text === 'number') return Number.isSafeInteger(text) ? text : NaN;
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$/i.exec(text);
  if (!m) return NaN;
  const value = Number(m[1]) * UNITS[m[2]!.toLowerCase()]!;
  return Number.isSafeInteger(value) ? value : NaN;
}

/** 1048576 -> 1M, 16384 -> 16K, 64 -> 64: a size as -b and --refine-levels take it (parseSize reads it back). */
export function sizeText(n: number): string {
  const MiB = 1024 * 1024;
  return n % MiB === 0 ? `${n / MiB}M` : n % 1024 === 0 ? `${n / 1024}K` : String(n);
}

export { formatBytes } from '../format-bytes.js';
