/**
 * Block devices (a disk, a partition, an LVM snapshot, a loop device) as source or
 * target. stat says size 0 for them: the size comes from sysfs. A device in use (a
 * mounted file system on it, or held exclusively by LVM, md, another O_EXCL opener)
 * is refused unless the caller forces it. Node 12 syntax and built-ins only.
 */
import { constants as fsConstants, promises as fsp, readFileSync, realpathSync } from 'node:fs';
import { basename } from 'node:path';
import type { Role } from '../errors/errno.js';
import { PdcError } from '../errors/pdc-error.js';

/** Linux's dev_t split (glibc's gnu_dev_major/minor), in float-safe arithmetic (dev_t fits in 2^53 here). */
export function majorMinor(rdev: number): { major: number; minor: number } {
  const hi = Math.floor(rdev / 2 ** 32);
  const lo = rdev >>> 0;
  const major = ((lo >>> 8) & 0xfff) | (hi & 0xfffff000);
  const minor = (lo & 0xff) | (((lo >>> 12) | (hi << 20)) & 0xffffff00);
  return { major: major >>> 0, minor: minor >>> 0 };
}

/** "MAJ:MIN", as sysfs and /proc/self/mountinfo name a device. */
export function devName(rdev: number): string {
  const { major, minor } = majorMinor(rdev);
  return `${major}:${minor}`;
}

/**
 * The device's "MAJ:MIN". Node 12's stat reports only the major number in rdev (a libuv
 * statx bug, fixed in later releases), so the kernel's own answer comes first: the
 * device node's real name in /sys/class/block (loop0, dm-3, sda1), accepted when its
 * major number agrees with rdev; rdev decides only for a node without a kernel name.
 */
export function deviceNumbers(path: string, rdev: number): string {
  try {
    const mm = readFileSync(`/sys/class/block/${basename(realpathSync(path))}/dev`, 'utf8').trim();
    const major = Number(mm.split(':')[0]);
    if (/^\d+:\d+$/.test(mm) && (major === majorMinor(rdev).major || major === rdev)) return mm;
  } catch {
    /* no kernel name for it: rdev decides */
  }
  return devName(rdev);
}

/** The device's size in bytes: /sys/dev/block/MAJ:MIN/size counts 512-byte sectors whatever the device's own sector size. */
export function blockDeviceSize(path: string, rdev: number): number {
  const mm = deviceNumbers(path, rdev);
  const sectors = Number(readFileSync(`/sys/dev/block/${mm}/size`, 'utf8').trim());
  if (!Number.isSafeInteger(sectors) || sectors < 0) throw new Error(`unreadable size for block device ${mm}`);
  return sectors * 512;
}

/** Where the device ("MAJ:MIN") is mounted (from /proc/self/mountinfo: field 3 is MAJ:MIN, field 5 the mount point), if it is. */
export function mountPointOf(name: string, mountinfo = readMountinfo()): string | undefined {
  for (const line of mountinfo.split('\n')) {
    const f = line.split(' ');
    if (f[2] === name) return f[4];
  }
  return undefined;
}

function readMountinfo(): string {
  try {
    return readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return '';
  }
}

/**
 * Why the device is in use, or undefined: mounted, or claimed by someone (the kernel
 * refuses an O_EXCL open of a block device that is mounted or held by LVM, md, or
 * another exclusive opener, with EBUSY; plain opens such as ours never block it).
 */
export async function deviceInUse(path: string, rdev: number): Promise<string | undefined> {
  const mount = mountPointOf(deviceNumbers(path, rdev));
  if (mount !== undefined) return `mounted on ${mount.replace(/\\040/g, ' ')}`;
  try {
    const fh = await fsp.open(path, fsConstants.O_RDONLY | fsConstants.O_EXCL);
    await fh.close();
    return undefined;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EBUSY') return 'held open exclusively (a file system, LVM, md or another program claims it)';
    throw e;
  }
}

export function deviceInUseError(path: string, role: Role, why: string): PdcError {
  const code = role === 'source' ? 'SOURCE_DEVICE_IN_USE' : 'TARGET_DEVICE_IN_USE';
  return new PdcError(code, `${role} ${path} is a block device in use (${why})`, {
    hint:
      role === 'source'
        ? 'copy from a snapshot or an unmounted device, or pass --force-device to read it anyway (the copy may be inconsistent)'
        : 'unmount it or stop what holds it, or pass --force-device to write it anyway (this can corrupt what uses it)',
  });
}

export function deviceTooSmall(name: string, deviceSize: number, sourceSize: number): PdcError {
  return new PdcError('TARGET_DEVICE_TOO_SMALL', `target ${name} is a block device of ${deviceSize} bytes, smaller than the source (${sourceSize} bytes); nothing was written`, {
    hint: 'name a device at least as large as the source (a device is never grown)',
  });
}
