// Page-structured workloads for the refinement benchmark (`npm run bench -- --pages LIST`).
//
// Shaped like a database tablespace (measured on InnoDB: see BENCHMARKS.md, Refinement):
// 16 KiB pages whose header (checksum, LSN) and trailer (checksum, LSN) change whenever
// anything in the page does. The target starts as a copy of the source, then each touched
// page gets its header and trailer bytes and one or more "rows" flipped (every edited byte
// is XORed with a non-zero value, so the bytes that differ are counted exactly).
import fs from 'node:fs';

export const PAGE = 16 * 1024;
/** Header bytes that change with the page: the checksum [0,4) and the LSN [16,24). */
const HEADER_EDITS = [
  [0, 4],
  [16, 8],
];
/** Trailer: the old-style checksum and the LSN's low 4 bytes. */
const TRAILER = 8;
/** Where rows may start: after the 38-byte FIL header and the 56-byte page header. */
const BODY_START = 94;

/**
 * The workloads: which pages change and how many row bytes in each.
 * scatter10/scatter50: single-row updates (20 bytes) on 10% / 50% of pages at random;
 * cluster: recent rows, a contiguous 5% of the file, 8 rows of 100 bytes per page;
 * append: 64 MiB of new pages at the end (the old last page's header/trailer change too);
 * almost-all: 97% of pages, an 8-byte change each (a delete-like sweep).
 */
export const PAGE_WORKLOADS = {
  scatter10: { label: 'scattered rows, 10% of pages', share: 0.1, rows: 1, rowBytes: 20 },
  scatter50: { label: 'scattered rows, 50% of pages', share: 0.5, rows: 1, rowBytes: 20 },
  cluster: { label: 'clustered range, 5% of file', share: 0.05, rows: 8, rowBytes: 100, clustered: true },
  append: { label: 'append 64 MiB', appendBytes: 64 << 20 },
  'almost-all': { label: 'almost every page, 8 bytes each', share: 0.97, rows: 1, rowBytes: 8 },
};

