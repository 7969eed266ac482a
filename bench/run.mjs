#!/usr/bin/env node
// pdiffcopy benchmark: pdiffcopy push/pull vs rsync, scp and a raw ssh pipe over a real sshd,
// between two network namespaces (root) or on loopback. See bench/README.md.
//
//   npm run bench -- [--size 2G] [--deltas 0,10,50,100] [--runs 3] [--tools push,pull,...]
//   npm run bench -- --quick
//   npm run bench -- --sizes 256M,1G,4G [--sweep-delta 10]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureSystemTools, setupEnv } from './lib/env.mjs';
import { changedMask, ensureSource, formatSize, parseSize, resetTarget, sha256File } from './lib/files.mjs';
import { addCleanup, firstErrorLine, installSignalHandlers, peakRssKiB, run, runCleanups, sh, withPeakRss } from './lib/proc.mjs';
import { loadAvg, machineLine, renderPdcDetails, renderTables } from './lib/table.mjs';
import { runSparseBench, SPARSE_TOOLS } from './lib/sparse.mjs';
import { ALL_TOOLS, DEFAULT_TOOLS, parsePdcJson, splitArgs, TOOLS } from './lib/tools.mjs';
import { CHANGED_SEED, dbChangedFrom, ensureDbSource } from './lib/data-db.mjs';
import { bwlimitSection } from './lib/bwlimit.mjs';
import { buildCommandAB, registerBaseTools } from './lib/baseline.mjs';
import { cpuText, startCpuSampler } from './lib/cpu.mjs';
import { bareBaselines, bareTable } from './lib/bare.mjs';

registerBaseTools();
import { rsyncLiteral, runPagesBench } from './lib/pages.mjs';
import { runTreeBench, TREE_BASE_TOOLS, TREE_TOOLS } from './lib/tree.mjs';
import { runStartupBench } from './lib/startup.mjs';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const USAGE = `Usage: node bench/run.mjs [options]

  --size SIZE          source file size (default 2G; e.g. 256M, 1G, 4G)
  --deltas LIST        percentages of changed 1 MiB blocks (default 0,10,50,100)
  --runs N             repetitions per cell, medians reported (default 3)
  --tools LIST         any of ${ALL_TOOLS.join(',')}
                       (default ${DEFAULT_TOOLS.join(',')})
  --pdiffcopy CMD      pdiffcopy command (default "node bin/pdiffcopy.js", run from the repo root)
  --pdc-args ARGS      extra pdiffcopy arguments, e.g. "-c 8"
  --base-pdiffcopy CMD the build that tools push-base/pull-base run (A/B in one run)
  --cpu                CPU seconds per process (client/server side, by name) of every run
  --bare               first time the stages alone on the source (read, xxh64, write+fsync)
  --sizes LIST         size sweep (e.g. 256M,1G,4G) at one delta; default tools push,rsync-inplace
  --sweep-delta PCT    delta for --sizes (default 10)
  --quick              smoke preset: 256M, 1 run, deltas 0,100
  --sparse             sparse image and loop-device rows instead (bench/lib/sparse.mjs)
  --sparse-size SIZE   the sparse image's size (default 4G)
  --sparse-data SIZE   its data, in 16 extents (default 256M)
  --sparse-tools LIST  any of ${Object.keys(SPARSE_TOOLS).join(',')} (default all; none: device rows only)
  --pages LIST         refinement workloads instead (bench/lib/pages.mjs): scatter10, scatter50, cluster,
                       append, almost-all, blocks10 (10% of 1 MiB blocks rewritten), ...; each run with
                       pdiffcopy push, push --no-refine and rsync --inplace --stats
  --page-variants LIST which of those: refine,norefine,rsync (default all)
  --tree               tree mode: 2,000 files of 4-64 KiB plus 4 of 512 MiB, pdiffcopy -a push/pull
                       beside rsync -a --inplace --no-whole-file (default deltas 0,10)
  --startup            start-up mode: a 4 KiB up-to-date file, the timeline of each start-up step beside bare
                       node/ssh/ssh2 baselines (with --base-pdiffcopy CMD, the build before a change too)
  --tree-scale F       scale the tree: F x the small files' count and the big files' size (default 1)
  --shape RATE         shape the veth link with tbf (e.g. 1gbit; netns mode only)
  --loopback           use sshd on 127.0.0.1 even when network namespaces are available
  --timeout SEC        per-run timeout (default 600)
  --dir DIR            parent of the temp work dir (default ${os.tmpdir()})
  --data-dir DIR       keep/reuse generated source files here (default: temp, deleted)
  --seed N             seed for data and changed-block positions (default 1)
  --data KIND          random (default: incompressible) or db (database-like 16 KiB pages, gzip -1 about 2:1; for -z)
  --bwlimit RATE       after the table, push and pull at 100% change with --bwlimit RATE (e.g. 50M) and report
                       the rate over every 10 s window (--bwlimit-runs N, default 3)
  --out FILE           also write the markdown result to FILE
  --raw FILE           write every individual run as JSON to FILE
  -h, --help
`;

