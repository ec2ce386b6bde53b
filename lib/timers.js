'use strict'
// Timers for every duration a user may pass: setTimeout clamps delays of 2^31 ms or more to 1 ms
// (with a TimeoutOverflowWarning), so longer delays are chained; Infinity never fires.

const MAX_DELAY = 2 ** 31 - 1

/**
 * Calls `fn` after `ms` milliseconds (any non-negative number, Infinity = never). Returns
 * `{ clear() }`. With `unref`, the timer does not keep Node alive.
 */
function longTimeout(fn, ms, { unref = false } = {}) {
  const handle = {
    timer: null,
    clear() {
      if (this.timer !== null) clearTimeout(this.timer)
      this.timer = null
    },
  }
  if (ms === Infinity) return handle
  const deadline = performance.now() + ms
  const arm = (delay) => {
    handle.timer = setTimeout(() => {
      handle.timer = null
      const left = deadline - performance.now()
      if (left > 1) arm(Math.min(left, MAX_DELAY))
      else fn()
    }, delay)
    if (unref) handle.timer.unref()
  }
  if (ms <= MAX_DELAY) {
    handle.timer = setTimeout(() => {
      handle.timer = null
      fn()
    }, ms)
    if (unref) handle.timer.unref()
  } else arm(MAX_DELAY)
  return handle
}

/** A promise that resolves after `ms` (Infinity: never), and the handle that cancels it. */
function longDelay(ms) {
  let handle
  const promise = new Promise((resolve) => {
    handle = longTimeout(resolve, ms)
  })
  return { promise, handle }
}

module.exports = { longTimeout, longDelay, MAX_DELAY }
