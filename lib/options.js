'use strict'
// The options every task accepts: { signal, timeout, priority, pool } (see lib/validate.js).
const check = require('./validate')

const DEFAULTS = Object.freeze({ signal: undefined, timeout: Infinity, priority: 0, pool: undefined })

/** Returns { signal, timeout (ms, Infinity = none), priority, pool } or throws ERR_INVALID_ARG. */
function taskOptions(options, PoolClass) {
  if (options === undefined || options === null) return DEFAULTS
  const { signal, timeout, priority, pool } = check.object(options)
  check.instance(pool, 'options.pool', PoolClass, { what: 'corepool Pool' })
  return {
    signal: check.signal(signal),
    timeout: check.timeout(timeout, 'options.timeout'),
    priority: check.number(priority, 'options.priority', { default: 0 }),
    pool,
  }
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

module.exports = { taskOptions, isDetached }
