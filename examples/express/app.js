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
const POOL_COUNTERS = [
  'corepool_tasks_completed_total',
  'corepool_tasks_failed_total',
  'corepool_tasks_cancelled_total',
]
// Seconds; from 1 ms (/health) to 30 s (a long /compute).
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30]
const POOLS = ['native', 'js']
const HELP = {
  http_requests_total: 'HTTP requests by route, all processes.',
  http_request_errors_total: 'HTTP responses with status >= 400, all processes.',
  http_requests_disconnected_total: 'Requests whose client went away before the response, all processes.',
  http_request_duration_seconds: 'Time to answer, by route, all processes.',
  corepool_task_duration_seconds: 'Pool task time (queued and running) seen by the app, all processes.',
  corepool_pool_queued: 'Tasks waiting in the pool, per worker.',
  corepool_pool_running: 'Tasks running in the pool, per worker.',
  corepool_pool_utilization: 'Busy share of the pool threads over the last 10 s (0-1, measured busy time), per worker.',
  corepool_pool_run_time_p99_seconds: 'Pool task run time (not queue time) p99 over the last 10 s, per worker.',
  nodejs_eventloop_delay_p99_seconds: 'Event-loop delay p99 over the last 10 s window, per worker.',
}

/** Names of the shared metrics the app uses (every process of a cluster opens the same region). */
function counterNames() {
  const names = []
  for (const route of ROUTES) {
    const l = `{route="${route}"}`
    names.push(`http_requests_total${l}`, `http_request_errors_total${l}`, `http_requests_disconnected_total${l}`)
    names.push({ name: `http_request_duration_seconds${l}`, type: 'histogram', buckets: LATENCY_BUCKETS })
  }
  for (const p of POOLS) {
    const l = `{pool="${p}"}`
    names.push({ name: `corepool_task_duration_seconds${l}`, type: 'histogram', buckets: LATENCY_BUCKETS })
    for (const g of [
      'corepool_pool_queued',
      'corepool_pool_running',
      'corepool_pool_utilization',
      'corepool_pool_run_time_p99_seconds',
    ]) {
      names.push({ name: `${g}${l}`, type: 'gauge', perProcess: true })
    }
  }
  names.push({ name: 'nodejs_eventloop_delay_p99_seconds', type: 'gauge', perProcess: true })
  return [...names, ...POOL_COUNTERS]
}

/**
 * Quantile `q` of the tasks counted by cumulative histogram `newer` and not by the older
 * snapshot `older` (the same buckets, `{ le, count }[]`), interpolated inside its bucket as
 * Prometheus's histogram_quantile does; 0 when no task finished in between.
 */
function windowQuantile(q, older, newer) {
  const total = newer[newer.length - 1].count - older[older.length - 1].count
  if (total <= 0) return 0
  const rank = q * total
  let below = 0
  for (let i = 0; i < newer.length; i++) {
    const upTo = newer[i].count - older[i].count
    if (upTo >= rank) {
      const lower = i === 0 ? 0 : newer[i - 1].le
      if (newer[i].le === Infinity) return lower
      return lower + ((newer[i].le - lower) * (rank - below)) / (upTo - below || 1)
    }
    below = upTo
  }
  return 0
}

/** A 4xx error with a corepool code. */
function clientError(message, code = 'ERR_INVALID_ARG') {
  const err = new Error(message)
  err.code = code
  return err
}

