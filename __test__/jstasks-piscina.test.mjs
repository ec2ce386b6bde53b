// piscina's own tests (github.com/piscinajs/piscina, test/), translated for corepool's Pool:
// `new Piscina({ filename, maxThreads })` -> `new Pool({ filename, threads })`, `Piscina.isWorkerThread`
// / `Piscina.workerData` -> `isWorkerThread` / `workerData` exported by corepool, tap's
// `equal`/`rejects`/`throws` -> node:assert. Fixtures are copies of piscina's (in
// fixtures/piscina/). Each test names the upstream file and case. Where corepool documents a
// different error text, the translation checks its `err.code` as well as the upstream pattern
// when it still applies.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { EventEmitter, once } from 'node:events'
import { MessageChannel } from 'node:worker_threads'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import { Pool, isWorkerThread, workerData } from 'corepool'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', 'piscina', name)
const root = path.dirname(here)

// test/simple-test.ts
test("simple-test: 'Piscina.isWorkerThread has the correct value'", () => {
  assert.equal(isWorkerThread, false)
})

test("simple-test: 'Piscina.isWorkerThread has the correct value (worker)'", async () => {
  const worker = new Pool({ filename: fixture('simple-isworkerthread.mjs') })
  const result = await worker.run(null)
  assert.equal(result, 'done')
  await worker.close()
})

test("simple-test: 'Piscina instance is an EventEmitter'", () => {
  const piscina = new Pool()
  assert.ok(piscina instanceof EventEmitter)
})

test("simple-test: 'trivial eval() handler works'", async () => {
  const worker = new Pool({ filename: fixture('eval.cjs') })
  const result = await worker.run('42')
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'async eval() handler works'", async () => {
  const worker = new Pool({ filename: fixture('eval.cjs') })
  const result = await worker.run('Promise.resolve(42)')
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'filename can be provided while posting'", async () => {
  const worker = new Pool()
  const result = await worker.run('Promise.resolve(42)', { filename: fixture('eval.cjs') })
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'filename can be null when initially provided'", async () => {
  const worker = new Pool({ filename: null })
  const result = await worker.run('Promise.resolve(42)', { filename: fixture('eval.cjs') })
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'filename must be provided while posting'", async () => {
  const worker = new Pool()
  // piscina: /filename must be provided to run\(\) or in options object/
  await assert.rejects(worker.run('doesn’t matter'), { code: 'ERR_INVALID_ARG', message: /needs options\.filename/ })
})

test("simple-test: 'passing env to workers works'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs'), env: { A: 'foo' } })
  const env = await pool.run('({...process.env})')
  assert.deepEqual(env, { A: 'foo' })
  await pool.close()
})

test("simple-test: 'passing execArgv to workers works'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs'), execArgv: ['--no-warnings'] })
  const env = await pool.run('process.execArgv')
  assert.deepEqual(env, ['--no-warnings'])
  await pool.close()
})

test("simple-test: 'passing valid workerData works'", async () => {
  const pool = new Pool({ filename: fixture('simple-workerdata.mjs'), workerData: 'ABC' })
  assert.equal(workerData, undefined)
  await pool.run(null)
  await pool.close()
})

test("simple-test: 'passing invalid workerData does not work'", () => {
  assert.throws(
    () => new Pool({ filename: fixture('simple-workerdata.mjs'), workerData: { hello() {} } }),
    /could not be cloned./,
  )
})

test("simple-test: 'filename can be a file:// URL'", async () => {
  const worker = new Pool({ filename: pathToFileURL(fixture('eval.cjs')).href })
  const result = await worker.run('42')
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'filename can be a file:// URL to an ESM module'", async () => {
  const worker = new Pool({ filename: pathToFileURL(fixture('esm-export.mjs')).href })
  const result = await worker.run('42')
  assert.equal(result, 42)
  await worker.close()
})

test("simple-test: 'run works also'", async () => {
  const worker = new Pool({ filename: fixture('eval.cjs') })
  await worker.run(42)
  await worker.close()
})

test("simple-test: 'named tasks work' (the first of the two)", async () => {
  const worker = new Pool({ filename: fixture('multiple.cjs') })
  assert.equal(await worker.run({}, { name: 'a' }), 'a')
  assert.equal(await worker.run({}, { name: 'b' }), 'b')
  assert.equal(await worker.run({}), 'a')
  await worker.close()
})

// test/messages.ts
test("messages: 'Pool receive message from workers'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  const messagePromise = once(pool, 'message')
  const taskResult = pool.run(`
        require('worker_threads').parentPort.postMessage("some message");
        42
    `)
  assert.equal(await taskResult, 42)
  assert.equal((await messagePromise)[0], 'some message')
  await pool.close()
})

// test/post-task.ts
test("post-task: 'postTask() can transfer ArrayBuffer instances'", async () => {
  const pool = new Pool({ filename: fixture('simple-isworkerthread.mjs') })
  const ab = new ArrayBuffer(40)
  await pool.run({ ab }, { transferList: [ab] })
  assert.equal(pool.stats.completed, 1) // piscina: pool.completed
  assert.equal(ab.byteLength, 0)
  await pool.close()
})

