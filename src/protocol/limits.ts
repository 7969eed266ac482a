/** Named limits, checked before anything is allocated. */
export const PROTOCOL_VERSION = 1;

/** Largest block size a user may ask for. */
export const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
/** Largest single read/write payload (coalesced runs of blocks are split to this). */
export const MAX_IO_BYTES = MAX_BLOCK_SIZE;
/** Frame header announces the body length; anything larger is a protocol error. */
export const MAX_FRAME_BYTES = MAX_IO_BYTES + 64 * 1024;
/** Most blocks one hash request may cover (bounds the reply to 16 bytes x this). */
export const MAX_HASH_BLOCKS = 1 << 20;
/** Requests one peer may have outstanding on one stream. */
export const MAX_IN_FLIGHT = 1024;
