// corepool/bullmq: BullMQ workers whose jobs run as corepool tasks. Needs the optional peer
// dependencies `bullmq` (6.7+) and `ioredis`. Full reference: docs/bullmq.md.
import type { ConnectionOptions, Job, Queue, Worker, WorkerOptions } from 'bullmq'
import type { Pool, SharedCounters, PrometheusOptions } from 'corepool'

/** What a `task` function receives besides the job's data: pass it on to the kernel call. */
export interface TaskOptions {
  pool: Pool
  /** Aborted when the producer cancels the job, its lock is lost, or close() gives up draining. */
  signal: AbortSignal
  /** The job's timeout in ms (undefined: none). */
  timeout: number | undefined
}

/** A shared gauge a task (any thread of this process) or kernel sets to report progress. */
export interface ProgressCounter {
  /** For `SharedCounters.fromHandle` (structured-clonable: pass it in the task's data). */
  handle: SharedCounters['handle']
  /** The gauge's name in that region. */
  name: string
}

/** The second argument of a `run` function. */
export interface RunContext extends TaskOptions {
  /** The job's lock token. */
  token: string | undefined
  /** Forwards a progress value to `job.updateProgress` (throttled by `progress.interval`). */
  progress(value: number | object): void
  /** A gauge polled every `progress.interval` ms and forwarded when it changes; undefined without `progress`. */
  readonly progressCounter: ProgressCounter | undefined
}

export interface CreateWorkerOptions<Data = any, Result = any> {
  /**
   * A function `(data, { pool, signal, timeout })` calling a native kernel (e.g.
   * `(d, o) => resize(d.image, { width: 320, ...o })`), or the name of an export of the pool's JS
   * task module. Default: the module's default export (a pool with `filename`).
   */
  task?: string | ((data: Data, options: TaskOptions) => Promise<Result>)
  /** Full control over a job instead of `task`: `(job, ctx) => result`. */
  run?: (job: Job<Data, Result>, ctx: RunContext) => Promise<Result> | Result
  /** ioredis options or an ioredis instance (needs `maxRetriesPerRequest: null`). */
  connection?: ConnectionOptions
  /** Jobs run at once; default: the pool's threads. */
  concurrency?: number
  /** Per-job timeout in ms (Infinity: none), or a function of the job. Past it: ERR_TASK_TIMEOUT. */
  timeout?: number | ((job: Job<Data, Result>) => number)
  /** Whether a timed-out job is retried under its `attempts` (default true). */
  retryTimeouts?: boolean
  /** Forward progress to job.updateProgress, at most once per `interval` ms (default 100). */
  progress?: boolean | { interval?: number }
  /** Where the per-host job counters go (see `hostCounters`). */
  counters?: SharedCounters
  /** On close: how long running jobs may finish before they are aborted and moved back to wait (ms, default 30000). */
  drainTimeout?: number
  /** Signals that close every worker and then exit the process (default ['SIGTERM', 'SIGINT']; false: none). */
  signals?: string[] | false
  /** close() closes the pool too (default true). */
  closePool?: boolean
  /** Passed to BullMQ's Worker (lockDuration, stalledInterval, limiter, …). */
  worker?: Partial<WorkerOptions>
}

export interface CorepoolWorker<Data = any, Result = any> {
  /** The BullMQ worker: its events and methods are all there. */
  worker: Worker<Data, Result>
  counters: SharedCounters | undefined
  /** Resolves once the cancel subscription is up and the worker takes jobs. */
  ready: Promise<void>
  /** The counters (the pool's and the jobs') as Prometheus text; '' without `counters`. */
  metrics(options?: PrometheusOptions): string
  /** Stop taking jobs, drain up to drainTimeout, abort the rest (back to wait), close worker and pool. */
  close(): Promise<void>
}

/** A BullMQ Worker whose jobs run as tasks on `pool`. Throws ERR_INVALID_ARG on bad arguments. */
export function createWorker<Data = any, Result = any>(
  queueName: string,
  pool: Pool,
  options: CreateWorkerOptions<Data, Result>,
): CorepoolWorker<Data, Result>

/**
 * Cancels a job from the producer: a running job's task is aborted and the job fails without
 * retry; a job not started yet (waiting, delayed, or waiting for a retry) fails, unrun, when a
 * worker takes it.
 */
export function cancelJob(
  queue: Queue,
  jobId: string | number,
  reason?: string,
): Promise<'running' | 'pending' | 'finished' | 'missing'>

/** Opens (or creates) the named region of a host with the pool's and the job counters. */
export function hostCounters(name: string): SharedCounters

/** The job counter names createWorker adds to. */
export const COUNTER_NAMES: readonly string[]
/** The gauge of jobs running on the host. */
export const ACTIVE_GAUGE: string
