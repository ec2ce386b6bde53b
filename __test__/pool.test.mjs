import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire } from 'node:module'
import { spawnSync } from 'node:child_process'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import path from 'node:path'

import * as esm from 'corepool'
import { panic, sleep } from 'corepool/testing'

const require = createRequire(import.meta.url)
const cjs = require('corepool')
const { Pool, sqrtSum, CorepoolError, defaultPool } = esm
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))

const jsSqrtSum = (n) => {
  let s = 0
  for (let i = 0; i < n; i++) s += Math.sqrt(i)
  return s
}

function assertClose(got, want) {
  assert.ok(Math.abs(got - want) <= Math.abs(want) * 1e-9, `${got} vs ${want}`)
}

async function waitUntil(predicate, what) {
  for (let i = 0; i < 2000; i++) {
    if (predicate()) return
    await new Promise((r) => setTimeout(r, 5))
  }
  assert.fail(`timed out waiting for ${what}`)
}

async function rejectsWith(promise, code) {
  assert.ok(promise instanceof Promise, 'an async API returns a promise')
  return assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `expected ${code}, got ${err.code}: ${err.message}`)
    assert.ok(err instanceof Error)
    assert.ok(err instanceof CorepoolError)
    return true
  })
}

/** Calls `fn` and checks it did not throw synchronously. */
function call(fn) {
  let result
  assert.doesNotThrow(() => {
    result = fn()
  })
  return result
}

test('CJS and ESM expose the same API', () => {
  assert.equal(cjs.Pool, Pool)
  assert.equal(cjs.sqrtSum, sqrtSum)
  assert.equal(typeof esm.default.sqrtSum, 'function')
  // index.mjs lists the names by hand (ESM exports are static): it must not drift from index.js.
  const named = Object.keys(esm).filter((name) => name !== 'default')
  assert.deepEqual(named.sort(), Object.keys(cjs).sort())
  for (const name of named) assert.equal(esm[name], cjs[name], name)
})

test('Pool has no static members beyond the documented ones', () => {
  const statics = Object.getOwnPropertyNames(Pool).filter((k) => !['length', 'name', 'prototype'].includes(k))
  assert.deepEqual(statics, [])
})

test('sqrtSum matches the JS loop', async () => {
  const pool = new Pool({ threads: 2 })
  for (const n of [0, 1, 2, 3, 4, 5, 17, 1000, 65537, 1e6]) {
    const got = await sqrtSum(n, { pool })
    const want = jsSqrtSum(n)
    assert.ok(Math.abs(got - want) <= Math.abs(want) * 1e-9, `n=${n}: ${got} vs ${want}`)
  }
  await pool.close()
})

test('the default pool is lazy and sized to the machine', async () => {
  assert.equal(defaultPool.threads, os.availableParallelism())
  assertClose(await sqrtSum(10), jsSqrtSum(10))
  assert.ok(defaultPool.stats.completed >= 1)
})

test('higher priority runs first, FIFO within a priority', async () => {
  const pool = new Pool({ threads: 1 })
  const blocker = sleep(100, { pool })
  await waitUntil(() => pool.stats.running === 1, 'the blocker to start')
  const order = []
  const prios = [0, 5, -1, 5, 1, 0, 10]
  const tasks = prios.map((priority, i) => sleep(0, { pool, priority }).then(() => order.push(i)))
  await Promise.all([blocker, ...tasks])
  assert.deepEqual(order, [6, 1, 3, 4, 0, 5, 2])
  await pool.close()
})

test('abort of a queued task rejects at once and removes it from the queue', async () => {
  const pool = new Pool({ threads: 1 })
  const blocker = sleep(300, { pool })
  await waitUntil(() => pool.stats.running === 1, 'the blocker to start')
  const ac = new AbortController()
  const queued = sqrtSum(10, { pool, signal: ac.signal })
  assert.equal(pool.stats.queued, 1)
  ac.abort(new Error('not needed'))
  await assert.rejects(queued, (err) => {
    assert.equal(err.code, 'ERR_ABORTED')
    assert.equal(err.name, 'AbortError')
    assert.equal(err.cause.message, 'not needed')
    return true
  })
  // Settled while the blocker still holds the only thread.
  assert.equal(pool.stats.running, 1)
  assert.equal(pool.stats.queued, 0)
  await blocker
  assert.equal(pool.stats.aborted, 1)
  assert.equal(pool.stats.completed, 1)
  await pool.close()
})

