// Types for corepool's supervised children: spawn, exec, fork, Child and Supervisor.
import { EventEmitter } from 'node:events'
import { Readable, Writable } from 'node:stream'

/** A signal name such as `'SIGTERM'`, or a signal number. */
export type Signal = NodeJS.Signals | number

/**
 * One stdio slot: `'pipe'` (a Node stream on the parent side), `'inherit'` (the parent's own
 * descriptor), `'ignore'` (/dev/null), a parent file descriptor number, or a file opened for the
 * child — read for stdin, truncated (or appended to with `append: true`) for stdout/stderr.
 */
export type StdioEntry = 'pipe' | 'inherit' | 'ignore' | number | { file: string; append?: boolean } | null | undefined

/** Options of `spawn` (and the base of `exec` and `fork` options). `undefined` means "not given". */
export interface SpawnOptions {
  /** Working directory of the child (a string or file URL). Default (also for `''` and `null`): the parent's. */
  cwd?: string | URL | null
  /**
   * Variables to add to the parent's environment (or the whole environment with `extendEnv: false`).
   * Keys inherited from the object's prototype count too, as in child_process.
   */
  env?: Record<string, string | undefined>
  /** Default true: `env` extends `process.env`; false: `env` is the child's whole environment. */
  extendEnv?: boolean
  /** One mode for all three, or `[stdin, stdout, stderr]`. Default `'pipe'`. */
  stdio?: 'pipe' | 'inherit' | 'ignore' | StdioEntry[]
  /** Run through `/bin/sh -c` (or the given shell). Off by default: arguments are never interpreted. */
  shell?: boolean | string
  /** argv[0] seen by the child. Default: the command. */
  argv0?: string
  /** User id of the child. */
  uid?: number
  /** Group id of the child (supplementary groups are dropped). */
  gid?: number
  /**
   * Kill the tree after this many ms; `exited` then rejects with ERR_CHILD_TIMEOUT. `0` and
   * `Infinity`: no timeout; values of 2^31 ms and more are honoured.
   */
  timeout?: number
  /** Signal for `timeout`, `signal` and `kill()` without argument. Default `'SIGTERM'`. */
  killSignal?: Signal
  /**
   * After a signal other than SIGKILL, send SIGKILL to the tree if the child still runs after
   * this many ms (`0`: at once). Default 5000; `false` or `Infinity` disables it.
   */
  forceKillAfter?: number | false
  /** Aborting kills the tree with `killSignal` (`exec` then rejects with ERR_ABORTED). */
  signal?: AbortSignal
  /**
   * Let the child outlive this process: its own session, no death signal, not killed by the
   * no-orphans watchdog. By default every child dies with the Node process.
   */
  detached?: boolean
}

/** What `child.exited` resolves to, whatever the exit code. */
export interface ExitResult {
  /** Exit code, or null when a signal ended the child. */
  code: number | null
  /** Name of the signal that ended the child, or null. */
  signal: NodeJS.Signals | null
  /** Time from the spawn to the observed exit, in ms. */
  durationMs: number
}

/** Options of `Child#kill`. */
export interface KillOptions {
  /** Default true: signal the child's process group and every descendant; false: the child only. */
  tree?: boolean
}

/**
 * A child process started by `spawn` or `fork`. Each child runs in its own process group, dies
 * with the parent (even on SIGKILL) and takes its grandchildren along.
 *
 * Events: `'spawn'`, `'exit'` (code, signal), `'close'` (code, signal; after 'exit' and the end
 * of stdout/stderr), `'error'` (emitted only when a listener exists), and for forked children
 * `'message'` (message) and `'disconnect'`.
 *
 * At exit, as in `child_process`, stdin is destroyed and stdout/stderr that nobody reads are
 * drained one tick after `'exit'`, so every pipe closes.
 */
