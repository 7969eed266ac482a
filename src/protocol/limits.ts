/** Named limits, checked before anything is allocated. */
/**
 * The version the client and the agent compare in `hello`: bump it whenever an op or a
 * message (messages.ts, ops.ts) changes shape, so that mismatched sides refuse each other.
 */
export const PROTOCOL_VERSION = 4;

/**
 * --atomic: files at temp names that are not ours are named in an `open` answer up to this many,
 * the rest only counted (anyone who can write beside the target can make thousands).
 */
export const MAX_LEFT_ALONE_LISTED = 20;

/** Set-id, sticky and permission bits: the most of a mode any message carries (what --perms carries over). */
export const MODE_BITS = 0o7777;

/** Largest block size a user may ask for. */
export const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
/**
 * Largest read/write request the engine makes (consecutive changed blocks are merged up to
 * this, a block at least); pooled transfer buffers (file-service.ts) are this big.
 */
export const TRANSFER_RUN_BYTES = 4 * 1024 * 1024;
/** Largest single read/write payload (coalesced runs of blocks are split to this). */
export const MAX_IO_BYTES = MAX_BLOCK_SIZE;
/** Room in a frame for its MessagePack body beside the largest payload. */
export const FRAME_BODY_RESERVE = 64 * 1024;
/** Frame header announces the body length; anything larger is a protocol error. */
export const MAX_FRAME_BYTES = MAX_IO_BYTES + FRAME_BODY_RESERVE;
/** Largest raw payload one frame carries: what is left of a frame after the body's room. */
export const MAX_PAYLOAD_BYTES = MAX_FRAME_BYTES - FRAME_BODY_RESERVE;
/** Most blocks one hash request may cover: bounds the agent's work and memory per request. */
export const MAX_HASH_BLOCKS = 1 << 20;
/**
 * The most zero runs one read reports (fileops/zero-runs.ts): the answer's list must stay
 * small beside its payload.
 */
export const MAX_ZERO_RUNS = 1024;
/** Requests one peer may have outstanding on one stream. */
export const MAX_IN_FLIGHT = 1024;
/** Linux PATH_MAX, counting the terminating NUL: a path has at most PATH_MAX - 1 bytes. */
export const PATH_MAX = 4096;
/** Linux NAME_MAX on the common file systems: one name in a path has at most this many bytes. */
export const NAME_MAX = 255;
/**
 * Most pieces one hashpieces/readpieces/writepieces request lists: the list travels in
 * the MessagePack body, which has FRAME_BODY_RESERVE bytes beside the payload; each
 * piece is two numbers of at most 9 bytes, and 1 KiB is left for the rest of the body.
 */
export const MAX_PIECES = Math.floor((FRAME_BODY_RESERVE - 1024) / 18);
/** Most file bytes one hashpieces request covers: bounds the agent's reading per request, as MAX_IO_BYTES does for a read. */
export const MAX_HASH_PIECES_BYTES = MAX_IO_BYTES;
/**
 * Runs the engine refines at once; each side of the file keeps as many read windows
 * (file-service.ts), so that a run's later rounds find its bytes in memory.
 */
export const REFINE_RUNS_IN_FLIGHT = 16;

/**
 * Read windows each of `agents` agents serving one file keeps: refinement sends all
 * requests of a run to one agent, runs going round the agents in turn, so each holds
 * about its share of the runs in flight (one spare for an uneven moment). Each window is
 * READ_CHUNK_BYTES of memory that a process touches once: on these VMs fresh memory
 * costs about as much as reading it from the page cache several times over.
 */
export function windowsPerAgent(agents: number): number {
  return Math.min(REFINE_RUNS_IN_FLIGHT, Math.ceil(REFINE_RUNS_IN_FLIGHT / Math.max(1, agents)) + 1);
}
