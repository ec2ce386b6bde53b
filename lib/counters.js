'use strict'
// SharedCounters: 64-bit atomic counters in shared memory (an anonymous region for this process
// and its worker threads, or a named region in /dev/shm shared by processes of the same user).
//
// The hot operations run here, in JS, as `Atomics.*` on a BigInt64Array over the region: a
// call into native code would cost more than the atomic add itself. Native code creates, opens
// and validates regions, and waits (futex) on its own threads for `waitFor`.
const native = require('./native')
const { CorepoolError, invalidArg, abortError, describe, asArgError, guardMethods } = require('./errors')
const { signalOption, timeoutOption } = require('./options')

const kToken = Symbol('corepool.SharedCounters.internal')
const kNative = Symbol('corepool.SharedCounters.native')
const HANDLE_TYPE = 'corepool.SharedCounters'
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
let nextWaitKey = 1

function toInt64(value, what) {
  if (typeof value === 'bigint') {
    if (value < INT64_MIN || value > INT64_MAX) {
      throw invalidArg(`${what} must fit in a signed 64-bit integer, got ${describe(value)}`)
    }
    return value
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return BigInt(value)
  throw invalidArg(`${what} must be a safe integer or a BigInt, got ${describe(value)}`)
}

function checkObject(value, what) {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw invalidArg(`${what} must be an object, got ${describe(value)}`)
  }
  return value ?? {}
}

/** `names: (string | { name, type: 'counter' | 'gauge' })[]` → parallel arrays for native. */
function parseNames(names, what) {
  if (!Array.isArray(names)) throw invalidArg(`${what} must be an array of counter names, got ${describe(names)}`)
  const list = []
  const gauges = []
  for (const [i, entry] of names.entries()) {
    let name = entry
    let type = 'counter'
    if (typeof entry === 'object' && entry !== null) {
      ;({ name, type = 'counter' } = entry)
      if (type !== 'counter' && type !== 'gauge') {
        throw invalidArg(`${what}[${i}].type must be 'counter' or 'gauge', got ${describe(type)}`)
      }
    }
    if (typeof name !== 'string') {
      throw invalidArg(`${what}[${i}] must be a counter name or { name, type }, got ${describe(name)}`)
    }
    list.push(name)
    gauges.push(type === 'gauge')
  }
  return { names: list, gauges }
}

function checkRegionName(name) {
  if (typeof name !== 'string') throw invalidArg(`name must be a string, got ${describe(name)}`)
}

function waitOptions(options) {
  const { timeout, signal } = checkObject(options, 'options')
  return { timeout: timeoutOption(timeout), signal: signalOption(signal) }
}

function defaultHelp(type, name) {
  return `corepool shared ${type} ${name}`
}

function escapeHelp(text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n')
}

function escapeLabelValue(text) {
  return text.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')
}

/** Validates `{ prefix, help, labels }` of toPrometheus / registerWithPromClient. */
function exportOptions(options, names) {
  const { prefix = '', help, labels } = checkObject(options, 'options')
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
    throw invalidArg(`options.prefix must be a string matching [a-zA-Z_:][a-zA-Z0-9_:]*, got ${describe(prefix)}`)
  }
  let helpFor
  if (help === undefined) helpFor = () => undefined
  else if (typeof help === 'string') helpFor = () => help
  else if (typeof help === 'object' && help !== null && !Array.isArray(help)) {
    for (const [k, v] of Object.entries(help)) {
      if (!names.includes(k)) throw invalidArg(`options.help names an unknown counter ${JSON.stringify(k)}`)
      if (typeof v !== 'string') throw invalidArg(`options.help.${k} must be a string, got ${describe(v)}`)
    }
    helpFor = (name) => (Object.hasOwn(help, name) ? help[name] : undefined)
  } else {
    throw invalidArg(`options.help must be a string or an object of strings, got ${describe(help)}`)
  }
  const labelPairs = []
  for (const [k, v] of Object.entries(checkObject(labels, 'options.labels'))) {
    if (!LABEL_NAME.test(k) || k.startsWith('__')) {
      throw invalidArg(`options.labels: ${JSON.stringify(k)} is not a valid label name`)
    }
    if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint') {
      throw invalidArg(`options.labels.${k} must be a string or a number, got ${describe(v)}`)
    }
    labelPairs.push([k, String(v)])
  }
  return { prefix, helpFor, labelPairs }
}

class SharedCounters {
  #native
  #array
  #words
  /** name → element index of the slot's value in #array */
  #slots = new Map()
  #names
  #gauges
  #stride
  #waitersWord

