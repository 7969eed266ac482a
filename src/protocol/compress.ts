/**
 * -z: block data packed for the wire, unit by unit, with brotli (node:zlib, in every Node
 * from 11.7: nothing to install or bundle, and it runs on the libuv threadpool, off the
 * main thread). Measured on the 2-vCPU reference box against deflate level 1 and a
 * bundled pure-JS lz4 (bench/codecs.mjs, BENCHMARKS.md): per CPU-second brotli quality 0
 * compresses database pages 1.84:1 at 2.3-2.8x the speed of deflate level 1 (1.97:1) and of
 * lz4js (1.63:1, on the main thread), and gives up on random data fastest.
 *
 * A packed payload is `length` raw bytes cut into units of `unit` bytes (the last one
 * shorter); `sizes` says how many wire bytes each unit took. A unit that did not shrink
 * by at least MIN_SAVING travels raw, and then its size equals its raw length: that is
 * how the reader tells them apart. The declared sizes are checked (ops.ts) before
 * anything is allocated, and a unit never inflates past its declared raw length.
 * Node 12 syntax and built-ins only: the agent bundles this file.
 */
import * as zlib from 'node:zlib';
import { PdcError } from '../errors/pdc-error.js';

export type Codec = 'brotli';
export const CODECS: readonly Codec[] = ['brotli'];

/** What a request asks the side that reads to do: pack with this codec and level, in units of this many bytes. */
export interface PackRequest {
  codec: Codec;
  level: number;
  unit: number;
}

/** How a payload was packed (see the module comment). */
export interface Packed {
  codec: Codec;
  unit: number;
  length: number;
  sizes: number[];
}

/** brotli's quality range (--compress-level). */
export const MIN_COMPRESS_LEVEL = 0;
export const MAX_COMPRESS_LEVEL = 11;
/**
 * Quality 0: per CPU-second it compresses database pages about twice as fast as quality 1
 * (1.84:1 against 2.01:1, bench/codecs.mjs), so a 1 Gbit link is filled with fewer cores.
 */
export const DEFAULT_COMPRESS_LEVEL = 0;
/** Smallest unit: the frame of a unit's compressed stream must not outweigh what it saves. */
export const MIN_PACK_UNIT = 4096;
/** Units start at this size (a block smaller than this is grouped with its neighbours). */
const PREFERRED_MIN_UNIT = 64 * 1024;
/** A unit is sent compressed only if it shrank by at least this share. */
export const MIN_SAVING = 0.05;
/** A unit is sampled in this many stretches of SAMPLE_BYTES to estimate whether it compresses. */
const SAMPLES = 8;
const SAMPLE_BYTES = 512;
/**
 * Above this many bits per byte (order-0 entropy of the sample) a unit is sent raw without
 * trying: random or already compressed data measures 7.95-8 on a 4 KiB sample, database
 * pages about 6, text below 4. Deciding on this thread costs microseconds; a trial
 * compression would cost a trip through the thread pool for every unit.
 */
const RAW_ENTROPY_BITS = 7.5;

/** The codecs this Node has (brotli needs 11.7; the agent runs on 12 and later). */
export function localCodecs(): Codec[] {
  return typeof zlib.brotliCompress === 'function' ? ['brotli'] : [];
}

/** Units follow blocks ("adaptive per block"), grouped to at least 64 KiB and at most `maxUnit` bytes. */
export function packUnit(blockSize: number, maxUnit: number): number {
  return Math.max(MIN_PACK_UNIT, Math.min(maxUnit, blockSize * Math.max(1, Math.ceil(PREFERRED_MIN_UNIT / blockSize))));
}

/** What is wrong with a packed payload's declaration (before any byte is inflated), or undefined. */
export function packedProblem(p: Packed): string | undefined {
  const units = Math.ceil(p.length / p.unit);
  if (p.sizes.length !== units) return `"sizes" must list ${units} units for ${p.length} bytes in units of ${p.unit}`;
  for (let i = 0; i < units; i++) {
    const raw = Math.min(p.unit, p.length - i * p.unit);
    if (p.sizes[i]! > raw || p.sizes[i]! === 0) return `unit ${i} takes ${p.sizes[i]} bytes: it must be from 1 to its ${raw} raw bytes`;
  }
  return undefined;
}

/**
 * zlib hands a unit's packed bytes back in chunks of this size, each a trip to the thread pool
 * (the default 16 KiB took some 34 trips per 1 MiB unit of database pages). A chunk as large as
 * the unit saves more trips, but it is allocated above glibc's mmap threshold (128 KiB), so its
 * pages are fresh every time, and in a -z push they cost about what the trips save (BENCHMARKS.md,
 * *-z packs in 64 KiB output chunks*; bench/codecs.mjs).
 */
const PACK_OUTPUT_CHUNK = 64 * 1024;

function brotliOptions(level: number, size: number): zlib.BrotliOptions {
  return {
    chunkSize: PACK_OUTPUT_CHUNK,
    params: {
      [zlib.constants.BROTLI_PARAM_QUALITY]: level,
      [zlib.constants.BROTLI_PARAM_SIZE_HINT]: size,
      // A window no larger than the unit: less encoder state to set up per unit, same output.
      [zlib.constants.BROTLI_PARAM_LGWIN]: Math.max(16, Math.min(24, Math.ceil(Math.log2(Math.max(2, size))))),
    },
  };
}