function parseCli() {
  const { values } = parseArgs({
    options: {
      size: { type: 'string' },
      deltas: { type: 'string' },
      runs: { type: 'string' },
      tools: { type: 'string' },
      pdiffcopy: { type: 'string', default: 'node bin/pdiffcopy.js' },
      'pdc-args': { type: 'string', default: '' },
      'base-pdiffcopy': { type: 'string', default: '' },
      cpu: { type: 'boolean', default: false },
      bare: { type: 'boolean', default: false },
      sizes: { type: 'string' },
      'sweep-delta': { type: 'string', default: '10' },
      quick: { type: 'boolean', default: false },
      pages: { type: 'string' },
      'page-variants': { type: 'string' },
      tree: { type: 'boolean', default: false },
      startup: { type: 'boolean', default: false },
      'tree-scale': { type: 'string', default: '1' },
      shape: { type: 'string' },
      sparse: { type: 'boolean', default: false },
      'sparse-size': { type: 'string', default: '4G' },
      'sparse-data': { type: 'string', default: '256M' },
      'sparse-tools': { type: 'string' },
      loopback: { type: 'boolean', default: false },
      timeout: { type: 'string', default: '600' },
      dir: { type: 'string', default: os.tmpdir() },
      'data-dir': { type: 'string' },
      seed: { type: 'string', default: '1' },
      data: { type: 'string', default: 'random' },
      bwlimit: { type: 'string' },
      'bwlimit-runs': { type: 'string', default: '3' },
      out: { type: 'string' },
      raw: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
    allowPositionals: false,
  });
  if (values.help) {
    process.stdout.write(USAGE);
    process.exit(0);
  }
  const list = (s) => String(s).split(',').map((x) => x.trim()).filter(Boolean);
  const sweep = values.sizes ? list(values.sizes).map(parseSize) : null;
  const tools = values.tools ? list(values.tools) : sweep ? ['push', 'rsync-inplace'] : values.tree ? [...TREE_TOOLS, ...(values['base-pdiffcopy'] ? TREE_BASE_TOOLS : [])] : DEFAULT_TOOLS;
  for (const t of tools) if (!TOOLS[t]) throw new Error(`unknown tool "${t}" (known: ${ALL_TOOLS.join(', ')})`);
  const opts = {
    size: parseSize(values.size ?? (values.quick ? '256M' : '2G')),
    deltas: list(values.deltas ?? (values.quick ? '0,100' : values.tree ? '0,10' : '0,10,50,100')).map(Number),
    runs: Number(values.runs ?? (values.quick ? 1 : 3)),
    tools,
    pdcCmd: splitArgs(values.pdiffcopy),
    basePdcCmd: splitArgs(values['base-pdiffcopy']),
    cpu: values.cpu,
    bare: values.bare,
    pdcArgs: splitArgs(values['pdc-args']),
    sweep,
    pages: values.pages ? list(values.pages) : null,
    pageVariants: values['page-variants'] ? list(values['page-variants']) : null,
    sweepDelta: Number(values['sweep-delta']),
    tree: values.tree,
    startup: values.startup,
    treeScale: Number(values['tree-scale']),
    shape: values.shape,
    sparse: values.sparse,
    sparseSize: parseSize(values['sparse-size']),
    sparseData: parseSize(values['sparse-data']),
    sparseTools: values['sparse-tools'] === 'none' ? [] : values['sparse-tools'] ? list(values['sparse-tools']) : undefined,
    loopback: values.loopback,
    timeoutMs: Number(values.timeout) * 1000,
    dir: values.dir,
    dataDir: values['data-dir'],
    seed: Number(values.seed),
    data: values.data,
    bwlimit: values.bwlimit,
    bwlimitRuns: Number(values['bwlimit-runs']),
    out: values.out,
    raw: values.raw,
  };
  for (const d of [...opts.deltas, opts.sweepDelta]) if (!(d >= 0 && d <= 100)) throw new Error(`bad delta ${d}`);
  if (!(opts.runs >= 1)) throw new Error('bad --runs');
  if (opts.data !== 'random' && opts.data !== 'db') throw new Error('bad --data (random or db)');
  if (!(opts.treeScale > 0)) throw new Error('bad --tree-scale');
  if (!(opts.timeoutMs > 0)) throw new Error('bad --timeout');
  return opts;
}

const T0 = Date.now();
function log(msg) {
  const s = ((Date.now() - T0) / 1000).toFixed(0).padStart(5);
  process.stderr.write(`[bench ${s}s] ${msg}\n`);
}

/** Remove work dirs of earlier benchmarks that were SIGKILLed (their pid is in the name). */
function reapStaleWorkDirs(dir) {
  for (const name of fs.readdirSync(dir)) {
    const m = /^pdc-bench-(\d+)-[A-Za-z0-9]{6}$/.exec(name);
    if (!m || Number(m[1]) === process.pid) continue;
    try {
      process.kill(Number(m[1]), 0);
      continue; // still running
    } catch (err) {
      if (err.code === 'EPERM') continue;
    }
    log(`removing stale work dir ${path.join(dir, name)} of dead benchmark pid ${m[1]}`);
    fs.rmSync(path.join(dir, name), { recursive: true, force: true });
  }
}

/** db mode: changed blocks come from the table regenerated with the changed seed, made once beside the source. */
const dbChangedFiles = new Map();
function dbChanged(src, size, seed) {
  if (!dbChangedFiles.has(src)) {
    const file = src.replace(/\.bin$/, '.changed.bin');
    ensureDbSource(file, size, CHANGED_SEED(seed), log);
    dbChangedFiles.set(src, dbChangedFrom(file));
  }
  return dbChangedFiles.get(src);
}

function rotate(arr, k) {
  const n = arr.length;
  return arr.map((_, i) => arr[(i + k) % n]);
}

async function main() {
  const opts = parseCli();
  installSignalHandlers();
  ensureSystemTools(log);

  fs.mkdirSync(opts.dir, { recursive: true });
  reapStaleWorkDirs(opts.dir);
  const work = fs.mkdtempSync(path.join(opts.dir, `pdc-bench-${process.pid}-`));
  addCleanup(() => fs.rmSync(work, { recursive: true, force: true }));
  const dataDir = opts.dataDir ? path.resolve(opts.dataDir) : path.join(work, 'data');
  fs.mkdirSync(dataDir, { recursive: true });
  log(`work dir ${work}${opts.dataDir ? `, data dir ${dataDir} (kept)` : ''}`);

  const env = await setupEnv({ dir: work, shape: opts.shape, loopback: opts.loopback, log });
  const machine = machineLine({ link: env.link });
  const loadStart = loadAvg();
  log(machine);
  log(`load average at start: ${loadStart}`);

  const childEnv = { ...process.env };
  delete childEnv.SSH_AUTH_SOCK; // only the generated key, never an agent's
  const remoteTarget = path.join(work, 'remote-target.bin');
  const localTarget = path.join(work, 'local-target.bin');
  const rssFile = path.join(work, 'rss.txt');
  const allRuns = [];
  let wrongCount = 0;

  /** One timed run of `tool` with the target first reset to `mask` relative to `src`. */
  async function timedRun({ tool, src, srcSha, size, mask, label, extraArgs = [], reset }) {
    const cmd = buildCommandAB(
      tool,
      {
        src,
        remoteTarget,
        localTarget,
        sshConfig: env.sshConfig,
        pdcCmd: opts.pdcCmd,
        pdcArgs: TOOLS[tool].pdc ? [...opts.pdcArgs, ...extraArgs] : opts.pdcArgs,
      },
      opts.basePdcCmd,
    );
    if (!TOOLS[tool].pdc && extraArgs.length) cmd.argv.splice(1, 0, ...extraArgs);
    // Untimed: target to its delta state (in place, fsynced, warm), flush everything dirty.
    if (reset) reset(cmd.target);
    else resetTarget(cmd.target, src, size, mask, opts.seed, ...(opts.data === 'db' ? [dbChanged(src, size, opts.seed)] : []));
    sh(['sync'], { allowFail: true, timeoutMs: 300_000 });
    const stdinFd = cmd.stdinPath ? fs.openSync(cmd.stdinPath, 'r') : undefined;
    const argv = env.wrap(withPeakRss(cmd.argv, rssFile));
    let r;
    const cpu = opts.cpu ? startCpuSampler({ sshdPidFile: path.join(path.dirname(env.sshConfig), 'sshd.pid'), marker: rssFile }) : undefined;
    try {
      r = await run(argv, { timeoutMs: opts.timeoutMs, stdinFd, cwd: REPO, env: childEnv });
    } finally {
      if (stdinFd !== undefined) fs.closeSync(stdinFd);
    }
    const cpuSeconds = cpu?.stop();
    const rssKiB = peakRssKiB(rssFile);
    const rec = { label, tool, size, seconds: r.seconds, rssKiB, code: r.code, cpu: cpuSeconds };
    if (r.timedOut) {
      rec.status = 'timeout';
      rec.error = `killed after ${opts.timeoutMs / 1000} s`;
    } else if (r.code !== 0) {
      rec.status = 'failed';
      rec.error = firstErrorLine(r.stderr) || firstErrorLine(r.stdout) || `exit ${r.code ?? r.signal}`;
    } else {
      const got = sha256File(cmd.target);
      rec.status = got === srcSha ? 'ok' : 'wrong';
      if (rec.status === 'wrong') {
        wrongCount++;
        rec.error = `sha256 ${got ?? '(missing)'} != source ${srcSha}`;
        log(`!!!!!!!! WRONG: ${TOOLS[tool].label} at ${label}: target ${cmd.target} does not match the source (${rec.error})`);
      }
      if (TOOLS[tool].pdc) rec.pdc = parsePdcJson(r.stdout);
      else if (/Literal data:/.test(r.stdout)) rec.literal = rsyncLiteral(r.stdout);
    }
    allRuns.push(rec);
    const rss = Number.isFinite(rssKiB) ? `, peak RSS ${(rssKiB / 1024).toFixed(0)} MiB` : '';
    log(`  ${label} ${TOOLS[tool].label}: ${rec.status === 'ok' ? '' : `${rec.status.toUpperCase()} `}${r.seconds.toFixed(2)} s${rss}${rec.error ? ` (${rec.error})` : ''}`);
    if (cpuSeconds) log(`    cpu s: ${cpuText(cpuSeconds)}`);
    return rec;
  }

  const sections = [];
  if (opts.startup) {
    sections.push(await runStartupBench({ opts, env, work, childEnv, repo: REPO, log }));
  } else if (opts.sparse) {
    sections.push(await runSparseBench({ env, work, opts, log, childEnv, repo: REPO }));
  } else if (opts.pages) {
    const size = opts.size;
    const src = path.join(dataDir, `src-${size}.bin`);
    const srcSha = ensureSource(src, size, opts.seed, log);
    sections.push(
      await runPagesBench({
        names: opts.pages,
        runs: opts.runs,
        srcSize: size,
        seed: opts.seed,
        timedRun: (a) => timedRun({ ...a, src, srcSha, size }),
        resetTarget: (target, n, mask) => resetTarget(target, src, n, mask, opts.seed),
        changedMask,
        variants: opts.pageVariants,
      }),
    );
  } else if (opts.tree) {
    const onWrong = (msg) => {
      wrongCount++;
      log(`!!!!!!!! WRONG: ${msg}`);
    };
    sections.push(await runTreeBench({ opts, env, work, dataDir, childEnv, repo: REPO, log, onWrong }));
  } else if (opts.sweep) {
    // Size sweep at one delta.
    const cells = new Map(); // `${size}/${tool}` -> runs
    const skip = new Set();
    let prev = null;
    for (const size of opts.sweep) {
      if (prev && !opts.dataDir) fs.rmSync(prev, { force: true });
      const src = path.join(dataDir, opts.data === 'db' ? `src-db-${size}.bin` : `src-${size}.bin`);
      const srcSha = (opts.data === 'db' ? ensureDbSource : ensureSource)(src, size, opts.seed, log);
      prev = src;
      const { mask, count, nBlocks } = changedMask(size, opts.sweepDelta, opts.seed);
      log(`size ${formatSize(size)}: ${count}/${nBlocks} blocks of 1 MiB changed (${opts.sweepDelta}%)`);
      for (let rep = 0; rep < opts.runs; rep++) {
        for (const tool of rotate(opts.tools, rep)) {
          const key = `${size}/${tool}`;
          if (skip.has(key)) continue;
          const rec = await timedRun({ tool, src, srcSha, size, mask, label: `[${rep + 1}/${opts.runs}] ${formatSize(size)}` });
          if (!cells.has(key)) cells.set(key, []);
          cells.get(key).push(rec);
          if (rec.status === 'failed' || rec.status === 'timeout') skip.add(key);
        }
      }
      for (const f of [remoteTarget, localTarget]) fs.rmSync(f, { force: true });
    }
    const get = (size, tool) => cells.get(`${size}/${tool}`) ?? [];
    sections.push(
      renderTables({
        title: `Size sweep at ${opts.sweepDelta}% changed 1 MiB blocks (median of ${opts.runs})`,
        firstCol: 'size',
        rowKeys: opts.sweep,
        rowLabel: formatSize,
        tools: opts.tools,
        cells: get,
        extraCols: [{ name: 'changed', value: (size) => `${changedMask(size, opts.sweepDelta, opts.seed).count} MiB` }],
      }),
      renderPdcDetails({ firstCol: 'size', rowKeys: opts.sweep, rowLabel: formatSize, tools: opts.tools, cells: get }),
    );
  } else {
    const size = opts.size;
    const src = path.join(dataDir, opts.data === 'db' ? `src-db-${size}.bin` : `src-${size}.bin`);
    const srcSha = (opts.data === 'db' ? ensureDbSource : ensureSource)(src, size, opts.seed, log);
    const masks = new Map(opts.deltas.map((d) => [d, changedMask(size, d, opts.seed)]));
    for (const [d, m] of masks) log(`delta ${d}%: ${m.count}/${m.nBlocks} blocks of 1 MiB changed, scattered (seed ${opts.seed})`);
    if (opts.bare) {
      const table = bareTable(await bareBaselines(src, path.join(work, 'bare-scratch.bin')));
      log(`bare stages (load average ${loadAvg()}):\n${table}`);
      sections.push(`### Bare stages on ${formatSize(size)} (this process alone)\n${table}\n`);
    }
    const cells = new Map();
    const skip = new Set();
    for (let rep = 0; rep < opts.runs; rep++) {
      for (const [di, delta] of opts.deltas.entries()) {
        // Rotate the tool order per repetition and delta so machine drift hits every tool.
        for (const tool of rotate(opts.tools, rep + di)) {
          const key = `${delta}/${tool}`;
          if (skip.has(key)) continue;
          const rec = await timedRun({ tool, src, srcSha, size, mask: masks.get(delta).mask, label: `[${rep + 1}/${opts.runs}] ${delta}%` });
          if (!cells.has(key)) cells.set(key, []);
          cells.get(key).push(rec);
          if (rec.status === 'failed' || rec.status === 'timeout') skip.add(key);
        }
      }
    }
    const get = (d, tool) => cells.get(`${d}/${tool}`) ?? [];
    const mibChanged = (d) => `${masks.get(d).count} MiB`;
    sections.push(
      renderTables({
        title: `${formatSize(size)} file${opts.data === 'db' ? ' of database-like pages' : ''}, changed 1 MiB blocks scattered at random (median of ${opts.runs})`,
        firstCol: 'delta',
        rowKeys: opts.deltas,
        rowLabel: (d) => `${d}%`,
        tools: opts.tools,
        cells: get,
        extraCols: [{ name: 'changed', value: mibChanged }],
      }),
      renderPdcDetails({ firstCol: 'delta', rowKeys: opts.deltas, rowLabel: (d) => `${d}%`, tools: opts.tools, cells: get }),
    );
    if (opts.bwlimit) {
      const full = changedMask(size, 100, opts.seed).mask;
      sections.push(
        await bwlimitSection(opts.bwlimit, opts.bwlimitRuns, {
          env, src, srcSha, size, mask: full, remoteTarget, localTarget, pdcCmd: opts.pdcCmd, pdcArgs: opts.pdcArgs,
          childEnv, cwd: REPO, seed: opts.seed, timeoutMs: opts.timeoutMs, log,
        }),
      );
    }
  }

  const elapsed = (Date.now() - T0) / 1000;
  const md = [
    ...sections.filter(Boolean),
    machine,
    '',
    `pdiffcopy: \`${[...opts.pdcCmd, ...opts.pdcArgs].join(' ')}\`; bench wall time ${Math.floor(elapsed / 60)} min ${Math.round(elapsed % 60)} s; load average (1/5/15 min) at start ${loadStart}, at end ${loadAvg()}.`,
    '',
  ].join('\n');
  process.stdout.write(`\n${md}`);
  if (opts.out) fs.writeFileSync(opts.out, md);
  if (opts.raw) fs.writeFileSync(opts.raw, JSON.stringify({ machine, opts, runs: allRuns }, null, 2));
  if (wrongCount) {
    log(`!!!!!!!! ${wrongCount} run(s) produced a target that does not match the source: see WRONG cells`);
    process.exitCode = 1;
  }
}

main()
  .catch((err) => {
    process.stderr.write(`bench: ${err?.stack ?? err}\n`);
    process.exitCode = 2;
  })
  .finally(() => runCleanups());
