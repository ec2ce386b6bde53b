// @ts-check
'use strict'
// SharedCounters: 64-bit atomic counters, gauges and histograms in shared memory (an anonymous
// region for this process and its worker threads, or a named region in /dev/shm shared by
// processes of the same user).
//
// The hot operations run here, in JS, as `Atomics.*` on a BigInt64Array over the region: a
// call into native code would cost more than the atomic add itself. Native code creates, opens
// and validates regions, and waits (futex) on its own threads for `waitFor`.
const { isMainThread } = require('node:worker_threads')
const native = require('./native')
const { CorepoolError, invalidArg, abortError, describe, asArgError, guardMethods } = require('./errors')
const check = require('./validate')

const kToken = Symbol('corepool.SharedCounters.internal')
const kNative = Symbol('corepool.SharedCounters.native')
const HANDLE_TYPE = 'corepool.SharedCounters'
const INT64_MIN = -(2n ** 63n)
const INT64_MAX = 2n ** 63n - 1n
const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
let nextWaitKey = 1

// Slot kinds: the values of the native string enum (SlotKind in src/counters/binding.rs).
const { Counter: COUNTER, Gauge: GAUGE, Histogram: HISTOGRAM, ProcessGauge: PROCESS_GAUGE } = native.SlotKind
/** The Prometheus type of each kind. */
const TYPE_OF_KIND = { [COUNTER]: 'counter', [GAUGE]: 'gauge', [HISTOGRAM]: 'histogram', [PROCESS_GAUGE]: 'gauge' }
/** prom-client's default buckets (seconds), so a switch from it keeps the same series. */
const DEFAULT_BUCKETS = Object.freeze([0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
const DEFAULT_PROCESSES = 64
const MAX_PROCESSES = 4096

// A histogram's sum is an f64 kept as its bit pattern in a 64-bit slot, updated with
// compare-and-swap; these two views of one 8-byte buffer convert between the two.
const scratchFloat = new Float64Array(1)
const scratchBits = new BigInt64Array(scratchFloat.buffer)
const MAX_SAFE_BIG = BigInt(Number.MAX_SAFE_INTEGER)

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

/** A per-process gauge's value: a finite Number (integers are exact up to ±2^53 − 1). */
function toGaugeValue(value, what) {
  if (typeof value === 'number' && Number.isFinite(value)) return value
  if (typeof value === 'bigint' && value >= -MAX_SAFE_BIG && value <= MAX_SAFE_BIG) return Number(value)
  throw invalidArg(`${what} must be a finite number (or a BigInt within ±2^53 − 1), got ${describe(value)}`)
}

/** The f64 bit pattern of `v`, as the BigInt a 64-bit slot holds. */
function floatBits(v) {
  scratchFloat[0] = v
  return scratchBits[0]
}

/** The f64 whose bit pattern a 64-bit slot holds. */
function bitsFloat(bits) {
  scratchBits[0] = bits
  return scratchFloat[0]
}

const checkObject = check.object

/**
 * `names: (string | { name, type: 'counter' | 'gauge' | 'histogram', buckets?, perProcess? })[]`
 * → the slot definitions for native: `{ name, kind, buckets? }`.
 */
/**
 * @param {unknown} names
 * @param {string} what
 * @returns {import('../types/native').SlotDefinition[]}
 */
function parseNames(names, what) {
  if (!Array.isArray(names)) throw invalidArg(`${what} must be an array of counter names, got ${describe(names)}`)
  const slots = []
  for (const [i, entry] of names.entries()) {
    let name = entry
    let kind = COUNTER
    let bounds
    if (typeof entry === 'object' && entry !== null) {
      const type = check.oneOf(entry.type, `${what}[${i}].type`, ['counter', 'gauge', 'histogram'], {
        default: 'counter',
      })
      const perProcess = check.bool(entry.perProcess, `${what}[${i}].perProcess`, { default: false })
      name = entry.name
      if (perProcess && type !== 'gauge') throw invalidArg(`${what}[${i}].perProcess is only for gauges`)
      kind = type === 'histogram' ? HISTOGRAM : type === 'gauge' ? (perProcess ? PROCESS_GAUGE : GAUGE) : COUNTER
      if (type === 'histogram') bounds = parseBuckets(entry.buckets, `${what}[${i}].buckets`)
      else if (entry.buckets !== undefined) throw invalidArg(`${what}[${i}].buckets is only for histograms`)
    }
    if (typeof name !== 'string') {
      throw invalidArg(`${what}[${i}] must be a counter name or { name, type }, got ${describe(name)}`)
    }
    slots.push({ name, kind, buckets: bounds })
  }
  return slots
}

function parseBuckets(buckets, what) {
  if (buckets === undefined) return [...DEFAULT_BUCKETS]
  if (!Array.isArray(buckets) || buckets.length === 0 || buckets.length > 64) {
    throw invalidArg(`${what} must be an array of 1 to 64 upper bounds, got ${describe(buckets)}`)
  }
  for (const [i, b] of buckets.entries()) {
    if (typeof b !== 'number' || !Number.isFinite(b) || (i > 0 && !(b > buckets[i - 1]))) {
      throw invalidArg(`${what} must be finite, increasing numbers (+Inf is implied), got ${describe(b)} at ${i}`)
    }
  }
  return [...buckets]
}

function processesOption(processes) {
  return check.int(processes, 'options.processes', { min: 1, max: MAX_PROCESSES, default: DEFAULT_PROCESSES })
}

/** This process's worker id from COREPOOL_WORKER_ID (set by cluster), as a table tag (id + 1). */
function workerTag() {
  const text = process.env.COREPOOL_WORKER_ID ?? ''
  const id = Number(text)
  return /^[0-9]{1,9}$/.test(text) ? id + 1 : 0
}

/** `name{a="b"}` → ['name', 'a="b"'] (labels without braces; '' when none). */
function splitName(name) {
  const brace = name.indexOf('{')
  return brace < 0 ? [name, ''] : [name.slice(0, brace), name.slice(brace + 1, -1).replace(/,$/, '')]
}

function joinLabels(...parts) {
  const text = parts.filter((p) => p !== '').join(',')
  return text === '' ? '' : `{${text}}`
}

/** Prometheus text for a float (le values, sums): Go's spellings of the infinities. */
function formatFloat(v) {
  if (v === Infinity) return '+Inf'
  if (v === -Infinity) return '-Inf'
  return String(v)
}

function checkRegionName(name) {
  check.string(name, 'name', { required: true })
}

function waitOptions(options) {
  const { timeout, signal } = check.object(options)
  return { timeout: check.timeout(timeout, 'options.timeout'), signal: check.signal(signal) }
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
function exportOptions(options, names, slotLabels = new Set()) {
  const { prefix = '', help, labels } = checkObject(options, 'options')
  if (typeof prefix !== 'string' || (prefix !== '' && !METRIC_NAME.test(prefix))) {
    throw invalidArg(`options.prefix must be a string matching [a-zA-Z_:][a-zA-Z0-9_:]*, got ${describe(prefix)}`)
  }
  let helpFor
  if (help === undefined) helpFor = () => undefined
  else if (typeof help === 'string') helpFor = () => help
  else if (typeof help === 'object' && help !== null && !Array.isArray(help)) {
    for (const [k, v] of Object.entries(help)) {
      if (!names.includes(k)) throw invalidArg(`options.help names an unknown metric ${JSON.stringify(k)}`)
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
    if (slotLabels.has(k)) throw invalidArg(`options.labels.${k} is already a label of some counter's name`)
    labelPairs.push([k, String(v)])
  }
  return { prefix, helpFor, labelPairs }
}

/** Process-table entries this process claimed, per region (name or anonymous id), shared by all instances of the thread. */
const claimed = new Map()
let releaseOnExit = null

class SharedCounters {
  #native
  #array
  #words
  /** name → element index of the slot's value in #array (counters and gauges) */
  #slots = new Map()
  /** name → { sum: element of the sum, data: element of the first bucket, bounds } */
  #histograms = new Map()
  /** name → element of the first per-process value */
  #processGauges = new Map()
  /** This process's process-table entry, -1 until claimed */
  #entry = -1
  #names
  #kinds
  /** [{ base, type, members: [{ name, labels, kind, index }] }] in order of first appearance */
  #families = []
  #slotLabels = new Set()
  #stride
  #waitersWord

  /**
   * A new anonymous region for this process and its worker threads, every counter at 0.
   * @param {{ names: (string | { name: string, type?: 'counter' | 'gauge' | 'histogram', buckets?: number[], perProcess?: boolean })[], processes?: number } | symbol} options (a symbol: internal, see `fromHandle`)
   * @param {import('../types/native').NativeCounters} [nativeCounters] with `kToken`: the region to wrap
   */
  constructor(options, nativeCounters) {
    if (options === kToken) {
      this.#init(nativeCounters)
      return
    }
    if (typeof options !== 'object' || options === null) {
      throw invalidArg(`options must be an object with a names array, got ${describe(options)}`)
    }
    let parsed, processes
    try {
      parsed = parseNames(options.names, 'options.names')
      processes = processesOption(options.processes)
    } catch (err) {
      throw asArgError(err)
    }
    this.#init(native.NativeCounters.anonymous(parsed, processes))
  }

  #init(nc) {
    this.#native = nc
    const buffer = nc.buffer()
    this.#array = new BigInt64Array(buffer)
    this.#words = new Int32Array(buffer)
    this.#stride = nc.stride / 8
    this.#waitersWord = nc.waitersOffset / 4
    this.#names = Object.freeze(nc.names)
    this.#kinds = nc.kinds
    const buckets = nc.buckets
    const data = nc.dataOffsets
    const families = new Map()
    this.#names.forEach((name, i) => {
      const kind = this.#kinds[i]
      const e = i * this.#stride
      if (kind === HISTOGRAM) {
        this.#histograms.set(name, { sum: e, data: data[i] / 8, bounds: Float64Array.from(buckets[i]), last: 0n })
      } else if (kind === PROCESS_GAUGE) {
        this.#processGauges.set(name, data[i] / 8)
      } else {
        this.#slots.set(name, e)
      }
      const [base, labels] = splitName(name)
      for (const m of labels.matchAll(/(?:^|,)([a-zA-Z_][a-zA-Z0-9_]*)="/g)) this.#slotLabels.add(m[1])
      let family = families.get(base)
      if (family === undefined) {
        family = { base, type: TYPE_OF_KIND[kind], members: [] }
        families.set(base, family)
        this.#families.push(family)
      }
      family.members.push({ name, labels, kind, index: i })
    })
  }

  /**
   * Opens the named region `name` (a file in /dev/shm, mode 0600). With `create: true` it is
   * created if missing. When `names` is given, an existing region must have exactly these
   * counters (same names, types and order), otherwise ERR_SHM.
   */
  static open(name, options) {
    checkRegionName(name)
    const { names, processes } = checkObject(options, 'options')
    const create = check.bool(options?.create, 'options.create', { default: false })
    let parsed = null
    if (names !== undefined) parsed = parseNames(names, 'options.names')
    else if (create) throw invalidArg('options.names is required with create: true')
    const nc = native.NativeCounters.open(name, parsed, create, processesOption(processes))
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
    if (this.#histograms.has(name)) {
      return invalidArg(`${JSON.stringify(name)} is a histogram: use observe(name, value) and histogram(name)`)
    }
    if (this.#processGauges.has(name)) {
      return invalidArg(`${JSON.stringify(name)} is a per-process gauge: use set, add, inc, get or perProcess`)
    }
    return invalidArg(`unknown counter ${JSON.stringify(name)} (known: ${this.#names.join(', ')})`)
  }

  /** This process's process-table entry (claimed on first use, released at exit). */
  #processEntry() {
    if (this.#entry >= 0) return this.#entry
    const key = this.#native.regionName ?? `anonymous:${this.#native.anonymousId}`
    let entry = claimed.get(key)
    if (entry === undefined) {
      entry = this.#native.claimProcess(workerTag())
      claimed.set(key, entry)
      if (isMainThread) {
        const nc = this.#native
        if (releaseOnExit === null) {
          releaseOnExit = []
          process.once('exit', () => releaseOnExit.forEach((release) => release()))
        }
        releaseOnExit.push(() => nc.releaseProcess(entry))
      }
    }
    this.#entry = entry
    return entry
  }

  /** The element of this process's value of per-process gauge `name` (or throws). */
  #processElement(name) {
    const base = this.#processGauges.get(name)
    if (base === undefined) throw this.#unknown(name)
    return base + this.#processEntry()
  }

  /** Wakes native waiters of the slot at element `e`, if there are any. */
  #notify(e) {
    if (this.#words[e * 2 + this.#waitersWord] !== 0) this.#native.wake(e / this.#stride)
  }

  /** Adds `n` to this process's value of a per-process gauge (an f64: compare-and-swap). */
  #addFloat(name, n) {
    const array = this.#array
    const e = this.#processElement(name)
    let old = Atomics.load(array, e)
    for (;;) {
      const seen = Atomics.compareExchange(array, e, old, floatBits(bitsFloat(old) + n))
      if (seen === old) return
      old = seen
    }
  }

  /** Adds one. */
  inc(name) {
    const e = this.#slots.get(name)
    if (e === undefined) return this.#addFloat(name, 1)
    Atomics.add(this.#array, e, 1n)
    // A plain read (cheaper than Atomics.load here): after the locked add it sees a waiter that
    // registered before it. Where the CPU could reorder it, a missed wake-up only delays the
    // waiter until its next poll (see POLL_INTERVAL in src/counters/region.rs).
    if (this.#words[e * 2 + this.#waitersWord] !== 0) this.#native.wake(e / this.#stride)
  }

  /**
   * Adds `n` (a safe integer or a BigInt; negative for gauges). Wraps at 64 bits. A per-process
   * gauge holds a Number: `n` may have a fraction there.
   */
  add(name, n) {
    const e = this.#slots.get(name)
    if (e === undefined) {
      if (this.#processGauges.has(name)) return this.#addFloat(name, toGaugeValue(n, 'n'))
      throw this.#unknown(name)
    }
    const v = typeof n === 'bigint' && n >= INT64_MIN && n <= INT64_MAX ? n : toInt64(n, 'n')
    Atomics.add(this.#array, e, v)
    this.#notify(e)
  }

  /**
   * The value as a Number (exact up to ±2^53 − 1; use getBigInt beyond). For a per-process
   * gauge, this process's value.
   */
  get(name) {
    const e = this.#slots.get(name)
    if (e === undefined) return bitsFloat(Atomics.load(this.#array, this.#processElement(name)))
    return Number(Atomics.load(this.#array, e))
  }

  /** The value as a BigInt (always exact). Not for per-process gauges, which hold Numbers. */
  getBigInt(name) {
    const e = this.#slots.get(name)
    if (e === undefined) {
      if (this.#processGauges.has(name)) {
        throw invalidArg(`${JSON.stringify(name)} is a per-process gauge, which holds a Number: use get`)
      }
      throw this.#unknown(name)
    }
    return Atomics.load(this.#array, e)
  }

  /**
   * Stores `value` (a safe integer or a BigInt). For a per-process gauge, this process's value:
   * any finite Number (`set('utilization', 0.73)`).
   */
  set(name, value) {
    const e = this.#slots.get(name)
    if (e === undefined) {
      const bits = floatBits(toGaugeValue(value, 'value'))
      return void Atomics.store(this.#array, this.#processElement(name), bits)
    }
    Atomics.store(this.#array, e, toInt64(value, 'value'))
    this.#notify(e)
  }

  /**
   * Records `value` (a Number; NaN is ignored) in histogram `name`: one bucket (the first upper
   * bound >= value, else +Inf) and the sum. Exact across threads and processes.
   */
  observe(name, value) {
    const h = this.#histograms.get(name)
    if (h === undefined || typeof value !== 'number') throw this.#badObserve(name, value)
    if (value !== value) return
    const bounds = h.bounds
    const n = bounds.length
    let i = 0
    while (i < n && value > bounds[i]) i++
    const array = this.#array
    Atomics.add(array, h.data + i, 1n)
    // Compare-and-swap from the sum this instance last wrote: right whenever nobody else wrote
    // since, which saves a load; otherwise the CAS returns the current bits and we retry.
    let old = h.last
    for (;;) {
      scratchBits[0] = old
      scratchFloat[0] += value
      const next = scratchBits[0]
      const seen = Atomics.compareExchange(array, h.sum, old, next)
      if (seen === old) {
        h.last = next
        return
      }
      old = seen
    }
  }

  #badObserve(name, value) {
    if (!this.#histograms.has(name)) {
      if (this.#slots.has(name) || this.#processGauges.has(name)) {
        return invalidArg(`${JSON.stringify(name)} is not a histogram`)
      }
      return this.#unknown(name)
    }
    return invalidArg(`value must be a number, got ${describe(value)}`)
  }

  /**
   * Histogram `name` now: `{ buckets: [{ le, count }] (cumulative, +Inf last), sum, count }`.
   */
  histogram(name) {
    const h = this.#histograms.get(name)
    if (h === undefined) throw this.#badObserve(name, 0)
    return this.#readHistogram(h)
  }

  #readHistogram(h) {
    const array = this.#array
    const buckets = []
    let count = 0
    for (let i = 0; i <= h.bounds.length; i++) {
      count += Number(Atomics.load(array, h.data + i))
      buckets.push({ le: i < h.bounds.length ? h.bounds[i] : Infinity, count })
    }
    scratchBits[0] = Atomics.load(array, h.sum)
    return { buckets, sum: scratchFloat[0], count }
  }

  /**
   * Per-process gauge `name` in every live process of the region:
   * `[{ pid, worker, value }]` (`worker` is the COREPOOL_WORKER_ID of that process, or null).
   */
  perProcess(name) {
    const base = this.#processGauges.get(name)
    if (base === undefined) {
      if (typeof name === 'string' && (this.#slots.has(name) || this.#histograms.has(name))) {
        throw invalidArg(`${JSON.stringify(name)} is not a per-process gauge`)
      }
      throw this.#unknown(name)
    }
    const out = []
    const live = this.#native.liveProcesses()
    for (let i = 0; i < live.length; i += 3) {
      out.push({
        pid: live[i + 1],
        worker: live[i + 2] === 0 ? null : live[i + 2] - 1,
        value: bitsFloat(Atomics.load(this.#array, base + live[i])),
      })
    }
    return out
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

  /**
   * Every counter's and gauge's value: `{ name: number }`, or BigInts with `{ bigint: true }`.
   * Histograms and per-process gauges are not included (see `histogram` and `perProcess`).
   */
  snapshot(options) {
    const { bigint = false } = checkObject(options, 'options')
    const out = {}
    for (const [name, e] of this.#slots) {
      const v = Atomics.load(this.#array, e)
      Object.defineProperty(out, name, { value: bigint ? v : Number(v), enumerable: true, writable: true })
    }
    return out
  }

  /**
   * Sets every counter, gauge and histogram (or only `name`) to 0. Per-process gauges: this
   * process's value.
   */
  reset(name) {
    if (name === undefined) {
      for (const e of this.#slots.values()) {
        Atomics.store(this.#array, e, 0n)
        this.#notify(e)
      }
      for (const h of this.#histograms.values()) this.#resetHistogram(h)
      if (this.#entry >= 0)
        for (const base of this.#processGauges.values()) Atomics.store(this.#array, base + this.#entry, 0n)
      return
    }
    const h = this.#histograms.get(name)
    if (h !== undefined) return this.#resetHistogram(h)
    const e = this.#slots.get(name)
    if (e === undefined) return void Atomics.store(this.#array, this.#processElement(name), 0n)
    Atomics.store(this.#array, e, 0n)
    this.#notify(e)
  }

  #resetHistogram(h) {
    for (let i = 0; i <= h.bounds.length; i++) Atomics.store(this.#array, h.data + i, 0n)
    Atomics.store(this.#array, h.sum, 0n)
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
    const deadline = performance.now() + timeout // Infinity: none
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
        const remaining = deadline - performance.now()
        if (remaining <= 0) return finish(reject, timedOut())
        const limit = remaining === Infinity ? undefined : remaining
        key = nextWaitKey
        nextWaitKey = nextWaitKey >= 0x7fffffff ? 1 : nextWaitKey + 1
        let pending
        try {
          pending = predicate
            ? nc.wait(slot, 'notEqual', current, limit, key)
            : nc.wait(slot, 'atLeast', bigTarget, limit, key)
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
   * metric names are the counter names as they are. Slots whose names differ only in their
   * labels form one metric family. Histograms give `_bucket`/`_sum`/`_count` series; a
   * per-process gauge gives one sample per live process, labelled `worker` (or `pid`).
   * @param {{ prefix?: string, help?: string | Record<string, string>, labels?: Record<string, string | number> }} [options]
   */
  toPrometheus(options) {
    const { prefix, helpFor, labelPairs } = this.#exportOptions(options)
    const extra = labelPairs.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(',')
    const array = this.#array
    const live = this.#processGauges.size > 0 ? this.#liveLabels() : null
    let out = ''
    for (const family of this.#families) {
      const metric = prefix + family.base
      // A HELP line for every metric keeps linters (promtool check metrics) quiet.
      const help = helpFor(family.base) ?? helpFor(family.members[0].name) ?? defaultHelp(family.type, family.base)
      out += `# HELP ${metric} ${escapeHelp(help)}\n# TYPE ${metric} ${family.type}\n`
      for (const { name, labels, kind } of family.members) {
        if (kind === HISTOGRAM) {
          const h = this.#histograms.get(name)
          const own = labels === '' ? extra : extra === '' ? labels : `${labels},${extra}`
          const sep = own === '' ? '' : ','
          let count = 0n
          for (let i = 0; i <= h.bounds.length; i++) {
            count += Atomics.load(array, h.data + i)
            const le = i < h.bounds.length ? formatFloat(h.bounds[i]) : '+Inf'
            out += `${metric}_bucket{${own}${sep}le="${le}"} ${count}\n`
          }
          scratchBits[0] = Atomics.load(array, h.sum)
          const tail = own === '' ? '' : `{${own}}`
          out += `${metric}_sum${tail} ${formatFloat(scratchFloat[0])}\n${metric}_count${tail} ${count}\n`
        } else if (kind === PROCESS_GAUGE) {
          const base = this.#processGauges.get(name)
          for (let i = 0; i < live.length; i += 2) {
            const v = formatFloat(bitsFloat(Atomics.load(array, base + live[i])))
            out += `${metric}${joinLabels(labels, live[i + 1], extra)} ${v}\n`
          }
        } else {
          out += `${metric}${joinLabels(labels, extra)} ${Atomics.load(array, this.#slots.get(name))}\n`
        }
      }
    }
    return out
  }

  /** Live process-table entries as [entry, 'worker="id"' or 'pid="n"', ...]. */
  #liveLabels() {
    const live = this.#native.liveProcesses()
    const out = []
    for (let i = 0; i < live.length; i += 3) {
      out.push(live[i], live[i + 2] === 0 ? `pid="${live[i + 1]}"` : `worker="${live[i + 2] - 1}"`)
    }
    return out
  }

  #exportOptions(options) {
    return exportOptions(options, [...this.#names, ...this.#families.map((f) => f.base)], this.#slotLabels)
  }

  /**
   * Registers every metric family with a prom-client `Registry` (e.g. `require('prom-client').register`)
   * as a collector that reads shared memory at scrape time. Returns the metric names. Every
   * process sees the same totals, so with prom-client's cluster aggregation the metrics use the
   * `first` aggregator (not `sum`).
   */
  registerWithPromClient(register, options) {
    if (typeof register !== 'object' || register === null || typeof register.registerMetric !== 'function') {
      throw invalidArg(`register must be a prom-client Registry, got ${describe(register)}`)
    }
    const { prefix, helpFor, labelPairs } = this.#exportOptions(options)
    const array = this.#array
    const registered = []
    const labelObject = (text, more) => {
      const obj = Object.fromEntries(labelPairs)
      for (const m of text.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
        obj[m[1]] = m[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c))
      }
      return Object.assign(obj, more)
    }
    for (const family of this.#families) {
      const metricName = prefix + family.base
      const { type } = family
      const help = helpFor(family.base) ?? helpFor(family.members[0].name) ?? defaultHelp(type, family.base)
      const collect = () => {
        const values = []
        const live = this.#processGauges.size > 0 ? this.#native.liveProcesses() : []
        for (const { name, labels, kind } of family.members) {
          if (kind === HISTOGRAM) {
            const h = this.#readHistogram(this.#histograms.get(name))
            for (const { le, count } of h.buckets) {
              values.push({
                labels: labelObject(labels, { le: formatFloat(le) }),
                value: count,
                metricName: `${metricName}_bucket`,
              })
            }
            values.push({ labels: labelObject(labels), value: h.sum, metricName: `${metricName}_sum` })
            values.push({ labels: labelObject(labels), value: h.count, metricName: `${metricName}_count` })
          } else if (kind === PROCESS_GAUGE) {
            const base = this.#processGauges.get(name)
            for (let i = 0; i < live.length; i += 3) {
              const who = live[i + 2] === 0 ? { pid: String(live[i + 1]) } : { worker: String(live[i + 2] - 1) }
              values.push({ labels: labelObject(labels, who), value: bitsFloat(Atomics.load(array, base + live[i])) })
            }
          } else {
            values.push({ labels: labelObject(labels), value: Number(Atomics.load(array, this.#slots.get(name))) })
          }
        }
        return values
      }
      const metric = {
        name: metricName,
        help,
        type,
        aggregator: 'first',
        get: async () => ({ name: metricName, help, type, aggregator: 'first', values: collect() }),
        // The registry's resetMetrics() must not zero counters other processes rely on.
        reset() {},
      }
      register.registerMetric(metric)
      registered.push(metricName)
    }
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
