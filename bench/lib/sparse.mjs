// Sparse images and block devices (`node bench/run.mjs --sparse`): a sparse image (default
// 4 GiB with 256 MiB of data in 16 extents, holes at the start, between and at the end) synced
// to a new target and to one whose data differs in 10% (1 MiB blocks inside the extents), by
// pdiffcopy push/pull against rsync --sparse (with and without --inplace, push and pull); then
// loop device to loop device (as root) against a dd-over-ssh raw pipe. Each cell reports the
// median time, the target's allocation (stat st_blocks) beside the source's, and the bytes on
// the wire (pdiffcopy's bytesSent, rsync's --stats) beside the source's allocated data + 1%.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { formatSize, sha256File } from './files.mjs';
import { HOST_ALIAS } from './env.mjs';
import { addCleanup, firstErrorLine, run, sh } from './proc.mjs';
import { median } from './table.mjs';
import { CIPHER, parsePdcJson } from './tools.mjs';

const MiB = 1 << 20;
const EXTENTS = 16;
const FIXED_MTIME = new Date('2020-01-01T00:00:00Z');

export const SPARSE_TOOLS = {
  push: { label: 'pdiffcopy push', pdc: true, side: 'remote' },
  pull: { label: 'pdiffcopy pull', pdc: true, side: 'local' },
  'rsync-sparse-inplace': { label: 'rsync --sparse --inplace', side: 'remote' },
  'rsync-sparse': { label: 'rsync --sparse', side: 'remote' },
  'rsync-sparse-pull': { label: 'rsync --sparse (pull)', side: 'local' },
};
export const DEVICE_TOOLS = {
  push: { label: 'pdiffcopy push', pdc: true },
  pull: { label: 'pdiffcopy pull', pdc: true },
  'dd-pipe': { label: 'dd → ssh dd (raw pipe)' },
};

