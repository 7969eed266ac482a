/**
 * What a job tells the world beside each file's engine events. Like the engine,
 * the job never prints: renderers turn these into lines, bars or JSON.
 */
import type { WireError } from '../errors/pdc-error.js';
import type { SyncEvent, SyncSummary } from '../engine/events.js';
import type { StartupStep } from '../startup-marks.js';

/** What happened to one entry that is not a file synced by the engine. */
export type ItemAction =
  /** A directory made on the target. */
  | 'mkdir'
  /** A symlink made (or replaced) on the target. */
  | 'symlink'
  /** Size and mtime match (quick check), or the link already points there: nothing sent. */
  | 'uptodate'
  /** A special file (FIFO, socket, device) or a directory without -r: not copied. */
  | 'skipped'
  /** --delete: removed from the target (a directory with everything in it). */
  | 'deleted'
  /** Dry run: this file would be created, or compared and updated, or (--delete) deleted. */
  | 'would-create'
  | 'would-update'
  | 'would-delete';

export interface FileFailure {
  source: string;
  target: string;
  error: WireError;
}

export interface JobTotals {
  /** Regular files seen in the sources. */
  files: number;
  /** Files that went through the engine (synced or, in a dry run, compared). */
  filesSynced: number;
  filesUpToDate: number;
  filesFailed: number;
  dirsCreated: number;
  symlinksCreated: number;
  skipped: number;
  /** --delete: target entries removed (or, in a dry run, that would be). */
  deleted: number;
  bytesTotal: number;
  /** Block data that crossed the wire (-z: compressed). */
  bytesSent: number;
  /** The same, uncompressed. */
  bytesData: number;
  seconds: number;
}

export type JobEvent =
  /** `size`: set on a regular file that is up to date (it counts as a file done). */
  | { type: 'item'; action: ItemAction; path: string; reason?: string; size?: number }
  /** Regular files the job has just come across (a listed directory's, or a file SOURCE): they add to the files to do. */
  | { type: 'found'; files: number; bytes: number }
  | ({ type: 'file-failed' } & FileFailure)
  | { type: 'job-done'; totals: JobTotals }
  /** Once, after the job: seconds since the process started at which each start-up step was reached. */
  | { type: 'startup'; seconds: StartupSeconds };

/** When start-up steps were reached, and when the run could start (`opened`: both sides up). */
export type StartupSeconds = Partial<Record<StartupStep, number>> & { opened: number };

/** Everything a renderer is given: the engine's events for each file, and the job's own. */
export type RunEvent = SyncEvent | JobEvent;
export type JobEmit = (e: RunEvent) => void;

/** One file's outcome as --json lists it. */
export type FileResult = ({ ok: true } & SyncSummary) | ({ ok: false } & FileFailure);
