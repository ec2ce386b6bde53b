'use strict'
// cluster(): N supervised workers sharing one listening port and one counter region, with
// rolling reloads, scaling, prefixed logs, memory-limit restarts and a local control socket
// (what PM2's cluster mode gives, built on Supervisor, listenReusePort and SharedCounters).
const { EventEmitter } = require('node:events')
const fs = require('node:fs')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { Supervisor } = require('./supervisor')
const { SharedCounters } = require('./counters')
const { listenReusePort } = require('./net')
const { closeGracefully } = require('./graceful')
const { CorepoolError, invalidArg, invalidState, describe, asArgError } = require('./errors')
const check = require('./validate')
const { longTimeout } = require('./timers')

const WORKER_PRELOAD = path.join(__dirname, 'cluster-worker.js')
const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/
const LOG_BACKLOG = 1000
const noop = () => {}

/** The cluster's own metrics, first in its region (the app's `counters` follow). */
const CLUSTER_COUNTERS = [
  { name: 'corepool_cluster_workers', type: 'gauge' },
  'corepool_cluster_worker_starts_total',
  'corepool_cluster_worker_restarts_total',
  'corepool_cluster_reloads_total',
]

/**
 * The directory of control sockets: $XDG_RUNTIME_DIR/corepool, or <tmpdir>/corepool-<uid>
 * (mode 0700, owned by this user: anything else is refused).
 */
function controlDir() {
  const uid = process.getuid?.() ?? 0
  const xdg = process.env.XDG_RUNTIME_DIR
  const base =
    xdg && path.isAbsolute(xdg) && fs.existsSync(xdg)
      ? path.join(xdg, 'corepool')
      : path.join(os.tmpdir(), `corepool-${uid}`)
  fs.mkdirSync(base, { recursive: true, mode: 0o700 })
  const st = fs.lstatSync(base)
  if (!st.isDirectory() || st.uid !== uid || (st.mode & 0o077) !== 0) {
    throw new CorepoolError('ERR_SYSTEM', `${base} must be a directory of this user with mode 0700`)
  }
  return base
}

const controlPath = (name) => path.join(controlDir(), `${name}.sock`)
// Abstract (Linux): released by the kernel when the process dies, so a crash leaves no lock.
const portLockPath = (port) => `\0corepool-cluster-port-${port}`

/** Sends one JSON request over a control socket; resolves with the first JSON line answered. */
function request(socketPath, message, { timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath)
    let buffer = ''
    const timer = setTimeout(() => socket.destroy(new CorepoolError('ERR_TASK_TIMEOUT', 'no answer')), timeout)
    socket.setEncoding('utf8')
    socket.on('connect', () => socket.write(JSON.stringify(message) + '\n'))
    socket.on('data', (chunk) => {
      buffer += chunk
      const nl = buffer.indexOf('\n')
      if (nl >= 0) {
        clearTimeout(timer)
        socket.destroy()
        try {
          resolve(JSON.parse(buffer.slice(0, nl)))
        } catch (err) {
          reject(err)
        }
      }
    })
    socket.on('error', (err) => {
      clearTimeout(timer)
      reject(err)
    })
    socket.on('close', () => {
      clearTimeout(timer)
      reject(new CorepoolError('ERR_SYSTEM', 'the control socket closed without an answer'))
    })
  })
}

function listenOn(server, where) {
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err)
    server.once('error', onError)
    server.listen(where, () => {
      server.off('error', onError)
      resolve()
    })
  })
}

/**
 * Takes the lock `where` (a Unix socket path or an abstract name) by listening on it. Resolves
 * `{ server }`, or `{ holder }` with the status the live holder answered. A stale socket file
 * (its process died) is replaced.
 */
async function takeLock(where, onConnection) {
  const server = net.createServer(onConnection)
  try {
    await listenOn(server, where)
  } catch (err) {
    if (err.code !== 'EADDRINUSE') throw err
    const holder = await request(where, { cmd: 'status' }, { timeout: 2000 }).catch(() => null)
    if (holder !== null) return { holder: holder.status ?? holder }
    if (where.startsWith('\0')) return { holder: {} } // held by something that does not answer
    fs.rmSync(where, { force: true })
    await listenOn(server, where)
  }
  if (!where.startsWith('\0')) fs.chmodSync(where, 0o600)
  server.unref()
  return { server }
}

