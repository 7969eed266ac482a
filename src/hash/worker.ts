/**
 * Hash worker thread: hashes block ranges of a local file so the main thread stays
 * free to move data. One request at a time per worker; the pool spreads them.
 */
import { open } from 'node:fs/promises';
import { parentPort } from 'node:worker_threads';
import { fromErrno } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { alignedBuffer } from '../fileops/aligned-buffer.js';
import { digestFile, hashFileBlocks, READ_CHUNK_BYTES } from './file-hash.js';
import { inPlaceTail } from './xxh64-pieces.js';
import type { WorkerRequest, WorkerResponse } from './worker-messages.js';

// Room after the bytes: blocks are hashed where they were read (xxh64-pieces.ts).
const scratch = alignedBuffer(READ_CHUNK_BYTES, inPlaceTail(READ_CHUNK_BYTES));

async function handle(req: WorkerRequest): Promise<Buffer> {
  const fh = await open(req.file.path, 'r');
  try {
    // Hash only the file the main thread holds open, never whatever its name means now.
    const st = await fh.stat();
    if (st.dev !== req.file.dev || st.ino !== req.file.ino) throw fileReplaced(req);
    if (req.kind === 'digest') return await digestFile(fh, req.method, req.limit, scratch);
    return await hashFileBlocks(fh, req.range, req.method, scratch); // used only if big enough
  } finally {
    await fh.close();
  }
}

function fileReplaced(req: WorkerRequest): PdcError {
  const hint = 'check what else writes beside the file, then rerun';
  return req.role === 'source'
    ? new PdcError('SOURCE_CHANGED', `source ${req.file.name} was replaced during the copy`, { hint })
    : new PdcError('TARGET_CHANGED', `target ${req.file.name} was replaced during the copy`, { hint });
}

parentPort!.on('message', (req: WorkerRequest) => {
  handle(req).then(
    (result) => {
      const msg: WorkerResponse = { id: req.id, result };
      parentPort!.postMessage(msg);
    },
    (e: unknown) => {
      const err = e instanceof PdcError ? e : fromErrno(e, req.role, req.file.name);
      const msg: WorkerResponse = { id: req.id, error: err.toWire() };
      parentPort!.postMessage(msg);
    },
  );
});
