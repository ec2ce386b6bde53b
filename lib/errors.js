'use strict'
// Typed errors: every corepool failure carries a stable `code` (see README, "Error codes").

// The documented codes, generated from crates/core/src/error.rs (scripts/error-codes.js).
const CODES = new Set(require('./error-codes').map(({ code }) => code))

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

/** ERR_INVALID_STATE: the call is fine, the object cannot do it now. */
function invalidState(message) {
  return new CorepoolError('ERR_INVALID_STATE', message)
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

/**
 * A failed system call as Node reports one (`errno` negative, `syscall`), with code ERR_SYSTEM.
 * `errno` is the positive OS error number.
 */
function systemError(context, errno, syscall) {
  const name = errnoName(errno)
  const err = new CorepoolError('ERR_SYSTEM', `${context}: ${syscall} ${name}`)
  err.errno = -errno
  err.syscall = syscall
  return err
}

let errnoNames

/**
 * The name of the positive OS error number `errno` (`2` → `'ENOENT'`); `'UNKNOWN'` for a number
 * the platform has no name for, as Node names an unmapped system error.
 */
function errnoName(errno) {
  errnoNames ??= new Map(Object.entries(require('node:os').constants.errno).map(([name, n]) => [n, name]))
  return errnoNames.get(errno) ?? 'UNKNOWN'
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

// Node-API statuses that napi-rs reports as `code` when a native argument has the wrong type
// (the list is src/error.rs's; read when first needed, so that loading this module needs no addon).
let napiTypeStatuses

/**
 * What a native call threw, as a corepool error: ours pass through, a napi-rs type mismatch is
 * ERR_INVALID_ARG, any other Node-API failure ERR_SYSTEM (the original is the `cause`).
 */
function fromNative(err) {
  if (err instanceof Error && CODES.has(err.code)) return err
  napiTypeStatuses ??= new Set(require('./native').napiTypeStatuses())
  const code = err instanceof Error && napiTypeStatuses.has(err.code) ? 'ERR_INVALID_ARG' : 'ERR_SYSTEM'
  return new CorepoolError(code, describeError(err), { cause: err })
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

module.exports = {
  // Type-checked callers (lib/*.js with // @ts-check) see the public declaration, fields included.
  CorepoolError: /** @type {typeof import('../types/errors').CorepoolError} */ (CorepoolError),
  CODES,
  invalidArg,
  invalidState,
  abortError,
  systemError,
  errnoName,
  fromNative,
  describe,
  describeError,
  asArgError,
  guardMethods,
}
