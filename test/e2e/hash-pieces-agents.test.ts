/**
 * hashpieces with xxh64 through real agent processes (the built dist/agent.cjs) on Node 20
 * and on Node 12 (the agent's floor, where xxhash-wasm cannot return its BigInt): the
 * digests of every piece must be those of xxhash-wasm's h64Raw over the same bytes, so
 * both sides of a refinement agree whatever Node each runs. Pieces past the end of the
 * file hash as empty.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import xxhash from 'xxhash-wasm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentHost } from '../../src/hosts/agent-host.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import type { FileHost } from '../../src/hosts/file-host.js';
import { createLocalTransport } from '../../src/transport/local.js';
import { rng, tempDir, writeSeededFile } from '../support/files.js';

const MiB = 1 << 20;
const SIZE = 7 * MiB + 123;
const node12 = join(process.cwd(), '.cache/node12/bin/node');

let dir: string;
let cleanup: () => void;
let file: string;
let bytes: Buffer;
let h64Raw: (data: Uint8Array) => bigint;
beforeAll(async () => {
  ({ dir, cleanup } = tempDir('pdc-hashpieces-'));
  file = join(dir, 'file.bin');
  writeSeededFile(file, SIZE, 77);
  bytes = readFileSync(file);
  ({ h64Raw } = await xxhash());
});
afterAll(() => cleanup?.());

/** Sorted, disjoint ranges of seeded lengths (1 B to 40 KiB), one more longer than a read window, one running past the end. */
function ranges(seed: number): number[] {
  const r = rng(seed);
  const out: number[] = [];
  let at = Math.floor(r() * 100);
  while (at < 2 * MiB) {
    const len = 1 + Math.floor(r() * r() * 40_000);
    out.push(at, len);
    at += len + Math.floor(r() * 5000);
  }
  out.push(at + 17, 4 * MiB + 999); // longer than the 4 MiB window: read on its own
  out.push(SIZE - 100, 5000); // the file ends inside
  return out;
}

/** What the wire must carry: h64Raw of each piece's bytes (those the file holds), big-endian. */
function reference(list: readonly number[], grain: number): Buffer {
  const parts: Buffer[] = [];
  for (let i = 0; i < list.length; i += 2) {
    const [off, len] = [list[i]!, list[i + 1]!];
    for (let s = off; s < off + len; s += grain) {
      const d = Buffer.alloc(8);
      d.writeBigUInt64BE(h64Raw(bytes.subarray(Math.min(s, SIZE), Math.min(s + grain, off + len, SIZE))));
      parts.push(d);
    }
  }
  return Buffer.concat(parts);
}

function agentOn(nodePath?: string): Promise<AgentHost> {
  return AgentHost.start(createLocalTransport(nodePath ? { nodePath } : {}), {
    agents: 1,
    machineId: 'local',
    name: 'local',
    displayPrefix: '',
    startTimeoutMs: 30_000,
    idleTimeoutMs: 30_000,
  });
}

const GRAINS = [64, 1000, 1024, 16384, MiB];

describe.each<[string, () => Promise<FileHost>, boolean]>([
  ['the CLI process (LocalHost)', async () => new LocalHost(1), true],
  ['an agent on Node 20', () => agentOn(), true],
  ['an agent on Node 12 (skipped without .cache/node12: scripts/fetch-node12.sh)', () => agentOn(node12), existsSync(node12)],
])('hashpieces xxh64 on %s', (_name, start, runs) => {
  let host: FileHost;
  beforeAll(async () => {
    if (!runs) return;
    host = await start();
    await host.open({ path: file, role: 'source' });
  }, 60_000);
  afterAll(async () => host?.close());

  it.skipIf(!runs).each(GRAINS)('grain %i: every piece equals h64Raw of its bytes', async (grain) => {
    const list = ranges(grain);
    const got = await host.hashPieces(list, grain, 'xxh64');
    const want = reference(list, grain);
    expect(got.length).toBe(want.length);
    expect(got.equals(want)).toBe(true);
  });
});
