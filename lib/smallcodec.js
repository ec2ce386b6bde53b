'use strict'
// A compact encoding for the small values most tasks take and return: undefined, null,
// booleans, numbers, well-formed strings, and plain objects and dense arrays of those. V8's
// serializer costs a native object, a malloc'd buffer and a weak handle per call, which is most
// of a trivial task's cost; this costs none. Anything else (other types, shared or repeated
// objects, holes, large values) is not encoded here, and the caller falls back to V8's
// serializer, which gives the same structured clone.
//
// Layout: SMALL_TAG, then one value: a type byte and its data (int32 / float64 little-endian;
// strings as a uint32 UTF-8 length and the bytes; arrays and objects as a uint32 count and
// their elements, objects' as key-value pairs). No V8 serialization (0xFF) or moved result (0)
// starts with SMALL_TAG.

const SMALL_TAG = 1

const UNDEFINED = 0
const NULL = 1
const FALSE = 2
const TRUE = 3
const INT = 4
const DOUBLE = 5
const STRING = 6
const ARRAY = 7
const OBJECT = 8

/** Past these the encoder gives up (V8's serializer is as fast for large values). */
const MAX_BYTES = 64 * 1024
const MAX_OBJECTS = 64
const MAX_ARRAY = 256
const MAX_DEPTH = 16

/** Signals "not encodable here"; never escapes this module. */
const GIVE_UP = Symbol('corepool.smallcodec.giveUp')

let scratch = Buffer.allocUnsafeSlow(4096)
let pos = 0
const seen = [] // objects and arrays met in the current value (repeated ones give up)

function reserve(n) {
  if (pos + n <= scratch.length) return
  if (pos + n > MAX_BYTES) throw GIVE_UP
  const bigger = Buffer.allocUnsafeSlow(Math.min(MAX_BYTES, Math.max(scratch.length * 2, pos + n)))
  scratch.copy(bigger, 0, 0, pos)
  scratch = bigger
}

function writeU32(n) {
  scratch[pos++] = n & 0xff
  scratch[pos++] = (n >>> 8) & 0xff
  scratch[pos++] = (n >>> 16) & 0xff
  scratch[pos++] = n >>> 24
}

function writeString(s) {
  const n = s.length
  if (n > MAX_BYTES) throw GIVE_UP
  reserve(5 + n * 3)
  scratch[pos++] = STRING
  const at = pos
  pos += 4
  let ascii = n <= 32
  if (ascii) {
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) {
        ascii = false
        break
      }
      scratch[pos + i] = c
    }
  }
  let bytes = n
  if (!ascii) {
    // Lone surrogates would not survive UTF-8; V8's serializer keeps them.
    if (!s.isWellFormed()) throw GIVE_UP
    bytes = scratch.write(s, pos, 'utf8')
  }
  pos += bytes
  scratch[at] = bytes & 0xff
  scratch[at + 1] = (bytes >>> 8) & 0xff
  scratch[at + 2] = (bytes >>> 16) & 0xff
  scratch[at + 3] = bytes >>> 24
}

function writeValue(v, depth) {
  switch (typeof v) {
    case 'undefined':
      reserve(1)
      scratch[pos++] = UNDEFINED
      return
    case 'boolean':
      reserve(1)
      scratch[pos++] = v ? TRUE : FALSE
      return
    case 'number':
      reserve(9)
      if ((v | 0) === v && !Object.is(v, -0)) {
        scratch[pos++] = INT
        writeU32(v)
      } else {
        scratch[pos++] = DOUBLE
        scratch.writeDoubleLE(v, pos)
        pos += 8
      }
      return
    case 'string':
      writeString(v)
      return
    case 'object':
      break
    default:
      throw GIVE_UP
  }
  if (v === null) {
    reserve(1)
    scratch[pos++] = NULL
    return
  }
  if (depth >= MAX_DEPTH || seen.length >= MAX_OBJECTS || seen.includes(v)) throw GIVE_UP
  seen.push(v)
  const proto = Object.getPrototypeOf(v)
  if (proto === Array.prototype) {
    const n = v.length
    // Holes and extra properties survive a structured clone: leave those arrays to V8.
    if (n > MAX_ARRAY || Object.keys(v).length !== n) throw GIVE_UP
    reserve(5)
    scratch[pos++] = ARRAY
    writeU32(n)
    for (let i = 0; i < n; i++) writeValue(v[i], depth + 1)
    return
  }
  if (proto !== Object.prototype) throw GIVE_UP
  const keys = Object.keys(v)
  reserve(5)
  scratch[pos++] = OBJECT
  writeU32(keys.length)
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i]
    // Assigning it back would set the prototype instead of an own property.
    if (key === '__proto__') throw GIVE_UP
    writeString(key)
    writeValue(v[key], depth + 1)
  }
}

/**
 * `value` encoded after SMALL_TAG, or null when it is not a small value. The bytes are a view of a buffer reused by the next call: hand them to native
 * code (which copies them) at once.
 */
function encodeSmall(value) {
  pos = 0
  seen.length = 0
  try {
    reserve(1)
    scratch[pos++] = SMALL_TAG
    writeValue(value, 0)
  } catch (err) {
    if (err === GIVE_UP) return null
    throw err
  } finally {
    seen.length = 0
  }
  return scratch.subarray(0, pos)
}

// Decoding state: the buffer being read and the read position.
let src = null
let at = 0

function readU32() {
  const n = src[at] | (src[at + 1] << 8) | (src[at + 2] << 16) | (src[at + 3] << 24)
  at += 4
  return n
}

function readString() {
  const n = readU32() >>> 0
  const start = at
  at += n
  if (n <= 16) {
    let ascii = true
    for (let i = start; i < at; i++) {
      if (src[i] >= 0x80) {
        ascii = false
        break
      }
    }
    if (ascii) return String.fromCharCode.apply(null, src.subarray(start, at))
  }
  return src.toString('utf8', start, at)
}

function readValue() {
  switch (src[at++]) {
    case UNDEFINED:
      return undefined
    case NULL:
      return null
    case FALSE:
      return false
    case TRUE:
      return true
    case INT:
      return readU32()
    case DOUBLE: {
      const v = src.readDoubleLE(at)
      at += 8
      return v
    }
    case STRING:
      return readString()
    case ARRAY: {
      const n = readU32() >>> 0
      const a = new Array(n)
      for (let i = 0; i < n; i++) a[i] = readValue()
      return a
    }
    case OBJECT: {
      const n = readU32() >>> 0
      const o = {}
      for (let i = 0; i < n; i++) {
        at++ // STRING
        const key = readString()
        o[key] = readValue()
      }
      return o
    }
    default:
      throw new TypeError('corrupt task data')
  }
}

/** Whether `bytes` (a Buffer) holds a value encoded by `encodeSmall`. */
const isSmall = (bytes) => bytes[0] === SMALL_TAG

/** The value in `bytes` (a Buffer for which `isSmall` holds). */
function decodeSmall(bytes) {
  src = bytes
  at = 1
  try {
    return readValue()
  } finally {
    src = null
  }
}

module.exports = { encodeSmall, decodeSmall, isSmall }
