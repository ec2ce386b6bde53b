// A/B of two corepool builds in one process, interleaved rounds: trivial native-task
// throughput (sqrtSum(0)), with and without task options, and the time of one large hashMany
// call (with a node:crypto loop over the same items as a reference). Usage:
//   node bench/ab.mjs <other-corepool-dir> [rounds] [--only trivial|hashMany]
// where <other-corepool-dir> is another checkout with its own built addon (e.g. the previous
// commit: git archive <rev> | tar -x -C /tmp/prev, then build it there). Prints each build's
// median and best tasks/s (hashMany: ms per call) and the ratios this / other (> 1: this build
// is faster).
import crypto from 'node:crypto'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import path from 'node:path'
import os from 'node:os'
import { fileURLToPath } from 'node:url'
import { throughput, fmt } from './measure.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const otherDir = process.argv[2]
if (!otherDir) {
  console.error('usage: node bench/ab.mjs <other-corepool-dir> [rounds]')
  process.exit(2)
}
const rounds = Number(process.argv[3] && !process.argv[3].startsWith('--') ? process.argv[3] : 7)
const onlyAt = process.argv.indexOf('--only')
const only = onlyAt > 0 ? process.argv[onlyAt + 1] : null
const THREADS = Math.max(2, os.availableParallelism())
const N = 200_000
const builds = {
  this: createRequire(path.join(here, '..', 'index.js'))(path.join(here, '..', 'index.js')),
  other: createRequire(path.resolve(otherDir, 'index.js'))(path.resolve(otherDir, 'index.js')),
}
const cases = {
  'sqrtSum(0)': (c, pool) => () => c.sqrtSum(0, { pool }),
  'sqrtSum(0, { priority: 1, timeout: 60_000 })': (c, pool) => () =>
    c.sqrtSum(0, { pool, priority: 1, timeout: 60_000 }),
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
console.log(
  `node ${process.version}, ${THREADS} threads, ${N} tasks x ${rounds} rounds, load ${os.loadavg()[0].toFixed(1)}`,
)
for (const [name, make] of only === 'hashMany' ? [] : Object.entries(cases)) {
  const results = { this: [], other: [] }
  const pools = Object.fromEntries(Object.entries(builds).map(([k, c]) => [k, new c.Pool({ threads: THREADS })]))
  for (const [k, c] of Object.entries(builds)) await throughput(make(c, pools[k]), 20_000, 1024) // warm-up
  for (let r = 0; r < rounds; r++) {
    // Alternate which build goes first.
    const order = r % 2 === 0 ? ['this', 'other'] : ['other', 'this']
    for (const k of order) results[k].push(await throughput(make(builds[k], pools[k]), N, 1024))
  }
  await Promise.all(Object.values(pools).map((p) => p.close()))
  const a = median(results.this)
  const b = median(results.other)
  // The best round is the one a loaded machine disturbed least.
  const [ba, bb] = [Math.max(...results.this), Math.max(...results.other)]
  console.log(
    `${name}: median this ${fmt(a)} / other ${fmt(b)} tasks/s = ${(a / b).toFixed(3)}; best ${fmt(ba)} / ${fmt(bb)} = ${(ba / bb).toFixed(3)}`,
  )
}
// One hashMany call at a time on a pool of THREADS threads: ms per call, median of `CALLS`
// calls per round.
const CALLS = 15
const small = Array.from({ length: 10_000 }, () => crypto.randomBytes(1024))
const mixed = Array.from({ length: 20_000 }, (_, i) => crypto.randomBytes(i % 500 === 0 ? 256 * 1024 : i % 2048))
const hashCases = {
  'hashMany sha256, 10 000 x 1 KiB': ['sha256', small],
  'hashMany xxh3-64, 10 000 x 1 KiB': ['xxh3-64', small],
  'hashMany sha512, 20 000 mixed (0-2 KiB, 40 x 256 KiB)': ['sha512', mixed],
}
async function msPerCall(fn) {
  const ms = []
  for (let i = 0; i < CALLS; i++) {
    const t0 = performance.now()
    await fn()
    ms.push(performance.now() - t0)
  }
  return median(ms)
}
for (const [name, [alg, items]] of only === 'trivial' ? [] : Object.entries(hashCases)) {
  const results = { this: [], other: [], 'node:crypto': [] }
  const pools = Object.fromEntries(Object.entries(builds).map(([k, c]) => [k, new c.Pool({ threads: THREADS })]))
  const run = {
    ...Object.fromEntries(
      Object.entries(builds).map(([k, c]) => [k, () => c.hashMany(alg, items, { pool: pools[k] })]),
    ),
    'node:crypto': async () => {
      const nodeAlg = alg === 'xxh3-64' ? 'md5' : alg // node has no xxh3: md5 is its cheapest digest
      return items.map((b) => crypto.createHash(nodeAlg).update(b).digest('hex'))
    },
  }
  for (const fn of Object.values(run)) await msPerCall(fn) // warm-up
  const keys = Object.keys(run)
  for (let r = 0; r < rounds; r++) {
    const order = r % 2 === 0 ? keys : [...keys].reverse()
    for (const k of order) results[k].push(await msPerCall(run[k]))
  }
  await Promise.all(Object.values(pools).map((p) => p.close()))
  const [a, b, n] = keys.map((k) => median(results[k]))
  const [ba, bb] = [Math.min(...results.this), Math.min(...results.other)]
  console.log(
    `${name}: median this ${a.toFixed(2)} / other ${b.toFixed(2)} ms = ${(b / a).toFixed(3)}; best ${ba.toFixed(2)} / ${bb.toFixed(2)} = ${(bb / ba).toFixed(3)}; node:crypto loop${alg === 'xxh3-64' ? ' (md5)' : ''} ${n.toFixed(2)} ms (this ${(n / a).toFixed(2)}x, other ${(n / b).toFixed(2)}x)`,
  )
}
console.log(`load after: ${os.loadavg()[0].toFixed(1)}`)
