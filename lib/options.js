'use strict'
// Validation of the options every task accepts: { signal, timeout, priority, pool }.
const { invalidArg, describe } = require('./errors')

const DEFAULTS = Object.freeze({ signal: undefined, timeout: 0, priority: 0, pool: undefined })

function isAbortSignal(signal) {
  return (
    typeof signal === 'object' &&
    signal !== null &&
    typeof signal.aborted === 'boolean' &&
    typeof signal.addEventListener === 'function' &&
    typeof signal.removeEventListener === 'function'
  )
}

/** Checks `options.signal`: undefined or an AbortSignal. */
function signalOption(signal) {
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw invalidArg(`options.signal must be an AbortSignal, got ${describe(signal)}`)
  }
  return signal
}

/** Checks `options.timeout` (ms > 0, Infinity = none); returns ms with 0 meaning none. */
function timeoutOption(timeout) {
  if (timeout === undefined) return 0
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout <= 0) {
    throw invalidArg(`options.timeout must be a positive number of milliseconds, got ${describe(timeout)}`)
  }
  return timeout === Infinity ? 0 : timeout
}

/** Returns { signal, timeout (ms, 0 = none), priority, pool } or throws ERR_INVALID_ARG. */
function taskOptions(options, PoolClass) {
  if (options === undefined || options === null) return DEFAULTS
  if (typeof options !== 'object') throw invalidArg(`options must be an object, got ${describe(options)}`)
  const { signal, timeout, priority, pool } = options
  signalOption(signal)
  const ms = timeoutOption(timeout)
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isFinite(priority))) {
    throw invalidArg(`options.priority must be a finite number, got ${describe(priority)}`)
  }
  if (pool !== undefined && !(pool instanceof PoolClass)) {
    throw invalidArg(`options.pool must be a corepool Pool, got ${describe(pool)}`)
  }
  return { signal, timeout: ms, priority: priority ?? 0, pool }
}

/** Whether `buffer` (an ArrayBuffer) was transferred away: its memory is gone. */
function isDetached(buffer) {
  try {
    new Uint8Array(buffer)
    return false
  } catch {
    return true
  }
}

module.exports = { taskOptions, isAbortSignal, signalOption, timeoutOption, isDetached }
