import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import path from 'node:path'

import { Pool, sqrtSum, CorepoolError } from 'corepool'
import { sleep } from 'corepool/testing'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
const esmTask = path.join(here, 'fixtures', 'task.mjs')
const cjsTask = path.join(here, 'fixtures', 'task.cjs')

async function waitUntil(predicate, what) {
  for (let i = 0; i < 4000; i++) {
    if (predicate()) return
    await new Promise((r) => setTimeout(r, 5))
  }
  assert.fail(`timed out waiting for ${what}`)
}

const rejectsWith = (promise, code) =>
  assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    return true
  })

test('runs the default export of an ESM module, sync and in parallel', async () => {
  const pool = new Pool({ filename: esmTask, threads: 2 })
  assert.equal(await pool.run({ n: 21 }), 42)
  const results = await Promise.all(Array.from({ length: 50 }, (_, n) => pool.run({ n })))
  assert.deepEqual(
    results,
    Array.from({ length: 50 }, (_, n) => n * 2),
  )
  await pool.close()
})

test('runs CJS modules, async functions, named exports and file: URLs', async () => {
  const pool = new Pool({ filename: pathToFileURL(cjsTask), threads: 1, env: { COREPOOL_TEST_VAR: 'from env' } })
  assert.equal(await pool.run(5), 15)
  assert.equal(await pool.run(null, { name: 'env' }), 'from env')
  await pool.close()
  const esm = new Pool({ filename: esmTask, threads: 1 })
  assert.equal(await esm.run({ ms: 5 }, { name: 'sleepy' }), 'slept')
  await rejectsWith(esm.run({}, { name: 'noSuchExport' }), 'ERR_INVALID_ARG')
  await esm.close()
})

test('transferList buffers reach the task and are detached in the caller', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  const buf = new Uint8Array(1 << 20).fill(3).buffer
  const result = await pool.run(buf, { name: 'bytes', transferList: [buf] })
  assert.deepEqual(result, { sum: 3 << 20, length: 1 << 20 })
  assert.equal(buf.byteLength, 0, 'the caller no longer owns the buffer')
  const kept = Buffer.alloc(10, 1)
  assert.deepEqual(await pool.run(kept, { name: 'bytes' }), { sum: 10, length: 10 })
  assert.equal(kept.length, 10, 'without transferList the data is copied')
  await pool.close()
})

test("transferred memory becomes the worker's: the caller lets go of it at once, the worker when it lets go", () => {
  // The worker copies a transferred buffer into memory of its own when the task starts: the
  // caller's memory must not wait for the worker's collector, and the worker's copies must
  // survive as long as the worker keeps them.
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `
      import { Pool } from 'corepool'
      const pool = new Pool({ filename: ${JSON.stringify(esmTask)}, threads: 1 })
      const settle = async () => {
        for (let i = 0; i < 5; i++) {
          globalThis.gc()
          await new Promise((r) => setTimeout(r, 20))
        }
      }
      await pool.run(null, { name: 'workerBuffers' })
      await settle()
      const base = process.memoryUsage().arrayBuffers
      const workerBase = await pool.run(null, { name: 'workerBuffers' })
      for (let i = 1; i <= 16; i++) {
        const buf = new Uint8Array(1 << 20).fill(i).buffer
        await pool.run(buf, { name: 'keep', transferList: [buf] })
      }
      await settle()
      const callerHeld = process.memoryUsage().arrayBuffers - base
      const workerHeld = (await pool.run(null, { name: 'workerBuffers' })) - workerBase
      const contents = await pool.run(null, { name: 'checkKept' })
      await pool.run(null, { name: 'forgetKept' })
      const workerAfter = (await pool.run(null, { name: 'workerBuffers' })) - workerBase
      console.log(JSON.stringify({ callerHeld, workerHeld, contents, workerAfter }))
      // No close(): the release machinery must not keep the process alive either.
    `,
    ],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  )
  assert.equal(r.error, undefined, 'the child exited on its own')
  assert.equal(r.status, 0, r.stderr)
  const { callerHeld, workerHeld, contents, workerAfter } = JSON.parse(r.stdout)
  assert.deepEqual(
    contents,
    Array.from({ length: 16 }, (_, i) => i + 1),
    'every kept buffer intact',
  )
  assert.ok(callerHeld < 4 << 20, `the caller holds none of it (${callerHeld} bytes)`)
  // Every copy held: one missing would leave 1 MiB less. The baseline reading may include a few
  // bytes the worker frees meanwhile, so the bound allows less than one copy's worth below 16 MiB.
  assert.ok(workerHeld > 15.5 * 2 ** 20, `the worker holds its copies while it keeps them (${workerHeld} bytes)`)
  assert.ok(workerAfter < 4 << 20, `and frees them after (${workerAfter} bytes still held)`)
})

