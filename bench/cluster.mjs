// A corepool cluster vs node:cluster vs PM2's cluster mode, each running the example service
// (bench/fixtures/cluster-app.cjs, the same app code in all three) in 4 workers on loopback:
// - req/s and p99 latency of GET /health and GET /compute (autocannon);
// - a rolling reload of the 4 workers under /health load: how long it takes (`corepool reload`
//   vs `pm2 reload`, both CLIs; node:cluster has no reload, so its primary runs the usual
//   hand-written one on SIGHUP), how many requests failed, whether every worker was replaced.
//   The load during the reload comes from Node's HTTP client, not autocannon: autocannon writes
//   its next request on a connection whose last response said `Connection: close` (what every
//   stopping worker answers), and that request is reset by the closing server in all three.
// Rounds are interleaved (each round measures all three, in a rotating order); the table gives
// the median of the rounds and corepool's ratios.
//
// PM2 is not a devDependency (it would add ~80 packages to every `npm ci`): the bench installs
// it from the npm registry into <tmpdir>/corepool-bench-pm2 on first use, runs it with a
// PM2_HOME of its own in a temporary directory, and ends with `pm2 kill`.
//
// Usage: node bench/cluster.mjs [--quick] [--rounds N]
import { spawn, execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import fs from 'node:fs'
import net from 'node:net'
import http from 'node:http'
import os from 'node:os'
import path from 'node:path'
import autocannon from 'autocannon'
import { cluster } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const root = path.dirname(here)
const quick = process.argv.includes('--quick')
const roundsArg = process.argv.indexOf('--rounds')
const ROUNDS = roundsArg > 0 ? Number(process.argv[roundsArg + 1]) : quick ? 1 : 3
const DURATION = quick ? 3 : 8 // s per throughput measure
const WORKERS = 4
const COMPUTE_N = 2_000_000 // /compute?n= : a few ms of native work per request
const PM2_VERSION = '7.0.4'
const APP = path.join(here, 'fixtures', 'cluster-app.cjs')
const CLI = path.join(root, 'bin', 'corepool.js')

const run = (opts) => new Promise((resolve, reject) => autocannon(opts, (err, r) => (err ? reject(err) : resolve(r))))
const failed = (r) => r.errors + r.timeouts + r.non2xx

async function freePort() {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const { port } = s.address()
  s.close()
  await once(s, 'close')
  return port
}

/** Resolves once GET /health answers 200 (the service accepts). */
async function untilServing(port, child) {
  for (let i = 0; i < 600; i++) {
    if (child && child.exitCode !== null) throw new Error(`the server exited (${child.exitCode})`)
    try {
      const res = await fetch(`http://127.0.0.1:${port}/health`)
      await res.arrayBuffer()
      if (res.ok) return
    } catch {}
    await delay(100)
  }
  throw new Error(`nothing serves port ${port}`)
}

/** Runs a command to its end; resolves with its stdout, rejects on a non-zero exit. */
async function runCommand(cmd, args, env) {
  const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  let err = ''
  child.stdout.on('data', (d) => (out += d))
  child.stderr.on('data', (d) => (err += d))
  const [code] = await once(child, 'exit')
  if (code !== 0) throw new Error(`${path.basename(cmd)} ${args.join(' ')} exited ${code}: ${err || out}`)
  return out
}

/** Resolves once `child` printed the line `text` on its stdout. */
function untilLine(child, text) {
  return new Promise((resolve, reject) => {
    let buf = ''
    const onData = (d) => {
      buf += d
      if (buf.split('\n').includes(text)) {
        child.stdout.off('data', onData)
        child.off('exit', onExit)
        child.stdout.resume()
        resolve()
      }
    }
    const onExit = (code) => reject(new Error(`the server exited (${code}) before "${text}"`))
    child.stdout.on('data', onData)
    child.once('exit', onExit)
  })
}

// ---------- the three process managers: start, pids, reload, stop ----------

function corepoolCluster() {
  const name = `bench-cluster-${process.pid}`
  let child, port
  const status = async () => (await cluster.request(name, { cmd: 'status' })).status
  return {
    name: 'corepool',
    async start() {
      port = await freePort()
      child = spawn(process.execPath, [path.join(here, 'fixtures', 'corepool-cluster.cjs')], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PORT: String(port), WORKERS: String(WORKERS), NAME: name },
      })
      await untilLine(child, 'ready')
      await untilServing(port, child)
      return port
    },
    async pids() {
      return (await status()).workers.map((w) => w.pid)
    },
    async reload() {
      await runCommand(process.execPath, [CLI, 'reload', name], process.env)
    },
    async stop() {
      if (child === undefined) return
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

function nodeCluster() {
  let child, port
  let lines = []
  const waitLine = async (text) => {
    while (!lines.includes(text)) {
      if (child.exitCode !== null) throw new Error(`node:cluster primary exited (${child.exitCode})`)
      await delay(10)
    }
    lines = lines.filter((l) => l !== text)
  }
  return {
    name: 'node:cluster',
    async start() {
      port = await freePort()
      child = spawn(process.execPath, [path.join(here, 'fixtures', 'node-cluster.cjs')], {
        stdio: ['ignore', 'pipe', 'inherit'],
        env: { ...process.env, PORT: String(port), WORKERS: String(WORKERS) },
      })
      let buf = ''
      child.stdout.on('data', (d) => {
        buf += d
        const parts = buf.split('\n')
        buf = parts.pop()
        lines.push(...parts)
      })
      await waitLine('ready')
      await untilServing(port, child)
      return port
    },
    async pids() {
      // The primary's children are its workers.
      const out = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
      return out.split('\n').filter(Boolean).map(Number)
    },
    async reload() {
      child.kill('SIGHUP')
      await waitLine('reloaded')
    },
    async stop() {
      if (child === undefined) return
      child.kill('SIGTERM')
      if (child.exitCode === null) await once(child, 'exit')
    },
  }
}

/** PM2 from the npm registry, in a cache directory of its own (installed on first use). */
function pm2Bin() {
  const prefix = path.join(os.tmpdir(), 'corepool-bench-pm2')
  const bin = path.join(prefix, 'node_modules', 'pm2', 'bin', 'pm2')
  const installed = () => {
    try {
      return JSON.parse(fs.readFileSync(path.join(prefix, 'node_modules', 'pm2', 'package.json'))).version
    } catch {
      return null
    }
  }
  if (installed() !== PM2_VERSION) {
    console.log(`installing pm2@${PM2_VERSION} into ${prefix} (npm registry)`)
    fs.mkdirSync(prefix, { recursive: true })
    const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm'
    execFileSync(npm, ['install', '--prefix', prefix, '--no-save', '--no-audit', '--no-fund', `pm2@${PM2_VERSION}`], {
      stdio: 'inherit',
    })
  }
  return bin
}

function pm2Cluster(home) {
  const bin = pm2Bin()
  const name = 'bench'
  let port
  const env = () => ({ ...process.env, PM2_HOME: home, PORT: String(port) })
  const pm2 = (...args) => runCommand(process.execPath, [bin, ...args], env())
  return {
    name: 'PM2',
    async start() {
      port = await freePort()
      await pm2('start', APP, '-i', String(WORKERS), '--name', name)
      for (let i = 0; ; i++) {
        const list = JSON.parse(await pm2('jlist'))
        if (list.filter((p) => p.pm2_env.status === 'online').length === WORKERS) break
        if (i > 600) throw new Error('PM2 did not start the workers')
        await delay(100)
      }
      await untilServing(port)
      return port
    },
    async pids() {
      return JSON.parse(await pm2('jlist')).map((p) => p.pid)
    },
    async reload() {
      await pm2('reload', name)
    },
    async stop() {
      if (port !== undefined) await pm2('delete', name)
    },
    async kill() {
      await pm2('kill')
    },
  }
}

// ---------- measures ----------

async function throughput(port, route, connections) {
  const url = `http://127.0.0.1:${port}${route}`
  await run({ url, connections: 4, amount: 200 }) // warm up
  const r = await run({ url, connections, duration: DURATION })
  return { rps: r.requests.average, p99: r.latency.p99, failed: failed(r) }
}

/**
 * Requests to `url` on `connections` keep-alive connections, one after another on each, with
 * Node's HTTP client (which, unlike autocannon, opens a new connection after a response that
 * says `Connection: close`, as browsers and HTTP libraries do). `stop()` ends the loops and
 * resolves `{ requests, failed, kinds }` counted up to that moment.
 */
function httpLoad(url, connections) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections })
  let running = true
  let requests = 0
  let failed = 0
  const kinds = new Map()
  const fail = (kind) => {
    failed++
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1)
  }
  const one = () =>
    new Promise((resolve) => {
      const req = http.get(url, { agent, timeout: 10_000 }, (res) => {
        res.resume()
        res.once('end', () => {
          if (!running) return resolve()
          requests++
          if (res.statusCode < 200 || res.statusCode >= 300) fail(`HTTP ${res.statusCode}`)
          resolve()
        })
        res.once('error', (err) => {
          if (running) fail(err.code ?? err.message)
          resolve()
        })
      })
      req.once('timeout', () => req.destroy(Object.assign(new Error('timeout'), { code: 'timeout' })))
      req.once('error', (err) => {
        if (running) fail(err.code ?? err.message)
        resolve()
      })
    })
  const loops = Array.from({ length: connections }, async () => {
    while (running) await one()
  })
  return {
    async stop() {
      running = false
      await Promise.all(loops)
      agent.destroy()
      return { requests, failed, kinds: [...kinds].map(([k, n]) => `${n} ${k}`).join(', ') }
    },
  }
}

