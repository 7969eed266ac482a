;; XXH64 (seed 0) over many pieces of one buffer in a single call.
;;
;; Source of src/hash/xxh64-pieces-wasm.ts (regenerate with `npm run gen:wasm`, needs wat2wasm
;; from wabt). WebAssembly 1.0 (MVP) only: i32/i64 ops, no SIMD, no bulk memory, so it runs on
;; Node 12 (the agent's floor). The memory is imported: the JS side gives either a memory of
;; its own (bytes copied in) or the page-aligned memory a read buffer already lives in
;; (src/fileops/aligned-buffer.ts: hashed where it was read). No i64 crosses the JS boundary (Node < 15 cannot
;; pass one): digests are stored in memory.
;;
;; Digests are stored big-endian, the bytes `writeBigUInt64BE(h64Raw(piece))` gives, so the
;; wire format is that of any other XXH64 implementation.
;;
;; Everything is written out in one loop: V8 (Node 20) does not inline wasm calls, and a call
;; per round ran at 40% of xxhash-wasm's speed on 1 MiB (measured); a call per piece would
;; cost as much as hashing a 64-byte piece. The primes appear as literals:
;;   P1 0x9E3779B185EBCA87  P2 0xC2B2AE3D27D4EB4F  P3 0x165667B19E3779F9
;;   P4 0x85EBCA77C2B2AE63  P5 0x27D4EB2F165667C5
;; round(acc, lane) = rotl(acc + lane * P2, 31) * P1
;; merge(h, v)      = (h ^ round(0, v)) * P1 + P4

(module
  (import "env" "memory" (memory 1))

  ;; Hash [p, end) in pieces of `grain` bytes (the last clipped), digest k at out + 8k; returns
  ;; the count. Runs at least once: with p = end and grain 0 that is the digest of no bytes.
  (func $run (param $p i32) (param $end i32) (param $grain i32) (param $out i32) (result i32)
    (local $n i32) (local $pieceEnd i32) (local $limit i32) (local $len i32)
    (local $h i64) (local $v1 i64) (local $v2 i64) (local $v3 i64) (local $v4 i64)
    (loop $each
      (local.set $len (i32.sub (local.get $end) (local.get $p)))
      (if (i32.gt_u (local.get $len) (local.get $grain)) (then (local.set $len (local.get $grain))))
      (local.set $pieceEnd (i32.add (local.get $p) (local.get $len)))
      ;; 32-byte stripes into four lanes, merged.
      (if (i32.ge_u (local.get $len) (i32.const 32))
        (then
          (local.set $limit (i32.sub (local.get $pieceEnd) (i32.const 32)))
          (local.set $v1 (i64.add (i64.const 0x9E3779B185EBCA87) (i64.const 0xC2B2AE3D27D4EB4F)))
          (local.set $v2 (i64.const 0xC2B2AE3D27D4EB4F))
          (local.set $v3 (i64.const 0))
          (local.set $v4 (i64.sub (i64.const 0) (i64.const 0x9E3779B185EBCA87)))
          (loop $stripes
            (local.set $v1 (i64.mul (i64.rotl (i64.add (local.get $v1) (i64.mul (i64.load offset=0 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
            (local.set $v2 (i64.mul (i64.rotl (i64.add (local.get $v2) (i64.mul (i64.load offset=8 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
            (local.set $v3 (i64.mul (i64.rotl (i64.add (local.get $v3) (i64.mul (i64.load offset=16 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
            (local.set $v4 (i64.mul (i64.rotl (i64.add (local.get $v4) (i64.mul (i64.load offset=24 (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F))) (i64.const 31)) (i64.const 0x9E3779B185EBCA87)))
            (local.set $p (i32.add (local.get $p) (i32.const 32)))
            (br_if $stripes (i32.le_u (local.get $p) (local.get $limit))))
          (local.set $h
            (i64.add
              (i64.add (i64.rotl (local.get $v1) (i64.const 1)) (i64.rotl (local.get $v2) (i64.const 7)))
              (i64.add (i64.rotl (local.get $v3) (i64.const 12)) (i64.rotl (local.get $v4) (i64.const 18)))))
          (local.set $h (i64.add (i64.mul (i64.xor (local.get $h) (i64.mul (i64.rotl (i64.mul (local.get $v1) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 31)) (i64.const 0x9E3779B185EBCA87))) (i64.const 0x9E3779B185EBCA87)) (i64.const 0x85EBCA77C2B2AE63)))
          (local.set $h (i64.add (i64.mul (i64.xor (local.get $h) (i64.mul (i64.rotl (i64.mul (local.get $v2) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 31)) (i64.const 0x9E3779B185EBCA87))) (i64.const 0x9E3779B185EBCA87)) (i64.const 0x85EBCA77C2B2AE63)))
          (local.set $h (i64.add (i64.mul (i64.xor (local.get $h) (i64.mul (i64.rotl (i64.mul (local.get $v3) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 31)) (i64.const 0x9E3779B185EBCA87))) (i64.const 0x9E3779B185EBCA87)) (i64.const 0x85EBCA77C2B2AE63)))
          (local.set $h (i64.add (i64.mul (i64.xor (local.get $h) (i64.mul (i64.rotl (i64.mul (local.get $v4) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 31)) (i64.const 0x9E3779B185EBCA87))) (i64.const 0x9E3779B185EBCA87)) (i64.const 0x85EBCA77C2B2AE63))))
        (else
          (local.set $h (i64.const 0x27D4EB2F165667C5))))
      (local.set $h (i64.add (local.get $h) (i64.extend_i32_u (local.get $len))))
      ;; The tail: 8 bytes at a time, then 4, then single bytes.
      (block $done8
        (loop $eights
          (br_if $done8 (i32.gt_u (i32.add (local.get $p) (i32.const 8)) (local.get $pieceEnd)))
          (local.set $h
            (i64.add
              (i64.mul (i64.rotl (i64.xor (local.get $h) (i64.mul (i64.rotl (i64.mul (i64.load (local.get $p)) (i64.const 0xC2B2AE3D27D4EB4F)) (i64.const 31)) (i64.const 0x9E3779B185EBCA87))) (i64.const 27)) (i64.const 0x9E3779B185EBCA87))
              (i64.const 0x85EBCA77C2B2AE63)))
          (local.set $p (i32.add (local.get $p) (i32.const 8)))
          (br $eights)))
      (if (i32.le_u (i32.add (local.get $p) (i32.const 4)) (local.get $pieceEnd))
        (then
          (local.set $h
            (i64.add
              (i64.mul
                (i64.rotl (i64.xor (local.get $h) (i64.mul (i64.load32_u (local.get $p)) (i64.const 0x9E3779B185EBCA87))) (i64.const 23))
                (i64.const 0xC2B2AE3D27D4EB4F))
              (i64.const 0x165667B19E3779F9)))
          (local.set $p (i32.add (local.get $p) (i32.const 4)))))
      (block $done1
        (loop $ones
          (br_if $done1 (i32.ge_u (local.get $p) (local.get $pieceEnd)))
          (local.set $h
            (i64.mul
              (i64.rotl (i64.xor (local.get $h) (i64.mul (i64.load8_u (local.get $p)) (i64.const 0x27D4EB2F165667C5))) (i64.const 11))
              (i64.const 0x9E3779B185EBCA87)))
          (local.set $p (i32.add (local.get $p) (i32.const 1)))
          (br $ones)))
      ;; Avalanche.
      (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 33))) (i64.const 0xC2B2AE3D27D4EB4F)))
      (local.set $h (i64.mul (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 29))) (i64.const 0x165667B19E3779F9)))
      (local.set $h (i64.xor (local.get $h) (i64.shr_u (local.get $h) (i64.const 32))))
      ;; Stored big-endian (wasm stores little-endian): swap bytes within pairs, pairs within
      ;; quads, then the halves.
      (local.set $h
        (i64.or
          (i64.shl (i64.and (local.get $h) (i64.const 0x00FF00FF00FF00FF)) (i64.const 8))
          (i64.and (i64.shr_u (local.get $h) (i64.const 8)) (i64.const 0x00FF00FF00FF00FF))))
      (local.set $h
        (i64.or
          (i64.shl (i64.and (local.get $h) (i64.const 0x0000FFFF0000FFFF)) (i64.const 16))
          (i64.and (i64.shr_u (local.get $h) (i64.const 16)) (i64.const 0x0000FFFF0000FFFF))))
      (i64.store (i32.add (local.get $out) (i32.shl (local.get $n) (i32.const 3))) (i64.rotl (local.get $h) (i64.const 32)))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br_if $each (i32.lt_u (local.get $p) (local.get $end))))
    (local.get $n))

  ;; One digest per `grain` bytes of [ptr, ptr+len) (the last piece clipped), at out + 8k.
  ;; Returns the number of digests: ceil(len / grain); none for len 0. grain must be >= 1.
  (func (export "pieces") (param $ptr i32) (param $len i32) (param $grain i32) (param $out i32) (result i32)
    (if (i32.eqz (local.get $len)) (then (return (i32.const 0))))
    (call $run (local.get $ptr) (i32.add (local.get $ptr) (local.get $len)) (local.get $grain) (local.get $out)))

  ;; The digest of all of [ptr, ptr+len) (len may be 0), at out.
  (func (export "whole") (param $ptr i32) (param $len i32) (param $out i32)
    (drop (call $run (local.get $ptr) (i32.add (local.get $ptr) (local.get $len)) (local.get $len) (local.get $out))))
)