test('memory stays bounded over many transferred buffers, and all of it is released', () => {
  // Each buffer's memory is released once the worker collects its view: 400 tasks of 1 MiB,
  // 4 in flight, must never hold anything near 400 MiB, and nothing once both sides collect.
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `
      import { Pool } from 'corepool'
      // --expose-gc is process-wide: the workers have gc() too.
      const pool = new Pool({ filename: ${JSON.stringify(esmTask)}, threads: 2, minThreads: 2 })
      const base = process.memoryUsage().arrayBuffers
      let peak = 0
      let started = 0
      await new Promise((resolve, reject) => {
        let done = 0
        const next = () => {
          if (started === 400) return
          started++
          const buf = new ArrayBuffer(1 << 20)
          pool.run(buf, { name: 'first', transferList: [buf] }).then(() => {
            peak = Math.max(peak, process.memoryUsage().arrayBuffers - base)
            if (++done === 400) resolve()
            else next()
          }, reject)
        }
        for (let i = 0; i < 4; i++) next()
      })
      for (let i = 0; i < 5; i++) {
        await Promise.all([pool.run(null, { name: 'collect' }), pool.run(null, { name: 'collect' })])
        globalThis.gc()
        await new Promise((r) => setTimeout(r, 20))
      }
      const after = process.memoryUsage().arrayBuffers - base
      console.log(JSON.stringify({ peak, after }))
      await pool.close()
    `,
    ],
    { cwd: root, encoding: 'utf8', timeout: 120_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  const { peak, after } = JSON.parse(r.stdout)
  assert.ok(peak < 256 << 20, `under 256 MiB of buffers held at once (peak: ${peak >> 20} MiB)`)
  assert.ok(after < 8 << 20, `all released once both sides collect (${after >> 20} MiB still held)`)
})

test('views over transferred buffers arrive as views over the moved memory; bad transferLists are typed errors', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  const raw = new ArrayBuffer(64)
  new Uint8Array(raw).fill(7)
  const other = Buffer.alloc(16, 9)
  const empty = new ArrayBuffer(0)
  const data = {
    raw,
    u8: new Uint8Array(raw, 8, 4),
    f64: new Float64Array(raw, 16, 2),
    dv: new DataView(raw, 1, 3),
    buf: Buffer.from(raw, 2, 5),
    copied: new Uint16Array([5, 6]),
    empty,
  }
  const got = await pool.run(data, { name: 'views', transferList: [raw, raw, empty] })
  assert.deepEqual(got.u8, { type: 'Uint8Array', offset: 8, length: 4, whole: 64, first: 7 })
  assert.equal(got.f64.type, 'Float64Array')
  assert.deepEqual([got.f64.offset, got.f64.length, got.f64.whole], [16, 16, 64])
  assert.deepEqual(got.dv, { type: 'DataView', offset: 1, length: 3, whole: 64, first: 7 })
  assert.deepEqual(got.buf, { type: 'Buffer', offset: 2, length: 5, whole: 64, first: 7 })
  assert.deepEqual([got.copied.type, got.copied.length, got.copied.first], ['Uint16Array', 4, 5])
  assert.equal(got.shared, true, 'every view shares the one moved buffer')
  assert.equal(got.empty, 0)
  assert.equal(raw.byteLength, 0, 'detached in the caller')
  assert.equal(data.u8.length, 0)

  await rejectsWith(pool.run(other, { transferList: [other] }), 'ERR_INVALID_ARG')
  assert.equal(other.length, 16, 'a refused transferList detaches nothing')
  await rejectsWith(pool.run(raw, { transferList: [raw] }), 'ERR_INVALID_ARG')
  await rejectsWith(pool.run(1, { transferList: [new SharedArrayBuffer(8)] }), 'ERR_INVALID_ARG')
  await pool.close()
})

