// A BullMQ worker host, six ways, on the same jobs (sum of square roots, the native sqrtSum
// kernel or the same JS loop): corepool-native, corepool-native-c8 (8 jobs in flight on the same
// 2 threads), corepool-JS (createWorker from corepool/bullmq),
// BullMQ's in-process processor and its sandboxed processors (useWorkerThreads, forked).
// Each host is its own process with concurrency 2 on a private redis-server; per workload the
// variants run one after the other in an order that rotates. Measured per host: jobs/s,
// event-loop delay p99 (monitorEventLoopDelay in the host), peak RSS of the host and its
// children, stalls (QueueEvents 'stalled'), and the children still alive 1 s after the host is SIGKILLed.
//   node bench/bullmq.mjs [--quick] [--only=short,cpu,long] [--variants=corepool-native,bullmq-inprocess,...]
import { spawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import { setTimeout as delay } from 'node:timers/promises'
import { Queue, QueueEvents } from 'bullmq'
import { findRedisServer, startRedis } from '../__test__/fixtures/redis.mjs'
import { fmt } from './measure.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')
const listArg = (name) =>
  process.argv
    .find((a) => a.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',')
const ALL_VARIANTS = [
  'corepool-native',
  'corepool-native-c8',
  'corepool-js',
  'bullmq-inprocess',
  'bullmq-sandbox-threads',
  'bullmq-sandbox-fork',
]
const VARIANTS = ALL_VARIANTS.filter((v) => listArg('variants')?.includes(v) ?? true)
const CONCURRENCY = 2
const ALL_WORKLOADS = [
  // ~0.1 ms of work: what the queue round trips cost.
  { name: 'short', n: 10_000, jobs: quick ? 500 : 3000, lockDuration: 30_000, stalledInterval: 30_000, limit: 120_000 },
  // ~50 ms of CPU per job.
  { name: 'cpu', n: 20_000_000, jobs: quick ? 20 : 60, lockDuration: 30_000, stalledInterval: 30_000, limit: 120_000 },
  // Seconds of CPU per job, longer than lockDuration: where the in-process processor stalls.
  { name: 'long', n: 600_000_000, jobs: 4, lockDuration: 2000, stalledInterval: 1000, limit: 40_000 },
]
const WORKLOADS = ALL_WORKLOADS.filter((w) => listArg('only')?.includes(w.name) ?? true)

/** The pids of `root`'s descendants, from /proc. */
function descendants(root) {
  const parents = new Map()
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8')
      parents.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]))
    } catch {}
  }
  const inTree = (pid) => {
    for (let p = parents.get(pid), hops = 0; p > 1 && hops < 64; p = parents.get(p), hops++) if (p === root) return true
    return false
  }
  return [...parents.keys()].filter(inTree)
}

const alive = (pid) => {
  try {
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
  } catch {
    return false
  }
}

function rssOfTree(root) {
  // RSS (bytes) of `root` and its descendants, from /proc.
  let total = 0
  for (const pid of [root, ...descendants(root)]) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))
      if (m) total += Number(m[1]) * 1024
    } catch {}
  }
  return total
}

