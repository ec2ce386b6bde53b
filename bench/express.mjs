// Load test of the example Express service against (a) the seeds' blocking server and (b) the
// same server offloading to piscina. Loopback only, bounded in time.
// Usage: node bench/express.mjs [--quick]
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import autocannon from 'autocannon'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
const quick = process.argv.includes('--quick')
const DURATION = quick ? 4 : 10
const N = 2_000_000 // /compute?n= : a few ms of work per request

const servers = {
  blocking: path.join(here, 'fixtures', 'blocking-server.cjs'),
  piscina: path.join(here, 'fixtures', 'piscina-server.cjs'),
  corepool: path.join(root, 'examples', 'express', 'server.js'),
}

function start(file) {
  const child = spawn(process.execPath, [file], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  return new Promise((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d) => {
      out += d
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve({ child, url: m[1] })
    })
    child.once('exit', (code) => reject(new Error(`${file} exited (${code})`)))
  })
}

const run = (opts) => new Promise((resolve, reject) => autocannon(opts, (err, r) => (err ? reject(err) : resolve(r))))

async function measure(name) {
  const { child, url } = await start(servers[name])
  await run({ url: `${url}/compute?n=1000`, connections: 4, amount: 200 }) // warm up
  const [compute, health] = await Promise.all([
    run({ url: `${url}/compute?n=${N}`, connections: 16, duration: DURATION }),
    run({ url: `${url}/health`, connections: 1, duration: DURATION }),
  ])
  child.kill('SIGTERM')
  await new Promise((r) => child.once('exit', r))
  return {
    healthP50: health.latency.p50,
    healthP99: health.latency.p99,
    healthRps: health.requests.average,
    computeRps: compute.requests.average,
    computeErrors: compute.errors + compute.non2xx,
  }
}

const results = {}
for (const name of Object.keys(servers)) {
  results[name] = await measure(name)
  console.log(`  ${name}: done`)
}
const r = results
console.log(
  `\n/compute?n=${N} with 16 connections and /health with 1 connection, ${DURATION} s each, at the same time:\n`,
)
console.log('| server | /health p50 (ms) | /health p99 (ms) | /compute req/s |')
console.log('|---|---|---|---|')
for (const [name, v] of Object.entries(r)) {
  console.log(`| ${name} | ${v.healthP50} | ${v.healthP99} | ${v.computeRps.toFixed(0)} |`)
}
const ms = (v) => (v < 1 ? '< 1 ms' : `${v} ms`)
console.log(
  `\ncorepool vs piscina: /compute throughput ${(r.corepool.computeRps / r.piscina.computeRps).toFixed(2)}×; ` +
    `/health p99: corepool ${ms(r.corepool.healthP99)}, piscina ${ms(r.piscina.healthP99)}, ` +
    `blocking ${ms(r.blocking.healthP99)}`,
)
