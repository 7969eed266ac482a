import { promises as fsp } from 'node:fs';
import { dirname } from 'node:path';
import type { Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';

/**
 * Kernel pseudo file systems: their files are generated on each read (a /proc file
 * says size 0 yet has content, a /sys file says 4096), so a block copy of one is
 * wrong, and writing one is poking the kernel, not copying a file. Refused as
 * source and as target.
 *
 * Detected by file system type (statfs f_type, from linux/magic.h) where Node has
 * fs.statfs (18.15 and later); the agent also runs on Node 12, which has not, and
 * there a real path under /proc or /sys (where these are mounted) stands in.
 */
const PSEUDO_FS_TYPES: ReadonlyMap<number, string> = new Map([
  [0x9fa0, 'proc'],
  [0x62656572, 'sysfs'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x62656570, 'configfs'],
  [0x6165676c, 'pstore'],
  [0xcafe4a11, 'bpf'],
  [0xde5e81e4, 'efivarfs'],
  [0xf97cff8c, 'selinuxfs'],
  [0x43415d53, 'smackfs'],
  [0x65735543, 'fusectl'],
  [0x42494e4d, 'binfmt_misc'],
  [0x7655821, 'resctrl'],
]);

/** Where the pseudo file systems live when fs.statfs cannot tell. */
const PSEUDO_MOUNTS = ['/proc', '/sys'];

/** The pseudo file system named by a statfs type, if it is one. */
export function pseudoFsByType(type: number | bigint): string | undefined {
  return PSEUDO_FS_TYPES.get(Number(type) >>> 0);
}

/** The pseudo file system a real (symlink-free, absolute) path lies in by its mount point, if any. */
export function pseudoFsByPath(realPath: string): string | undefined {
  const mount = PSEUDO_MOUNTS.find((m) => realPath === m || realPath.startsWith(`${m}/`));
  return mount === undefined ? undefined : mount.slice(1);
}

/**
 * The pseudo file system `path` is on, or undefined for a real one. For a path not
 * created yet, its nearest existing ancestor decides (creating a directory on
 * cgroupfs or configfs makes a kernel object).
 */
export async function pseudoFsOf(path: string): Promise<string | undefined> {
  const existing = await nearestExisting(path);
  if (typeof fsp.statfs === 'function') return pseudoFsByType((await fsp.statfs(existing)).type);
  return pseudoFsByPath(await fsp.realpath(existing));
}

async function nearestExisting(path: string): Promise<string> {
  for (let p = path; ; p = dirname(p)) {
    try {
      await fsp.stat(p);
      return p;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if ((code !== 'ENOENT' && code !== 'ENOTDIR') || dirname(p) === p) throw e;
    }
  }
}

export function pseudoFileError(path: string, role: Role, fsName: string): PdcError {
  return role === 'source'
    ? new PdcError('SOURCE_NOT_REGULAR', `source ${path} is on ${fsName}, a kernel pseudo file system: its size does not describe its contents`, {
        hint: 'copy a regular file (save the pseudo file first, e.g. cat FILE > copy)',
      })
    : new PdcError('TARGET_NOT_REGULAR', `target ${path} is on ${fsName}, a kernel pseudo file system: writing it would not be a copy`, {
        hint: 'name a target on a real file system',
      });
}