function compress(buf: Buffer, level: number): Promise<Buffer> {
  return new Promise((resolve, reject) => zlib.brotliCompress(buf, brotliOptions(level, buf.length), (e, out) => (e ? reject(e) : resolve(out))));
}

/** Order-0 entropy (bits per byte) of SAMPLES stretches spread over buf. */
export function sampleEntropy(buf: Buffer): number {
  const counts = new Uint32Array(256);
  const step = Math.max(SAMPLE_BYTES, Math.floor(buf.length / SAMPLES));
  let n = 0;
  for (let at = 0; at < buf.length; at += step) {
    const end = Math.min(buf.length, at + SAMPLE_BYTES);
    for (let i = at; i < end; i++) counts[buf[i]!]++;
    n += end - at;
  }
  let bits = 0;
  for (let b = 0; b < 256; b++) {
    const c = counts[b]!;
    if (c > 0) bits -= (c / n) * Math.log2(c / n);
  }
  return bits;
}

/** The unit as it travels: compressed when it looks compressible and then shrank by MIN_SAVING, else raw. */
async function packUnitBytes(raw: Buffer, level: number): Promise<Buffer> {
  if (sampleEntropy(raw) > RAW_ENTROPY_BITS) return raw;
  const out = await compress(raw, level);
  return out.length <= raw.length * (1 - MIN_SAVING) ? out : raw;
}

/**
 * Pack `buffers` (one run's data) for the wire. Returns undefined when no unit shrank:
 * the data then travels as it is, with no packing declared.
 */
export async function pack(buffers: readonly Buffer[], req: PackRequest): Promise<{ packed: Packed; payload: Buffer[] } | undefined> {
  const data = buffers.length === 1 ? buffers[0]! : Buffer.concat(buffers as Buffer[]);
  if (data.length === 0) return undefined;
  const units: Buffer[] = [];
  for (let at = 0; at < data.length; at += req.unit) units.push(data.subarray(at, Math.min(data.length, at + req.unit)));
  const payload = await Promise.all(units.map((u) => packUnitBytes(u, req.level)));
  if (payload.every((p, i) => p === units[i])) return undefined;
  return { packed: { codec: req.codec, unit: req.unit, length: data.length, sizes: payload.map((p) => p.length) }, payload };
}

/** The one error for a packed payload that does not unpack to what it declared. */
export function corruptPayload(from: string, why: string): PdcError {
  return new PdcError('COMPRESSED_DATA_CORRUPT', `compressed block data from ${from} is corrupt: ${why}`, {
    hint: 'rerun (nothing wrong was written); if it persists, run without -z and report a bug',
  });
}

/**
 * Inflate one unit into `out` (exactly its raw length), never producing more: the
 * stream is stopped as soon as it would overflow. (maxOutputLength is not in every
 * Node 12, so the cap is counted here.) The unit comes out in one chunk: with 64 KiB
 * chunks, as packing uses, the agents of a -z push took more CPU, not less.
 */
function inflateInto(src: Buffer, out: Buffer, from: string, unit: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = zlib.createBrotliDecompress({ chunkSize: Math.max(64 * 1024, Math.min(out.length, 1024 * 1024)) });
    let at = 0;
    let done = false;
    const fail = (why: string) => {
      if (done) return;
      done = true;
      stream.destroy();
      reject(corruptPayload(from, `unit ${unit} ${why}`));
    };
    stream.on('data', (chunk: Buffer) => {
      if (at + chunk.length > out.length) return fail(`inflates past its ${out.length} bytes`);
      chunk.copy(out, at);
      at += chunk.length;
    });
    stream.on('error', (e: Error) => fail(`does not inflate (${e.message})`));
    stream.on('end', () => {
      if (done) return;
      if (at !== out.length) return fail(`inflates to ${at} bytes, not ${out.length}`);
      done = true;
      resolve();
    });
    stream.end(src);
  });
}

/**
 * The raw bytes of a packed payload: `p` was checked (packedProblem) before this is
 * called, so the output's size is declared and capped; the payload must hold exactly
 * the declared sizes. `from` names the peer in errors. `into`, when given, is where
 * they go (a pooled buffer of at least p.length bytes: a fresh multi-MiB allocation
 * costs page faults at about network speed on these VMs).
 */
export async function unpack(p: Packed, payload: readonly Buffer[], from: string, into?: Buffer): Promise<Buffer> {
  const problem = packedProblem(p);
  if (problem) throw corruptPayload(from, problem);
  const wire = payload.length === 1 ? payload[0]! : Buffer.concat(payload as Buffer[]);
  const declared = p.sizes.reduce((a, b) => a + b, 0);
  if (wire.length !== declared) throw corruptPayload(from, `${wire.length} bytes arrived, ${declared} declared`);
  const out = into && into.length >= p.length ? into.subarray(0, p.length) : Buffer.allocUnsafe(p.length);
  const jobs: Promise<void>[] = [];
  for (let i = 0, at = 0; i < p.sizes.length; at += p.sizes[i]!, i++) {
    const src = wire.subarray(at, at + p.sizes[i]!);
    const dst = out.subarray(i * p.unit, Math.min(p.length, (i + 1) * p.unit));
    if (src.length === dst.length) src.copy(dst);
    else jobs.push(inflateInto(src, dst, from, i));
  }
  await Promise.all(jobs);
  return out;
}
