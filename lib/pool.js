// @ts-check
'use strict'
// The public Pool: option checking, AbortSignal wiring and the lazily started native pool.
const os = require('node:os')
const path = require('node:path')
const v8 = require('node:v8')
const { EventEmitter } = require('node:events')
const { Worker, MessageChannel, receiveMessageOnPort } = require('node:worker_threads')
const native = require('./native')
const { CorepoolError, invalidArg, abortError, describe, asArgError, describeError, fromNative } = require('./errors')
const { taskOptions, isDetached } = require('./options')
const check = require('./validate')
const { longTimeout } = require('./timers')
const { types } = require('node:util')
const { decodeResult, decodeEnvelope, settleDecoded, serializeTask, NEEDS_POST_MESSAGE } = require('./jscodec')
const { SharedCounters, nativeCounters } = require('./counters')

// Names of the counters a pool adds to in a shared region (option `counters`; declared in
// crates/core/src/pool/stats.rs).
const STATS_COUNTERS = native.poolStatsCounters()

const WORKER_ENTRY = path.join(__dirname, 'worker.js')

const kNative = Symbol('corepool.native')
const kSubmitted = Symbol('corepool.submitted')
const kWorkerPort = Symbol('corepool.workerPort')
const kWorkerExited = Symbol('corepool.workerExited')
const kDeliver = Symbol('corepool.deliver')
let nextCancelKey = 1
let nextTag = 1
const NO_BYTES = new Uint8Array(0)
/** The largest `niceIncrement` (the lowest scheduling priority, 19, from the normal 0). */
const MAX_NICE = 19
// Operators can lower every pool's thread priority without code changes (a value that is not
// a niceIncrement is ignored).
const DEFAULT_NICE = parseNice(process.env.COREPOOL_NICE)

function parseNice(value) {
  const n = Number(value ?? 0)
  return Number.isInteger(n) && n >= 0 && n <= MAX_NICE ? n : 0
}

const defaultThreads = () =>
  typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length

/** @typedef {import('../types/native').NativePool} NativePool */
/** The optional arguments every native task ends with: priority, timeout (ms), cancel key. */
/** @typedef {[number | undefined, number | undefined, number | undefined]} TaskArgs */

/** Set by Pool's static block: start or terminate the worker of a slot. */
let workerEvent

/**
 * A pool of threads. Events (an `EventEmitter`): `'drain'` (the queue became empty),
 * `'needsDrain'` (queued plus running tasks reached `threads + maxQueue`), `'message'` (a
 * value a worker posted on `parentPort`), `'error'` (a worker failed outside any task; only
 * emitted when listened to), `'workerCreate'` / `'workerDestroy'` (`{ threadId, slot }`).
 */
class Pool extends EventEmitter {
  #threads
  #maxQueue
  #nice
  #counters
  #closeTimeout
  #js = null // { filename, minThreads, idleTimeout, abortGrace, workerOptions, workerData, workers: [] }
  #native = null
  #state = 'open' // 'open' | 'closing' | 'closed'
  #stopped = null
  #inflight = 0 // tasks submitted to this pool and not yet settled
  #jsInflight = 0 // JS tasks among them
  #liveWorkers = 0
  #queuedSeen = false
  #needsDrain = false
  #talk = new Map() // tag -> a task that talks to this thread (progress, relayed data)
  #byThread = new Map() // worker threadId -> its record, while its port may hold moved results

  /**
   * @param {{ threads?: number, maxQueue?: number }} [options]
   */
  constructor(options) {
    super()
    try {
      this.#construct(options)
    } catch (err) {
      throw asArgError(err) // e.g. a getter of `options` that throws
    }
  }

