// A/B of two corepool builds in one process: trivial native-task throughput (sqrtSum(0)), with
// and without task options, interleaved rounds. Usage:
//   node bench/ab.mjs <other-corepool-dir> [rounds]
// where <other-corepool-dir> is another checkout with its own built addon (e.g. the previous
// commit: git archive <rev> | tar -x -C /tmp/prev, then build it there). Prints each build's
// median and best tasks/s and the ratios this / other.
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
const rounds = Number(process.argv[3] ?? 7)
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
for (const [name, make] of Object.entries(cases)) {
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
console.log(`load after: ${os.loadavg()[0].toFixed(1)}`)