  /**
   * A new anonymous region for this process and its worker threads, every counter at 0.
   * @param {{ names: (string | { name: string, type?: 'counter' | 'gauge' })[] }} options
   */
  constructor(options, nativeCounters) {
    if (options === kToken) {
      this.#init(nativeCounters)
      return
    }
    if (typeof options !== 'object' || options === null) {
      throw invalidArg(`options must be an object with a names array, got ${describe(options)}`)
    }
    let parsed
    try {
      parsed = parseNames(options.names, 'options.names')
    } catch (err) {
      throw asArgError(err)
    }
    this.#init(native.NativeCounters.anonymous(parsed.names, parsed.gauges))
  }

  #init(nc) {
    this.#native = nc
    const buffer = nc.buffer()
    this.#array = new BigInt64Array(buffer)
    this.#words = new Int32Array(buffer)
    this.#stride = nc.stride / 8
    this.#waitersWord = nc.waitersOffset / 4
    this.#names = Object.freeze(nc.names)
    this.#gauges = nc.gauges
    this.#names.forEach((name, i) => this.#slots.set(name, i * this.#stride))
  }

  /**
   * Opens the named region `name` (a file in /dev/shm, mode 0600). With `create: true` it is
   * created if missing. When `names` is given, an existing region must have exactly these
   * counters (same names, types and order), otherwise ERR_SHM.
   */
  static open(name, options) {
    checkRegionName(name)
    const { names, create = false } = checkObject(options, 'options')
    if (typeof create !== 'boolean') throw invalidArg(`options.create must be a boolean, got ${describe(create)}`)
    let parsed = null
    if (names !== undefined) parsed = parseNames(names, 'options.names')
    else if (create) throw invalidArg('options.names is required with create: true')
    const nc = native.NativeCounters.open(name, parsed?.names ?? null, parsed?.gauges ?? [], create)
    return new SharedCounters(kToken, nc)
  }

  /** Reopens the counters described by `handle` (from `counters.handle`), e.g. in a worker thread. */
  static fromHandle(handle) {
    try {
      return SharedCounters.#fromHandle(handle)
    } catch (err) {
      throw asArgError(err) // e.g. a getter of `handle` that throws
    }
  }

  static #fromHandle(handle) {
    if (typeof handle !== 'object' || handle === null || handle.type !== HANDLE_TYPE) {
      throw invalidArg(`handle must be the value of a SharedCounters' handle property, got ${describe(handle)}`)
    }
    if (typeof handle.name === 'string') return SharedCounters.open(handle.name)
    if (typeof handle.id !== 'number' || typeof handle.pid !== 'number') {
      throw invalidArg('handle must be the value of a SharedCounters handle property (malformed)')
    }
    if (handle.pid !== process.pid) {
      throw new CorepoolError(
        'ERR_SHM',
        'an anonymous region can only be reopened in the process that created it ' +
          '(use SharedCounters.open(name) to share counters between processes)',
      )
    }
    return new SharedCounters(kToken, native.NativeCounters.fromAnonymousId(handle.id))
  }

  /** Removes the named region from /dev/shm; true if it existed. Open instances keep working. */
  static unlink(name) {
    checkRegionName(name)
    return native.NativeCounters.unlink(name)
  }

  /** A structured-clonable value; pass it to a worker and call `SharedCounters.fromHandle`. */
  get handle() {
    const name = this.#native.regionName
    return name == null
      ? { type: HANDLE_TYPE, id: this.#native.anonymousId, pid: process.pid }
      : { type: HANDLE_TYPE, name }
  }

  /** The region's name, or null for an anonymous region. */
  get name() {
    return this.#native.regionName ?? null
  }

  /** Counter names, in slot order. */
  get names() {
    return this.#names
  }

  /** The fast path: `Atomics.add(counters.array, counters.index(name), 1n)`. */
  get array() {
    return this.#array
  }

  /** The element of `array` holding counter `name`. */
  index(name) {
    return this.#element(name)
  }

  #element(name) {
    const e = this.#slots.get(name)
    if (e === undefined) throw this.#unknown(name)
    return e
  }

  #unknown(name) {
    if (typeof name !== 'string') return invalidArg(`counter name must be a string, got ${describe(name)}`)
    return invalidArg(`unknown counter ${JSON.stringify(name)} (known: ${this.#names.join(', ')})`)
  }

  /** Wakes native waiters of the slot at element `e`, if there are any. */
  #notify(e) {
    if (this.#words[e * 2 + this.#waitersWord] !== 0) this.#native.wake(e / this.#stride)
  }

  /** Adds one. */
  inc(name) {
    const e = this.#slots.get(name)
    if (e === undefined) throw this.#unknown(name)
    Atomics.add(this.#array, e, 1n)
    // A plain read (cheaper than Atomics.load here): after the locked add it sees a waiter that
    // registered before it. Where the CPU could reorder it, a missed wake-up only delays the
    // waiter until its next poll (see POLL_INTERVAL in src/counters/region.rs).
    if (this.#words[e * 2 + this.#waitersWord] !== 0) this.#native.wake(e / this.#stride)
  }

  /** Adds `n` (a safe integer or a BigInt; negative for gauges). Wraps at 64 bits. */
  add(name, n) {
    const e = this.#element(name)
    const v = typeof n === 'bigint' && n >= INT64_MIN && n <= INT64_MAX ? n : toInt64(n, 'n')
    Atomics.add(this.#array, e, v)
    this.#notify(e)
  }

  /** The value as a Number (exact up to ±2^53 − 1; use getBigInt beyond). */
  get(name) {
    return Number(Atomics.load(this.#array, this.#element(name)))
  }

  /** The value as a BigInt (always exact). */
  getBigInt(name) {
    return Atomics.load(this.#array, this.#element(name))
  }

  /** Stores `value` (a safe integer or a BigInt). */
  set(name, value) {
    const e = this.#element(name)
    Atomics.store(this.#array, e, toInt64(value, 'value'))
    this.#notify(e)
  }

  /**
   * Stores `value` if the counter equals `expected`. Returns the previous value, as a BigInt if
   * `expected` is a BigInt, otherwise as a Number; the exchange happened iff it equals `expected`.
   */
  compareExchange(name, expected, value) {
    const e = this.#element(name)
    const exp = toInt64(expected, 'expected')
    const old = Atomics.compareExchange(this.#array, e, exp, toInt64(value, 'value'))
    if (old === exp) this.#notify(e)
    return typeof expected === 'bigint' ? old : Number(old)
  }

  /** Every counter's value: `{ name: number }`, or BigInts with `{ bigint: true }`. */
  snapshot(options) {
    const { bigint = false } = checkObject(options, 'options')
    const out = {}
    for (const [name, e] of this.#slots) {
      const v = Atomics.load(this.#array, e)
      Object.defineProperty(out, name, { value: bigint ? v : Number(v), enumerable: true, writable: true })
    }
    return out
  }

  /** Sets every counter (or only `name`) to 0. */
  reset(name) {
    const elements = name === undefined ? this.#slots.values() : [this.#element(name)]
    for (const e of elements) {
      Atomics.store(this.#array, e, 0n)
      this.#notify(e)
    }
  }

  /**
   * Resolves once the counter is >= `target` (a safe integer or BigInt; resolves with the value,
   * of the same type), or once `predicate(value)` returns true (value as a Number). Waits on a
   * native thread; rejects ERR_TASK_TIMEOUT after `timeout` ms, ERR_ABORTED when `signal` aborts.
   */
  waitFor(name, target, options) {
    let e, predicate, bigTarget, opts
    try {
      e = this.#element(name)
      if (typeof target === 'function') predicate = target
      else bigTarget = toInt64(target, 'target')
      opts = waitOptions(options)
    } catch (err) {
      return Promise.reject(asArgError(err))
    }
    const { timeout, signal } = opts
    if (signal?.aborted) return Promise.reject(abortError(signal.reason))
    const nc = this.#native
    const array = this.#array
    const slot = e / this.#stride
    const deadline = timeout > 0 ? performance.now() + timeout : 0
    const asResult = (v) => (typeof target === 'bigint' ? v : Number(v))
    return new Promise((resolve, reject) => {
      let done = false
      let key = 0
      const finish = (settle, value) => {
        if (done) return
        done = true
        signal?.removeEventListener('abort', onAbort)
        settle(value)
      }
      const onAbort = () => {
        if (key !== 0) nc.cancelWait(key)
        finish(reject, abortError(signal.reason))
      }
      const timedOut = () =>
        new CorepoolError('ERR_TASK_TIMEOUT', `waitFor(${JSON.stringify(name)}) timed out after ${timeout} ms`)
      const step = () => {
        if (done) return
        const current = Atomics.load(array, e)
        if (predicate) {
          let ok
          try {
            ok = predicate(Number(current))
          } catch (err) {
            return finish(reject, err)
          }
          if (ok) return finish(resolve, Number(current))
        } else if (current >= bigTarget) {
          return finish(resolve, asResult(current))
        }
        let remaining = 0
        if (deadline !== 0) {
          remaining = deadline - performance.now()
          if (remaining <= 0) return finish(reject, timedOut())
        }
        key = nextWaitKey
        nextWaitKey = nextWaitKey >= 0x7fffffff ? 1 : nextWaitKey + 1
        let pending
        try {
          pending = predicate ? nc.wait(slot, 1, current, remaining, key) : nc.wait(slot, 0, bigTarget, remaining, key)
        } catch (err) {
          return finish(reject, err)
        }
        pending.then(
          (value) => {
            key = 0
            if (done) return
            if (value === null) return finish(reject, timedOut())
            if (predicate) step()
            else finish(resolve, asResult(value))
          },
          (err) => finish(reject, err),
        )
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      step()
    })
  }

  /**
   * The counters in the Prometheus text exposition format (version 0.0.4). Without options,
   * metric names are the counter names as they are.
   * @param {{ prefix?: string, help?: string | Record<string, string>, labels?: Record<string, string | number> }} [options]
   */
  toPrometheus(options) {
    const { prefix, helpFor, labelPairs } = exportOptions(options, this.#names)
    const labelText = labelPairs.length
      ? `{${labelPairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')}}`
      : ''
    let out = ''
    this.#names.forEach((name, i) => {
      const metric = prefix + name
      const type = this.#gauges[i] ? 'gauge' : 'counter'
      // A HELP line for every metric keeps linters (promtool check metrics) quiet.
      out += `# HELP ${metric} ${escapeHelp(helpFor(name) ?? defaultHelp(type, name))}\n`
      out += `# TYPE ${metric} ${type}\n`
      out += `${metric}${labelText} ${Atomics.load(this.#array, this.#slots.get(name))}\n`
    })
    return out
  }

  /**
   * Registers every counter with a prom-client `Registry` (e.g. `require('prom-client').register`)
   * as a collector that reads the shared value at scrape time. Returns the metric names. Every
   * process sees the same totals, so with prom-client's cluster aggregation the metrics use the
   * `first` aggregator (not `sum`).
   */
  registerWithPromClient(register, options) {
    if (typeof register !== 'object' || register === null || typeof register.registerMetric !== 'function') {
      throw invalidArg(`register must be a prom-client Registry, got ${describe(register)}`)
    }
    const { prefix, helpFor, labelPairs } = exportOptions(options, this.#names)
    const array = this.#array
    const registered = []
    this.#names.forEach((name, i) => {
      const e = this.#slots.get(name)
      const metricName = prefix + name
      const type = this.#gauges[i] ? 'gauge' : 'counter'
      const help = helpFor(name) ?? defaultHelp(type, name)
      const metric = {
        name: metricName,
        help,
        type,
        aggregator: 'first',
        get: async () => ({
          name: metric.name,
          help,
          type,
          aggregator: 'first',
          values: [{ value: Number(Atomics.load(array, e)), labels: Object.fromEntries(labelPairs) }],
        }),
        // The registry's resetMetrics() must not zero counters other processes rely on.
        reset() {},
      }
      register.registerMetric(metric)
      registered.push(metricName)
    })
    return registered
  }

  /** For `corepool/testing` only. */
  get [kNative]() {
    return this.#native
  }
}

// Options objects are the caller's: a getter that throws while they are read is a bad argument.
guardMethods(SharedCounters, ['open', 'unlink'])
guardMethods(SharedCounters.prototype, ['snapshot', 'toPrometheus', 'registerWithPromClient'])

/** Test hook: Rust threads add 1 to `name` `iterations` times each, through the Rust-side API. */
function hammerCounter(counters, name, { threads = 4, iterations = 1e6 } = {}) {
  try {
    if (!(counters instanceof SharedCounters)) throw invalidArg('counters must be a SharedCounters')
    const e = counters.index(name)
    const nc = counters[kNative]
    return native.countersTestHammer(nc, e / (nc.stride / 8), threads, iterations)
  } catch (err) {
    return Promise.reject(err)
  }
}

module.exports = { SharedCounters }
// Not enumerable, so `...require('./lib/counters')` in index.js does not export it.
Object.defineProperty(module.exports, 'hammerCounter', { value: hammerCounter, enumerable: false })
// For the pool, which mirrors its stats into a region: the native object behind an instance.
Object.defineProperty(module.exports, 'nativeCounters', { value: (c) => c[kNative], enumerable: false })
