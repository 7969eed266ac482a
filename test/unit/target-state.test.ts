/**
 * After a SIGINT/SIGTERM the CLI says what happened to the target, and only what the
 * engine's events prove: an --atomic target is "unchanged" only while no rename was
 * asked for (a SIGINT right after the commit used to say "unchanged" too).
 */
import { describe, expect, it } from 'vitest';
import type { SyncEvent } from '../../src/engine/events.js';
import { interruptedError, trackTarget } from '../../src/cli/target-state.js';

const temp: SyncEvent = { type: 'temp', path: 'db2:/srv/.a.img.pdiffcopy-tmp', resumed: false };
const renaming: SyncEvent = { type: 'commit', stage: 'renaming' };
const renamed: SyncEvent = { type: 'commit', stage: 'renamed' };

const cases: Array<{ name: string; run: { dryRun: boolean; atomic: boolean }; events: SyncEvent[]; message: RegExp; not?: RegExp }> = [
  { name: 'dry run', run: { dryRun: true, atomic: false }, events: [], message: /^interrupted: nothing was written$/ },
  { name: 'in place', run: { dryRun: false, atomic: false }, events: [], message: /^interrupted: the target is partly updated$/ },
  {
    name: '--atomic before the temp file exists',
    run: { dryRun: false, atomic: true },
    events: [{ type: 'phase', phase: 'syncing' }],
    message: /^interrupted: the target is unchanged \(no new version was started yet\)$/,
  },
  {
    name: '--atomic while building: names the kept temp file',
    run: { dryRun: false, atomic: true },
    events: [temp, { type: 'phase', phase: 'verifying' }],
    message: /^interrupted: the target is unchanged \(the partly built new version db2:\/srv\/\.a\.img\.pdiffcopy-tmp is kept beside it for the next run\)$/,
  },
  {
    name: '--atomic while the rename is under way',
    run: { dryRun: false, atomic: true },
    events: [temp, renaming],
    message: /either the old or the new version, never a mix/,
    not: /unchanged/,
  },
  {
    name: '--atomic after the rename',
    run: { dryRun: false, atomic: true },
    events: [temp, renaming, renamed],
    message: /^interrupted: the target had already been replaced by the new, verified version$/,
    not: /unchanged/,
  },
];

describe('the message after an interruption', () => {
  for (const c of cases) {
    it(c.name, () => {
      const t = trackTarget();
      for (const e of c.events) t.see(e);
      const err = interruptedError('SIGINT', c.run, t.state);
      expect(err.code).toBe('INTERRUPTED');
      expect(err.exitCode).toBe(130);
      expect(err.message).toMatch(c.message);
      if (c.not) expect(err.message).not.toMatch(c.not);
    });
  }

  it('SIGTERM: TERMINATED, exit 143, same description', () => {
    const t = trackTarget();
    for (const e of [temp, renaming, renamed]) t.see(e);
    const err = interruptedError('SIGTERM', { dryRun: false, atomic: true }, t.state);
    expect([err.code, err.exitCode]).toEqual(['TERMINATED', 143]);
    expect(err.message).toBe('terminated: the target had already been replaced by the new, verified version');
    expect(err.hint).toMatch(/nothing is left to do/);
  });
});