export declare class Child extends EventEmitter {
  private constructor()
  /** The pid, once the `'spawn'` event has fired (spawning happens off the JS thread). */
  readonly pid: number | undefined
  /** The child's stdin when it is a pipe, else null. */
  readonly stdin: Writable | null
  /** The child's stdout when it is a pipe, else null. */
  readonly stdout: Readable | null
  /** The child's stderr when it is a pipe, else null. */
  readonly stderr: Readable | null
  /** `[stdin, stdout, stderr]`. */
  readonly stdio: [Writable | null, Readable | null, Readable | null]
  /**
   * Resolves with `{ code, signal, durationMs }` when the child exits — without waiting for pipes a
   * grandchild may still hold. Rejects only with ERR_SPAWN (could not start; `errno`, `syscall`,
   * `path` as in Node) or ERR_CHILD_TIMEOUT (`timeout` elapsed; the tree was killed).
   */
  readonly exited: Promise<ExitResult>
  /** Resolves with the pid once the process runs; rejects with ERR_SPAWN. */
  readonly spawned: Promise<number>
  /** Exit code once exited (null before, or when a signal ended it). */
  readonly exitCode: number | null
  /** Name of the signal that ended the child, or null. */
  readonly signalCode: NodeJS.Signals | null
  /** True once `kill()` sent a signal. */
  readonly killed: boolean
  /** True while the child is starting or running. */
  readonly running: boolean
  /** True when `timeout` killed the child. */
  readonly timedOut: boolean
  /** Forked children: whether the IPC channel is open. */
  readonly connected?: boolean
  /**
   * Sends a signal (default: `killSignal`) to the whole tree, or to the child only with
   * `{ tree: false }`; SIGKILL follows after `forceKillAfter`. Returns false, and sends nothing,
   * when the child had already exited (its pid and group id may have been reused). Throws
   * `ERR_SYSTEM` (`errno`, `syscall: 'kill'`) if the system refuses the signal.
   */
  kill(signal?: Signal, options?: KillOptions): boolean
  /**
   * Lines of stdout or stderr (without the line break) as an async iterator with back-pressure:
   * the pipe is not read further while lines wait to be consumed. Breaking out of the loop
   * destroys the stream. A child that could not start makes it throw the ERR_SPAWN error.
   */
  lines(which?: 'stdout' | 'stderr'): AsyncIterableIterator<string>
  /**
   * Forked children: sends a JSON-serialisable message, received by the child's
   * `process.on('message')`. Returns false when the channel is closed; the callback (or an
   * `'error'` listener) then gets ERR_IPC_CHANNEL_CLOSED. A child not started by `fork()` has no
   * channel: `send()` throws ERR_INVALID_STATE.
   */
  send(message: unknown, callback?: (error: Error | null) => void): boolean
  /** Forked children: closes the IPC channel (the child sees `'disconnect'`). */
  disconnect(): void
  /** Lets Node exit while the child still runs (a running child keeps Node alive by default). */
  unref(): this
  /** Undoes `unref()`. */
  ref(): this
}

/**
 * Starts `command` with `args`, without a shell (unless `shell: true`). Throws ERR_INVALID_ARG
 * for bad arguments; a failure to start (ENOENT, EACCES...) rejects `child.exited` with ERR_SPAWN.
 */
export declare function spawn(command: string, args?: readonly string[], options?: SpawnOptions): Child
export declare function spawn(command: string, options?: SpawnOptions): Child

/** Options of `exec`. */
export interface ExecOptions extends SpawnOptions {
  /**
   * Written to the child's stdin, which is then closed; wins over a stdin given in `stdio`.
   * Without it stdin is /dev/null (or what `stdio` says).
   */
  input?: string | Uint8Array
  /** `'utf8'` (default) or another Buffer encoding for strings, `'buffer'` for Buffers. */
  encoding?: BufferEncoding | 'buffer' | null
  /**
   * Bytes kept per stream (default 1 MiB, `Infinity`: no limit): the head is kept and `truncated`
   * set. What happens past it depends on `onMaxBuffer`; `exec` never hangs on a full pipe.
   */
  maxBuffer?: number
  /**
   * `'truncate'` (default): output past `maxBuffer` is read and dropped while the child runs on —
   * up to 64 × `maxBuffer` (at least 256 MiB) per stream; past that the child is killed and
   * `exec` rejects with ERR_OUTPUT_TOO_LARGE, so it never stays pending on a program that writes
   * without end. `'kill'` (as `child_process` and execa): past `maxBuffer` the child is killed
   * (`killSignal`, the tree) and `exec` rejects with ERR_OUTPUT_TOO_LARGE carrying the head in
   * `stdout`/`stderr`.
   */
  onMaxBuffer?: 'truncate' | 'kill'
  /** Drop one final `\n` (or `\r\n`) from `stdout`, `stderr` and `all`, as execa does. Default false. */
  stripFinalNewline?: boolean
  /** Also collect `all`: stdout and stderr interleaved in arrival order (at most 2 × `maxBuffer`). */
  all?: boolean
  /** Default true: a non-zero exit or a signal rejects with ERR_CHILD_EXIT. */
  reject?: boolean
}

