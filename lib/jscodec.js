'use strict'
// Encoding of JS task results and errors between a worker and the submitting thread.
// Errors keep their class (for built-ins), name, message, stack, code and own enumerable
// properties; values that cannot be cloned are replaced by their string form.
const v8 = require('node:v8')
const { encodeSmall, decodeSmall, isSmall } = require('./smallcodec')

const BUILTIN_ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError }

function cloneable(value) {
  try {
    v8.serialize(value)
    return value
  } catch {
    return String(value)
  }
}

// A result is `[ok, value]`, plus the number of progress values the task posted when it posted
// any (the submitting thread delivers them all before the result).
const envelope = (ok, value, sent) => (sent > 0 ? [ok, value, sent] : [ok, value])

/** The result's bytes; a small value's are a view of a reused buffer (see `serializeTask`). */
function encodeResult(value, sent = 0) {
  // A small value returned by a task that posted no progress: `[true, value]` is implied.
  if (sent === 0) {
    const small = encodeSmall(value)
    if (small !== null) return small
  }
  try {
    return v8.serialize(envelope(true, value, sent))
  } catch (err) {
    return encodeThrown(
      Object.assign(new TypeError(`the task's result cannot be cloned: ${err.message}`), {
        code: 'ERR_INVALID_ARG',
      }),
      sent,
    )
  }
}

function encodeThrown(err, sent = 0) {
  if (!(err instanceof Error)) return v8.serialize(envelope(false, { error: false, value: cloneable(err) }, sent))
  const props = {}
  for (const key of Object.keys(err)) props[key] = cloneable(err[key])
  const info = {
    error: true,
    name: String(err.name),
    message: String(err.message),
    stack: typeof err.stack === 'string' ? err.stack : undefined,
    code: err.code === undefined ? undefined : cloneable(err.code),
    cause: err.cause === undefined ? undefined : cloneable(err.cause),
    props,
  }
  return v8.serialize(envelope(false, info, sent))
}

function reviveError(info) {
  if (!info.error) return info.value
  const Ctor = Object.hasOwn(BUILTIN_ERRORS, info.name) ? BUILTIN_ERRORS[info.name] : Error
  const err = new Ctor(info.message, info.cause === undefined ? undefined : { cause: info.cause })
  if (err.name !== info.name) {
    Object.defineProperty(err, 'name', { value: info.name, writable: true, configurable: true })
  }
  if (info.stack !== undefined) err.stack = info.stack
  if (info.code !== undefined) err.code = info.code
  Object.assign(err, info.props)
  return err
}

/** Decodes a worker's result buffer: returns the value or throws the task's error. */
function decodeResult(buffer) {
  return settleDecoded(decodeEnvelope(buffer))
}

// A result returned through `move()`: the worker hands the moved ArrayBuffer's bytes to the pool
// once (one copy, into memory the pool owns) and the caller's views are made over that memory
// in place. Layout: MOVED_HEADER bytes (byte 0: 0, which no V8 serialization starts with; byte
// 1: 1 when the result is the ArrayBuffer itself; bytes 8..16: its length), its bytes, then the
// serialized envelope.
const MOVED_HEADER = 16

/** The value moved by `move(value)`: an ArrayBuffer or a view over one (not shared memory). */
function movedBuffer(value, moved) {
  if (moved === undefined || value === null || typeof value !== 'object' || !moved.has(value)) return null
  if (value instanceof ArrayBuffer) return value
  if (ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer) return value.buffer
  return null
}

/** Encodes a result whose value was passed to `move()`: `{ payload, moved, whole }`. */
function encodeMoved(value, buffer, sent) {
  try {
    return {
      payload: serializeTask(envelope(true, value, sent), [buffer]),
      moved: new Uint8Array(buffer),
      whole: value === buffer,
    }
  } catch {
    return encodeResult(value, sent)
  }
}

/** `[ok, value, sent?]` from a worker's result buffer. */
function decodeEnvelope(buffer) {
  if (isSmall(buffer)) return [true, decodeSmall(buffer)]
  if (buffer[0] !== 0) return v8.deserialize(buffer)
  const length = Number(buffer.readBigUInt64LE(8))
  const start = buffer.byteOffset + MOVED_HEADER
  const payload = buffer.subarray(MOVED_HEADER + length)
  if (buffer[1] === 1 || start % 8 !== 0) {
    // The ArrayBuffer itself (it cannot be a window into the pool's memory): a copy.
    const copy = buffer.buffer.slice(start, start + length)
    return new TransferDeserializer(payload, [copy]).readEnvelope()
  }
  return new TransferDeserializer(payload, [buffer.buffer], start).readEnvelope()
}

