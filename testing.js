// @ts-check
'use strict'
// Native tasks for tests: `panic` (a job that panics) and `sleep` (a job that holds its thread).
// Not part of the documented API.
const native = require('./lib/native')
const { submitNative } = require('./lib/pool')
const { invalidArg, describe } = require('./lib/errors')

/** A native task that panics; rejects with ERR_TASK_PANICKED. */
function panic(options) {
  return submitNative(native.testPanic, 'corepool testing panic', options)
}

/** A native task that sleeps `ms` milliseconds, waking early when cancelled. */
function sleep(ms, options) {
  if (typeof ms !== 'number') return Promise.reject(invalidArg(`ms must be a number, got ${describe(ms)}`))
  return submitNative(native.testSleep, ms, options)
}

/**
 * Rust threads add 1 to counter `name` of `counters` `iterations` times each (default 4 × 1e6),
 * through the Rust-side counters API. Resolves with true when all are done.
 */
function hammerCounter(counters, name, options) {
  return require('./lib/counters').hammerCounter(counters, name, options)
}

module.exports = { panic, sleep, hammerCounter }
