import cliProgress from 'cli-progress';
import type { SyncEvent } from '../../engine/events.js';
import { formatBytes } from '../size.js';
import { plainRenderer } from './plain.js';
import type { Renderer } from './renderer.js';

/**
 * A live bar on stderr (only used when stderr is a TTY): phase, bytes compared,
 * bytes sent and the rate. Everything else is the plain renderer's.
 */
export function progressBarRenderer(verbosity: number): Renderer {
  const plain = plainRenderer(verbosity);
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: '{phase} |{bar}| {percentage}% {done}/{total} compared, {sent} sent, {rate}/s',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let t0 = Date.now();
  let phase = 'connecting';
  let total = 0;
  let last = { hashed: 0, sent: 0 };
  const payload = (hashed: number, sent: number) => ({
    phase: phase.padEnd(9),
    done: formatBytes(hashed),
    total: formatBytes(total),
    sent: formatBytes(sent),
    rate: formatBytes(Math.round(hashed / Math.max(0.001, (Date.now() - t0) / 1000))),
  });
  return {
    event(e: SyncEvent) {
      if (e.type === 'start') {
        total = e.bytesTotal;
        t0 = Date.now();
        started = true;
        bar.start(Math.max(1, total), 0, payload(0, 0));
      } else if (e.type === 'progress' && started) {
        last = { hashed: e.bytesHashed, sent: e.bytesSent };
        bar.update(Math.min(e.bytesHashed, Math.max(1, total)), payload(e.bytesHashed, e.bytesSent));
      } else if (e.type === 'phase') {
        phase = e.phase;
        if (started) bar.update(payload(last.hashed, last.sent));
      } else if (e.type === 'done') {
        if (started) bar.stop();
        started = false;
        plain.event(e);
      }
    },
    log(level, line) {
      if (verbosity < level) return;
      if (started) bar.stop();
      plain.log(level, line);
    },
    finish() {
      if (started) bar.stop();
      started = false;
    },
  };
}
