import * as os from 'node:os';
import { PdcError } from '../src/errors/pdc-error.js';
import { BufferPool } from '../src/fileops/buffer-pool.js';
import { FileService } from '../src/fileops/file-service.js';
import { TRANSFER_RUN_BYTES } from '../src/protocol/limits.js';
import { flattenRuns } from '../src/fileops/zero-runs.js';
import { listDir, makeDir, makeSymlink, removeEntry, setMeta } from '../src/fileops/tree.js';
import { readSmallFiles, writeSmallFiles } from '../src/fileops/small-files.js';
import { localHashMethods } from '../src/hash/methods.js';
import { localCodecs, pack, unpack } from '../src/protocol/compress.js';
import { PROTOCOL_VERSION } from '../src/protocol/limits.js';
import type { HelloResult, OpName, Ops } from '../src/protocol/messages.js';
import { isOpName, readArgs } from '../src/protocol/ops.js';
import { type RpcHandler, WithPayload } from '../src/protocol/rpc.js';
import { VERSION } from '../src/version.js';

/** One handler per op, given arguments already read through the op table. */
type Handlers = { [K in OpName]: (args: Ops[K]['args'], payload: Buffer[] | undefined) => unknown };

/**
 * Maps protocol requests onto one FileService. Arguments are read through the op
 * table (ops.ts), so every one is checked against its limits before anything is
 * opened or allocated. `hello` must come first.
 */
export function createDispatcher(files = new FileService()): RpcHandler {
  let greeted = false;
  /** -z: buffers packed writes are unpacked into, reused (fresh multi-MiB buffers cost page faults). */
  const unpacked = new BufferPool(TRANSFER_RUN_BYTES);
  const handlers: Handlers = {
    hello: (a) => {
      if (a.protocol !== PROTOCOL_VERSION) {
        throw new PdcError('PROTOCOL_VERSION', `agent ${VERSION} speaks protocol ${PROTOCOL_VERSION}, client ${a.client} speaks ${a.protocol}`, {
          hint: 'this should not happen: the agent is sent by the client; report a bug',
        });
      }
      greeted = true;
      const result: HelloResult = {
        protocol: PROTOCOL_VERSION,
        agent: VERSION,
        node: process.version,
        hashes: localHashMethods(),
        pid: process.pid,
        host: os.hostname(),
        codecs: localCodecs(),
        cpus: usableCores(),
      };
      return result;
    },
    stat: (a) => files.stat(a.path, a.role),
    open: (a) => files.open(a),
    space: (a) => files.space(a.path),
    hash: async (a) => new WithPayload({}, await files.hash(a, a.method)),
    read: async (a) => {
      const chunk = await files.read(a.offset, a.length, a.zeroUnit, a.hash);
      const body = { ...(chunk.zeros ? { zeros: flattenRuns(chunk.zeros) } : {}), ...(chunk.digests ? { digests: chunk.digests } : {}) };
      // -z: packed here, where the data is read. Units that stay raw are views of the pooled
      // chunk, so it goes back to the pool only once the answer is sent.
      const packed = a.pack && chunk.length > 0 ? await pack(chunk.buffers, a.pack).catch((e) => (chunk.release(), Promise.reject(e))) : undefined;
      if (!packed) return new WithPayload(body, chunk.buffers, chunk.release);
      return new WithPayload({ ...body, packed: packed.packed }, packed.payload, chunk.release);
    },
    write: async (a, payload) => {
      if (!a.packed) {
        await files.write(a.offset, payload ?? []);
        return {};
      }
      // -z: unpacked here, where it is written; nothing is written unless all of it unpacked.
      const buf = unpacked.acquire(a.packed.length);
      try {
        await files.write(a.offset, [await unpack(a.packed, payload ?? [], 'the client', buf)]);
      } finally {
        unpacked.release(buf);
      }
      return {};
    },
    hashpieces: async (a) => new WithPayload({}, await files.hashPieces(a.ranges, a.grain, a.method)),
    readpieces: async (a) => {
      const chunk = await files.readPieces(a.ranges);
      return new WithPayload({}, chunk.buffers, chunk.release);
    },
    writepieces: async (a, payload) => {
      await files.writePieces(a.ranges, payload ?? []);
      return {};
    },
    zero: async (a) => ((await files.zero(a.offset, a.length, a.punch)) ? { punched: true } : {}),
    truncate: async (a) => {
      await files.truncate(a.size);
      return {};
    },
    fsync: async () => {
      await files.fsync();
      return {};
    },
    digest: async (a) => ({ digest: await files.digest(a.method, a.limit) }),
    commit: (a) => files.commit(a.size),
    close: async () => {
      await files.close();
      return {};
    },
    list: (a) => listDir(a),
    mkdir: (a) => makeDir(a),
    symlink: (a) => makeSymlink(a),
    setmeta: async (a) => {
      await setMeta(a);
      return {};
    },
    remove: (a) => removeEntry(a),
    readfiles: async (a) => {
      const { result, buffers } = await readSmallFiles(a);
      return new WithPayload(result, buffers);
    },
    writefiles: (a, payload) => writeSmallFiles(a, payload ?? []),
  };
  return async (op, raw, payload) => {
    if (!greeted && op !== 'hello') throw new PdcError('PROTOCOL_ERROR', `"${op}" before "hello"`);
    if (!isOpName(op)) throw new PdcError('PROTOCOL_ERROR', `unknown operation "${op}"`);
    const handler = handlers[op] as (args: unknown, payload: Buffer[] | undefined) => unknown;
    return handler(readArgs(op, raw, payload), payload);
  };
}

/** Cores this process may run on: the CPU affinity where Node can tell (18.14 and later), else every core. */
function usableCores(): number {
  const available = (os as { availableParallelism?: () => number }).availableParallelism;
  return typeof available === 'function' ? available() : os.cpus().length;
}
