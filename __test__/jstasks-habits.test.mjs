// What piscina users rely on when they move to corepool's JS tasks: shared memory, output,
// niceIncrement, option checks, using every worker, failure counts, environment teardown, a
// cold start with the main thread blocked, events, progress, MessagePorts and workerData.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { once } from 'node:events'
import { MessageChannel } from 'node:worker_threads'
import { fileURLToPath } from 'node:url'

import { Pool, SharedCounters } from 'corepool'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
const habits = path.join(here, 'fixtures', 'habits.mjs')
const esmTask = path.join(here, 'fixtures', 'task.mjs')

const node = (code, args = []) =>
  spawnSync(process.execPath, [...args, '--input-type=module', '-e', code], {
    cwd: root,
    encoding: 'utf8',
    timeout: 120_000,
  })

test('a typed array over a SharedArrayBuffer stays shared: 4 tasks x 1e6 Atomics.add = 4e6', async () => {
  const pool = new Pool({ filename: habits, threads: 4 })
  const counter = new Int32Array(new SharedArrayBuffer(4))
  const shared = await Promise.all(
    Array.from({ length: 4 }, () => pool.run({ counter, n: 1_000_000 }, { name: 'count' })),
  )
  assert.deepEqual(shared, [true, true, true, true])
  assert.equal(Atomics.load(counter, 0), 4_000_000)
  // A bare SharedArrayBuffer is accepted and shared too.
  const buffer = new SharedArrayBuffer(4)
  assert.equal(await pool.run(buffer, { name: 'sab' }), true)
  assert.equal(new Int32Array(buffer)[0], 7)
  await pool.close()
})

test('Atomics.wait works in a task on memory shared with the caller', async () => {
  const pool = new Pool({ filename: habits, threads: 1 })
  const flag = new Int32Array(new SharedArrayBuffer(8))
  const result = pool.run({ flag }, { name: 'waitOn' })
  // The task says it is about to wait; then the caller wakes it.
  for (let i = 0; i < 6000 && Atomics.load(flag, 1) === 0; i++) {
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
  assert.equal(Atomics.load(flag, 1), 1, "the task sees the caller's memory")
  Atomics.store(flag, 0, 1)
  Atomics.notify(flag, 0)
  assert.ok(['ok', 'not-equal'].includes(await result))
  await pool.close()
})

test("a task's console output is flushed before its result (the caller exits right after)", () => {
  for (let round = 0; round < 5; round++) {
    const r = node(`
      import { Pool } from 'corepool'
      const pool = new Pool({ filename: ${JSON.stringify(habits)}, threads: 1 })
      const n = await pool.run({ lines: 3 }, { name: 'log' })
      process.exit(n === 3 ? 0 : 1)
    `)
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'line 1\nline 2\nline 3\n', `round ${round}`)
  }
})

test('niceIncrement applies to the threads that run JS tasks', async () => {
  const base = await new Pool({ filename: habits, threads: 1 }).run(null, { name: 'nice' })
  const pool = new Pool({ filename: habits, threads: 1, niceIncrement: 5 })
  assert.equal(await pool.run(null, { name: 'nice' }), Math.min(19, base + 5))
  await pool.close()
})

test('JS-task options are checked even without filename', () => {
  for (const options of [
    { minThreads: -1 },
    { idleTimeout: -5 },
    { abortGrace: NaN },
    { resourceLimits: 3 },
    { execArgv: [1] },
    { env: null },
    { closeTimeout: -1 },
    { workerData: () => {} },
  ]) {
    assert.throws(
      () => new Pool(options),
      (err) => err.code === 'ERR_INVALID_ARG',
      JSON.stringify(Object.keys(options)),
    )
  }
})

test('queued tasks never wait while a worker sits idle: each batch of 4 runs on 4 workers', async () => {
  const pool = new Pool({ filename: habits, threads: 4, minThreads: 4 })
  for (let round = 0; round < 20; round++) {
    const ids = await Promise.all(Array.from({ length: 4 }, () => pool.run({ ms: 30 }, { name: 'threadAfter' })))
    assert.equal(new Set(ids).size, 4, `round ${round}: ran on threads ${ids}`)
  }
  await pool.close()
})

test('tasks that throw or reject count as failed, in stats and in the mirrored counter', async () => {
  const counters = new SharedCounters({
    names: ['corepool_tasks_completed_total', 'corepool_tasks_failed_total'],
  })
  const pool = new Pool({ filename: habits, threads: 2, counters })
  await assert.rejects(pool.run(null, { name: 'throws' }), /thrown/)
  await assert.rejects(pool.run(null, { name: 'rejects' }), /rejected/)
  assert.equal(await pool.run({ lines: 0 }, { name: 'log' }), 0)
  const { completed, failed } = pool.stats
  assert.deepEqual({ completed, failed }, { completed: 1, failed: 2 })
  assert.equal(counters.get('corepool_tasks_failed_total'), 2)
  assert.equal(counters.get('corepool_tasks_completed_total'), 1)
  await pool.close()
})

test('a worker_thread that made a pool and is terminated mid-task leaks no thread', () => {
  const r = node(`
    import fs from 'node:fs'
    import { Worker } from 'node:worker_threads'
    const threads = () => fs.readdirSync('/proc/self/task').length
    let n = 0
    async function round() {
      const file = ${JSON.stringify(path.join(os.tmpdir(), `corepool-owner-${process.pid}-`))} + n++
      const w = new Worker(${JSON.stringify(path.join(here, 'fixtures', 'pool-in-worker.cjs'))}, { workerData: file })
      await new Promise((resolve) => w.once('message', resolve))
      await w.terminate()
      fs.rmSync(file)
    }
    await round()
    await new Promise((r) => setTimeout(r, 200))
    const before = threads()
    for (let i = 0; i < 10; i++) await round()
    let after = threads()
    for (let i = 0; i < 400 && after > before + 2; i++) {
      await new Promise((r) => setTimeout(r, 50))
      after = threads()
    }
    console.log(JSON.stringify({ before, after }))
  `)
  assert.equal(r.status, 0, r.stderr)
  const { before, after } = JSON.parse(r.stdout)
  assert.ok(after <= before + 2, `threads ${before} -> ${after} after 10 terminated owners`)
})

test("a cold pool's first task starts while the main thread is still blocked", () => {
  const marker = path.join(os.tmpdir(), `corepool-cold-${process.pid}`)
  fs.rmSync(marker, { force: true })
  const r = node(`
    import fs from 'node:fs'
    import { Pool } from 'corepool'
    const pool = new Pool({ filename: ${JSON.stringify(habits)}, threads: 2 })
    const done = pool.run({ file: ${JSON.stringify(marker)} }, { name: 'marker' })
    // Block this thread (no event loop turn) until the task has started, for at most 60 s.
    const deadline = Date.now() + 60_000
    while (!fs.existsSync(${JSON.stringify(marker)}) && Date.now() < deadline);
    const started = fs.existsSync(${JSON.stringify(marker)})
    console.log(JSON.stringify({ started, result: await done }))
    await pool.close()
  `)
  fs.rmSync(marker, { force: true })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(JSON.parse(r.stdout), { started: true, result: 'marked' })
})
