'use strict'
// The public Pool: option checking, AbortSignal wiring and the lazily started native pool.
const os = require('node:os')
const path = require('node:path')
const v8 = require('node:v8')
const { Worker } = require('node:worker_threads')
const native = require('./native')
const { CorepoolError, invalidArg, abortError, describe, asArgError, describeError, fromNative } = require('./errors')
const { taskOptions, isDetached } = require('./options')
const { types } = require('node:util')
const { decodeResult, serializeTransferring } = require('./jscodec')
const { SharedCounters, nativeCounters } = require('./counters')

// Names of the counters a pool adds to in a shared region (option `counters`).
const STATS_COUNTERS = [
  'corepool_tasks_completed_total',
  'corepool_tasks_failed_total',
  'corepool_tasks_cancelled_total',
]

const WORKER_ENTRY = path.join(__dirname, 'worker.js')

const kNative = Symbol('corepool.native')
const noop = () => {}
let nextCancelKey = 1
// Operators can lower every pool's thread priority without code changes.
const DEFAULT_NICE = parseNice(process.env.COREPOOL_NICE)

function parseNice(value) {
  const n = Number(value ?? 0)
  return Number.isInteger(n) && n >= 0 && n <= 19 ? n : 0
}

const defaultThreads = () =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length

class Pool {
  #threads
  #maxQueue
  #nice
  #counters
  #js = null // { filename, minThreads, idleTimeout, abortGrace, workerOptions, workers: [] }
  #native = null
  #state = 'open' // 'open' | 'closing' | 'closed'
  #stopped = null

  /**
   * @param {{ threads?: number, maxQueue?: number }} [options]
   */
  constructor(options) {
    try {
      this.#construct(options)
    } catch (err) {
      throw asArgError(err) // e.g. a getter of `options` that throws
    }
  }

