// Types of corepool's native kernels (lib/kernels.js). Every function returns a promise and never
// throws synchronously: bad arguments reject with `ERR_INVALID_ARG`.
//
// Input rule: byte and array inputs are copied when the call is made, so the caller may reuse,
// mutate or transfer them as soon as the call returns.

/// <reference types="node" />

import type { TaskOptions } from './pool'

/** Bytes: a `Buffer`, any `Uint8Array` or `ArrayBufferView` (its bytes), or a string (UTF-8). */
export type BytesLike = Buffer | Uint8Array | ArrayBufferView | ArrayBuffer | string

// `sqrtSum` is declared with the pool API in ./pool.d.ts.

// ----- hashing -----

/** Supported hash algorithms. xxHash digests use seed 0. */
export type HashAlgorithm = 'sha256' | 'sha512' | 'sha1' | 'md5' | 'blake3' | 'xxh3-64' | 'xxh3-128' | 'xxh64'
/** Digest encodings; `'buffer'` gives a `Buffer`. */
export type DigestEncoding = 'hex' | 'base64' | 'base64url' | 'buffer'

/** Options of the hash functions returning strings. */
export interface HashOptions extends TaskOptions {
  /** Default `'hex'` (like `crypto.hash`). Digests are the canonical big-endian bytes. */
  encoding?: 'hex' | 'base64' | 'base64url'
}

/** Options of the hash functions returning Buffers. */
export interface BufferHashOptions extends TaskOptions {
  encoding: 'buffer'
}

/** Digest of `data` (hex by default), computed on the pool; cancellable between 1 MiB chunks. */
export function hash(algorithm: HashAlgorithm, data: BytesLike, options: BufferHashOptions): Promise<Buffer>
export function hash(algorithm: HashAlgorithm, data: BytesLike, options?: HashOptions): Promise<string>

/**
 * Digests of many items in one pool task, hashed while the items are still being copied in, in
 * groups of up to 64 items (256 KiB) claimed by the task's pool thread and by the pool's idle
 * threads (never more than the pool's `threads`; a queued task goes before helping). Results in
 * input order.
 */
export function hashMany(algorithm: HashAlgorithm, items: BytesLike[], options: BufferHashOptions): Promise<Buffer[]>
export function hashMany(algorithm: HashAlgorithm, items: BytesLike[], options?: HashOptions): Promise<string[]>

/** Digest of a file, read natively in 1 MiB chunks (never loaded into JavaScript). A missing or unreadable file rejects with `ERR_INVALID_ARG`. */
export function hashFile(algorithm: HashAlgorithm, path: string | URL, options: BufferHashOptions): Promise<Buffer>
export function hashFile(algorithm: HashAlgorithm, path: string | URL, options?: HashOptions): Promise<string>

/** A streaming hasher made by `createHasher`. */
export class Hasher {
  /** Same as `createHasher(algorithm, options)`. Throws `ERR_INVALID_ARG` for an unknown algorithm. */
  constructor(algorithm: HashAlgorithm, options?: TaskOptions)
  /** The algorithm's name. */
  readonly algorithm: HashAlgorithm
  /**
   * Copies `data` now and hashes it on the pool; chunks are hashed in call order. Resolves when
   * this chunk is hashed (await it for backpressure). After a failed or cancelled update every
   * later call rejects with that error.
   */
  update(data: BytesLike): Promise<void>
  /** Resolves with the digest once every update has settled (hex by default); once only (then ERR_INVALID_STATE, as is `update()` after it). */
  digest(encoding: 'buffer'): Promise<Buffer>
  digest(encoding?: 'hex' | 'base64' | 'base64url'): Promise<string>
}

/** A streaming hasher; `options` apply to each update. Throws `ERR_INVALID_ARG` for an unknown algorithm. */
export function createHasher(algorithm: HashAlgorithm, options?: TaskOptions): Hasher

// ----- compression -----

/** node:zlib's formats: `deflate` is zlib-wrapped, `deflate-raw` has no header. */
export type CompressionFormat = 'gzip' | 'deflate' | 'deflate-raw' | 'brotli' | 'zstd'

export interface CompressOptions extends TaskOptions {
  /** gzip/deflate/deflate-raw: -1..9 (default 6); brotli: 0..11 (default 11); zstd: -131072..22 (default 3). */
  level?: number
}

export interface DecompressOptions extends TaskOptions {
  /** Largest output accepted, in bytes (default `DEFAULT_MAX_OUTPUT_LENGTH`, 256 MiB); beyond it the promise rejects with `ERR_OUTPUT_TOO_LARGE` and no more memory is used. It also bounds a zstd frame's window (at least 8 MiB, at most 128 MiB). */
  maxOutputLength?: number
}

/** Compresses `data`; the output is readable by node:zlib (and the reverse). Cancellable between 256 KiB chunks. */
export function compress(format: CompressionFormat, data: BytesLike, options?: CompressOptions): Promise<Buffer>

