/**
 * Refinement backs off on new data: once the last runs differed all over, only probes at
 * growing gaps are refined (hashed in pieces on both sides); the rest go whole.
 * Real files on two LocalHosts; the target host counts its hashpieces calls.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { probeRuns, refinerFor, WHOLE_WINDOW_RUNS } from '../../src/engine/refine.js';
import { LocalHost } from '../../src/hosts/local-host.js';
import { tempDir, writeSeededFile } from '../support/files.js';
import { hostWith } from '../support/hosts.js';

const BS = 64 * 1024;
const RUNS = 40;
const SIZE = RUNS * BS;

let dir: string;
let cleanup: () => void;
beforeAll(() => ({ dir, cleanup } = tempDir('pdc-refine-backoff-')));
afterAll(() => cleanup?.());

async function refinedRuns(write: boolean, atOnce = false): Promise<{ refined: number; whole: number }> {
  const src = join(dir, 'src');
  const dst = join(dir, `dst-${write}`);
  writeSeededFile(src, SIZE, 1);
  writeSeededFile(dst, SIZE, 2); // every byte new: no piece matches
  const source = new LocalHost(1);
  const target = new LocalHost(1);
  const refinedAt = new Set<number>(); // one run's levels share its first offset
  const t = hostWith(target, {
    hashPieces: (ranges, grain, method) => {
      refinedAt.add(ranges[0]!);
      return target.hashPieces(ranges, grain, method);
    },
  });
  try {
    await source.open({ path: src, role: 'source' });
    await target.open({ path: dst, role: 'target', create: true, lock: false, mode: 0o600 });
    const r = refinerFor({ src: source, dst: t, method: 'xxh64', digestLength: 8, blockSize: BS, targetSize: SIZE, srcName: src })!;
    const move = (k: number) => r.move({ first: k, count: 1, offset: k * BS, length: BS }, write);
    const results: (number | undefined)[] = [];
    if (atOnce) results.push(...(await Promise.all(Array.from({ length: RUNS }, (_, k) => move(k)))));
    else for (let k = 0; k < RUNS; k++) results.push(await move(k));
    return { refined: refinedAt.size, whole: results.filter((x) => x === undefined).length };
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

describe('refinement on new data', () => {
  it('after the first runs differ all over, only the probes are refined; all go whole', async () => {
    const { refined, whole } = await refinedRuns(true);
    expect(whole).toBe(RUNS);
    const expected = WHOLE_WINDOW_RUNS + probeRuns(RUNS - WHOLE_WINDOW_RUNS);
    expect(refined).toBe(expected);
  });

  it('runs handed over all at once: only the first few are refined before they are judged', async () => {
    const { refined, whole } = await refinedRuns(true, true);
    expect(whole).toBe(RUNS);
    const expected = WHOLE_WINDOW_RUNS + probeRuns(RUNS - WHOLE_WINDOW_RUNS);
    expect(refined).toBe(expected);
  });

  it('a dry run refines every run (its estimate is what it reports)', async () => {
    const { refined, whole } = await refinedRuns(false);
    expect(whole).toBe(RUNS);
    expect(refined).toBe(RUNS);
  });
});