/** The value of a decoded result (`[ok, value, sent?]`), or throws the task's error. */
function settleDecoded([ok, value]) {
  if (ok) return value
  throw reviveError(value)
}

// Typed-array views over a transferred ArrayBuffer travel as (type, buffer id, offset, length)
// and come back as views over the moved buffer, as with postMessage.
const VIEW_TYPES = [
  Int8Array,
  Uint8Array,
  Uint8ClampedArray,
  Int16Array,
  Uint16Array,
  Int32Array,
  Uint32Array,
  Float32Array,
  Float64Array,
  BigInt64Array,
  BigUint64Array,
  DataView,
]
const BUFFER_TYPE = VIEW_TYPES.length

/** Thrown by the serializer at shared memory: such data is handed over by `postMessage`. */
const NEEDS_POST_MESSAGE = Symbol('corepool.needsPostMessage')

// Task data is serialized with V8's serializer (copied bytes, no postMessage); shared memory
// cannot travel that way and makes the caller hand the data over by postMessage instead.
class TaskSerializer extends v8.DefaultSerializer {
  #ids
  constructor(ids) {
    super()
    this.#ids = ids
  }

  _getSharedArrayBufferId() {
    throw NEEDS_POST_MESSAGE
  }

  _writeHostObject(view) {
    if (view.buffer instanceof SharedArrayBuffer) throw NEEDS_POST_MESSAGE
    const id = this.#ids?.get(view.buffer)
    const type = Buffer.isBuffer(view) ? BUFFER_TYPE : VIEW_TYPES.indexOf(view.constructor)
    if (id === undefined || type < 0) {
      this.writeUint32(0)
      return super._writeHostObject(view)
    }
    this.writeUint32(1)
    this.writeUint32(type)
    this.writeUint32(id)
    this.writeDouble(view.byteOffset)
    this.writeDouble(view instanceof DataView ? view.byteLength : view.length)
  }
}

class TransferDeserializer extends v8.DefaultDeserializer {
  #buffers
  #base
  /** Views over buffer `id` start `base` bytes further into it (a moved result, see below). */
  constructor(payload, buffers, base = 0) {
    super(payload)
    this.#buffers = buffers
    this.#base = base
    buffers.forEach((buffer, id) => this.transferArrayBuffer(id, buffer))
  }

  readEnvelope() {
    this.readHeader()
    return this.readValue()
  }

  _readHostObject() {
    if (this.readUint32() === 0) return super._readHostObject()
    const type = this.readUint32()
    const buffer = this.#buffers[this.readUint32()]
    const offset = this.readDouble() + this.#base
    const length = this.readDouble()
    return type === BUFFER_TYPE ? Buffer.from(buffer, offset, length) : new VIEW_TYPES[type](buffer, offset, length)
  }
}

/**
 * Serializes task data, whose `buffers` (distinct ArrayBuffers, or null) travel out of band.
 * Throws `NEEDS_POST_MESSAGE` for data holding shared memory. Small data comes back as a view of
 * a reused buffer (see lib/smallcodec.js): hand it to native code at once.
 */
function serializeTask(data, buffers) {
  if (buffers === null) {
    const small = encodeSmall(data)
    if (small !== null) return small
  }
  const ser = new TaskSerializer(buffers && new Map(buffers.map((b, id) => [b, id])))
  buffers?.forEach((buffer, id) => ser.transferArrayBuffer(id, buffer))
  ser.writeHeader()
  ser.writeValue(data)
  return ser.releaseBuffer()
}

/** Decodes task data; `buffers` are the moved contents of its transferred ArrayBuffers, or null. */
function decodeTask(payload, buffers) {
  if (isSmall(payload)) return decodeSmall(payload)
  const des = new TransferDeserializer(payload, buffers ?? [])
  des.readHeader()
  return des.readValue()
}

module.exports = {
  encodeResult,
  encodeThrown,
  decodeResult,
  decodeEnvelope,
  settleDecoded,
  movedBuffer,
  encodeMoved,
  serializeTask,
  decodeTask,
  NEEDS_POST_MESSAGE,
}
