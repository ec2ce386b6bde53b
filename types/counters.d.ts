/// Shared-memory atomic counters, gauges and histograms (see docs/counters.md).

/** A counter name and its type. A plain string is a `'counter'`. */
export interface CounterSpec {
  /**
   * A Prometheus metric name, `[a-zA-Z_:][a-zA-Z0-9_:]*`, optionally followed by constant
   * labels in Prometheus syntax (`'http_requests_total{route="/health"}'`); at most 255
   * characters. Names that differ only in their labels form one metric family (one type).
   */
  name: string
  /**
   * `'counter'` (default; exported as a Prometheus counter), `'gauge'` (goes up and down) or
   * `'histogram'` (fixed buckets; `observe(name, value)`).
   */
  type?: 'counter' | 'gauge' | 'histogram'
  /**
   * Histograms only: the upper bounds, 1 to 64 finite increasing numbers (`+Inf` is implied).
   * Default: prom-client's `[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]`.
   */
  buckets?: ReadonlyArray<number>
  /**
   * Gauges only: one value per process instead of one for all (queue length, event-loop
   * delay). Each process sets its own; the export has one sample per live process, labelled
   * `worker="<COREPOOL_WORKER_ID>"` (set by `cluster`) or else `pid="<pid>"`.
   */
  perProcess?: boolean
}

/** Options of `new SharedCounters(options)`. */
export interface SharedCountersOptions {
  /** The counters, in slot order: 1 to 4096 distinct names. */
  names: ReadonlyArray<string | CounterSpec>
  /**
   * Entries of the process table used by per-process gauges: how many processes may hold
   * values at once (1 to 4096, default 64). Ignored without per-process gauges.
   */
  processes?: number
}

/** One bucket of `histogram(name)`: how many observations were `<= le` (cumulative). */
export interface HistogramBucket {
  le: number
  count: number
}

/** A histogram's state, as `histogram(name)` returns it. */
export interface HistogramSnapshot {
  /** Cumulative counts, one per upper bound, `le: Infinity` last. */
  buckets: HistogramBucket[]
  sum: number
  count: number
}

/** One live process's value of a per-process gauge. */
export interface ProcessGaugeValue {
  pid: number
  /** That process's `COREPOOL_WORKER_ID` (a `cluster` worker's id), or `null`. */
  worker: number | null
  value: number
}

/** Options of `SharedCounters.open(name, options)`. */
export interface OpenCountersOptions {
  /**
   * The counters. Required with `create: true`. When given, an existing region must have
   * exactly these counters (same names, types and order), otherwise `ERR_SHM`.
   */
  names?: ReadonlyArray<string | CounterSpec>
  /** Create the region if it does not exist (default false). */
  create?: boolean
  /** Process-table entries of a region this call creates (see `SharedCountersOptions`). */
  processes?: number
}

/**
 * A structured-clonable description of a region: pass it to a worker thread (`workerData`,
 * `postMessage`) and reopen it there with `SharedCounters.fromHandle(handle)`.
 */
export type SharedCountersHandle =
  | { readonly type: 'corepool.SharedCounters'; readonly name: string }
  | { readonly type: 'corepool.SharedCounters'; readonly id: number; readonly pid: number }

/** Options of `waitFor`. */
export interface WaitForOptions {
  /** Reject with `ERR_TASK_TIMEOUT` after this many milliseconds; `0` or `Infinity` (the default): wait forever. */
  timeout?: import('./pool').Milliseconds
  /** Reject with `ERR_ABORTED` (an `AbortError`) when this signal aborts. */
  signal?: AbortSignal
}

/** Options of `toPrometheus` and `registerWithPromClient`. */
export interface PrometheusOptions {
  /** Prepended to every counter name (default none: names are used as they are). */
  prefix?: string
  /** `# HELP` text: one string for all counters, or per counter name. */
  help?: string | Readonly<Record<string, string>>
  /** Labels added to every sample, e.g. `{ instance: 'web-1' }`. */
  labels?: Readonly<Record<string, string | number | bigint>>
}

/** The part of a prom-client `Registry` that `registerWithPromClient` uses. */
export interface PromClientRegistryLike {
  registerMetric(metric: unknown): void
}

/**
 * 64-bit atomic counters in shared memory, exact across the main thread, worker threads, Rust
 * pool threads and (for named regions) other processes of the same user.
 *
 * Values are signed 64-bit integers that wrap on overflow. Methods accept a safe integer
 * (`Number.isSafeInteger`) or a BigInt; `get` returns a Number (exact up to ±2^53 − 1),
 * `getBigInt` a BigInt. Synchronous methods throw `ERR_INVALID_ARG` for an unknown counter or a
 * bad value; regions that cannot be created, opened or validated throw `ERR_SHM`.
 */
export declare class SharedCounters {
  /** A new anonymous region for this process and its worker threads; every counter starts at 0. */
  constructor(options: SharedCountersOptions)

