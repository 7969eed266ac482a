/**
 * How an agent's stdin is read: the loader takes exactly the agent's code from descriptor 0
 * (not a byte more), and the agent reads its requests from descriptor 0 itself, through a
 * socket reading into reused memory where descriptor 0 is a pipe or socket, else through
 * process.stdin. Real agent processes (dist/agent.cjs), on this Node and on Node 12.
 */
import { execFileSync, spawn } from 'node:child_process';
import { closeSync, constants, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MAGIC, buildRemoteCommand, encodeAgentPayload } from '../../src/protocol/bootstrap.js';
import { FrameDecoder, encodeFrame } from '../../src/protocol/framing.js';
import { PROTOCOL_VERSION } from '../../src/protocol/limits.js';
import { REPO } from '../support/cli-child.js';
import { tempDir } from '../support/files.js';

const AGENT = join(REPO, 'dist', 'agent.cjs');
const NODE12 = process.env.PDC_NODE12 ?? fileURLToPath(new URL('../../.cache/node12/bin/node', import.meta.url));
if (!existsSync(NODE12)) throw new Error(`Node 12 binary missing at ${NODE12}: run scripts/fetch-node12.sh`);

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-agent-stdin-')));
afterAll(() => cleanup?.());

const hello = (id: number) => Buffer.concat(encodeFrame({ t: 'q', id, op: 'hello', a: { protocol: PROTOCOL_VERSION, client: 'test' } }));

/** Everything the process writes on stdout until it has written `frames` frames after the magic (or exited). */
function answers(child: ReturnType<typeof spawn>, frames: number): Promise<{ magic: Buffer; msgs: Record<string, unknown>[] }> {
  return new Promise((resolve, reject) => {
    let head = Buffer.alloc(0);
    const decoder = new FrameDecoder();
    const msgs: Record<string, unknown>[] = [];
    child.stdout!.on('data', (c: Buffer) => {
      if (head.length < AGENT_MAGIC.length) {
        head = Buffer.concat([head, c]);
        if (head.length < AGENT_MAGIC.length) return;
        c = head.subarray(AGENT_MAGIC.length);
        head = head.subarray(0, AGENT_MAGIC.length);
      }
      msgs.push(...(decoder.push(c) as Record<string, unknown>[]));
      if (msgs.length >= frames) resolve({ magic: head, msgs });
    });
    child.once('exit', (code) => reject(new Error(`the agent exited (${code}) after ${msgs.length} answer(s)`)));
  });
}

describe.each([
  ['this Node', process.execPath],
  ['Node 12', NODE12],
])('on %s', (_name, node) => {
  it('through the loader over a pipe: requests sent in the same write as the code reach the agent', async () => {
    const child = spawn('sh', ['-c', buildRemoteCommand({ nodePath: node })], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const got = answers(child, 2);
      child.stdin.write(Buffer.concat([encodeAgentPayload(readFileSync(AGENT)), hello(1), hello(2)]));
      const { magic, msgs } = await got;
      expect(magic.equals(AGENT_MAGIC)).toBe(true);
      expect(msgs.map((m) => [m.id, (m.r as { protocol: number }).protocol])).toEqual([
        [1, PROTOCOL_VERSION],
        [2, PROTOCOL_VERSION],
      ]);
      expect(stderr).toBe('');
    } finally {
      child.stdin.end();
      child.kill();
    }
  }, 30_000);

  it('through the loader, a non-blocking pipe whose code comes late: the loader waits for it (EAGAIN) and the agent answers', async () => {
    const fifo = join(dir, `fifo-${_name.replace(/\W/g, '')}`);
    execFileSync('mkfifo', [fifo]);
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writer = openSync(fifo, constants.O_WRONLY);
    const child = spawn('sh', ['-c', buildRemoteCommand({ nodePath: node })], { stdio: [reader, 'pipe', 'pipe'] });
    // The child's stdin was made blocking when it was spawned; a handle opened here on the same
    // file description (never reading) makes it non-blocking again, for the child too: once the
    // pipe is empty, the loader's reads answer EAGAIN.
    new Socket({ fd: reader, readable: false, writable: false }).destroy();
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    try {
      const got = answers(child, 1);
      const payload = Buffer.concat([encodeAgentPayload(readFileSync(AGENT)), hello(1)]);
      await new Promise((r) => setTimeout(r, 300)); // the loader is reading an empty pipe by now
      writeSync(writer, payload.subarray(0, 3)); // not even the whole length
      await new Promise((r) => setTimeout(r, 100));
      writeSync(writer, payload.subarray(3));
      const { magic, msgs } = await got;
      expect(magic.equals(AGENT_MAGIC)).toBe(true);
      expect(msgs.map((m) => [m.id, (m.r as { protocol: number }).protocol])).toEqual([[1, PROTOCOL_VERSION]]);
      expect(stderr).toBe('');
    } finally {
      closeSync(writer);
      child.kill();
    }
  }, 30_000);

  it('a file as stdin (neither pipe nor socket): the agent reads it through process.stdin and exits cleanly at its end', async () => {
    const requests = join(dir, `requests-${_name.replace(/\W/g, '')}`);
    writeFileSync(requests, hello(1));
    const fd = openSync(requests, 'r');
    try {
      const child = spawn(node, [AGENT], { stdio: [fd, 'pipe', 'pipe'] });
      let out = Buffer.alloc(0);
      let stderr = '';
      child.stdout!.on('data', (c: Buffer) => (out = Buffer.concat([out, c])));
      child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
      const code = await new Promise((resolve) => child.once('exit', resolve));
      expect([code, stderr]).toEqual([0, '']);
      expect(out.subarray(0, AGENT_MAGIC.length).equals(AGENT_MAGIC)).toBe(true);
    } finally {
      closeSync(fd);
    }
  }, 30_000);
});