test('abort of a running native task stops it at its next check and frees the thread', async () => {
  const pool = new Pool({ threads: 1 })
  for (const start of [(signal) => sleep(60_000, { pool, signal }), (signal) => sqrtSum(1e12, { pool, signal })]) {
    const ac = new AbortController()
    const running = start(ac.signal)
    await waitUntil(() => pool.stats.running === 1, 'the task to start')
    ac.abort()
    await rejectsWith(running, 'ERR_ABORTED')
    // The single thread is free again: the next task completes.
    assertClose(await sqrtSum(3, { pool }), jsSqrtSum(3))
  }
  await pool.close()
})

test('an already-aborted signal rejects without running the task', async () => {
  const pool = new Pool({ threads: 1 })
  const reason = new Error('gone')
  await assert.rejects(
    call(() => sqrtSum(1e12, { pool, signal: AbortSignal.abort(reason) })),
    (err) => err.code === 'ERR_ABORTED' && err.name === 'AbortError' && err.cause === reason,
  )
  assert.equal(pool.stats.runTime.count, 0)
  await pool.close()
})

test('timeout rejects queued and running tasks with ERR_TASK_TIMEOUT', async () => {
  const pool = new Pool({ threads: 1 })
  const running = sqrtSum(1e12, { pool, timeout: 200 })
  const queued = sleep(0, { pool, timeout: 50 })
  await rejectsWith(queued, 'ERR_TASK_TIMEOUT')
  await rejectsWith(running, 'ERR_TASK_TIMEOUT')
  assertClose(await sqrtSum(4, { pool, timeout: 60_000 }), jsSqrtSum(4))
  assert.equal(pool.stats.timedOut, 2)
  await pool.close()
})

test('maxQueue bounds waiting tasks: ERR_QUEUE_FULL', async () => {
  const pool = new Pool({ threads: 1, maxQueue: 1 })
  const blocker = sleep(100, { pool })
  const waiting = sleep(0, { pool })
  await rejectsWith(
    call(() => sleep(0, { pool })),
    'ERR_QUEUE_FULL',
  )
  await Promise.all([blocker, waiting])
  await sleep(0, { pool })

  const noQueue = new Pool({ threads: 1, maxQueue: 0 })
  const only = sleep(50, { pool: noQueue })
  await rejectsWith(sleep(0, { pool: noQueue }), 'ERR_QUEUE_FULL')
  await only
  await Promise.all([pool.close(), noQueue.close()])
})

test('close() finishes queued work, then refuses new tasks', async () => {
  const pool = new Pool({ threads: 1 })
  const tasks = [sleep(30, { pool }), sqrtSum(100, { pool }), sqrtSum(200, { pool })]
  const closed = pool.close()
  assert.equal(pool.closed, true)
  await rejectsWith(sqrtSum(1, { pool }), 'ERR_POOL_CLOSED')
  const [, a, b] = await Promise.all(tasks)
  assertClose(a, jsSqrtSum(100))
  assertClose(b, jsSqrtSum(200))
  await closed
  assert.equal(pool.stats.completed, 3)
  await pool.close() // idempotent
})

test('destroy() rejects queued and running tasks with ERR_POOL_CLOSED', async () => {
  const pool = new Pool({ threads: 1 })
  const running = sleep(60_000, { pool })
  await waitUntil(() => pool.stats.running === 1, 'the task to start')
  const queued = [sqrtSum(10, { pool }), sleep(0, { pool })]
  const destroyed = pool.destroy()
  await rejectsWith(running, 'ERR_POOL_CLOSED')
  for (const q of queued) await rejectsWith(q, 'ERR_POOL_CLOSED')
  await destroyed
  await rejectsWith(sleep(0, { pool }), 'ERR_POOL_CLOSED')
  assert.equal(pool.stats.cancelled, 3)
})

