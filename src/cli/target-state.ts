import type { RunEvent } from '../job/events.js';
import { PdcError } from '../errors/pdc-error.js';

/** What the engine's events say happened to the target so far: the basis of any message after an interruption. */
export interface TargetState {
  /** --atomic: the temp file the new version is built in, once known. */
  temp?: string;
  /** --atomic: none until the rename is asked for; renaming while it may be under way; renamed once done. */
  commit: 'none' | 'renaming' | 'renamed';
}

export function trackTarget(): { state: TargetState; see(e: RunEvent): void } {
  const state: TargetState = { commit: 'none' };
  return {
    state,
    see(e) {
      if (e.type === 'temp') state.temp = e.path;
      else if (e.type === 'commit') state.commit = e.stage;
    },
  };
}

/**
 * The error for a run stopped by a signal. It says only what the events prove: an
 * --atomic target is "unchanged" only while no rename was asked for.
 */
export function interruptedError(sig: 'SIGINT' | 'SIGTERM', run: { dryRun: boolean; atomic: boolean }, state: TargetState): PdcError {
  const what = describe(run, state);
  return new PdcError(sig === 'SIGINT' ? 'INTERRUPTED' : 'TERMINATED', `${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: ${what}`, {
    hint: state.commit === 'renamed' ? 'nothing is left to do; a rerun confirms it and sends nothing' : 'rerun the same command to finish the copy',
  });
}

function describe(run: { dryRun: boolean; atomic: boolean }, state: TargetState): string {
  if (run.dryRun) return 'nothing was written';
  if (!run.atomic) return 'the target is partly updated';
  if (state.commit === 'renamed') return 'the target had already been replaced by the new, verified version';
  if (state.commit === 'renaming') return 'the verified new version was being renamed over the target: it is either the old or the new version, never a mix';
  const kept = state.temp ? `the partly built new version ${state.temp} is kept beside it for the next run` : 'no new version was started yet';
  return `the target is unchanged (${kept})`;
}
