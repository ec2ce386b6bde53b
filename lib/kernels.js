// @ts-check
'use strict'
// Public wrappers of the native kernels. They validate arguments (every failure is a rejected
// promise, never a synchronous throw), normalise bytes and call the native task.
//
// Input rule: every input is copied when the task is submitted (on the calling thread), so the
// caller may reuse, mutate or transfer its buffers as soon as the call returns; a running task
// never reads memory JavaScript can touch.
const native = require('./native')
const { submitNative, submitNativeArgs } = require('./pool')
const { isDetached } = require('./options')
const { invalidArg, invalidState, describe, asArgError } = require('./errors')
const check = require('./validate')

/**
 * Sum of Math.sqrt(i) for 0 <= i < n, computed on the pool.
 * @param {number} n a non-negative safe integer
 */
function sqrtSum(n, options) {
  if (typeof n !== 'number') {
    return Promise.reject(invalidArg(`n must be a non-negative safe integer, got ${describe(n)}`))
  }
  return submitNative(native.sqrtSum, n, options)
}

// ---------------------------------------------------------------------------------------------
// Shared argument helpers

/** A string (UTF-8) or a Uint8Array over the bytes of any ArrayBufferView; throws otherwise. */
function bytes(value, name) {
  if (typeof value === 'string') return value
  // A view whose buffer was transferred away reads as empty: refuse it rather than hash or
  // compress nothing.
  if (ArrayBuffer.isView(value) && value.byteLength === 0 && isDetached(value.buffer)) {
    throw invalidArg(`${name} is a view of a detached ArrayBuffer`)
  }
  if (value instanceof Uint8Array) return value
  if (ArrayBuffer.isView(value)) return new Uint8Array(value.buffer, value.byteOffset, value.byteLength)
  if (value instanceof ArrayBuffer || value instanceof SharedArrayBuffer) return new Uint8Array(value)
  throw invalidArg(`${name} must be a Buffer, Uint8Array or string, got ${describe(value)}`)
}

/** Runs `body` and turns a synchronous throw into a rejected promise with a documented code. */
function rejecting(body) {
  try {
    return body()
  } catch (err) {
    return Promise.reject(asArgError(err))
  }
}

// ---------------------------------------------------------------------------------------------
// Hashing

// The names are the native string enums' (src/kernels/*.rs), declared once there.
const HASH_ALGORITHMS = Object.values(native.HashAlgorithm)
const DIGEST_LENGTHS = {
  sha256: 32,
  sha512: 64,
  sha1: 20,
  md5: 16,
  blake3: 32,
  'xxh3-64': 8,
  'xxh3-128': 16,
  xxh64: 8,
}
const ENCODINGS = ['hex', 'base64', 'base64url', 'buffer']

function encodingOption(options) {
  return check.oneOf(check.object(options).encoding, 'options.encoding', ENCODINGS, { default: 'hex' })
}

function encode(buffer, encoding) {
  return encoding === 'buffer' ? buffer : buffer.toString(encoding)
}

/**
 * Digest of `data` with `algorithm`; a hex string unless `options.encoding` says otherwise.
 */
function hash(algorithm, data, options) {
  return rejecting(() => {
    check.oneOf(algorithm, 'algorithm', HASH_ALGORITHMS)
    const input = bytes(data, 'data')
    const encoding = encodingOption(options)
    return submitNativeArgs(native.hash, [algorithm, input], options).then((digest) => encode(digest, encoding))
  })
}

/**
 * Digests of every item of `items` (an array of Buffer | Uint8Array | string), hashed by one
 * pool task, whose thread shares groups of items with the pool's idle threads. Resolves to an
 * array in the same order.
 */