  #construct(options) {
    const o = check.object(options)
    const { counters } = o
    this.#threads = check.int(o.threads, 'options.threads', { min: 1, max: 1024 }) ?? defaultThreads()
    this.#maxQueue = check.int(o.maxQueue, 'options.maxQueue', { infinity: true, default: Infinity })
    this.#nice = check.int(o.niceIncrement, 'options.niceIncrement', { max: MAX_NICE, default: DEFAULT_NICE })
    this.#closeTimeout = check.duration(o.closeTimeout, 'options.closeTimeout', { default: Infinity })
    // Checked whether or not `filename` is given (a pool without it may still get per-task ones).
    // A pool without a task module still runs per-task ones (`run(data, { filename })`).
    this.#js = jsOptions(o, this.#threads)
    if (counters !== undefined) {
      check.instance(counters, 'options.counters', SharedCounters)
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
      const abortGrace = js?.abortGrace
      this.#native = new native.NativePool(
        {
          threads: this.#threads,
          maxQueue: this.#maxQueue === Infinity ? undefined : this.#maxQueue,
          nice: this.#nice,
          abortGrace: abortGrace === Infinity ? undefined : abortGrace,
        },
        js && workerEventHandler(this),
      )
      if (this.#counters !== undefined) this.#native.mirrorStats(nativeCounters(this.#counters))
    }
    return this.#native
  }

  /** Counts a submitted task until it settles ('drain' / 'needsDrain' bookkeeping). */
  [kSubmitted](promise) {
    const n = ++this.#inflight
    if (n > this.#threads) this.#queuedSeen = true
    if (!this.#needsDrain && n >= this.#threads + this.#maxQueue) {
      this.#needsDrain = true
      this.emit('needsDrain')
    }
    promise.then(this.#settled, this.#settled)
  }

  #settled = () => {
    const n = --this.#inflight
    if (this.#needsDrain && n < this.#threads + this.#maxQueue) this.#needsDrain = false
    if (this.#queuedSeen && n <= this.#threads) {
      this.#queuedSeen = false
      this.#needsDrain = false
      this.emit('drain')
    }
  }

  /** True while queued plus running tasks fill `threads + maxQueue` (back-pressure signal). */
  get needsDrain() {
    return this.#needsDrain
  }

  /**
   * Runs the task module's default export (or the export `options.name`) with `data` on a
   * worker thread. Resolves with its (awaited) return value.
   */
  run(data, options) {
    let payload = NO_BYTES
    let name = null
    let file = null
    let transfers = null
    let tag = null // set for a task that talks to this thread
    let relayed = false
    let progress
    try {
      let list = null
      if (options !== undefined && options !== null && typeof options === 'object') {
        name = check.string(options.name ?? undefined, 'options.name', { default: null })
        if (options.filename !== undefined) file = taskFilename(options.filename, 'options.filename')
        progress = check.fn(options.progress, 'options.progress')
        const { transferList } = options
        if (transferList !== undefined && !Array.isArray(transferList)) {
          throw invalidArg(`options.transferList must be an array, got ${describe(transferList)}`)
        }
        if (transferList?.length) list = [...new Set(transferList)]
      }
      if (file === null && this.#js.filename === null) {
        throw invalidArg('pool.run() needs options.filename: the pool has no task module')
      }
      const buffers = list !== null && list.every((b) => types.isArrayBuffer(b)) ? list : null
      if (buffers?.some(isDetached)) throw invalidArg('options.transferList holds a detached ArrayBuffer')
      if (list === null || buffers !== null) {
        payload = serialize(data, buffers)
        if (payload === null) relayed = true
        else if (buffers !== null) {
          // Like postMessage: the buffers belong to the task now (detached here, their memory
          // moved into new ArrayBuffers that only the pool holds until the worker has copied it
          // into buffers of its own, when the task starts).
          transfers = structuredClone(buffers, { transfer: buffers })
        }
      } else {
        relayed = true
      }
      if (relayed || progress !== undefined) {
        tag = nextTag++
        this.#talk.set(tag, {
          data: relayed ? postedData(data, list) : null,
          progress,
          received: 0,
          sent: 0,
          waiting: null,
          error: undefined,
        })
        if (this.#talk.size === 1) this.#refPorts(true)
        if (relayed) payload = NO_BYTES
      }
    } catch (err) {
      return Promise.reject(asArgError(err))
    }
    if (this.#liveWorkers < this.#threads && this.#jsInflight >= this.#liveWorkers && this.#state === 'open') {
      // No worker is there for this task: start one now rather than from this thread's event
      // loop (which may be blocked right after this call).
      const start = this[kNative]?.prestart()
      if (start) this.#spawn(start[0], start[1])
    }
    this.#jsInflight++
    const promise = submitNativeArgs(
      native.runJs,
      [payload, name, file, transfers, tag, relayed, progress !== undefined],
      options,
      this,
    )
    const settled = promise.then(
      (buffer) => {
        this.#jsInflight--
        return tag === null ? decodeResult(buffer, this.#takePosted) : this.#talked(tag, buffer)
      },
      (err) => {
        this.#jsInflight--
        if (tag !== null) this.#forget(tag)
        throw err
      },
    )
    return settled
  }

  // The result of a task that talked to this thread: delivered after all its progress values.
  async #talked(tag, buffer) {
    const decoded = decodeEnvelope(buffer, this.#takePosted)
    const record = this.#talk.get(tag)
    if (record !== undefined) {
      record.sent = decoded[2] ?? 0
      if (record.received < record.sent) await new Promise((resolve) => (record.waiting = resolve))
      this.#forget(tag)
      if (record.error !== undefined) throw record.error
    }
    return settleDecoded(decoded)
  }

  #forget(tag) {
    const record = this.#talk.get(tag)
    if (record === undefined) return
    this.#talk.delete(tag)
    record.data?.close()
    if (this.#talk.size === 0) this.#refPorts(false)
  }

  // Worker ports are referenced only while some task may talk over them (it is in flight then,
  // so the process stays alive anyway); otherwise idle workers would keep it alive.
  #refPorts(on) {
    for (const record of this.#js.workers) {
      if (record) on ? record.port.ref() : record.port.unref()
    }
  }

  // The ArrayBuffer of a moved result: message `n` of worker `threadId`'s port, which arrived
  // before its result did (taken from the port here if its event has not run yet). Messages of
  // results that were never delivered (the task had settled meanwhile) are dropped then.
  #takePosted = (threadId, n) => {
    const record = this.#byThread.get(threadId)
    while (record !== undefined) {
      const buffer = record.moved.get(n)
      if (buffer !== undefined) {
        for (const older of record.moved.keys()) {
          record.moved.delete(older)
          if (older === n) break
        }
        return buffer
      }
      const received = record.open ? receiveMessageOnPort(record.port) : undefined
      if (received === undefined) break
      this.#onWorkerPort(record, received.message)
    }
    throw new CorepoolError('ERR_WORKER_CRASHED', 'the worker exited before its moved result reached the pool')
  }

  // A message on a worker's private port (see lib/worker.js).
  #onWorkerPort(worker, msg) {
    if (msg.t === 'moved') {
      worker.moved.set(msg.n, msg.buffer)
      return
    }
    const { port } = worker
    const record = this.#talk.get(msg.tag)
    if (msg.t === 'data') {
      const data = record?.data ?? null
      if (record) record.data = null
      port.postMessage({ tag: msg.tag, port: data }, data ? [data] : [])
      return
    }
    if (msg.t !== 'progress' || record === undefined) return
    record.received++
    if (record.progress !== undefined && record.error === undefined) {
      try {
        record.progress(msg.value)
      } catch (err) {
        // The run() promise rejects with it once the task has finished.
        record.error = err
      }
    }
    if (record.waiting !== null && record.received >= record.sent) record.waiting()
  }

  get threads() {
    return this.#threads
  }

  get maxQueue() {
    return this.#maxQueue
  }

  get closed() {
    return this.#state !== 'open'
  }

  get stats() {
    if (this.#native === null) return native.emptyPoolStats(this.#threads)
    return this.#native.stats()
  }

  /**
   * Stop accepting tasks, let running ones finish, then stop the threads. Queued tasks still run,
   * unless `force` (they reject with ERR_POOL_CLOSED). After `closeTimeout` ms the pool is
   * destroyed instead.
   */
  close(options) {
    let force
    try {
      force = check.bool(check.object(options).force, 'options.force')
    } catch (err) {
      return Promise.reject(asArgError(err))
    }
    if (force && this.#native !== null) this.#native.cancelQueued()
    const closed = this.#stop('close')
    if (this.#closeTimeout === Infinity || this.#native === null) return closed
    let timer
    const timedOut = new Promise((resolve) => {
      timer = longTimeout(resolve, this.#closeTimeout)
    }).then(() => this.#stop('destroy'))
    return Promise.race([closed, timedOut]).finally(() => timer.clear())
  }

  /** Stop accepting tasks, reject queued and running ones with ERR_POOL_CLOSED, stop the threads. */
  destroy() {
    return this.#stop('destroy')
  }

  #stop(how) {
    if (this.#state === 'open') this.#state = 'closing'
    if (this.#native === null) return this.#closed(Promise.resolve())
    const stopped = how === 'destroy' ? this.#native.destroy() : (this.#stopped ??= this.#native.close())
    return this.#closed(stopped.then(() => this.#terminateWorkers()))
  }

  // 'close' is emitted once, when the pool has stopped (as piscina does).
  #closed(stopped) {
    return stopped.then(() => {
      if (this.#state !== 'closed') {
        this.#state = 'closed'
        this.emit('close')
      }
    })
  }

  async #terminateWorkers() {
    const workers = this.#js.workers.splice(0).filter(Boolean)
    await Promise.all(workers.map(({ worker }) => worker.terminate()))
  }

  // Requests from the pool threads reach the private method through this module-level function
  // (see workerEventHandler), not through a public static.
  static {
    workerEvent = (pool, terminate, slot, generation) => pool.#workerEvent(terminate, slot, generation)
  }

  #workerEvent(terminate, slot, generation) {
    const current = this.#js.workers[slot]
    if (terminate) {
      if (current?.generation === generation) current.worker.terminate()
      return
    }
    this.#spawn(slot, generation)
  }

  #spawn(slot, generation) {
    const js = this.#js
    const poolId = this.#native.jsPoolId
    const { port1, port2 } = new MessageChannel()
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
          nice: this.#nice,
          port: port2,
          workerData: js.workerData,
        },
        transferList: [port2],
      })
    } catch (err) {
      port1.close()
      native.jsWorkerExited(poolId, slot, generation, `cannot start a worker: ${err.message}`)
      return
    }
    // The worker's listeners reach the pool through a WeakRef: a running worker must not keep
    // a forgotten pool from being collected.
    const ref = new WeakRef(this)
    const record = { worker, generation, error: null, port: port1, open: true, moved: new Map() }
    port1.on('message', (msg) => ref.deref()?.[kWorkerPort](record, msg))
    if (this.#talk.size === 0) port1.unref()
    const { threadId } = worker
    const byThread = this.#byThread
    byThread.set(threadId, record)
    const info = { threadId, slot }
    js.workers[slot] = record
    this.#liveWorkers++
    worker.on('message', (msg) => ref.deref()?.emit('message', msg))
    worker.on('error', (err) => {
      record.error = err
    })
    worker.on('exit', (code) => {
      // Every result the worker reported settles now (its wake-up of this thread may not have
      // been handled yet), so the moved ones are taken from the record this turn. What the
      // worker posted last (progress values, moved results the pool has yet to take) is read
      // before its port closes; the moved buffers no result took are let go after this turn.
      ref.deref()?.[kDeliver]()
      for (let m; (m = receiveMessageOnPort(port1)) !== undefined;) ref.deref()?.[kWorkerPort](record, m.message)
      record.open = false
      port1.close()
      setImmediate(() => {
        if (byThread.get(threadId) === record) byThread.delete(threadId)
      })
      if (js.workers[slot] === record) js.workers[slot] = null
      const why = record.error
        ? `the worker died: ${record.error.message ?? record.error}`
        : `the worker exited with code ${code}`
      const outcome = native.jsWorkerExited(poolId, slot, generation, why)
      ref.deref()?.[kWorkerExited](record, outcome, info)
    })
    // Idle workers must not keep the process alive; running tasks do (through the pool). After
    // the listeners: a 'message' listener refs the worker again.
    worker.unref()
    this.emit('workerCreate', info)
  }

  [kDeliver]() {
    this.#native?.deliver()
  }

  [kWorkerPort](record, msg) {
    this.#onWorkerPort(record, msg)
  }

  [kWorkerExited](record, outcome, info) {
    this.#liveWorkers--
    // Progress values still expected from this worker will not come.
    for (const talk of this.#talk.values()) talk.waiting?.()
    // A worker's failure that no task's rejection reports.
    if (record.error && outcome === native.WorkerExit.OutsideTask && this.listenerCount('error') > 0) {
      this.emit('error', record.error)
    }
    this.emit('workerDestroy', info)
  }
}