function runningError(holder, { port, name }) {
  const who = holder?.pid ? ` (pid ${holder.pid}, name ${JSON.stringify(holder.name)})` : ''
  const what = port !== undefined && holder?.port === port ? `on port ${port}` : `named ${JSON.stringify(name)}`
  const err = new CorepoolError(
    'ERR_CLUSTER_RUNNING',
    `a corepool cluster is already running ${what}${who}; stop it first (npx corepool stop ${holder?.name ?? name}) or choose another port and name`,
  )
  err.pid = holder?.pid
  err.port = holder?.port ?? port
  err.clusterName = holder?.name ?? name
  return err
}

/** 200, '200M', '1.5G', '512K' → bytes. */
function parseBytes(value, what) {
  if (value === undefined) return undefined
  if (typeof value === 'number' && value > 0 && Number.isFinite(value)) return value
  const m = typeof value === 'string' && value.trim().match(/^([0-9]+(?:\.[0-9]+)?)\s*([KMG]?)B?$/i)
  if (!m) throw invalidArg(`${what} must be a number of bytes or a string like '200M', got ${describe(value)}`)
  return Number(m[1]) * { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3 }[m[2].toUpperCase()]
}

function workerCount(value) {
  const cores = os.availableParallelism?.() ?? os.cpus().length
  if (value === undefined || value === 'max' || value === 0) return cores
  if (Number.isInteger(value) && value < 0) return Math.max(1, cores + value)
  if (Number.isInteger(value) && value > 0 && value <= 1024) return value
  throw invalidArg(
    `options.workers must be an integer from 1 to 1024, 'max', 0 (max) or -k (max - k), got ${describe(value)}`,
  )
}

/** Resident memory of `pid` in bytes (Linux /proc), or null. */
function rss(pid) {
  try {
    const m = fs.readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+([0-9]+) kB/m)
    return m ? Number(m[1]) * 1024 : null
  } catch {
    return null
  }
}

function describeExit({ code, signal }) {
  return signal ? `signal ${signal}` : `code ${code}`
}

function normalizeOptions(options) {
  check.object(options, 'options', { required: true })
  const { module, command } = options
  const args = check.strings(options.args, 'options.args', { default: [] })
  const env = check.object(options.env, 'options.env')
  const port = check.int(options.port, 'options.port', { max: 65535 })
  const host = check.string(options.host, 'options.host', { default: '0.0.0.0' })
  const reusePort = check.bool(options.reusePort, 'options.reusePort', { default: false })
  if ((module === undefined) === (command === undefined))
    throw invalidArg('options needs exactly one of module or command')
  const target = module ?? command
  if (!(typeof target === 'string' && target !== '') && !(target instanceof URL)) {
    throw invalidArg(
      `options.${module !== undefined ? 'module' : 'command'} must be a non-empty string, got ${describe(target)}`,
    )
  }
  const base = path.basename(String(target instanceof URL ? target.pathname : target)).replace(/\.[cm]?[jt]s$/, '')
  const name = options.name ?? (base.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^[._-]+/, '') || 'app')
  if (typeof name !== 'string' || !NAME.test(name)) {
    throw invalidArg(`options.name must match ${NAME} (it names the control socket), got ${describe(name)}`)
  }
  const ready = check.oneOf(options.ready, 'options.ready', ['listening', 'message', 'spawn'], {
    default: module !== undefined && port !== undefined ? 'listening' : 'spawn',
  })
  if (ready !== 'spawn' && module === undefined)
    throw invalidArg(`options.ready ${JSON.stringify(ready)} needs a module`)
  check.strings(options.execArgv, 'options.execArgv')
  if (options.counters !== undefined && !Array.isArray(options.counters)) {
    throw invalidArg(`options.counters must be an array of counter specs, got ${describe(options.counters)}`)
  }
  const workers = workerCount(options.workers)
  return {
    module,
    command,
    args,
    env,
    port,
    host,
    reusePort,
    name,
    ready,
    workers,
    cwd: options.cwd,
    execArgv: options.execArgv ?? [],
    counters: options.counters ?? [],
    processes: options.processes ?? Math.min(4096, Math.max(64, workers * 4)),
    // A time limit (0 or Infinity: none), passed on as the Supervisor's ready.timeout.
    readyTimeout: check.timeout(options.readyTimeout ?? 30_000, 'options.readyTimeout'),
    shutdownMs: check.duration(options.shutdownMs, 'options.shutdownMs', { default: 10_000 }),
    maxMemoryRestart: parseBytes(options.maxMemoryRestart, 'options.maxMemoryRestart'),
    // An interval (Infinity: never check).
    memoryCheckInterval: check.duration(options.memoryCheckInterval, 'options.memoryCheckInterval', {
      positive: true,
      default: 5_000,
    }),
    maxRestarts: options.maxRestarts ?? Math.max(16, 4 * workers),
    restartPeriod: check.duration(options.restartPeriod, 'options.restartPeriod', { positive: true, default: 60_000 }),
    timestamps: check.bool(options.timestamps, 'options.timestamps', { default: false }),
    prefixLogs: check.bool(options.prefixLogs, 'options.prefixLogs', { default: true }),
    signals: check.bool(options.signals, 'options.signals', { default: true }),
    // null: not written anywhere (still kept for `logs` and emitted as 'log').
    stdout: options.stdout === undefined ? process.stdout : options.stdout,
    stderr: options.stderr === undefined ? process.stderr : options.stderr,
  }
}

