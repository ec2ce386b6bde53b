'use strict'
// `require('corepool')` loads the native addon (so a missing or broken binary fails right here,
// with the loader's report of what it tried) and nothing else: the JS module behind an export
// loads the first time one of its names is read. That keeps `require('corepool')` about as cheap
// as loading a napi-rs package (README, "Install"), and a program that only uses counters never
// loads node:net, node:v8 or node:worker_threads. The names are listed here (kernels, counters
// and children export all of theirs; __test__/platform.test.mjs checks that none is missing).
require('./lib/platform').loadNative()

const modules = {
  './lib/pool': ['Pool'],
  './lib/errors': ['CorepoolError'],
  './lib/kernels': [
    'sqrtSum',
    'hash',
    'hashMany',
    'hashFile',
    'createHasher',
    'Hasher',
    'compress',
    'decompress',
    'DEFAULT_MAX_OUTPUT_LENGTH',
    'passwordHash',
    'passwordVerify',
    'countPrimes',
    'sortFloat64',
    'statsFloat64',
    'sumFloat64',
    'meanFloat64',
    'minFloat64',
    'maxFloat64',
    'resize',
    'DEFAULT_MAX_PIXELS',
  ],
  './lib/net': ['listenReusePort'],
  './lib/counters': ['SharedCounters'],
  './lib/children': ['spawn', 'exec', 'fork', 'Child'],
  './lib/supervisor': ['Supervisor'],
}

function lazy(file, names) {
  for (const name of names) {
    Object.defineProperty(module.exports, name, {
      enumerable: true,
      configurable: true,
      get() {
        const value = require(file)[name]
        // From now on a plain property, as if assigned.
        Object.defineProperty(module.exports, name, { enumerable: true, configurable: true, writable: true, value })
        return value
      },
    })
  }
}

for (const [file, names] of Object.entries(modules)) lazy(file, names)
lazy('./lib/state', ['move'])
// Inside a pool's task module: true, and the pool's `workerData` (as piscina exports them). The
// symbol is lib/state.js's kWorkerState (Symbol.for, so reading it needs no module).
const workerState = globalThis[Symbol.for('corepool.workerState')]
module.exports.isWorkerThread = workerState !== undefined
module.exports.workerData = workerState?.workerData
lazy('./lib/cluster', ['cluster', 'Cluster'])

// The default pool (threads = os.availableParallelism()) is created on first use.
Object.defineProperty(module.exports, 'defaultPool', {
  enumerable: true,
  get: () => require('./lib/pool').getDefaultPool(),
})
