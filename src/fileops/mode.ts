/**
 * The mode bits a copy carries over: read/write/execute for user, group and other.
 * setuid, setgid and sticky are dropped, as cp does without -p: a copy must not
 * gain privileges its creator did not choose. Node 12 syntax: the agent bundles this file.
 */
export const PERMISSION_BITS = 0o777;

/** A new file's mode when the caller names none (the umask narrows it). */
export const DEFAULT_NEW_MODE = 0o644;
