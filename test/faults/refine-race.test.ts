/**
 * Refinement compares pieces in rounds; someone else writing the target between two
 * rounds can change a piece already found equal, which then is never rewritten. That
 * must not end as a "verified" wrong file: every written block is still re-read after
 * fsync and checked against the source's full block hash, so the run fails with
 * VERIFY_FAILED (exit 5), and a rerun repairs the target. Engine level, real files,
 * the target served by a real agent process; a wrapper writes into the target file
 * right after the first refinement round's digests came back.
 */
import { closeSync, copyFileSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncFile } from '../../src/engine/sync.js';
import { PdcError } from '../../src/errors/pdc-error.js';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { expectSameBytes, tempDir, writeSeededFile } from '../support/files.js';
import { hostWith, plainSync } from '../support/hosts.js';

const MiB = 1 << 20;
const PAGE = 16 * 1024;
/** The edited page (block 1), and a page of the same block that matches until the intruder writes it. */
const EDITED = 70;
const INTRUDED = 100;

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-refine-race-')));
afterAll(() => cleanup?.());

function flip(path: string, offset: number, len: number): void {
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.alloc(len, 0xee), 0, len, offset);
  closeSync(fd);
}

async function run(src: string, dst: string, intrude: boolean): Promise<unknown> {
  const source = new LocalHost(1);
  const agent = await AgentHost.start(createLocalTransport({}), {
    agents: 1,
    machineId: 'local',
    name: 'local',
    displayPrefix: '',
    startTimeoutMs: 20_000,
    idleTimeoutMs: 30_000,
  });
  let rounds = 0;
  const target = intrude
    ? hostWith(agent, {
        hashPieces: async (ranges, grain, method) => {
          const d = await agent.hashPieces(ranges, grain, method);
          // After the first round found page INTRUDED equal: another writer changes it.
          if (++rounds === 1) flip(dst, INTRUDED * PAGE + 100, 16);
          return d;
        },
      })
    : agent;
  try {
    await syncFile(plainSync(source, src, target, dst, { blockSize: MiB }));
    return undefined;
  } catch (e) {
    return e;
  } finally {
    await Promise.all([source.close(), agent.close()]);
  }
}

describe('refinement: the target changes between rounds', () => {
  it('a piece found equal and then overwritten fails verification (exit 5); a rerun repairs the target', async () => {
    const src = join(dir, 'source.bin');
    const dst = join(dir, 'target.bin');
    writeSeededFile(src, 3 * MiB, 5);
    copyFileSync(src, dst);
    flip(dst, EDITED * PAGE + 40, 8);

    const err = await run(src, dst, true);
    expect(err).toBeInstanceOf(PdcError);
    expect((err as PdcError).code).toBe('VERIFY_FAILED');
    expect((err as PdcError).exitCode).toBe(5);

    expect(await run(src, dst, false)).toBeUndefined();
    expectSameBytes(dst, src);
  }, 60_000);
});
