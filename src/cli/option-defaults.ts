import { MAX_BLOCK_SIZE } from '../protocol/limits.js';

/** Defaults and limits of the options: resolveConfig applies them, the option table documents them. */
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
/** The largest -b (MAX_BLOCK_SIZE) as the help and its errors write it. */
export const MAX_BLOCK_SIZE_TEXT = `${MAX_BLOCK_SIZE / (1024 * 1024)} MiB`;
export const DEFAULT_CONCURRENCY = 4;
export const MAX_CONCURRENCY = 64;
export const DEFAULT_IDLE_TIMEOUT_S = 60;
export const MAX_CONNECTIONS = 16;
/** --connection-threads values. */
export const CONNECTION_THREADS_CHOICES = ['auto', 'always', 'never'] as const;
export type ConnectionThreads = (typeof CONNECTION_THREADS_CHOICES)[number];
