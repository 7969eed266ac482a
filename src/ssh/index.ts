/** The SSH layer: everything the rest of pdiffcopy needs from it. */
export { createSshTransport, DEFAULT_CONNECTIONS, MAX_CHANNELS_PER_CONNECTION } from './transport.js';
export type { SshTransport, SshTransportOptions } from './transport.js';
export { exitStatusError } from './remote-exit.js';
export { resolveHost } from './config.js';
export type { SshHostConfig } from './config.js';
export { fingerprint, keyTypeLabel } from './known-hosts.js';
export { parseSshOptions, SUPPORTED_OPTIONS } from './options.js';
