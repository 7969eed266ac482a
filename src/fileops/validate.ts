import { PdcError } from '../errors/pdc-error.js';

/** Argument checks for requests that arrive over the wire: never trust the peer's numbers. */
export function uint(args: unknown, key: string, max = Number.MAX_SAFE_INTEGER): number {
  const v = (args as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v > max) {
    throw new PdcError('PROTOCOL_ERROR', `bad request: "${key}" must be an integer from 0 to ${max}`);
  }
  return v;
}

export function str(args: unknown, key: string): string {
  const v = (args as Record<string, unknown> | null)?.[key];
  if (typeof v !== 'string' || v.length === 0 || v.length > 4096 || v.includes('\0')) {
    throw new PdcError('PROTOCOL_ERROR', `bad request: "${key}" must be a non-empty string`);
  }
  return v;
}

export function bool(args: unknown, key: string): boolean {
  return (args as Record<string, unknown> | null)?.[key] === true;
}