// The native pool holds its handler strongly; a WeakRef keeps that from pinning the Pool, so a
// forgotten pool can be collected (its threads then stop and its workers exit).
function workerEventHandler(pool) {
  const ref = new WeakRef(pool)
  return (terminate, slot, generation) => {
    const p = ref.deref()
    if (p !== undefined) workerEvent(p, terminate, slot, generation)
  }
}

/** The task's bytes, or null when the data holds shared memory (then handed over by postMessage). */
function serialize(data, buffers) {
  try {
    return serializeTask(data, buffers)
  } catch (err) {
    if (err === NEEDS_POST_MESSAGE) return null
    throw invalidArg(`the task data cannot be cloned: ${err.message}`)
  }
}

// Data handed over by postMessage (structured clone: shared memory stays shared, MessagePorts
// and other transferables move). Posted now, so that the caller's transferables are detached at
// once and bad data is a rejection of run(); the port holding it goes to the worker later.
function postedData(data, list) {
  const { port1, port2 } = new MessageChannel()
  try {
    port1.postMessage(data, list ?? [])
  } catch (err) {
    port2.close()
    throw invalidArg(`the task data cannot be cloned: ${err.message}`)
  } finally {
    port1.close()
  }
  return port2
}

function taskFilename(filename, what) {
  let file = filename
  if (file instanceof URL) file = file.href
  if (typeof file !== 'string' || file === '' || (!file.startsWith('file:') && !path.isAbsolute(file))) {
    throw invalidArg(`${what} must be an absolute path or file: URL, got ${describe(filename)}`)
  }
  return file
}