test('errors keep their class, name, message, stack, code and own properties', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  await assert.rejects(pool.run({ kind: 'type' }, { name: 'fail' }), (err) => {
    assert.ok(err instanceof TypeError)
    assert.equal(err.message, 'bad type')
    assert.match(err.stack, /task\.mjs/)
    return true
  })
  await assert.rejects(pool.run({ kind: 'custom' }, { name: 'fail' }), (err) => {
    assert.ok(err instanceof Error)
    assert.equal(err.name, 'ValidationError')
    assert.equal(err.code, 'E_VALIDATION')
    assert.deepEqual(err.details, { field: 'email', tries: 3 })
    return true
  })
  await assert.rejects(pool.run({ kind: 'string' }, { name: 'fail' }), (err) => err === 'a plain string')
  await rejectsWith(pool.run(null, { name: 'notCloneable' }), 'ERR_INVALID_ARG')
  await pool.close()
})

test('a crashed worker rejects its task with ERR_WORKER_CRASHED and is replaced', async () => {
  const pool = new Pool({
    filename: esmTask,
    threads: 1,
    resourceLimits: { maxOldGenerationSizeMb: 32, maxYoungGenerationSizeMb: 8 },
  })
  for (const how of ['exit', 'uncaught', 'oom']) {
    await assert.rejects(pool.run({ how }, { name: 'crash' }), (err) => {
      assert.equal(err.code, 'ERR_WORKER_CRASHED', `${how}: ${err.message}`)
      assert.ok(err instanceof CorepoolError)
      return true
    })
    assert.equal(await pool.run({ n: 4 }), 8, `the pool serves again after ${how}`)
  }
  await pool.close()
})

test('a module that cannot load rejects with ERR_WORKER_CRASHED', async () => {
  const pool = new Pool({ filename: path.join(here, 'fixtures', 'missing.mjs'), threads: 1 })
  await assert.rejects(pool.run(1), (err) => err.code === 'ERR_WORKER_CRASHED' && /cannot load/.test(err.message))
  await pool.destroy()
})

test('abort reaches the task through its AbortSignal', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  const ac = new AbortController()
  const task = pool.run({ ms: 60_000 }, { name: 'sleepy', signal: ac.signal })
  await waitUntil(() => pool.stats.running === 1, 'the task to start')
  ac.abort()
  await rejectsWith(task, 'ERR_ABORTED')
  assert.equal(await pool.run({ n: 1 }), 2)
  await pool.close()
})

test('a task aborted before its function is called (its module still loading) is never called', async () => {
  // The abort reaches the worker while the module's top-level await runs: calling the task then
  // would hand it a signal whose 'abort' event has already fired, and with a 60 s grace nothing
  // would free the worker for the next task.
  const slowModule = path.join(here, 'fixtures', 'slow-module.mjs')
  const pool = new Pool({ filename: esmTask, threads: 1, abortGrace: 60_000 })
  const worker = await pool.run(null, { name: 'threadId' }) // started and waiting for tasks
  const ac = new AbortController()
  const task = pool.run(null, { filename: slowModule, name: 'listens', signal: ac.signal })
  await waitUntil(() => pool.stats.running === 1, 'the task to start')
  ac.abort()
  await rejectsWith(task, 'ERR_ABORTED')
  assert.equal(await pool.run(null, { filename: slowModule, name: 'callCount' }), 0)
  assert.equal(await pool.run(null, { name: 'threadId' }), worker, 'the same worker served throughout')
  await pool.close()
})