  #construct(options) {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw invalidArg(`options must be an object, got ${describe(options)}`)
    }
    const { threads, maxQueue, niceIncrement, filename, counters } = options ?? {}
    if (threads !== undefined && !(Number.isInteger(threads) && threads >= 1 && threads <= 1024)) {
      throw invalidArg(`options.threads must be an integer from 1 to 1024, got ${describe(threads)}`)
    }
    if (
      maxQueue !== undefined &&
      maxQueue !== Infinity &&
      !(Number.isInteger(maxQueue) && maxQueue >= 0 && maxQueue <= Number.MAX_SAFE_INTEGER)
    ) {
      throw invalidArg(`options.maxQueue must be a non-negative integer or Infinity, got ${describe(maxQueue)}`)
    }
    if (
      niceIncrement !== undefined &&
      !(Number.isInteger(niceIncrement) && niceIncrement >= 0 && niceIncrement <= 19)
    ) {
      throw invalidArg(`options.niceIncrement must be an integer from 0 to 19, got ${describe(niceIncrement)}`)
    }
    this.#threads = threads ?? defaultThreads()
    this.#nice = niceIncrement ?? DEFAULT_NICE
    this.#maxQueue = maxQueue === undefined || maxQueue === Infinity ? -1 : maxQueue
    if (filename !== undefined) this.#js = jsOptions(options, this.#threads)
    if (counters !== undefined) {
      if (!(counters instanceof SharedCounters)) {
        throw invalidArg(`options.counters must be a SharedCounters, got ${describe(counters)}`)
      }
      if (!STATS_COUNTERS.some((name) => counters.names.includes(name))) {
        throw invalidArg(`options.counters has none of the pool's counters (${STATS_COUNTERS.join(', ')})`)
      }
    }
    this.#counters = counters
  }

  /** Threads start on the first task, so an unused pool costs nothing. */
  get [kNative]() {
    if (this.#native === null) {
      if (this.#state !== 'open') return null
      const js = this.#js
      this.#native = new native.NativePool(
        this.#threads,
        this.#maxQueue,
        this.#nice,
        noop,
        js && workerEventHandler(this),
        js?.abortGrace,
      )
      if (this.#counters !== undefined) this.#native.mirrorStats(nativeCounters(this.#counters))
    }
    return this.#native
  }

  /**
   * Runs the task module's default export (or the export `options.name`) with `data` on a
   * worker thread. Resolves with its (awaited) return value.
   */
  run(data, options) {
    let payload
    let name
    let transfers = null
    try {
      if (this.#js === null) throw invalidArg('pool.run() needs a pool created with options.filename')
      if (options !== undefined && options !== null && typeof options === 'object') {
        name = options.name
        if (name !== undefined && name !== null && typeof name !== 'string') {
          throw invalidArg(`options.name must be a string, got ${describe(name)}`)
        }
        const { transferList } = options
        if (transferList !== undefined && !Array.isArray(transferList)) {
          throw invalidArg(`options.transferList must be an array, got ${describe(transferList)}`)
        }
        if (transferList?.length) {
          const buffers = [...new Set(transferList)]
          const bad = buffers.find((b) => !types.isArrayBuffer(b))
          if (bad !== undefined) {
            throw invalidArg(`options.transferList may only hold ArrayBuffers, got ${describe(bad)}`)
          }
          if (buffers.some(isDetached)) throw invalidArg('options.transferList holds a detached ArrayBuffer')
          payload = serialize(data, buffers)
          // Like postMessage: the buffers belong to the task now (detached here, their memory
          // moved into new ArrayBuffers that only the pool holds; the worker reads that memory
          // in place, and the pool lets go of it once the worker has collected its view).
          transfers = structuredClone(buffers, { transfer: buffers })
        } else {
          payload = serialize(data)
        }
      } else {
        payload = serialize(data)
      }
    } catch (err) {
      return Promise.reject(asArgError(err))
    }
    return submitNativeArgs(native.runJs, [payload, name ?? null, transfers], options, this).then(decodeResult)
  }

  get threads() {
    return this.#threads
  }

  get maxQueue() {
    return this.#maxQueue < 0 ? Infinity : this.#maxQueue
  }

  get closed() {
    return this.#state !== 'open'
  }

  get stats() {
    if (this.#native === null) return emptyStats(this.#threads)
    return this.#native.stats()
  }

  /** Stop accepting tasks, let queued and running ones finish, then stop the threads. */
  close() {
    return this.#stop('close')
  }

  /** Stop accepting tasks, reject queued and running ones with ERR_POOL_CLOSED, stop the threads. */
  destroy() {
    return this.#stop('destroy')
  }

  #stop(how) {
    if (this.#state === 'open') this.#state = 'closing'
    if (this.#native === null) return Promise.resolve()
    const stopped = how === 'destroy' ? this.#native.destroy() : (this.#stopped ??= this.#native.close())
    return this.#js === null ? stopped : stopped.then(() => this.#terminateWorkers())
  }

  async #terminateWorkers() {
    const workers = this.#js.workers.splice(0).filter(Boolean)
    await Promise.all(workers.map(({ worker }) => worker.terminate()))
  }

  /** Requests from the pool threads: start or terminate the worker of a slot. */
  static workerEvent(pool, terminate, slot, generation) {
    pool.#workerEvent(terminate, slot, generation)
  }

  #workerEvent(terminate, slot, generation) {
    const js = this.#js
    const poolId = this.#native.jsPoolId
    const current = js.workers[slot]
    if (terminate) {
      if (current?.generation === generation) current.worker.terminate()
      return
    }
    let worker
    try {
      worker = new Worker(WORKER_ENTRY, {
        ...js.workerOptions,
        workerData: {
          poolId,
          slot,
          generation,
          filename: js.filename,
          idleTimeout: js.idleTimeout,
          minThreads: js.minThreads,
        },
      })
    } catch (err) {
      native.jsWorkerExited(poolId, slot, generation, `cannot start a worker: ${err.message}`)
      return
    }
    // Idle workers must not keep the process alive; running tasks do (through the pool).
    worker.unref()
    const record = { worker, generation, error: null }
    js.workers[slot] = record
    worker.on('error', (err) => {
      record.error = err
    })
    worker.on('exit', (code) => {
      if (js.workers[slot] === record) js.workers[slot] = null
      const why = record.error
        ? `the worker died: ${record.error.message ?? record.error}`
        : `the worker exited with code ${code}`
      native.jsWorkerExited(poolId, slot, generation, why)
    })
  }
}

// The native pool holds its handler strongly; a WeakRef keeps that from pinning the Pool, so a
// forgotten pool can be collected (its threads then stop and its workers exit).
function workerEventHandler(pool) {
  const ref = new WeakRef(pool)
  return (terminate, slot, generation) => {
    const p = ref.deref()
    if (p !== undefined) Pool.workerEvent(p, terminate, slot, generation)
  }
}

function serialize(data, buffers) {
  try {
    return buffers === undefined ? v8.serialize(data) : serializeTransferring(data, buffers)
  } catch (err) {
    throw invalidArg(`the task data cannot be cloned: ${err.message}`)
  }
}

function jsOptions(options, threads) {
  const { filename, minThreads, idleTimeout, abortGrace, resourceLimits, env, execArgv } = options
  let file = filename
  if (file instanceof URL) file = file.href
  if (typeof file !== 'string' || file === '') {
    throw invalidArg(`options.filename must be an absolute path or file: URL, got ${describe(filename)}`)
  }
  if (!file.startsWith('file:') && !path.isAbsolute(file)) {
    throw invalidArg(`options.filename must be an absolute path or file: URL, got ${describe(filename)}`)
  }
  if (minThreads !== undefined && !(Number.isInteger(minThreads) && minThreads >= 0 && minThreads <= threads)) {
    throw invalidArg(
      `options.minThreads must be an integer from 0 to threads (${threads}), got ${describe(minThreads)}`,
    )
  }
  if (idleTimeout !== undefined && !(typeof idleTimeout === 'number' && idleTimeout >= 0)) {
    throw invalidArg(`options.idleTimeout must be a non-negative number of milliseconds, got ${describe(idleTimeout)}`)
  }
  if (abortGrace !== undefined && !(typeof abortGrace === 'number' && abortGrace >= 0)) {
    throw invalidArg(`options.abortGrace must be a non-negative number of milliseconds, got ${describe(abortGrace)}`)
  }
  if (resourceLimits !== undefined && (typeof resourceLimits !== 'object' || resourceLimits === null)) {
    throw invalidArg(`options.resourceLimits must be an object, got ${describe(resourceLimits)}`)
  }
  if (execArgv !== undefined && !(Array.isArray(execArgv) && execArgv.every((a) => typeof a === 'string'))) {
    throw invalidArg(`options.execArgv must be an array of strings, got ${describe(execArgv)}`)
  }
  if (env !== undefined && (env === null || (typeof env !== 'object' && typeof env !== 'symbol'))) {
    throw invalidArg(`options.env must be an object or worker_threads.SHARE_ENV, got ${describe(env)}`)
  }
  const workerOptions = {}
  if (resourceLimits !== undefined) workerOptions.resourceLimits = resourceLimits
  if (env !== undefined) workerOptions.env = env
  if (execArgv !== undefined) workerOptions.execArgv = execArgv
  return {
    filename: file,
    minThreads: minThreads ?? Math.min(1, threads),
    idleTimeout: idleTimeout ?? 10_000,
    abortGrace: abortGrace ?? 1000,
    workerOptions,
    workers: [],
  }
}

function emptyStats(threads) {
  const t = { count: 0, min: 0, max: 0, mean: 0, p50: 0, p90: 0, p99: 0 }
  return {
    threads,
    queued: 0,
    running: 0,
    completed: 0,
    failed: 0,
    cancelled: 0,
    aborted: 0,
    timedOut: 0,
    waitTime: t,
    runTime: { ...t },
    utilization: 0,
  }
}

let defaultPoolInstance = null
function getDefaultPool() {
  return (defaultPoolInstance ??= new Pool())
}

const closedError = () => new CorepoolError('ERR_POOL_CLOSED', 'The pool is closed')

/** Submits one native task with a single input; see `submitNativeArgs`. */
function submitNative(fn, arg, options) {
  return submitNativeArgs(fn, [arg], options)
}

/**
 * Submits one native task: `fn(nativePool, ...args, priority, timeoutMs, cancelKey)` returns its
 * promise. `ownPool` (for `pool.run`) overrides `options.pool`. Never throws: every failure is a
 * rejected promise.
 */
function submitNativeArgs(fn, args, options, ownPool) {
  let o
  try {
    o = taskOptions(options, Pool)
  } catch (err) {
    return Promise.reject(asArgError(err))
  }
  const pool = ownPool ?? o.pool ?? getDefaultPool()
  const np = pool[kNative]
  if (np === null) return Promise.reject(closedError())
  const { signal } = o
  if (signal === undefined) return call(fn, np, args, o, 0)
  const key = nextCancelKey++
  const onAbort = () => np.cancel(key, signal.reason)
  // The listener goes on before the task is submitted: a signal that cannot take it (a
  // look-alike whose methods throw) refuses the call instead of leaving a task nobody observes.
  try {
    if (signal.aborted) return Promise.reject(abortError(signal.reason))
    signal.addEventListener('abort', onAbort, { once: true })
  } catch (err) {
    return Promise.reject(invalidArg(`options.signal is not a usable AbortSignal: ${describeError(err)}`))
  }
  const promise = call(fn, np, args, o, key)
  const cleanup = () => {
    try {
      signal.removeEventListener('abort', onAbort)
    } catch {
      // A look-alike signal that throws here keeps a listener that is a no-op once settled.
    }
  }
  promise.then(cleanup, cleanup)
  return promise
}

// A native argument conversion that fails throws synchronously; turn it into a rejection.
function call(fn, np, args, o, key) {
  try {
    return fn(np, ...args, o.priority, o.timeout, key)
  } catch (err) {
    return Promise.reject(fromNative(err))
  }
}

module.exports = { Pool, getDefaultPool, submitNative, submitNativeArgs, kNative, STATS_COUNTERS }