/** The promise `exec` returns is also a handle on the running child. */
export interface ExecPromise<T> extends Promise<T> {
  /** The child (null when the arguments were invalid). */
  readonly child: Child | null
  /** The pid, once the child runs (`await promise.child.spawned`). */
  readonly pid: number | undefined
  readonly stdin: Writable | null
  /** The child's stdout (exec reads it; extra listeners see the same data). */
  readonly stdout: Readable | null
  readonly stderr: Readable | null
  /** `child.exited` (rejects like the promise when the arguments were invalid). */
  readonly exited: Promise<ExitResult>
  /** `child.kill()`; false when there is no running child. */
  kill(signal?: Signal, options?: KillOptions): boolean
}

/** What `exec` resolves to. */
export interface ExecResult<T = string | Buffer> {
  stdout: T
  stderr: T
  code: number | null
  signal: NodeJS.Signals | null
  /** True when a stream exceeded `maxBuffer`. */
  truncated: boolean
  durationMs: number
  /** With `all: true`: stdout and stderr interleaved in arrival order. */
  all?: T
}

/**
 * Runs `command` with `args` (no shell) to completion and collects its output. Rejects with
 * ERR_CHILD_EXIT (`exitCode`, `signal`, `stdout`, `stderr`, `truncated`) on a non-zero exit or a
 * signal unless `reject: false`; ERR_SPAWN, ERR_CHILD_TIMEOUT, ERR_ABORTED, ERR_INVALID_ARG
 * otherwise. Never throws synchronously.
 */
export declare function exec(
  command: string,
  args?: readonly string[],
  options?: ExecOptions & { encoding?: BufferEncoding },
): ExecPromise<ExecResult<string>>
export declare function exec(
  command: string,
  args: readonly string[] | undefined,
  options: ExecOptions & { encoding: 'buffer' | null },
): ExecPromise<ExecResult<Buffer>>
/** `exec(command, options)`: no arguments. */
export declare function exec(
  command: string,
  options?: ExecOptions & { encoding?: BufferEncoding },
): ExecPromise<ExecResult<string>>
export declare function exec(
  command: string,
  options: ExecOptions & { encoding: 'buffer' | null },
): ExecPromise<ExecResult<Buffer>>

/** Options of `fork`. */
export interface ForkOptions extends Omit<SpawnOptions, 'shell'> {
  /** Node executable. Default `process.execPath`. */
  execPath?: string
  /** Node options for the child. Default `process.execArgv`. */
  execArgv?: string[]
  /** Pipe stdio instead of inheriting it (the default). */
  silent?: boolean
  /**
   * `'json'` (default: newline-delimited JSON) or `'advanced'` (Node's structured-clone IPC:
   * Map, Set, Date, BigInt, Buffers and typed arrays; the child uses plain `process.send`).
   */
  serialization?: 'json' | 'advanced'
}

/**
 * Starts a Node.js module with Node's IPC channel (JSON serialisation): `child.send()` reaches the
 * child's `process.on('message')`, and the child's `process.send()` emits `'message'` here.
 */
export declare function fork(modulePath: string | URL, args?: readonly string[], options?: ForkOptions): Child
export declare function fork(modulePath: string | URL, options?: ForkOptions): Child

