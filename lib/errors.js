'use strict'
// Typed errors: every corepool failure carries a stable `code` (see README, "Error codes").

const CODES = new Set([
  'ERR_INVALID_ARG',
  'ERR_QUEUE_FULL',
  'ERR_ABORTED',
  'ERR_TASK_TIMEOUT',
  'ERR_POOL_CLOSED',
  'ERR_TASK_PANICKED',
  'ERR_WORKER_CRASHED',
  'ERR_SHM',
  'ERR_SPAWN',
  'ERR_CHILD_TIMEOUT',
  'ERR_CHILD_EXIT',
  'ERR_SUPERVISOR_GAVE_UP',
  'ERR_CORRUPT_INPUT',
  'ERR_OUTPUT_TOO_LARGE',
  'ERR_IPC_CHANNEL_CLOSED',
])

class CorepoolError extends Error {
  constructor(code, message, options) {
    super(message, options)
    this.code = code
    if (code === 'ERR_ABORTED') this.name = 'AbortError'
  }

  // Errors created natively are plain `Error`s with one of our codes; they count as ours too.
  static [Symbol.hasInstance](value) {
    return value instanceof Error && CODES.has(value.code)
  }
}

function invalidArg(message) {
  return new CorepoolError('ERR_INVALID_ARG', message)
}

function abortError(reason) {
  return new CorepoolError('ERR_ABORTED', 'The task was aborted', reason === undefined ? undefined : { cause: reason })
}

/** A short description of `value` for error messages; never throws (nor runs user getters twice). */
function describe(value) {
  try {
    if (value === null) return 'null'
    if (typeof value === 'string')
      return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
    if (typeof value === 'bigint') return `bigint ${value}n`
    if (typeof value === 'symbol') return value.toString()
    if (typeof value === 'object') {
      const name = Object.getPrototypeOf(value)?.constructor?.name
      return typeof name === 'string' && name !== '' ? `an instance of ${name}` : 'an object'
    }
    if (typeof value === 'function') return 'a function'
    return `${typeof value} ${String(value)}`
  } catch {
    // A proxy or an object whose accessors throw.
    return `${typeof value === 'object' ? 'an object' : typeof value} that cannot be inspected`
  }
}

/** The message of whatever was thrown, for wrapping it (never throws itself). */
function describeError(err) {
  try {
    return err instanceof Error ? err.message : String(err)
  } catch {
    return 'an unprintable value was thrown'
  }
}

/**
 * What checking an argument threw, as a corepool error: ours pass through; anything else (a
 * TypeError from Node, a throwing getter of the caller's object) becomes ERR_INVALID_ARG with
 * the original as `cause`.
 */
function asArgError(err) {
  if (err instanceof Error && CODES.has(err.code)) return err
  return new CorepoolError('ERR_INVALID_ARG', describeError(err), { cause: err })
}

/** Wraps the synchronous methods `names` of `target` so that what they throw goes through asArgError. */
function guardMethods(target, names) {
  for (const name of names) {
    const method = target[name]
    Object.defineProperty(target, name, {
      value: {
        [name](...args) {
          try {
            return method.apply(this, args)
          } catch (err) {
            throw asArgError(err)
          }
        },
      }[name],
      writable: true,
      configurable: true,
    })
  }
}

module.exports = { CorepoolError, CODES, invalidArg, abortError, describe, describeError, asArgError, guardMethods }
