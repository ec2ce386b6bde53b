// corepool/bullmq against a real redis-server (started here on a free loopback port, persistence
// off, stopped at the end). Without redis-server the Redis tests skip (CI=true: they fail).
import { describe, test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import { findRedisServer, freePort, startRedis } from './fixtures/redis.mjs'
import { Queue, QueueEvents, Worker } from 'bullmq'
import { Pool, SharedCounters, spawn, exec, sqrtSum } from '../index.mjs'
import { sleep } from '../testing.mjs'
import { createWorker, cancelJob, hostCounters, COUNTER_NAMES, ACTIVE_GAUGE } from 'corepool/bullmq'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', 'bullmq', name)
const TASKS = fixture('tasks.mjs')
const [STARTED, COMPLETED, FAILED, CANCELLED, REQUEUED, STALLED, LOCK_LOSSES] = COUNTER_NAMES
let seq = 0
const unique = (what) => `bq-${process.pid}-${what}-${++seq}`

const redisBin = findRedisServer()
const inCI = process.env.CI === 'true'
const skip = redisBin === null && !inCI && 'redis-server is not installed (apt-get install redis-server)'

test('require("corepool/bullmq") names the missing peer dependency', () => {
  for (const peer of ['bullmq', 'ioredis']) {
    const r = spawnSync(process.execPath, ['--require', fixture('no-peer.cjs'), '-e', "require('corepool/bullmq')"], {
      cwd: here,
      env: { ...process.env, BQ_HIDE: peer },
      encoding: 'utf8',
    })
    assert.notEqual(r.status, 0)
    assert.match(r.stderr, new RegExp(`optional peer dependencies bullmq and ioredis; "${peer}" is not installed`))
    assert.match(r.stderr, /npm install bullmq ioredis/)
  }
})

test('createWorker and cancelJob check their arguments', async () => {
  const pool = new Pool({ threads: 1 })
  const connection = { host: '127.0.0.1', port: 1 }
  const bad = [
    [1, pool, { connection, task: sqrtSum }],
    ['q', {}, { connection, task: sqrtSum }],
    ['q', pool, undefined],
    ['q', pool, { task: sqrtSum }],
    ['q', pool, { connection, task: 5 }],
    ['q', pool, { connection, task: sqrtSum, run: () => 1 }],
    ['q', pool, { connection, task: sqrtSum, concurrency: 0 }],
    ['q', pool, { connection, task: sqrtSum, timeout: -1 }],
    ['q', pool, { connection, task: sqrtSum, drainTimeout: 'x' }],
    ['q', pool, { connection, task: sqrtSum, counters: new SharedCounters({ names: ['x'] }) }],
    ['q', pool, { connection, task: sqrtSum, signals: 'SIGTERM' }],
  ]
  for (const args of bad) assert.throws(() => createWorker(...args), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(cancelJob({}, '1'), { code: 'ERR_INVALID_ARG' })
  await pool.destroy()
})

if (redisBin === null && inCI) {
  test('redis-server is installed (CI)', () => assert.fail('redis-server is missing: .ci/run installs it with apt-get'))
}

describe('BullMQ on a real redis-server', { skip }, () => {
  let redis
  let connection
  const cleanup = []
  const regions = []

  before(async () => {
    redis = await startRedis(redisBin)
    connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }
  })

  after(async () => {
    for (const fn of cleanup.reverse()) await fn().catch(() => {})
    for (const name of regions) SharedCounters.unlink(name)
    await redis?.stop()
  })

  async function queueWithEvents(name) {
    const queue = new Queue(name, { connection })
    queue.setMaxListeners(0) // each job.waitUntilFinished() listens for the queue's close
    const events = new QueueEvents(name, { connection })
    const seen = { completed: [], failed: [], stalled: [], progress: [] }
    for (const kind of Object.keys(seen)) events.on(kind, (e) => seen[kind].push(e))
    await events.waitUntilReady()
    cleanup.push(
      () => queue.close(),
      () => events.close(),
    )
    return { queue, events, seen }
  }

  /** A worker host in its own process (fixtures/bullmq/host.mjs); resolves once it takes jobs. */
  async function startHost(cfg) {
    const region = cfg.mode === 'inprocess' ? null : unique('region')
    if (region !== null) regions.push(region)
    const child = spawn(process.execPath, [fixture('host.mjs')], {
      cwd: here,
      env: { BQ_HOST: JSON.stringify({ port: redis.port, region, ...cfg }) },
      stdio: ['ignore', 'pipe', 'inherit'],
      forceKillAfter: false,
    })
    const lines = child.lines('stdout')[Symbol.asyncIterator]()
    const first = await lines.next()
    assert.equal(first.value, 'ready', 'the host did not start')
    cleanup.push(async () => {
      child.kill('SIGKILL')
      await child.exited
    })
    return { child, region, counters: region && SharedCounters.open(region) }
  }

  function inProcessWorker(queueName, pool, options) {
    const handle = createWorker(queueName, pool, { connection, signals: false, ...options })
    cleanup.push(() => handle.close())
    return handle
  }

  // Polls until `fn()` is true (each poll a turn of the event loop); the bound is generous.
  async function until(fn, what, ms = 30_000) {
    const end = Date.now() + ms
    while (!(await fn())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
      await delay(2)
    }
  }

  test('1. CPU-heavy jobs: no stall on corepool, stalls in the in-process control', async () => {
    const jobMs = 2500
    const opts = { lockDuration: 2000, stalledInterval: 1000 }
    const core = await queueWithEvents(unique('cpu-core'))
    const ctrl = await queueWithEvents(unique('cpu-ctrl'))
    const host = await startHost({ mode: 'js', task: 'busy', threads: 2, queue: core.queue.name, ...opts })
    const control = await startHost({ mode: 'inprocess', queue: ctrl.queue.name, ...opts })
    await ctrl.queue.add('busy', { ms: 3000 })
    const jobs = await core.queue.addBulk(Array.from({ length: 4 }, () => ({ name: 'busy', data: { ms: jobMs } })))
    const results = await Promise.all(jobs.map((job) => job.waitUntilFinished(core.events, 120_000)))
    assert.ok(results.every((r) => r.pid === host.child.pid))
    await until(() => ctrl.seen.stalled.length > 0, 'a stall of the in-process control')
    control.child.kill('SIGKILL')

    assert.equal(core.seen.stalled.length, 0)
    assert.deepEqual(core.seen.completed.map((e) => e.jobId).sort(), jobs.map((j) => j.id).sort())
    for (const job of jobs) assert.equal((await core.queue.getJob(job.id)).attemptsStarted, 1)
    assert.equal(host.counters.get(COMPLETED), 4)
    assert.equal(host.counters.get(STALLED), 0)
    assert.equal(host.counters.get(LOCK_LOSSES), 0)
  })

  test('2. a SIGKILLed worker host: another completes its job exactly once', async () => {
    const { queue, events, seen } = await queueWithEvents(unique('kill'))
    const opts = { mode: 'native', queue: queue.name, lockDuration: 1000, stalledInterval: 500 }
    const hosts = [await startHost(opts), await startHost(opts)]
    const job = await queue.add('sleep', { ms: 1500 })
    const victim = await Promise.race(
      hosts.map((h) => h.counters.waitFor(STARTED, 1, { timeout: 30_000 }).then(() => h)),
    )
    victim.child.kill('SIGKILL')
    const survivor = hosts.find((h) => h !== victim)
    const result = await job.waitUntilFinished(events, 60_000)
    assert.equal(result.pid, survivor.child.pid)
    assert.equal((await victim.child.exited).signal, 'SIGKILL')
    assert.equal(survivor.counters.get(COMPLETED), 1)
    assert.equal(victim.counters.get(COMPLETED), 0)
    assert.deepEqual(
      seen.completed.map((e) => e.jobId),
      [job.id],
    )
    assert.ok(
      seen.stalled.some((e) => e.jobId === job.id),
      'the job came back through the stalled check',
    )
  })

  test('3. three hosts on one queue: N jobs complete once in all, host counters sum to N', async () => {
    const { queue, events, seen } = await queueWithEvents(unique('hosts'))
    const hosts = []
    for (let i = 0; i < 3; i++) hosts.push(await startHost({ mode: 'native', threads: 2, queue: queue.name }))
    const N = 60
    const jobs = await queue.addBulk(Array.from({ length: N }, (_, i) => ({ name: 'n', data: { n: 20_000 + i } })))
    await Promise.all(jobs.map((job) => job.waitUntilFinished(events, 60_000)))
    const ids = seen.completed.map((e) => e.jobId)
    assert.equal(ids.length, N)
    assert.equal(new Set(ids).size, N)
    // The totals as a scraper sees them: each host's Prometheus text.
    const scraped = hosts.map((h) => {
      const text = h.counters.toPrometheus()
      return Number(new RegExp(`^${COMPLETED} (\\d+)$`, 'm').exec(text)[1])
    })
    assert.equal(
      scraped.reduce((a, b) => a + b, 0),
      N,
    )
    assert.equal(
      hosts.reduce((sum, h) => sum + h.counters.get(STARTED), 0),
      N,
    )
    assert.ok(hosts.every((h) => h.counters.get(FAILED) === 0))
    assert.equal(
      hosts.reduce((sum, h) => sum + h.counters.get('corepool_tasks_completed_total'), 0),
      N,
    )
  })

  test('4. producer cancel of a running native task and of a running JS task', async () => {
    const region = unique('cancel')
    regions.push(region)
    const counters = hostCounters(region)
    // Each pool has one thread and its task would run for 10 minutes: a probe task submitted
    // with the cancel runs only once the cancel stopped that task (native: the kernel saw its
    // flag; JS: the task saw its AbortSignal, long before an abortGrace of 10 minutes). That is
    // the assertion; how long it took is printed (docs/bullmq.md gives the measured times).
    const LONG = 600_000
    let cancels = 0
    const freeAfterCancel = async (queue, pool, job, probe) => {
      await until(async () => (await job.getState()) === 'active' && pool.stats.running === 1, 'the job to run')
      const t0 = performance.now()
      const cancelled = cancelJob(queue, job.id, 'user asked')
      await Promise.race([probe(), delay(60_000).then(() => assert.fail('the cancel did not stop the running task'))])
      const ms = performance.now() - t0
      assert.equal(await cancelled, 'running')
      cancels++
      return ms
    }

    // Native: the sleep kernel sees its cancel flag at once.
    const nq = await queueWithEvents(unique('cancel-native'))
    const native = new Pool({ threads: 1, counters })
    inProcessWorker(nq.queue.name, native, { task: (d, o) => sleep(d.ms, o), counters })
    const job = await nq.queue.add('sleep', { ms: LONG }, { attempts: 3 })
    const waiting = await nq.queue.add('sleep', { ms: LONG }, { attempts: 3 })
    await until(async () => (await job.getState()) === 'active', 'the job to run')
    // A job that has not started yet fails as cancelled as soon as a worker takes it, unrun.
    assert.equal(await cancelJob(nq.queue, waiting.id), 'pending')
    const nativeProbe = () => sqrtSum(1, { pool: native })
    const nativeMs = await freeAfterCancel(nq.queue, native, job, nativeProbe)
    await assert.rejects(job.waitUntilFinished(nq.events, 10_000), /^Error: ERR_ABORTED: .*cancelled \(user asked\)/)
    const failed = await nq.queue.getJob(job.id)
    assert.equal(failed.attemptsMade, 1, 'no retry of a cancelled job')
    await assert.rejects(waiting.waitUntilFinished(nq.events, 10_000), /ERR_ABORTED: the job was aborted: cancelled$/)
    assert.equal((await nq.queue.getJob(waiting.id)).attemptsMade, 1)
    assert.equal(native.stats.completed, 1, 'the cancelled waiting job never ran (only the probe did)')
    assert.equal(await cancelJob(nq.queue, waiting.id), 'finished')
    assert.equal(await cancelJob(nq.queue, 'no-such-job'), 'missing')
    console.log(`native thread free ${nativeMs.toFixed(1)} ms after the cancel`)

    // JS: the task sees its AbortSignal; one deaf to it is stopped by terminating its worker
    // (after abortGrace, 200 ms on its own pool).
    const jq = await queueWithEvents(unique('cancel-js'))
    const js = new Pool({ threads: 1, filename: TASKS, abortGrace: LONG, counters })
    const deafPool = new Pool({ threads: 1, filename: TASKS, abortGrace: 200, counters })
    const jsWorker = inProcessWorker(jq.queue.name, js, {
      run: (job, { signal }) => (job.name === 'ignoreAbort' ? deafPool : js).run(job.data, { name: job.name, signal }),
      counters,
    })
    const spin = await jq.queue.add('spin', { ms: LONG }, { attempts: 3 })
    const jsMs = await freeAfterCancel(jq.queue, js, spin, () => js.run('probe'))
    console.log(`JS thread free ${jsMs.toFixed(1)} ms after the cancel`)
    await assert.rejects(spin.waitUntilFinished(jq.events, 10_000), /ERR_ABORTED/)
    assert.equal((await jq.queue.getJob(spin.id)).attemptsMade, 1)
    const deaf = await jq.queue.add('ignoreAbort', { ms: LONG }, { attempts: 3 })
    const deafMs = await freeAfterCancel(jq.queue, deafPool, deaf, () => deafPool.run('probe'))
    console.log(`JS thread of a task deaf to its signal free ${deafMs.toFixed(1)} ms after the cancel (abortGrace 200)`)
    await assert.rejects(deaf.waitUntilFinished(jq.events, 10_000), /ERR_ABORTED/)
    assert.equal((await jq.queue.getJob(deaf.id)).attemptsMade, 1)

    // A cancel that reaches the worker before the attempt registered there (the message can
    // overtake the job, which comes on another connection) still cancels it.
    const early = 'early-1'
    await redis.probe.publish(
      jq.queue.toKey(`corepool:cancel:${jsWorker.worker.id}`),
      JSON.stringify({ id: early, reason: 'early' }),
    )
    const overtaken = await jq.queue.add('spin', { ms: LONG }, { jobId: early, attempts: 3 })
    await assert.rejects(overtaken.waitUntilFinished(jq.events, 10_000), /ERR_ABORTED: .*cancelled \(early\)/)
    assert.equal((await jq.queue.getJob(early)).attemptsMade, 1)

    // BullMQ's own worker.cancelJob reaches the task too.
    await jsWorker.close()
    await deafPool.close()
    const bq = await queueWithEvents(unique('cancel-local'))
    const localPool = new Pool({ threads: 1, filename: TASKS })
    const local = inProcessWorker(bq.queue.name, localPool, { task: 'spin' })
    await local.ready
    const spun = await bq.queue.add('spin', { ms: LONG })
    await until(() => localPool.stats.running === 1, 'the job to run')
    assert.equal(local.worker.cancelJob(spun.id, 'local'), true)
    assert.equal(local.worker.cancelJob('not-here', 'local'), false)
    await assert.rejects(spun.waitUntilFinished(bq.events, 10_000), /ERR_ABORTED: .*cancelled \(local\)/)

    // + the job cancelled before it started and the one cancelled early.
    assert.equal(counters.get(CANCELLED), cancels + 2)
  })

  test('a job waiting for its retry fails as cancelled when it is taken again, unrun', async () => {
    const { queue, events } = await queueWithEvents(unique('retry-cancel'))
    let runs = 0
    inProcessWorker(queue.name, new Pool({ threads: 1 }), {
      run: async () => {
        runs++
        throw new Error('transient')
      },
    })
    const job = await queue.add('flaky', {}, { attempts: 3, backoff: { type: 'fixed', delay: 60_000 } })
    await until(async () => (await job.getState()) === 'delayed', 'the first attempt to fail')
    assert.equal(await cancelJob(queue, job.id, 'no more'), 'pending')
    await (await queue.getJob(job.id)).promote()
    await assert.rejects(
      job.waitUntilFinished(events, 10_000),
      /ERR_ABORTED: the job was aborted: cancelled \(no more\)/,
    )
    assert.equal(runs, 1)
    assert.equal((await queue.getJob(job.id)).attemptsMade, 2)
  })

  test('5. lock deleted in Redis while the job runs: the task is aborted, the job re-runs once', async () => {
    const { queue, events, seen } = await queueWithEvents(unique('lock'))
    const region = unique('lock')
    regions.push(region)
    const counters = hostCounters(region)
    const pool = new Pool({ threads: 1, filename: TASKS, counters })
    const outcomes = []
    inProcessWorker(queue.name, pool, {
      counters,
      worker: { lockDuration: 1000, stalledInterval: 500 },
      run: async (job, { signal }) => {
        try {
          const r = await pool.run(job.data, { name: 'spin', signal })
          outcomes.push(r)
          return r
        } catch (err) {
          outcomes.push(err.code)
          throw err
        }
      },
    })
    const job = await queue.add('spin', { ms: 1500 })
    await until(async () => (await job.getState()) === 'active' && pool.stats.running === 1, 'the job to run')
    assert.equal(await redis.probe.del(queue.toKey(`${job.id}:lock`)), 1)
    assert.equal(await job.waitUntilFinished(events, 30_000), 'spun')
    assert.deepEqual(outcomes, ['ERR_ABORTED', 'spun'])
    assert.deepEqual(
      seen.completed.map((e) => e.jobId),
      [job.id],
    )
    assert.equal(counters.get(LOCK_LOSSES), 1)
    assert.equal(counters.get(COMPLETED), 1)
  })

  test('6. SIGTERM drains: the running job completes; past drainTimeout it goes back to wait', async () => {
    const { queue, events, seen } = await queueWithEvents(unique('drain'))
    const host = await startHost({ mode: 'native', queue: queue.name, drainTimeout: 20_000 })
    const job = await queue.add('sleep', { ms: 1000 })
    await host.counters.waitFor(STARTED, 1, { timeout: 30_000 })
    host.child.kill('SIGTERM')
    assert.deepEqual(await host.child.exited.then(({ code, signal }) => ({ code, signal })), { code: 0, signal: null })
    assert.equal(await job.getState(), 'completed')
    assert.equal((await queue.getJob(job.id)).returnvalue.pid, host.child.pid)
    assert.equal(seen.stalled.length, 0)

    const short = await startHost({ mode: 'native', queue: queue.name, drainTimeout: 200 })
    const long = await queue.add('sleep', { ms: 60_000 })
    await short.counters.waitFor(STARTED, 1, { timeout: 30_000 })
    short.child.kill('SIGTERM')
    assert.equal((await short.child.exited).code, 0)
    assert.equal(await long.getState(), 'waiting')
    assert.equal(short.counters.get(REQUEUED), 1)
    assert.equal(short.counters.get(ACTIVE_GAUGE), 0)
    // Back in wait without a spent attempt: the next worker runs it.
    inProcessWorker(queue.name, new Pool({ threads: 1 }), { task: async () => 'elsewhere' })
    assert.equal(await long.waitUntilFinished(events, 30_000), 'elsewhere')
    assert.equal(seen.stalled.length, 0)
  })

  test('durations past 2^31 ms mean what they say: drainTimeout waits', async () => {
    const { queue } = await queueWithEvents(unique('long'))
    const region = unique('long')
    regions.push(region)
    const counters = hostCounters(region)
    const pool = new Pool({ threads: 1, counters })
    const handle = inProcessWorker(queue.name, pool, {
      task: async (d, o) => (await sleep(d.ms, o), 'slept'),
      counters,
      drainTimeout: 2 ** 31 + 10,
    })
    const job = await queue.add('sleep', { ms: 300 })
    await counters.waitFor(STARTED, 1, { timeout: 30_000 })
    await handle.close()
    assert.equal(await job.getState(), 'completed')
    assert.equal(counters.get(REQUEUED), 0)
  })

  test('close(): a job that finishes after its drain abort, ignoring it, completes instead of running again', async () => {
    const { queue } = await queueWithEvents(unique('late'))
    const region = unique('late')
    regions.push(region)
    const counters = hostCounters(region)
    const handle = inProcessWorker(queue.name, new Pool({ threads: 1 }), {
      run: async () => (await delay(500), 'late but done'), // deaf to its signal
      counters,
      drainTimeout: 50,
    })
    const job = await queue.add('late', {})
    await counters.waitFor(STARTED, 1, { timeout: 30_000 })
    await handle.close()
    assert.equal(await job.getState(), 'completed')
    assert.equal((await queue.getJob(job.id)).returnvalue, 'late but done')
    assert.equal(counters.get(REQUEUED), 0)
    assert.equal(counters.get(COMPLETED), 1)
  })

  test('7. timeout, a crashed JS worker (retried) and progress, as the producer sees them', async () => {
    const { queue, events, seen } = await queueWithEvents(unique('outcomes'))
    const strict = await queueWithEvents(unique('outcomes-strict'))
    const pool = new Pool({ threads: 2, filename: TASKS })
    const run = (job, ctx) => {
      const { signal, timeout } = ctx
      switch (job.name) {
        case 'sleep':
          return sleep(job.data.ms, { pool, signal, timeout })
        case 'crash':
          return pool.run(job.data, { name: 'crashOnce', signal, timeout })
        case 'progress':
          return pool.run({ steps: 5, gauge: ctx.progressCounter }, { name: 'progress', signal, timeout })
        case 'bad':
          return sqrtSum(-1, { pool, signal, timeout })
      }
    }
    const timeout = (job) => job.data.timeout ?? Infinity
    inProcessWorker(queue.name, pool, { run, timeout, progress: { interval: 50 }, closePool: false })
    inProcessWorker(strict.queue.name, pool, { run, timeout, retryTimeouts: false, closePool: false })
    // The JS task module's progress channel: ctx.progress in the task, no gauge.
    const channel = await queueWithEvents(unique('outcomes-channel'))
    inProcessWorker(channel.queue.name, pool, { task: 'progress', progress: { interval: 50 }, closePool: false })
    cleanup.push(() => pool.close())

    const marker = path.join(os.tmpdir(), `${unique('crash')}.marker`)
    cleanup.push(async () => fs.rmSync(marker, { force: true }))
    const slow = await queue.add('sleep', { ms: 10_000, timeout: 150 }, { attempts: 2 })
    const slowStrict = await strict.queue.add('sleep', { ms: 10_000, timeout: 150 }, { attempts: 2 })
    const crash = await queue.add('crash', { marker }, { attempts: 2 })
    const progress = await queue.add('progress', {})
    const bad = await queue.add('bad', {}, { attempts: 3 })

    await assert.rejects(slow.waitUntilFinished(events, 30_000), /^Error: ERR_TASK_TIMEOUT/)
    assert.equal((await queue.getJob(slow.id)).attemptsMade, 2, 'a timeout is retried by default')
    await assert.rejects(slowStrict.waitUntilFinished(strict.events, 30_000), /^Error: ERR_TASK_TIMEOUT/)
    assert.equal((await strict.queue.getJob(slowStrict.id)).attemptsMade, 1, 'retryTimeouts: false')

    assert.equal(await crash.waitUntilFinished(events, 30_000), 'survived')
    const crashed = await queue.getJob(crash.id)
    assert.equal(crashed.attemptsMade, 2, 'the crashed attempt and the one that succeeded')
    assert.match(crashed.stacktrace[0], /ERR_WORKER_CRASHED/)

    assert.equal(await progress.waitUntilFinished(events, 30_000), 'done')
    const values = seen.progress.filter((e) => e.jobId === progress.id).map((e) => e.data)
    assert.ok(values.length >= 1)
    assert.equal(values.at(-1), 50)
    assert.deepEqual(
      values,
      [...values].sort((a, b) => a - b),
    )
    assert.equal((await queue.getJob(progress.id)).progress, 50)
    const direct = await channel.queue.add('progress', { steps: 5 })
    assert.equal(await direct.waitUntilFinished(channel.events, 30_000), 'done')
    const sent = channel.seen.progress.filter((e) => e.jobId === direct.id).map((e) => e.data)
    assert.equal(sent.at(-1), 50)
    assert.deepEqual(
      sent,
      [...sent].sort((a, b) => a - b),
    )

    await assert.rejects(bad.waitUntilFinished(events, 30_000), /^Error: ERR_INVALID_ARG/)
    assert.equal((await queue.getJob(bad.id)).attemptsMade, 1, 'ERR_INVALID_ARG is not retried')
  })

  test("examples/bullmq: the producer's thumbnail jobs run on the worker host; SIGTERM exits 0", async () => {
    const root = path.dirname(here)
    const region = unique('example')
    regions.push(region)
    const env = {
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
      METRICS_PORT: String(await freePort()),
      COUNTERS: region,
    }
    const host = spawn(process.execPath, ['examples/bullmq/worker.js'], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    cleanup.push(async () => {
      host.kill('SIGKILL')
      await host.exited
    })
    const lines = host.lines('stdout')[Symbol.asyncIterator]()
    assert.match((await lines.next()).value, /^worker host \d+ ready/)
    const { stdout } = await exec(process.execPath, ['examples/bullmq/producer.js'], {
      cwd: root,
      env,
      timeout: 120_000,
    })
    const [, completed, failed, dir] = /^(\d+) completed, (\d+) failed; thumbnails in (.+)$/m.exec(stdout)
    fs.rmSync(dir, { recursive: true, force: true })
    assert.equal(Number(completed) + Number(failed), 8, stdout)
    assert.ok(Number(completed) >= 7, stdout)
    for (const line of stdout.split('\n').filter((l) => l.includes(' failed: '))) assert.match(line, /ERR_ABORTED/)
    const metrics = await (await fetch(`http://127.0.0.1:${env.METRICS_PORT}/metrics`)).text()
    assert.match(metrics, new RegExp(`^${COMPLETED} ${completed}$`, 'm'))
    host.kill('SIGTERM')
    assert.deepEqual(await host.exited.then(({ code, signal }) => ({ code, signal })), { code: 0, signal: null })
  })
})
