'use strict'
// Encoding of JS task results and errors between a worker and the submitting thread.
// Errors keep their class (for built-ins), name, message, stack, code and own enumerable
// properties; values that cannot be cloned are replaced by their string form.
const v8 = require('node:v8')

const BUILTIN_ERRORS = { Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError }

function cloneable(value) {
  try {
    v8.serialize(value)
    return value
  } catch {
    return String(value)
  }
}

function encodeResult(value) {
  try {
    return v8.serialize([true, value])
  } catch (err) {
    return encodeThrown(
      Object.assign(new TypeError(`the task's result cannot be cloned: ${err.message}`), {
        code: 'ERR_INVALID_ARG',
      }),
    )
  }
}

function encodeThrown(err) {
  if (!(err instanceof Error)) return v8.serialize([false, { error: false, value: cloneable(err) }])
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
  return v8.serialize([false, info])
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
  const [ok, value] = v8.deserialize(buffer)
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

class TransferSerializer extends v8.DefaultSerializer {
  #ids
  constructor(ids) {
    super()
    this.#ids = ids
  }

  _writeHostObject(view) {
    const id = this.#ids.get(view.buffer)
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

  _readHostObject() {
    if (this.readUint32() === 0) return super._readHostObject()
    const type = this.readUint32()
    const buffer = this.#buffers[this.readUint32()]
    const offset = this.readDouble()
    const length = this.readDouble()
    return type === BUFFER_TYPE ? Buffer.from(buffer, offset, length) : new VIEW_TYPES[type](buffer, offset, length)
  }
}

/** Serializes task data whose `buffers` (distinct ArrayBuffers) travel out of band. */
function serializeTransferring(data, buffers) {
  const ser = new TransferSerializer(new Map(buffers.map((b, id) => [b, id])))
  buffers.forEach((buffer, id) => ser.transferArrayBuffer(id, buffer))
  ser.writeHeader()
  ser.writeValue(data)
  return ser.releaseBuffer()
}

/** Decodes task data; `buffers` are the moved contents of its transferred ArrayBuffers, or null. */
function decodeTask(payload, buffers) {
  if (buffers === null) return v8.deserialize(payload)
  const des = new TransferDeserializer(payload, buffers)
  des.readHeader()
  return des.readValue()
}

module.exports = { encodeResult, encodeThrown, decodeResult, serializeTransferring, decodeTask }