/**
 * A running cluster. Events: 'online' (workerId, pid), 'exit' (workerId, { code, signal,
 * durationMs, expected }), 'restart' (workerId, { attempt, delayMs, reason }), 'reload'
 * ({ durationMs, replaced }), 'scale' (workers), 'log' ({ worker, stream, line, time }),
 * 'error' (err, after the supervisor gave up), 'stop'.
 */
class Cluster extends EventEmitter {
  #o
  #sup
  #fd = null
  #port
  #counters
  #regionName
  #locks = []
  #controlPath = null
  /** workerId → { id, sid, pid, startedAt, restarts, lastExit, replacing } */
  #workers = new Map()
  /** supervisor id → workerId */
  #bySid = new Map()
  #gen = 0
  #state = 'starting'
  #ops = Promise.resolve()
  #logs = []
  #followers = new Set()
  #signalHandlers = []
  #memoryTimer = null
  #stopping = null
  #reloads = 0
  #restarts = 0

  /** Use `await cluster(options)`. */
  constructor(o, token) {
    super()
    if (token !== kCreate) throw invalidArg('use cluster(options), which starts the cluster')
    this.#o = o
  }

  get name() {
    return this.#o.name
  }

  /** The listening port (the actual one when `port: 0` was asked for), or null. */
  get port() {
    return this.#port ?? null
  }

  /** The shared counter region of the cluster (the workers open it with `cluster.counters()`). */
  get counters() {
    return this.#counters
  }

  /** The path of the control socket (`npx corepool status|reload|stop|logs` talk to it). */
  get controlSocket() {
    return this.#controlPath
  }