test("post-task: 'postTask() cannot clone build-in objects'", async () => {
  const pool = new Pool({ filename: fixture('simple-isworkerthread.mjs') })
  const obj = new MessageChannel().port1
  await assert.rejects(pool.run({ obj }))
  obj.close()
})

test("post-task: 'postTask() resolves with a rejection when the handler rejects'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  await assert.rejects(pool.run('Promise.reject(new Error("foo"))'), /foo/)
  await pool.close()
})

test("post-task: 'postTask() resolves with a rejection when the handler throws'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  await assert.rejects(pool.run('throw new Error("foo")'), /foo/)
  await pool.close()
})

test("post-task: 'postTask() validates transferList'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  // piscina: /transferList argument must be an Array/
  await assert.rejects(pool.run('0', { transferList: 42 }), {
    code: 'ERR_INVALID_ARG',
    message: /transferList must be an array/,
  })
})

test("post-task: 'postTask() validates filename'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  // piscina: /filename argument must be a string/
  await assert.rejects(pool.run('0', { filename: 42 }), { code: 'ERR_INVALID_ARG', message: /filename must be/ })
})

test("post-task: 'postTask() validates name'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  // piscina: /name argument must be a string/
  await assert.rejects(pool.run('0', { name: 42 }), { code: 'ERR_INVALID_ARG', message: /name must be a string/ })
})

test("post-task: 'postTask() validates abortSignal'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs') })
  // piscina: /signal argument must be an object/
  await assert.rejects(pool.run('0', { signal: 42 }), {
    code: 'ERR_INVALID_ARG',
    message: /signal must be an AbortSignal/,
  })
})

test("post-task: 'Piscina emits drain'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs'), threads: 1 })
  let drained = false
  let needsDrain = true
  pool.on('drain', () => {
    drained = true
    needsDrain = pool.needsDrain
  })
  await Promise.all([pool.run('123'), pool.run('123'), pool.run('123')])
  assert.ok(drained)
  assert.ok(!needsDrain)
  await pool.close()
})

test("post-task: 'Piscina exposes/emits needsDrain to true when capacity is exceeded'", async () => {
  const pool = new Pool({ filename: fixture('eval.cjs'), maxQueue: 3, threads: 1 })
  let passed = 0
  const drain = once(pool, 'drain').then(() => passed++)
  pool.once('needsDrain', () => passed++)
  const runs = [pool.run('123'), pool.run('123'), pool.run('123'), pool.run('123')]
  assert.ok(pool.needsDrain)
  await Promise.all(runs)
  await drain
  assert.equal(passed, 2) // tap: plan(3) = these two and ok(pool.needsDrain)
  await pool.close()
})

// test/console-log.ts
test("console-log: 'console.log() calls are not blocked by Atomics.wait()'", async () => {
  const proc = spawn(process.execPath, [fixture('console-log.mjs')], {
    cwd: root,
    stdio: ['inherit', 'pipe', 'inherit'],
  })
  let data = ''
  proc.stdout.setEncoding('utf8').on('data', (chunk) => (data += chunk))
  await once(proc, 'close')
  assert.equal(data, 'A\nB\n')
})

// test/pool-close.ts
test("pool-close: 'close()' / 'no pending tasks' (and with minThreads=0)", async () => {
  await new Pool({ filename: fixture('sleep.cjs') }).close()
  await new Pool({ filename: fixture('sleep.cjs'), minThreads: 0 }).close()
})

test("pool-close: 'close()' / 'queued tasks waits for all tasks to complete'", async () => {
  const pool = new Pool({ filename: fixture('sleep.cjs'), threads: 1 })
  const task1 = pool.run({ time: 100 })
  const task2 = pool.run({ time: 100 })
  let closed
  setImmediate(() => (closed = pool.close()))
  await Promise.all([once(pool, 'close'), task1, task2])
  await closed
})

test("pool-close: 'close({force: true})' / 'queued tasks waits for all tasks already running and aborts tasks that are not started yet'", async () => {
  const pool = new Pool({ filename: fixture('sleep.cjs'), threads: 1 })
  const task1 = pool.run({ time: 1000 })
  const task2 = pool.run({ time: 200 })
  let closed
  // piscina closes on setImmediate, when task1 was already posted to a worker. A corepool task
  // runs once a pool thread picked it, which a loaded machine can delay past setImmediate: wait
  // for that instead (bounded).
  for (let i = 0; i < 2000 && pool.stats.running === 0; i++) await new Promise((r) => setTimeout(r, 5))
  setImmediate(() => (closed = pool.close({ force: true })))
  await Promise.all([
    once(pool, 'close'),
    task1,
    // piscina: err.message 'The task has been aborted', err.cause 'pool is closed'
    assert.rejects(task2, { code: 'ERR_POOL_CLOSED' }),
  ])
  await closed
})
