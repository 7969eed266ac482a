import { describe, expect, it } from 'vitest';
import { formatBytes, parseSize } from '../../src/cli/size.js';

describe('parseSize', () => {
  it.each<[string | number, number]>([
    ['1', 1],
    ['0', 0],
    ['4096', 4096],
    ['5K', 5 * 1024],
    ['5k', 5 * 1024],
    ['5KB', 5 * 1024],
    ['5KiB', 5 * 1024],
    ['1M', 1 << 20],
    ['1MiB', 1 << 20],
    ['1MB', 1 << 20],
    ['1mib', 1 << 20],
    ['2G', 2 * 2 ** 30],
    ['2g', 2 * 2 ** 30],
    ['1T', 2 ** 40],
    ['1.5K', 1536],
    ['0.5M', 512 * 1024],
    [' 16 MiB ', 16 << 20],
    [4096, 4096],
    [0, 0],
  ])('%j -> %d', (text, want) => {
    expect(parseSize(text)).toBe(want);
  });

  it.each<string | number>([
    '',
    ' ',
    'junk',
    'K',
    '-1',
    '-5K',
    '1X',
    '1KK',
    '1.5', // fractional bytes
    '1.',
    '.5K',
    '1e3',
    '0x10',
    '1 2',
    '1Ki', // "i" only together with "B"
    '99999999999T', // beyond safe integers
    1.5,
    NaN,
    Infinity,
  ])('%j -> NaN', (text) => {
    expect(parseSize(text)).toBeNaN();
  });
});

describe('formatBytes', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1.00 KiB'],
    [1536, '1.50 KiB'],
    [1 << 20, '1.00 MiB'],
    [1.5 * 2 ** 30, '1.50 GiB'],
    [2 ** 40, '1.00 TiB'],
    [2048 * 2 ** 40, '2048.00 TiB'], // no unit beyond TiB
  ])('%d -> %s', (n, want) => {
    expect(formatBytes(n)).toBe(want);
  });
});