function jsOptions(options, threads) {
  const { filename, resourceLimits, env, execArgv, workerData } = options
  const file = filename === undefined || filename === null ? null : taskFilename(filename, 'options.filename')
  const minThreads = check.int(options.minThreads, 'options.minThreads', {
    max: threads,
    default: Math.min(1, threads),
  })
  // Grace periods: 0 = at once, Infinity = never.
  const idleTimeout = check.duration(options.idleTimeout, 'options.idleTimeout', { default: 10_000 })
  const abortGrace = check.duration(options.abortGrace, 'options.abortGrace', { default: 1000 })
  if (resourceLimits !== undefined) check.object(resourceLimits, 'options.resourceLimits')
  check.strings(execArgv, 'options.execArgv')
  if (env !== undefined && (env === null || (typeof env !== 'object' && typeof env !== 'symbol'))) {
    throw invalidArg(`options.env must be an object or worker_threads.SHARE_ENV, got ${describe(env)}`)
  }
  if (workerData !== undefined) {
    try {
      structuredClone(workerData)
    } catch (err) {
      throw invalidArg(`options.workerData cannot be cloned: ${err.message}`)
    }
  }
  const workerOptions = {}
  if (resourceLimits !== undefined) workerOptions.resourceLimits = resourceLimits
  if (env !== undefined) workerOptions.env = env
  if (execArgv !== undefined) workerOptions.execArgv = execArgv
  return {
    filename: file,
    minThreads,
    idleTimeout,
    abortGrace,
    workerOptions,
    workerData,
    workers: [],
  }
}

