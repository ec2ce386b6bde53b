'use strict'
// Node's 'advanced' IPC serialization (fork({ serialization: 'advanced' })): each message is the
// V8 serialization of the value (structured clone: Map, Set, Date, BigInt, typed arrays...),
// prefixed with its length as a big-endian uint32. Typed arrays and other host objects carry a
// uint32 tag first (0: an ArrayBufferView, 1: a plain copy of the object's own properties), as a
// Node child's `process.send` writes and expects them.
const v8 = require('node:v8')
const { isArrayBufferView } = require('node:util').types

const VIEW = 0
const OTHER = 1

class Serializer extends v8.DefaultSerializer {
  _writeHostObject(object) {
    if (isArrayBufferView(object)) {
      this.writeUint32(VIEW)
      return super._writeHostObject(object)
    }
    this.writeUint32(OTHER)
    this.writeValue({ ...object })
  }
}

class Deserializer extends v8.DefaultDeserializer {
  _readHostObject() {
    if (this.readUint32() === VIEW) return super._readHostObject()
    return this.readValue()
  }
}

/** One framed message (throws a DataCloneError for values that cannot be cloned). */
function encode(message) {
  const ser = new Serializer()
  ser.writeHeader()
  ser.writeValue(message)
  const body = ser.releaseBuffer()
  const head = Buffer.allocUnsafe(4)
  head.writeUInt32BE(body.length)
  return Buffer.concat([head, body])
}

/** Splits a byte stream into messages; `push(chunk)` returns the messages completed by it. */
function parser() {
  let pending = []
  let size = 0
  return (chunk) => {
    pending.push(chunk)
    size += chunk.length
    const out = []
    for (;;) {
      if (size < 4) break
      let buf = pending.length === 1 ? pending[0] : Buffer.concat(pending)
      pending = [buf]
      const length = buf.readUInt32BE(0)
      if (size < 4 + length) break
      const des = new Deserializer(buf.subarray(4, 4 + length))
      des.readHeader()
      out.push(des.readValue())
      buf = buf.subarray(4 + length)
      pending = buf.length > 0 ? [buf] : []
      size = buf.length
    }
    return out
  }
}

module.exports = { encode, parser }
