import { EventEmitter } from 'node:events'

/**
 * A duration in milliseconds, with one rule for the whole API: any number `>= 0` (fractions
 * allowed) or `Infinity`; each value works as written (no upper limit, no overflow). Options named
 * `timeout` are time limits: `0` and `Infinity` both mean none (as `timeout: 0` in
 * `node:child_process`). Other durations are delays: `0` means at once, `Infinity` never.
 */
export type Milliseconds = number

/** Options every task accepts (native kernels and `pool.run`). */
export interface TaskOptions {
  /** Cancels the task: a queued task is removed at once, a running one stops at its next check. Rejects `ERR_ABORTED` (`name === 'AbortError'`, `cause` = the signal's reason). */
  signal?: AbortSignal
  /** Milliseconds from submission after which the task rejects `ERR_TASK_TIMEOUT` (queued or running); `0` or `Infinity`: none (see {@link Milliseconds}). */
  timeout?: Milliseconds
  /** Higher runs first; FIFO among equal priorities. Default 0. */
  priority?: number
  /** The pool to run on. Default: `defaultPool`. */
  pool?: Pool
}

/** Options of `pool.run()`. */
export interface RunOptions extends Omit<TaskOptions, 'pool'> {
  /** Named export of the task module to call instead of the default export. */
  name?: string
  /** Absolute path or `file:` URL of the task module for this task, instead of the pool's. */
  filename?: string | URL
  /**
   * Called on this thread with each value the task passes to `ctx.progress(value)`
   * (structured-cloned), in order; every value is delivered before the returned promise
   * settles. If it throws, the promise rejects with that error once the task has finished.
   */
  progress?: (value: any) => void
  /**
   * Values handed over to the task, as with `postMessage`: they are detached in the caller.
   * ArrayBuffers only: the worker copies their memory once, when the task starts, into buffers
   * of its own (typed-array views or Buffers over them in `data` arrive as views over those), and
   * the caller's memory is freed at once; the worker owns them afterwards. With a `MessagePort` (or any
   * other transferable), and whenever `data` holds a `SharedArrayBuffer`, the data is handed over
   * by `postMessage` (shared memory stays shared) through this thread's event loop. A detached
   * buffer, or data `postMessage` refuses, rejects `ERR_INVALID_ARG`.
   */
  transferList?: readonly (ArrayBuffer | import('node:worker_threads').TransferListItem)[]
}

/** The second argument of a task function. */
export interface TaskContext {
  /**
   * Aborted when the task's `signal` fires or its `timeout` elapses. A task aborted before its
   * function is called (while its module loads, say) is not called at all.
   */
  readonly signal: AbortSignal
  /** Sends `value` (structured-cloned) to `run()`'s `progress` callback; present only when `run()` got one. */
  progress?: (value: unknown) => void
}

/** Options of `pool.close()`. */
export interface CloseOptions {
  /** Reject queued tasks with `ERR_POOL_CLOSED` instead of running them; running ones finish. */
  force?: boolean
}

/** Options of `new Pool()`. */
export interface PoolOptions {
  /** Number of threads (concurrently running tasks). Default `os.availableParallelism()`. */
  threads?: number
  /** Tasks allowed to wait beyond the running ones; past it submissions reject `ERR_QUEUE_FULL`. Default `Infinity`. */
  maxQueue?: number
  /** Added to the nice value of each pool thread (Linux), so pool work yields the CPU to the event loop. 0–19, default 0. */
  niceIncrement?: number
  /**
   * A shared counters region the pool adds its settle counts to, so every process of an app sees
   * the totals: whichever of `corepool_tasks_completed_total`, `corepool_tasks_failed_total` and
   * `corepool_tasks_cancelled_total` the region has (at least one).
   */
  counters?: import('./counters').SharedCounters
  /** Absolute path or `file:` URL of a task module (CJS or ESM) for `pool.run()`. */
  filename?: string | URL
  /** Workers kept alive when idle (JS tasks). Default 1. */
  minThreads?: number
  /** Milliseconds an idle worker above `minThreads` lives before exiting. Default 10 000. */
  idleTimeout?: Milliseconds
  /** Milliseconds a cancelled JS task may keep running before its worker is terminated and replaced. Default 1000. */
  abortGrace?: Milliseconds
  /** `resourceLimits` of each worker (see `worker_threads.Worker`). */
  resourceLimits?: import('node:worker_threads').ResourceLimits
  /** Environment of each worker: an object, or `worker_threads.SHARE_ENV`. */
  env?: Record<string, string> | symbol
  /** `execArgv` of each worker. */
  execArgv?: string[]
  /** A structured-clonable value that task modules read as `require('corepool').workerData`. */
  workerData?: unknown
  /** Milliseconds `close()` waits for tasks before destroying the pool instead (`0`: at once). Default `Infinity`. */
  closeTimeout?: Milliseconds
}

/** Percentiles of a duration histogram, in milliseconds. */
export interface TimeSummary {
  count: number
  min: number
  max: number
  mean: number
  p50: number
  p90: number
  p99: number
}

/**
 * A cumulative histogram of task run times with fixed buckets, the shape of
 * `SharedCounters#histogram`: the counts only grow, so the difference of two snapshots is the
 * histogram of the tasks that finished in between (a recent window).
 */
