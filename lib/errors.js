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

function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`
  if (typeof value === 'bigint') return `bigint ${value}n`
  if (typeof value === 'object')
    return value.constructor?.name ? `an instance of ${value.constructor.name}` : 'an object'
  if (typeof value === 'function') return 'a function'
  return `${typeof value} ${String(value)}`
}

module.exports = { CorepoolError, CODES, invalidArg, abortError, describe }
