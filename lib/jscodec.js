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
function decodeResult(buffer, takePosted) {
  return settleDecoded(decodeEnvelope(buffer, takePosted))
}

// A result returned through `move()`: the worker transfers the moved ArrayBuffer to the
// submitting thread over its private port, as postMessage does (no copy: the worker's buffer is
// detached), and reports only the serialized envelope, prefixed by POSTED_HEADER bytes: byte 0
// is 0 (which no V8 serialization or small encoding starts with), bytes 4..8 the worker's
// threadId, bytes 8..16 the number of the posted message (a double). The envelope's views refer
// to the transferred buffer as buffer 0.
const POSTED_HEADER = 16

/** The value moved by `move(value)`: an ArrayBuffer or a view over one (not shared memory). */
function movedBuffer(value, moved) {
  if (moved === undefined || value === null || typeof value !== 'object' || !moved.has(value)) return null
  if (value instanceof ArrayBuffer) return value
  if (ArrayBuffer.isView(value) && value.buffer instanceof ArrayBuffer) return value.buffer
  return null
}

/**
 * Encodes a result whose value was passed to `move()`: `post(buffer)` transfers the buffer and
 * returns the message's number, or null when the buffer cannot be transferred (the result is
 * then serialized as usual).
 */
function encodeMoved(value, buffer, sent, threadId, post) {
  let payload
  try {
    payload = serializeTask(envelope(true, value, sent), [buffer])
  } catch {
    return encodeResult(value, sent)
  }
  const n = post(buffer)
  if (n === null) return encodeResult(value, sent)
  const bytes = Buffer.allocUnsafe(POSTED_HEADER + payload.length)
  bytes.fill(0, 0, POSTED_HEADER)
  bytes.writeUInt32LE(threadId, 4)
  bytes.writeDoubleLE(n, 8)
  payload.copy(bytes, POSTED_HEADER)
  return bytes
}

/**
 * `[ok, value, sent?]` from a worker's result buffer; `takePosted(threadId, n)` returns the
 * ArrayBuffer a worker posted for a moved result (or throws).
 */
function decodeEnvelope(buffer, takePosted) {
  if (isSmall(buffer)) return [true, decodeSmall(buffer)]
  if (buffer[0] !== 0) return v8.deserialize(buffer)
  const moved = takePosted(buffer.readUInt32LE(4), buffer.readDoubleLE(8))
  return new TransferDeserializer(buffer.subarray(POSTED_HEADER), [moved]).readEnvelope()
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
  constructor(payload, buffers) {
    super(payload)
    this.#buffers = buffers
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
    const offset = this.readDouble()
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
