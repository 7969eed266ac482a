import { hostname } from 'node:os';
import { PdcError } from '../src/errors/pdc-error.js';
import { FileService } from '../src/fileops/file-service.js';
import { bool, str, uint } from '../src/fileops/validate.js';
import { localHashMethods } from '../src/hash/methods.js';
import { MAX_BLOCK_SIZE, MAX_HASH_BLOCKS, MAX_IO_BYTES, PROTOCOL_VERSION } from '../src/protocol/limits.js';
import type { HelloResult, Role } from '../src/protocol/messages.js';
import { type RpcHandler, WithPayload } from '../src/protocol/rpc.js';
import { VERSION } from '../src/version.js';

/**
 * Maps protocol requests onto one FileService, validating every argument against
 * the named limits before anything is allocated. `hello` must come first.
 */
export function createDispatcher(files = new FileService()): RpcHandler {
  let greeted = false;
  return async (op, a, payload) => {
    if (!greeted && op !== 'hello') throw new PdcError('PROTOCOL_ERROR', `"${op}" before "hello"`);
    switch (op) {
      case 'hello': {
        const protocol = uint(a, 'protocol');
        if (protocol !== PROTOCOL_VERSION) {
          throw new PdcError('PROTOCOL_VERSION', `agent speaks protocol ${PROTOCOL_VERSION}, client speaks ${protocol}`, {
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
          host: hostname(),
        };
        return result;
      }
      case 'stat':
        return files.stat(str(a, 'path'));
      case 'open': {
        const role = str(a, 'role');
        if (role !== 'source' && role !== 'target') throw new PdcError('PROTOCOL_ERROR', 'bad request: role');
        const write = (a as { write?: unknown }).write !== false;
        const j = (a as { join?: unknown }).join;
        const join = j === undefined ? undefined : { path: str(j, 'path'), dev: uint(j, 'dev'), ino: uint(j, 'ino') };
        const mode = (a as { mode?: unknown }).mode === undefined ? undefined : uint(a, 'mode', 0o7777);
        return files.open({ path: str(a, 'path'), role: role as Role, create: bool(a, 'create'), lock: bool(a, 'lock'), atomic: bool(a, 'atomic'), write, join, mode });
      }
      case 'hash': {
        const range = {
          first: uint(a, 'first'),
          count: uint(a, 'count', MAX_HASH_BLOCKS),
          blockSize: uint(a, 'blockSize', MAX_BLOCK_SIZE),
          limit: uint(a, 'limit'),
        };
        if (range.blockSize === 0) throw new PdcError('PROTOCOL_ERROR', 'bad request: blockSize 0');
        return new WithPayload({}, await files.hash(range, str(a, 'method')));
      }
      case 'read': {
        const chunk = await files.read(uint(a, 'offset'), uint(a, 'length', MAX_IO_BYTES));
        return new WithPayload({}, chunk.buffers, chunk.release);
      }
      case 'write':
        await files.write(uint(a, 'offset'), payload ?? []);
        return {};
      case 'truncate':
        await files.truncate(uint(a, 'size'));
        return {};
      case 'fsync':
        await files.fsync();
        return {};
      case 'digest':
        return { digest: await files.digest(str(a, 'method'), uint(a, 'limit')) };
      case 'commit':
        return files.commit(uint(a, 'size'));
      case 'close':
        await files.close();
        return {};
      default:
        throw new PdcError('PROTOCOL_ERROR', `unknown operation "${op}"`);
    }
  };
}