async function runOne(port, variant, w, round) {
  const queueName = `bench-${w.name}-${variant}-${round}-${process.pid}`
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null }
  const queue = new Queue(queueName, { connection })
  const events = new QueueEvents(queueName, { connection })
  await events.waitUntilReady()
  let completed = 0
  let stalls = 0
  let onAll = null
  events.on('completed', () => {
    if (++completed === w.jobs) onAll?.()
  })
  events.on('stalled', () => stalls++)
  const host = spawn(process.execPath, [path.join(here, 'fixtures', 'bullmq-host.mjs')], {
    env: {
      ...process.env,
      BENCH_HOST: JSON.stringify({
        port,
        queue: queueName,
        variant,
        concurrency: CONCURRENCY,
        lockDuration: w.lockDuration,
        stalledInterval: w.stalledInterval,
      }),
    },
    stdio: ['pipe', 'pipe', 'inherit'],
  })
  const lines = readline.createInterface({ input: host.stdout })[Symbol.asyncIterator]()
  const ready = await lines.next()
  if (ready.value !== 'ready') throw new Error(`${variant}: the host did not start`)
  const stats = async () => {
    host.stdin.write('stats\n')
    return JSON.parse((await lines.next()).value)
  }
  let peak = rssOfTree(host.pid)
  const sampler = setInterval(() => (peak = Math.max(peak, rssOfTree(host.pid))), 100)
  await stats() // resets the histogram: only the measured jobs count
  const all = new Promise((resolve) => (onAll = resolve))
  const t0 = performance.now()
  for (let i = 0; i < w.jobs; i += 1000) {
    const count = Math.min(1000, w.jobs - i)
    await queue.addBulk(Array.from({ length: count }, () => ({ name: 'sqrt', data: { n: w.n } })))
  }
  const finished = await Promise.race([all.then(() => true), delay(w.limit).then(() => false)])
  const seconds = (performance.now() - t0) / 1000
  const loop = await stats()
  clearInterval(sampler)
  // A host dies the hard way (OOM killer, node crash): are its children gone with it?
  const children = descendants(host.pid)
  host.kill('SIGKILL')
  await new Promise((resolve) => host.once('exit', resolve))
  await delay(1000)
  const orphans = children.filter(alive)
  for (const pid of orphans) process.kill(pid, 'SIGKILL')
  await queue.obliterate({ force: true }).catch(() => {})
  await events.close()
  await queue.close()
  return {
    variant,
    completed,
    finished,
    jobsPerSec: completed / seconds,
    p99: loop.p99,
    max: loop.max,
    rssMB: peak / 2 ** 20,
    stalls,
    orphans: orphans.length,
  }
}

async function main() {
  const bin = findRedisServer()
  if (bin === null) throw new Error('redis-server is not installed (apt-get install redis-server)')
  const redis = await startRedis(bin)
  console.log(
    `node ${process.version}, BullMQ ${JSON.parse(fs.readFileSync(path.join(here, '..', 'node_modules', 'bullmq', 'package.json'))).version}, concurrency ${CONCURRENCY}`,
  )
  const results = {}
  try {
    for (const [round, w] of WORKLOADS.entries()) {
      // Rotate the order between workloads so no variant always runs first (or last).
      const order = VARIANTS.map((_, i) => VARIANTS[(i + round) % VARIANTS.length])
      results[w.name] = {}
      for (const variant of order) {
        const r = await runOne(redis.port, variant, w, round)
        results[w.name][variant] = r
        console.error(`${w.name} ${variant}: ${JSON.stringify(r)}`)
      }
    }
  } finally {
    await redis.stop()
  }
  for (const w of WORKLOADS) {
    const rows = results[w.name]
    const perJob = w.name === 'short' ? '~0.1 ms' : w.name === 'cpu' ? '~50 ms' : 'seconds (lockDuration 2000)'
    console.log(`\n### ${w.name} jobs (${perJob} of CPU each, ${w.jobs} jobs)\n`)
    console.log(
      '| host | jobs/s | completed | event-loop p99 (ms) | peak RSS (MB) | stalls | children left after SIGKILL |',
    )
    console.log('|---|---|---|---|---|---|---|')
    for (const v of VARIANTS) {
      const r = rows[v]
      console.log(
        `| ${v} | ${fmt(r.jobsPerSec)} | ${r.completed} of ${w.jobs} | ${fmt(r.p99)} | ${fmt(r.rssMB)} | ${r.stalls} | ${r.orphans} |`,
      )
    }
    for (const c of ['corepool-native', 'corepool-native-c8', 'corepool-js']) {
      for (const peer of ['bullmq-sandbox-threads', 'bullmq-sandbox-fork', 'bullmq-inprocess']) {
        const a = rows[c]
        const b = rows[peer]
        if (a === undefined || b === undefined) continue
        const ratio = b.jobsPerSec > 0 ? `${(a.jobsPerSec / b.jobsPerSec).toFixed(2)}×` : 'n/a (peer completed none)'
        console.log(`- ${c} vs ${peer}: jobs/s ${ratio}, memory ${(a.rssMB / b.rssMB).toFixed(2)}×`)
      }
    }
  }
}

await main()
