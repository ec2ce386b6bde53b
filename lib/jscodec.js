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

module.exports = { encodeResult, encodeThrown, decodeResult }
