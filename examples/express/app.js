'use strict'
// The example service: an Express app whose heavy routes run on corepool, so /health stays fast
// while /compute is saturated. `createApp()` is used by server.js and by the tests.
const path = require('node:path')
const express = require('express')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const corepool = require('../../index.js')

const { Pool, sqrtSum } = corepool

const STATUS = {
  ERR_INVALID_ARG: 400,
  ERR_CORRUPT_INPUT: 400,
  ERR_OUTPUT_TOO_LARGE: 413,
  ERR_ABORTED: 499,
  ERR_QUEUE_FULL: 503,
  ERR_POOL_CLOSED: 503,
  ERR_TASK_TIMEOUT: 504,
}

/** An AbortSignal that fires when the client goes away before the response is sent. */
function requestSignal(req, res) {
  const ac = new AbortController()
  res.on('close', () => {
    if (!res.writableFinished) ac.abort(new Error('client disconnected'))
  })
  return ac.signal
}

function parseCount(value, name, max) {
  const n = Number(value)
  if (value === undefined || value === '' || !Number.isSafeInteger(n) || n < 0 || n > max) {
    const err = new Error(`query parameter ${name} must be an integer from 0 to ${max}`)
    err.code = 'ERR_INVALID_ARG'
    throw err
  }
  return n
}

/**
 * @param {object} [options]
 * @param {number} [options.threads] pool threads (default: all cores)
 * @param {number} [options.maxQueue] queued tasks beyond the running ones before 503
 * @param {number} [options.timeout] per-request task timeout in ms
 * @param {number} [options.niceIncrement] lower the pool threads' CPU priority (Linux) so the
 *   event loop wins when they compete (default: the COREPOOL_NICE environment variable, else 0)
 */
function createApp(options = {}) {
  const { threads, maxQueue = 1000, timeout = 30_000, niceIncrement } = options
  const pool = new Pool({ threads, maxQueue, niceIncrement })
  const jsPool = new Pool({ threads, maxQueue, niceIncrement, filename: path.join(__dirname, 'tasks.js') })
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()
  const routeStats = new Map()

  const app = express()
  app.disable('x-powered-by')

  // Per-route request counts and latency sums for /metrics.
  app.use((req, res, next) => {
    const start = process.hrtime.bigint()
    res.on('finish', () => {
      const route = req.route?.path ?? 'unmatched'
      const key = `${req.method} ${route} ${res.statusCode}`
      const s = routeStats.get(key) ?? { method: req.method, route, status: res.statusCode, count: 0, seconds: 0 }
      s.count++
      s.seconds += Number(process.hrtime.bigint() - start) / 1e9
      routeStats.set(key, s)
    })
    next()
  })

  const wrap = (handler) => async (req, res, next) => {
    try {
      await handler(req, res)
    } catch (err) {
      next(err)
    }
  }

  app.get('/health', (req, res) => {
    res.json({ ok: true, uptime: process.uptime() })
  })

  app.get(
    '/compute',
    wrap(async (req, res) => {
      const n = parseCount(req.query.n ?? '10000000', 'n', Number.MAX_SAFE_INTEGER)
      const result = await sqrtSum(n, { pool, timeout, signal: requestSignal(req, res) })
      res.json({ n, result })
    }),
  )

  app.get(
    '/compute-js',
    wrap(async (req, res) => {
      const n = parseCount(req.query.n ?? '10000000', 'n', Number.MAX_SAFE_INTEGER)
      const result = await jsPool.run({ n }, { name: 'sqrtSum', timeout, signal: requestSignal(req, res) })
      res.json({ n, result })
    }),
  )

  app.get(
    '/report.pdf',
    wrap(async (req, res) => {
      const s = pool.stats
      const rows = [
        ['generated', new Date().toISOString()],
        ['pid', process.pid],
        ['pool threads', s.threads],
        ['tasks completed', s.completed],
        ['run time p99 (ms)', s.runTime.p99],
      ]
      const title = typeof req.query.title === 'string' ? req.query.title.slice(0, 200) : 'corepool report'
      const pdf = await jsPool.run({ title, rows }, { name: 'report', timeout, signal: requestSignal(req, res) })
      res.type('application/pdf').send(Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength))
    }),
  )

  app.get('/metrics', (req, res) => {
    const lines = []
    const metric = (name, type, help, samples) => {
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`)
      for (const [labels, value] of samples) lines.push(`${name}${labels} ${value}`)
    }
    const label = (obj) =>
      `{${Object.entries(obj)
        .map(([k, v]) => `${k}="${String(v).replace(/[\\"\n]/g, (c) => (c === '\n' ? '\\n' : `\\${c}`))}"`)
        .join(',')}}`
    const routes = [...routeStats.values()]
    metric(
      'http_requests_total',
      'counter',
      'HTTP requests by method, route and status.',
      routes.map((r) => [label({ method: r.method, route: r.route, status: r.status }), r.count]),
    )
    metric(
      'http_request_duration_seconds_sum',
      'counter',
      'Total time spent answering HTTP requests.',
      routes.map((r) => [label({ method: r.method, route: r.route, status: r.status }), r.seconds]),
    )
    for (const [name, p] of [
      ['native', pool],
      ['js', jsPool],
    ]) {
      const s = p.stats
      metric(`corepool_${name}_tasks_completed_total`, 'counter', `Tasks completed by the ${name} pool.`, [
        ['', s.completed],
      ])
      metric(`corepool_${name}_tasks_failed_total`, 'counter', `Tasks failed in the ${name} pool.`, [['', s.failed]])
      metric(`corepool_${name}_tasks_cancelled_total`, 'counter', `Tasks cancelled in the ${name} pool.`, [
        ['', s.cancelled],
      ])
      metric(`corepool_${name}_queue_length`, 'gauge', `Tasks waiting in the ${name} pool.`, [['', s.queued]])
      metric(`corepool_${name}_utilization`, 'gauge', `Busy share of the ${name} pool's threads.`, [
        ['', s.utilization],
      ])
    }
    metric('nodejs_eventloop_delay_p99_seconds', 'gauge', 'Event-loop delay, 99th percentile.', [
      ['', loopDelay.percentile(99) / 1e9],
    ])
    res.type('text/plain; version=0.0.4').send(lines.join('\n') + '\n')
  })

  app.use((req, res) => {
    res.status(404).json({ error: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.path}` })
  })

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    const code = typeof err.code === 'string' ? err.code : 'ERR_INTERNAL'
    const status =
      err.type === 'entity.too.large' ? 413 : err.status >= 400 && err.status < 500 ? err.status : (STATUS[code] ?? 500)
    if (!res.headersSent) res.status(status).json({ error: code, message: err.message })
  })

  async function close() {
    loopDelay.disable()
    await Promise.all([pool.close(), jsPool.close()])
  }

  return { app, pool, jsPool, close }
}

module.exports = { createApp }
