// --bare: the stages of the data path alone, on the run's own source file and box:
// reading it (warm page cache), xxh64 over it, reading and hashing together, and
// writing in place then fsync. Each is CPU and wall time of this one process.
import fs from 'node:fs';
import xxhash from 'xxhash-wasm';

const MiB = 1 << 20;

function timed(fn) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const cpu = process.cpuUsage(c0);
  return { seconds: (performance.now() - t0) / 1000, cpu: (cpu.user + cpu.system) / 1e6 };
}

/** Returns rows { stage, seconds, cpu, mibPerSecond } for `file` (read) and `scratch` (written). */
export async function bareBaselines(file, scratch) {
  const { h64Raw } = await xxhash();
  const size = fs.statSync(file).size;
  const buf = Buffer.allocUnsafe(MiB);
  const each = (f) => {
    const fd = fs.openSync(file, 'r');
    try {
      for (let off = 0; off < size; off += MiB) f(fd, fs.readSync(fd, buf, 0, MiB, off));
    } finally {
      fs.closeSync(fd);
    }
  };
  const rows = [];
  const add = (stage, r, bytes = size) => rows.push({ stage, ...r, mibPerSecond: bytes / MiB / r.seconds });
  each(() => undefined); // warm
  add('read (1 MiB preads, page cache)', timed(() => each(() => undefined)));
  const data = Buffer.allocUnsafe(64 * MiB);
  fs.readSync(fs.openSync(file, 'r'), data, 0, data.length, 0);
  const rounds = Math.max(1, Math.round(size / data.length));
  add('xxh64 (1 MiB blocks in memory)', timed(() => {
    for (let r = 0; r < rounds; r++) for (let o = 0; o < data.length; o += MiB) h64Raw(data.subarray(o, o + MiB));
  }), rounds * data.length);
  add('read + xxh64', timed(() => each((_fd, n) => h64Raw(buf.subarray(0, n)))));
  fs.copyFileSync(file, scratch);
  add('write in place (1 MiB pwrites) + fsync', timed(() => {
    const fd = fs.openSync(scratch, 'r+');
    for (let off = 0; off < size; off += MiB) fs.writeSync(fd, data, (off % data.length), MiB, off);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
  }));
  fs.rmSync(scratch, { force: true });
  return rows;
}

export function bareTable(rows) {
  return [
    '| stage | seconds | CPU s | MiB/s |',
    '|---|---:|---:|---:|',
    ...rows.map((r) => `| ${r.stage} | ${r.seconds.toFixed(2)} | ${r.cpu.toFixed(2)} | ${Math.round(r.mibPerSecond)} |`),
  ].join('\n');
}
