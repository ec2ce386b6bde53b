import { Pool, sqrtSum, defaultPool, CorepoolError } from 'corepool'
import { sleep, panic } from 'corepool/testing'
const p = new Pool({ threads: 2, filename: new URL('file:///tmp/x.mjs') })
const n: number = await sqrtSum(10, { pool: p, signal: AbortSignal.timeout(10), priority: 1 })
const r = await p.run<number>({ a: 1 }, { name: 'x', transferList: [] })
const s = defaultPool.stats.runTime.p99
await sleep(1)
await p.close()
import { SharedCounters } from 'corepool'
const counters = new SharedCounters({ names: ['a', 'b'] })
counters.inc('a')
const text: string = counters.toPrometheus()
