'use strict'
// The example service: an Express app whose heavy routes run on corepool, so /health stays fast
// while /compute is saturated. `createApp()` is used by server.js and by the tests.
const path = require('node:path')
const express = require('express')
const { monitorEventLoopDelay } = require('node:perf_hooks')
const corepool = require('../../index.js')
const { createJobs } = require('./jobs')

const { Pool, SharedCounters, sqrtSum, hash, resize } = corepool

// Routes counted in the shared counters (a fixed set: a region's names are fixed at creation).
const ROUTES = [
  '/health',
  '/compute',
  '/compute-js',
  '/hash',
  '/thumbnail',
  '/report.pdf',
  '/jobs',
  '/metrics',
  'other',
]
const slug = (route) => route.replace(/[^a-z0-9]+/gi, '_').replace(/^_|_$/g, '') || 'root'
const POOL_COUNTERS = [
  'corepool_tasks_completed_total',
  'corepool_tasks_failed_total',
  'corepool_tasks_cancelled_total',
]

/** Names of the shared counters the app uses (every process of a group opens the same region). */
function counterNames() {
  const names = []
  for (const route of ROUTES) {
    names.push(`http_requests:${slug(route)}`, `http_errors:${slug(route)}`, `http_latency_us:${slug(route)}`)
  }
  return [...names, ...POOL_COUNTERS]
}

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
 *   event loop wins when they compete: /health stays sub-millisecond with every core busy
 *   (default 10, or the COREPOOL_NICE environment variable when set)
 * @param {object} [options.transcode] `{ command, args(input, output) }` of the transcoder (default ffmpeg)
 * @param {SharedCounters} [options.counters] region with `counterNames()` (default: a new
 *   anonymous one); a group of processes passes one named region so /metrics shows totals
 */
function createApp(options = {}) {
  const { threads, maxQueue = 1000, timeout = 30_000 } = options
  const niceIncrement = options.niceIncrement ?? (process.env.COREPOOL_NICE === undefined ? 10 : undefined)
  const counters = options.counters ?? new SharedCounters({ names: counterNames() })
  const pool = new Pool({ threads, maxQueue, niceIncrement, counters })
  const jsPool = new Pool({ threads, maxQueue, niceIncrement, counters, filename: path.join(__dirname, 'tasks.js') })
  const jobs = createJobs(options.transcode)
  const loopDelay = monitorEventLoopDelay({ resolution: 10 })
  loopDelay.enable()

  const app = express()
  app.disable('x-powered-by')

  // Per-route request counts, errors and latency, in shared memory.
  app.use((req, res, next) => {
    const start = process.hrtime.bigint()
    res.on('finish', () => {
      const route = req.route?.path ?? ''
      const key = slug(ROUTES.find((r) => route === r || route.startsWith(r + '/')) ?? 'other')
      counters.inc(`http_requests:${key}`)
      if (res.statusCode >= 400) counters.inc(`http_errors:${key}`)
      counters.add(`http_latency_us:${key}`, Number((process.hrtime.bigint() - start) / 1000n))
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
    res.json({ ok: true, pid: process.pid, uptime: process.uptime() })
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

  const body = express.raw({ type: () => true, limit: '64mb' })

  app.post(
    '/hash',
    body,
    wrap(async (req, res) => {
      const digest = await hash('sha256', req.body, { timeout, signal: requestSignal(req, res) })
      res.json({ algorithm: 'sha256', bytes: req.body.length, digest })
    }),
  )

  app.post(
    '/thumbnail',
    body,
    wrap(async (req, res) => {
      const width = parseCount(req.query.width ?? '200', 'width', 4096)
      const height = req.query.height === undefined ? undefined : parseCount(req.query.height, 'height', 4096)
      const format = req.query.format ?? 'jpeg'
      const out = await resize(req.body, {
        width,
        height,
        format,
        fit: 'inside',
        timeout,
        signal: requestSignal(req, res),
      })
      res.set('x-image-size', `${out.width}x${out.height}`).type(`image/${out.format}`).send(out.data)
    }),
  )

  app.post('/jobs/transcode', body, (req, res) => {
    const format = String(req.query.format ?? 'mp4')
    if (!/^[a-z0-9]{1,8}$/.test(format) || req.body.length === 0) {
      res.status(400).json({ error: 'ERR_INVALID_ARG', message: 'send the media as the body; format=[a-z0-9]{1,8}' })
      return
    }
    const job = jobs.start(req.body, format)
    res.status(202).location(`/jobs/${job.id}`).json(job)
  })

  app.get('/jobs/:id', (req, res) => {
    const job = jobs.get(req.params.id)
    if (job) res.json(job)
    else res.status(404).json({ error: 'ERR_NOT_FOUND', message: `no job ${req.params.id}` })
  })

  app.get('/jobs/:id/output', (req, res) => {
    const file = jobs.output(req.params.id)
    if (file) res.sendFile(file)
    else res.status(404).json({ error: 'ERR_NOT_FOUND', message: `job ${req.params.id} has no output (yet)` })
  })

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
    const byRoute = (prefix, scale = 1) =>
      ROUTES.map((r) => [`{route="${r}"}`, counters.get(`${prefix}:${slug(r)}`) * scale])
    // Totals over every process sharing the region.
    metric('http_requests_total', 'counter', 'HTTP requests by route.', byRoute('http_requests'))
    metric('http_request_errors_total', 'counter', 'HTTP responses with status >= 400.', byRoute('http_errors'))
    metric('http_request_duration_seconds_total', 'counter', 'Time spent answering.', byRoute('http_latency_us', 1e-6))
    for (const name of POOL_COUNTERS) {
      metric(name, 'counter', `Pool tasks (${name.split('_')[2]}), all processes.`, [['', counters.get(name)]])
    }
    // Starts, restarts and exits of the server processes (with --workers).
    for (const kind of ['starts', 'restarts', 'exits']) {
      const prefix = `supervisor_${kind}_total:`
      const samples = counters.names
        .filter((n) => n.startsWith(prefix))
        .map((n) => [`{id="${n.slice(prefix.length)}"}`, counters.get(n)])
      if (samples.length) metric(`supervisor_${kind}_total`, 'counter', `Server process ${kind}.`, samples)
    }
    // This process.
    const pid = `{pid="${process.pid}"}`
    for (const [name, p] of [
      ['native', pool],
      ['js', jsPool],
    ]) {
      const s = p.stats
      metric(`corepool_${name}_queue_length`, 'gauge', `Tasks waiting in the ${name} pool.`, [[pid, s.queued]])
      metric(`corepool_${name}_running`, 'gauge', `Tasks running in the ${name} pool.`, [[pid, s.running]])
      metric(`corepool_${name}_utilization`, 'gauge', `Busy share of the ${name} pool threads.`, [[pid, s.utilization]])
      metric(`corepool_${name}_run_time_p99_seconds`, 'gauge', `Task run time p99 (${name}).`, [
        [pid, s.runTime.p99 / 1e3],
      ])
    }
    metric('nodejs_eventloop_delay_p99_seconds', 'gauge', 'Event-loop delay, 99th percentile.', [
      [pid, loopDelay.percentile(99) / 1e9],
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
    await Promise.all([pool.close(), jsPool.close(), jobs.close()])
  }

  return { app, pool, jsPool, counters, close }
}

module.exports = { createApp, counterNames }