test('closing a pool that never ran anything resolves', async () => {
  const pool = new Pool({ threads: 3 })
  await pool.close()
  await pool.destroy()
  await rejectsWith(sqrtSum(1, { pool }), 'ERR_POOL_CLOSED')
})

test('a panic becomes ERR_TASK_PANICKED and the pool keeps serving', async () => {
  const pool = new Pool({ threads: 1 })
  await assert.rejects(panic({ pool }), (err) => {
    assert.equal(err.code, 'ERR_TASK_PANICKED')
    assert.match(err.message, /corepool testing panic/)
    return true
  })
  const results = await Promise.allSettled([panic({ pool }), sqrtSum(5, { pool }), panic({ pool })])
  assert.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'fulfilled', 'rejected'],
  )
  assertClose(await sqrtSum(6, { pool }), jsSqrtSum(6))
  assert.equal(pool.stats.failed, 3)
  await pool.close()
})

test('bad task input rejects with ERR_INVALID_ARG, never throws', async () => {
  const pool = new Pool({ threads: 1 })
  for (const n of ['x', -1, NaN, Infinity, 1.5, 2 ** 53, undefined, null, 10n, {}]) {
    await rejectsWith(
      call(() => sqrtSum(n, { pool })),
      'ERR_INVALID_ARG',
    )
  }
  const badOptions = [
    'x',
    42,
    { signal: {} },
    { signal: 'abort' },
    { timeout: -1 },
    { timeout: -Infinity },
    { timeout: NaN },
    { timeout: '10' },
    { priority: NaN },
    { priority: '1' },
    { priority: Infinity },
    { pool: {} },
  ]
  for (const options of badOptions) {
    await rejectsWith(
      call(() => sqrtSum(1, options)),
      'ERR_INVALID_ARG',
    )
  }
  await rejectsWith(
    call(() => sleep('1', { pool })),
    'ERR_INVALID_ARG',
  )
  await rejectsWith(
    call(() => sleep(-1, { pool })),
    'ERR_INVALID_ARG',
  )
  // Options explicitly undefined mean "not given".
  assertClose(await sqrtSum(2, { pool, signal: undefined, timeout: undefined, priority: undefined }), jsSqrtSum(2))
  // A time limit of 0 is none, as in node:child_process; so is Infinity, and a limit too long for
  // any timer or Instant is simply never reached.
  for (const timeout of [0, Infinity, 2 ** 31, 1e22, Number.MAX_VALUE]) {
    assertClose(await sqrtSum(2, { pool, timeout }), jsSqrtSum(2))
  }
  assertClose(await sqrtSum(2, undefined), jsSqrtSum(2))
  await pool.close()
})

test('bad pool options throw ERR_INVALID_ARG from the constructor', () => {
  const bad = [
    { threads: 0 },
    { threads: -1 },
    { threads: 1.5 },
    { threads: '2' },
    { threads: 5000 },
    { maxQueue: -1 },
    { maxQueue: 0.5 },
    { maxQueue: 'big' },
    'x',
    [],
  ]
  for (const options of bad) {
    assert.throws(
      () => new Pool(options),
      (err) => err.code === 'ERR_INVALID_ARG' && err instanceof CorepoolError,
      JSON.stringify(options),
    )
  }
  assert.equal(new Pool({ maxQueue: Infinity }).maxQueue, Infinity)
  assert.equal(new Pool({ threads: undefined }).threads, os.availableParallelism())
  // null options are not given, as everywhere in the API.
  assert.equal(new Pool(null).threads, os.availableParallelism())
})

