// @ts-check
'use strict'
// Entry point of the worker_threads that run a pool's JS tasks. A task arrives through the
// native inbox (no postMessage) when the worker is idle; reporting a result with `jsTaskDone`
// returns the next queued task directly, so a busy worker runs tasks back to back without
// waiting for any message.
//
// A task that talks to the submitting thread (`tag` not null) uses this worker's private port to
// it: progress values go out on it, and data that must be structured-cloned by `postMessage`
// (shared memory, MessagePorts; `relayed`) is fetched over it.
const { workerData: boot, receiveMessageOnPort, threadId } = require('node:worker_threads')
const { pathToFileURL } = require('node:url')
const native = require('./native')
const { encodeResult, encodeThrown, decodeTask, movedBuffer, encodeMoved } = require('./jscodec')
const { CorepoolError } = require('./errors')
const { kWorkerState } = require('./state')
const { longTimeout } = require('./timers')

const { poolId, slot, generation, filename, idleTimeout, minThreads, nice, port } = boot
// Seen by `require('corepool')` in task modules: `isWorkerThread`, `workerData`.
globalThis[kWorkerState] = { workerData: boot.workerData, moved: new WeakSet() }
const { moved } = globalThis[kWorkerState]
if (nice > 0) native.jsWorkerNice(nice)

// A worker running only synchronous tasks lets its event loop turn at least this often (ms).
const YIELD_EVERY = 10
let current = null // the running task's context
/**
 * Throws the abort reason of a task whose abort arrived before its function was called (while
 * its module, its data or an event-loop turn was awaited): the function is not called then, as
 * a task that only listens for 'abort' would never see an event that already fired.
 * @type {(context: TaskContext) => void}
 */
let abortedBefore
let idleTimer = null
const modules = new Map() // filename -> Promise of the module's namespace, or the namespace
const exportCache = new Map() // filename -> Map(name -> function)
const relayWaiters = new Map() // tag -> resolve(port | null)

port.on('message', (msg) => {
  const resolve = relayWaiters.get(msg.tag)
  if (resolve !== undefined) {
    relayWaiters.delete(msg.tag)
    resolve(msg.port)
  }
})
port.unref()

const toUrl = (file) => (file.startsWith('file:') ? file : pathToFileURL(file).href)

/** Loads a task module (once); a module whose default export is a promise is awaited. */
function loadModule(file) {
  let entry = modules.get(file)
  if (entry === undefined) {
    entry = import(toUrl(file)).then(
      async (mod) => {
        const settled = isThenable(mod.default) ? { ...mod, default: await mod.default } : mod
        modules.set(file, settled)
        return settled
      },
      (err) => {
        modules.delete(file)
        throw new Error(`cannot load the task module ${file}: ${err?.message ?? err}`, { cause: err })
      },
    )
    modules.set(file, entry)
  }
  return entry
}

function loaded(file) {
  const entry = modules.get(file)
  return entry !== undefined && !(entry instanceof Promise)
}

// A run() whose name (or module) names no function: a bad argument, with its documented code.
const noTask = (message) => Object.assign(new TypeError(message), { code: 'ERR_INVALID_ARG' })

function resolveTask(file, name) {
  let byName = exportCache.get(file)
  if (byName === undefined) exportCache.set(file, (byName = new Map()))
  const cached = byName.get(name)
  if (cached !== undefined) return cached
  const mod = modules.get(file)
  let fn
  if (name !== null) {
    fn = mod[name] ?? mod.default?.[name]
    if (typeof fn !== 'function') throw noTask(`the task module ${file} has no function export "${name}"`)
  } else {
    fn = [mod.default, mod.default?.default].find((candidate) => typeof candidate === 'function')
    if (fn === undefined) throw noTask(`the task module ${file} has no default export function`)
  }
  byName.set(name, fn)
  return fn
}

/** The second argument of a task function; its AbortSignal is made on first use. */
class TaskContext {
  #controller = null
  #reason = undefined
  #aborted = false
  /** Progress values posted so far (the submitting thread waits for all before the result). */
  sent = 0

  /** `progress`: the caller passed a progress callback to run() (task `tag`). */
  constructor(tag, progress) {
    // Present only then, so a task can tell whether anyone listens.
    if (progress) this.progress = (value) => this.#progress(tag, value)
  }

  get signal() {
    if (this.#controller === null) {
      this.#controller = new AbortController()
      if (this.#aborted) this.#controller.abort(this.#reason)
    }
    return this.#controller.signal
  }

  // Sends `value` (structured-cloned) to the `progress` callback given to `run()`; values
  // arrive in order, all before the task's result.
  #progress(tag, value) {
    port.postMessage({ t: 'progress', tag, value })
    this.sent++
  }

