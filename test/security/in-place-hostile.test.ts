/**
 * The default (in-place) mode run as root next to another local user (`nobody`) who
 * can write the target's directory. Threat: that user puts a symlink at the target's
 * name (planted before the run, or raced in while it runs) so that root's run writes
 * into a file of root's that the user may not touch. Rule pinned: a symlink at the
 * target's name is followed once only when root or the running user owns it; the file
 * is opened without following links and a new target is created exclusively, so what
 * root writes is the target and nothing else.
 */
import { readFileSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { CliResult } from '../support/cli-child.js';
import { expectSameBytes, writeSeededFile } from '../support/files.js';
import {
  expectUnchanged,
  hostileSkipReason,
  makeArena,
  PLANT_SYMLINK,
  plantAsHostile,
  ROOT_RUN_MODES,
  rootRuns,
  runAsHostile,
  snapshot,
  SYMLINK_RACER,
  type RootRunMode as Mode,
} from '../support/hostile-user.js';

const SIZE = 2 * 1024 * 1024 + 555;
/** Runs against the real racer per transport (each one a fresh target name). */
const RACE_ATTEMPTS = 6;

const root = rootRuns({ prefix: 'pdc-inplace-hostile-', size: SIZE, seed: 17, flags: ['--no-progress'] });
const inPlaceRun = (mode: Mode, from: string, to: string) => root.run(mode, from, to);

const ctx = (r: CliResult) => `exit ${r.code}\nstderr: ${r.stderr}`;

describe.skipIf(!!hostileSkipReason).each<Mode>(ROOT_RUN_MODES)('in place, as root beside another user (%s)', (mode) => {
  it("another user's symlink at the target's name is refused: the file it points to stays as it was", async () => {
    const a = makeArena('sticky');
    try {
      const link = join(a.shared, 'target.bin');
      await plantAsHostile(PLANT_SYMLINK, [link, a.victim]);
      const victim = snapshot(a.victim);
      const r = await inPlaceRun(mode, root.src, link);
      expect(r.code, ctx(r)).toBe(4);
      expect(r.stderr).toMatch(/symbolic link owned by another user/);
      expectUnchanged(a.victim, victim, 'victim');
      expect(readlinkSync(link)).toBe(a.victim);
    } finally {
      a.cleanup();
    }
  }, 60_000);

  it("root's own symlink is followed once: the file it points to is updated, the link stays", async () => {
    const a = makeArena('sticky');
    try {
      const real = join(a.root, 'real.bin');
      writeSeededFile(real, SIZE, 5);
      const link = join(a.shared, 'ours.bin');
      symlinkSync(real, link);
      const r = await inPlaceRun(mode, root.src, link);
      expect(r.code, ctx(r)).toBe(0);
      expectSameBytes(real, root.src);
      expect(readlinkSync(link)).toBe(real);
    } finally {
      a.cleanup();
    }
  }, 60_000);

  it('a symlink raced in at a new target name never redirects the write', async () => {
    const a = makeArena('sticky');
    const outcomes: string[] = [];
    try {
      const victim = snapshot(a.victim);
      for (let i = 0; i < RACE_ATTEMPTS; i++) {
        const name = join(a.shared, `raced-${i}.bin`);
        const racer = runAsHostile(SYMLINK_RACER, [name, a.victim], 30_000);
        await racer.ready;
        const r = await inPlaceRun(mode, root.src, name);
        await racer.stop();
        expectUnchanged(a.victim, victim, `victim after attempt ${i}`);
        if (r.code === 0) expect(readFileSync(name).equals(readFileSync(root.src)), `target of attempt ${i} is the source`).toBe(true);
        else expect(r.code, ctx(r)).toBe(4);
        outcomes.push(String(r.code));
        rmSync(name, { force: true });
      }
    } finally {
      a.cleanup();
    }
    console.log(`in-place symlink race (${mode}): exits ${outcomes.join(' ')}`);
  }, 180_000);
});
