import type { Role } from '../errors/errno.js';
import type { WireError } from '../errors/pdc-error.js';
import type { BlockRange } from './file-hash.js';

export type WorkerRequest =
  | { id: number; kind: 'hash'; path: string; role: Role; range: BlockRange; method: string }
  | { id: number; kind: 'digest'; path: string; role: Role; method: string; limit: number };

export interface WorkerResponse {
  id: number;
  result?: Uint8Array;
  error?: WireError;
}