  async _start() {
    const o = this.#o
    try {
      await this.#lock()
      if (o.port !== undefined && !o.reusePort) this.#fd = listenReusePort(this.#port, o.host)
      this.#regionName = `corepool-cluster-${o.name}`
      // A region left by a cluster of this name that crashed: ours now (we hold the lock).
      SharedCounters.unlink(this.#regionName)
      this.#counters = SharedCounters.open(this.#regionName, {
        names: [...CLUSTER_COUNTERS, ...o.counters],
        create: true,
        processes: o.processes,
      })
      this.#sup = new Supervisor({
        strategy: 'one_for_one',
        intensity: o.maxRestarts,
        period: o.restartPeriod,
        backoff: { initial: 100, factor: 2, max: 15_000 },
      })
      this.#wireSupervisor()
      for (let id = 0; id < o.workers; id++) this.#sup.add(this.#spec(id))
      await this.#sup.start()
      this.#state = 'running'
      this.#counters.set('corepool_cluster_workers', this.#workers.size)
      if (o.signals) this.#installSignals()
      if (o.maxMemoryRestart !== undefined) {
        // Any interval works as written (setInterval would run every 1 ms past 2^31 - 1 ms).
        const every = () => {
          this.#memoryTimer = longTimeout(
            () => {
              this.#checkMemory()
              every()
            },
            o.memoryCheckInterval,
            { unref: true },
          )
        }
        every()
      }
      this.#note(`${o.workers} worker${o.workers === 1 ? '' : 's'} online${this.#port ? ` on port ${this.#port}` : ''}`)
    } catch (err) {
      this.#state = 'stopped'
      await this.#sup?.stop().catch(noop)
      await this.#cleanup()
      throw err
    }
    return this
  }

  async #lock() {
    const o = this.#o
    const answer = (socket) => this.#onControl(socket)
    let port = o.port
    if (port === 0) {
      // Pick the port once so that every worker binds the same.
      const probe = net.createServer().listen({ fd: listenReusePort(0, o.host) })
      await new Promise((resolve) => probe.once('listening', resolve))
      port = probe.address().port
      await new Promise((resolve) => probe.close(resolve))
    }
    this.#port = port
    if (port !== undefined) {
      const lock = await takeLock(portLockPath(port), answer)
      if (lock.holder) throw runningError(lock.holder, { port, name: o.name })
      this.#locks.push(lock.server)
    }
    const where = controlPath(o.name)
    const lock = await takeLock(where, answer)
    if (lock.holder) throw runningError(lock.holder, { port, name: o.name })
    this.#locks.push(lock.server)
    this.#controlPath = where
  }

  #spec(workerId) {
    const o = this.#o
    const sid = `${o.name}:${workerId}:${this.#gen++}`
    const env = {
      ...process.env,
      ...o.env,
      COREPOOL_WORKER_ID: String(workerId),
      NODE_APP_INSTANCE: String(workerId), // PM2's name for it
      COREPOOL_CLUSTER_NAME: o.name,
      COREPOOL_COUNTERS: this.#regionName,
    }
    if (this.#port !== undefined) {
      env.PORT = String(this.#port)
      env.COREPOOL_CLUSTER_PORT = String(this.#port)
      env.COREPOOL_CLUSTER_HOST = o.host
    }
    if (this.#fd !== null) env.COREPOOL_LISTEN_FD = '0'
    else delete env.COREPOOL_LISTEN_FD
    const options = {
      env,
      cwd: o.cwd,
      // The shared listening socket is the worker's stdin (fd 0), as inetd passes it.
      stdio: [this.#fd ?? 'ignore', 'pipe', 'pipe'],
    }
    let ready
    if (o.ready === 'listening') {
      ready = { message: (m) => m === 'ready' || m?.type === 'corepool:listening', timeout: o.readyTimeout }
    } else if (o.ready === 'message') {
      ready = { message: 'ready', timeout: o.readyTimeout }
    }
    this.#bySid.set(sid, workerId)
    const common = { id: sid, args: o.args, options, ready, shutdownMs: o.shutdownMs }
    if (o.module !== undefined) {
      options.execArgv = [...o.execArgv, '--require', WORKER_PRELOAD]
      return { ...common, module: o.module }
    }
    return { ...common, command: o.command }
  }

  #wireSupervisor() {
    const sup = this.#sup
    sup.on('spawn', (sid, child) => {
      const id = this.#bySid.get(sid)
      for (const stream of ['stdout', 'stderr']) {
        ;(async () => {
          for await (const line of child.lines(stream)) this.#log(id, stream, line)
        })().catch(noop)
      }
    })
    sup.on('start', (sid, pid) => {
      const id = this.#bySid.get(sid)
      const current = this.#workers.get(id)
      // During a replacement the old worker stays listed until the new one is ready.
      if (current === undefined || current.sid === sid || current.replacing === sid) {
        this.#workers.set(id, {
          id,
          sid,
          pid,
          startedAt: Date.now(),
          restarts: current?.sid === sid ? current.restarts : 0,
          lastExit: current?.sid === sid ? current.lastExit : null,
          replacing: null,
        })
      }
      this.#counters.inc('corepool_cluster_worker_starts_total')
      this.emit('online', id, pid)
    })
    sup.on('exit', (sid, info) => {
      const id = this.#bySid.get(sid)
      const w = this.#workers.get(id)
      if (w?.sid === sid) w.lastExit = { ...info, at: Date.now() }
      if (!info.expected)
        this.#note(`worker ${id} exited with ${describeExit(info)} after ${Math.round(info.durationMs)} ms`)
      this.emit('exit', id, info)
    })
    sup.on('restart', (sid, { attempt, delayMs }) => {
      const id = this.#bySid.get(sid)
      const w = this.#workers.get(id)
      if (w?.sid === sid) w.restarts++
      this.#restarts++
      this.#counters.inc('corepool_cluster_worker_restarts_total')
      const last = w?.lastExit ? `last exit: ${describeExit(w.lastExit)}` : 'not ready in time'
      this.#note(`restarting worker ${id} (#${attempt}, in ${delayMs} ms; ${last})`)
      this.emit('restart', id, { attempt, delayMs, reason: 'exit', exit: w?.lastExit ?? null })
    })
    sup.on('gaveUp', (err) => {
      this.#note(`gave up: ${err.message}`)
      if (this.listenerCount('error') > 0) this.emit('error', err)
      this.stop().catch(noop)
    })
  }

  /** One output line: prefixed, written, kept for `logs`, sent to followers. */
  #log(worker, stream, line) {
    const o = this.#o
    const time = new Date()
    const prefix = o.prefixLogs ? `${worker}|${o.name} ` : ''
    const text = `${o.timestamps ? time.toISOString() + ' ' : ''}${prefix}${line}`
    ;(stream === 'stderr' ? o.stderr : o.stdout)?.write(text + '\n')
    this.#logs.push(text)
    if (this.#logs.length > LOG_BACKLOG) this.#logs.shift()
    for (const f of this.#followers) f.write(text + '\n')
    this.emit('log', { worker, stream, line, time })
  }

  /** A line of the cluster's own (restarts, reloads). */
  #note(message) {
    this.#log('cluster', 'stdout', message)
  }

  #serial(fn) {
    const run = this.#ops.then(fn)
    this.#ops = run.catch(noop)
    return run
  }

  /** Starts a new worker `id`, waits until it is ready, then stops the old one gracefully. */
  async #replace(id, reason) {
    const old = this.#workers.get(id)
    if (old === undefined || this.#state !== 'running') return false
    const spec = this.#spec(id)
    old.replacing = spec.id
    try {
      await this.#startAndWait(spec)
    } catch (err) {
      old.replacing = null
      this.#note(`worker ${id}: its replacement did not start (${err.message}); the old one keeps running`)
      await this.#sup.remove(spec.id).catch(noop)
      throw err
    }
    this.#note(`worker ${id} replaced (${reason}): pid ${old.pid} → ${this.#workers.get(id)?.pid}`)
    await this.#sup.remove(old.sid).catch(noop)
    this.#bySid.delete(old.sid)
    return true
  }

  /** Adds `spec` to the running supervisor; resolves once it is ready, rejects if it exits first. */
  #startAndWait(spec) {
    return new Promise((resolve, reject) => {
      const onStart = (sid) => {
        if (sid !== spec.id) return
        done()
        resolve()
      }
      const onExit = (sid, info) => {
        if (sid !== spec.id) return
        done()
        reject(new CorepoolError('ERR_SPAWN', `the new worker exited with ${describeExit(info)} before it was ready`))
      }
      const done = () => {
        this.#sup.off('start', onStart)
        this.#sup.off('exit', onExit)
      }
      this.#sup.on('start', onStart)
      this.#sup.on('exit', onExit)
      try {
        this.#sup.add(spec)
      } catch (err) {
        done()
        reject(err)
      }
    })
  }

  /**
   * Rolling reload: for each worker, start a new one, wait until it is ready (listening), then
   * stop the old one gracefully. Resolves `{ durationMs, replaced }`.
   */
  reload() {
    if (this.#state !== 'running') return Promise.reject(invalidState(`the cluster is ${this.#state}`))
    return this.#serial(async () => {
      const start = performance.now()
      this.#note('reloading')
      let replaced = 0
      for (const id of [...this.#workers.keys()].sort((a, b) => a - b)) {
        if (await this.#replace(id, 'reload')) replaced++
      }
      this.#reloads++
      this.#counters.inc('corepool_cluster_reloads_total')
      const result = { durationMs: performance.now() - start, replaced }
      this.#note(`reloaded ${replaced} worker${replaced === 1 ? '' : 's'} in ${Math.round(result.durationMs)} ms`)
      this.emit('reload', result)
      return result
    })
  }

  /** Runs `n` workers: starts new ones (waiting until ready) or stops the highest ids. */
  scale(n) {
    let count
    try {
      if (this.#state !== 'running') throw invalidState(`the cluster is ${this.#state}`)
      count = workerCount(n)
    } catch (err) {
      return Promise.reject(err)
    }
    return this.#serial(async () => {
      for (let id = 0; this.#workers.size < count; id++) {
        if (!this.#workers.has(id)) await this.#startAndWait(this.#spec(id))
      }
      const ids = [...this.#workers.keys()].sort((a, b) => b - a)
      for (const id of ids.slice(0, Math.max(0, ids.length - count))) {
        const w = this.#workers.get(id)
        this.#workers.delete(id)
        await this.#sup.remove(w.sid)
        this.#bySid.delete(w.sid)
      }
      this.#counters.set('corepool_cluster_workers', this.#workers.size)
      this.#note(`scaled to ${this.#workers.size} worker${this.#workers.size === 1 ? '' : 's'}`)
      this.emit('scale', this.#workers.size)
      return this.#workers.size
    })
  }

  #checkMemory() {
    if (this.#state !== 'running') return
    for (const w of this.#workers.values()) {
      if (w.replacing !== null) continue
      const bytes = rss(w.pid)
      if (bytes === null || bytes <= this.#o.maxMemoryRestart) continue
      w.replacing = 'pending'
      const mb = (x) => `${(x / 1024 ** 2).toFixed(1)} MB`
      this.#note(`worker ${w.id} uses ${mb(bytes)} > maxMemoryRestart ${mb(this.#o.maxMemoryRestart)}: replacing it`)
      this.#restarts++
      this.#counters.inc('corepool_cluster_worker_restarts_total')
      this.emit('restart', w.id, { attempt: w.restarts + 1, delayMs: 0, reason: 'memory', rss: bytes })
      this.#serial(() => this.#replace(w.id, 'memory')).catch(noop)
    }
  }

  /** A snapshot of the cluster and its workers. */
  status() {
    const now = Date.now()
    return {
      name: this.#o.name,
      pid: process.pid,
      state: this.#state,
      port: this.#port ?? null,
      host: this.#o.host,
      reusePort: this.#o.reusePort,
      region: this.#regionName ?? null,
      controlSocket: this.#controlPath,
      reloads: this.#reloads,
      restarts: this.#restarts,
      workers: [...this.#workers.values()]
        .sort((a, b) => a.id - b.id)
        .map((w) => ({
          id: w.id,
          pid: w.pid,
          uptimeMs: now - w.startedAt,
          restarts: w.restarts,
          memory: rss(w.pid),
          lastExit: w.lastExit,
        })),
    }
  }

  /** Stops every worker gracefully, releases the port, the region and the control socket. */
  stop() {
    if (this.#stopping) return this.#stopping
    this.#state = 'stopping'
    this.#stopping = (async () => {
      this.#note('stopping')
      await this.#sup?.stop()
      await this.#cleanup()
      this.#state = 'stopped'
      this.emit('stop')
    })()
    return this.#stopping
  }

  async #cleanup() {
    this.#memoryTimer?.clear()
    for (const [signal, handler] of this.#signalHandlers) process.off(signal, handler)
    this.#signalHandlers = []
    if (this.#fd !== null) {
      fs.closeSync(this.#fd)
      this.#fd = null
    }
    if (this.#regionName && this.#counters) SharedCounters.unlink(this.#regionName)
    for (const f of this.#followers) f.end()
    this.#followers.clear()
    await Promise.all(this.#locks.map((server) => new Promise((resolve) => server.close(() => resolve()))))
    this.#locks = []
    if (this.#controlPath) fs.rmSync(this.#controlPath, { force: true })
  }

  #installSignals() {
    const on = (signal, handler) => {
      process.on(signal, handler)
      this.#signalHandlers.push([signal, handler])
    }
    on('SIGHUP', () => {
      this.#note('SIGHUP: reloading')
      this.reload().catch((err) => this.#note(`reload failed: ${err.message}`))
    })
    for (const signal of ['SIGTERM', 'SIGINT']) {
      on(signal, () => {
        this.#note(`${signal}: stopping`)
        this.stop().catch(noop)
      })
    }
  }

  /** A connection on the control socket: newline-delimited JSON requests. */
  #onControl(socket) {
    socket.setEncoding('utf8')
    let buffer = ''
    socket.on('error', noop)
    socket.on('data', (chunk) => {
      buffer += chunk
      let nl
      while ((nl = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, nl)
        buffer = buffer.slice(nl + 1)
        this.#command(socket, line)
      }
    })
  }

  async #command(socket, line) {
    const reply = (value) => socket.writable && socket.write(JSON.stringify(value) + '\n')
    let message
    try {
      message = JSON.parse(line)
    } catch {
      return reply({ ok: false, error: { code: 'ERR_INVALID_ARG', message: 'not JSON' } })
    }
    try {
      switch (message?.cmd) {
        case 'status':
          return reply({ ok: true, status: this.status() })
        case 'reload':
          return reply({ ok: true, result: await this.reload() })
        case 'scale':
          return reply({ ok: true, workers: await this.scale(message.workers) })
        case 'stop':
          reply({ ok: true })
          return this.stop()
        case 'logs': {
          const lines = Number.isInteger(message.lines) && message.lines >= 0 ? message.lines : 50
          for (const text of this.#logs.slice(-lines || this.#logs.length)) socket.write(text + '\n')
          if (!message.follow) return socket.end()
          this.#followers.add(socket)
          socket.on('close', () => this.#followers.delete(socket))
          return
        }
        default:
          return reply({
            ok: false,
            error: { code: 'ERR_INVALID_ARG', message: `unknown command ${describe(message?.cmd)}` },
          })
      }
    } catch (err) {
      reply({ ok: false, error: { code: err.code, message: err.message } })
    }
  }
}

const kCreate = Symbol('corepool.Cluster.create')

/**
 * Starts a cluster and resolves once every worker is ready; rejects ERR_CLUSTER_RUNNING when
 * another corepool cluster holds the same port or name, ERR_INVALID_ARG for bad options.
 */
function cluster(options) {
  let o
  try {
    o = normalizeOptions(options)
  } catch (err) {
    return Promise.reject(asArgError(err)) // e.g. a getter of `options` that throws
  }
  return new Cluster(o, kCreate)._start()
}

/** In a cluster's worker: its id (COREPOOL_WORKER_ID), else null. */
Object.defineProperty(cluster, 'workerId', {
  enumerable: true,
  get: () => (/^[0-9]+$/.test(process.env.COREPOOL_WORKER_ID ?? '') ? Number(process.env.COREPOOL_WORKER_ID) : null),
})

/** In a cluster's worker: true. */
Object.defineProperty(cluster, 'isWorker', { enumerable: true, get: () => cluster.workerId !== null })

/** In a cluster's worker: the cluster's shared counter region (opened once per thread). */
let workerCounters = null
cluster.counters = function counters() {
  const region = process.env.COREPOOL_COUNTERS
  if (!region)
    throw invalidArg('cluster.counters() is for the workers of a corepool cluster (COREPOOL_COUNTERS is not set)')
  if (workerCounters?.name !== region) workerCounters = SharedCounters.open(region)
  return workerCounters
}

/** Sends a control request to the running cluster `name` (used by the CLI). */
cluster.request = function clusterRequest(name, message, options) {
  try {
    if (typeof name !== 'string' || !NAME.test(name)) throw invalidArg(`name must match ${NAME}, got ${describe(name)}`)
    return request(controlPath(name), message, options)
  } catch (err) {
    return Promise.reject(err)
  }
}

/** Names of the clusters with a control socket in this user's runtime directory. */
cluster.list = function list() {
  return fs
    .readdirSync(controlDir())
    .filter((f) => f.endsWith('.sock'))
    .map((f) => f.slice(0, -5))
}

cluster.controlPath = controlPath

/**
 * Stops `server` (an http.Server) from accepting and resolves once its connections ended, failing
 * no request: responses not yet started and requests arriving on kept-alive connections get
 * `Connection: close`, idle connections are closed after a second. For apps with their own
 * SIGTERM handler (a worker without one is stopped this way by the cluster).
 */
cluster.closeGracefully = function closeServerGracefully(server) {
  if (!(server instanceof net.Server))
    return Promise.reject(invalidArg(`server must be a net.Server, got ${describe(server)}`))
  return new Promise((resolve) => {
    if (!server.listening) return resolve()
    closeGracefully(server, () => resolve())
  })
}

module.exports = { cluster, Cluster }
