/**
 * Hash worker thread: hashes block ranges of a local file so the main thread stays
 * free to move data. One request at a time per worker; the pool spreads them.
 */
import { close, closeSync, fstat, open, read } from 'node:fs';
import { promisify } from 'node:util';
import { parentPort } from 'node:worker_threads';
import { fromErrno } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';
import { alignedBuffer } from '../fileops/aligned-buffer.js';
import { digestFile, hashFileBlocks, type PositionalReader, READ_CHUNK_BYTES } from './file-hash.js';
import { inPlaceTail } from './xxh64-pieces.js';
import type { WorkerFile, WorkerRelease, WorkerRequest, WorkerResponse } from './worker-messages.js';

// Room after the bytes: blocks are hashed where they were read (xxh64-pieces.ts).
const scratch = alignedBuffer(READ_CHUNK_BYTES, inPlaceTail(READ_CHUNK_BYTES));

const openFd = promisify(open);
const fstatFd = promisify(fstat);
const readFd = promisify(read);

/** Idle this long, the kept file is closed. */
const KEEP_OPEN_MS = 50;

/**
 * The last job's file stays open while jobs for it keep coming: opening it, checking it and
 * closing it again cost about as much per job as hashing its 1 MiB (a 10% pull of 2 GiB runs
 * about 330 jobs). It is a raw descriptor of this process, closed when a job names another
 * file, after KEEP_OPEN_MS idle, or when the pool asks before ending the worker (a descriptor
 * would otherwise outlive the thread). Its key is the identity it was checked against.
 */
let kept: { key: string; fd: number } | undefined;
let idleTimer: NodeJS.Timeout | undefined;

function closeKept(): void {
  const fd = kept?.fd;
  kept = undefined;
  if (fd === undefined) return;
  try {
    closeSync(fd);
  } catch {
    // Nothing to do about a close that fails: the descriptor is gone either way.
  }
}

/** A descriptor of exactly the file the main thread holds open, never whatever its name means now. */
async function fileOf(req: WorkerRequest): Promise<number> {
  const key = keyOf(req.file);
  if (kept?.key === key) return kept.fd;
  closeKept();
  const fd = await openFd(req.file.path, 'r');
  try {
    const st = await fstatFd(fd);
    if (st.dev !== req.file.dev || st.ino !== req.file.ino) throw fileReplaced(req);
  } catch (e) {
    close(fd, () => undefined);
    throw e;
  }
  kept = { key, fd };
  return fd;
}

function keyOf(f: WorkerFile): string {
  return `${f.dev}:${f.ino}:${f.path}`;
}

async function handle(req: WorkerRequest): Promise<Buffer> {
  if (idleTimer) clearTimeout(idleTimer);
  try {
    const fd = await fileOf(req);
    const file: PositionalReader = { read: (buffer, offset, length, position) => readFd(fd, buffer, offset, length, position) };
    if (req.kind === 'digest') return await digestFile(file, req.method, req.limit, scratch);
    return await hashFileBlocks(file, req.range, req.method, scratch); // used only if big enough
  } finally {
    idleTimer = setTimeout(closeKept, KEEP_OPEN_MS);
    idleTimer.unref();
  }
}

function fileReplaced(req: WorkerRequest): PdcError {
  const hint = 'check what else writes beside the file, then rerun';
  return req.role === 'source'
    ? new PdcError('SOURCE_CHANGED', `source ${req.file.name} was replaced during the copy`, { hint })
    : new PdcError('TARGET_CHANGED', `target ${req.file.name} was replaced during the copy`, { hint });
}

// Messages are handled one after another: a release never closes the file under a running job.
let previous: Promise<unknown> = Promise.resolve();

parentPort!.on('message', (msg: WorkerRequest | WorkerRelease) => {
  previous = previous.then(() => {
    if (msg.kind === 'release') {
      if (idleTimer) clearTimeout(idleTimer);
      closeKept();
      const reply: WorkerResponse = { id: 0, released: true };
      parentPort!.postMessage(reply);
      return undefined;
    }
    return handle(msg).then(
      (result) => {
        const reply: WorkerResponse = { id: msg.id, result };
        parentPort!.postMessage(reply);
      },
      (e: unknown) => {
        const err = e instanceof PdcError ? e : fromErrno(e, msg.role, msg.file.name);
        const reply: WorkerResponse = { id: msg.id, error: err.toWire() };
        parentPort!.postMessage(reply);
      },
    );
  });
});
