import { type ErrorCode, exitCodeFor, isErrorCode } from './codes.js';

export interface PdcErrorOptions {
  hint?: string;
  cause?: unknown;
}

/**
 * The one error type that crosses layer boundaries. Low-level errors (errno,
 * ssh2, protocol) are translated into it once, where they happen, so that the
 * CLI only has to print `message` (+ `hint`) and exit with `exitCode`.
 */
export class PdcError extends Error {
  readonly code: ErrorCode;
  readonly hint?: string;

  constructor(code: ErrorCode, message: string, options: PdcErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PdcError';
    this.code = code;
    if (options.hint) this.hint = options.hint;
  }

  get exitCode(): number {
    return exitCodeFor(this.code);
  }

  /** Wire form: errors travel between agent and CLI as {code, message, hint}. */
  toWire(): WireError {
    return { code: this.code, message: this.message, ...(this.hint ? { hint: this.hint } : {}) };
  }

  static fromWire(wire: WireError, context?: string): PdcError {
    const code = isErrorCode(wire.code) ? wire.code : 'INTERNAL';
    const message = context ? `${context}: ${wire.message}` : wire.message;
    return new PdcError(code, message, { hint: wire.hint });
  }
}

export interface WireError {
  code: string;
  message: string;
  hint?: string;
}

/** Any error in wire form: a PdcError as it is, anything else as INTERNAL with its message. */
export function toWireError(e: unknown): WireError {
  if (e instanceof PdcError) return e.toWire();
  const err = e as Error;
  return { code: 'INTERNAL', message: err && err.message ? err.message : String(e) };
}

export function isPdcError(e: unknown): e is PdcError {
  return e instanceof PdcError;
}

/** The source's bytes, size or mtime changed while it was copied (`detail`: how, when known). */
export function sourceChanged(name: string, detail?: string): PdcError {
  return new PdcError('SOURCE_CHANGED', `source ${name} changed during the copy${detail ? ` (${detail})` : ''}`, {
    hint: 'copy from a file that is not being written (stop the writer or copy a snapshot), then rerun',
  });
}

/** What was written does not read back as the source's bytes (`message`: what differs, where). */
export function verifyFailed(message: string): PdcError {
  return new PdcError('VERIFY_FAILED', message, { hint: 'rerun to repair; if it persists, check the target disk and memory' });
}

/** Every connection to `display` is gone (or full): nothing is left to open a channel on. */
export function noUsableConnection(display: string): PdcError {
  return new PdcError('CONNECTION_LOST', `no usable connection to ${display}`, { hint: 'rerun to continue' });
}

/** The run was stopped before it finished (`what`: by what, when it is more than a signal). */
export function interrupted(what = 'interrupted'): PdcError {
  return new PdcError('INTERRUPTED', what);
}

/** The one cancellation check of long steps: throws interrupted() once `signal` is aborted, whatever its reason. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw interrupted();
}
