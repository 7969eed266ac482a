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

/** 1536 → "1.50 KiB": for humans in summaries and the progress bar. */
export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${n} B` : `${v.toFixed(2)} ${units[i]}`;
}