function mulberry32(a) {
  return () => {
    a |= 0;
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The pages a workload touches (sorted), from a seeded shuffle. */
function touchedPages(nPages, w, rnd) {
  const count = Math.min(nPages, Math.round(nPages * w.share));
  if (w.clustered) {
    const start = Math.floor((nPages - count) * 0.8);
    return Array.from({ length: count }, (_, i) => start + i);
  }
  const idx = Uint32Array.from({ length: nPages }, (_, i) => i);
  for (let i = 0; i < count; i++) {
    const j = i + Math.floor(rnd() * (nPages - i));
    const t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  return Array.from(idx.subarray(0, count)).sort((a, b) => a - b);
}

/** Edits of one page: [offset in page, length] pieces, disjoint. */
function pageEdits(w, rnd) {
  const edits = [...HEADER_EDITS, [PAGE - TRAILER, TRAILER]];
  const body = PAGE - TRAILER - BODY_START;
  const slot = Math.floor(body / w.rows); // one row per slot: rows never overlap
  for (let r = 0; r < w.rows; r++) {
    const at = BODY_START + r * slot + Math.floor(rnd() * (slot - w.rowBytes));
    edits.push([at, w.rowBytes]);
  }
  return edits;
}

/**
 * Put `target` into the workload's state: `resetTarget(target, size)` first makes it a copy
 * of the source (of `size` bytes), then the edits are applied in place. Returns the bytes
 * that differ from the source and the target's size. Not part of any timing.
 */
export function applyPageWorkload(name, { target, srcSize, seed, resetTarget }) {
  const w = PAGE_WORKLOADS[name];
  if (!w) throw new Error(`unknown page workload "${name}" (known: ${Object.keys(PAGE_WORKLOADS).join(', ')})`);
  const rnd = mulberry32((seed * 7919 + name.length * 104729) | 0);
  const size = srcSize - (w.appendBytes ?? 0);
  resetTarget(target, size);
  const fd = fs.openSync(target, 'r+');
  let differing = w.appendBytes ?? 0;
  const buf = Buffer.alloc(PAGE);
  const edit = (page, edits) => {
    const off = page * PAGE;
    fs.readSync(fd, buf, 0, PAGE, off);
    for (const [at, len] of edits) {
      for (let i = at; i < at + len; i++) buf[i] ^= 1 + Math.floor(rnd() * 255);
      differing += len;
    }
    fs.writeSync(fd, buf, 0, PAGE, off);
  };
  try {
    if (w.appendBytes) {
      edit(size / PAGE - 1, [...HEADER_EDITS, [PAGE - TRAILER, TRAILER]]);
    } else {
      for (const p of touchedPages(Math.floor(size / PAGE), w, rnd)) edit(p, pageEdits(w, rnd));
    }
    fs.fdatasyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  const now = new Date();
  fs.utimesSync(target, now, now);
  return { differing, size };
}

/** rsync --stats: the "Literal data" bytes (what it sent as data, not matched). */
export function rsyncLiteral(stdout) {
  const m = /Literal data:\s*([\d,.]+)/.exec(String(stdout));
  return m ? Number(m[1].replace(/[,.]/g, '')) : NaN;
}

/** The variants every workload runs: refinement on (the default), off, and rsync for its literal data. */
export const PAGE_VARIANTS = [
  { key: 'refine', label: 'pdiffcopy push', tool: 'push', extraArgs: [] },
  { key: 'norefine', label: 'pdiffcopy push --no-refine', tool: 'push', extraArgs: ['--no-refine'] },
  { key: 'rsync', label: 'rsync --inplace', tool: 'rsync-inplace', extraArgs: ['--stats'] },
];

function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = Math.floor(v.length / 2);
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

function mib(bytes) {
  return Number.isFinite(bytes) ? `${(bytes / 2 ** 20).toFixed(2)} MiB` : 'n/a';
}

/**
 * Run every workload (`names`: page workloads, or `blocksNN`: NN% of 1 MiB blocks rewritten at
 * random, the main benchmark's data) with every variant, `runs` times in rotating order.
 * `timedRun({ tool, extraArgs, reset, label })` runs one tool after `reset(target)`; returns the
 * markdown section.
 */
export async function runPagesBench({ names, runs, srcSize, seed, timedRun, resetTarget, changedMask, variants: only }) {
  const chosen = PAGE_VARIANTS.filter((v) => !only || only.includes(v.key));
  const cells = new Map();
  const differing = new Map();
  for (let rep = 0; rep < runs; rep++) {
    for (const [wi, name] of names.entries()) {
      const variants = chosen.map((_, i) => chosen[(i + rep + wi) % chosen.length]);
      for (const v of variants) {
        const reset = (target) => {
          const block = /^blocks(\d+)$/.exec(name);
          if (block) {
            const { mask, count } = changedMask(srcSize, Number(block[1]), seed);
            resetTarget(target, srcSize, mask);
            differing.set(name, count * 2 ** 20);
            return;
          }
          const zero = (t, n) => resetTarget(t, n, new Uint8Array(Math.ceil(n / 2 ** 20)));
          differing.set(name, applyPageWorkload(name, { target, srcSize, seed, resetTarget: zero }).differing);
        };
        const rec = await timedRun({ tool: v.tool, extraArgs: v.extraArgs, reset, label: `[${rep + 1}/${runs}] ${name} ${v.key}` });
        const key = `${name}/${v.key}`;
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(rec);
      }
    }
  }
  const wire = (rec) => (rec.status !== 'ok' ? NaN : rec.pdc ? rec.pdc.bytesSent + (rec.pdc.bytesRefineHashes ?? 0) : rec.literal);
  // A variant not run (--page-variants) has no median: n/a, not NaN.
  const secs = (s) => (Number.isFinite(s) ? `${s.toFixed(2)} s` : 'n/a');
  const ratio = (a, b, digits) => (Number.isFinite(a / b) ? (a / b).toFixed(digits) : 'n/a');
  const rows = names.map((name) => {
    const get = (k) => cells.get(`${name}/${k}`) ?? [];
    const t = (k) => median(get(k).map((r) => (r.status === 'ok' ? r.seconds : NaN)));
    const w = (k) => median(get(k).map(wire));
    const label = PAGE_WORKLOADS[name]?.label ?? `${/\d+/.exec(name)[0]}% of 1 MiB blocks rewritten`;
    const pdc = get('refine').find((r) => r.pdc)?.pdc;
    return (
      `| ${label} | ${mib(differing.get(name))} | ${mib(w('refine'))} (${pdc ? mib(pdc.bytesRefineHashes) : 'n/a'} hashes) | ${mib(w('norefine'))} | ${mib(w('rsync'))} | ` +
      `${secs(t('refine'))} | ${secs(t('norefine'))} | ${secs(t('rsync'))} | ${ratio(w('refine'), w('norefine'), 4)} | ${ratio(t('refine'), t('norefine'), 2)} |`
    );
  });
  return [
    `### Refinement: page-structured data, ${mib(srcSize)} (median of ${runs})`,
    '',
    '| workload | bytes that differ | pdiffcopy (refine) on the wire | --no-refine on the wire | rsync literal data | time refine | time --no-refine | time rsync | wire refine / no-refine | time refine / no-refine |',
    '|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...rows,
    '',
    'On the wire for pdiffcopy: `bytesSent` plus `bytesRefineHashes` (the target\'s piece digests); the block hashes of the first pass (8 bytes per MiB) are left out, as for --no-refine.',
    '',
  ].join('\n');
}
