/** Defaults and limits of the options: resolveConfig applies them, the option table documents them. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 64;
export const DEFAULT_IDLE_TIMEOUT_S = 60;
export const MAX_CONNECTIONS = 16;
/** --connection-threads values. */
export const CONNECTION_THREADS_CHOICES = ['auto', 'always', 'never'] as const;
export type ConnectionThreads = (typeof CONNECTION_THREADS_CHOICES)[number];
