/**
 * Chunks compared in pieces over real SSH (an OpenSSH sshd on 127.0.0.1): a file of many
 * hash chunks with a few bytes changed in every 16 KiB page. Once refinement finds edits
 * inside the first chunks' blocks, later chunks are compared by 16 KiB piece digests on
 * both sides, and their runs go on from the next level, in agents that keep the chunk's
 * read windows. Push and pull; every target is checked byte for byte.
 */
import { closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SyncSummary } from '../../src/engine/events.js';
import { HASH_CHUNK_BYTES } from '../../src/engine/plan.js';
import { syncFile } from '../../src/engine/sync.js';
import { AgentHost } from '../../src/hosts/agent-host.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { testAgents } from '../ssh/helpers.js';
import { startSshd, type TestSshd } from '../support/sshd.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { plainSync } from '../support/hosts.js';

const SIZE = 12 * HASH_CHUNK_BYTES + 4321;
const PAGE = 16 * 1024;

let sshd: TestSshd;
let dir: string;
let cleanup: () => void;
let src: string;
beforeAll(async () => {
  sshd = await startSshd();
  ({ dir, cleanup } = tempDir('pdc-pieces-ssh-'));
  src = join(dir, 'src');
  writeSeededFile(src, SIZE, 11);
}, 60_000);
afterAll(() => {
  cleanup?.();
  return sshd?.stop();
});

function remoteAgents(): Promise<AgentHost> {
  return testAgents(sshd, { connections: 1, agents: 2 });
}

/** A copy of the source with 6 bytes changed at a page's start, middle and end, in every page. */
function editedCopy(name: string): string {
  const dst = join(dir, name);
  copyFileSync(src, dst);
  const fd = openSync(dst, 'r+');
  try {
    for (let page = 0; page * PAGE < SIZE; page++) {
      for (const at of [page * PAGE + 10, page * PAGE + 7000, page * PAGE + PAGE - 6]) {
        if (at + 6 <= SIZE) writeSync(fd, Buffer.from('edited'), 0, 6, at);
      }
    }
  } finally {
    closeSync(fd);
  }
  return dst;
}

async function sync(source: FileHost, target: FileHost, from: string, to: string): Promise<SyncSummary> {
  try {
    return await syncFile(plainSync(source, from, target, to));
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

describe('chunks compared in pieces, over ssh', () => {
  const expectPieces = (s: SyncSummary) => {
    expect(s.blocksChanged).toBe(Math.ceil(SIZE / (1 << 20)));
    expect(s.profile!.chunks.inPieces).toBeGreaterThan(0);
    expect(s.profile!.chunks.streamed).toBe(0);
    // Three 6-byte edits per page, each inside one or two 64-byte pieces.
    const pages = Math.ceil(SIZE / PAGE);
    expect(s.bytesSent).toBeLessThanOrEqual(pages * 3 * 2 * 64);
    expect(s.bytesSent + s.bytesRefineHashes).toBeLessThan(SIZE / 20);
    expect(s.verified).toBe('blocks');
  };

  it('push: remote agents hash the target in pieces, write the differing pieces', async () => {
    const dst = editedCopy('push');
    const summary = await sync(new LocalHost(1), await remoteAgents(), src, dst);
    expectSameBytes(dst, src);
    expectPieces(summary);
  }, 120_000);

  it('pull: remote agents hash the source in pieces, this process writes the differing pieces', async () => {
    const dst = editedCopy('pull');
    const summary = await sync(await remoteAgents(), new LocalHost(1), src, dst);
    expectSameBytes(dst, src);
    expectPieces(summary);
  }, 120_000);
});
