// Tree mode: a directory of many small files plus a few big ones, synced with pdiffcopy -a
// (push and pull) beside `rsync -a --inplace --no-whole-file`, over the same sshd.
//
// The tree (at --tree-scale 1): SMALL_FILES files of 4-64 KiB in SMALL_DIRS directories
// (small/), plus BIG_FILES files of BIG_SIZE (big/). The scale multiplies the number of small
// files and the size of the big ones. Two rows per delta: the small-file tree alone, and the
// whole tree. At a delta of d%, d% of the small files (seeded) differ in one 4 KiB piece and
// carry a fresh mtime, and each big file differs in d% of its 1 MiB blocks (fresh mtime);
// every other file is identical with the source's mtime, as after an earlier sync.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { changedMask, ensureSource, formatSize, resetTarget, sha256File } from './files.mjs';
import { firstErrorLine, peakRssKiB, run, sh, withPeakRss } from './proc.mjs';
import { renderTables } from './table.mjs';
import { HOST_ALIAS } from './env.mjs';
import { CIPHER, parsePdcJson, TOOLS } from './tools.mjs';
import { BASE_TOOLS } from './baseline.mjs';

const SMALL_FILES = 2000;
const SMALL_DIRS = 20;
const BIG_FILES = 4;
const BIG_SIZE = 512 << 20;
const PIECE = 4096;
const FIXED_MTIME = new Date('2020-01-01T00:00:00Z');

export const TREE_TOOLS = ['push', 'pull', 'rsync-inplace'];
/** With --base-pdiffcopy CMD: the same pushes and pulls by another pdiffcopy (the code before a change), in the same run. */
export const TREE_BASE_TOOLS = Object.keys(BASE_TOOLS);

function mulberry32(a) {
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function keystream(label, len) {
  const key = crypto.createHash('sha256').update(`pdc-bench-tree:${label}`).digest().subarray(0, 16);
  return crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(len));
}

/** The tree's layout: relative paths and sizes, derived from the scale and the seed. */
export function treeLayout(scale, seed) {
  const rnd = mulberry32(seed * 7919 + 17);
  const nSmall = Math.max(1, Math.round(SMALL_FILES * scale));
  const small = [];
  for (let i = 0; i < nSmall; i++) {
    const size = (4 + Math.floor(rnd() * 61)) * 1024; // 4-64 KiB
    small.push({ rel: path.join('small', `d${String(i % SMALL_DIRS).padStart(2, '0')}`, `f${String(i).padStart(5, '0')}.dat`), size });
  }
  const bigSize = Math.max(1 << 20, Math.round((BIG_SIZE * scale) / (1 << 20)) * (1 << 20));
  const big = Array.from({ length: BIG_FILES }, (_, i) => ({ rel: path.join('big', `big${i}.ibd`), size: bigSize }));
  return { small, big };
}

