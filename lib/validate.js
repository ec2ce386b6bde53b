'use strict'
// The one place options and arguments are checked. Every checker takes the value and the name
// the message uses (`'options.timeout'`), returns the value to use (the default when the value
// is `undefined`: an option set to `undefined` is "not given") and otherwise throws
// ERR_INVALID_ARG saying what was given and what is accepted. With `required: true`,
// `undefined` is refused too (for arguments rather than options).
//
// Durations, one rule for the whole API: a number of milliseconds >= 0 (fractions allowed) or
// `Infinity`. Every value works as written, with no upper limit and no overflow: delays longer
// than setTimeout's 2^31 - 1 ms are chained (lib/timers.js) and native deadlines saturate.
// Options named `timeout` are time limits: 0 and `Infinity` both mean none (0 as `timeout: 0`
// means in node:child_process, http and net). Every other duration (`closeTimeout`,
// `abortGrace`, `idleTimeout`, `forceKillAfter`, ...) is a delay: 0 means at once, `Infinity`
// never.
const { invalidArg, describe } = require('./errors')

const EMPTY = Object.freeze({})

/**
 * `value` is an options object (a plain object, not an array); undefined and null: `{}` (with
 * `required`, refused).
 * @param {unknown} value
 * @param {string} [name]
 * @param {{ required?: boolean }} [opts]
 * @returns {any}
 */
function object(value, name = 'options', { required = false } = {}) {
  if ((value === undefined || value === null) && !required) return EMPTY
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidArg(`${name} must be an object, got ${describe(value)}`)
  }
  return value
}

/**
 * An integer from `min` to `max` (both included); with `infinity`, `Infinity` too.
 * @param {unknown} value
 * @param {string} name
 * @param {{ min?: number, max?: number, infinity?: boolean, required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function int(
  value,
  name,
  { min = 0, max = Number.MAX_SAFE_INTEGER, infinity = false, required = false, default: fallback } = {},
) {
  if (value === undefined && !required) return fallback
  if ((Number.isInteger(value) && value >= min && value <= max) || (infinity && value === Infinity)) return value
  const range =
    max === Number.MAX_SAFE_INTEGER
      ? min === 0
        ? 'a non-negative integer'
        : `an integer >= ${min}`
      : `an integer from ${min} to ${max}`
  throw invalidArg(`${name} must be ${range}${infinity ? ' or Infinity' : ''}, got ${describe(value)}`)
}

/**
 * A finite number from `min` to `max`.
 * @param {unknown} value
 * @param {string} name
 * @param {{ min?: number, max?: number, required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function number(
  value,
  name,
  { min = -Number.MAX_VALUE, max = Number.MAX_VALUE, required = false, default: fallback } = {},
) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'number' && value >= min && value <= max) return value
  const range =
    min === -Number.MAX_VALUE && max === Number.MAX_VALUE ? 'a finite number' : `a number from ${min} to ${max}`
  throw invalidArg(`${name} must be ${range}, got ${describe(value)}`)
}

/**
 * A duration (see above): milliseconds >= 0 (with `positive`, > 0: a window) or Infinity.
 * @param {unknown} value
 * @param {string} name
 * @param {{ positive?: boolean, required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function duration(value, name, { positive = false, required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'number' && (positive ? value > 0 : value >= 0)) return value
  throw invalidArg(
    `${name} must be a number of milliseconds ${positive ? '> 0' : '>= 0'} or Infinity, got ${describe(value)}`,
  )
}

/** A time limit (`timeout`): a duration where 0 and Infinity both mean none; returns Infinity for none. */
function timeout(value, name) {
  const ms = duration(value, name, { default: Infinity })
  return ms === 0 ? Infinity : ms
}

/**
 * One of the strings in `allowed`.
 * @param {unknown} value
 * @param {string} name
 * @param {readonly string[]} allowed
 * @param {{ required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function oneOf(value, name, allowed, { required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'string' && allowed.includes(value)) return value
  throw invalidArg(`${name} must be one of ${allowed.map((a) => `'${a}'`).join(', ')}, got ${describe(value)}`)
}

/**
 * A boolean.
 * @param {unknown} value
 * @param {string} name
 * @param {{ required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function bool(value, name, { required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'boolean') return value
  throw invalidArg(`${name} must be a boolean, got ${describe(value)}`)
}

/**
 * A string of at most `maxLength` UTF-16 units; with `nonEmpty`, not ''.
 * @param {unknown} value
 * @param {string} name
 * @param {{ nonEmpty?: boolean, maxLength?: number, required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function string(value, name, { nonEmpty = false, maxLength = Infinity, required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'string' && value.length <= maxLength && !(nonEmpty && value === '')) return value
  const what = [nonEmpty && 'non-empty', 'string', maxLength !== Infinity && `of at most ${maxLength} characters`]
  throw invalidArg(`${name} must be a ${what.filter(Boolean).join(' ')}, got ${describe(value)}`)
}

/**
 * An array of strings.
 * @param {unknown} value
 * @param {string} name
 * @param {{ required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function strings(value, name, { required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (Array.isArray(value) && value.every((s) => typeof s === 'string')) return value
  throw invalidArg(`${name} must be an array of strings, got ${describe(value)}`)
}

/**
 * A function.
 * @param {unknown} value
 * @param {string} name
 * @param {{ required?: boolean, default?: any }} [opts]
 * @returns {any}
 */
function fn(value, name, { required = false, default: fallback } = {}) {
  if (value === undefined && !required) return fallback
  if (typeof value === 'function') return value
  throw invalidArg(`${name} must be a function, got ${describe(value)}`)
}

/** An instance of `Class`, named `what` in the message (default: the class's name). */
function instance(value, name, Class, { what = Class.name, required = false } = {}) {
  if (value === undefined && !required) return undefined
  if (value instanceof Class) return value
  throw invalidArg(`${name} must be a ${what}, got ${describe(value)}`)
}

function isAbortSignal(value) {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof value.aborted === 'boolean' &&
    typeof value.addEventListener === 'function' &&
    typeof value.removeEventListener === 'function'
  )
}

/** An AbortSignal (or a look-alike with `aborted`, `addEventListener`, `removeEventListener`). */
function signal(value, name = 'options.signal') {
  if (value === undefined || isAbortSignal(value)) return value
  throw invalidArg(`${name} must be an AbortSignal, got ${describe(value)}`)
}

module.exports = {
  EMPTY,
  object,
  int,
  number,
  duration,
  timeout,
  oneOf,
  bool,
  string,
  strings,
  fn,
  instance,
  signal,
  isAbortSignal,
}
