/**
 * Stable error codes. Tests and `--json` consumers depend on these strings:
 * add new ones, never rename. Each code belongs to one category and every
 * category maps to one process exit code (see EXIT_CODES).
 */
export const ERROR_CATEGORY = {
  // usage: bad flags or arguments
  USAGE: 'usage',
  BAD_BLOCK_SIZE: 'usage',
  BAD_CONCURRENCY: 'usage',
  UNKNOWN_HASH_METHOD: 'usage',
  BAD_LOCATION: 'usage',
  BOTH_REMOTE: 'usage',
  SAME_FILE: 'usage',
  CONFIRMATION_REQUIRED: 'usage',
  RSH_COMMAND_INVALID: 'usage',
  /** --refine-levels is not a list of piece sizes. */
  BAD_REFINE_LEVELS: 'usage',
  // source side
  SOURCE_NOT_FOUND: 'source',
  SOURCE_NOT_REGULAR: 'source',
  SOURCE_PERMISSION: 'source',
  SOURCE_IO: 'source',
  SOURCE_CHANGED: 'source',
  SOURCE_PATH_TOO_LONG: 'source',
  /** A block device that is mounted or held exclusively (see --force-device). */
  SOURCE_DEVICE_IN_USE: 'source',
  // target side
  TARGET_PARENT_MISSING: 'target',
  TARGET_NOT_REGULAR: 'target',
  TARGET_PERMISSION: 'target',
  TARGET_NO_SPACE: 'target',
  TARGET_IO: 'target',
  TARGET_LOCKED: 'target',
  /** A name beside the target was swapped by someone else during the run (see --atomic). */
  TARGET_CHANGED: 'target',
  TARGET_LOCK_UNAVAILABLE: 'target',
  TARGET_PATH_TOO_LONG: 'target',
  TARGET_DEVICE_IN_USE: 'target',
  /** A block device smaller than the source: a device is never grown. */
  TARGET_DEVICE_TOO_SMALL: 'target',
  /** A name from the file list would have written outside the target tree: refused. */
  TARGET_OUTSIDE_TREE: 'target',
  // integrity
  VERIFY_FAILED: 'verify',
  // connection and remote side
  HOST_UNRESOLVED: 'connection',
  CONNECTION_REFUSED: 'connection',
  CONNECTION_TIMEOUT: 'connection',
  CONNECTION_LOST: 'connection',
  CONNECTION_PROXY_FAILED: 'connection',
  AUTH_FAILED: 'connection',
  REMOTE_NODE_MISSING: 'connection',
  REMOTE_NODE_TOO_OLD: 'connection',
  /** --upload-node could not put a checked node binary on the remote, or the cached one failed its check. */
  REMOTE_NODE_UPLOAD_FAILED: 'connection',
  /** --upload-node: the remote's OS or CPU architecture differs from this host's. */
  REMOTE_PLATFORM_MISMATCH: 'connection',
  REMOTE_SHELL_NOT_CLEAN: 'connection',
  REMOTE_SUDO_FAILED: 'connection',
  AGENT_DIED: 'connection',
  PROTOCOL_ERROR: 'connection',
  PROTOCOL_VERSION: 'connection',
  IDLE_TIMEOUT: 'connection',
  /** -z: a packed block payload from the other side does not unpack to what it declared. */
  COMPRESSED_DATA_CORRUPT: 'connection',
  RSH_NOT_FOUND: 'connection',
  // host key policy: a security decision, so it gets its own exit code
  HOST_KEY_UNKNOWN: 'hostkey',
  HOST_KEY_CHANGED: 'hostkey',
  // several files: the run went on past failed files, each reported
  SOME_FILES_FAILED: 'partial',
  // run control
  INTERRUPTED: 'interrupted',
  TERMINATED: 'terminated',
  INTERNAL: 'internal',
} as const;

export type ErrorCode = keyof typeof ERROR_CATEGORY;
export type ErrorCategory = (typeof ERROR_CATEGORY)[ErrorCode];

/** The one table from categories to process exit codes (documented in the README and --help). */
export const EXIT_CODES: Record<ErrorCategory | 'ok', number> = {
  ok: 0,
  internal: 1,
  usage: 2,
  source: 3,
  target: 4,
  verify: 5,
  connection: 6,
  hostkey: 7,
  partial: 23,
  interrupted: 130,
  terminated: 143,
};

export function exitCodeFor(code: ErrorCode): number {
  return EXIT_CODES[ERROR_CATEGORY[code] ?? 'internal'];
}

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(ERROR_CATEGORY, value);
}

/** What each exit code means, by category: --help, the man page and the README list them. */
const EXIT_CODE_TEXT: Record<ErrorCategory | 'ok', string> = {
  ok: 'success: the target is byte-identical to the source, verified',
  internal: 'internal error (a bug: please report it with -vv output)',
  usage:
    'usage error: bad option, argument or location; several sources and a TARGET that is not an existing directory, or sources on different hosts; both sides remote; source and target the same file; --atomic with a block device; Node.js older than 20 on this host',
  source: 'source error: missing, unreadable, path too long, not a regular file or block device (or a /proc, /sys file), a device in use, or changed during the copy',
  target:
    'target error: permission, missing parent that cannot be created, path too long, no space, locked by another run (or no private lock directory), not a regular file or block device, a device in use or smaller than the source, changed by someone else during the run',
  verify: 'verification failed: the target does not match the source',
  connection:
    'connection or remote error: name resolution, refused, timeout, authentication, remote node missing, too old or not uploadable, remote shell not clean, agent died, stalled, corrupt compressed data',
  hostkey: 'host key unknown or changed (see --accept-new-host-key)',
  partial: "some files failed (several files or -r): the others were synced; each failure is reported (as rsync's 23)",
  interrupted: 'interrupted by SIGINT: rerun to finish',
  terminated: 'terminated by SIGTERM: rerun to finish',
};

/** The exit codes as --help, the man page and the README list them: [code, meaning], lowest code first. */
export const EXIT_CODE_HELP: ReadonlyArray<[number, string]> = (Object.keys(EXIT_CODES) as Array<keyof typeof EXIT_CODES>)
  .map((category): [number, string] => [EXIT_CODES[category], EXIT_CODE_TEXT[category]])
  .sort(([a], [b]) => a - b);
