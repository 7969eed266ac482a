import { promises as fsp } from 'node:fs';
import { posix } from 'node:path';
import { PdcError } from '../errors/pdc-error.js';

/**
 * `..` in a target's directory part, resolved the way the kernel (and so cp) does:
 * `a/missing/../f` needs `a/missing` to exist. Creating the missing parents of such
 * a path would create `missing` (a directory the user never asked for) just to step
 * out of it again, so a missing component before a `..` is an error and nothing is
 * created. Returns the path with everything up to its last `..` replaced by that
 * directory's real path, so the parents still to be created (after the last `..`)
 * are made where the kernel would look for them. A path without `..` is returned as is.
 */
export async function resolveDotDot(path: string): Promise<string> {
  const parts = path.split('/');
  const last = parts.lastIndexOf('..', parts.length - 2); // a `..` as the file name itself is the stat's business
  if (last < 0) return path;
  const prefix = parts.slice(0, last + 1).join('/');
  let real: string;
  try {
    real = await fsp.realpath(prefix);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT' && code !== 'ENOTDIR') throw e;
    throw missingBeforeDotDot(path, await firstMissing(parts.slice(0, last)));
  }
  return posix.join(real, ...parts.slice(last + 1));
}

/** The shortest leading part of `parts` (a `..` not counted) that does not name a directory. */
async function firstMissing(parts: string[]): Promise<string> {
  for (let i = 0; i < parts.length; i++) {
    if (parts[i] === '..' || parts[i] === '' || parts[i] === '.') continue;
    const p = parts.slice(0, i + 1).join('/');
    const st = await fsp.stat(p).catch(() => undefined);
    if (!st?.isDirectory()) return p;
  }
  return parts.join('/');
}

function missingBeforeDotDot(path: string, missing: string): PdcError {
  return new PdcError('TARGET_PARENT_MISSING', `target ${path}: ${missing} is not an existing directory, so the ".." after it leads nowhere`, {
    hint: `create ${missing} first, or write the path without ".."`,
  });
}
