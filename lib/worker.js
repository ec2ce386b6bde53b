'use strict'
// Entry point of the worker_threads that run a pool's JS tasks. A task arrives through the
// native inbox (no postMessage) when the worker is idle; reporting a result with `jsTaskDone`
// returns the next queued task directly, so a busy worker runs tasks back to back without
// waiting for any message.
const { workerData } = require('node:worker_threads')
const { pathToFileURL } = require('node:url')
const native = require('./native')
const { encodeResult, encodeThrown, decodeTask } = require('./jscodec')
const { CorepoolError } = require('./errors')

const { poolId, slot, generation, filename, idleTimeout, minThreads } = workerData
// A worker running only synchronous tasks lets its event loop turn at least this often (ms).
const YIELD_EVERY = 10
let current = null // the running task's context
let idleTimer = null
let taskModule
const exportCache = new Map()

function resolveTask(name) {
  const cached = exportCache.get(name)
  if (cached !== undefined) return cached
  const mod = taskModule
  let fn
  if (name !== null) {
    fn = mod[name] ?? mod.default?.[name]
    if (typeof fn !== 'function') throw new TypeError(`the task module ${filename} has no function export "${name}"`)
  } else {
    fn = [mod.default, mod.default?.default].find((candidate) => typeof candidate === 'function')
    if (fn === undefined) throw new TypeError(`the task module ${filename} has no default export function`)
  }
  exportCache.set(name, fn)
  return fn
}

/** The second argument of a task function; its AbortSignal is made on first use. */
class TaskContext {
  #controller = null
  #reason = undefined
  #aborted = false

  get signal() {
    if (this.#controller === null) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  abort(reason) {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
  }
}

const isThenable = (v) =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function'

// Runs `task` ([seq, payload, name, buffers]) and the tasks chained after it. Synchronous
// results are reported at once; an async task continues the chain when it settles.
function run(task, context = new TaskContext()) {
  const started = Date.now()
  for (;;) {
    const [seq, payload, name, buffers] = task
    current = { seq, context }
    let result
    try {
      const value = resolveTask(name)(decodeTask(payload, buffers), context)
      if (isThenable(value)) {
        Promise.resolve(value).then(
          (v) => report(seq, encodeResult(v)),
          (err) => report(seq, encodeThrown(err)),
        )
        return
      }
      result = encodeResult(value)
    } catch (err) {
      result = encodeThrown(err)
    }
    task = done(seq, result)
    if (task === null) return
    context = new TaskContext()
    if (Date.now() - started >= YIELD_EVERY) {
      // Still this worker's task meanwhile: an abort for it must find it.
      current = { seq: task[0], context }
      setImmediate(run, task, context)
      return
    }
  }
}

/** Reports task `seq`; returns the next task for this worker, or null (it is idle then). */
function done(seq, result) {
  if (current?.seq === seq) current = null
  const next = native.jsTaskDone(poolId, slot, seq, result)
  if (next === null) scheduleRetire()
  return next
}

function report(seq, result) {
  const next = done(seq, result)
  if (next !== null) run(next)
}

function scheduleRetire() {
  if (slot < minThreads || !Number.isFinite(idleTimeout) || current !== null) return
  clearTimeout(idleTimer)
  idleTimer = setTimeout(() => {
    if (current === null && native.jsWorkerRetire(poolId, slot, generation)) process.exit(0)
  }, idleTimeout)
}

const RUN = 0
const ABORT = 1

function onMessage(kind, value) {
  if (kind === ABORT) {
    if (current?.seq === value) current.context.abort(new CorepoolError('ERR_ABORTED', 'The task was aborted'))
    return
  }
  if (kind !== RUN) {
    // The pool was garbage-collected without close().
    process.exit(0)
  }
  clearTimeout(idleTimer)
  run(value)
}

async function main() {
  const url = filename.startsWith('file:') ? filename : pathToFileURL(filename).href
  try {
    taskModule = await import(url)
  } catch (err) {
    // Uncaught: the worker exits and the waiting task rejects with ERR_WORKER_CRASHED.
    throw new Error(`cannot load the task module ${filename}: ${err?.message ?? err}`, { cause: err })
  }
  if (!native.jsWorkerAttach(poolId, slot, generation, onMessage)) process.exit(0)
}

main()
