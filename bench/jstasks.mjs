// JS-task benchmark: corepool's Pool({ filename }) against piscina, tinypool, workerpool and
// poolifier running the same module, in one run.
// Usage: node bench/jstasks.mjs [--quick] [--only corepool,piscina]
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import os from 'node:os'
import { Piscina } from 'piscina'
import Tinypool from 'tinypool'
import workerpool from 'workerpool'
import { FixedThreadPool } from 'poolifier'
import { throughput, latency, fmt } from './measure.mjs'
import { Pool } from 'corepool'

const here = path.dirname(fileURLToPath(import.meta.url))
const quick = process.argv.includes('--quick')
const onlyArg = process.argv.indexOf('--only')
const only = onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : null
const THREADS = Math.max(2, os.availableParallelism())
const tasks = path.join(here, 'fixtures', 'js-tasks.mjs')

const makers = {
  corepool: () => {
    const pool = new Pool({ filename: tasks, threads: THREADS, minThreads: THREADS })
    return {
      run: (msg, transfer) => pool.run(msg, transfer ? { transferList: transfer } : undefined),
      close: () => pool.close(),
    }
  },
  piscina: () => {
    const pool = new Piscina({ filename: tasks, minThreads: THREADS, maxThreads: THREADS })
    return {
      run: (msg, transfer) => pool.run(msg, transfer ? { transferList: transfer } : undefined),
      close: () => pool.destroy(),
    }
  },
  tinypool: () => {
    const pool = new Tinypool({ filename: tasks, minThreads: THREADS, maxThreads: THREADS })
    return {
      run: (msg, transfer) => pool.run(msg, transfer ? { transferList: transfer } : undefined),
      close: () => pool.destroy(),
    }
  },
  workerpool: () => {
    const pool = workerpool.pool(path.join(here, 'fixtures', 'workerpool-js.mjs'), {
      minWorkers: THREADS,
      maxWorkers: THREADS,
      workerType: 'thread',
    })
    return {
      run: (msg, transfer) => pool.exec('dispatch', [msg], transfer ? { transfer } : undefined),
      close: () => pool.terminate(),
    }
  },
  poolifier: () => {
    const pool = new FixedThreadPool(THREADS, path.join(here, 'fixtures', 'poolifier-worker.mjs'))
    return { run: (msg, transfer) => pool.execute(msg, undefined, undefined, transfer), close: () => pool.destroy() }
  },
}

