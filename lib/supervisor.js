// @ts-check
'use strict'
// An OTP-style supervisor over corepool's spawn/fork: restart strategies, restart intensity,
// exponential backoff, readiness, ordered graceful shutdown.
const { EventEmitter } = require('node:events')
const { isDeepStrictEqual } = require('node:util')
const { spawn, fork } = require('./children')
const { CorepoolError, invalidArg, invalidState, describe, asArgError, guardMethods } = require('./errors')
const { SharedCounters } = require('./counters')
const { longTimeout } = require('./timers')
const check = require('./validate')

// Per-child counters a supervisor bumps in a shared region (option `counters`).
const COUNTER_KINDS = ['starts', 'restarts', 'exits']
const MAX_ID_LENGTH = 256
const counterName = (kind, id) => `supervisor_${kind}_total:${String(id).replace(/[^a-zA-Z0-9_:]/g, '_')}`

const noop = () => {}
const STRATEGIES = ['one_for_one', 'one_for_all', 'rest_for_one']
const RESTARTS = ['permanent', 'transient', 'temporary']

/** @returns {{ promise: Promise<void>, resolve: (value?: void) => void, reject: (err: Error) => void }} */
function deferred() {
  let resolve, reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  promise.catch(noop)
  return { promise, resolve, reject }
}

// A cancellable delay of any length (Infinity: until cancelled): `timers` maps each pending
// timer to its resolver, so stop() can end them.
const delay = (ms, timers) =>
  new Promise((resolve) => {
    const t = longTimeout(() => {
      timers.delete(t)
      resolve()
    }, ms)
    timers.set(t, resolve)
  })

function cancelAll(timers) {
  for (const [t, resolve] of timers) {
    t.clear()
    resolve()
  }
  timers.clear()
}

/**
 * Supervises child processes. Events: 'spawn' (id, child) as soon as a child process is created,
 * 'start' (id, pid), 'exit' (id, { code, signal, durationMs, expected }), 'restart' (id,
 * { attempt, delayMs }), 'gaveUp' (error), 'line' (id, line) for children with `ready.line`.
 */
class Supervisor extends EventEmitter {
  #strategy
  #counters
  #intensity
  #period
  #backoff
  #entries = []
  #state = 'idle' // idle | starting | running | stopping | stopped | gaveUp
  #restartTimes = []
  #queue = Promise.resolve()
  #timers = new Map()
  #done = deferred()
  #gaveUpError = null

  /**
   * @param {{ strategy?: 'one_for_one' | 'one_for_all' | 'rest_for_one', intensity?: number,
   *   period?: number, backoff?: { initial?: number, factor?: number, max?: number } }} [options]
   */
  constructor(options) {
    super()
    try {
      this.#configure(options)
    } catch (err) {
      throw asArgError(err) // e.g. a getter of `options` that throws
    }
  }