/** Decompresses `data`; malformed or truncated input, or bytes after the end of the stream, reject with `ERR_CORRUPT_INPUT` (concatenated gzip members and zstd frames are one stream). Cancellable between 64 KiB of output. */
export function decompress(format: CompressionFormat, data: BytesLike, options?: DecompressOptions): Promise<Buffer>

/** Default `maxOutputLength` of `decompress`: 268435456 (256 MiB). */
export const DEFAULT_MAX_OUTPUT_LENGTH: number

// ----- passwords -----

export interface PasswordHashOptions extends TaskOptions {
  /** KiB of memory, 8 × parallelism .. 4194304 (default 19456, OWASP). */
  memoryCost?: number
  /** Iterations, 1..1024 (default 2, OWASP). */
  timeCost?: number
  /** Lanes, 1..64 (default 1). */
  parallelism?: number
  /** Hash length in bytes, 4..1024 (default 32). */
  outputLength?: number
}

/** argon2id hash of `password` with a random 16-byte salt, as a PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`). */
export function passwordHash(password: BytesLike, options?: PasswordHashOptions): Promise<string>

/** Whether `password` matches the PHC string `hash` (argon2id, argon2i or argon2d, e.g. from `@node-rs/argon2`). A malformed hash, or one above the cost limits, rejects with `ERR_INVALID_ARG`. */
export function passwordVerify(hash: string, password: BytesLike, options?: TaskOptions): Promise<boolean>

// ----- numeric -----

/** Number of primes `p <= limit` (π(limit)) by a segmented sieve; `limit` is a non-negative safe integer. Cancellable. */
export function countPrimes(limit: number, options?: TaskOptions): Promise<number>

/** A sorted copy of `values` (a new `Float64Array`; the input is not modified), in `Float64Array.prototype.sort` order: ascending, -0 before +0, NaN last. */
export function sortFloat64(values: Float64Array, options?: TaskOptions): Promise<Float64Array>

/** One-pass summary of a `Float64Array`. */
export interface Float64Stats {
  count: number
  /** Compensated (Neumaier) sum; may differ from a naive loop in the last bits (it is more accurate). */
  sum: number
  /** `sum / count`; NaN when empty. */
  mean: number
  /** Math.min semantics: NaN if any element is NaN; Infinity when empty. */
  min: number
  /** Math.max semantics: NaN if any element is NaN; -Infinity when empty. */
  max: number
}

/** `{ count, sum, mean, min, max }` of `values`. */
export function statsFloat64(values: Float64Array, options?: TaskOptions): Promise<Float64Stats>
/** `statsFloat64(values).sum`. */
export function sumFloat64(values: Float64Array, options?: TaskOptions): Promise<number>
/** `statsFloat64(values).mean`. */
export function meanFloat64(values: Float64Array, options?: TaskOptions): Promise<number>
/** `statsFloat64(values).min`. */
export function minFloat64(values: Float64Array, options?: TaskOptions): Promise<number>
/** `statsFloat64(values).max`. */
export function maxFloat64(values: Float64Array, options?: TaskOptions): Promise<number>

// ----- images -----

export interface ResizeOptions extends TaskOptions {
  /** Output width, 1..65535. Give only one of width/height to keep the aspect ratio. */
  width?: number
  /** Output height, 1..65535. */
  height?: number
  /** How to fit both dimensions (sharp's meanings); default `'cover'` (centre crop). `'contain'` pads with opaque black. */
  fit?: 'cover' | 'contain' | 'fill' | 'inside' | 'outside'
  /** Output format; default: the input's. WebP output is lossless. */
  format?: 'jpeg' | 'jpg' | 'png' | 'webp'
  /** JPEG quality 1..100 (default 80). */
  quality?: number
  /** Largest input or output pixel count (default `DEFAULT_MAX_PIXELS`); beyond it the promise rejects with `ERR_OUTPUT_TOO_LARGE` before decoding. It also bounds memory: each pixel buffer (decoded image, intermediate, output) holds at most 4 bytes × `maxPixels`, so e.g. a 16-bit image may have at most half as many pixels. */
  maxPixels?: number
}

export interface ResizedImage {
  data: Buffer
  width: number
  height: number
  format: 'jpeg' | 'png' | 'webp'
}

/** Decodes a JPEG/PNG/WebP image (EXIF orientation applied), resizes it with Lanczos3 and encodes it. Bad or truncated images reject with `ERR_CORRUPT_INPUT`. */
export function resize(
  image: Buffer | Uint8Array | ArrayBufferView | ArrayBuffer,
  options?: ResizeOptions,
): Promise<ResizedImage>

/** Default `maxPixels` of `resize`: 268402689 (0x3FFF², sharp's default `limitInputPixels`). */
export const DEFAULT_MAX_PIXELS: number