for (const kind of ['native', 'JS']) {
  test(`${kind} tasks: busy time and the run-time histogram measure run time only, never going back`, async () => {
    const t0 = performance.now()
    const filename = path.join(root, '__test__', 'fixtures', 'timed-task.cjs')
    const pool = kind === 'native' ? new Pool({ threads: 1 }) : new Pool({ threads: 1, filename })
    // The task's own run time: measured by itself (JS), at least the sleep (native).
    const task = (ms) => (kind === 'native' ? sleep(ms, { pool }).then(() => ms) : pool.run(ms))
    const empty = pool.stats
    assert.equal(empty.busyTime, 0)
    assert.deepEqual(
      [empty.runTimeHistogram.count, empty.runTimeHistogram.sum, empty.runTimeHistogram.buckets.at(-1)],
      [0, 0, { le: Infinity, count: 0 }],
    )
    // The one thread is held 200 ms: the five tasks submitted meanwhile queue behind it.
    const blocker = task(200)
    await waitUntil(() => pool.stats.running === 1, 'the blocker to start')
    const a = pool.stats
    // Before and after the threads start: the same histogram buckets.
    assert.deepEqual(
      a.runTimeHistogram.buckets.map((b) => b.le),
      empty.runTimeHistogram.buckets.map((b) => b.le),
    )
    await new Promise((r) => setTimeout(r, 25))
    const b = pool.stats
    assert.ok(
      b.busyTime - a.busyTime >= 20,
      `a running task's time counts while it runs (${a.busyTime} → ${b.busyTime})`,
    )
    assert.equal(b.runTimeHistogram.count, 0, 'nothing finished yet')
    const queued = Array.from({ length: 5 }, () => task(2))
    let last = b.busyTime
    const poll = setInterval(() => {
      const now = pool.stats.busyTime
      assert.ok(now >= last, `busy time never goes back (${last} → ${now})`)
      last = now
    }, 1)
    const own = await Promise.all([blocker, ...queued])
    clearInterval(poll)
    const s = pool.stats
    const elapsed = performance.now() - t0
    const ownSum = own.reduce((x, y) => x + y, 0)
    assert.ok(s.busyTime >= ownSum, `busy ${s.busyTime} ms >= the tasks' own ${ownSum} ms`)
    assert.ok(s.busyTime <= elapsed * s.threads, `busy ${s.busyTime} ms <= ${elapsed} ms × 1 thread`)
    const h = s.runTimeHistogram
    assert.equal(h.count, 6, 'one count per task run')
    assert.equal(h.buckets.at(-1).count, 6)
    assert.ok(h.sum >= ownSum)
    // One thread runs one task at a time, so run times add up to at most the elapsed time;
    // with the ~200 ms each queued task waited counted in, they would add up to far more.
    assert.ok(h.sum <= elapsed, `run times ${h.sum} ms <= elapsed ${elapsed} ms: no queue time`)
    assert.equal(h.buckets.find((x) => x.le === 1).count, 0, 'every task ran 2 ms or more')
    for (let i = 1; i < h.buckets.length; i++) {
      assert.ok(h.buckets[i].le > h.buckets[i - 1].le && h.buckets[i].count >= h.buckets[i - 1].count)
    }
    await pool.close()
  })
}

test('stats report counts, percentiles and utilization', async () => {
  const pool = new Pool({ threads: 2 })
  await Promise.all(Array.from({ length: 20 }, () => sleep(2, { pool })))
  await rejectsWith(sleep(10_000, { pool, timeout: 20 }), 'ERR_TASK_TIMEOUT')
  // The promise rejects at the deadline; the job itself returns a moment later.
  await waitUntil(() => pool.stats.running === 0, 'the timed-out job to return')
  const s = pool.stats
  assert.equal(s.threads, 2)
  assert.equal(s.completed, 20)
  assert.equal(s.timedOut, 1)
  assert.equal(s.cancelled, 1)
  assert.equal(s.queued, 0)
  for (const h of [s.runTime, s.waitTime]) {
    assert.equal(h.count, 21)
    assert.ok(h.min <= h.p50 && h.p50 <= h.p90 && h.p90 <= h.p99 && h.p99 <= h.max)
  }
  assert.ok(s.runTime.p50 >= 2, 'sleep(2) runs at least 2 ms')
  assert.ok(s.utilization > 0 && s.utilization <= 1)
  await pool.close()
})

