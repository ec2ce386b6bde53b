// Pool events, talking to a running task (progress, MessagePorts), workerData,
// isWorkerThread, per-task modules, async module start-up, close({ force }) and closeTimeout.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { once, EventEmitter } from 'node:events'
import { MessageChannel } from 'node:worker_threads'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { Pool, isWorkerThread, workerData, move } from 'corepool'

const here = path.dirname(fileURLToPath(import.meta.url))
const habits = path.join(here, 'fixtures', 'habits.mjs')
const esmTask = path.join(here, 'fixtures', 'task.mjs')

test('a pool is an EventEmitter: drain after a burst, needsDrain flips at maxQueue', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1, maxQueue: 3 })
  assert.ok(pool instanceof EventEmitter)
  const events = []
  pool.on('needsDrain', () => events.push(['needsDrain', pool.needsDrain]))
  pool.on('drain', () => events.push(['drain', pool.needsDrain]))
  assert.equal(pool.needsDrain, false)
  const burst = [1, 2, 3].map((n) => pool.run({ n }))
  assert.equal(pool.needsDrain, false)
  burst.push(pool.run({ n: 4 }))
  // One running plus three queued fill threads + maxQueue.
  assert.equal(pool.needsDrain, true)
  assert.deepEqual(await Promise.all(burst), [2, 4, 6, 8])
  assert.equal(pool.needsDrain, false)
  assert.deepEqual(events, [
    ['needsDrain', true],
    ['drain', false],
  ])
  await pool.close()
})

test('an idleTimeout past 2^31 ms works as written: the idle worker stays', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1, minThreads: 0, idleTimeout: 2 ** 31 + 1000 })
  let destroyed = 0
  pool.on('workerDestroy', () => destroyed++)
  assert.equal(await pool.run({ n: 1 }), 2)
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(destroyed, 0, 'the worker retired long before its idleTimeout')
  await pool.close()
})

test("'message' carries what a worker posts on parentPort; workerCreate/workerDestroy", async () => {
  const pool = new Pool({ filename: habits, threads: 1 })
  const created = once(pool, 'workerCreate')
  const message = once(pool, 'message')
  assert.equal(await pool.run({ value: { hello: 'pool' } }, { name: 'post' }), 'posted')
  assert.deepEqual(await message, [{ hello: 'pool' }])
  const [info] = await created
  assert.equal(typeof info.threadId, 'number')
  const destroyed = once(pool, 'workerDestroy')
  await pool.close()
  assert.deepEqual(await destroyed, [info])
})

test("'error' reports a worker failure outside any task", async () => {
  const pool = new Pool({ filename: habits, threads: 1 })
  const error = once(pool, 'error')
  // The task ends at once; its worker throws afterwards, outside any task. (An idle worker does
  // not keep the process alive: this test does meanwhile.)
  const alive = setInterval(() => {}, 1000)
  assert.equal(await pool.run({ ms: 20 }, { name: 'throwLater' }), 'returned')
  const [err] = await error
  clearInterval(alive)
  assert.match(err.message, /outside any task/)
  // The pool goes on with a new worker.
  assert.equal(await pool.run({ lines: 0 }, { name: 'log' }), 0)
  await pool.close()
})

test('progress: 1 000 values arrive in order, all before the result', async () => {
  const pool = new Pool({ filename: habits, threads: 2 })
  for (const name of ['progress', 'asyncProgress']) {
    const seen = []
    const result = await pool.run({ n: 1000 }, { name, progress: (value) => seen.push(value) })
    assert.equal(result, 'done')
    assert.equal(seen.length, 1000, name)
    seen.forEach((value, i) => assert.deepEqual(value, name === 'progress' ? { i } : i))
  }
  // Without a callback, ctx.progress is absent (a task can tell whether anyone listens).
  assert.equal(await pool.run(null, { name: 'hasProgress' }), false)
  assert.equal(await pool.run(null, { name: 'hasProgress', progress: () => {} }), true)
  // A throwing callback rejects the run() with its error, after the task.
  await assert.rejects(
    pool.run(
      { n: 3 },
      {
        name: 'progress',
        progress: () => {
          throw new Error('from the callback')
        },
      },
    ),
    /from the callback/,
  )
  await assert.rejects(pool.run(null, { progress: 1 }), { code: 'ERR_INVALID_ARG' })
  await pool.close()
})

