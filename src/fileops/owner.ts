/**
 * Whose files a run may trust. A run trusts what it could have made itself and what
 * root made: those are the only owners who could not have planted a file or link to
 * steer it (rsync's rule for symlinks in the destination).
 */
export function euid(): number {
  return typeof process.geteuid === 'function' ? process.geteuid() : -1;
}

/** Owned by root or by the user this run is: not something another user can have planted. */
export function trustedOwner(uid: number): boolean {
  return uid === 0 || uid === euid();
}
