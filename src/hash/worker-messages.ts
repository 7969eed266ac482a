import type { Role } from '../errors/errno.js';
import type { WireError } from '../errors/pdc-error.js';
import type { BlockRange } from './file-hash.js';

/** The file a worker reads: `path` to open, `name` for messages, and the identity the opened file must have. */
export interface WorkerFile {
  path: string;
  name: string;
  dev: number;
  ino: number;
}

export type WorkerRequest =
  | { id: number; kind: 'hash'; file: WorkerFile; role: Role; range: BlockRange; method: string }
  | { id: number; kind: 'digest'; file: WorkerFile; role: Role; method: string; limit: number };

/** Close the file the worker keeps open (before the pool ends the worker); answered with `released`. */
export interface WorkerRelease {
  kind: 'release';
}

export interface WorkerResponse {
  id: number;
  /** The answer to a WorkerRelease. */
  released?: boolean;
  result?: Uint8Array;
  error?: WireError;
}