test('a MessagePort in transferList reaches the task', async () => {
  const pool = new Pool({ filename: habits, threads: 1 })
  const { port1, port2 } = new MessageChannel()
  const heard = once(port1, 'message')
  assert.equal(await pool.run({ port: port2 }, { name: 'talk', transferList: [port2] }), 'talked')
  assert.deepEqual(await heard, ['hello from the task'])
  port1.close()
  // Not in transferList: a DataCloneError, as with postMessage.
  const other = new MessageChannel()
  await assert.rejects(pool.run({ port: other.port2 }, { name: 'talk' }), { code: 'ERR_INVALID_ARG' })
  other.port1.close()
  other.port2.close()
  await pool.close()
})

test('workerData and isWorkerThread in the task module; false/undefined outside', async () => {
  assert.equal(isWorkerThread, false)
  assert.equal(workerData, undefined)
  const shared = new Int32Array(new SharedArrayBuffer(4))
  const pool = new Pool({ filename: habits, threads: 1, workerData: { name: 'ABC', shared } })
  const info = await pool.run(null, { name: 'info' })
  assert.equal(info.isWorkerThread, true)
  assert.equal(info.workerData.name, 'ABC')
  await pool.close()
})

test('per-task filename, and a module whose export is a promise of the handler', async () => {
  const asyncStart = path.join(here, 'fixtures', 'async-start.mjs')
  const pool = new Pool({ filename: esmTask, threads: 1 })
  assert.equal(await pool.run({ n: 2 }), 4)
  assert.equal(await pool.run('x', { filename: asyncStart }), 'started then ran x')
  assert.equal(await pool.run('y', { filename: pathToFileURL(asyncStart) }), 'started then ran y')
  assert.equal(await pool.run({ n: 3 }), 6)
  await assert.rejects(pool.run(1, { filename: 'relative.mjs' }), { code: 'ERR_INVALID_ARG' })
  await pool.close()
  // A pool without a module of its own runs per-task modules.
  const bare = new Pool({ threads: 1, minThreads: 0 })
  assert.equal(await bare.run('z', { filename: asyncStart }), 'started then ran z')
  await assert.rejects(bare.run('z'), { code: 'ERR_INVALID_ARG' })
  await bare.close()
})

test('close({ force }) rejects queued tasks and lets running ones finish; closeTimeout', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  const running = pool.run({ ms: 100 }, { name: 'sleepy' })
  const queued = [pool.run({ n: 1 }), pool.run({ n: 2 })].map((p) => p.catch((err) => err.code))
  // Until a pool thread picked the first task (a loaded machine may take a while).
  for (let i = 0; i < 2000 && pool.stats.running === 0; i++) await new Promise((r) => setTimeout(r, 5))
  await pool.close({ force: true })
  assert.equal(await running, 'slept')
  assert.deepEqual(await Promise.all(queued), ['ERR_POOL_CLOSED', 'ERR_POOL_CLOSED'])
  await assert.rejects(pool.close({ force: 1 }), { code: 'ERR_INVALID_ARG' })

  const slow = new Pool({ filename: esmTask, threads: 1, closeTimeout: 50 })
  const stuck = slow.run({ ms: 60_000 }, { name: 'sleepy' }).catch((err) => err.code)
  await new Promise((resolve) => setTimeout(resolve, 20))
  await slow.close()
  assert.equal(await stuck, 'ERR_POOL_CLOSED')
})