function keystream(label, seed, length) {
  const key = crypto.createHash('sha256').update(`pdc-sparse:${label}:${seed}`).digest().subarray(0, 16);
  return crypto.createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

/** Where the data extents lie: one per 1/16 of the file, a quarter of the way into it. */
function extents(size, data) {
  const stride = size / EXTENTS;
  const len = data / EXTENTS;
  return Array.from({ length: EXTENTS }, (_, e) => ({ offset: e * stride + Math.floor(stride / 4 / MiB) * MiB, length: len }));
}

/** The source image: data extents of keystream, holes elsewhere; fsynced, mtime pinned. */
function makeSource(file, size, data, seed) {
  const fd = fs.openSync(file, 'w');
  try {
    for (const [i, x] of extents(size, data).entries()) fs.writeSync(fd, keystream(`extent-${i}`, seed, x.length), 0, x.length, x.offset);
    fs.ftruncateSync(fd, size);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.utimesSync(file, FIXED_MTIME, FIXED_MTIME);
}

/** pct% of the data as 1 MiB blocks (seeded, inside the extents) that a changed target differs in. */
function changedBlocks(size, data, pct, seed) {
  const blocks = extents(size, data).flatMap((x) => Array.from({ length: x.length / MiB }, (_, k) => x.offset + k * MiB));
  const want = Math.round((blocks.length * pct) / 100);
  const rnd = crypto.createHash('sha256').update(`pdc-sparse-pick:${seed}`).digest();
  const picked = new Set();
  for (let i = 0; picked.size < want; i++) picked.add(blocks[crypto.createHash('sha256').update(rnd).update(String(i)).digest().readUInt32BE(0) % blocks.length]);
  return [...picked].sort((a, b) => a - b);
}

/** A target of the given state: none (new), or a sparse copy of the source with `changed` blocks of other data. */
function resetTarget(target, src, changed, seed) {
  fs.rmSync(target, { force: true });
  if (!changed) return;
  sh(['cp', '--sparse=always', src, target], { timeoutMs: 300_000 });
  const fd = fs.openSync(target, 'r+');
  try {
    for (const off of changed) fs.writeSync(fd, keystream(`changed-${off}`, seed, MiB), 0, MiB, off);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

const allocated = (file) => fs.statSync(file).blocks * 512;

/** rsync --stats: the bytes the client sent (push) or received (pull). */
function rsyncWireBytes(stdout, side) {
  const m = new RegExp(`Total bytes ${side === 'remote' ? 'sent' : 'received'}: ([\\d,.]+)`).exec(stdout);
  return m ? Number(m[1].replace(/[,.]/g, '')) : NaN;
}

function shq(word) {
  return /^[A-Za-z0-9_\/.,:=@%+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Runs the sparse rows and (as root, with losetup) the device rows; returns markdown.
 * ctx: { env, work, opts, log, childEnv, repo }
 */
export async function runSparseBench(ctx) {
  const { env, work, opts, log } = ctx;
  const size = opts.sparseSize;
  const data = opts.sparseData;
  const src = path.join(work, 'sparse-src.img');
  const remoteTarget = path.join(work, 'sparse-remote.img');
  const localTarget = path.join(work, 'sparse-local.img');
  log(`sparse source: ${formatSize(size)} with ${formatSize(data)} of data in ${EXTENTS} extents`);
  makeSource(src, size, data, opts.seed);
  const srcSha = sha256File(src);
  const srcAlloc = allocated(src);
  const changed = changedBlocks(size, data, 10, opts.seed);
  log(`source allocated ${srcAlloc} bytes; the 10% state differs in ${changed.length} blocks of 1 MiB`);
  const sshCmd = `ssh -F ${shq(env.sshConfig)} -c ${CIPHER}`;
  const remote = (p) => `${HOST_ALIAS}:${p}`;

  const sparseCommand = (tool) => {
    const target = SPARSE_TOOLS[tool].side === 'remote' ? remoteTarget : localTarget;
    const pdc = (from, to) => [...opts.pdcCmd, '-F', env.sshConfig, ...opts.pdcArgs, '--json', from, to];
    switch (tool) {
      case 'push': return { argv: pdc(src, remote(target)), target };
      case 'pull': return { argv: pdc(remote(src), target), target };
      case 'rsync-sparse-inplace': return { argv: ['rsync', '--sparse', '--inplace', '--no-whole-file', '--stats', '-e', sshCmd, src, remote(target)], target };
      case 'rsync-sparse': return { argv: ['rsync', '--sparse', '--stats', '-e', sshCmd, src, remote(target)], target };
      case 'rsync-sparse-pull': return { argv: ['rsync', '--sparse', '--stats', '-e', sshCmd, remote(src), target], target };
      default: throw new Error(`unknown sparse tool ${tool}`);
    }
  };

  /** One timed run; checks the target (sha256) and records time, allocation and wire bytes. */
  async function timed(argv, target, isPdc, side, stdinFd) {
    sh(['sync'], { allowFail: true, timeoutMs: 300_000 });
    const r = await run(env.wrap(argv), { timeoutMs: opts.timeoutMs, cwd: ctx.repo, env: ctx.childEnv, stdinFd });
    if (r.timedOut || r.code !== 0) return { status: 'failed', seconds: r.seconds, error: firstErrorLine(r.stderr) || `exit ${r.code}` };
    const ok = sha256File(target) === srcSha;
    const wire = isPdc ? parsePdcJson(r.stdout)?.bytesSent : side ? rsyncWireBytes(r.stdout, side) : NaN;
    return { status: ok ? 'ok' : 'wrong', seconds: r.seconds, wire, alloc: fs.statSync(target).isFile() ? allocated(target) : NaN };
  }

  const results = [];
  let wrong = 0;
  const record = (section, state, tool, label, rec) => {
    results.push({ section, state, tool, ...rec });
    if (rec.status === 'wrong') wrong++;
    const extra = rec.status === 'ok' ? `, allocated ${rec.alloc}, wire ${rec.wire}` : ` ${rec.status.toUpperCase()} ${rec.error ?? ''}`;
    log(`  ${section}/${state} ${label}: ${rec.seconds.toFixed(2)} s${extra}`);
  };

  const states = [
    ['new target', null],
    ['10% of the data changed', changed],
  ];
  const tools = opts.sparseTools ?? Object.keys(SPARSE_TOOLS);
  for (let rep = 0; rep < opts.runs; rep++) {
    for (const [si, [state, mask]] of states.entries()) {
      for (const tool of rotate(tools, rep + si)) {
        const cmd = sparseCommand(tool);
        resetTarget(cmd.target, src, mask, opts.seed);
        const rec = await timed(cmd.argv, cmd.target, SPARSE_TOOLS[tool].pdc, SPARSE_TOOLS[tool].side);
        record('sparse', state, tool, `[${rep + 1}/${opts.runs}] ${SPARSE_TOOLS[tool].label}`, rec);
        fs.rmSync(cmd.target, { force: true });
      }
    }
  }
  const md = [
    renderRows(`Sparse image: ${formatSize(size)}, ${formatSize(data)} of data (source allocated ${(srcAlloc / MiB).toFixed(1)} MiB; wire target ≤ ${((srcAlloc * 1.01) / MiB).toFixed(1)} MiB), median of ${opts.runs}`,
      states.map((s) => s[0]), tools, SPARSE_TOOLS, results.filter((r) => r.section === 'sparse'), 'rsync-sparse', true),
  ];

  if (canLoop()) md.push(await deviceRows());
  else md.push('Loop-device rows skipped: they need root and losetup.');
  if (wrong) process.exitCode = 1;
  return md.join('\n\n');

  async function deviceRows() {
    const srcDev = attach(src, true);
    const targetImage = path.join(work, 'device-target.img');
    const states = [
      ['blank device (all zeros)', null],
      ['10% of the data changed', changed],
    ];
    const tools = Object.keys(DEVICE_TOOLS);
    for (let rep = 0; rep < opts.runs; rep++) {
      for (const [si, [state, mask]] of states.entries()) {
        for (const tool of rotate(tools, rep + si)) {
          resetTarget(targetImage, src, mask, opts.seed);
          if (!mask) fs.writeFileSync(targetImage, ''), fs.truncateSync(targetImage, size);
          const dstDev = attach(targetImage, false);
          let rec;
          try {
            rec = await deviceRun(tool, srcDev, dstDev);
          } finally {
            detach(dstDev);
          }
          record('device', state, tool, `[${rep + 1}/${opts.runs}] ${DEVICE_TOOLS[tool].label}`, rec);
        }
      }
    }
    detach(srcDev);
    return renderRows(`Loop device to loop device: ${formatSize(size)} (the sparse image above as the source device), median of ${opts.runs}`,
      states.map((s) => s[0]), tools, DEVICE_TOOLS, results.filter((r) => r.section === 'device'), 'dd-pipe', false);
  }

  async function deviceRun(tool, srcDev, dstDev) {
    const pdc = (from, to) => [...opts.pdcCmd, '-F', env.sshConfig, ...opts.pdcArgs, '--json', from, to];
    if (tool === 'push') return timed(pdc(srcDev, remote(dstDev)), dstDev, true);
    if (tool === 'pull') return timed(pdc(remote(srcDev), dstDev), dstDev, true);
    // The raw pipe: every byte of the device, written in place and flushed (pdiffcopy fsyncs too).
    const fd = fs.openSync(srcDev, 'r');
    try {
      const argv = ['ssh', '-F', env.sshConfig, '-c', CIPHER, HOST_ALIAS, `dd of=${shq(dstDev)} bs=4M iflag=fullblock conv=notrunc,fsync status=none`];
      const rec = await timed(argv, dstDev, false, null, fd);
      return { ...rec, wire: size };
    } finally {
      fs.closeSync(fd);
    }
  }
}

function rotate(arr, k) {
  return arr.map((_, i) => arr[(i + k) % arr.length]);
}

function canLoop() {
  return process.getuid?.() === 0 && sh(['losetup', '--version'], { allowFail: true }).status === 0;
}

const attached = new Set();
addCleanup(() => {
  for (const dev of attached) sh(['losetup', '-d', dev], { allowFail: true });
});

function attach(image, readOnly) {
  const dev = sh(['losetup', '-f', '--show', ...(readOnly ? ['-r'] : []), image]).stdout.trim();
  attached.add(dev);
  return dev;
}

function detach(dev) {
  sh(['losetup', '-d', dev], { allowFail: true });
  attached.delete(dev);
}

/** One markdown table: a row per state, per tool "time (× vs base) · allocated · wire". */
function renderRows(title, states, tools, labels, runs, base, withAlloc) {
  const cell = (state, tool) => {
    const rs = runs.filter((r) => r.state === state && r.tool === tool);
    if (!rs.length) return '–';
    const bad = rs.find((r) => r.status !== 'ok');
    if (bad) return `${bad.status === 'wrong' ? '**WRONG**' : 'failed'}${bad.error ? `: ${bad.error}` : ''}`;
    return { seconds: median(rs.map((r) => r.seconds)), alloc: median(rs.map((r) => r.alloc)), wire: median(rs.map((r) => r.wire)), runs: rs.map((r) => r.seconds.toFixed(2)).join('/') };
  };
  const fmt = (n) => (Number.isFinite(n) ? `${(n / MiB).toFixed(1)} MiB` : '?');
  const lines = [`### ${title}`, '', `| state | tool | time (runs) | vs ${labels[base].label} | target allocated | on the wire |`, '|---|---|---:|---:|---:|---:|'];
  for (const state of states) {
    const b = cell(state, base);
    for (const tool of tools) {
      const c = cell(state, tool);
      if (typeof c === 'string') {
        lines.push(`| ${state} | ${labels[tool].label} | ${c} | | | |`);
        continue;
      }
      const ratio = typeof b === 'object' && b.seconds > 0 ? `${(c.seconds / b.seconds).toFixed(2)}×` : '';
      lines.push(`| ${state} | ${labels[tool].label} | ${c.seconds.toFixed(2)} s (${c.runs}) | ${ratio} | ${withAlloc ? fmt(c.alloc) : 'device'} | ${fmt(c.wire)} |`);
    }
  }
  return lines.join('\n');
}
