'use strict'
// The public Pool: option checking, AbortSignal wiring and the lazily started native pool.
const os = require('node:os')
const native = require('./native')
const { CorepoolError, invalidArg, abortError, describe } = require('./errors')
const { taskOptions } = require('./options')

const kNative = Symbol('corepool.native')
const noop = () => {}
let nextCancelKey = 1
const DEFAULT_NICE = Number(process.env.COREPOOL_NICE ?? 0)

const defaultThreads = () =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length

class Pool {
  #threads
  #maxQueue
  #nice
  #native = null
  #state = 'open' // 'open' | 'closing' | 'closed'
  #stopped = null

  /**
   * @param {{ threads?: number, maxQueue?: number }} [options]
   */
  constructor(options) {
    if (options !== undefined && (typeof options !== 'object' || options === null)) {
      throw invalidArg(`options must be an object, got ${describe(options)}`)
    }
    const { threads, maxQueue, niceIncrement, filename } = options ?? {}
    if (filename !== undefined) {
      throw invalidArg('options.filename: JavaScript task modules are not supported by this version of corepool')
    }
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
  }

  /** Threads start on the first task, so an unused pool costs nothing. */
  get [kNative]() {
    if (this.#native === null) {
      if (this.#state !== 'open') return null
      this.#native = new native.NativePool(this.#threads, this.#maxQueue, this.#nice, noop)
    }
    return this.#native
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
    if (how === 'destroy') return this.#native.destroy()
    return (this.#stopped ??= this.#native.close())
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

/**
 * Submits one native task: `fn(nativePool, arg, priority, timeoutMs, cancelKey)` returns its
 * promise. Never throws: every failure is a rejected promise.
 */
function submitNative(fn, arg, options) {
  return submitNativeArgs(fn, [arg], options)
}

/**
 * Like `submitNative` for kernels with several inputs: `fn(nativePool, ...args, priority,
 * timeoutMs, cancelKey)`.
 */
function submitNativeArgs(fn, args, options) {
  let o
  try {
    o = taskOptions(options, Pool)
  } catch (err) {
    return Promise.reject(err)
  }
  const pool = o.pool ?? getDefaultPool()
  const np = pool[kNative]
  if (np === null) return Promise.reject(closedError())
  const { signal } = o
  if (signal === undefined) return call(fn, np, args, o, 0)
  if (signal.aborted) return Promise.reject(abortError(signal.reason))
  const key = nextCancelKey++
  const promise = call(fn, np, args, o, key)
  const onAbort = () => np.cancel(key, signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  const cleanup = () => signal.removeEventListener('abort', onAbort)
  promise.then(cleanup, cleanup)
  return promise
}

// A native argument conversion that fails throws synchronously; turn it into a rejection.
function call(fn, np, args, o, key) {
  try {
    return fn(np, ...args, o.priority, o.timeout, key)
  } catch (err) {
    return Promise.reject(err)
  }
}

module.exports = { Pool, getDefaultPool, submitNative, submitNativeArgs, kNative }
