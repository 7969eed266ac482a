import { describe, expect, it } from 'vitest';
import { devName, majorMinor, mountPointOf } from '../../src/fileops/block-device.js';

describe('block device helpers', () => {
  it.each([
    [0x0700, 7, 0],
    [0x0801, 8, 1],
    [0xfd03, 253, 3],
    // large minors (minor bits 8+ live above bit 20), e.g. 259:65536
    [(259 << 8) | (0x100 << 12), 259, 0x100],
    // a major above 4095 (bits 32+)
    [2 ** 32 * 0x1000 + (5 << 8), 0x1000 | 5, 0],
  ])('rdev %d is %d:%d', (rdev, major, minor) => {
    expect(majorMinor(rdev)).toEqual({ major, minor });
    expect(devName(rdev)).toBe(`${major}:${minor}`);
  });

  const MOUNTINFO = [
    '22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw',
    '98 22 7:3 / /mnt/with\\040space rw,relatime shared:50 - ext4 /dev/loop3 rw',
    '30 22 0:26 / /tmp rw shared:9 - tmpfs tmpfs rw',
  ].join('\n');
  it('finds the mount point of a device by MAJ:MIN, and nothing for one not mounted', () => {
    expect(mountPointOf('7:3', MOUNTINFO)).toBe('/mnt/with\\040space');
    expect(mountPointOf('254:0', MOUNTINFO)).toBe('/');
    expect(mountPointOf('7:0', MOUNTINFO)).toBeUndefined();
  });
});
