// cluster(): supervised workers on one port and one counter region; rolling reload under load,
// SIGHUP/SIGTERM, worker crashes, the lock against a second cluster, memory-limit restarts.
import { test as nodeTest, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import autocannon from 'autocannon'
import { cluster, Cluster, CorepoolError, SharedCounters } from '../index.mjs'

const test = (name, fn) => nodeTest(name, { timeout: 120_000 }, fn)
const here = path.dirname(fileURLToPath(import.meta.url))
const APP = path.join(here, 'fixtures', 'cluster-app.cjs')
const MASTER = path.join(here, 'fixtures', 'cluster-master.cjs')
const tag = (t) => `t${process.pid}-${t}`
const running = new Set()
const masters = new Set()
after(async () => {
  for (const c of running) await c.stop()
  for (const m of masters) m.kill('SIGKILL')
})

async function start(options) {
  const c = await cluster({
    module: APP,
    host: '127.0.0.1',
    port: 0,
    counters: ['app_requests_total'],
    shutdownMs: 5000,
    stdout: null,
    stderr: null,
    signals: false,
    ...options,
  })
  running.add(c)
  c.once('stop', () => running.delete(c))
  return c
}

/** autocannon on loopback until `stop` resolves; resolves autocannon's result. */
function load(port, stop, { connections = 10, path: p = '/slow' } = {}) {
  const instance = autocannon({ url: `http://127.0.0.1:${port}${p}`, connections, duration: 100 })
  const result = new Promise((resolve, reject) => {
    instance.once('done', resolve)
    instance.once('error', reject)
  })
  stop.then(() => instance.stop())
  return { instance, result }
}

const pids = (status) => status.workers.map((w) => w.pid)

test('reload under load: every worker replaced, 0 failed requests, counters continuous', async () => {
  const c = await start({ workers: 4, name: tag('reload') })
  assert.ok(c instanceof Cluster)
  const before = c.status()
  assert.equal(before.workers.length, 4)
  assert.deepEqual(
    before.workers.map((w) => w.id),
    [0, 1, 2, 3],
  )
  let reloaded
  const done = new Promise((resolve) => (reloaded = resolve))
  const { result } = load(c.port, done)
  // And a route the app answers synchronously (its headers are sent inside the 'request'
  // event), where a stopping worker must still say `Connection: close` in time.
  const { result: syncResult } = load(c.port, done, { connections: 4, path: '/' })
  // Reload once the load is flowing.
  await c.counters.waitFor('app_requests_total', 200, { timeout: 60_000 })
  const reload = await c.reload()
  const servedAtReloadEnd = c.counters.get('app_requests_total')
  await c.counters.waitFor('app_requests_total', servedAtReloadEnd + 200, { timeout: 60_000 })
  reloaded()
  const r = await result
  const sync = await syncResult
  assert.equal(reload.replaced, 4)
  assert.equal(r.errors, 0, 'no connection errors')
  assert.equal(r.timeouts, 0, 'no timeouts')
  assert.equal(r.non2xx, 0, 'no error responses')
  assert.deepEqual([sync.errors, sync.timeouts, sync.non2xx], [0, 0, 0], 'none on the synchronous route either')
  const after = c.status()
  assert.equal(after.workers.length, 4)
  for (const pid of pids(after)) assert.ok(!pids(before).includes(pid), 'every worker was replaced')
  // One region for old and new workers: the count never restarted. The server counted every
  // answered request; at most the requests in flight when autocannon stopped are not answered.
  const served = c.counters.get('app_requests_total')
  const answered = r['2xx'] + sync['2xx']
  assert.ok(served >= answered && served - answered <= 14, `served ${served}, answered ${answered}`)
  assert.equal(c.counters.get('corepool_cluster_reloads_total'), 1)
  assert.equal(c.status().reloads, 1)
  await c.stop()
})

test('SIGKILL of a worker: it is restarted with the exit reason logged; only its requests fail', async () => {
  const c = await start({ workers: 2, name: tag('kill') })
  const lines = []
  c.on('log', ({ line }) => lines.push(line))
  const victim = c.status().workers[0]
  let finish
  const { result } = load(c.port, new Promise((resolve) => (finish = resolve)))
  await c.counters.waitFor('app_requests_total', 200, { timeout: 60_000 })
  const restarted = once(c, 'online', { signal: AbortSignal.timeout(60_000) })
  process.kill(victim.pid, 'SIGKILL')
  const [id, pid] = await restarted
  assert.equal(id, 0)
  assert.notEqual(pid, victim.pid)
  const now = c.counters.get('app_requests_total')
  await c.counters.waitFor('app_requests_total', now + 200, { timeout: 60_000 })
  finish()
  const r = await result
  // The killed worker held at most one request per connection it had accepted.
  assert.ok(r.errors + r.timeouts <= 10, `errors ${r.errors}, timeouts ${r.timeouts}`)
  assert.equal(r.non2xx, 0)
  const status = c.status()
  assert.equal(status.workers[0].pid, pid)
  assert.equal(status.workers[0].restarts, 1)
  assert.equal(status.workers[0].lastExit.signal, 'SIGKILL')
  assert.ok(
    lines.some((l) => /worker 0 exited with signal SIGKILL/.test(l)),
    lines.join('\n'),
  )
  assert.ok(lines.some((l) => /restarting worker 0 .*last exit: signal SIGKILL/.test(l)))
  await c.stop()
})

test('a second cluster on the same port or name is refused with ERR_CLUSTER_RUNNING', async () => {
  const c = await start({ workers: 1, name: tag('lock') })
  const second = (o) => start({ workers: 1, ...o })
  const sameName = await second({ name: tag('lock') }).catch((e) => e)
  assert.ok(sameName instanceof CorepoolError)
  assert.equal(sameName.code, 'ERR_CLUSTER_RUNNING')
  assert.equal(sameName.pid, process.pid)
  assert.match(sameName.message, /already running/)
  const samePort = await second({ name: tag('lock2'), port: c.port }).catch((e) => e)
  assert.equal(samePort.code, 'ERR_CLUSTER_RUNNING')
  assert.equal(samePort.port, c.port)
  assert.match(samePort.message, new RegExp(`on port ${c.port}`))
  // The refused attempts left the running cluster and its control socket alone.
  assert.equal((await cluster.request(tag('lock'), { cmd: 'status' })).status.workers.length, 1)
  await c.stop()
  // Released: the name and port can be taken again.
  const again = await start({ workers: 1, name: tag('lock'), port: c.port })
  await again.stop()
})

test('SIGHUP reloads, SIGTERM stops gracefully and removes the region and control socket', async () => {
  const name = tag('signals')
  const master = spawn(process.execPath, [MASTER, name, '2'], { stdio: ['ignore', 'pipe', 'inherit'] })
  masters.add(master)
  const exited = once(master, 'exit')
  master.stdout.setEncoding('utf8')
  const out = []
  const next = () =>
    new Promise((resolve, reject) => {
      if (out.length) return resolve(out.shift())
      const onData = (chunk) => {
        out.push(
          ...chunk
            .trim()
            .split('\n')
            .map((l) => JSON.parse(l)),
        )
        master.stdout.off('data', onData)
        resolve(out.shift())
      }
      master.stdout.on('data', onData)
      master.once('exit', () => reject(new Error('master exited')))
    })
  const { port, region, error } = await next()
  assert.equal(error, undefined)
  const counters = SharedCounters.open(region)
  const status = async () => (await cluster.request(name, { cmd: 'status' })).status
  const before = await status()
  let finish
  const { result } = load(port, new Promise((resolve) => (finish = resolve)))
  await counters.waitFor('app_requests_total', 200, { timeout: 60_000 })
  master.kill('SIGHUP')
  await counters.waitFor('corepool_cluster_reloads_total', 1, { timeout: 60_000 })
  const now = counters.get('app_requests_total')
  await counters.waitFor('app_requests_total', now + 200, { timeout: 60_000 })
  finish()
  const r = await result
  assert.equal(r.errors, 0)
  assert.equal(r.timeouts, 0)
  assert.equal(r.non2xx, 0)
  const reloaded = await status()
  assert.equal(reloaded.reloads, 1)
  for (const pid of pids(reloaded)) assert.ok(!pids(before).includes(pid))
  master.kill('SIGTERM')
  assert.deepEqual(await next(), { stopped: true })
  const [code] = await exited
  assert.equal(code, 0)
  assert.ok(!fs.existsSync(`/dev/shm/${region}`), 'region removed')
  assert.ok(!fs.existsSync(cluster.controlPath(name)), 'control socket removed')
  for (const pid of pids(reloaded)) assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' })
})

test('scale, status, prefixed and timestamped logs with worker ids', async () => {
  const lines = []
  const c = await start({
    workers: 1,
    name: tag('scale'),
    timestamps: true,
    stdout: { write: (t) => lines.push(t) },
    env: { CLUSTER_APP_STDERR: '1' },
  })
  assert.equal(await c.scale(3), 3)
  assert.deepEqual(
    c.status().workers.map((w) => w.id),
    [0, 1, 2],
  )
  const seen = new Set()
  for (let i = 0; i < 60 && seen.size < 3; i++) {
    seen.add((await (await fetch(`http://127.0.0.1:${c.port}/`, { headers: { connection: 'close' } })).json()).worker)
  }
  assert.ok(seen.size >= 2, `requests reached ${[...seen]}`)
  assert.equal(await c.scale(1), 1)
  assert.equal(c.counters.get('corepool_cluster_workers'), 1)
  assert.ok(
    lines.some((l) => /^\d{4}-\d\d-\d\dT[0-9:.]+Z 2\|t\d+-scale listening pid=\d+\n$/.test(l)),
    lines.join(''),
  )
  assert.ok(lines.some((l) => /cluster\|t\d+-scale scaled to 3 workers/.test(l)))
  const logs = await new Promise((resolve) => {
    let text = ''
    const s = net.connect(c.controlSocket)
    s.on('data', (d) => (text += d))
    s.on('end', () => resolve(text))
    s.write(JSON.stringify({ cmd: 'logs', lines: 5 }) + '\n')
  })
  assert.equal(logs.trim().split('\n').length, 5)
  assert.equal(fs.statSync(c.controlSocket).mode & 0o777, 0o600)
  await c.stop()
  // A stopped cluster: the calls are fine, the cluster cannot do them any more.
  await assert.rejects(c.reload(), { code: 'ERR_INVALID_STATE' })
  await assert.rejects(c.scale(2), { code: 'ERR_INVALID_STATE' })
})

test('maxMemoryRestart replaces a worker above the limit (start new, then stop old)', async () => {
  const c = await start({ workers: 1, name: tag('mem'), maxMemoryRestart: '150M', memoryCheckInterval: 100 })
  const old = c.status().workers[0].pid
  const restart = once(c, 'restart', { signal: AbortSignal.timeout(60_000) })
  const online = once(c, 'online', { signal: AbortSignal.timeout(60_000) })
  let restarted = false
  restart.then(
    () => (restarted = true),
    () => {},
  )
  const sizes = []
  // 64 MiB resident per request, until the check sees the limit passed.
  for (let i = 0; i < 8 && !restarted; i++) {
    await fetch(`http://127.0.0.1:${c.port}/grow`).catch(() => {})
    sizes.push(c.status().workers[0]?.memory)
    await new Promise((resolve) => setTimeout(resolve, 300))
  }
  assert.ok(restarted, `no memory restart; resident sizes seen: ${sizes.join(', ')}`)
  const [id, info] = await restart
  assert.equal(id, 0)
  assert.equal(info.reason, 'memory')
  assert.ok(info.rss > 150 * 1024 * 1024)
  const [, pid] = await online
  assert.notEqual(pid, old)
  await c.counters.waitFor('corepool_cluster_worker_starts_total', 2, { timeout: 60_000 })
  await new Promise((resolve) => setTimeout(resolve, 100))
  assert.equal(c.status().workers[0].pid, pid, 'the new worker replaced the old one')
  await c.stop()
})

test('bad options reject with ERR_INVALID_ARG (never throw)', async () => {
  for (const bad of [
    undefined,
    {},
    { module: APP, command: 'x' },
    { module: APP, workers: 1.5 },
    { module: APP, port: 70000 },
    { module: APP, name: '../x' },
    { module: APP, maxMemoryRestart: 'lots' },
    { command: 'sleep', ready: 'listening' },
    { module: APP, reusePort: 'yes' },
    null,
    [],
    { module: APP, args: ['a', 1] },
    { module: APP, execArgv: '--inspect' },
  ]) {
    const p = cluster(bad)
    assert.ok(p instanceof Promise)
    await assert.rejects(p, { code: 'ERR_INVALID_ARG' }, JSON.stringify(bad))
  }
})

test('CLI: start -i 2 in the foreground; status, reload, scale, logs and stop over the control socket', async () => {
  const BIN = path.join(here, '..', 'bin', 'corepool.js')
  const name = tag('cli')
  const run = (...args) =>
    new Promise((resolve, reject) => {
      const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
      let out = ''
      p.stdout.on('data', (d) => (out += d))
      p.stderr.on('data', (d) => (out += d))
      p.once('error', reject)
      p.once('exit', (code) => resolve({ code, out }))
    })
  const server = spawn(process.execPath, [BIN, 'start', APP, '-i', '2', '--port', '0', '--name', name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  masters.add(server)
  const exited = once(server, 'exit')
  let printed = ''
  server.stdout.on('data', (d) => (printed += d))
  await new Promise((resolve, reject) => {
    const check = () => (/2 workers online/.test(printed) ? resolve() : null)
    server.stdout.on('data', check)
    server.once('exit', () => reject(new Error(`start exited: ${printed}`)))
  })
  const status = JSON.parse((await run('status', name, '--json')).out)
  assert.equal(status.workers.length, 2)
  assert.match((await run('status', name)).out, /^id +pid +uptime +restarts +memory$/m)
  const reload = await run('reload', name)
  assert.equal(reload.code, 0, reload.out)
  assert.match(reload.out, /reloaded 2 workers in \d+ ms/)
  assert.match((await run('scale', name, '3')).out, /3 workers/)
  const logs = await run('logs', name, '--lines', '3', '--nostream')
  assert.equal(logs.out.trim().split('\n').length, 3)
  assert.match(printed, /^0\|t\d+-cli listening pid=\d+$/m, 'worker lines prefixed id|name')
  const missing = await run('reload', `${name}-none`)
  assert.equal(missing.code, 1)
  assert.match(missing.out, /no cluster named/)
  const stop = await run('stop', name)
  assert.equal(stop.code, 0, stop.out)
  const [code] = await exited
  assert.equal(code, 0)
})