// Every pool stays up for the whole run and the measurements are interleaved: each round
// measures every metric on every pool, in an order that rotates from round to round, so a
// noisy stretch of the machine hits all pools alike. The table shows, per pool, the median over
// the rounds (latency percentiles over all rounds' samples pooled), and the ratios are the
// medians of the per-round ratios (each between measurements taken seconds apart).
async function main() {
  console.log(`node ${process.version}, ${os.availableParallelism()} cores, ${THREADS} threads per pool`)
  const ROUNDS = quick ? 3 : 9
  const N = quick ? 2_000 : 10_000
  const LAT = quick ? 500 : 2_000
  const FIB = quick ? 10 : 40
  const MB = quick ? 50 : 200
  const names = Object.keys(makers).filter((n) => !only || only.includes(n))
  if (!names.includes('corepool') || !names.includes('piscina'))
    throw new Error('--only must name corepool and piscina')
  const pools = {}
  for (const name of names) {
    const p = makers[name]()
    await throughput(() => p.run({ kind: 'trivial' }), 2_000, 64) // start workers, warm up
    await throughput(() => p.run({ kind: 'fib', n: 25 }), 20, THREADS)
    pools[name] = p
  }
  const metrics = [
    // [label, key, larger is better, measure(pool) -> number or latency samples]
    ['trivial task throughput (tasks/s)', 'trivial', true, (p) => throughput(() => p.run({ kind: 'trivial' }), N, 512)],
    ['trivial task latency p50 (µs, one at a time)', 'p50', false, null],
    ['trivial task latency p99 (µs, one at a time)', 'p99', false, null],
    [
      'fib(30) throughput (tasks/s)',
      'fib',
      true,
      (p) => throughput(() => p.run({ kind: 'fib', n: 30 }), FIB, THREADS * 2),
    ],
    [
      '1 MiB transferred buffer (tasks/s)',
      'mib',
      true,
      (p) =>
        throughput(
          () => {
            const buf = new ArrayBuffer(1 << 20)
            return p.run({ kind: 'bytes', buf }, [buf])
          },
          MB,
          THREADS * 2,
        ),
    ],
    [
      '1 MiB result (tasks/s; corepool and piscina: move())',
      'result',
      true,
      (p) =>
        throughput(
          async () => {
            const r = await p.run({ kind: 'result' })
            if (r[0] !== 1 || r.length !== 1 << 20) throw new Error('bad result')
          },
          MB,
          THREADS * 2,
        ),
    ],
  ]
  // results[name][key] = one value per round; samples[name] = every latency sample.
  const results = Object.fromEntries(
    names.map((n) => [n, { trivial: [], p50: [], p99: [], fib: [], mib: [], result: [] }]),
  )
  const rss = () => `${Math.round(process.memoryUsage().rss / 2 ** 20)} MiB`
  console.log(`rss after warm-up: ${rss()}`)
  const samples = Object.fromEntries(names.map((n) => [n, []]))
  for (let round = 0; round < ROUNDS; round++) {
    const order = names.map((_, i) => names[(i + round) % names.length])
    for (const [, key, , measure] of metrics) {
      for (const name of order) {
        if (measure) {
          results[name][key].push(await measure(pools[name]))
        } else if (key === 'p50') {
          const lat = await latency(() => pools[name].run({ kind: 'trivial' }), LAT, true)
          samples[name].push(...lat.samples)
          results[name].p50.push(lat.p50)
          results[name].p99.push(lat.p99)
        }
      }
    }
    console.log(`  round ${round + 1}/${ROUNDS} done (rss ${rss()})`)
  }
  for (const name of names) await pools[name].close()

  const median = (xs) => {
    const s = [...xs].sort((a, b) => a - b)
    return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
  }
  const pooled = (name, q) => {
    const s = Float64Array.from(samples[name]).sort()
    return s[Math.min(s.length - 1, Math.floor(q * s.length))]
  }
  const value = (name, key) =>
    key === 'p50' ? pooled(name, 0.5) : key === 'p99' ? pooled(name, 0.99) : median(results[name][key])
  // Per-round ratios, > 1 when corepool is better.
  const ratios = (key, higher, peer) =>
    results.corepool[key].map((ours, i) => {
      const theirs = peer(i)
      return higher ? ours / theirs : theirs / ours
    })
  const peers = names.filter((n) => n !== 'corepool')
  const show = (rs) => {
    const s = [...rs].sort((a, b) => a - b)
    return `${median(s).toFixed(2)}× (${s[0].toFixed(2)}–${s[s.length - 1].toFixed(2)})`
  }
  console.log(
    `\n${ROUNDS} interleaved rounds; ratio columns: median of the per-round ratios (range); best peer: the best overall value\n`,
  )
  console.log(`| metric | ${names.join(' | ')} | corepool vs piscina | corepool vs best peer |`)
  console.log(`|---|${names.map(() => '---|').join('')}---|---|`)
  for (const [label, key, higher] of metrics) {
    // The best peer is the one with the best overall value; the ratio pairs each round with it.
    const best = peers.reduce((a, b) =>
      (higher ? value(b, key) > value(a, key) : value(b, key) < value(a, key)) ? b : a,
    )
    console.log(
      `| ${label} | ${names.map((n) => fmt(value(n, key))).join(' | ')} | ${show(ratios(key, higher, (i) => results.piscina[key][i]))} | ${show(ratios(key, higher, (i) => results[best][key][i]))} ${best} |`,
    )
  }
}

await main()
