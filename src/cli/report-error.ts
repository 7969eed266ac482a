import { EXIT_CODES } from '../errors/codes.js';
import { PdcError } from '../errors/pdc-error.js';

/**
 * The one place that turns any error into what the user sees and the exit code.
 * One line (plus a hint line); the stack only at -vv, since a stack is for us,
 * not for the user.
 */
export function describeError(err: unknown, verbosity: number): { lines: string[]; exitCode: number; code: string } {
  const e = toPdcError(err);
  const lines = [`pdiffcopy: error: ${e.message}`];
  if (e.hint) lines.push(`pdiffcopy: hint: ${e.hint}`);
  if (verbosity >= 2) {
    const original = e.cause instanceof Error ? e.cause : e;
    if (original.stack) lines.push(original.stack);
  }
  return { lines, exitCode: e.exitCode, code: e.code };
}

/** Anything that is not a PdcError by now is a bug (cac's usage errors are translated where they are caught, in main.ts). */
export function toPdcError(err: unknown): PdcError {
  if (err instanceof PdcError) return err;
  const e = err as Error;
  return new PdcError('INTERNAL', `unexpected error: ${e?.message ?? String(err)}`, {
    hint: 'this is a bug; rerun with -vv and report the output',
    cause: err,
  });
}

export { EXIT_CODES };
