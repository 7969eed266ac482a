// --cpu: CPU seconds of every process of one timed run, by side and name (client:node,
// client:ssh, server:sshd, server:node = the agents, ...), sampled from /proc. The client
// side is the timed command's process group, the server side every descendant of the
// bench's sshd. A process that exits between two samples loses at most one interval.
import fs from 'node:fs';

/** Clock ticks per second of /proc/<pid>/stat's utime and stime (USER_HZ, 100 on Linux). */
const TICKS = 100;

function readStat(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = s.lastIndexOf(')');
    const f = s.slice(close + 2).split(' ');
    return { pid, comm: s.slice(s.indexOf('(') + 1, close), ppid: Number(f[1]), pgrp: Number(f[2]), cpu: (Number(f[11]) + Number(f[12])) / TICKS };
  } catch {
    return null; // gone
  }
}

function cmdline(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** Start sampling; `marker` is a string only the timed command's arguments contain. */
export function startCpuSampler({ sshdPidFile, marker, intervalMs = 50 }) {
  const sshd = Number(fs.readFileSync(sshdPidFile, 'utf8').trim());
  const seen = new Map();
  let group = null;
  const sample = () => {
    const all = new Map();
    for (const d of fs.readdirSync('/proc')) {
      if (!/^\d+$/.test(d)) continue;
      const st = readStat(Number(d));
      if (st) all.set(st.pid, st);
    }
    if (group === null) {
      for (const st of all.values()) if (cmdline(st.pid).includes(marker)) group = st.pgrp;
    }
    for (const st of all.values()) {
      let side = group !== null && st.pgrp === group ? 'client' : null;
      for (let p = st.ppid, up = 0; !side && p > 1 && up < 8; p = all.get(p)?.ppid ?? 0, up++) if (p === sshd) side = 'server';
      if (side) seen.set(st.pid, { key: `${side}:${st.comm}`, cpu: st.cpu });
    }
  };
  sample();
  const timer = setInterval(sample, intervalMs);
  return {
    /** CPU seconds by side:name, from the start of sampling. */
    stop() {
      clearInterval(timer);
      sample();
      const out = {};
      for (const v of seen.values()) out[v.key] = Math.round(((out[v.key] ?? 0) + v.cpu) * 100) / 100;
      return out;
    },
  };
}

export function cpuText(cpu) {
  return Object.entries(cpu)
    .sort((a, b) => b[1] - a[1])
    .map(([k, v]) => `${k} ${v.toFixed(2)}`)
    .join(', ');
}