  abort(reason) {
    if (this.#aborted) return
    this.#aborted = true
    this.#reason = reason
    this.#controller?.abort(reason)
  }

  static {
    // Not part of what a task sees: the worker checks it before it calls the task function.
    abortedBefore = (context) => {
      if (context.#aborted) throw context.#reason
    }
  }
}

// A result value passed to `move()` is handed over without serializing its bytes: its buffer
// is transferred on the private port (numbered messages), and the pool's thread takes it from
// there when the result arrives, which is always after the message (see lib/jscodec.js).
let postedCount = 0
function postMoved(buffer) {
  try {
    port.postMessage({ t: 'moved', n: postedCount + 1, buffer }, [buffer])
  } catch {
    return null // not transferable (a Buffer's shared pool, for one): serialized instead
  }
  return ++postedCount
}

function encodeValue(value, sent) {
  const buffer = movedBuffer(value, moved)
  return buffer === null ? encodeResult(value, sent) : encodeMoved(value, buffer, sent, threadId, postMoved)
}

const isThenable = (v) =>
  v !== null && (typeof v === 'object' || typeof v === 'function') && typeof v.then === 'function'

// Output the task wrote must reach the submitting thread's stdout/stderr before its result
// does: a caller that exits right after the result would lose it otherwise.
const pendingOutput = () => process.stdout.writableLength > 0 || process.stderr.writableLength > 0

function flushOutput() {
  const waits = []
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.writableLength > 0) waits.push(new Promise((resolve) => stream.write('', resolve)))
  }
  return Promise.all(waits)
}

/** Fetches a relayed task's data from the submitting thread (see the top of this file). */
function relayedData(tag) {
  return new Promise((resolve, reject) => {
    relayWaiters.set(tag, (dataPort) => {
      const received = dataPort && receiveMessageOnPort(dataPort)
      dataPort?.close()
      if (received) resolve(received.message)
      else reject(new CorepoolError('ERR_ABORTED', 'The task was settled before it started'))
    })
    port.postMessage({ t: 'data', tag })
  })
}

// Runs `task` ([seq, payload, name, buffers, filename, tag, relayed, progress]) and the tasks chained
// after it. Synchronous results are reported at once; an async task (or one whose module,
// data or output needs waiting for) continues the chain when it settles.
function run(task, carried = null) {
  const started = Date.now()
  for (;;) {
    const [seq, payload, name, buffers, file, tag, relayed, progress] = task
    const context = carried ?? new TaskContext(tag, progress)
    carried = null
    current = { seq, context }
    const moduleFile = file ?? filename
    let result
    let ok = true
    try {
      if (relayed || !loaded(moduleFile)) {
        return void runAsync(seq, context, moduleFile, name, relayed ? relayedData(tag) : decodeTask(payload, buffers))
      }
      abortedBefore(context)
      const value = resolveTask(moduleFile, name)(decodeTask(payload, buffers), context)
      if (isThenable(value)) {
        Promise.resolve(value).then(
          (v) => report(seq, encodeValue(v, context.sent), true),
          (err) => report(seq, encodeThrown(err, context.sent), false),
        )
        return
      }
      result = encodeValue(value, context.sent)
    } catch (err) {
      result = encodeThrown(err, context.sent)
      ok = false
    }
    if (pendingOutput()) {
      // A copy: the bytes of a small result are reused by the next encoding.
      const bytes = Buffer.from(result)
      flushOutput().then(() => report(seq, bytes, ok))
      return
    }
    task = done(seq, result, ok)
    if (task === null) return
    if (Date.now() - started >= YIELD_EVERY) {
      // Still this worker's task meanwhile: an abort for it must find it.
      const context = new TaskContext(task[5], task[7])
      current = { seq: task[0], context }
      setImmediate(run, task, context)
      return
    }
  }
}

async function runAsync(seq, context, moduleFile, name, data) {
  let result
  let ok = true
  try {
    await loadModule(moduleFile)
    const input = await data
    abortedBefore(context)
    result = encodeValue(await resolveTask(moduleFile, name)(input, context), context.sent)
  } catch (err) {
    result = encodeThrown(err, context.sent)
    ok = false
  }
  report(seq, result, ok)
}

/** Reports task `seq`; returns the next task for this worker, or null (it is idle then). */
function done(seq, result, ok) {
  if (current?.seq === seq) current = null
  const next = native.jsTaskDone(poolId, slot, seq, result, ok)
  if (next === null) scheduleRetire()
  return next
}

function report(seq, result, ok) {
  if (pendingOutput()) {
    const bytes = Buffer.from(result)
    flushOutput().then(() => report(seq, bytes, ok))
    return
  }
  const next = done(seq, result, ok)
  if (next !== null) run(next)
}

function scheduleRetire() {
  if (slot < minThreads || !Number.isFinite(idleTimeout) || current !== null) return
  idleTimer?.clear()
  // Any idleTimeout works as written (setTimeout would fire at once past 2^31 - 1 ms).
  idleTimer = longTimeout(() => {
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
  idleTimer?.clear()
  run(value)
}

async function main() {
  // Uncaught on failure: the worker exits and the waiting task rejects with ERR_WORKER_CRASHED.
  if (filename !== null) await loadModule(filename)
  if (!native.jsWorkerAttach(poolId, slot, generation, onMessage)) process.exit(0)
}

main()
