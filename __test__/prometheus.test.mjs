// A real Prometheus (Debian package `prometheus`) scrapes the example service while it is under
// load; `histogram_quantile` over the shared latency histogram must agree with what the client
// measured (same order of magnitude). Prometheus runs on a free loopback port with its own
// temporary storage and is stopped at the end. Skipped with a message when it is not installed,
// except under CI, where .ci/run installs it.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { setTimeout as delay } from 'node:timers/promises'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const found = spawnSync('prometheus', ['--version'], { encoding: 'utf8' })
const installed = found.error === undefined && found.status === 0
const skip = installed ? false : 'prometheus is not installed (Debian: apt-get install prometheus); .ci/run installs it'
if (!installed && process.env.CI === 'true') throw new Error('CI: prometheus must be installed (.ci/run does it)')

const processes = []
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-prometheus-'))
after(() => {
  for (const child of processes) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
  fs.rmSync(tmp, { recursive: true, force: true })
})

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address()
      s.close(() => resolve(port))
    })
  })
}

/** Starts `command` and resolves once its output matches `ready` (rejects if it exits first). */
function start(command, args, ready, env = {}) {
  const child = spawn(command, args, { cwd: root, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  processes.push(child)
  let out = ''
  return new Promise((resolve, reject) => {
    const onData = (d) => {
      out += d
      const m = ready.exec(out)
      if (m) resolve({ child, match: m, output: () => out })
    }
    child.stdout.setEncoding('utf8').on('data', onData)
    child.stderr.setEncoding('utf8').on('data', onData)
    child.once('exit', (code, signal) => reject(new Error(`${command} exited early (${code ?? signal}): ${out}`)))
  })
}

async function query(promBase, expr) {
  const res = await fetch(`${promBase}/api/v1/query?query=${encodeURIComponent(expr)}`)
  const body = await res.json()
  assert.equal(body.status, 'success', JSON.stringify(body))
  return body.data.result
}

test('histogram_quantile over the shared latency histogram matches the client-side p99', { skip }, async (t) => {
  const app = await start(
    process.execPath,
    ['examples/express/server.js'],
    /listening on (http:\/\/127\.0\.0\.1:\d+)/,
    {
      PORT: '0',
      HOST: '127.0.0.1',
    },
  )
  const base = app.match[1]
  const promPort = await freePort()
  const config = path.join(tmp, 'prometheus.yml')
  fs.writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: corepool-example',
      '    static_configs:',
      `      - targets: ['${new URL(base).host}']`,
      '',
    ].join('\n'),
  )
  await start(
    'prometheus',
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(tmp, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
    ],
    /Server is ready to receive web requests/,
  )
  const promBase = `http://127.0.0.1:${promPort}`

  // Load: two clients calling /compute back to back for a few scrape intervals, each request
  // timed by the client.
  const latencies = []
  const until = Date.now() + 8000
  const client = async () => {
    while (Date.now() < until) {
      const t = performance.now()
      const res = await fetch(`${base}/compute?n=3000000`)
      assert.equal(res.status, 200)
      await res.arrayBuffer()
      latencies.push((performance.now() - t) / 1000)
    }
  }
  await Promise.all([client(), client()])
  latencies.sort((a, b) => a - b)
  const clientP99 = latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * 0.99))]

  // The scrapes during the load must land in Prometheus; then the query has an answer.
  const expr =
    'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{route="/compute"}[30s])))'
  let value = NaN
  for (let i = 0; i < 40 && !Number.isFinite(value); i++) {
    const result = await query(promBase, expr)
    if (result.length > 0) value = Number(result[0].value[1])
    if (!Number.isFinite(value)) await delay(500)
  }
  assert.ok(Number.isFinite(value), `histogram_quantile gave no number (client p99 ${clientP99} s)`)
  // Buckets are coarse (…, 0.025, 0.05, 0.1, …): the same order of magnitude is what can be asked.
  const ratio = value / clientP99
  t.diagnostic(
    `${latencies.length} requests; Prometheus p99 ${value.toFixed(4)} s, client p99 ${clientP99.toFixed(4)} s`,
  )
  assert.ok(ratio > 0.1 && ratio < 10, `Prometheus p99 ${value} s vs client p99 ${clientP99} s`)
  // And the request count Prometheus saw is the server's total.
  const total = await query(promBase, 'sum(http_requests_total{route="/compute"})')
  assert.ok(Number(total[0].value[1]) >= 1)
})
