'use strict'
// Set by a pool's worker (lib/worker.js) before it loads the task module, so that
// `require('corepool')` there reports `isWorkerThread` and the pool's `workerData`. A global
// symbol, so that every copy of the package loaded in that worker sees it.
const kWorkerState = Symbol.for('corepool.workerState')

/**
 * Marks a task's result (an ArrayBuffer, or a typed array / Buffer over one) to be handed to the
 * caller without being serialized or copied: its ArrayBuffer is transferred (see lib/worker.js).
 * Outside a pool's worker it returns `value` and does nothing (as piscina's `move`).
 */
function move(value) {
  const state = globalThis[kWorkerState]
  if (state !== undefined && value !== null && typeof value === 'object') state.moved.add(value)
  return value
}

module.exports = { kWorkerState, move }
