// Markdown rendering of benchmark results, and the machine description line.
import fs from 'node:fs';
import os from 'node:os';
import { spawnSync } from 'node:child_process';
import { BASELINE, CIPHER, TOOLS } from './tools.mjs';

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

const esc = (s) => String(s).replace(/\|/g, '\\|').replace(/\n/g, ' ');

/**
 * One cell's summary from its runs: { status: 'ok'|'wrong'|'failed'|'timeout'|'none', seconds, rssMiB, note }.
 * runs: [{ seconds, rssKiB, status: 'ok'|'wrong'|'failed'|'timeout', error }]
 */
export function summarize(runs = []) {
  if (!runs.length) return { status: 'none' };
  const ok = runs.filter((r) => r.status === 'ok' || r.status === 'wrong');
  const seconds = median(ok.map((r) => r.seconds));
  const rssMiB = median(ok.map((r) => r.rssKiB / 1024));
  if (runs.some((r) => r.status === 'wrong')) return { status: 'wrong', seconds, rssMiB, n: ok.length };
  const bad = runs.find((r) => r.status === 'failed' || r.status === 'timeout');
  if (bad) return { status: bad.status, note: bad.error, seconds, rssMiB, n: ok.length };
  return { status: 'ok', seconds, rssMiB, n: ok.length };
}

function timeCell(s, base) {
  if (s.status === 'none') return '–';
  if (s.status === 'failed') return `failed: ${s.note}`;
  if (s.status === 'timeout') return `timeout: ${s.note}`;
  const ratio = Number.isFinite(base) && base > 0 ? ` (${(s.seconds / base).toFixed(2)}×)` : '';
  const t = `${s.seconds.toFixed(2)} s${ratio}`;
  return s.status === 'wrong' ? `**WRONG** ${t}` : t;
}

function mdTable(header, rows) {
  const lines = [`| ${header.map(esc).join(' | ')} |`, `|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|`];
  for (const r of rows) lines.push(`| ${r.map(esc).join(' | ')} |`);
  return lines.join('\n');
}

/**
 * rowKeys: e.g. deltas; rowLabel(k) -> first column; cells(k, tool) -> runs[].
 * Returns markdown with a time table (ratio vs rsync --inplace) and a peak-RSS table.
 */
export function renderTables({ title, firstCol, rowKeys, rowLabel, tools, cells, extraCols = [] }) {
  const header = [firstCol, ...extraCols.map((c) => c.name), ...tools.map((t) => TOOLS[t].label)];
  const timeRows = rowKeys.map((k) => {
    const base = tools.includes(BASELINE) ? summarize(cells(k, BASELINE)) : null;
    const baseSec = base && (base.status === 'ok' || base.status === 'wrong') ? base.seconds : NaN;
    return [rowLabel(k), ...extraCols.map((c) => c.value(k)), ...tools.map((t) => timeCell(summarize(cells(k, t)), baseSec))];
  });
  const rssRows = rowKeys.map((k) => [
    rowLabel(k),
    ...tools.map((t) => {
      const s = summarize(cells(k, t));
      return Number.isFinite(s.rssMiB) ? `${s.rssMiB.toFixed(0)} MiB` : '–';
    }),
  ]);
  const rangeRows = rowKeys.map((k) => [
    rowLabel(k),
    ...tools.map((t) => {
      const secs = cells(k, t)
        .filter((r) => r.status === 'ok' || r.status === 'wrong')
        .map((r) => r.seconds);
      if (secs.length < 2) return secs.length ? `${secs[0].toFixed(2)}` : '–';
      return `${Math.min(...secs).toFixed(2)}–${Math.max(...secs).toFixed(2)}`;
    }),
  ]);
  const multi = rowKeys.some((k) => tools.some((t) => cells(k, t).length > 1));
  const out = [`### ${title}`, '', mdTable(header, timeRows), ''];
  out.push(
    tools.includes(BASELINE)
      ? `Median wall time of the client command; in parentheses the ratio to rsync --inplace in the same row (lower is faster).`
      : `Median wall time of the client command.`,
    '',
    `Client peak RSS (median of GNU time %M: largest process of the client command tree, e.g. rsync or its ssh):`,
    '',
    mdTable([firstCol, ...tools.map((t) => TOOLS[t].label)], rssRows),
    '',
  );
  if (multi) {
    out.push('Run-to-run range of wall time (min–max s; a wide range means a noisy machine):', '', mdTable([firstCol, ...tools.map((t) => TOOLS[t].label)], rangeRows), '');
  }
  return out.join('\n');
}

/** Table of pdiffcopy's own --json summaries (last successful run of each cell). */
export function renderPdcDetails({ firstCol, rowKeys, rowLabel, tools, cells }) {
  const pdcTools = tools.filter((t) => TOOLS[t].pdc);
  const rows = [];
  for (const k of rowKeys) {
    for (const t of pdcTools) {
      const runs = cells(k, t).filter((r) => r.pdc);
      const j = runs.at(-1)?.pdc;
      if (!j) continue;
      const mib = (x) => (Number.isFinite(x) ? `${(x / 2 ** 20).toFixed(0)} MiB` : '?');
      rows.push([
        rowLabel(k),
        TOOLS[t].label,
        mib(j.bytesSent),
        `${j.blocksChanged ?? '?'} / ${j.blocksTotal ?? '?'}`,
        Number.isFinite(j.seconds) ? `${Number(j.seconds).toFixed(2)} s` : '?',
        String(j.verified ?? '?'),
      ]);
    }
  }
  if (!rows.length) return '';
  return [
    'pdiffcopy --json summaries (last run):',
    '',
    mdTable([firstCol, 'tool', 'bytesSent', 'blocksChanged / blocksTotal', 'own seconds', 'verified'], rows),
    '',
  ].join('\n');
}

function cmdVersion(argv, re) {
  const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8', timeout: 5000 });
  const text = `${r.stdout ?? ''}${r.stderr ?? ''}`;
  const m = re.exec(text);
  return m ? m[1] : '?';
}

export function loadAvg() {
  return os.loadavg().map((x) => x.toFixed(2)).join(' ');
}

export function machineLine({ link, cipherNote = true }) {
  let cpu = '?';
  try {
    cpu = /model name\s*:\s*(.+)/.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? '?';
  } catch {
    /* not linux */
  }
  const nproc = spawnSync('nproc', { encoding: 'utf8' }).stdout?.trim() || String(os.availableParallelism?.() ?? os.cpus().length);
  const ssh = cmdVersion(['ssh', '-V'], /(OpenSSH_[^\s,]+)/);
  const rsync = cmdVersion(['rsync', '--version'], /version\s+(\S+)/);
  const parts = [
    `nproc ${nproc}`,
    `CPU ${cpu}`,
    `RAM ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB`,
    `Linux ${os.release()}`,
    `node ${process.version}`,
    ssh,
    `rsync ${rsync}`,
    `link: ${link}`,
  ];
  if (cipherNote) parts.push(`cipher ${CIPHER} for all OpenSSH tools (ssh/scp/rsync -c)`);
  parts.push(`date ${new Date().toISOString().replace(/\.\d+Z$/, 'Z')}`);
  return `Machine: ${parts.join('; ')}`;
}