test("move(): large results reach the caller without a copy: the worker's buffer is transferred", async () => {
  const pool = new Pool({ filename: habits, threads: 1 })
  const MiB = 1024 * 1024
  const buffer = await pool.run({ kind: 'buffer', bytes: MiB }, { name: 'big' })
  assert.ok(Buffer.isBuffer(buffer))
  assert.equal(buffer.length, MiB)
  assert.ok(buffer.every((b) => b === 7))
  // The worker's own memory, moved as postMessage moves it: the worker's buffer is detached.
  assert.equal(buffer.buffer.byteLength, MiB)
  assert.equal(await pool.run(null, { name: 'lastMovedLength' }), 0)
  const floats = await pool.run({ kind: 'float64', bytes: MiB }, { name: 'big' })
  assert.ok(floats instanceof Float64Array)
  assert.equal(floats.length, MiB / 8)
  assert.ok(floats.every((x) => x === 1.5))
  const ab = await pool.run({ kind: 'arraybuffer', bytes: MiB }, { name: 'big' })
  assert.ok(ab instanceof ArrayBuffer)
  assert.equal(ab.byteLength, MiB)
  assert.ok(new Uint8Array(ab).every((b) => b === 9))
  // Only the returned value itself is moved; nested, it is serialized as usual.
  const nested = await pool.run({ kind: 'nested', bytes: 1000 }, { name: 'big' })
  assert.equal(nested.data.length, 1000)
  // Small results work too, and a Buffer over Node's shared pool (which cannot be transferred)
  // is serialized instead.
  assert.equal((await pool.run({ kind: 'buffer', bytes: 10 }, { name: 'big' })).length, 10)
  assert.equal((await pool.run({ kind: 'pooled' }, { name: 'big' })).toString(), 'pooled')
  await pool.close()
  // Outside a pool's worker, move() returns its argument.
  const value = new Uint8Array(4)
  assert.equal(move(value), value)
})

test("move(): the result of a worker that exits right after it arrives, though the worker's exit is handled first", async () => {
  const MiB = 1024 * 1024
  const pool = new Pool({ filename: habits, threads: 1, minThreads: 0, idleTimeout: 0 })
  for (let round = 0; round < 3; round++) {
    await pool.run({ kind: 'float64', bytes: 8 }, { name: 'big' }) // the pool's wake-up exists
    // A message handler after the pool's wake-up in the event loop's order blocks it while the
    // worker reports its result and exits: the exit is handled (check phase) before the
    // wake-up that delivers the result (next poll phase).
    const { port1, port2 } = new MessageChannel()
    port1.on('message', () => {
      const end = Date.now() + 300
      while (Date.now() < end);
    })
    const result = pool.run({ kind: 'buffer', bytes: MiB }, { name: 'big' })
    port2.postMessage('block')
    const bytes = await result.finally(() => port1.close())
    assert.ok(bytes.length === MiB && bytes[0] === 7 && bytes[MiB - 1] === 7, `round ${round}`)
  }
  await pool.close()
})

test('move(): results of tasks that settled first are let go, results of exiting workers arrive, progress comes first', async () => {
  const MiB = 1024 * 1024
  // abortGrace: the worker finishes the task that timed out instead of being stopped.
  const pool = new Pool({ filename: habits, threads: 1, abortGrace: 5_000 })
  // Timed out while the worker still runs it: its moved buffer is posted but never delivered;
  // the next moved results are their own.
  const timedOut = pool.run({ kind: 'slowly', bytes: MiB, ms: 100 }, { name: 'big', timeout: 20 })
  await assert.rejects(timedOut, { code: 'ERR_TASK_TIMEOUT' })
  for (let i = 0; i < 3; i++) {
    const ab = await pool.run({ kind: 'arraybuffer', bytes: 1000 + i }, { name: 'big' })
    assert.equal(ab.byteLength, 1000 + i)
  }
  const seen = []
  const slow = await pool.run({ kind: 'slowly', bytes: MiB, ms: 10 }, { name: 'big', progress: (v) => seen.push(v) })
  assert.deepEqual(seen, [0, 1, 2])
  assert.ok(slow.length === MiB && slow[0] === 5 && slow[MiB - 1] === 5)
  await pool.close()
  // A worker that exits as soon as it is idle: its last moved result still arrives.
  const brief = new Pool({ filename: habits, threads: 2, minThreads: 0, idleTimeout: 0 })
  let exits = 0
  brief.on('workerDestroy', () => exits++)
  for (let i = 0; i < 20; i++) {
    const [a, b] = await Promise.all([
      brief.run({ kind: 'buffer', bytes: MiB }, { name: 'big' }),
      brief.run({ kind: 'float64', bytes: 8 * (i + 1) }, { name: 'big' }),
    ])
    assert.ok(a.length === MiB && a[0] === 7)
    assert.ok(b.length === i + 1 && b[i] === 1.5)
  }
  await brief.close()
  assert.ok(exits > 0, 'workers exited between rounds')
})