  /**
   * Opens the named region `name` (a file in /dev/shm with mode 0600, name matching
   * `[A-Za-z0-9][A-Za-z0-9._-]*`, at most 200 characters), creating it when `create` is true.
   * A missing, foreign, corrupt, truncated or other-version region throws `ERR_SHM`.
   */
  static open(name: string, options?: OpenCountersOptions): SharedCounters

  /** Reopens the region described by `handle` (from `counters.handle`), e.g. in a worker. */
  static fromHandle(handle: SharedCountersHandle): SharedCounters

  /** Removes a named region from /dev/shm; `true` if it existed. Open instances keep working. */
  static unlink(name: string): boolean

  /** A structured-clonable value to reopen these counters elsewhere with `fromHandle`. */
  readonly handle: SharedCountersHandle
  /** The region's name, or `null` for an anonymous region. */
  readonly name: string | null
  /** The counter names, in slot order. */
  readonly names: ReadonlyArray<string>
  /**
   * The fast path: a `BigInt64Array` over the slots, for `Atomics.*` in hot loops, e.g.
   * `Atomics.add(counters.array, counters.index('hits'), 1n)`. Slots are cache-line padded, so
   * elements between two counters' indexes are padding. Writes made here wake `waitFor` callers
   * within a short poll interval (writes through the methods wake them at once).
   */
  readonly array: BigInt64Array

  /** The element of `array` that holds counter `name`. */
  index(name: string): number
  /** Adds one. For a per-process gauge, to this process's value (as add, get, set do). */
  inc(name: string): void
  /** Adds `n` (negative to decrement a gauge). */
  add(name: string, n: number | bigint): void
  /** The value as a Number (exact up to ±2^53 − 1). A per-process gauge's may have a fraction. */
  get(name: string): number
  /** The value as a BigInt (always exact). Not for per-process gauges (`ERR_INVALID_ARG`). */
  getBigInt(name: string): bigint
  /**
   * Stores `value`: a safe integer or a BigInt; for a per-process gauge, any finite Number
   * (`set('utilization', 0.73)`), whose export shows it as it is.
   */
  set(name: string, value: number | bigint): void
  /**
   * Stores `value` if the counter equals `expected`; returns the previous value (the exchange
   * happened iff it equals `expected`), as a BigInt when `expected` is a BigInt.
   */
  compareExchange(name: string, expected: number, value: number | bigint): number
  compareExchange(name: string, expected: bigint, value: number | bigint): bigint
  /**
   * Records `value` in histogram `name`: one bucket (the first upper bound `>= value`, else
   * `+Inf`) and the sum, exact across threads and processes with no IPC. NaN is ignored.
   * Throws `ERR_INVALID_ARG` for a name that is not a histogram or a value that is not a number.
   */
  observe(name: string, value: number): void
  /** Histogram `name` now (cumulative buckets, sum, count). */
  histogram(name: string): HistogramSnapshot
  /** Per-process gauge `name` in every live process of the region. */
  perProcess(name: string): ProcessGaugeValue[]
  /** Every counter's and gauge's current value, by name (not histograms or per-process gauges). */
  snapshot(): Record<string, number>
  snapshot(options: { bigint: true }): Record<string, bigint>
  snapshot(options?: { bigint?: boolean }): Record<string, number | bigint>
  /** Sets every counter, gauge and histogram (or only `name`) to 0; per-process gauges: this process's value. */
  reset(name?: string): void

  /**
   * Resolves once the counter is ≥ `target`, with its value (a BigInt when `target` is one).
   * Waits natively (futex) on a thread of its own, off the event loop; a pending call keeps
   * Node alive. Rejects `ERR_TASK_TIMEOUT` after `timeout`, `ERR_ABORTED` when `signal` aborts,
   * `ERR_INVALID_ARG` for bad arguments (never throws synchronously).
   */
  waitFor(name: string, target: number, options?: WaitForOptions): Promise<number>
  waitFor(name: string, target: bigint, options?: WaitForOptions): Promise<bigint>
  /**
   * Resolves once `predicate(value)` returns true, with that value. The predicate runs on the
   * JS thread now and after every change the waiter observes.
   */
  waitFor(name: string, predicate: (value: number) => boolean, options?: WaitForOptions): Promise<number>

  /**
   * The counters in the Prometheus text exposition format 0.0.4 (one `# HELP` and one
   * `# TYPE` line per metric family). With no options, metric names are the counter names.
   * Histograms give cumulative `_bucket{le}` series, `_sum` and `_count`; per-process gauges
   * one sample per live process. Every process of a named region exports the same text.
   */
  toPrometheus(options?: PrometheusOptions): string

  /**
   * Registers every counter with a prom-client `Registry` as a metric read from shared memory
   * at scrape time; returns the metric names. Uses prom-client's `first` aggregator, since
   * every process of a cluster sees the same totals. `register.resetMetrics()` does not reset
   * shared counters.
   */
  registerWithPromClient(register: PromClientRegistryLike, options?: PrometheusOptions): string[]
}