function hashMany(algorithm, items, options) {
  return rejecting(() => {
    check.oneOf(algorithm, 'algorithm', HASH_ALGORITHMS)
    if (!Array.isArray(items)) throw invalidArg(`items must be an array, got ${describe(items)}`)
    const inputs = new Array(items.length)
    for (let i = 0; i < items.length; i++) {
      const v = bytes(items[i], `items[${i}]`)
      inputs[i] = typeof v === 'string' ? Buffer.from(v, 'utf8') : v
    }
    const encoding = encodingOption(options)
    const size = DIGEST_LENGTHS[algorithm]
    return submitNativeArgs(native.hashMany, [algorithm, inputs], options).then((all) => {
      const out = new Array(inputs.length)
      if (encoding === 'buffer') {
        for (let i = 0; i < out.length; i++) out[i] = all.subarray(i * size, (i + 1) * size)
      } else if (encoding === 'hex') {
        // One conversion, then cheap substrings.
        const hex = all.toString('hex')
        for (let i = 0; i < out.length; i++) out[i] = hex.slice(i * 2 * size, (i + 1) * 2 * size)
      } else {
        for (let i = 0; i < out.length; i++) out[i] = all.toString(encoding, i * size, (i + 1) * size)
      }
      return out
    })
  })
}

/** Digest of the file at `path`, read natively in 1 MiB chunks (never loaded into JavaScript). */
function hashFile(algorithm, path, options) {
  return rejecting(() => {
    check.oneOf(algorithm, 'algorithm', HASH_ALGORITHMS)
    if (path instanceof URL) {
      if (path.protocol !== 'file:') throw invalidArg(`path must be a file: URL, got ${path.href}`)
      path = require('node:url').fileURLToPath(path)
    }
    if (typeof path !== 'string' || path === '' || path.includes('\0')) {
      throw invalidArg(`path must be a non-empty string or file URL, got ${describe(path)}`)
    }
    const encoding = encodingOption(options)
    return submitNativeArgs(native.hashFile, [algorithm, path], options).then((digest) => encode(digest, encoding))
  })
}

/**
 * A streaming hasher. `update(data)` copies `data` at once and hashes it on the pool; chunks are
 * hashed in call order whatever the pool's scheduling. It returns a promise that settles when the
 * chunk is hashed (await it for backpressure). `digest(encoding)` resolves once every update has
 * settled. The options of `createHasher` (`signal`, `timeout`, `priority`, `pool`) apply to each
 * update; a failed or cancelled update makes the hasher unusable: later updates and `digest()`
 * reject with the first error.
 */
class Hasher {
  #native
  #options
  #inflight = new Set()
  #error = null
  #finished = false

  constructor(algorithm, options) {
    check.oneOf(algorithm, 'algorithm', HASH_ALGORITHMS)
    check.object(options)
    /** The algorithm's name. */
    this.algorithm = algorithm
    this.#native = new native.NativeHasher(algorithm)
    this.#options = options
  }

