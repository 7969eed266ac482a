import { describe, expect, it } from 'vitest';
import {
  ERROR_CATEGORY,
  EXIT_CODES,
  EXIT_CODE_HELP,
  type ErrorCode,
  PdcError,
  exitCodeFor,
  fromErrno,
  isErrorCode,
  isPdcError,
  pathTooLong,
} from '../../src/errors/index.js';

const CODES = Object.keys(ERROR_CATEGORY) as ErrorCode[];

describe('error codes and exit codes', () => {
  it('every code has a category with an exit code', () => {
    expect(CODES.length).toBeGreaterThan(30);
    for (const code of CODES) {
      const cat = ERROR_CATEGORY[code];
      expect(EXIT_CODES, `${code} -> ${cat}`).toHaveProperty(cat);
      expect(Number.isInteger(EXIT_CODES[cat])).toBe(true);
      expect(exitCodeFor(code)).toBe(EXIT_CODES[cat]);
      expect(new PdcError(code, 'x').exitCode).toBe(EXIT_CODES[cat]);
    }
  });

  it('exit codes are distinct per category, and only ok is 0', () => {
    const values = Object.values(EXIT_CODES);
    expect(new Set(values).size).toBe(values.length);
    for (const [cat, n] of Object.entries(EXIT_CODES)) {
      if (cat === 'ok') expect(n).toBe(0);
      else expect(n).toBeGreaterThan(0);
      expect(n).toBeLessThan(256);
    }
  });

  it('every category is used by some code (no dead exit codes)', () => {
    const used = new Set<string>(Object.values(ERROR_CATEGORY));
    for (const cat of Object.keys(EXIT_CODES)) if (cat !== 'ok') expect(used, cat).toContain(cat);
  });

  it('the help table lists every exit code', () => {
    const text = EXIT_CODE_HELP.map(([n, s]) => `${n} ${s}`).join('\n');
    for (const n of Object.values(EXIT_CODES)) expect(text).toContain(String(n));
  });

  it.each<[ErrorCode, number]>([
    ['USAGE', 2],
    ['BAD_BLOCK_SIZE', 2],
    ['SOURCE_NOT_FOUND', 3],
    ['TARGET_NO_SPACE', 4],
    ['TARGET_LOCKED', 4],
    ['VERIFY_FAILED', 5],
    ['AGENT_DIED', 6],
    ['IDLE_TIMEOUT', 6],
    ['PROTOCOL_ERROR', 6],
    ['HOST_KEY_CHANGED', 7],
    ['INTERRUPTED', 130],
    ['TERMINATED', 143],
    ['INTERNAL', 1],
  ])('%s exits %d', (code, n) => {
    expect(exitCodeFor(code)).toBe(n);
  });

  it('isErrorCode accepts only known codes (not inherited properties)', () => {
    for (const code of CODES) expect(isErrorCode(code)).toBe(true);
    for (const v of ['NOPE', 'toString', '__proto__', 'constructor', '', 5, null, undefined, {}]) expect(isErrorCode(v)).toBe(false);
  });
});

const errno = (code: string, message = `${code}: oops`) => Object.assign(new Error(message), { code });

