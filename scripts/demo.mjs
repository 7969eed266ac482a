#!/usr/bin/env node
// The embedded default job: a real local-to-local sync of a generated file.
// Makes a 512 MiB source, a target that differs in 10% of its 1 MiB blocks
// (scattered), shows the dry-run similarity, syncs, and checks the result with sha256.
import { execFileSync } from 'node:child_process';
import { createCipheriv, createHash, randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, writeSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MiB = 1 << 20;
const size = Number(process.env.PDC_DEMO_MIB || 512) * MiB;
const bin = fileURLToPath(new URL('../bin/pdiffcopy.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'pdiffcopy-demo-'));
const src = join(dir, 'source.img');
const dst = join(dir, 'target.img');

function fill(path, bytes) {
  const fd = openSync(path, 'w');
  const cipher = createCipheriv('aes-128-ctr', randomBytes(16), randomBytes(16));
  const zero = Buffer.alloc(4 * MiB);
  for (let off = 0; off < bytes; off += zero.length) writeSync(fd, cipher.update(zero), 0, Math.min(zero.length, bytes - off), off);
  closeSync(fd);
}
function sha256(path) {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.allocUnsafe(4 * MiB);
  for (let pos = 0, n; (n = readSync(fd, buf, 0, buf.length, pos)) > 0; pos += n) h.update(buf.subarray(0, n));
  closeSync(fd);
  return h.digest('hex');
}
const run = (args) => execFileSync(process.execPath, [bin, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });

try {
  console.log(`demo: making a ${size / MiB} MiB source and a target that differs in 10% of its blocks, in ${dir}`);
  fill(src, size);
  copyFileSync(src, dst);
  const blocks = size / MiB;
  const fd = openSync(dst, 'r+');
  const junk = randomBytes(MiB);
  const picked = new Set();
  while (picked.size < blocks / 10) picked.add(Math.floor(Math.random() * blocks));
  for (const b of picked) writeSync(fd, junk, 0, MiB, b * MiB);
  closeSync(fd);

  process.stdout.write(`demo: pdiffcopy --dry-run: ${run(['--dry-run', src, dst])}`);
  const summary = JSON.parse(run(['--json', src, dst]));
  console.log(`demo: pdiffcopy --json: ${JSON.stringify(summary)}`);
  const same = sha256(src) === sha256(dst);
  console.log(`demo: sent ${summary.bytesSent / MiB} MiB of ${summary.bytesTotal / MiB} MiB (${summary.blocksChanged} of ${summary.blocksTotal} blocks) in ${summary.seconds} s; sha256 of target ${same ? 'matches' : 'DOES NOT MATCH'} the source`);
  process.exitCode = same && summary.blocksChanged === picked.size ? 0 : 1;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
