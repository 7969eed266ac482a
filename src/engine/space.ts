import { targetNoSpace } from '../errors/errno.js';
import type { FileHost } from '../hosts/file-host.js';
import type { Emit } from './events.js';

/**
 * Fail with TARGET_NO_SPACE before writing anything when the target's file system
 * has less free space than the run needs (see plan.spaceNeeded). Where the host
 * cannot tell (an old remote Node), the check is skipped and the verbose log says so.
 */
export async function ensureSpace(host: FileHost, path: string, needed: number, emit: Emit): Promise<void> {
  if (needed <= 0) return;
  const { available, unknownReason } = await host.space(path);
  const name = host.display(path);
  if (available === null) {
    emit({ type: 'log', level: 1, message: `free space for ${name} not checked: ${unknownReason ?? 'unknown on that host'}` });
    return;
  }
  if (available < needed) {
    throw targetNoSpace(name, `not enough free space: the copy needs ${mib(needed)}, the file system has ${mib(available)} free`);
  }
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}