describe('fromErrno', () => {
  it.each<[string, 'source' | 'target', ErrorCode]>([
    ['ENOENT', 'source', 'SOURCE_NOT_FOUND'],
    ['ENOENT', 'target', 'TARGET_PARENT_MISSING'],
    ['EACCES', 'source', 'SOURCE_PERMISSION'],
    ['EACCES', 'target', 'TARGET_PERMISSION'],
    ['EPERM', 'target', 'TARGET_PERMISSION'],
    ['EROFS', 'target', 'TARGET_PERMISSION'],
    ['EISDIR', 'source', 'SOURCE_NOT_REGULAR'],
    ['EISDIR', 'target', 'TARGET_NOT_REGULAR'],
    ['ENOTDIR', 'source', 'SOURCE_NOT_FOUND'],
    ['ENOTDIR', 'target', 'TARGET_PARENT_MISSING'],
    ['ENOSPC', 'target', 'TARGET_NO_SPACE'],
    ['EDQUOT', 'target', 'TARGET_NO_SPACE'],
    ['ENOSPC', 'source', 'SOURCE_IO'],
    ['EIO', 'source', 'SOURCE_IO'],
    ['EIO', 'target', 'TARGET_IO'],
    ['EBADF', 'target', 'TARGET_IO'],
    ['ENAMETOOLONG', 'source', 'SOURCE_PATH_TOO_LONG'],
    ['ENAMETOOLONG', 'target', 'TARGET_PATH_TOO_LONG'],
  ])('%s on the %s -> %s', (code, role, want) => {
    const cause = errno(code);
    const e = fromErrno(cause, role, 'host:/f');
    expect(e).toBeInstanceOf(PdcError);
    expect(e.code).toBe(want);
    expect(e.message).toContain('host:/f');
    expect(e.cause).toBe(cause);
  });

  it('gives hints for the actionable cases', () => {
    expect(fromErrno(errno('ENOSPC'), 'target', 'x').hint).toMatch(/space/);
    expect(fromErrno(errno('EACCES'), 'target', 'x').hint).toMatch(/--sudo/);
    expect(fromErrno(errno('EROFS'), 'target', 'x').message).toMatch(/read-only/);
  });

  it.each<[string, string, RegExp]>([
    ['a long name', `/srv/${'n'.repeat(300)}`, /path too long: a name in it is longer than 255 bytes \(NAME_MAX\)/],
    ['a path of 4096 bytes', `/${'d/'.repeat(2047)}f`, /path too long: the path has 4096 bytes, Linux allows at most 4095 \(PATH_MAX\)/],
    ['multi-byte characters counted as bytes', `/${'\u00e9'.repeat(2048)}`, /the path has 4097 bytes/],
  ])('pathTooLong names the limit: %s', (_name, path, want) => {
    const e = pathTooLong('target', path);
    expect(e.code).toBe('TARGET_PATH_TOO_LONG');
    expect(e.message).toMatch(want);
    expect(e.message.length).toBeLessThan(300); // one readable line, however long the path
    expect(e.hint).toMatch(/shorter/);
  });

  it('passes a PdcError through unchanged', () => {
    const e = new PdcError('TARGET_LOCKED', 'locked');
    expect(fromErrno(e, 'source', 'x')).toBe(e);
  });

  it.each([undefined, null, 'a string', 42, {}])('copes with a non-Error %j', (v) => {
    const e = fromErrno(v, 'source', 'f');
    expect(e.code).toBe('SOURCE_IO');
    expect(e.message).toContain('f');
  });
});

describe('PdcError wire form', () => {
  it('round-trips code, message and hint', () => {
    for (const code of CODES) {
      const e = new PdcError(code, `msg ${code}`, { hint: 'do this' });
      const back = PdcError.fromWire(e.toWire());
      expect(back).toBeInstanceOf(PdcError);
      expect(back.code).toBe(code);
      expect(back.message).toBe(`msg ${code}`);
      expect(back.hint).toBe('do this');
      expect(back.exitCode).toBe(e.exitCode);
    }
  });

  it('omits an absent hint on the wire', () => {
    const w = new PdcError('SOURCE_IO', 'm').toWire();
    expect(w).toEqual({ code: 'SOURCE_IO', message: 'm' });
    expect('hint' in w).toBe(false);
    expect(PdcError.fromWire(w).hint).toBeUndefined();
  });

  it('keeps only code, message and hint (no stack or cause on the wire)', () => {
    const w = new PdcError('SOURCE_IO', 'm', { hint: 'h', cause: new Error('inner') }).toWire();
    expect(Object.keys(w).sort()).toEqual(['code', 'hint', 'message']);
  });

  it.each(['NOT_A_CODE', '', 'toString', '__proto__'])('unknown wire code %j -> INTERNAL', (code) => {
    const e = PdcError.fromWire({ code, message: 'boom' });
    expect(e.code).toBe('INTERNAL');
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe('boom');
  });

  it('prefixes a context', () => {
    expect(PdcError.fromWire({ code: 'SOURCE_IO', message: 'boom' }, 'host1').message).toBe('host1: boom');
  });

  it('isPdcError', () => {
    expect(isPdcError(new PdcError('USAGE', 'x'))).toBe(true);
    expect(isPdcError(new Error('x'))).toBe(false);
    expect(new PdcError('USAGE', 'x').name).toBe('PdcError');
  });
});