/** Write the source tree (kept when it is already there with the same layout); returns each file's sha256. */
function ensureTree(root, layout, seed, log) {
  const shas = new Map();
  const t0 = Date.now();
  for (const f of layout.small) {
    const p = path.join(root, f.rel);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    const data = keystream(`small:${seed}:${f.rel}`, f.size);
    let same = false;
    try {
      same = fs.readFileSync(p).equals(data);
    } catch {
      /* write it */
    }
    if (!same) fs.writeFileSync(p, data, { mode: 0o644 });
    fs.utimesSync(p, FIXED_MTIME, FIXED_MTIME);
    shas.set(f.rel, crypto.createHash('sha256').update(data).digest('hex'));
  }
  for (const [i, f] of layout.big.entries()) {
    const p = path.join(root, f.rel);
    fs.mkdirSync(path.dirname(p), { recursive: true, mode: 0o755 });
    // Generated beside the tree (with its stamp file) and linked in: the tree holds only the layout's files.
    const data = path.join(path.dirname(root), `${path.basename(root)}-big${i}.bin`);
    shas.set(f.rel, ensureSource(data, f.size, seed * 100 + i, log));
    fs.rmSync(p, { force: true });
    fs.rmSync(`${p}.stamp.json`, { force: true });
    fs.linkSync(data, p);
  }
  for (const d of dirsOf(layout)) fs.utimesSync(path.join(root, d), FIXED_MTIME, FIXED_MTIME);
  fs.utimesSync(root, FIXED_MTIME, FIXED_MTIME);
  log(`source tree ${root}: ${layout.small.length} small files, ${layout.big.length} x ${formatSize(layout.big[0].size)} (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  return shas;
}

function dirsOf(layout) {
  const dirs = new Set();
  for (const f of [...layout.small, ...layout.big]) {
    for (let d = path.dirname(f.rel); d !== '.'; d = path.dirname(d)) dirs.add(d);
  }
  return [...dirs].sort((a, b) => b.length - a.length);
}

/** Which small files differ at pct percent (seeded). */
function changedSmall(n, pct, seed) {
  const { mask } = changedMask(n * (1 << 20), pct, seed + 1); // one "block" per file
  return mask;
}

/**
 * Untimed: bring the target tree into the delta state (only what differs is rewritten):
 * the changed files get a differing 4 KiB piece and a fresh mtime, the others the source's
 * bytes, mode and mtime.
 */
function resetTree(srcRoot, dstRoot, files, pct, seed) {
  const smallMask = changedSmall(files.small.length, pct, seed);
  const now = new Date();
  for (const [i, f] of files.small.entries()) {
    const s = path.join(srcRoot, f.rel);
    const t = path.join(dstRoot, f.rel);
    fs.mkdirSync(path.dirname(t), { recursive: true, mode: 0o755 });
    const want = fs.readFileSync(s);
    if (smallMask[i]) keystream(`change:${seed}:${f.rel}`, PIECE).copy(want, Math.floor((want.length - PIECE) / 2));
    let got;
    try {
      got = fs.lstatSync(t).isFile() ? fs.readFileSync(t) : undefined;
    } catch {
      /* missing */
    }
    if (!got || !got.equals(want)) {
      fs.rmSync(t, { force: true, recursive: true });
      fs.writeFileSync(t, want, { mode: 0o644 });
    }
    fs.chmodSync(t, 0o644);
    const m = smallMask[i] ? now : FIXED_MTIME;
    fs.utimesSync(t, m, m);
  }
  for (const f of files.big) {
    const t = path.join(dstRoot, f.rel);
    fs.mkdirSync(path.dirname(t), { recursive: true, mode: 0o755 });
    const mask = changedMask(f.size, pct, seed).mask;
    resetTarget(t, path.join(srcRoot, f.rel), f.size, mask, seed);
    fs.chmodSync(t, 0o644);
    if (pct === 0) fs.utimesSync(t, FIXED_MTIME, FIXED_MTIME);
  }
  const layout = { small: files.small, big: files.big };
  for (const d of dirsOf(layout)) if (fs.existsSync(path.join(dstRoot, d))) fs.utimesSync(path.join(dstRoot, d), FIXED_MTIME, FIXED_MTIME);
}

/** Every file of the target byte for byte (sha256) against the source's: the first mismatch, or undefined. */
function checkTree(dstRoot, files, shas) {
  for (const f of [...files.small, ...files.big]) {
    const got = sha256File(path.join(dstRoot, f.rel));
    if (got !== shas.get(f.rel)) return `${f.rel}: sha256 ${got ?? '(missing)'} != source ${shas.get(f.rel)}`;
  }
  return undefined;
}

function command(tool, { srcDir, remoteDir, localDir, sshConfig, pdcCmd, pdcArgs, baseCmd }) {
  const remote = (p) => `${HOST_ALIAS}:${p}/`;
  if (TREE_BASE_TOOLS.includes(tool)) return command(tool.replace('-base', ''), { srcDir, remoteDir, localDir, sshConfig, pdcCmd: baseCmd, pdcArgs });
  switch (tool) {
    case 'push':
      return { argv: [...pdcCmd, '-F', sshConfig, '-a', ...pdcArgs, '--json', `${srcDir}/`, remote(remoteDir)], target: remoteDir };
    case 'pull':
      return { argv: [...pdcCmd, '-F', sshConfig, '-a', ...pdcArgs, '--json', remote(srcDir), `${localDir}/`], target: localDir };
    case 'rsync-inplace':
      return {
        argv: ['rsync', '-a', '--inplace', '--no-whole-file', '-e', `ssh -F ${sshConfig} -c ${CIPHER}`, `${srcDir}/`, remote(remoteDir)],
        target: remoteDir,
      };
    default:
      throw new Error(`tool ${tool} has no tree mode (tree tools: ${TREE_TOOLS.join(', ')})`);
  }
}

function rotate(arr, k) {
  return arr.map((_, i) => arr[(i + k) % arr.length]);
}

/**
 * Run the tree benchmark. ctx: { opts, env, work, dataDir, childEnv, repo, log, onWrong }.
 * Returns the markdown section.
 */
export async function runTreeBench({ opts, env, work, dataDir, childEnv, repo, log, onWrong }) {
  const scale = opts.treeScale;
  const layout = treeLayout(scale, opts.seed);
  const srcRoot = path.join(dataDir, `tree-${scale}`);
  const shas = ensureTree(srcRoot, layout, opts.seed, log);
  const tools = opts.tools.filter((t) => TREE_TOOLS.includes(t) || (opts.basePdcCmd.length > 0 && TREE_BASE_TOOLS.includes(t)));
  if (!tools.length) throw new Error(`--tree needs one of the tools ${TREE_TOOLS.join(', ')}`);
  const rows = [];
  for (const d of opts.deltas) for (const part of ['small', 'whole']) rows.push({ part, delta: d, key: `${part}/${d}` });
  const cells = new Map();
  const skip = new Set();
  const rssFile = path.join(work, 'tree-rss.txt');
  for (let rep = 0; rep < opts.runs; rep++) {
    for (const [ri, row] of rows.entries()) {
      const files = row.part === 'small' ? { small: layout.small, big: [] } : layout;
      const sub = row.part === 'small' ? 'small' : '';
      for (const tool of rotate(tools, rep + ri)) {
        const key = `${row.key}/${tool}`;
        if (skip.has(key)) continue;
        const dirs = {
          srcDir: path.join(srcRoot, sub),
          remoteDir: path.join(work, 'tree-remote', sub),
          localDir: path.join(work, 'tree-local', sub),
        };
        const cmd = command(tool, { ...dirs, sshConfig: env.sshConfig, pdcCmd: opts.pdcCmd, pdcArgs: opts.pdcArgs, baseCmd: opts.basePdcCmd });
        const rel = (f) => ({ ...f, rel: sub ? path.relative(sub, f.rel) : f.rel });
        const relFiles = { small: files.small.map(rel), big: files.big.map(rel) };
        const relShas = new Map([...files.small, ...files.big].map((f) => [rel(f).rel, shas.get(f.rel)]));
        resetTree(dirs.srcDir, cmd.target, relFiles, row.delta, opts.seed);
        sh(['sync'], { allowFail: true, timeoutMs: 300_000 });
        const r = await run(env.wrap(withPeakRss(cmd.argv, rssFile)), { timeoutMs: opts.timeoutMs, cwd: repo, env: childEnv });
        const rec = { label: row.key, tool, seconds: r.seconds, rssKiB: peakRssKiB(rssFile), code: r.code };
        if (r.timedOut) Object.assign(rec, { status: 'timeout', error: `killed after ${opts.timeoutMs / 1000} s` });
        else if (r.code !== 0) Object.assign(rec, { status: 'failed', error: firstErrorLine(r.stderr) || `exit ${r.code ?? r.signal}` });
        else {
          const bad = checkTree(cmd.target, relFiles, relShas);
          rec.status = bad ? 'wrong' : 'ok';
          if (bad) {
            rec.error = bad;
            onWrong(`${tool} at ${row.key}: ${bad}`);
          }
          const j = tool === 'rsync-inplace' ? null : parsePdcJson(r.stdout);
          if (j?.totals) rec.note = `sent ${formatSize(j.totals.bytesSent)}, ${j.totals.filesSynced} files compared`;
        }
        if (!cells.has(key)) cells.set(key, []);
        cells.get(key).push(rec);
        if (rec.status === 'failed' || rec.status === 'timeout') skip.add(key);
        log(`  [${rep + 1}/${opts.runs}] tree ${row.part} ${row.delta}% ${tool}: ${rec.status} ${r.seconds.toFixed(2)} s${rec.note ? ` (${rec.note})` : ''}${rec.error ? ` (${rec.error})` : ''}`);
      }
    }
  }
  const smallBytes = layout.small.reduce((s, f) => s + f.size, 0);
  const label = (k) => {
    const [part, d] = k.split('/');
    return part === 'small' ? `${layout.small.length} small files, ${d}%` : `whole tree, ${d}%`;
  };
  return renderTables({
    title: `Trees: ${layout.small.length} files of 4-64 KiB (${formatSize(Math.round(smallBytes / 1024) * 1024)} in all) in ${SMALL_DIRS} directories, plus ${layout.big.length} files of ${formatSize(layout.big[0].size)}; -a (median of ${opts.runs})`,
    firstCol: 'tree, delta',
    rowKeys: rows.map((r) => r.key),
    rowLabel: label,
    tools,
    cells: (k, t) => cells.get(`${k}/${t}`) ?? [],
  });
}
