/**
 * The agent: one self-contained script (Node >= 12, built-ins only) that serves
 * one file over the protocol on stdin/stdout. Logs go to stderr only. It exits
 * when stdin closes, so closing the channel is all it takes to stop it.
 */
import { AGENT_MAGIC } from '../src/protocol/bootstrap.js';
import { serveRpc } from '../src/protocol/rpc.js';
import { createDispatcher } from './dispatch.js';

process.title = 'pdiffcopy-agent';

function fatal(err: Error): void {
  process.stderr.write(`pdiffcopy-agent: ${err.message}\n`);
  process.exit(2);
}

process.stdout.on('error', () => process.exit(0)); // the client went away (EPIPE)
process.stdout.write(AGENT_MAGIC);
serveRpc(process.stdin, process.stdout, createDispatcher(), fatal);
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