/** Options of `new Supervisor`. */
export interface SupervisorOptions {
  /**
   * `'one_for_one'` (default): restart the failed child; `'one_for_all'`: restart all;
   * `'rest_for_one'`: restart the failed child and those added after it.
   */
  strategy?: 'one_for_one' | 'one_for_all' | 'rest_for_one'
  /** At most this many restarts within `period`; the next one gives up. Default 3. */
  intensity?: number
  /** Window for `intensity`, in ms. Default 5000. */
  period?: number
  /**
   * Delay before the n-th consecutive restart of a child: `min(max, initial * factor^(n-1))` ms.
   * Defaults `{ initial: 100, factor: 2, max: 10000 }`. A child that ran a whole `period` starts over.
   */
  backoff?: { initial?: number; factor?: number; max?: number }
  /**
   * A shared counters region where the supervisor adds one to `supervisor_starts_total:<id>`,
   * `supervisor_restarts_total:<id>` and `supervisor_exits_total:<id>` for each child (those the
   * region has; create it with `Supervisor.counterNames(ids)`), so other processes see them.
   */
  counters?: import('./counters').SharedCounters
}

/** A supervised child: `command` (spawn) or `module` (fork). */
export interface ChildSpec {
  /** Unique name. */
  id: string
  command?: string
  module?: string | URL
  args?: string[]
  /** spawn/fork options; stdio defaults to `'inherit'`. */
  options?: SpawnOptions & ForkOptions
  /** `'permanent'` (default): always restart; `'transient'`: only after an abnormal exit; `'temporary'`: never. */
  restart?: 'permanent' | 'transient' | 'temporary'
  /** Grace between SIGTERM and SIGKILL when stopping, in ms. Default 5000. */
  shutdownMs?: number
  /**
   * The child counts as started when a forked child sends a message deep-equal to `message` (or
   * one for which `message`, when it is a function, returns true), or
   * when a stdout line contains `line` (string) or matches it (RegExp). With `timeout`, a child not
   * ready in time is killed (and restarted by its policy).
   */
  ready?: { message?: ((message: unknown) => boolean) | {} | null; line?: string | RegExp; timeout?: number }
}

/** Per-child counts in `status()`. */
export interface ChildStatus {
  id: string
  state: 'stopped' | 'starting' | 'running' | 'exited' | 'stopping'
  pid: number | undefined
  starts: number
  restarts: number
  exits: number
  lastExit: { code: number | null; signal: NodeJS.Signals | null; error?: string } | null
}

/** What `status()` returns. */
export interface SupervisorStatus {
  state: 'idle' | 'starting' | 'running' | 'stopping' | 'stopped' | 'gaveUp'
  strategy: string
  restartsInPeriod: number
  children: ChildStatus[]
}

/**
 * An OTP-style supervisor of child processes. Events: `'spawn'` (id, child) when a child process
 * is created (before it is ready), `'start'` (id, pid), `'exit'` (id, { code, signal, durationMs,
 * expected }), `'restart'` (id, { attempt, delayMs }), `'gaveUp'` (error), `'line'` (id, line)
 * for children with `ready.line`.
 */
export declare class Supervisor extends EventEmitter {
  constructor(options?: SupervisorOptions)
  /** Settles when the supervisor stops: resolves after `stop()`, rejects with ERR_SUPERVISOR_GAVE_UP. */
  readonly done: Promise<void>
  /** Adds a child (started at once when the supervisor runs). Throws ERR_INVALID_ARG. */
  add(spec: ChildSpec): this
  /**
   * Starts the children in order, each after the previous one is started (and ready); rejects
   * with ERR_SUPERVISOR_GAVE_UP if the intensity is exceeded first, ERR_INVALID_STATE when called
   * a second time.
   */
  start(): Promise<void>
  /** Stops the children in reverse order: SIGTERM to each tree, SIGKILL after its `shutdownMs`. */
  stop(): Promise<void>
  /**
   * Stops and restarts one child by hand (not counted against the intensity). Rejects
   * ERR_INVALID_ARG for an unknown id, ERR_INVALID_STATE unless the supervisor is running.
   */
  restart(id: string): Promise<void>
  /**
   * Stops one child gracefully (SIGTERM, SIGKILL after its `shutdownMs`) and removes it; resolves
   * once it exited. Not a restart and not a failure.
   */
  remove(id: string): Promise<void>
  /** The supervisor's state and per-child counts. */
  status(): SupervisorStatus
  /** Counter names for option `counters` and children `ids` (characters a metric name cannot hold become `_`). */
  static counterNames(ids: readonly string[]): string[]
  /** The backoff delay in ms before the n-th consecutive restart (n ≥ 1). */
  backoffDelay(n: number): number
}
