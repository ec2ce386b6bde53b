// Pool benchmark: corepool against piscina, tinypool and workerpool in one run.
// Usage: node bench/pool.mjs [--quick]
// Prints a table of results and ratios (corepool / peer). Noisy machines: compare within a run.
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import fs from 'node:fs'
import os from 'node:os'
import crypto from 'node:crypto'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { Piscina } from 'piscina'
import Tinypool from 'tinypool'
import workerpool from 'workerpool'
import { throughput, latency, fmt } from './measure.mjs'
import { Pool, sqrtSum } from 'corepool'

const here = path.dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')
const THREADS = Math.max(2, os.availableParallelism())
const fixture = (f) => path.join(here, 'fixtures', f)

const peers = {
  piscina: () => {
    const p = new Piscina({ filename: fixture('tasks.cjs'), minThreads: THREADS, maxThreads: THREADS })
    const sq = new Piscina({ filename: fixture('sqrt.cjs'), minThreads: THREADS, maxThreads: THREADS })
    return {
      trivial: () => p.run(0),
      sqrt: (n) => sq.run(n),
      close: () => Promise.all([p.destroy(), sq.destroy()]),
    }
  },
  tinypool: () => {
    const p = new Tinypool({ filename: fixture('tasks.cjs'), minThreads: THREADS, maxThreads: THREADS })
    const sq = new Tinypool({ filename: fixture('sqrt.cjs'), minThreads: THREADS, maxThreads: THREADS })
    return {
      trivial: () => p.run(0),
      sqrt: (n) => sq.run(n),
      close: () => Promise.all([p.destroy(), sq.destroy()]),
    }
  },
  workerpool: () => {
    const p = workerpool.pool(fixture('workerpool-worker.cjs'), { minWorkers: THREADS, maxWorkers: THREADS })
    return {
      trivial: () => p.exec('trivial', [0]),
      sqrt: (n) => p.exec('sqrtSum', [n]),
      close: () => p.terminate(),
    }
  },
  corepool: (options) => {
    const pool = new Pool({ threads: THREADS, ...options })
    return {
      trivial: () => sqrtSum(0, { pool }),
      sqrt: (n) => sqrtSum(n, { pool }),
      close: () => pool.close(),
    }
  },
}

const rows = []
const row = (metric, values, better = 'higher') => rows.push({ metric, values, better })

async function main() {
  console.log(
    `node ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'}, ${os.availableParallelism()} cores, ${THREADS} threads per pool`,
  )
  const N = quick ? 20_000 : 100_000
  const SQRT_N = quick ? 500 : 2_000
  const LAT = quick ? 2_000 : 10_000
  const trivial = {}
  const p50 = {}
  const p99 = {}
  const sqrt = {}
  for (const [name, make] of Object.entries(peers)) {
    const p = make()
    // Warm up: start workers, JIT.
    await throughput(p.trivial, 2_000, 64)
    await throughput(() => p.sqrt(1e5), 50, THREADS * 2)
    trivial[name] = await throughput(p.trivial, N, 1024)
    const lat = await latency(p.trivial, LAT)
    p50[name] = lat.p50
    p99[name] = lat.p99
    sqrt[name] = await throughput(() => p.sqrt(1e5), SQRT_N, THREADS * 4)
    await p.close()
    console.log(`  ${name}: done`)
  }
  row('trivial task throughput (tasks/s)', trivial)
  row('trivial task latency p50 (µs, one at a time)', p50, 'lower')
  row('trivial task latency p99 (µs, one at a time)', p99, 'lower')
  row('sqrtSum(1e5) throughput (tasks/s; peers run the JS loop)', sqrt)

  await saturation(quick)

  printTable()
}

/** Event-loop delay and libuv-threadpool latency (fs.readFile, pbkdf2), idle vs pool saturated. */
async function saturation() {
  const file = path.join(os.tmpdir(), `corepool-bench-${process.pid}.bin`)
  fs.writeFileSync(file, crypto.randomBytes(64 * 1024))
  const SAMPLES = quick ? 100 : 300

  async function probe() {
    const h = monitorEventLoopDelay({ resolution: 1 })
    h.enable()
    const fsLat = []
    const pbLat = []
    for (let i = 0; i < SAMPLES; i++) {
      let t = performance.now()
      await fs.promises.readFile(file)
      fsLat.push(performance.now() - t)
      t = performance.now()
      await new Promise((r, j) => crypto.pbkdf2('pw', 'salt', 1000, 32, 'sha256', (e) => (e ? j(e) : r())))
      pbLat.push(performance.now() - t)
      await new Promise((r) => setTimeout(r, 1))
    }
    h.disable()
    const p99 = (xs) => xs.sort((a, b) => a - b)[Math.floor(xs.length * 0.99)]
    return { loop: h.percentile(99) / 1e6, fs: p99(fsLat), pbkdf2: p99(pbLat) }
  }

  const idle = await probe()
  const results = { idle }
  const configs = {
    corepool: () => peers.corepool(),
    'corepool niceIncrement 19': () => peers.corepool({ niceIncrement: 19 }),
    piscina: () => peers.piscina(),
  }
  for (const [name, make] of Object.entries(configs)) {
    const p = make()
    let stop = false
    const keepBusy = async () => {
      while (!stop) await p.sqrt(2e6)
    }
    const workers = Array.from({ length: THREADS * 2 }, keepBusy)
    await new Promise((r) => setTimeout(r, 200))
    results[name] = await probe()
    stop = true
    await Promise.all(workers)
    await p.close()
  }
  fs.unlinkSync(file)
  for (const [key, label] of [
    ['loop', 'event-loop delay p99 (ms)'],
    ['fs', 'fs.readFile 64 KiB p99 (ms)'],
    ['pbkdf2', 'crypto.pbkdf2 p99 (ms)'],
  ]) {
    rows.push({
      metric: label,
      saturation: true,
      values: {
        idle: results.idle[key],
        corepool: results.corepool[key],
        nice: results['corepool niceIncrement 19'][key],
        piscina: results.piscina[key],
      },
    })
  }
}

function printTable() {
  console.log('\n| metric | corepool | piscina | tinypool | workerpool | corepool vs piscina |')
  console.log('|---|---|---|---|---|---|')
  for (const r of rows) {
    if (r.saturation) continue
    const v = r.values
    const ratio = r.better === 'higher' ? v.corepool / v.piscina : v.piscina / v.corepool
    console.log(
      `| ${r.metric} | ${fmt(v.corepool)} | ${fmt(v.piscina)} | ${fmt(v.tinypool)} | ${fmt(v.workerpool)} | ${ratio.toFixed(2)}× |`,
    )
  }
  console.log(
    '\n| while the pool is saturated (sqrtSum(2e6) on every thread) | idle | corepool saturated | corepool saturated, niceIncrement 19 | piscina saturated |',
  )
  console.log('|---|---|---|---|---|')
  for (const r of rows) {
    if (!r.saturation) continue
    const v = r.values
    console.log(
      `| ${r.metric} | ${v.idle.toFixed(2)} | ${v.corepool.toFixed(2)} | ${v.nice.toFixed(2)} | ${v.piscina.toFixed(2)} |`,
    )
  }
}

await main()