  #configure(options) {
    const o = check.object(options)
    const { counters } = o
    check.instance(counters, 'options.counters', SharedCounters)
    this.#counters = counters
    this.#strategy = check.oneOf(o.strategy, 'options.strategy', STRATEGIES, { default: 'one_for_one' })
    this.#intensity = check.int(o.intensity, 'options.intensity', { default: 3 })
    this.#period = check.duration(o.period, 'options.period', { positive: true, default: 5000 })
    const backoff = check.object(o.backoff, 'options.backoff')
    this.#backoff = {
      initial: check.duration(backoff.initial, 'options.backoff.initial', { default: 100 }),
      factor: check.number(backoff.factor, 'options.backoff.factor', { min: 0, default: 2 }),
      max: check.duration(backoff.max, 'options.backoff.max', { default: 10_000 }),
    }
  }

  /** Settles when the supervisor stops: resolves after stop(), rejects ERR_SUPERVISOR_GAVE_UP. */
  get done() {
    return this.#done.promise
  }

  /**
   * Names of the counters a supervisor with option `counters` bumps for children `ids`
   * (`supervisor_{starts,restarts,exits}_total:<id>`): create the region with them.
   */
  static counterNames(ids) {
    if (!Array.isArray(ids)) throw invalidArg(`ids must be an array of child ids, got ${describe(ids)}`)
    return ids.flatMap((id) => COUNTER_KINDS.map((kind) => counterName(kind, id)))
  }

  /** Adds one to a child's counter in the shared region, when the region has it. */
  #count(entry, kind) {
    entry[kind]++
    const name = counterName(kind, entry.id)
    if (this.#counters?.names.includes(name)) this.#counters.inc(name)
  }

  /** The restart delay before the n-th consecutive restart (n >= 1) of a child. */
  backoffDelay(n) {
    const { initial, factor, max } = this.#backoff
    return Math.min(max, initial * factor ** Math.max(0, n - 1))
  }

  /**
   * Adds a child: `{ id, command, args?, options? }` (spawn) or `{ id, module, args?, options? }`
   * (fork), with `restart` ('permanent' default | 'transient' | 'temporary'), `shutdownMs`
   * (grace before SIGKILL, default 5000) and `ready` (`{ message }` for forked children: a value
   * compared deeply or a predicate,
   * `{ line: string | RegExp }` on stdout, optional `timeout`). Added to a running supervisor, it
   * starts at once.
   */
  add(spec) {
    if (typeof spec !== 'object' || spec === null) throw invalidArg(`spec must be an object, got ${describe(spec)}`)
    const { command, module, args, options, ready } = spec
    // Ids appear in events, logs and counter names: a bounded length keeps them cheap.
    const id = check.string(spec.id, 'spec.id', { nonEmpty: true, maxLength: MAX_ID_LENGTH, required: true })
    const restart = check.oneOf(spec.restart, 'spec.restart', RESTARTS, { default: 'permanent' })
    if (this.#entries.some((e) => e.id === id)) throw invalidArg(`a child with id ${JSON.stringify(id)} already exists`)
    if ((command === undefined) === (module === undefined)) {
      throw invalidArg('spec needs exactly one of command (spawn) or module (fork)')
    }
    check.string(command, 'spec.command')
    if (module !== undefined && typeof module !== 'string' && !(module instanceof URL)) {
      throw invalidArg(`spec.module must be a path`)
    }
    if (args !== undefined && !Array.isArray(args))
      throw invalidArg(`spec.args must be an array, got ${describe(args)}`)
    if (options !== undefined) check.object(options, 'spec.options')
    if (ready !== undefined) {
      if (typeof ready !== 'object' || ready === null || (!('message' in ready) && ready.line === undefined)) {
        throw invalidArg('spec.ready must be { message } or { line }')
      }
      if (ready.line !== undefined && typeof ready.line !== 'string' && !(ready.line instanceof RegExp)) {
        throw invalidArg('spec.ready.line must be a string or a RegExp')
      }
      if ('message' in ready && module === undefined) throw invalidArg('spec.ready.message needs a forked module')
    }
    const readyTimeout = check.timeout(ready?.timeout, 'spec.ready.timeout')
    const entry = {
      id,
      spec: { command, module, args: args ?? [], options: options ?? {}, restart, ready, readyTimeout },
      shutdownMs: check.duration(spec.shutdownMs, 'spec.shutdownMs', { default: 5000 }),
      child: null,
      state: 'stopped', // stopped | starting | running | exited | stopping
      starts: 0,
      restarts: 0,
      exits: 0,
      consecutive: 0,
      lastExit: null,
      waiters: [],
    }
    this.#entries.push(entry)
    if (this.#state === 'running') this.#serial(() => this.#startEntry(entry))
    return this
  }

  /** Starts every child in order; resolves when all have started (and are ready). */
  start() {
    if (this.#state !== 'idle') {
      return Promise.reject(invalidState(`start() can be called once, the supervisor is ${this.#state}`))
    }
    this.#state = 'starting'
    // Not in the serial queue: restarts of a child that fails while starting must run meanwhile.
    return (async () => {
      for (const entry of this.#entries) {
        if (this.#state !== 'starting') break
        this.#startEntry(entry)
        await this.#whenRunning(entry)
      }
      if (this.#gaveUpError) throw this.#gaveUpError
      if (this.#state === 'starting') this.#state = 'running'
    })()
  }

  /** Stops every child in reverse start order (SIGTERM, then SIGKILL after shutdownMs). */
  stop() {
    if (this.#state === 'stopped' || this.#state === 'gaveUp') return Promise.resolve()
    if (this.#state === 'stopping') return this.#done.promise.catch(noop)
    this.#state = 'stopping'
    cancelAll(this.#timers)
    return this.#serial(async () => {
      await this.#stopEntries([...this.#entries].reverse())
      this.#state = 'stopped'
      for (const e of this.#entries) this.#failWaiters(e, invalidState('The supervisor stopped'))
      this.#done.resolve()
    })
  }

  /**
   * Stops one child gracefully (SIGTERM, SIGKILL after its shutdownMs) and removes it from the
   * supervisor; resolves once it exited. Not counted as a restart or a failure.
   */
  remove(id) {
    const entry = this.#entries.find((e) => e.id === id)
    if (entry === undefined) return Promise.reject(invalidArg(`no child with id ${describe(id)}`))
    return this.#serial(async () => {
      await this.#stopEntries([entry])
      const index = this.#entries.indexOf(entry)
      if (index >= 0) this.#entries.splice(index, 1)
      this.#failWaiters(entry, invalidState(`child ${JSON.stringify(id)} was removed`))
    })
  }

  /** Restarts one child by hand (stop, then start); not counted against the intensity. */
  restart(id) {
    const entry = this.#entries.find((e) => e.id === id)
    if (entry === undefined) return Promise.reject(invalidArg(`no child with id ${describe(id)}`))
    if (this.#state !== 'running')
      return Promise.reject(invalidState(`restart() needs a running supervisor; it is ${this.#state}`))
    return this.#serial(async () => {
      await this.#stopEntries([entry])
      this.#count(entry, 'restarts')
      this.emit('restart', entry.id, { attempt: entry.restarts, delayMs: 0, manual: true })
      this.#startEntry(entry)
    }).then(() => this.#whenRunning(entry))
  }

  /** A snapshot: the supervisor's state and per-child counts. */
  status() {
    return {
      state: this.#state,
      strategy: this.#strategy,
      restartsInPeriod: this.#recentRestarts(performance.now()).length,
      children: this.#entries.map((e) => ({
        id: e.id,
        state: e.state,
        pid: e.child?.pid,
        starts: e.starts,
        restarts: e.restarts,
        exits: e.exits,
        lastExit: e.lastExit,
      })),
    }
  }

  // --- internals ----------------------------------------------------------------------------

  #serial(fn) {
    const run = this.#queue.then(fn)
    this.#queue = run.catch(noop)
    return run
  }

  #whenRunning(entry) {
    if (entry.state === 'running') return Promise.resolve()
    return new Promise((resolve, reject) => entry.waiters.push({ resolve, reject }))
  }

  #failWaiters(entry, err) {
    for (const w of entry.waiters.splice(0)) w.reject(err)
  }

  #startEntry(entry) {
    const { command, module, args, options, ready } = entry.spec
    const base = { stdio: 'inherit', ...options, forceKillAfter: false }
    if (ready?.line !== undefined) {
      const s = Array.isArray(base.stdio) ? [...base.stdio] : [base.stdio, base.stdio, base.stdio]
      s[1] = 'pipe'
      base.stdio = s
    }
    let child
    try {
      child = module !== undefined ? fork(module, args, base) : spawn(command, args, base)
    } catch (err) {
      // Invalid options: nothing to restart.
      entry.state = 'stopped'
      this.#failWaiters(entry, err)
      return
    }
    entry.child = child
    entry.state = 'starting'
    this.emit('spawn', entry.id, child)
    this.#count(entry, 'starts')
    const startedAt = performance.now()
    let isReady = ready === undefined
    const becomeReady = () => {
      if (entry.child !== child || entry.state !== 'starting') return
      entry.state = 'running'
      this.emit('start', entry.id, child.pid)
      for (const w of entry.waiters.splice(0)) w.resolve()
    }
    if (ready !== undefined) {
      if ('message' in ready) {
        const expected = ready.message
        const matches = typeof expected === 'function' ? expected : (m) => isDeepStrictEqual(m, expected)
        const onMessage = (m) => {
          if (!isReady && matches(m)) {
            isReady = true
            child.off('message', onMessage)
            becomeReady()
          }
        }
        child.on('message', onMessage)
      }
      if (ready.line !== undefined && child.stdout) {
        const match = typeof ready.line === 'string' ? (l) => l.includes(ready.line) : (l) => ready.line.test(l)
        ;(async () => {
          for await (const line of child.lines('stdout')) {
            this.emit('line', entry.id, line)
            if (!isReady && match(line)) {
              isReady = true
              becomeReady()
            }
          }
        })().catch(noop)
      }
      if (entry.spec.readyTimeout !== Infinity) {
        delay(entry.spec.readyTimeout, this.#timers).then(() => {
          const active = this.#state === 'running' || this.#state === 'starting'
          if (active && !isReady && entry.child === child && child.running) child.kill('SIGKILL')
        })
      }
    }
    child.spawned.then(() => {
      if (isReady) becomeReady()
    }, noop)
    child.exited.then(
      (r) => this.#onExit(entry, child, r, startedAt),
      (err) =>
        this.#onExit(entry, child, { code: null, signal: err.signal ?? null, durationMs: 0, error: err }, startedAt),
    )
  }

  #onExit(entry, child, result, startedAt) {
    if (entry.child !== child) return
    entry.child = null
    this.#count(entry, 'exits')
    const normal = result.error === undefined && result.code === 0 && result.signal === null
    const expected = entry.state === 'stopping' || this.#state === 'stopping' || this.#state === 'gaveUp'
    entry.lastExit = { code: result.code, signal: result.signal, error: result.error?.code }
    entry.state = expected ? 'stopping' : 'exited'
    this.emit('exit', entry.id, { code: result.code, signal: result.signal, durationMs: result.durationMs, expected })
    if (expected) return
    const { restart } = entry.spec
    if (restart === 'temporary' || (restart === 'transient' && normal)) {
      entry.state = 'stopped'
      for (const w of entry.waiters.splice(0)) w.resolve()
      return
    }
    // A child that stayed up a whole period starts its backoff afresh.
    if (performance.now() - startedAt >= this.#period) entry.consecutive = 0
    this.#serial(() => this.#restartAfterFailure(entry))
  }

  #recentRestarts(now) {
    this.#restartTimes = this.#restartTimes.filter((t) => now - t < this.#period)
    return this.#restartTimes
  }

  async #restartAfterFailure(failed) {
    if (this.#state !== 'running' && this.#state !== 'starting') return
    if (!this.#entries.includes(failed)) return // removed meanwhile
    const now = performance.now()
    if (this.#recentRestarts(now).length >= this.#intensity) {
      await this.#giveUp(failed)
      return
    }
    this.#restartTimes.push(now)
    const index = this.#entries.indexOf(failed)
    let group
    if (this.#strategy === 'one_for_all') group = this.#entries.slice()
    else if (this.#strategy === 'rest_for_one') group = this.#entries.slice(index)
    else group = [failed]
    group = group.filter((e) => e === failed || e.state !== 'stopped' || e.child !== null)
    // Stop the others of the group, newest first.
    await this.#stopEntries(group.filter((e) => e !== failed).reverse())
    failed.consecutive++
    const delayMs = this.backoffDelay(failed.consecutive)
    for (const e of group) {
      this.#count(e, 'restarts')
      this.emit('restart', e.id, { attempt: e.restarts, delayMs })
    }
    if (delayMs > 0) await delay(delayMs, this.#timers)
    if (this.#state !== 'running' && this.#state !== 'starting') return
    for (const e of group) {
      if (!this.#entries.includes(e)) continue
      this.#startEntry(e)
      // Ready, or dead again (its own restart is queued behind this one).
      await Promise.race([this.#whenRunning(e), e.child?.exited].filter(Boolean)).catch(noop)
      if (this.#state !== 'running' && this.#state !== 'starting') return
    }
  }

  async #giveUp(failed) {
    this.#state = 'gaveUp'
    cancelAll(this.#timers)
    const err = new CorepoolError(
      'ERR_SUPERVISOR_GAVE_UP',
      `Child ${JSON.stringify(failed.id)} failed after ${this.#intensity} restarts within ${this.#period} ms; all children were stopped`,
    )
    err.childId = failed.id
    this.#gaveUpError = err
    await this.#stopEntries([...this.#entries].reverse())
    for (const e of this.#entries) this.#failWaiters(e, err)
    this.emit('gaveUp', err)
    this.#done.reject(err)
  }

  async #stopEntries(entries) {
    for (const entry of entries) {
      const child = entry.child
      if (child === null) {
        entry.state = 'stopped'
        continue
      }
      entry.state = 'stopping'
      child.kill('SIGTERM')
      /** @type {{ clear(): void }} */
      let timer
      const grace = new Promise((resolve) => {
        timer = longTimeout(resolve, entry.shutdownMs)
      })
      const finished = child.exited.then(noop, noop)
      await Promise.race([finished, grace])
      timer.clear()
      if (child.running) child.kill('SIGKILL')
      await finished
      if (entry.child === child) entry.child = null
      entry.state = 'stopped'
    }
  }
}

// Child specs are the caller's objects: what reading them throws is ERR_INVALID_ARG.
guardMethods(Supervisor.prototype, ['add'])

module.exports = { Supervisor }
