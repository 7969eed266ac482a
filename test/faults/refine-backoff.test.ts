/**
 * Refinement backs off on new data: once the last runs differed all over, only every
 * REFINE_PROBE_EVERY-th run is refined (hashed in pieces on both sides); the rest go whole.
 * Real files on two LocalHosts; the target host counts its hashpieces calls.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REFINE_PROBE_EVERY, refinerFor, WHOLE_WINDOW_RUNS } from '../../src/engine/refine.js';
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

async function refinedRuns(write: boolean): Promise<{ refined: number; whole: number }> {
  const src = join(dir, 'src');
  const dst = join(dir, `dst-${write}`);
  writeSeededFile(src, SIZE, 1);
  writeSeededFile(dst, SIZE, 2); // every byte new: no piece matches
  const source = new LocalHost(1);
  const target = new LocalHost(1);
  let refined = 0;
  let lastOffset = -1;
  const t = hostWith(target, {
    hashPieces: (ranges, grain, method) => {
      if (ranges[0] !== lastOffset) refined++; // one run's levels share its first offset
      lastOffset = ranges[0]!;
      return target.hashPieces(ranges, grain, method);
    },
  });
  try {
    await source.open({ path: src, role: 'source' });
    await target.open({ path: dst, role: 'target', create: true, lock: false, mode: 0o600 });
    const r = refinerFor({ src: source, dst: t, method: 'xxh64', digestLength: 8, blockSize: BS, targetSize: SIZE, srcName: src })!;
    let whole = 0;
    for (let k = 0; k < RUNS; k++) {
      if ((await r.move({ first: k, count: 1, offset: k * BS, length: BS }, write)) === undefined) whole++;
    }
    return { refined, whole };
  } finally {
    await Promise.all([source.close(), target.close()]);
  }
}

describe('refinement on new data', () => {
  it('after the first runs differ all over, only every probe-th run is refined; all go whole', async () => {
    const { refined, whole } = await refinedRuns(true);
    expect(whole).toBe(RUNS);
    const expected = WHOLE_WINDOW_RUNS + Math.floor((RUNS - WHOLE_WINDOW_RUNS) / REFINE_PROBE_EVERY);
    expect(refined).toBe(expected);
  });

  it('a dry run refines every run (its estimate is what it reports)', async () => {
    const { refined, whole } = await refinedRuns(false);
    expect(whole).toBe(RUNS);
    expect(refined).toBe(RUNS);
  });
});
