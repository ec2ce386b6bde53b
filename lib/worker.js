'use strict'
// Entry point of the worker_threads that run a pool's JS tasks. Tasks arrive through the
// native inbox (no postMessage); results go back through `jsTaskDone`.
const { workerData } = require('node:worker_threads')
const { pathToFileURL } = require('node:url')
const native = require('./native')
const { encodeResult, encodeThrown } = require('./jscodec')
const { CorepoolError } = require('./errors')

const { poolId, slot, generation, filename, idleTimeout, minThreads } = workerData
const controllers = new Map()
let idleTimer = null
let taskModule

function resolveTask(name) {
  const mod = taskModule
  if (name !== undefined && name !== null) {
    const fn = mod[name] ?? mod.default?.[name]
    if (typeof fn !== 'function') throw new TypeError(`the task module ${filename} has no function export "${name}"`)
    return fn
  }
  for (const candidate of [mod.default, mod.default?.default]) {
    if (typeof candidate === 'function') return candidate
  }
  throw new TypeError(`the task module ${filename} has no default export function`)
}

async function runTask(seq, payload, name) {
  const controller = new AbortController()
  controllers.set(seq, controller)
  let result
  try {
    const fn = resolveTask(name)
    const data = require('node:v8').deserialize(payload)
    result = encodeResult(await fn(data, { signal: controller.signal }))
  } catch (err) {
    result = encodeThrown(err)
  }
  controllers.delete(seq)
  native.jsTaskDone(poolId, slot, seq, result)
  scheduleRetire()
}

function scheduleRetire() {
  if (slot < minThreads || !Number.isFinite(idleTimeout) || controllers.size > 0) return
  clearTimeout(idleTimer)
  idleTimer = setTimeout(() => {
    if (controllers.size === 0 && native.jsWorkerRetire(poolId, slot, generation)) process.exit(0)
  }, idleTimeout)
}

const RUN = 0
const ABORT = 1

function onMessage(kind, seq, payload, name) {
  if (kind === ABORT) {
    controllers.get(seq)?.abort(new CorepoolError('ERR_ABORTED', 'The task was aborted'))
    return
  }
  if (kind !== RUN) {
    // The pool was garbage-collected without close().
    process.exit(0)
  }
  clearTimeout(idleTimer)
  runTask(seq, payload, name)
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