let defaultPoolInstance = null
function getDefaultPool() {
  return (defaultPoolInstance ??= new Pool())
}

const closedError = () => new CorepoolError('ERR_POOL_CLOSED', 'The pool is closed')

/**
 * Submits one native task with a single input; see `submitNativeArgs`.
 * @template T
 * @param {(np: NativePool, arg: T, ...task: TaskArgs) => Promise<any>} fn
 * @param {T} arg
 * @param {unknown} options
 * @returns {Promise<any>}
 */
function submitNative(fn, arg, options) {
  return submitNativeArgs(fn, [arg], options)
}

/**
 * Submits one native task: `fn(nativePool, ...args, priority, timeoutMs, cancelKey)` returns its
 * promise. `ownPool` (for `pool.run`) overrides `options.pool`. Never throws: every failure is a
 * rejected promise.
 * @template {[] | unknown[]} A
 * @param {(np: NativePool, ...rest: [...A, ...TaskArgs]) => Promise<any>} fn the native binding
 *   (types/native.d.ts: a drift between it and the arguments given fails `tsc` on its caller)
 * @param {A} args
 * @param {unknown} options
 * @param {Pool} [ownPool]
 * @returns {Promise<any>}
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
  if (signal === undefined) {
    const promise = call(fn, np, args, o, 0)
    pool[kSubmitted](promise)
    return promise
  }
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
  pool[kSubmitted](promise)
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
  // The native task options: priority, timeout (ms) and cancel key, undefined when not given.
  try {
    return fn(np, ...args, o.priority, o.timeout === Infinity ? undefined : o.timeout, key === 0 ? undefined : key)
  } catch (err) {
    return Promise.reject(fromNative(err))
  }
}

module.exports = { Pool, getDefaultPool, submitNative, submitNativeArgs, kNative, STATS_COUNTERS }
