/// cluster(): N supervised workers sharing one port and one counter region (see docs/cluster.md).
import { EventEmitter } from 'node:events'
import type { CounterSpec, SharedCounters } from './counters'

/** Options of `cluster(options)`. Exactly one of `module` and `command`. */
export interface ClusterOptions {
  /** A Node.js module to run in every worker (forked with an IPC channel). */
  module?: string | URL
  /** A program to run in every worker instead (no IPC; ready once spawned). */
  command?: string
  args?: string[]
  /**
   * Number of workers: a positive integer, `'max'` or `0` (all cores), or `-k` (all cores but
   * k, at least 1). Default `'max'`.
   */
  workers?: number | 'max'
  /**
   * The port the workers serve (0: a free one, see `cluster.port`). Workers get it in `PORT`;
   * a server of a module worker that listens on it is given the cluster's socket.
   */
  port?: number
  /** The address to bind (default `'0.0.0.0'`). */
  host?: string
  /**
   * `false` (default): the supervising process holds one listening socket that every worker
   * accepts from, so a worker that stops loses no waiting connection (reloads drop nothing).
   * `true`: each worker binds its own socket with SO_REUSEPORT (the kernel spreads connections
   * evenly), but connections waiting in a stopping worker's queue are reset.
   */
  reusePort?: boolean
  /** Names the cluster's control socket and region; default: the module's file name. */
  name?: string
  /** Added to the workers' environment (on top of this process's). */
  env?: Record<string, string>
  cwd?: string
  /** Node.js options of module workers (default none). */
  execArgv?: string[]
  /**
   * When a worker counts as ready: `'listening'` (default for a module with a port: its server
   * listens on the port, or it sends `'ready'`), `'message'` (it sends `'ready'`), `'spawn'`.
   */
  ready?: 'listening' | 'message' | 'spawn'
  /** A worker not ready after this many ms is killed and restarted (default 30 000). */
  readyTimeout?: number
  /** Grace after SIGTERM before SIGKILL when a worker is stopped (default 10 000 ms). */
  shutdownMs?: number
  /** The app's metrics, created in the cluster's shared region besides the cluster's own. */
  counters?: ReadonlyArray<string | CounterSpec>
  /** Process-table entries of the region (per-process gauges); default max(64, 4 × workers). */
  processes?: number
  /** Replace a worker whose resident memory exceeds this (bytes, or `'200M'`, `'1G'`). */
  maxMemoryRestart?: number | string
  /** How often memory is checked (default 5000 ms). */
  memoryCheckInterval?: number
  /** Restarts allowed within `restartPeriod` before the cluster gives up (default max(16, 4 × workers)). */
  maxRestarts?: number
  restartPeriod?: number
  /** Prefix every output line with `<workerId>|<name> ` (default true). */
  prefixLogs?: boolean
  /** Prefix every output line with an ISO timestamp (default false). */
  timestamps?: boolean
  /** Where workers' stdout and the cluster's lines go (default process.stdout; null: nowhere). */
  stdout?: { write(text: string): unknown } | null
  /** Where workers' stderr goes (default process.stderr; null: nowhere). */
  stderr?: { write(text: string): unknown } | null
  /** Install SIGHUP (reload) and SIGTERM/SIGINT (graceful stop) handlers (default true). */
  signals?: boolean
}

/** One worker in `status()`. */
export interface ClusterWorkerStatus {
  id: number
  pid: number
  uptimeMs: number
  restarts: number
  /** Resident memory in bytes (Linux), or null. */
  memory: number | null
  lastExit: { code: number | null; signal: string | null; durationMs: number; at: number } | null
}

export interface ClusterStatus {
  name: string
  /** The supervising process. */
  pid: number
  state: 'starting' | 'running' | 'stopping' | 'stopped'
  port: number | null
  host: string
  reusePort: boolean
  region: string | null
  controlSocket: string | null
  reloads: number
  restarts: number
  workers: ClusterWorkerStatus[]
}

/** One output line (event `'log'`). `worker` is `'cluster'` for the cluster's own lines. */
export interface ClusterLogLine {
  worker: number | 'cluster'
  stream: 'stdout' | 'stderr'
  line: string
  time: Date
}

/**
 * A running cluster. Events: `'online'` (workerId, pid), `'exit'` (workerId, info),
 * `'restart'` (workerId, { attempt, delayMs, reason: 'exit' | 'memory' }), `'reload'`
 * ({ durationMs, replaced }), `'scale'` (workers), `'log'` (ClusterLogLine), `'error'` (the
 * supervisor gave up), `'stop'`.
 */
export declare class Cluster extends EventEmitter {
  private constructor()
  readonly name: string
  /** The listening port (the actual one for `port: 0`), or null. */
  readonly port: number | null
  /** The cluster's shared region: its own metrics and the app's `counters`. */
  readonly counters: SharedCounters
  /** Path of the control socket (mode 0600) the CLI talks to. */
  readonly controlSocket: string | null
  /** Rolling reload: per worker, start a new one, wait until ready, stop the old one gracefully. */
  reload(): Promise<{ durationMs: number; replaced: number }>
  /** Runs `n` workers (same forms as `options.workers`); resolves with the new count. */
  scale(n: number | 'max'): Promise<number>
  /** Stops the workers gracefully; releases the port, the region and the control socket. */
  stop(): Promise<void>
  status(): ClusterStatus
}

/**
 * Starts a cluster; resolves once every worker is ready. Rejects `ERR_CLUSTER_RUNNING` when a
 * corepool cluster with the same port or name runs, `ERR_INVALID_ARG` for bad options.
 */
export declare const cluster: {
  (options: ClusterOptions): Promise<Cluster>
  /** In a cluster's worker: true. */
  readonly isWorker: boolean
  /** In a cluster's worker: its id (0 … workers − 1; a replacement keeps the id), else null. */
  readonly workerId: number | null
  /** In a cluster's worker: the cluster's shared region. Throws ERR_INVALID_ARG elsewhere. */
  counters(): SharedCounters
  /** Sends one control request (`{ cmd: 'status' | 'reload' | 'stop' | 'scale' }`) to cluster `name`. */
  request(name: string, message: { cmd: string; [key: string]: unknown }, options?: { timeout?: number }): Promise<any>
  /** Names of this user's clusters that have a control socket. */
  list(): string[]
  /** The control socket path of cluster `name`. */
  controlPath(name: string): string
  /**
   * Stops `server` from accepting and resolves once its connections ended, failing no request:
   * responses not yet started and requests on kept-alive connections get `Connection: close`,
   * idle connections are closed after a second. For workers with their own SIGTERM handler.
   */
  closeGracefully(server: import('node:net').Server): Promise<void>
}