export interface RunTimeHistogram {
  /** Upper bounds in ms (fixed: 0.01 ms to 60 s, then `Infinity`) with the tasks that ran at most that long. */
  buckets: { le: number; count: number }[]
  /** Run time of those tasks, summed, in ms. */
  sum: number
  /** Tasks counted (the last bucket's count). */
  count: number
}

/** A snapshot of a pool's counters. */
export interface PoolStats {
  threads: number
  /** Tasks waiting for a thread. */
  queued: number
  /**
   * Tasks running, one thread each (a cancelled task holds its thread until its job returns).
   * Idle threads helping a running task (a `hashMany` batch) are not counted here; their time is
   * in `busyTime`.
   */
  running: number
  /** Tasks resolved. */
  completed: number
  /** Tasks that failed on their own (error, panic, crashed worker). */
  failed: number
  /** aborted + timedOut + tasks rejected by `destroy()`. */
  cancelled: number
  aborted: number
  timedOut: number
  /** Time from submission to start. */
  waitTime: TimeSummary
  /** Time from start to end. */
  runTime: TimeSummary
  /**
   * Run time only (from start to end, not the wait in the queue) of every task that ran, in
   * fixed buckets; diff two snapshots for the quantiles of a recent window.
   */
  runTimeHistogram: RunTimeHistogram
  /**
   * Thread time spent running tasks since the pool started, in ms, summed over the threads and
   * including the tasks running now (a thread's help with another task's parts counts once that
   * help ends); it never decreases. Utilization over a window:
   * `(b.busyTime - a.busyTime) / (elapsed ms × threads)`.
   */
  busyTime: number
  /** Busy thread time over available thread time since the pool started (0–1). */
  utilization: number
}

/**
 * A pool of threads owned by corepool (never libuv's threadpool) running native kernels and,
 * with `filename`, the user's own JS module on worker_threads — one queue, one thread budget.
 * Threads start on the first task; an idle pool never keeps the process alive.
 */
export class Pool extends EventEmitter {
  /** @throws {CorepoolError} `ERR_INVALID_ARG` for a bad option. */
  constructor(options?: PoolOptions)
  /** Runs the task module's default export (or `options.name`) with a structured clone of `data`; resolves with its awaited result. The task receives `(data, ctx: TaskContext)`. */
  run<T = unknown>(data?: unknown, options?: RunOptions): Promise<T>
  /** Stop accepting tasks, finish queued (unless `force`) and running ones, then stop the threads and workers; after `closeTimeout` the pool is destroyed instead. */
  close(options?: CloseOptions): Promise<void>
  /** Stop accepting tasks, reject queued and running ones with `ERR_POOL_CLOSED`, then stop. */
  destroy(): Promise<void>
  readonly threads: number
  readonly maxQueue: number
  /** True once `close()` or `destroy()` was called. */
  readonly closed: boolean
  readonly stats: PoolStats
  /** True while queued plus running tasks fill `threads + maxQueue` (back-pressure). */
  readonly needsDrain: boolean
  /** The queue became empty after tasks had waited in it. */
  on(event: 'drain', listener: () => void): this
  /** Queued plus running tasks reached `threads + maxQueue`. */
  on(event: 'needsDrain', listener: () => void): this
  /** A value a worker posted on `parentPort`. */
  on(event: 'message', listener: (value: unknown) => void): this
  /** A worker failed outside any task (emitted only when listened to). */
  on(event: 'error', listener: (err: Error) => void): this
  /** The pool stopped (after `close()` or `destroy()`). */
  on(event: 'close', listener: () => void): this
  /** A worker was started / has exited. */
  on(event: 'workerCreate' | 'workerDestroy', listener: (worker: { threadId: number; slot: number }) => void): this
  on(event: string | symbol, listener: (...args: any[]) => void): this
}

/**
 * In a task module: marks the returned value (an ArrayBuffer, or a typed array / Buffer over one)
 * to reach the caller without being serialized or copied: its ArrayBuffer is transferred, as
 * `postMessage` transfers it (detached in the worker afterwards), and the caller gets the same
 * kind of value over that memory. A buffer that cannot be transferred (a small `Buffer` over
 * Node's shared pool) is serialized instead. Only the returned value itself, not one nested in
 * it. Elsewhere it returns `value` unchanged.
 */
export declare function move<T>(value: T): T
/** In a pool's task module: `true`; elsewhere `false`. */
export declare const isWorkerThread: boolean
/** In a pool's task module: the pool's `workerData` option; elsewhere `undefined`. */
export declare const workerData: unknown

/** The pool used when a task gets no `pool` option: `os.availableParallelism()` threads, started on first use. */
export declare const defaultPool: Pool

/** Sum of `Math.sqrt(i)` for `0 <= i < n` (a non-negative safe integer), on the pool; cancellable while running. */
export function sqrtSum(n: number, options?: TaskOptions): Promise<number>

/**
 * Opens a listening TCP socket on `host:port` (default host `0.0.0.0`) with SO_REUSEPORT and
 * returns its file descriptor for `server.listen({ fd })`. Several processes doing the same share
 * the port, the kernel balancing connections between them (Linux). Throws `ERR_INVALID_ARG` for a bad port or host, `ERR_SYSTEM` when
 * the socket cannot be opened (`errno`, `syscall`: e.g. `EADDRINUSE` from `bind` when a server without SO_REUSEPORT
 * holds the port).
 */
export function listenReusePort(port: number, host?: string): number