/** The request body as bytes, or a helpful 400 when there is none. */
function requireBody(req, what) {
  if (!Buffer.isBuffer(req.body) || req.body.length === 0) {
    throw clientError(`the request body is empty: send ${what} as the body (any content type)`)
  }
  return req.body
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

  // Per-worker gauges, kept current by each process for itself (so every scrape, whichever
  // worker answers it, shows all workers): queue, running, and over a recent window (10 s, not
  // the process's lifetime) utilization, run-time p99 and event-loop p99. Utilization and run
  // times are measured by the pool: busy time and a run-time histogram, both cumulative, so a
  // window is the difference of two snapshots.
  const WINDOW_MS = 10_000
  const history = Object.fromEntries(POOLS.map((p) => [p, []]))
  let lastLoopP99 = 0
  let windowStart = Date.now()
  const sample = () => {
    for (const [name, p] of [
      ['native', pool],
      ['js', jsPool],
    ]) {
      const st = p.stats
      const l = `{pool="${name}"}`
      counters.set(`corepool_pool_queued${l}`, st.queued)
      counters.set(`corepool_pool_running${l}`, st.running)
      const now = performance.now()
      const h = history[name]
      h.push({ t: now, busy: st.busyTime, buckets: st.runTimeHistogram.buckets })
      // Keep the newest snapshot that is at least WINDOW_MS old as the window's start.
      while (h.length > 2 && now - h[1].t >= WINDOW_MS) h.shift()
      const first = h[0]
      const span = (now - first.t) * st.threads
      counters.set(`corepool_pool_utilization${l}`, span > 0 ? Math.min(1, (st.busyTime - first.busy) / span) : 0)
      const p99 = windowQuantile(0.99, first.buckets, st.runTimeHistogram.buckets)
      counters.set(`corepool_pool_run_time_p99_seconds${l}`, p99 / 1000)
    }
    if (Date.now() - windowStart >= 10_000) {
      lastLoopP99 = loopDelay.percentile(99)
      loopDelay.reset()
      windowStart = Date.now()
    }
    const p99 = Math.max(lastLoopP99, loopDelay.count > 0 ? loopDelay.percentile(99) : 0)
    counters.set('nodejs_eventloop_delay_p99_seconds', p99 / 1e9)
  }
  sample() // at once: the worker's gauges exist from its first scrape on
  const sampler = setInterval(sample, 250)
  sampler.unref()

  /** `promise` of a task on pool `name`, its time recorded in the shared histogram. */
  const timed = (name, promise) => {
    const start = process.hrtime.bigint()
    const record = () =>
      counters.observe(`corepool_task_duration_seconds{pool="${name}"}`, Number(process.hrtime.bigint() - start) / 1e9)
    promise.then(record, record)
    return promise
  }

  const app = express()
  app.disable('x-powered-by')

  // Per-route requests, errors, disconnects and a latency histogram, in shared memory.
  // 'close' fires for every response, also when the client went away before it was sent.
  app.use((req, res, next) => {
    const start = process.hrtime.bigint()
    res.once('close', () => {
      const route = req.route?.path ?? ''
      const key = ROUTES.find((r) => route === r || route.startsWith(r + '/')) ?? 'other'
      const l = `{route="${key}"}`
      counters.inc(`http_requests_total${l}`)
      if (!res.writableFinished) counters.inc(`http_requests_disconnected_total${l}`)
      else if (res.statusCode >= 400) counters.inc(`http_request_errors_total${l}`)
      counters.observe(`http_request_duration_seconds${l}`, Number(process.hrtime.bigint() - start) / 1e9)
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
      const result = await timed('native', sqrtSum(n, { pool, timeout, signal: requestSignal(req, res) }))
      res.json({ n, result })
    }),
  )

  app.get(
    '/compute-js',
    wrap(async (req, res) => {
      const n = parseCount(req.query.n ?? '10000000', 'n', Number.MAX_SAFE_INTEGER)
      const result = await timed('js', jsPool.run({ n }, { name: 'sqrtSum', timeout, signal: requestSignal(req, res) }))
      res.json({ n, result })
    }),
  )

  const body = express.raw({ type: () => true, limit: '64mb' })

  app.post(
    '/hash',
    body,
    wrap(async (req, res) => {
      const data = requireBody(req, 'the bytes to hash')
      const digest = await timed('native', hash('sha256', data, { pool, timeout, signal: requestSignal(req, res) }))
      res.json({ algorithm: 'sha256', bytes: data.length, digest })
    }),
  )

  app.post(
    '/thumbnail',
    body,
    wrap(async (req, res) => {
      const width = parseCount(req.query.width ?? '200', 'width', 4096)
      const height = req.query.height === undefined ? undefined : parseCount(req.query.height, 'height', 4096)
      const format = req.query.format ?? 'jpeg'
      const image = requireBody(req, 'an image (JPEG, PNG, WebP, GIF, ...)')
      const out = await timed(
        'native',
        resize(image, { width, height, format, fit: 'inside', pool, timeout, signal: requestSignal(req, res) }),
      )
      res.set('x-image-size', `${out.width}x${out.height}`).type(`image/${out.format}`).send(out.data)
    }),
  )

  app.post('/jobs/transcode', body, (req, res) => {
    const format = String(req.query.format ?? 'mp4')
    if (!/^[a-z0-9]{1,8}$/.test(format) || !Buffer.isBuffer(req.body) || req.body.length === 0) {
      res.status(400).json({
        error: 'ERR_INVALID_ARG',
        message: 'send the media to transcode as the request body; format=[a-z0-9]{1,8} (default mp4)',
      })
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
      const pdf = await timed(
        'js',
        jsPool.run({ title, rows }, { name: 'report', timeout, signal: requestSignal(req, res) }),
      )
      res.type('application/pdf').send(Buffer.from(pdf.buffer, pdf.byteOffset, pdf.byteLength))
    }),
  )

  // Everything is in shared memory: counters and histograms are totals over every process of
  // the cluster, per-worker gauges carry a worker="<id>" label (pid="<pid>" outside a cluster),
  // so every scrape gives the same answer whichever worker serves it.
  app.get('/metrics', (req, res) => {
    res.type('text/plain; version=0.0.4').send(counters.toPrometheus({ help: HELP }))
  })

  app.use((req, res) => {
    res.status(404).json({ error: 'ERR_NOT_FOUND', message: `no route ${req.method} ${req.path}` })
  })

  // eslint-disable-next-line no-unused-vars
  app.use((err, req, res, next) => {
    // Errors of the request itself (body too large, bad encoding, ...) are the client's: 4xx
    // with a corepool code. Only a failure of the server is ERR_INTERNAL.
    const clientStatus = err.type === 'entity.too.large' ? 413 : err.status >= 400 && err.status < 500 ? err.status : 0
    const code =
      typeof err.code === 'string' && err.code.startsWith('ERR_') && !err.code.startsWith('ERR_HTTP')
        ? err.code
        : clientStatus
          ? 'ERR_INVALID_ARG'
          : 'ERR_INTERNAL'
    const status = clientStatus || (STATUS[code] ?? 500)
    if (!res.headersSent) res.status(status).json({ error: code, message: err.message })
  })

  async function close() {
    clearInterval(sampler)
    loopDelay.disable()
    await Promise.all([pool.close(), jsPool.close(), jobs.close()])
  }

  return { app, pool, jsPool, counters, close }
}

module.exports = { createApp, counterNames }