test(
  'a busy worker takes queued tasks back to back; abort and crash still reach a chained task',
  { timeout: 30_000 },
  async () => {
    // With a 60 s grace, only an abort that reaches the task itself lets the next task run soon.
    const pool = new Pool({ filename: esmTask, threads: 1, abortGrace: 60_000 })
    const first = pool.run({ ms: 50 }, { name: 'spin' })
    await waitUntil(() => pool.stats.running === 1, 'the first task to start')
    const ac = new AbortController()
    const chained = pool.run({ ms: 60_000 }, { name: 'sleepy', signal: ac.signal })
    const after = pool.run(null, { name: 'threadId' })
    assert.equal(await first, 'spun')
    await waitUntil(() => pool.stats.running === 1 && pool.stats.queued === 1, 'the chained task to start')
    ac.abort()
    await rejectsWith(chained, 'ERR_ABORTED')
    const worker = await after
    assert.equal(await pool.run(null, { name: 'threadId' }), worker, 'the same worker kept serving')

    const blocker = pool.run({ ms: 50 }, { name: 'spin' })
    const crashing = pool.run({ how: 'exit' }, { name: 'crash' })
    const later = pool.run(null, { name: 'threadId' })
    assert.equal(await blocker, 'spun')
    await rejectsWith(crashing, 'ERR_WORKER_CRASHED')
    assert.notEqual(await later, worker, 'a new worker replaced the crashed one')
    assert.equal(pool.stats.completed, 5)
    await pool.close()
  },
)

test('a task ignoring abort past the grace period gets its worker terminated', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1, abortGrace: 50 })
  const task = pool.run({ ms: 60_000 }, { name: 'ignoreAbort', timeout: 100 })
  await rejectsWith(task, 'ERR_TASK_TIMEOUT')
  // The busy-looping worker was terminated, so the thread is usable again.
  assert.equal(await pool.run({ n: 5 }), 10)
  await pool.close()
})

test('queued JS tasks honour priority, abort and timeout', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1 })
  const blocker = pool.run({ ms: 200 }, { name: 'spin' })
  await waitUntil(() => pool.stats.running === 1, 'the blocker to start')
  const order = []
  const low = pool.run({ n: 1 }, { priority: 0 }).then(() => order.push('low'))
  const high = pool.run({ n: 2 }, { priority: 9 }).then(() => order.push('high'))
  const ac = new AbortController()
  const aborted = pool.run({ n: 3 }, { signal: ac.signal })
  ac.abort()
  await rejectsWith(aborted, 'ERR_ABORTED')
  await rejectsWith(pool.run({ n: 3 }, { timeout: 20 }), 'ERR_TASK_TIMEOUT')
  await Promise.all([blocker, low, high])
  assert.deepEqual(order, ['high', 'low'])
  await pool.close()
})

test('JS tasks and native tasks share the pool threads', async () => {
  const pool = new Pool({ filename: esmTask, threads: 2 })
  const js = [pool.run({ ms: 300 }, { name: 'spin' }), pool.run({ ms: 300 }, { name: 'spin' })]
  await waitUntil(() => pool.stats.running === 2, 'both JS tasks to run')
  const native = [sqrtSum(1000, { pool }), sleep(1, { pool })]
  let maxRunning = 0
  let sawQueued = false
  const sampler = setInterval(() => {
    const s = pool.stats
    maxRunning = Math.max(maxRunning, s.running)
    if (s.running === 2 && s.queued === 2) sawQueued = true
  }, 2)
  await Promise.all([...js, ...native])
  clearInterval(sampler)
  assert.ok(maxRunning <= 2, `never more than threads at once (saw ${maxRunning})`)
  assert.ok(sawQueued, 'native tasks waited while the JS tasks held both threads')
  await pool.close()
})

