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
      // One bar for all the work: comparing (both sides hash) plus sending what differs.
      format: '{phase} |{bar}| {percentage}% compared {done}/{toCompare}, sent {sent}/{toSend}, {rate}/s',
      hideCursor: true,
      clearOnComplete: true,
      fps: 5,
    },
    cliProgress.Presets.shades_classic,
  );
  let started = false;
  let t0 = Date.now();
  let phase = 'connecting';
  let last = { hashed: 0, toCompare: 0, sent: 0, toSend: 0 };
  const payload = () => ({
    phase: phase.padEnd(9),
    done: formatBytes(last.hashed),
    toCompare: formatBytes(last.toCompare),
    sent: formatBytes(last.sent),
    toSend: formatBytes(last.toSend),
    rate: formatBytes(Math.round((last.hashed + last.sent) / Math.max(0.001, (Date.now() - t0) / 1000))),
  });
  return {
    event(e: SyncEvent) {
      if (e.type === 'start') {
        t0 = Date.now();
        started = true;
        bar.start(Math.max(1, e.bytesTotal), 0, payload());
      } else if (e.type === 'progress' && started) {
        last = { hashed: e.bytesHashed, toCompare: e.bytesToCompare, sent: e.bytesSent, toSend: e.bytesToSend };
        bar.setTotal(Math.max(1, e.bytesToCompare + e.bytesToSend));
        bar.update(e.bytesHashed + e.bytesSent, payload());
      } else if (e.type === 'phase') {
        phase = e.phase;
        if (started) bar.update(payload());
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
