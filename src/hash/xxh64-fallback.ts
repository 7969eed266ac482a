// XXH64 from hash-wasm, for where xxhash-wasm cannot be used (Node < 15). A module of its
// own so that it is loaded only when needed, and bundles keep only this one hash-wasm export.
export { createXXHash64 } from 'hash-wasm';
