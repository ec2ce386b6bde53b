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

async function main() {
  console.log(`node ${process.version}, ${os.availableParallelism()} cores, ${THREADS} threads per pool`)
  const N = quick ? 10_000 : 50_000
  const FIB = quick ? 20 : 200
  const MB = quick ? 200 : 1000
  const results = {}
  for (const [name, make] of Object.entries(makers)) {
    if (only && !only.includes(name)) continue
    const p = make()
    const trivial = () => p.run({ kind: 'trivial' })
    await throughput(trivial, 2_000, 64) // start workers, warm up
    const r = {}
    r.trivial = await throughput(trivial, N, 512)
    Object.assign(r, await latency(trivial, quick ? 2_000 : 10_000))
    r.fib = await throughput(() => p.run({ kind: 'fib', n: 30 }), FIB, THREADS * 2)
    r.mib = await throughput(
      () => {
        const buf = new ArrayBuffer(1 << 20)
        return p.run({ kind: 'bytes', buf }, [buf])
      },
      MB,
      THREADS * 2,
    )
    await p.close()
    results[name] = r
    console.log(`  ${name}: done`)
  }
  const names = Object.keys(results)
  const metrics = [
    ['trivial task throughput (tasks/s)', 'trivial', true],
    ['trivial task latency p50 (µs, one at a time)', 'p50', false],
    ['trivial task latency p99 (µs, one at a time)', 'p99', false],
    ['fib(30) throughput (tasks/s)', 'fib', true],
    ['1 MiB transferred buffer (tasks/s)', 'mib', true],
  ]
  console.log(`\n| metric | ${names.join(' | ')} | corepool vs piscina | corepool vs best peer |`)
  console.log(`|---|${names.map(() => '---|').join('')}---|---|`)
  for (const [label, key, higher] of metrics) {
    const v = names.map((n) => results[n][key])
    const peers = names.filter((n) => n !== 'corepool').map((n) => results[n][key])
    const best = higher ? Math.max(...peers) : Math.min(...peers)
    const ratio = (a, b) => (higher ? a / b : b / a).toFixed(2) + '×'
    console.log(
      `| ${label} | ${v.map((x) => fmt(x)).join(' | ')} | ${ratio(results.corepool[key], results.piscina[key])} | ${ratio(results.corepool[key], best)} |`,
    )
  }
}

await main()
