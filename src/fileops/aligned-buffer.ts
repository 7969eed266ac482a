/**
 * Large read buffers that start on a page boundary.
 *
 * The kernel copies from the page cache into a buffer several times slower when the
 * buffer does not start on a 64-byte boundary (measured on these AMD EPYC machines:
 * 1 GiB read in 4 MiB preads took 0.9-1.2 s into `Buffer.allocUnsafe` memory, which
 * Node's allocator aligns to 16 bytes, and 0.2 s into page-aligned memory; `dd` gets
 * the latter). A WebAssembly.Memory's buffer is page aligned on every Node from 12 and
 * costs physical memory only where it is touched. Where one cannot be made (an address
 * space limit: each reserves virtual space for its guard region), an ordinary buffer
 * is returned: slower to read into, otherwise the same.
 *
 * Only for buffers that are allocated once and reused (pools, scratch): each is its
 * own mapping, too costly for short-lived or small ones.
 *
 * With `tailBytes`, the memory has that much room after the buffer's bytes, outside the
 * Buffer: code running in that memory (a wasm hasher, src/hash/xxh64-pieces.ts) can work
 * on the buffer's bytes where they are and write its results there.
 */
const WASM_PAGE_BYTES = 64 * 1024;
/** Below this a buffer is not worth its own mapping. */
const ALIGNED_MIN_BYTES = 256 * 1024;
/** A WebAssembly.Memory holds at most 65536 pages (4 GiB). */
const MAX_WASM_PAGES = 65536;

/** Where a buffer's memory and the room after its bytes are. */
export interface WasmRegion {
  memory: WebAssembly.Memory;
  /** Offset in the memory of the room after the buffer's bytes, and its size. */
  tailAt: number;
  tailBytes: number;
}

/** Keyed by the memory's ArrayBuffer, which every view of the buffer shares. */
const regions = new WeakMap<ArrayBuffer, WasmRegion>();

export function alignedBuffer(size: number, tailBytes = 0): Buffer {
  const pages = Math.ceil((size + tailBytes) / WASM_PAGE_BYTES);
  if (size >= ALIGNED_MIN_BYTES && pages <= MAX_WASM_PAGES && typeof WebAssembly === 'object') {
    try {
      const memory = new WebAssembly.Memory({ initial: pages, maximum: pages });
      if (tailBytes > 0) regions.set(memory.buffer, { memory, tailAt: size, tailBytes: pages * WASM_PAGE_BYTES - size });
      return Buffer.from(memory.buffer, 0, size);
    } catch {
      // No address space for another memory: fall back to an ordinary buffer.
    }
  }
  return Buffer.allocUnsafe(size);
}

/** The wasm memory `bytes` live in and the room after them, if they are a view of an aligned buffer made with a tail. */
export function wasmRegionOf(bytes: Uint8Array): WasmRegion | undefined {
  return regions.get(bytes.buffer as ArrayBuffer);
}
