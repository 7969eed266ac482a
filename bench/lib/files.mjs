// Benchmark data: an incompressible deterministic source file, and per-delta target states that
// differ from it in a seeded random scatter of 1 MiB blocks.
//
// Both come from AES-128-CTR keystreams (several GB/s with AES-NI, deterministic, so a kept
// --data-dir can be reused). The changed blocks use a different key and a per-block IV whose
// counter ranges never overlap, so no changed block is a shifted copy of another (which rsync's
// rolling checksum would otherwise find).
import crypto from 'node:crypto';
import fs from 'node:fs';

export const DELTA_BLOCK = 1 << 20;
const CHUNK = 4 << 20;
const FIXED_MTIME = new Date('2020-01-01T00:00:00Z');

/** "256M", "1G", "2GiB", "4g", "1048576" -> bytes (binary units). */
export function parseSize(text) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(String(text));
  if (!m) throw new Error(`bad size: ${text}`);
  const mult = { '': 1, k: 2 ** 10, m: 2 ** 20, g: 2 ** 30, t: 2 ** 40 }[m[2].toLowerCase()];
  return Math.round(Number(m[1]) * mult);
}

export function formatSize(bytes) {
  for (const [u, v] of [
    ['GiB', 2 ** 30],
    ['MiB', 2 ** 20],
    ['KiB', 2 ** 10],
  ]) {
    if (bytes >= v && bytes % (v / 4) === 0) return `${+(bytes / v).toFixed(2)} ${u}`;
  }
  return `${bytes} B`;
}

function key(label, seed) {
  return crypto.createHash('sha256').update(`pdc-bench:${label}:${seed}`).digest().subarray(0, 16);
}

/**
 * Write `size` bytes of AES-CTR keystream to `file` (fsynced, mtime pinned to 2020 so rsync's
 * size+mtime quick check can never skip a target). Returns its sha256 (hex).
 * If `file` exists with the right size and a matching stamp, it is reused.
 */
export function ensureSource(file, size, seed, log) {
  const stampFile = `${file}.stamp.json`;
  try {
    const st = fs.statSync(file);
    const stamp = JSON.parse(fs.readFileSync(stampFile, 'utf8'));
    if (st.size === size && stamp.size === size && stamp.seed === seed && stamp.sha256) {
      log(`reusing ${file} (${formatSize(size)})`);
      fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
      return stamp.sha256;
    }
  } catch {
    /* generate */
  }
  const t0 = Date.now();
  const cipher = crypto.createCipheriv('aes-128-ctr', key('source', seed), Buffer.alloc(16));
  const zeros = Buffer.alloc(CHUNK);
  const hash = crypto.createHash('sha256');
  const fd = fs.openSync(file, 'w');
  try {
    for (let off = 0; off < size; off += CHUNK) {
      const n = Math.min(CHUNK, size - off);
      const buf = cipher.update(n === CHUNK ? zeros : zeros.subarray(0, n));
      hash.update(buf);
      let w = 0;
      while (w < n) w += fs.writeSync(fd, buf, w, n - w, off + w);
    }
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
  const sha256 = hash.digest('hex');
  fs.writeFileSync(stampFile, JSON.stringify({ size, seed, sha256 }));
  log(`generated ${file} (${formatSize(size)}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  return sha256;
}

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Which 1 MiB blocks differ at `pct` percent: a seeded random scatter (partial Fisher-Yates). */
export function changedMask(size, pct, seed) {
  const nBlocks = Math.ceil(size / DELTA_BLOCK);
  const count = Math.min(nBlocks, Math.round((nBlocks * pct) / 100));
  const mask = new Uint8Array(nBlocks);
  const idx = Uint32Array.from({ length: nBlocks }, (_, i) => i);
  const rnd = mulberry32((seed * 1000003 + Math.round(pct * 1000)) | 0);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rnd() * (nBlocks - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
    mask[idx[i]] = 1;
  }
  return { mask, count, nBlocks };
}

function changedBlock(i, len, seed, out) {
  const iv = Buffer.alloc(16);
  iv.writeBigUInt64BE(BigInt(i), 0); // block index in the high half: counters never overlap
  const c = crypto.createCipheriv('aes-128-ctr', key('delta', seed), iv);
  const ks = c.update(out.fill(0, 0, len).subarray(0, len));
  ks.copy(out, 0, 0, len);
  return out;
}

/**
 * Bring `target` into the delta state given by `mask` relative to `src`, writing in place only
 * the 1 MiB blocks that differ from that state (after a correct run that is exactly the changed
 * blocks, so a reset is cheap). Creates the file if missing (or replaced by a symlink etc.),
 * truncates/extends to size, fdatasyncs, and sets mtime to now. Not part of any timing.
 * Also leaves both files in the page cache (warm). Returns the number of blocks written.
 */
export function resetTarget(target, src, size, mask, seed, changed = changedBlock) {
  let exists = false;
  try {
    exists = fs.lstatSync(target).isFile();
  } catch {
    /* missing */
  }
  if (!exists) fs.rmSync(target, { force: true, recursive: true });
  const fdT = fs.openSync(target, exists ? 'r+' : 'w+');
  const fdS = fs.openSync(src, 'r');
  const bufS = Buffer.alloc(DELTA_BLOCK);
  const bufT = Buffer.alloc(DELTA_BLOCK);
  const bufC = Buffer.alloc(DELTA_BLOCK);
  let written = 0;
  try {
    if (fs.fstatSync(fdT).size !== size) fs.ftruncateSync(fdT, size);
    for (let i = 0, off = 0; off < size; i++, off += DELTA_BLOCK) {
      const len = Math.min(DELTA_BLOCK, size - off);
      const want = mask[i] ? changed(i, len, seed, bufC, DELTA_BLOCK) : readFull(fdS, bufS, len, off);
      const got = readFull(fdT, bufT, len, off);
      if (!got.subarray(0, len).equals(want.subarray(0, len))) {
        let w = 0;
        while (w < len) w += fs.writeSync(fdT, want, w, len - w, off + w);
        written++;
      }
    }
    fs.fdatasyncSync(fdT);
  } finally {
    fs.closeSync(fdS);
    fs.closeSync(fdT);
  }
  const now = new Date();
  fs.utimesSync(target, now, now);
  return written;
}

function readFull(fd, buf, len, off) {
  let r = 0;
  while (r < len) {
    const n = fs.readSync(fd, buf, r, len - r, off + r);
    if (n === 0) break;
    r += n;
  }
  if (r < len) buf.fill(0, r, len);
  return buf;
}

/** sha256 of a file (hex), or null if it is missing. */
export function sha256File(file) {
  let fd;
  try {
    fd = fs.openSync(file, 'r');
  } catch {
    return null;
  }
  const hash = crypto.createHash('sha256');
  const buf = Buffer.alloc(CHUNK);
  try {
    for (let off = 0; ; ) {
      const n = fs.readSync(fd, buf, 0, CHUNK, off);
      if (n === 0) break;
      hash.update(buf.subarray(0, n));
      off += n;
    }
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

/** Read a file once so it sits in the page cache. */
export function warm(file) {
  sha256File(file);
}
