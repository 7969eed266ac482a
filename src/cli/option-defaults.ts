/** Defaults and limits of the options: resolveConfig applies them, the option table documents them. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 64;
export const DEFAULT_IDLE_TIMEOUT_S = 60;
export const MAX_CONNECTIONS = 16;
