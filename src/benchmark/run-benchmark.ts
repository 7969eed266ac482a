import { spawnSync } from 'node:child_process';
import { closeSync, openSync, statSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { PdcError, throwIfAborted } from '../errors/pdc-error.js';
// Only the configuration's type (erased at run time): the CLI hands in the config and the sync to run.
import type { RunConfig } from '../cli/options.js';
import type { SyncSummary } from '../engine/events.js';
import { formatBytes } from '../format-bytes.js';
import { shellQuote } from '../protocol/bootstrap.js';
import { benchRounds } from './plan.js';
import { pickBlocks, seededBytes } from './seeded.js';

export interface BenchRow {
  delta: number;
  bytesChanged: number;
  pdcSent: number;
  pdcSeconds: number;
  rsyncSeconds?: number;
}

/**
 * -B/--benchmark COUNT: sync once, then COUNT times scatter-mutate the local
 * target (seeded, so the same state can be replayed for rsync), resync with
 * pdiffcopy, replay the mutation, resync with `rsync --inplace --no-whole-file`.
 */
export async function runBenchmark(
  cfg: RunConfig,
  syncOnce: () => Promise<SyncSummary>,
  log: (line: string) => void,
  signal?: AbortSignal,
): Promise<BenchRow[]> {
  const targetPath = cfg.target.path;
  await confirm(cfg, targetPath);
  log('benchmark: initial sync');
  await syncOnce();
  const size = statSync(targetPath).size;
  const blocks = Math.ceil(size / cfg.blockSize);
  const rsync = hasRsync();
  const rows: BenchRow[] = [];
  for (const r of benchRounds(cfg.benchmark!, blocks)) {
    throwIfAborted(signal);
    const picked = pickBlocks(blocks, r.blocks, r.seed);
    const changed = mutate(targetPath, cfg.blockSize, picked, r.seed);
    const t0 = performance.now();
    const summary = await syncOnce();
    const pdcSeconds = (performance.now() - t0) / 1000;
    let rsyncSeconds: number | undefined;
    if (rsync) {
      mutate(targetPath, cfg.blockSize, picked, r.seed);
      rsyncSeconds = runRsync(cfg);
    }
    rows.push({ delta: r.delta, bytesChanged: changed, pdcSent: summary.bytesSent, pdcSeconds, rsyncSeconds });
    log(`benchmark: ${r.delta}% done`);
  }
  // --json: the rows as one JSON object, like every other --json run.
  process.stdout.write((cfg.json ? JSON.stringify({ ok: true, benchmark: rows }) : renderTable(rows, rsync)) + '\n');
  return rows;
}

function mutate(path: string, blockSize: number, blocks: number[], seed: number): number {
  const size = statSync(path).size;
  const fd = openSync(path, 'r+');
  let bytes = 0;
  try {
    for (const b of blocks) {
      const off = b * blockSize;
      const n = Math.min(blockSize, size - off);
      if (n <= 0) continue;
      writeSync(fd, seededBytes(seed * 1_000_003 + b, n), 0, n, off);
      bytes += n;
    }
  } finally {
    closeSync(fd);
  }
  return bytes;
}

function hasRsync(): boolean {
  return spawnSync('rsync', ['--version'], { stdio: 'ignore' }).status === 0;
}

/** rsync the same way: --inplace --no-whole-file, over the same host (OpenSSH with our -p/-i/-F) when remote. */
function runRsync(cfg: RunConfig): number {
  // --ignore-times: the mutated target has the source's size and, when a round takes under a
  // second, an mtime rsync's quick check (whole seconds) calls equal: it would skip the file.
  const args = ['--inplace', '--no-whole-file', '--ignore-times'];
  let source = cfg.source.path;
  if (cfg.source.kind === 'remote') {
    const ssh = ['ssh'];
    if (cfg.ssh.configFile) ssh.push('-F', cfg.ssh.configFile);
    const port = cfg.source.port ?? cfg.ssh.port;
    if (port) ssh.push('-p', String(port));
    for (const i of cfg.ssh.identityFiles) ssh.push('-i', i);
    args.push('-e', ssh.map(shellQuote).join(' '));
    const host = cfg.source.host.includes(':') ? `[${cfg.source.host}]` : cfg.source.host;
    source = `${cfg.source.user ? cfg.source.user + '@' : ''}${host}:${cfg.source.path}`;
  }
  args.push(source, cfg.target.path);
  const t0 = performance.now();
  const r = spawnSync('rsync', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 3_600_000 });
  const seconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    throw new PdcError('INTERNAL', `rsync failed (${r.status}): ${String(r.stderr).trim().split('\n')[0]}`);
  }
  return seconds;
}

export function renderTable(rows: BenchRow[], rsync: boolean): string {
  const head = ['Delta', 'Changed', 'pdiffcopy sent', 'pdiffcopy', ...(rsync ? ['rsync --inplace', 'ratio'] : [])];
  const lines = [head, head.map((h) => '-'.repeat(h.length))];
  for (const r of rows) {
    lines.push([
      `${r.delta}%`,
      formatBytes(r.bytesChanged),
      formatBytes(r.pdcSent),
      `${r.pdcSeconds.toFixed(2)} s`,
      ...(rsync && r.rsyncSeconds !== undefined ? [`${r.rsyncSeconds.toFixed(2)} s`, `${(r.pdcSeconds / r.rsyncSeconds).toFixed(2)}x`] : []),
    ]);
  }
  return lines.map((l) => '| ' + l.join(' | ') + ' |').join('\n');
}

async function confirm(cfg: RunConfig, path: string): Promise<void> {
  if (cfg.yes) return;
  if (!process.stdin.isTTY) {
    throw new PdcError('CONFIRMATION_REQUIRED', `--benchmark overwrites blocks of ${path} ${cfg.benchmark} times`, {
      hint: 'pass --yes to confirm (no terminal to ask on)',
    });
  }
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  const answer = await new Promise<string>((resolve) => rl.question(`Overwrite blocks of ${path} ${cfg.benchmark} times? [y/N] `, resolve));
  rl.close();
  if (!/^y(es)?$/i.test(answer.trim())) throw new PdcError('CONFIRMATION_REQUIRED', 'benchmark cancelled', { hint: 'answer y, or pass --yes' });
}
