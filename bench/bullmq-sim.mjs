// Failure recovery at scale, on one machine: ~100 BullMQ workers (createWorker, concurrency 1)
// in 10 processes on one private redis-server run 1-second native sleep tasks; once the queue is
// in steady state, 10 % of the workers (one whole process) are SIGKILLed at once. Measured: how
// long until every job the killed workers held completed elsewhere, how much work ran twice, and
// that every job completed exactly once.
//   node bench/bullmq-sim.mjs [--processes 10] [--workers 10] [--jobs 600]
import { spawn } from 'node:child_process'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { Queue, QueueEvents } from 'bullmq'
import { findRedisServer, startRedis } from '../__test__/fixtures/redis.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : dflt
}
const PROCESSES = arg('processes', 10)
const WORKERS = arg('workers', 10)
const JOBS = arg('jobs', 600)
const JOB_MS = 1000
const LOCK_DURATION = 5000
const STALLED_INTERVAL = 2000

async function main() {
  const bin = findRedisServer()
  if (bin === null) throw new Error('redis-server is not installed (apt-get install redis-server)')
  const redis = await startRedis(bin)
  const queueName = `sim-${process.pid}`
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null }
  const queue = new Queue(queueName, { connection })
  const events = new QueueEvents(queueName, { connection })
  await events.waitUntilReady()
  const completedAt = new Map() // id -> time
  const completions = new Map() // id -> count
  const starts = new Map() // id -> count (attempts started, from the hosts)
  let allDone
  const done = new Promise((resolve) => (allDone = resolve))
  events.on('completed', ({ jobId }) => {
    completions.set(jobId, (completions.get(jobId) ?? 0) + 1)
    completedAt.set(jobId, performance.now())
    if (completedAt.size === JOBS) allDone()
  })
  let stalls = 0
  events.on('stalled', () => stalls++)

  const hosts = []
  for (let p = 0; p < PROCESSES; p++) {
    const child = spawn(process.execPath, [path.join(here, 'fixtures', 'bullmq-sim-host.mjs')], {
      env: {
        ...process.env,
        SIM_HOST: JSON.stringify({
          port: redis.port,
          queue: queueName,
          workers: WORKERS,
          lockDuration: LOCK_DURATION,
          stalledInterval: STALLED_INTERVAL,
        }),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const host = { child, running: new Set(), ready: null }
    const lines = readline.createInterface({ input: child.stdout })
    host.ready = new Promise((resolve) => {
      lines.on('line', (line) => {
        if (line === 'ready') return resolve()
        const [kind, id] = line.split(' ')
        if (kind === 'S') {
          host.running.add(id)
          starts.set(id, (starts.get(id) ?? 0) + 1)
        } else host.running.delete(id)
      })
    })
    hosts.push(host)
  }
  await Promise.all(hosts.map((h) => h.ready))
  const workers = PROCESSES * WORKERS
  console.log(`${workers} workers in ${PROCESSES} processes ready; ${JOBS} jobs of ${JOB_MS} ms`)

  const t0 = performance.now()
  await queue.addBulk(Array.from({ length: JOBS }, () => ({ name: 'sleep', data: { ms: JOB_MS } })))
  // Steady state: every worker busy for a while.
  await new Promise((resolve) => setTimeout(resolve, 2.5 * JOB_MS))
  const victim = hosts[0]
  const held = [...victim.running]
  const tKill = performance.now()
  victim.child.kill('SIGKILL')
  console.log(
    `killed 1 process (${WORKERS} workers, ${((100 * WORKERS) / workers).toFixed(0)} %) holding ${held.length} running jobs`,
  )

  await done
  const tEnd = performance.now()
  const recoveredAt = Math.max(...held.map((id) => completedAt.get(id)))
  const twice = [...starts.values()].filter((n) => n > 1).length
  const exactlyOnce = [...completions.values()].every((n) => n === 1) && completions.size === JOBS
  const ideal = (JOBS * JOB_MS) / workers / 1000
  console.log(`\n| measure | value |`)
  console.log(`|---|---|`)
  console.log(`| workers / processes / jobs | ${workers} / ${PROCESSES} / ${JOBS} × ${JOB_MS} ms sleep |`)
  console.log(`| lockDuration / stalledInterval | ${LOCK_DURATION} / ${STALLED_INTERVAL} ms |`)
  console.log(`| jobs held by the killed workers | ${held.length} |`)
  console.log(
    `| recovery: kill → last of them completed elsewhere | ${((recoveredAt - tKill) / 1000).toFixed(2)} s (model: ≤ lockDuration + stalledInterval + job = ${((LOCK_DURATION + STALLED_INTERVAL + JOB_MS) / 1000).toFixed(1)} s) |`,
  )
  console.log(
    `| jobs started twice (duplicate work) | ${twice} (${((twice * 100) / JOBS).toFixed(1)} % of jobs; each an interrupted attempt) |`,
  )
  console.log(`| stalled events | ${stalls} |`)
  console.log(`| every job completed exactly once | ${exactlyOnce} |`)
  console.log(`| total run | ${((tEnd - t0) / 1000).toFixed(2)} s (${ideal.toFixed(1)} s with no failure) |`)

  for (const h of hosts) h.child.kill('SIGKILL')
  await events.close()
  await queue.close()
  await redis.stop()
  if (!exactlyOnce) process.exitCode = 1
}

await main()
