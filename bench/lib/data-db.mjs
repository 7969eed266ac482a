// Benchmark data for `--data db`: database-like 16 KiB pages, as a tablespace holds them.
//
// Each page: a 38-byte header (checksum, page number, neighbours, LSN, type, space id), rows
// packed until no free space is left (a 5-byte record header, an 8-byte ascending id, a 6-byte
// transaction id and a 7-byte roll pointer, two integer columns, a date, and 2-12 words of text
// from a small vocabulary), the page's tail filled with one more row cut short, and an 8-byte
// trailer. No page repeats another (every row has its own id and random ids/pointers), so
// nothing compresses across pages beyond what a real table gives: gzip -1 makes about 2:1.
//
// Deterministic from the seed and the page number, so a kept --data-dir can be reused and a
// changed 1 MiB block is the same pages rewritten with another seed (db-like again).
import crypto from 'node:crypto';
import fs from 'node:fs';
import { formatSize } from './files.mjs';

export const PAGE = 16 * 1024;
const CHUNK = 4 << 20;
const FIXED_MTIME = new Date('2020-01-01T00:00:00Z');

const VOCABULARY = (
  'order customer shipped pending paid refund invoice delivery express standard warehouse north south east west ' +
  'blue red green black white small medium large extra item product quantity price discount total tax note gift ' +
  'return damaged replaced priority normal low high account active closed suspended premium basic trial monthly ' +
  'yearly card transfer cash voucher coupon review rating five four three two one stars great good poor excellent ' +
  'fast slow late early morning evening weekend holiday city street avenue road lane building floor room box'
)
  .split(' ')
  .map((w) => Buffer.from(`${w} `));
const DATES = Array.from({ length: 12 * 28 }, (_, i) =>
  Buffer.from(`2026-${String(1 + Math.floor(i / 28)).padStart(2, '0')}-${String(1 + (i % 28)).padStart(2, '0')} `, 'latin1'),
);
const row = Buffer.alloc(160);

function rng(seed) {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** Fill `out[0..PAGE)` with page number `pageNo` of the table generated from `seed`. */
export function dbPage(pageNo, seed, out) {
  const r = rng(Math.imul(pageNo + 1, 0x9e3779b1) ^ Math.imul(seed + 7, 0x85ebca6b));
  out.writeUInt32BE(r(), 0); // checksum
  out.writeUInt32BE(pageNo >>> 0, 4);
  out.writeUInt32BE(pageNo > 0 ? pageNo - 1 : 0xffffffff, 8);
  out.writeUInt32BE(pageNo + 1, 12);
  out.writeUInt32BE(seed >>> 0, 16); // LSN, high half
  out.writeUInt32BE(r(), 20);
  out.writeUInt16BE(0x45bf, 24); // FIL_PAGE_INDEX
  out.writeUInt32BE(0, 26);
  out.writeUInt32BE(r(), 30);
  out.writeUInt32BE(42, 34); // space id
  let at = 38;
  const end = PAGE - 8;
  let id = pageNo * 64;
  while (at < end) {
    let n = 0;
    row[n++] = 0x00;
    row[n++] = 0x00;
    row[n++] = 0x10;
    row.writeUInt16BE(r() & 0xffff, n); // next record offset
    n += 2;
    row.writeUInt32BE(0, n);
    row.writeUInt32BE(id++, n + 4);
    n += 8;
    row.writeUInt32BE(r(), n); // trx id
    row.writeUInt16BE(r() & 0xffff, n + 4);
    n += 6;
    row.writeUInt32BE((r() | 0x80000000) >>> 0, n); // roll pointer
    row.writeUInt16BE(r() & 0xffff, n + 4);
    row[n + 6] = r() & 0xff;
    n += 7;
    row.writeUInt32BE(1 + (r() % 5000), n); // customer id
    row.writeUInt32BE(r() % 100000, n + 4); // amount in cents
    n += 8;
    DATES[r() % DATES.length].copy(row, n);
    n += 11;
    const words = 2 + (r() % 11);
    for (let w = 0; w < words; w++) {
      const word = VOCABULARY[r() % VOCABULARY.length];
      if (n + word.length > row.length) break;
      word.copy(row, n);
      n += word.length;
    }
    const take = Math.min(n, end - at);
    row.copy(out, at, 0, take);
    at += take;
  }
  out.writeUInt32BE(r(), end); // trailer: checksum and low LSN
  out.writeUInt32BE(r(), end + 4);
  return out;
}

/** `len` bytes of db pages starting at byte `offset` (a multiple of PAGE) into `out`. */
export function fillDb(out, len, offset, seed) {
  const page = Buffer.allocUnsafe(PAGE);
  for (let at = 0; at < len; at += PAGE) {
    dbPage((offset + at) / PAGE, seed, page);
    page.copy(out, at, 0, Math.min(PAGE, len - at));
  }
  return out;
}

/**
 * The db-mode counterpart of ensureSource: write `size` bytes of pages to `file` (fsynced,
 * mtime pinned to 2020), reused when its stamp matches. Returns its sha256 (hex).
 */
export function ensureDbSource(file, size, seed, log) {
  const stampFile = `${file}.stamp.json`;
  try {
    const st = fs.statSync(file);
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    if (st.size === size && stamp.size === size && stamp.seed === seed && stamp.data === 'db' && stamp.sha256) {
      log(`reusing ${file} (${formatSize(size)}, db pages)`);
      fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
      return stamp.sha256;
    }
  } catch {
    /* generate */
  }
  const t0 = Date.now();
  const buf = Buffer.allocUnsafe(CHUNK);
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      fillDb(buf, n, off, seed);
      hash.update(buf.subarray(0, n));
      let w = 0;
      while (w < n) w += fs.writeSync(fd, buf, w, n - w, off + w);
    }
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
  const sha256 = hash.digest('hex');
  fs.writeFileSync(stampFile, JSON.stringify({ size, seed, data: 'db', sha256 }));
  log(`generated ${file} (${formatSize(size)} of db pages) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return sha256;
}

/** A changed 1 MiB block `i` in db mode: the same pages regenerated from another seed. */
export function dbChangedBlock(i, len, seed, out, blockBytes) {
  return fillDb(out, len, i * blockBytes, CHANGED_SEED(seed));
}

/** The seed the changed blocks of db mode are generated from. */
export const CHANGED_SEED = (seed) => seed + 1000003;

/**
 * The changed blocks read from a file holding the whole table regenerated with the changed
 * seed (ensureDbSource(file, size, seed + 1000003)): a reset copies them instead of generating
 * them again on every run.
 */
export function dbChangedFrom(file) {
  const fd = fs.openSync(file, 'r');
  return (i, len, _seed, out, blockBytes) => {
    let got = 0;
    while (got < len) {
      const n = fs.readSync(fd, out, got, len - got, i * blockBytes + got);
      if (n === 0) throw new Error(`${file} is shorter than the source`);
      got += n;
    }
    return out;
  };
}