  update(data) {
    return rejecting(() => {
      if (this.#finished) throw invalidState('update() after digest()')
      if (this.#error !== null) return Promise.reject(this.#error)
      const input = bytes(data, 'data')
      const task = submitNativeArgs(native.hasherUpdate, [this.#native, input], this.#options)
      const settled = task.then(
        () => this.#inflight.delete(settled),
        (err) => {
          this.#inflight.delete(settled)
          this.#error ??= err
        },
      )
      this.#inflight.add(settled)
      return task
    })
  }

  digest(encoding) {
    return rejecting(() => {
      const enc = check.oneOf(encoding, 'encoding', ENCODINGS, { default: 'hex' })
      if (this.#finished) throw invalidState('digest() was already called')
      this.#finished = true
      return Promise.all(this.#inflight).then(() => {
        if (this.#error !== null) throw this.#error
        return encode(this.#native.finish(), enc)
      })
    })
  }
}

/** Creates a streaming {@link Hasher} for `algorithm`. Throws ERR_INVALID_ARG for bad input. */
function createHasher(algorithm, options) {
  return new Hasher(algorithm, options)
}

// ---------------------------------------------------------------------------------------------
// Compression

const FORMATS = Object.values(native.CompressFormat)
/** Default `maxOutputLength` of `decompress`: 256 MiB. */
const DEFAULT_MAX_OUTPUT_LENGTH = 256 * 1024 * 1024
const MAX_BUFFER_LENGTH = require('node:buffer').constants.MAX_LENGTH

/**
 * Compresses `data` in node:zlib's `format` (`gzip`, `deflate` = zlib, `deflate-raw`, `brotli`,
 * `zstd`). `options.level`: gzip/deflate/deflate-raw -1..9 (default 6), brotli 0..11 (default
 * 11), zstd -131072..22 (default 3) — the defaults are node:zlib's.
 */
function compress(format, data, options) {
  return rejecting(() => {
    check.oneOf(format, 'format', FORMATS)
    const input = bytes(data, 'data')
    // The range depends on the format; the native side checks it.
    const level = check.int(check.object(options).level, 'options.level', { min: -(2 ** 31), max: 2 ** 31 - 1 })
    return submitNativeArgs(native.compress, [format, input, { level }], options)
  })
}

/**
 * Decompresses `data` in `format`. Output larger than `options.maxOutputLength` (default 256
 * MiB) rejects with ERR_OUTPUT_TOO_LARGE without ever holding more than that; malformed or
 * truncated input rejects with ERR_CORRUPT_INPUT.
 */
function decompress(format, data, options) {
  return rejecting(() => {
    check.oneOf(format, 'format', FORMATS)
    const input = bytes(data, 'data')
    const maxOutputLength = check.int(check.object(options).maxOutputLength, 'options.maxOutputLength', {
      min: 1,
      max: MAX_BUFFER_LENGTH,
      default: DEFAULT_MAX_OUTPUT_LENGTH,
    })
    return submitNativeArgs(native.decompress, [format, input, { maxOutputLength }], options)
  })
}

// ---------------------------------------------------------------------------------------------
// Password hashing

/**
 * Hashes `password` with argon2id and a random 16-byte salt; resolves to the PHC string
 * (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`). Options (OWASP defaults): `memoryCost`
 * KiB (19456), `timeCost` (2), `parallelism` (1), `outputLength` bytes (32).
 */
function passwordHash(password, options) {
  return rejecting(() => {
    const input = bytes(password, 'password')
    const o = check.object(options)
    // Integers that fit the native u32 fields; absent: the default. The ranges (and memoryCost
    // >= 8 × parallelism) are declared and checked once, in crates/core/src/kernels/password.rs.
    const u32 = { max: 2 ** 32 - 1 }
    const params = {
      memoryCost: check.int(o.memoryCost, 'options.memoryCost', u32),
      timeCost: check.int(o.timeCost, 'options.timeCost', u32),
      parallelism: check.int(o.parallelism, 'options.parallelism', u32),
      outputLength: check.int(o.outputLength, 'options.outputLength', u32),
    }
    return submitNativeArgs(native.passwordHash, [input, params], options)
  })
}

/**
 * Whether `password` matches `hash`, a PHC string of any argon2 variant (argon2id, argon2i,
 * argon2d; as made by `passwordHash`, `@node-rs/argon2` or the reference implementation).
 * A malformed hash rejects with ERR_INVALID_ARG.
 */
function passwordVerify(hash, password, options) {
  return rejecting(() => {
    if (typeof hash !== 'string') throw invalidArg(`hash must be a PHC string, got ${describe(hash)}`)
    const input = bytes(password, 'password')
    check.object(options)
    return submitNativeArgs(native.passwordVerify, [hash, input], options)
  })
}

// ---------------------------------------------------------------------------------------------
// Numeric

/** The number of primes p <= limit (π(limit)); `limit` is a non-negative safe integer. */
function countPrimes(limit, options) {
  if (typeof limit !== 'number') {
    return Promise.reject(invalidArg(`limit must be a non-negative safe integer, got ${describe(limit)}`))
  }
  return submitNative(native.countPrimes, limit, options)
}

function float64Array(values) {
  if (!(values instanceof Float64Array)) throw invalidArg(`values must be a Float64Array, got ${describe(values)}`)
  return values
}

/**
 * Resolves to a sorted copy of `values` (a new Float64Array; `values` is left unchanged), in the
 * order of `Float64Array.prototype.sort`: ascending, -0 before +0, NaN last.
 */
function sortFloat64(values, options) {
  return rejecting(() => submitNative(native.sortFloat64, float64Array(values), options))
}

/**
 * `{ count, sum, mean, min, max }` of a Float64Array in one pass. `sum` is compensated
 * (Neumaier), so it can differ from a naive loop in the last bits (it is more accurate);
 * `min`/`max` follow Math.min/Math.max (NaN if any element is NaN); an empty array gives
 * `{ count: 0, sum: 0, mean: NaN, min: Infinity, max: -Infinity }`.
 */
function statsFloat64(values, options) {
  return rejecting(() =>
    submitNative(native.statsFloat64, float64Array(values), options).then(([count, sum, mean, min, max]) => ({
      count,
      sum,
      mean,
      min,
      max,
    })),
  )
}

/** Compensated sum of a Float64Array (see `statsFloat64`). */
const sumFloat64 = (values, options) => statsFloat64(values, options).then((s) => s.sum)
/** Mean of a Float64Array (NaN when empty). */
const meanFloat64 = (values, options) => statsFloat64(values, options).then((s) => s.mean)
/** Smallest element (Math.min semantics). */
const minFloat64 = (values, options) => statsFloat64(values, options).then((s) => s.min)
/** Largest element (Math.max semantics). */
const maxFloat64 = (values, options) => statsFloat64(values, options).then((s) => s.max)

// ---------------------------------------------------------------------------------------------
// Images

const FITS = Object.values(native.ImageFit)
const IMAGE_FORMATS = Object.values(native.ImageFormat)
/** Default `maxPixels` of `resize` (declared in src/kernels/image.rs, which applies it). */
const { DEFAULT_MAX_PIXELS } = native

/**
 * Decodes a JPEG, PNG or WebP image, resizes it (Lanczos3) and encodes it; resolves to
 * `{ data: Buffer, width, height, format }`. Options: `width`/`height` (1..65535; give one to
 * keep the aspect ratio), `fit` ('cover' default, 'contain' pads with opaque black, 'fill',
 * 'inside', 'outside' — sharp's meanings), `format` ('jpeg' | 'png' | 'webp', default: the
 * input's), `quality` (JPEG 1..100, default 80; WebP output is lossless), `maxPixels` (default
 * 268402689: larger inputs or outputs reject with ERR_OUTPUT_TOO_LARGE before decoding).
 * EXIF orientation is applied. Bad or truncated images reject with ERR_CORRUPT_INPUT.
 */
function resize(image, options) {
  return rejecting(() => {
    const input = bytes(image, 'image')
    if (typeof input === 'string') throw invalidArg('image must be a Buffer or Uint8Array, got a string')
    const o = check.object(options)
    const request = {
      width: check.int(o.width, 'options.width', { min: 1, max: 65535 }),
      height: check.int(o.height, 'options.height', { min: 1, max: 65535 }),
      fit: check.oneOf(o.fit, 'options.fit', FITS),
      format: check.oneOf(o.format, 'options.format', IMAGE_FORMATS),
      quality: check.int(o.quality, 'options.quality', { min: 1, max: 100 }),
      maxPixels: check.int(o.maxPixels, 'options.maxPixels', { min: 1 }),
    }
    return submitNativeArgs(native.resize, [input, request], options)
  })
}

module.exports = {
  sqrtSum,
  hash,
  hashMany,
  hashFile,
  createHasher,
  Hasher,
  compress,
  decompress,
  DEFAULT_MAX_OUTPUT_LENGTH,
  passwordHash,
  passwordVerify,
  countPrimes,
  sortFloat64,
  statsFloat64,
  sumFloat64,
  meanFloat64,
  minFloat64,
  maxFloat64,
  resize,
  DEFAULT_MAX_PIXELS,
}
