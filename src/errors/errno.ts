import { NAME_MAX, PATH_MAX } from '../protocol/limits.js';
import { PdcError } from './pdc-error.js';
import type { ErrorCode } from './codes.js';

export type Role = 'source' | 'target';

/**
 * Translate a Node fs error (errno) into a PdcError for one side of the copy.
 * `where` names the file as the user wrote it (e.g. "host:/var/x.ibd").
 */
export function fromErrno(err: unknown, role: Role, where: string): PdcError {
  if (err instanceof PdcError) return err;
  const e = err as NodeJS.ErrnoException;
  const errno = e && typeof e === 'object' ? e.code : undefined;
  const S = role === 'source';
  let code: ErrorCode = S ? 'SOURCE_IO' : 'TARGET_IO';
  let message = `${role} ${where}: ${e?.message ?? String(err)}`;
  let hint: string | undefined;
  switch (errno) {
    case 'ENOENT':
      if (!S) return parentMissing(where, err);
      code = 'SOURCE_NOT_FOUND';
      message = `source ${where} does not exist`;
      hint = 'check the path (remote relative paths start in the remote home directory)';
      break;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      code = S ? 'SOURCE_PERMISSION' : 'TARGET_PERMISSION';
      message = `${role} ${where}: permission denied${errno === 'EROFS' ? ' (read-only file system)' : ''}`;
      hint = S ? 'make the file readable for this user' : 'make the target writable, or use --sudo for a remote target owned by root';
      break;
    case 'EISDIR':
      return notRegular(role, where, 'a directory', S ? undefined : 'name the file inside the directory', err);
    case 'ENOTDIR':
      return notADirectoryInPath(role, where, err);
    case 'ENAMETOOLONG':
      return pathTooLong(role, where, where, err);
    case 'ENOSPC':
    case 'EDQUOT':
      if (!S) return targetNoSpace(where, 'no space left on device', err);
      message = `${role} ${where}: no space left on device`;
      break;
  }
  return new PdcError(code, message, { hint, cause: err });
}

/** The source named on the command line is not there. */
export function sourceNotFound(where: string): PdcError {
  return new PdcError('SOURCE_NOT_FOUND', `source ${where} does not exist`, { hint: 'check the path' });
}

/**
 * `where` is not the regular file this side needs: `what` says what it is (e.g. "a directory",
 * "not a regular file"), `hint` what to do instead.
 */
export function notRegular(role: Role, where: string, what: string, hint = `name a regular file as the ${role}`, cause?: unknown): PdcError {
  return new PdcError(role === 'source' ? 'SOURCE_NOT_REGULAR' : 'TARGET_NOT_REGULAR', `${role} ${where} is ${what}`, { hint, cause });
}

/** The target's parent directory is missing (ENOENT) and could not be made. */
export function parentMissing(where: string, cause?: unknown): PdcError {
  return new PdcError('TARGET_PARENT_MISSING', `target ${where}: a parent directory is missing and could not be created`, {
    hint: 'create the directory first, or check the path',
    cause,
  });
}

/** A component of the path (not its last) is not a directory (ENOTDIR). */
export function notADirectoryInPath(role: Role, where: string, cause?: unknown): PdcError {
  return new PdcError(role === 'source' ? 'SOURCE_NOT_FOUND' : 'TARGET_PARENT_MISSING', `${role} ${where}: a component of the path is not a directory`, {
    hint: 'check the path',
    cause,
  });
}

/**
 * A path too long for the kernel (ENAMETOOLONG), or one refused before it is sent:
 * an error of that side, naming the limit it breaks. `where` names it for the user
 * (e.g. "host:/path"); the limits count the bytes of `path` itself.
 */
export function pathTooLong(role: Role, path: string, where = path, cause?: unknown): PdcError {
  const bytes = Buffer.byteLength(path);
  const limit =
    bytes >= PATH_MAX
      ? `the path has ${bytes} bytes, Linux allows at most ${PATH_MAX - 1} (PATH_MAX)`
      : `a name in it is longer than ${NAME_MAX} bytes (NAME_MAX)`;
  return new PdcError(role === 'source' ? 'SOURCE_PATH_TOO_LONG' : 'TARGET_PATH_TOO_LONG', `${role} ${abbreviate(where)}: path too long: ${limit}`, {
    hint: 'use a shorter path or file name',
    cause,
  });
}

/** Keep a message one readable line: the start and the end of a very long path. */
function abbreviate(path: string): string {
  return path.length <= 120 ? path : `${path.slice(0, 60)}...${path.slice(-50)}`;
}

/** The target's file system is (or would become) full: `detail` says how we know. */
export function targetNoSpace(where: string, detail: string, cause?: unknown): PdcError {
  return new PdcError('TARGET_NO_SPACE', `target ${where}: ${detail}`, {
    hint: 'free space on the target file system; rerun to continue where it stopped',
    cause,
  });
}
