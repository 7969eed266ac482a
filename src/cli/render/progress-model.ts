import type { Phase } from '../../engine/events.js';
import type { RunEvent } from '../../job/events.js';

/** What every progress renderer shows, computed from engine events and a clock. */
export interface ProgressSnapshot {
  phase: Phase;
  /** Seconds since the first event. */
  elapsedS: number;
  /**
   * Work done and to do: bytes compared plus bytes sent or handled as zero runs (the send total grows
   * as differences are found); for a tree, bytes of the files done (with the current file's share) of the files found.
   */
  done: number;
  total: number;
  /** 0..1 (0 while nothing is known). */
  fraction: number;
  bytesHashed: number;
  bytesToCompare: number;
  bytesSent: number;
  bytesToSend: number;
  /** Zero runs handled (part of bytesToSend, never of bytesSent). */
  bytesZero: number;
  /** Work per second over the recent window (not the average since the start). */
  rate: number;
  /** Seconds left at the recent rate; undefined while the rate is unknown. */
  etaS: number | undefined;
  /**
   * Several files or a tree: regular files done (synced, up to date or failed) of those
   * found so far, and their bytes (the found ones grow as directories are listed).
   * `done`, `total`, `fraction`, `rate` and `etaS` are then the tree's (see `done`).
   */
  files?: { done: number; found: number; bytesDone: number; bytesFound: number; bytesSent: number };
}

/** The rate is measured over this much recent time: long enough to be steady, short enough to follow a change. */
export const RATE_WINDOW_MS = 5000;

/**
 * Folds engine events into a snapshot. Pure apart from the injected clock, so
 * renderers and their tests share one notion of rate and ETA.
 */
export class ProgressModel {
  private t0: number | undefined;
  private phase: Phase = 'connecting';
  private p = { bytesHashed: 0, bytesToCompare: 0, bytesSent: 0, bytesToSend: 0, bytesZero: 0 };
  /** (time, done) samples inside the rate window, oldest first. */
  private samples: Array<[number, number]> = [];
  private files: ProgressSnapshot['files'];
  /** The size of the file the engine is on (its share of a tree's fraction). */
  private fileBytes = 0;

  constructor(
    private readonly now: () => number = () => performance.now(),
    private readonly windowMs = RATE_WINDOW_MS,
  ) {}

  /** Returns true when the event changed what a renderer would show. */
  update(e: RunEvent): boolean {
    const t = this.now();
    this.t0 ??= t;
    if (e.type === 'phase') {
      this.phase = e.phase;
      return true;
    }
    if (e.type === 'start') {
      this.p = { bytesHashed: 0, bytesToCompare: 0, bytesSent: 0, bytesToSend: 0, bytesZero: 0 };
      // A tree's rate runs on across its files; one file's starts with it.
      if (!this.files) this.samples = [[t, 0]];
      this.fileBytes = e.bytesTotal;
      return true;
    }
    if (this.countFiles(e)) {
      this.sample(t);
      return true;
    }
    if (e.type !== 'progress') return false;
    this.p = { bytesHashed: e.bytesHashed, bytesToCompare: e.bytesToCompare, bytesSent: e.bytesSent, bytesToSend: e.bytesToSend, bytesZero: e.bytesZero };
    this.sample(t);
    return true;
  }

  private sample(t: number): void {
    this.samples.push([t, this.done()]);
    // Keep one sample at or before the window's start, so the window is always spanned.
    while (this.samples.length > 2 && this.samples[1]![0] <= t - this.windowMs) this.samples.shift();
  }

  snapshot(): ProgressSnapshot {
    const t = this.now();
    const done = this.done();
    const f = this.files;
    const total = f ? f.bytesFound : this.p.bytesToCompare + this.p.bytesToSend;
    const rate = this.rate(t, done);
    const left = Math.max(0, total - done);
    return {
      phase: this.phase,
      elapsedS: this.t0 === undefined ? 0 : (t - this.t0) / 1000,
      done,
      total,
      fraction: total > 0 ? Math.min(1, done / total) : 0,
      ...this.p,
      rate,
      etaS: rate > 0 ? left / rate : left === 0 && total > 0 ? 0 : undefined,
      ...(f ? { files: { ...f, done: Math.min(f.done, f.found) } } : {}),
    };
  }

  /** A job's files: found as listed, done as each ends (synced, up to date or failed). */
  private countFiles(e: RunEvent): boolean {
    if (e.type === 'found') {
      this.files ??= { done: 0, found: 0, bytesDone: 0, bytesFound: 0, bytesSent: 0 };
      this.files.found += e.files;
      this.files.bytesFound += e.bytes;
      return true;
    }
    const f = this.files;
    if (!f) return false;
    if (e.type === 'done') {
      f.done++;
      f.bytesDone += e.summary.bytesTotal;
      f.bytesSent += e.summary.bytesSent;
      this.fileBytes = 0;
      this.p = { bytesHashed: 0, bytesToCompare: 0, bytesSent: 0, bytesToSend: 0, bytesZero: 0 };
    } else if (e.type === 'file-failed') f.done++;
    else if (e.type === 'item' && e.size !== undefined) {
      f.done++;
      f.bytesDone += e.size;
    } else return false;
    return true;
  }

  /** One file: bytes compared plus bytes sent. A tree: bytes of the files done, plus the current file's share of its size. */
  private done(): number {
    const fileDone = this.p.bytesHashed + this.p.bytesSent + this.p.bytesZero;
    if (!this.files) return fileDone;
    const fileTotal = this.p.bytesToCompare + this.p.bytesToSend;
    return this.files.bytesDone + (fileTotal > 0 ? Math.min(1, fileDone / fileTotal) * this.fileBytes : 0);
  }

  private rate(t: number, done: number): number {
    const first = this.samples[0];
    if (!first) return 0;
    const span = (t - first[0]) / 1000;
    return span > 0 ? Math.max(0, (done - first[1]) / span) : 0;
  }
}

/** 75 → "1:15", 3725 → "1:02:05", undefined → "--:--". */
export function formatDuration(seconds: number | undefined): string {
  if (seconds === undefined || !Number.isFinite(seconds)) return '--:--';
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}