test('bad JS-task input is a typed error', async () => {
  assert.throws(() => new Pool({ filename: 'relative/task.js' }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Pool({ filename: 42 }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Pool({ filename: esmTask, threads: 2, minThreads: 3 }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Pool({ filename: esmTask, idleTimeout: -1 }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Pool({ filename: esmTask, execArgv: [1] }), { code: 'ERR_INVALID_ARG' })
  const pool = new Pool({ filename: esmTask, threads: 1 })
  await rejectsWith(
    pool.run(() => {}),
    'ERR_INVALID_ARG',
  )
  await rejectsWith(pool.run({ n: 1 }, { name: 7 }), 'ERR_INVALID_ARG')
  // Names that name no function of the module: the pool's, or the task's own.
  await rejectsWith(pool.run({ n: 1 }, { name: 'nope' }), 'ERR_INVALID_ARG')
  await rejectsWith(pool.run({ n: 1 }, { filename: path.join(here, 'fixtures', 'thread-id.mjs') }), 'ERR_INVALID_ARG')
  await rejectsWith(pool.run({ n: 1 }, { transferList: 'x' }), 'ERR_INVALID_ARG')
  await rejectsWith(pool.run({ n: 1 }, { timeout: -5 }), 'ERR_INVALID_ARG')
  await rejectsWith(new Pool({ threads: 1 }).run({}), 'ERR_INVALID_ARG')
  await pool.close()
  await rejectsWith(pool.run({ n: 1 }), 'ERR_POOL_CLOSED')
})

test('destroy() rejects running and queued JS tasks with ERR_POOL_CLOSED', async () => {
  const pool = new Pool({ filename: esmTask, threads: 1, abortGrace: 50 })
  const running = pool.run({ ms: 60_000 }, { name: 'ignoreAbort' })
  await waitUntil(() => pool.stats.running === 1, 'the task to start')
  const queued = pool.run({ n: 1 })
  const destroyed = pool.destroy()
  await rejectsWith(running, 'ERR_POOL_CLOSED')
  await rejectsWith(queued, 'ERR_POOL_CLOSED')
  await destroyed
})

test('idle workers do not keep the process alive; idle ones above minThreads retire', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `
      import { Pool } from 'corepool'
      const pool = new Pool({ filename: ${JSON.stringify(esmTask)}, threads: 2, minThreads: 0, idleTimeout: 50 })
      console.log(await pool.run({ n: 1 }), await pool.run({ ms: 50 }, { name: 'sleepy' }))
      // Forgotten pool, no close(): the process must still exit by itself.
      const forgotten = new Pool({ filename: ${JSON.stringify(esmTask)}, threads: 1, idleTimeout: Infinity })
      console.log(await forgotten.run({ n: 2 }))
    `,
    ],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  )
  assert.equal(r.error, undefined, 'the child exited on its own')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, '2 slept\n4\n')
})

test('soak: every JS task settles exactly once', async () => {
  const pool = new Pool({ filename: esmTask, threads: 2 })
  const n = 5000
  const settled = new Uint8Array(n)
  let ok = 0
  let cancelled = 0
  const all = []
  for (let i = 0; i < n; i++) {
    const options = { priority: i % 3 }
    let ac
    if (i % 5 === 0) {
      ac = new AbortController()
      options.signal = ac.signal
    }
    if (i % 7 === 0) options.timeout = 1
    all.push(
      pool.run({ n: i }, options).then(
        (v) => {
          assert.equal(v, i * 2)
          settled[i]++
          ok++
        },
        (err) => {
          assert.ok(['ERR_ABORTED', 'ERR_TASK_TIMEOUT'].includes(err.code), err.message)
          settled[i]++
          cancelled++
        },
      ),
    )
    if (ac && i % 10 === 0) ac.abort()
  }
  await Promise.all(all)
  assert.ok(settled.every((c) => c === 1))
  const s = pool.stats
  assert.equal(s.completed, ok)
  assert.equal(s.cancelled, cancelled)
  await pool.close()
})