/**
 * A reload while /health is under load (16 connections): its duration, the requests that
 * failed (an error, a timeout or a non-2xx answer) from the start of the load until 1.5 s after
 * the reload, and how many workers were replaced.
 */
async function reloadUnderLoad(system, port) {
  const before = new Set(await system.pids())
  const load = httpLoad(`http://127.0.0.1:${port}/health`, 16)
  await delay(1500)
  const t0 = performance.now()
  await system.reload()
  const ms = performance.now() - t0
  await delay(1500)
  const { requests, failed, kinds } = await load.stop()
  const after = await system.pids()
  return { ms, failed, requests, kinds, replaced: after.filter((p) => !before.has(p)).length }
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

const pm2Home = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-bench-pm2-home-'))
const systems = [corepoolCluster(), nodeCluster(), pm2Cluster(pm2Home)]
const rows = Object.fromEntries(systems.map((s) => [s.name, []]))
const load0 = os.loadavg()
console.log(`load average at start: ${load0.map((l) => l.toFixed(2)).join(', ')}; ${os.cpus().length} cores`)
try {
  const ports = {}
  for (const s of systems) {
    ports[s.name] = await s.start()
    console.log(`  ${s.name}: ${WORKERS} workers on port ${ports[s.name]}`)
  }
  for (let round = 0; round < ROUNDS; round++) {
    const order = systems.map((_, i) => systems[(i + round) % systems.length])
    const m = Object.fromEntries(order.map((s) => [s.name, {}]))
    for (const s of order) m[s.name].health = await throughput(ports[s.name], '/health', 32)
    for (const s of order) m[s.name].compute = await throughput(ports[s.name], `/compute?n=${COMPUTE_N}`, 16)
    for (const s of order) m[s.name].reload = await reloadUnderLoad(s, ports[s.name])
    for (const s of order) {
      rows[s.name].push(m[s.name])
      const r = m[s.name]
      console.log(
        `  round ${round + 1} ${s.name}: /health ${r.health.rps.toFixed(0)} req/s p99 ${r.health.p99} ms; ` +
          `/compute ${r.compute.rps.toFixed(0)} req/s p99 ${r.compute.p99} ms; reload ${r.reload.ms.toFixed(0)} ms, ` +
          `${r.reload.failed} failed of ${r.reload.requests}${r.reload.kinds ? ` (${r.reload.kinds})` : ''}, ` +
          `${r.reload.replaced}/${WORKERS} replaced`,
      )
    }
  }
} finally {
  for (const s of systems) await s.stop?.().catch((err) => console.error(`${s.name} stop: ${err.message}`))
  await systems[2].kill().catch((err) => console.error(`pm2 kill: ${err.message}`))
  fs.rmSync(pm2Home, { recursive: true, force: true })
}

const load1 = os.loadavg()
const agg = Object.fromEntries(
  Object.entries(rows).map(([name, rs]) => [
    name,
    {
      healthRps: median(rs.map((r) => r.health.rps)),
      healthP99: median(rs.map((r) => r.health.p99)),
      computeRps: median(rs.map((r) => r.compute.rps)),
      computeP99: median(rs.map((r) => r.compute.p99)),
      reloadMs: median(rs.map((r) => r.reload.ms)),
      reloadFailed: rs.reduce((a, r) => a + r.reload.failed, 0),
      reloadRequests: rs.reduce((a, r) => a + r.reload.requests, 0),
      replaced: Math.min(...rs.map((r) => r.reload.replaced)),
    },
  ]),
)
console.log(
  `\n${WORKERS} workers, ${ROUNDS} interleaved rounds (median); /health with 32 connections and ` +
    `/compute?n=${COMPUTE_N} with 16, ${DURATION} s each; reload under /health load with 16 connections.\n` +
    `Load average ${load0[0].toFixed(2)} at start, ${load1[0].toFixed(2)} at the end (${os.cpus().length} cores).\n`,
)
console.log(
  '| manager | /health req/s | /health p99 (ms) | /compute req/s | /compute p99 (ms) | reload 4 workers (ms) | failed during reloads | workers replaced |',
)
console.log('|---|---|---|---|---|---|---|---|')
for (const [name, a] of Object.entries(agg)) {
  console.log(
    `| ${name} | ${a.healthRps.toFixed(0)} | ${a.healthP99} | ${a.computeRps.toFixed(0)} | ${a.computeP99} | ` +
      `${a.reloadMs.toFixed(0)} | ${a.reloadFailed} of ${a.reloadRequests} | ${a.replaced}/${WORKERS} |`,
  )
}
const c = agg.corepool
for (const peer of ['node:cluster', 'PM2']) {
  const p = agg[peer]
  console.log(
    `corepool vs ${peer}: /health req/s ${(c.healthRps / p.healthRps).toFixed(2)}×, p99 ${(c.healthP99 / p.healthP99).toFixed(2)}×; ` +
      `/compute req/s ${(c.computeRps / p.computeRps).toFixed(2)}×, p99 ${(c.computeP99 / p.computeP99).toFixed(2)}×; ` +
      `reload time ${(c.reloadMs / p.reloadMs).toFixed(2)}×`,
  )
}