function runNode(source) {
  return spawnSync(process.execPath, ['--input-type=module', '-e', source], {
    cwd: root,
    encoding: 'utf8',
    timeout: 60_000,
  })
}

test('the event loop polls for an expected result only briefly: a long task or an idle pool costs it no CPU', async () => {
  const pool = new Pool({ threads: 2 })
  try {
    // Short tasks one at a time: the loop polls after each submission (see wake.rs).
    for (let i = 0; i < 200; i++) await sqrtSum(100, { pool })
    const before = process.cpuUsage()
    // The pool thread sleeps, and after the first few dozen microseconds the loop does too.
    await sleep(300, { pool })
    await new Promise((resolve) => setTimeout(resolve, 200))
    const used = process.cpuUsage(before)
    const ms = (used.user + used.system) / 1000
    assert.ok(ms < 100, `${ms.toFixed(1)} ms of CPU in 500 ms of waiting`)
  } finally {
    await pool.close()
  }
})

test('the process exits by itself when pools are idle, and stays alive while they are busy', () => {
  const r = runNode(`
    import { Pool, sqrtSum } from 'corepool'
    import { sleep } from 'corepool/testing'
    const pool = new Pool({ threads: 2 })
    await sqrtSum(1000, { pool })
    await sqrtSum(1000)
    // No await: the pending task alone must keep the process alive until it settles.
    sleep(300, { pool }).then(() => console.log('slept'))
    const idle = new Pool({ threads: 1 })
    await sqrtSum(10, { pool: idle })
    console.log('main done')
  `)
  assert.equal(r.error, undefined, 'the child exited on its own')
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stdout, 'main done\nslept\n')
})

test('pools made in worker_threads: results settle there, and a worker that ends or is terminated mid-task takes its pools with it', () => {
  const r = runNode(`
    import { Worker } from 'node:worker_threads'
    const code = (terminate) => \`
      const { parentPort } = require('node:worker_threads')
      const { Pool, sqrtSum } = require('corepool')
      const { sleep } = require('corepool/testing')
      const pools = [new Pool({ threads: 1 }), new Pool({ threads: 2 })]
      Promise.all(pools.map((pool) => sqrtSum(1000, { pool }))).then((sums) => {
        parentPort.postMessage(sums.length)
        if (\${terminate}) sleep(60_000, { pool: pools[0] })
      })
    \`
    const exits = []
    for (let i = 0; i < 20; i++) {
      for (const terminate of [false, true]) {
        const w = new Worker(code(terminate), { eval: true, execArgv: [] })
        const exited = new Promise((resolve) => w.once('exit', resolve))
        const n = await new Promise((resolve) => w.once('message', resolve))
        if (n !== 2) throw new Error('a task did not settle in the worker')
        if (terminate) await w.terminate()
        exits.push(await exited)
      }
    }
    console.log(JSON.stringify(exits))
  `)
  assert.equal(r.error, undefined, 'the child exited on its own')
  assert.equal(r.signal, null, r.stderr)
  assert.equal(r.status, 0, r.stderr)
  const exits = JSON.parse(r.stdout)
  assert.equal(exits.length, 40)
  // A worker whose pools are idle ends by itself (0); a terminated one exits with 1.
  assert.deepEqual(
    exits,
    Array.from({ length: 40 }, (_, i) => i % 2),
  )
})

