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
      if (S) {
        code = 'SOURCE_NOT_FOUND';
        message = `source ${where} does not exist`;
        hint = 'check the path (remote relative paths start in the remote home directory)';
      } else {
        code = 'TARGET_PARENT_MISSING';
        message = `target ${where}: a parent directory is missing and could not be created`;
        hint = 'create the directory first, or check the path';
      }
      break;
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      code = S ? 'SOURCE_PERMISSION' : 'TARGET_PERMISSION';
      message = `${role} ${where}: permission denied${errno === 'EROFS' ? ' (read-only file system)' : ''}`;
      hint = S ? 'make the file readable for this user' : 'make the target writable, or use --sudo for a remote target owned by root';
      break;
    case 'EISDIR':
      code = S ? 'SOURCE_NOT_REGULAR' : 'TARGET_NOT_REGULAR';
      message = `${role} ${where} is a directory`;
      hint = S ? 'name a regular file as the source' : 'name the file inside the directory';
      break;
    case 'ENOTDIR':
      code = S ? 'SOURCE_NOT_FOUND' : 'TARGET_PARENT_MISSING';
      message = `${role} ${where}: a component of the path is not a directory`;
      hint = 'check the path';
      break;
    case 'ENOSPC':
    case 'EDQUOT':
      code = S ? 'SOURCE_IO' : 'TARGET_NO_SPACE';
      message = `${role} ${where}: no space left on device`;
      hint = 'free space on the target file system; rerun to continue where it stopped';
      break;
  }
  return new PdcError(code, message, { hint, cause: err });
}