test('a forgotten pool is garbage-collected: its threads stop and its workers exit', () => {
  const r = spawnSync(
    process.execPath,
    [
      '--expose-gc',
      '--input-type=module',
      '-e',
      `
      import fs from 'node:fs'
      import { Pool } from 'corepool'
      const threads = () => fs.readdirSync('/proc/self/task').length
      const before = threads()
      let pool = new Pool({ filename: ${JSON.stringify(esmTask)}, threads: 2, minThreads: 2 })
      await Promise.all([pool.run({ n: 1 }), pool.run({ n: 2 }), pool.run({ n: 3 })])
      const during = threads()
      pool = null
      for (let i = 0; i < 100 && threads() > before + 1; i++) {
        globalThis.gc()
        await new Promise((r) => setTimeout(r, 50))
      }
      console.log(JSON.stringify({ before, during, after: threads() }))
    `,
    ],
    { cwd: root, encoding: 'utf8', timeout: 60_000 },
  )
  assert.equal(r.status, 0, r.stderr)
  const { before, during, after } = JSON.parse(r.stdout)
  assert.ok(during >= before + 4, `2 pool threads and 2 workers ran (${before} -> ${during})`)
  // At most the process-wide timer thread may remain.
  assert.ok(after <= before + 1, `threads back to ${after} from ${during} (before: ${before})`)
})

test('task data and results are structured clones, through the compact encoding of small values too', async () => {
  const { encodeSmall } = await import('../lib/smallcodec.js')
  const echo = path.join(here, 'fixtures', 'echo-task.mjs')
  const pool = new Pool({ filename: echo, threads: 1 })
  const shared = { x: 1 }
  const cyclic = { name: 'c' }
  cyclic.self = cyclic
  const small = [
    0,
    -0,
    1,
    -1,
    2 ** 31,
    -(2 ** 31),
    2 ** 53,
    1.5,
    NaN,
    Infinity,
    -Infinity,
    '',
    'abc',
    'é — 😀',
    'x'.repeat(200),
    true,
    false,
    null,
    undefined,
    { kind: 'trivial' },
    { 0: 'a', 10: 'b', z: [1, 'a', [null, {}]] },
    [undefined, -0],
    { nested: { deeper: { deepest: [1, 2, 3] } } },
  ]
  // Values the compact encoding leaves to V8's serializer (which keeps what they are).
  const other = [
    new Date(0),
    new Map([[1, 2]]),
    new Set(['a']),
    [, 1],
    { a: shared, b: shared },
    cyclic,
    '\ud800',
    1n,
    Object.create(null),
    Object.assign([1], { extra: true }),
    new Uint8Array([1, 2]),
    /re/g,
    JSON.parse('{"__proto__": 1}'),
    Array.from({ length: 1000 }, (_, i) => i),
    'y'.repeat(100_000),
  ]
  for (const value of small) {
    assert.notEqual(encodeSmall(value), null, `${String(value)} takes the compact encoding`)
  }
  for (const value of other) {
    assert.equal(encodeSmall(value), null, 'left to V8')
  }
  for (const value of [...small, ...other]) {
    assert.deepStrictEqual(await pool.run(value), structuredClone(value))
  }
  const same = await pool.run({ a: shared, b: shared })
  assert.equal(same.a, same.b, 'a repeated object stays one object')
  const again = await pool.run(cyclic)
  assert.equal(again.self, again)
  const proto = await pool.run(JSON.parse('{"__proto__": 1}'))
  assert.equal(Object.getPrototypeOf(proto), Object.prototype)
  assert.equal(Object.getOwnPropertyDescriptor(proto, '__proto__').value, 1)
  await pool.close()
})