test('a queue larger than the pool settles every task exactly once (soak, 100k tasks)', async () => {
  const pool = new Pool({ threads: 2 })
  const n = 100_000
  const settled = new Uint8Array(n)
  const outcomes = { ok: 0, aborted: 0, timeout: 0, panicked: 0 }
  let seed = 12345
  const rand = () => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff
    return seed
  }
  const controllers = []
  const all = []
  for (let i = 0; i < n; i++) {
    const r = rand()
    const options = { pool, priority: r % 5 }
    if (r % 11 === 0) options.timeout = 1 + (r % 3)
    if (r % 7 === 0) {
      const ac = new AbortController()
      options.signal = ac.signal
      controllers.push(ac)
    }
    const kind = r % 97
    const p = kind === 0 ? panic(options) : kind < 10 ? sleep(r % 2, options) : sqrtSum(r % 2000, options)
    const expected = kind >= 10 ? jsSqrtSum(r % 2000) : undefined
    all.push(
      p.then(
        (v) => {
          settled[i]++
          if (kind >= 10) assert.ok(Math.abs(v - expected) <= expected * 1e-9)
          outcomes.ok++
        },
        (err) => {
          settled[i]++
          if (err.code === 'ERR_ABORTED') outcomes.aborted++
          else if (err.code === 'ERR_TASK_TIMEOUT') outcomes.timeout++
          else if (err.code === 'ERR_TASK_PANICKED') outcomes.panicked++
          else throw err
        },
      ),
    )
    if (controllers.length > 50) controllers.splice(rand() % 50, 1)[0].abort()
    if (i % 5000 === 0) await new Promise((r) => setImmediate(r))
  }
  for (const ac of controllers) ac.abort()
  await Promise.all(all)
  assert.ok(settled.every((c) => c === 1))
  const s = pool.stats
  assert.equal(outcomes.ok + outcomes.aborted + outcomes.timeout + outcomes.panicked, n)
  assert.equal(s.completed, outcomes.ok)
  assert.equal(s.failed, outcomes.panicked)
  assert.equal(s.aborted, outcomes.aborted)
  assert.equal(s.timedOut, outcomes.timeout)
  assert.ok(outcomes.aborted > 0 && outcomes.panicked > 0, JSON.stringify(outcomes))
  await pool.close()
})

test('listenReusePort lets two servers share a port', async () => {
  const { listenReusePort } = esm
  const http = await import('node:http')
  const listen = (fd, name) =>
    new Promise((resolve) => {
      const server = http.createServer((req, res) => res.end(name)).listen({ fd }, () => resolve(server))
    })
  const a = await listen(listenReusePort(0, '127.0.0.1'), 'a')
  const { port } = a.address()
  const b = await listen(listenReusePort(port, '127.0.0.1'), 'b')
  assert.equal(b.address().port, port)
  const answers = new Set()
  for (let i = 0; i < 40 && answers.size < 2; i++) {
    answers.add(await (await fetch(`http://127.0.0.1:${port}/`, { headers: { connection: 'close' } })).text())
  }
  assert.ok(answers.has('a') || answers.has('b'))
  await Promise.all([a, b].map((s) => new Promise((r) => s.close(r))))
  assert.throws(() => listenReusePort(70000), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => listenReusePort(0, 'not-an-ip'), { code: 'ERR_INVALID_ARG' })
})

test('a pool mirrors its settle counts into a shared counters region', async () => {
  const { SharedCounters } = esm
  const counters = new SharedCounters({
    names: ['corepool_tasks_completed_total', 'corepool_tasks_failed_total', 'corepool_tasks_cancelled_total', 'other'],
  })
  const a = new Pool({ threads: 1, counters })
  const b = new Pool({ threads: 1, counters })
  await Promise.all([sqrtSum(10, { pool: a }), sqrtSum(10, { pool: b }), sqrtSum(5, { pool: b })])
  await rejectsWith(panic({ pool: a }), 'ERR_TASK_PANICKED')
  await rejectsWith(sleep(10_000, { pool: b, timeout: 10 }), 'ERR_TASK_TIMEOUT')
  assert.equal(counters.get('corepool_tasks_completed_total'), 3)
  assert.equal(counters.get('corepool_tasks_failed_total'), 1)
  assert.equal(counters.get('corepool_tasks_cancelled_total'), 1)
  assert.equal(counters.get('other'), 0)
  assert.throws(() => new Pool({ counters: new SharedCounters({ names: ['x'] }) }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Pool({ counters: {} }), { code: 'ERR_INVALID_ARG' })
  await Promise.all([a.close(), b.close()])
})
