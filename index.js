'use strict'
const { Pool, getDefaultPool } = require('./lib/pool')
const { CorepoolError } = require('./lib/errors')
const kernels = require('./lib/kernels')
const { listenReusePort } = require('./lib/net')
const children = require('./lib/children')
const { Supervisor } = require('./lib/supervisor')
const { kWorkerState, move } = require('./lib/state')

// Inside a pool's task module: true, and the pool's `workerData` (as piscina exports them).
const workerState = globalThis[kWorkerState]
const { cluster, Cluster } = require('./lib/cluster')

module.exports = {
  Pool,
  CorepoolError,
  ...kernels,
  listenReusePort,
  ...require('./lib/counters'),
  ...children,
  Supervisor,
  move,
  isWorkerThread: workerState !== undefined,
  workerData: workerState?.workerData,
  cluster,
  Cluster,
}

// The default pool (threads = os.availableParallelism()) is created on first use.
Object.defineProperty(module.exports, 'defaultPool', { enumerable: true, get: getDefaultPool })
