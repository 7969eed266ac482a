// What crossed the link at the client's network namespace: its interfaces' transmitted or
// received bytes (the kernel's counters, /proc/PID/net/dev of a process inside that namespace),
// sampled on a timer. This is the rate a link shared with production sees: SSH framing,
// encryption and TCP/IP headers included, counted when the bytes leave, not when pdiffcopy hears
// that a run was written. Samples are [{ elapsedS, bytes }]; the window and phase rates below
// serve them and the --json-progress samples alike.
import fs from 'node:fs';
import { startDaemon } from './proc.mjs';

/** Bytes every interface but loopback transmitted ('tx') or received ('rx'), from a /proc/net/dev text. */
export function linkBytes(netDev, way) {
  let sum = 0;
  for (const line of netDev.split('\n')) {
    const m = /^\s*([^:\s]+):\s*(.*)$/.exec(line);
    if (!m || m[1] === 'lo') continue;
    const fields = m[2].trim().split(/\s+/).map(Number);
    // 8 receive fields (bytes packets errs drop fifo frame compressed multicast), then transmit bytes.
    if (fields.length >= 9) sum += way === 'rx' ? fields[0] : fields[8];
  }
  return sum;
}

/**
 * Sample what the namespace `ns` transmitted (`way` 'tx', a push's data) or received ('rx', a
 * pull's) every `periodMs`; stop() ends it and returns [{ elapsedS, bytes }], bytes counted from
 * the first sample. A sleeping process placed in the namespace lends its /proc entry; samples
 * start once it runs there (its command is `sleep`: `ip netns exec` has joined the namespace
 * before it execs).
 */
export async function startWireSampler(ns, way, periodMs = 100) {
  const holder = startDaemon(['ip', 'netns', 'exec', ns, 'sleep', '86400']);
  const comm = `/proc/${holder.pid}/comm`;
  for (let i = 0; i < 200 && readOr(comm, '').trim() !== 'sleep'; i++) await new Promise((r) => setTimeout(r, 10));
  if (readOr(comm, '').trim() !== 'sleep') throw new Error(`wire sampler: no process in namespace ${ns}`);
  const file = `/proc/${holder.pid}/net/dev`;
  const t0 = performance.now();
  const first = linkBytes(fs.readFileSync(file, 'utf8'), way);
  const samples = [{ elapsedS: 0, bytes: 0 }];
  const timer = setInterval(() => {
    const text = readOr(file, undefined);
    if (text !== undefined) samples.push({ elapsedS: (performance.now() - t0) / 1000, bytes: linkBytes(text, way) - first });
  }, periodMs);
  return {
    stop() {
      clearInterval(timer);
      holder.kill('SIGTERM');
      return samples;
    },
  };
}

function readOr(file, fallback) {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    return fallback;
  }
}

/**
 * The sending phase of a run's samples: from the last sample at or below `lo` of all the bytes
 * sent to the first at or above `hi` (start-up's handshakes and the final exchanges are outside).
 */
export function sendingPhase(samples, lo = 0.01, hi = 0.99) {
  const total = samples.at(-1)?.bytes ?? 0;
  if (total <= 0) return [];
  let a = 0;
  while (a + 1 < samples.length && samples[a + 1].bytes <= lo * total) a++;
  let b = samples.length - 1;
  while (b - 1 > a && samples[b - 1].bytes >= hi * total) b--;
  return samples.slice(a, b + 1);
}

/** Rates (bytes per second) over every window of at least windowS seconds that starts at a sample of `phase`. */
export function windowRatesOf(phase, windowS) {
  const rates = [];
  let j = 0;
  for (let i = 0; i < phase.length; i++) {
    while (j < phase.length && phase[j].elapsedS - phase[i].elapsedS < windowS) j++;
    if (j >= phase.length) break;
    rates.push((phase[j].bytes - phase[i].bytes) / (phase[j].elapsedS - phase[i].elapsedS));
  }
  return rates;
}

/** The whole phase's rate (bytes per second). */
export function phaseRate(phase) {
  if (phase.length < 2) return NaN;
  return (phase.at(-1).bytes - phase[0].bytes) / (phase.at(-1).elapsedS - phase[0].elapsedS);
}
