/**
 * The agent: one self-contained script (Node >= 12, built-ins only) that serves
 * one file over the protocol on stdin/stdout. Logs go to stderr only. It exits
 * when stdin closes, so closing the channel is all it takes to stop it.
 */
import { AGENT_MAGIC } from '../src/protocol/bootstrap.js';
import { serveRpc } from '../src/protocol/rpc.js';
import { createDispatcher } from './dispatch.js';
import { agentStdin } from './stdin.js';
import { BufferPool } from '../src/fileops/buffer-pool.js';
import { TRANSFER_RUN_BYTES } from '../src/protocol/limits.js';

process.title = 'pdiffcopy-agent';

function fatal(err: Error): void {
  process.stderr.write(`pdiffcopy-agent: ${err.message}\n`);
  process.exit(2);
}

process.stdout.on('error', () => process.exit(0)); // the client went away (EPIPE)
process.stdout.write(AGENT_MAGIC);
/**
 * Requests' payloads are copied out of stdin's read buffer: block data (runs of blocks, up to
 * TRANSFER_RUN_BYTES) into reused buffers, whose pages stay mapped; smaller ones (refinement's
 * pieces, a few small files) into buffers of their own size, not a run-sized one each.
 */
const POOLED_PAYLOAD_BYTES = 64 * 1024;
const blockData = new BufferPool(TRANSFER_RUN_BYTES);
const payloads = {
  acquire: (length: number) => (length >= POOLED_PAYLOAD_BYTES ? blockData.acquire(length) : Buffer.allocUnsafe(length)),
  release: (buf: Buffer) => {
    if (buf.length >= POOLED_PAYLOAD_BYTES) blockData.release(buf);
  },
};

const stdin = agentStdin();
serveRpc(stdin, process.stdout, createDispatcher(), fatal, { payloads });
stdin.on('end', () => process.exit(0));
stdin.on('close', () => process.exit(0));
