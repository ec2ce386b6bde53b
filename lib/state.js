'use strict'
// Set by a pool's worker (lib/worker.js) before it loads the task module, so that
// `require('corepool')` there reports `isWorkerThread` and the pool's `workerData`. A global
// symbol, so that every copy of the package loaded in that worker sees it.
const kWorkerState = Symbol.for('corepool.workerState')

module.exports = { kWorkerState }
