import { Pool, sqrtSum, defaultPool, CorepoolError, isWorkerThread, workerData, move } from 'corepool'
import type { TaskContext } from 'corepool'
import { MessageChannel } from 'node:worker_threads'
import { sleep, panic } from 'corepool/testing'
const p = new Pool({ threads: 2, filename: new URL('file:///tmp/x.mjs') })
const n: number = await sqrtSum(10, { pool: p, signal: AbortSignal.timeout(10), priority: 1 })
const r = await p.run<number>({ a: 1 }, { name: 'x', transferList: [] })
const s = defaultPool.stats.runTime.p99
const busy: number = defaultPool.stats.busyTime + defaultPool.stats.runTimeHistogram.buckets[0].le
const ranTasks: number = defaultPool.stats.runTimeHistogram.count + defaultPool.stats.runTimeHistogram.sum
const { port2 } = new MessageChannel()
await p.run(1, { progress: (v: unknown) => v, transferList: [port2, new ArrayBuffer(1)], filename: '/tmp/y.mjs' })
p.on('drain', () => {})
  .on('message', (m: unknown) => m)
  .on('workerCreate', ({ threadId }) => threadId)
const drained: boolean = p.needsDrain
const inWorker: boolean = isWorkerThread
const wd: unknown = workerData
const movedBuf: Buffer = move(Buffer.alloc(1))
const task = (data: number, ctx: TaskContext) => (ctx.progress?.(data), ctx.signal.aborted)
await sleep(1)
await p.close({ force: true })
new Pool({ workerData: { a: 1 }, closeTimeout: 1000 })
import { SharedCounters } from 'corepool'
const counters = new SharedCounters({ names: ['a', 'b'] })
counters.inc('a')
const text: string = counters.toPrometheus()
const hc = new SharedCounters({
  names: [
    { name: 'lat{route="/"}', type: 'histogram', buckets: [0.1, 1] },
    { name: 'q', type: 'gauge', perProcess: true },
  ],
  processes: 8,
})
hc.observe('lat{route="/"}', 0.2)
const p99le: number = hc.histogram('lat{route="/"}').buckets[0].le
const who: number | null = hc.perProcess('q')[0].worker
import {
  hash,
  hashMany,
  createHasher,
  compress,
  decompress,
  passwordHash,
  passwordVerify,
  resize,
  statsFloat64,
  sortFloat64,
  countPrimes,
} from 'corepool'
const hex: string = await hash('sha256', 'x', { pool: p, timeout: 10 })
const buf: Buffer = await hash('blake3', Buffer.from('x'), { encoding: 'buffer' })
const many: string[] = await hashMany('md5', ['a', new Uint8Array(2)])
const hasher = createHasher('xxh3-128')
await hasher.update('x')
const digest: Buffer = await hasher.digest('buffer')
const back: Buffer = await decompress('gzip', await compress('gzip', 'x', { level: 9 }), { maxOutputLength: 10 })
const ok: boolean = await passwordVerify(await passwordHash('pw', { memoryCost: 1024 }), 'pw')
const thumb = await resize(back, { width: 10, fit: 'inside', format: 'webp' })
const total: number = (await statsFloat64(new Float64Array(3))).sum + (await countPrimes(10)) + thumb.width
const sorted: Float64Array = await sortFloat64(new Float64Array(2))
import { spawn, exec, Supervisor } from 'corepool'
const child = spawn('true', [], { timeout: 1000 })
const { code } = await child.exited
const out = await exec('echo', ['hi'])
const running = exec('yes', [], { onMaxBuffer: 'kill', stripFinalNewline: true, all: true })
const killed: boolean = running.kill('SIGTERM', { tree: true })
const runningPid: number | undefined = running.pid
const all: string | undefined = (await running).all
import { fork as forkChild } from 'corepool'
const advanced = forkChild('./w.js', [], { serialization: 'advanced' })
const sup = new Supervisor({ strategy: 'one_for_one', intensity: 3, period: 1000 })
import { createWorker, cancelJob, hostCounters } from 'corepool/bullmq'
import { Queue } from 'bullmq'
const hostRegion = hostCounters('x')
const bw = createWorker<{ n: number }, number>('q', p, {
  task: (d, o) => sqrtSum(d.n, o),
  connection: { host: '127.0.0.1', port: 1 },
  counters: hostRegion,
  timeout: (job) => job.data.n,
  worker: { lockDuration: 2000 },
})
bw.worker.on('completed', () => {})
await bw.ready
const state: 'running' | 'pending' | 'finished' | 'missing' = await cancelJob(new Queue('q'), '1', 'why')
const metricsText: string = bw.metrics({ prefix: 'host_' })
await bw.close()
import { cluster, Cluster } from 'corepool'
const cl: Cluster = await cluster({ module: './app.js', workers: 'max', port: 3000, maxMemoryRestart: '200M' })
const reloaded: { durationMs: number; replaced: number } = await cl.reload()
const nWorkers: number = await cl.scale(2)
const wid: number | null = cluster.workerId
cl.on('restart', () => {})
await cl.stop()
await cluster.closeGracefully(new (await import('node:http')).Server())
