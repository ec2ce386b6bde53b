// @ts-check
'use strict'
// Supervised children: spawn, exec and fork without a shell, with process-tree kill, timeouts
// and no orphans. The native side (src/supervisor) starts the processes from its own thread and
// reports spawn/exit events; this file wraps the pipes in Node streams and keeps the promises.
const { EventEmitter } = require('node:events')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')
const { StringDecoder } = require('node:string_decoder')
const { fileURLToPath } = require('node:url')
const { isMainThread } = require('node:worker_threads')
const native = require('./native')
const {
  CorepoolError,
  invalidArg,
  invalidState,
  abortError,
  describe,
  systemError,
  errnoName,
  asArgError,
  guardMethods,
} = require('./errors')
const check = require('./validate')
const { longTimeout } = require('./timers')
const ipc = require('./ipc')

const noop = () => {}
const SIGNALS = os.constants.signals
const SIGNAL_NAMES = new Map(Object.entries(SIGNALS).map(([name, n]) => [n, name]))
const DEFAULT_FORCE_KILL_AFTER = 5000
// How long a finished child's pipes may keep Node alive / exec may wait for their end, when a
// grandchild still holds them open.
const PIPE_GRACE_MS = 200

// One ref'd timer keeps Node alive while any child runs (the native events are weak).
let alive = 0
let keeper = null
function hold() {
  if (alive++ === 0) keeper = setInterval(noop, 2 ** 30)
}
function release() {
  if (--alive === 0) {
    clearInterval(keeper)
    keeper = null
  }
}

function signalNumber(signal, name) {
  if (typeof signal === 'number' && Number.isInteger(signal) && signal >= 0 && signal < 65) return signal
  if (typeof signal === 'string' && Object.hasOwn(SIGNALS, signal)) return SIGNALS[signal]
  throw invalidArg(`${name} must be a signal name like 'SIGTERM' or a signal number, got ${describe(signal)}`)
}

/** Throws ERR_INVALID_ARG when a string that reaches the kernel contains a NUL byte. */
function noNul(value, name) {
  if (typeof value === 'string' && value.includes('\0')) {
    throw invalidArg(`${name} must not contain NUL bytes, got ${describe(value)}`)
  }
  return value
}

/** One stdio entry as the native side takes it: `{ kind, fd?, path? }` (types/native.d.ts). */
function checkStdioEntry(entry, i) {
  if (entry === undefined || entry === null || entry === 'pipe') return { kind: 'pipe' }
  if (entry === 'inherit' || entry === 'ignore') return { kind: entry }
  if (Number.isInteger(entry) && entry >= 0) return i === entry ? { kind: 'inherit' } : { kind: 'fd', fd: entry }
  if (typeof entry === 'object' && typeof entry.file === 'string' && entry.file !== '') {
    return { kind: entry.append ? 'append' : 'file', path: path.resolve(entry.file) }
  }
  throw invalidArg(
    `options.stdio[${i}] must be 'pipe', 'inherit', 'ignore', a file descriptor or { file, append? }, got ${describe(entry)}`,
  )
}

function checkStdio(stdio, fallback) {
  if (stdio === undefined) return [0, 1, 2].map((i) => checkStdioEntry(fallback, i))
  if (typeof stdio === 'string') return [0, 1, 2].map((i) => checkStdioEntry(stdio, i))
  if (Array.isArray(stdio) && stdio.length <= 3) return [0, 1, 2].map((i) => checkStdioEntry(stdio[i], i))
  throw invalidArg(`options.stdio must be a string or an array of up to 3 entries, got ${describe(stdio)}`)
}

function buildEnv(env, extendEnv, extra) {
  if (env !== undefined) check.object(env, 'options.env')
  check.bool(extendEnv, 'options.extendEnv')
  // On the main thread process.env is the real environment (its writes go through setenv), which
  // the native side reads itself; copying it here would cost more than the rest of a spawn.
  if (env === undefined && extra === undefined && extendEnv !== false && isMainThread) return undefined
  const merged = extendEnv === false ? {} : { ...process.env }
  // Keys inherited from the object's prototype count, as in child_process (for...in).
  for (const key in env) merged[key] = env[key]
  Object.assign(merged, extra)
  const out = []
  for (const [key, value] of Object.entries(merged)) {
    if (value === undefined) continue
    noNul(key, `options.env key`)
    out.push(`${key}=${noNul(String(value), `options.env[${JSON.stringify(key)}]`)}`)
  }
  return out
}

/** Validates and normalises spawn options (throws ERR_INVALID_ARG). */
function normalize(command, args, options, defaults) {
  noNul(check.string(command, 'command', { nonEmpty: true, required: true }), 'command')
  if (args === undefined || args === null) args = []
  if (!Array.isArray(args)) throw invalidArg(`args must be an array of strings, got ${describe(args)}`)
  args = args.map((a, i) => {
    if (typeof a === 'string') return noNul(a, `args[${i}]`)
    if (typeof a === 'number' || typeof a === 'bigint') return String(a)
    throw invalidArg(`args[${i}] must be a string, got ${describe(a)}`)
  })
  options = check.object(options)
  let { cwd, shell, argv0, signal } = options
  if (cwd instanceof URL) cwd = fileURLToPath(cwd)
  // '' and null mean "not given", as in child_process.
  if (cwd === '' || cwd === null) cwd = undefined
  if (cwd !== undefined && typeof cwd !== 'string') {
    throw invalidArg(`options.cwd must be a string or file URL, got ${describe(cwd)}`)
  }
  noNul(cwd, 'options.cwd')
  if (shell !== undefined && typeof shell !== 'boolean' && typeof shell !== 'string') {
    throw invalidArg(`options.shell must be a boolean or a shell path, got ${describe(shell)}`)
  }
  noNul(check.string(argv0, 'options.argv0'), 'options.argv0')
  if (typeof shell === 'string') noNul(shell, 'options.shell')
  check.signal(signal)
  const killSignal = signalNumber(options.killSignal ?? 'SIGTERM', 'options.killSignal')
  // forceKillAfter: a delay (0: at once; false or Infinity: never); timeout: 0 or Infinity: none.
  const forceKillAfter =
    options.forceKillAfter === false
      ? Infinity
      : check.duration(options.forceKillAfter, 'options.forceKillAfter', { default: DEFAULT_FORCE_KILL_AFTER })
  let timeout = check.timeout(options.timeout, 'options.timeout')
  if (timeout === Infinity) timeout = undefined
  let file = command
  let argv = [argv0 ?? command, ...args]
  if (shell) {
    file = typeof shell === 'string' ? shell : '/bin/sh'
    argv = [argv0 ?? file, '-c', [command, ...args].join(' ')]
  }
  return {
    file,
    args: argv,
    env: buildEnv(options.env, options.extendEnv, defaults.env),
    cwd: cwd === undefined ? undefined : path.resolve(cwd),
    stdio: checkStdio(options.stdio, defaults.stdio),
    ipc: defaults.ipc,
    serialization: defaults.serialization ?? 'json',
    uid: check.int(options.uid, 'options.uid', { max: 0xffffffff }),
    gid: check.int(options.gid, 'options.gid', { max: 0xffffffff }),
    detached: check.bool(options.detached, 'options.detached'),
    timeout,
    killSignal,
    forceKillAfter,
    signal,
    command,
    spawnargs: args,
  }
}

function spawnError(errno, detail, o) {
  const [syscall, file, message] = detail.split('\n')
  const name = errnoName(errno)
  const text = syscall.startsWith('spawn ') ? `${syscall} ${name}` : `spawn ${o.command}: ${syscall} ${file} ${name}`
  const err = new CorepoolError('ERR_SPAWN', message && !message.endsWith(name) ? `${text} (${message})` : text)
  err.errno = -errno
  err.syscall = syscall
  err.path = file
  err.spawnargs = o.spawnargs
  // The system error as node:child_process would report it.
  err.cause = Object.assign(new Error(`${syscall} ${name}`), { code: name, errno: -errno, syscall, path: file })
  return err
}

function lineIterator(stream, failure = () => null) {
  // Splits chunks into lines (without '\n' or a trailing '\r'); pulling from the stream's own
  // async iterator gives back-pressure: nothing more is read while lines wait to be consumed.
  // `next()` answers from the current chunk's lines without an async function per line.
  const source = stream[Symbol.asyncIterator]()
  const decoder = new StringDecoder('utf8')
  let lines = []
  let index = 0
  let rest = ''
  let done = false
  let hasCR = false
  const cut = (s) => (hasCR && s.length > 0 && s.charCodeAt(s.length - 1) === 13 ? s.slice(0, -1) : s)
  const take = (text, last) => {
    const parts = text.split('\n')
    rest = last ? '' : parts.pop()
    if (last && parts[parts.length - 1] === '') parts.pop()
    hasCR = text.includes('\r')
    lines = parts
    index = 0
  }
  const refill = async () => {
    while (index >= lines.length) {
      if (done) return { value: undefined, done: true }
      let next
      try {
        next = await source.next()
      } catch (err) {
        // A child that could not start closes its pipes early: say why instead.
        throw failure() ?? err
      }
      const { value, done: end } = next
      if (end && failure() !== null) throw failure()
      if (end) {
        done = true
        take(rest + decoder.end(), true)
      } else {
        take(rest + (typeof value === 'string' ? value : decoder.write(value)), false)
      }
    }
    return { value: cut(lines[index++]), done: false }
  }
  return {
    next() {
      if (index < lines.length) return Promise.resolve({ value: cut(lines[index++]), done: false })
      return refill()
    },
    async return() {
      done = true
      lines = []
      await source.return?.()
      return { value: undefined, done: true }
    },
    [Symbol.asyncIterator]() {
      return this
    },
  }
}

/**
 * A child process started by `spawn` or `fork`. Events: 'spawn', 'exit' (code, signal), 'error'
 * (only emitted when a listener exists), and with `fork`: 'message', 'disconnect'.
 */
class Child extends EventEmitter {
  #native
  #o
  #pid
  #held = true
  #state = 'starting' // 'starting' | 'running' | 'exited' | 'failed'
  #timedOut = false
  #timers = new Set()
  #channel = null
  #offAbort = noop
  #spawnError = null
  #resolveExited
  #rejectExited
  #resolveSpawned
  #rejectSpawned

  /** @internal use spawn() or fork() */
  constructor(o, token) {
    if (token !== kCreate) throw new TypeError('Child is created by spawn() or fork()')
    super()
    this.#o = o
    this.exitCode = null
    this.signalCode = null
    this.killed = false
    this.spawnfile = o.file
    this.spawnargs = o.args
    this.exited = new Promise((resolve, reject) => {
      this.#resolveExited = resolve
      this.#rejectExited = reject
    })
    this.exited.catch(noop)
    this.spawned = new Promise((resolve, reject) => {
      this.#resolveSpawned = resolve
      this.#rejectSpawned = reject
    })
    this.spawned.catch(noop)
    const n = native.spawnChild(
      {
        file: o.file,
        args: o.args,
        env: o.env,
        cwd: o.cwd,
        stdio: o.stdio,
        ipc: o.ipc,
        uid: o.uid,
        gid: o.gid,
        detached: o.detached,
      },
      (kind, a, b, c, text) => this.#onEvent(kind, a, b, c, text),
    )
    this.#native = n
    hold()
    const [inFd, outFd, errFd, ipcFd] = n.fds
    this.stdin = inFd !== null ? pipeSocket(inFd, false) : null
    this.stdout = outFd !== null ? this.#spawnFirst(pipeSocket(outFd, true)) : null
    this.stderr = errFd !== null ? this.#spawnFirst(pipeSocket(errFd, true)) : null
    this.stdio = [this.stdin, this.stdout, this.stderr]
    if (ipcFd !== null) this.#openChannel(ipcFd)
    if (o.timeout !== undefined) {
      this.#timer(() => {
        this.#timedOut = true
        this.kill(o.killSignal)
      }, o.timeout)
    }
    if (o.signal !== undefined) {
      // As child_process: an abort that kills the child is also an 'error' (AbortError).
      const onAbort = () => {
        if (this.kill(o.killSignal)) this.#emitError(abortError(o.signal.reason))
      }
      if (o.signal.aborted) queueMicrotask(onAbort)
      else {
        o.signal.addEventListener('abort', onAbort, { once: true })
        // Removed before 'exit' is emitted (see #finish).
        this.#offAbort = () => o.signal.removeEventListener('abort', onAbort)
      }
    }
  }

  /**
   * 'spawn' comes before any output, as in child_process: the output pipe can be readable before
   * the spawner thread's event reaches JS, so the first chunk emits 'spawn' itself. The pid is
   * known by then (the native side records it before the child can write anything).
   */
  #spawnFirst(stream) {
    const push = stream.push
    stream.push = (chunk, encoding) => {
      if (this.#state === 'starting' && chunk !== null) this.#onEvent('spawn', this.#native.pid ?? 0)
      if (this.#state !== 'starting') stream.push = push
      return push.call(stream, chunk, encoding)
    }
    return stream
  }

  #timer(fn, ms) {
    // Any duration: setTimeout alone would fire at once for 2^31 ms and more.
    const t = longTimeout(
      () => {
        this.#timers.delete(t)
        fn()
      },
      ms,
      { unref: true },
    )
    this.#timers.add(t)
  }

  #emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err)
  }

  #onEvent(kind, a, b, c, text) {
    if (kind === 'spawn') {
      // Already emitted when output came first.
      if (this.#state !== 'starting') return
      this.#pid = a
      this.#state = 'running'
      this.#resolveSpawned(a)
      this.emit('spawn')
    } else if (kind === 'error') {
      this.#state = 'failed'
      const err = spawnError(a, text, this.#o)
      this.#spawnError = err
      this.#finish()
      for (const s of this.stdio) s?.destroy()
      this.#channel?.destroy()
      this.#rejectSpawned(err)
      this.#rejectExited(err)
      this.#emitError(err)
    } else if (kind === 'exit') {
      this.#state = 'exited'
      const code = a
      const signal = b === null ? null : (SIGNAL_NAMES.get(b) ?? b)
      this.exitCode = code
      this.signalCode = signal
      this.#finish()
      // As child_process does: nobody can write to a child that is gone, and output nobody reads
      // is drained (one tick from now, a last chance to start reading) so the pipes reach their
      // end and close instead of staying open for ever.
      this.stdin?.destroy()
      process.nextTick(() => {
        for (const st of [this.stdout, this.stderr]) {
          if (st !== null && st.readable && !st._readableState.readableListening) st.resume()
        }
      })
      // A grandchild may hold our pipes open: let them go on, but stop them from keeping Node
      // alive once the child itself is gone.
      const grace = setTimeout(() => {
        for (const s of [...this.stdio, this.#channel]) if (s && !s.destroyed) s.unref()
      }, PIPE_GRACE_MS)
      grace.unref()
      if (this.#timedOut) {
        const err = new CorepoolError(
          'ERR_CHILD_TIMEOUT',
          `Command timed out after ${this.#o.timeout} ms: ${commandLine(this.#o)}`,
        )
        err.exitCode = code
        err.signal = signal
        err.durationMs = c
        this.#rejectExited(err)
        this.#emitError(err)
      } else {
        this.#resolveExited({ code, signal, durationMs: c })
      }
      this.emit('exit', code, signal)
      // 'close' as in child_process: after 'exit' and once the output pipes have closed.
      const open = [this.stdout, this.stderr].filter((st) => st !== null && !st[kCloseSeen])
      let left = open.length
      const closed = () => {
        if (--left === 0) this.emit('close', code, signal)
      }
      if (left === 0) process.nextTick(() => this.emit('close', code, signal))
      for (const st of open) st.once('close', closed)
    }
  }

  #finish() {
    for (const t of this.#timers) t.clear()
    this.#timers.clear()
    this.#offAbort()
    this.#offAbort = noop
    if (this.#held) {
      this.#held = false
      release()
    }
  }

  /**
   * The pid: known from the 'spawn' event on, and whenever the child's first output is seen (it is
   * asked from the native side if that output arrived before the event).
   */
  get pid() {
    if (this.#pid === undefined && this.#native !== undefined && this.#state === 'starting') {
      this.#pid = this.#native.pid ?? undefined
    }
    return this.#pid
  }

  /** True while the child runs (or is starting). */
  get running() {
    return this.#state === 'starting' || this.#state === 'running'
  }

  /** Whether a `timeout` killed the child. */
  get timedOut() {
    return this.#timedOut
  }

  /**
   * Sends `signal` (default: the `killSignal` option, SIGTERM) to the whole process tree, or to the
   * child only with `{ tree: false }`. Unless the signal is SIGKILL, SIGKILL follows after
   * `forceKillAfter` ms if the child is still running. Returns false if the child already ended.
   */
  kill(signal, options) {
    const sig = signal === undefined ? this.#o.killSignal : signalNumber(signal, 'signal')
    const tree = options?.tree ?? true
    // Once the child is reaped its pid (and process group id) may belong to someone else.
    if (!this.running) return false
    const sent = this.#native.kill(sig, tree)
    if (typeof sent !== 'boolean') throw systemError(`kill(${this.pid}, ${sig}) failed`, sent.errno, sent.syscall)
    if (sent && sig !== 0) {
      this.killed = true
      if (sig !== SIGNALS.SIGKILL && this.#o.forceKillAfter !== Infinity) {
        this.#timer(() => this.#native.kill(SIGNALS.SIGKILL, true), this.#o.forceKillAfter)
      }
    }
    return sent
  }

  /** An async iterator over the lines of `stdout` or `stderr` (with back-pressure). */
  lines(which = 'stdout') {
    if (which !== 'stdout' && which !== 'stderr') {
      throw invalidArg(`lines() takes 'stdout' or 'stderr', got ${describe(which)}`)
    }
    const stream = this[which]
    if (stream === null) throw invalidArg(`${which} is not a pipe (stdio option)`)
    return lineIterator(stream, () => this.#spawnError)
  }

  /** Lets Node exit while this child still runs (its pipes are unref'd too). */
  unref() {
    if (this.#held) {
      this.#held = false
      release()
    }
    for (const s of [...this.stdio, this.#channel]) s?.unref()
    return this
  }

  /** Undoes `unref()` while the child runs. */
  ref() {
    if (!this.#held && this.running) {
      this.#held = true
      hold()
    }
    for (const s of [...this.stdio, this.#channel]) s?.ref()
    return this
  }

  // --- IPC (fork) -------------------------------------------------------------------------

  #openChannel(fd) {
    const channel = this.#spawnFirst(new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: false }))
    this.#channel = channel
    this.connected = true
    channel.on('error', noop)
    channel.on('close', () => {
      if (this.connected) {
        this.connected = false
        this.emit('disconnect')
      }
    })
    if (this.#o.serialization === 'advanced') {
      const messages = ipc.parser()
      channel.on('data', (chunk) => {
        for (const message of messages(chunk)) this.#onChannelMessage(message)
      })
      return
    }
    channel.setEncoding('utf8')
    // Newline-delimited JSON; a message may span many chunks, so only new text is searched.
    let pending = []
    channel.on('data', (text) => {
      let from = 0
      let nl
      while ((nl = text.indexOf('\n', from)) >= 0) {
        pending.push(text.slice(from, nl))
        from = nl + 1
        const line = pending.length === 1 ? pending[0] : pending.join('')
        pending = []
        if (line !== '') this.#onChannelLine(line)
      }
      if (from < text.length) pending.push(text.slice(from))
    })
  }

  #onChannelLine(line) {
    let message
    try {
      message = JSON.parse(line)
    } catch {
      return
    }
    this.#onChannelMessage(message)
  }

  #onChannelMessage(message) {
    // Node's own internal messages (handle passing, cluster) are not for the user.
    if (message !== null && typeof message === 'object' && typeof message.cmd === 'string') {
      if (message.cmd.startsWith('NODE_')) return
    }
    this.emit('message', message)
  }

  /**
   * Sends a JSON-serialisable message to a forked child (received with `process.on('message')`).
   * Returns false when the channel is closed (the callback or an 'error' listener gets the error).
   */
  send(message, callback) {
    if (this.#channel === null) throw invalidState('send() is only available on children started with fork()')
    if (callback !== undefined && typeof callback !== 'function') {
      throw invalidArg(`callback must be a function, got ${describe(callback)}`)
    }
    if (!this.connected) {
      const err = new CorepoolError('ERR_IPC_CHANNEL_CLOSED', 'The IPC channel is closed')
      if (callback) process.nextTick(callback, err)
      else this.#emitError(err)
      return false
    }
    const advanced = this.#o.serialization === 'advanced'
    let data
    try {
      data = advanced ? ipc.encode(message) : JSON.stringify(message)
    } catch (cause) {
      const err = invalidArg(`message cannot be serialised (${this.#o.serialization}): ${cause.message}`)
      if (callback) process.nextTick(callback, err)
      else throw err
      return false
    }
    if (data === undefined) throw invalidArg(`message must be JSON-serialisable, got ${describe(message)}`)
    if (!advanced) data += '\n'
    return this.#channel.write(data, callback ? (err) => callback(err ?? null) : undefined)
  }

  /** Closes the IPC channel: the child sees 'disconnect'. */
  disconnect() {
    if (this.#channel === null || !this.connected) return
    this.#channel.end()
    this.#channel.destroySoon()
  }
}

const kCreate = Symbol('corepool.child')

// The native child machinery is Linux-only (clone, pidfd, PR_SET_PDEATHSIG, /proc).
function unsupported() {
  if (typeof native.spawnChild !== 'function') {
    throw new CorepoolError('ERR_SPAWN', `corepool children are not supported on ${process.platform} (Linux only)`)
  }
}

// Set once a pipe emitted 'close' (a socket's `closed` and `closeEmitted` turn true before it
// emits 'close', which comes when its handle has closed).
const kCloseSeen = Symbol('corepool.closeSeen')

function pipeSocket(fd, readable) {
  const socket = new net.Socket({ fd, readable, writable: !readable, allowHalfOpen: true })
  socket.once('close', () => {
    socket[kCloseSeen] = true
  })
  // EPIPE on stdin (the child stopped reading) and the like must not crash an unobserving
  // program; listeners added by the user still see them.
  socket.on('error', noop)
  return socket
}

function commandLine(o) {
  return [o.command, ...o.spawnargs].join(' ')
}

/** `(command, options)` is short for `(command, [], options)`. */
function optionalArgs(args, options) {
  const isOptions = !Array.isArray(args) && args !== null && typeof args === 'object'
  return isOptions && options === undefined ? [[], args] : [args, options]
}

/**
 * Starts `command` with `args` — no shell unless `shell: true` — and returns a `Child`. Throws
 * ERR_INVALID_ARG for bad arguments; spawn failures (ENOENT, EACCES...) reject `child.exited`
 * with ERR_SPAWN.
 */
function spawn(command, args, options) {
  unsupported()
  ;[args, options] = optionalArgs(args, options)
  const o = normalize(command, args, options, { stdio: 'pipe', ipc: false, env: undefined })
  return new Child(o, kCreate)
}

/**
 * Starts a Node.js module with an IPC channel (`child.send` / `process.on('message')`, JSON).
 * stdio is inherited by default (`silent: true` pipes it).
 */
function fork(modulePath, args, options) {
  unsupported()
  ;[args, options] = optionalArgs(args, options)
  if (modulePath instanceof URL) modulePath = fileURLToPath(modulePath)
  if (typeof modulePath !== 'string' || modulePath === '') {
    throw invalidArg(`modulePath must be a non-empty string, got ${describe(modulePath)}`)
  }
  options = check.object(options)
  const { execPath = process.execPath, silent } = options
  const serialization = check.oneOf(options.serialization, 'options.serialization', ['json', 'advanced'])
  let { execArgv = process.execArgv } = options
  if (!Array.isArray(execArgv)) throw invalidArg(`options.execArgv must be an array, got ${describe(execArgv)}`)
  // As child_process does: a parent started with `node -e <code>` does not pass its code on (the
  // child would run it again instead of the module).
  const evaluated = /** @type {{ _eval?: string }} */ (/** @type {unknown} */ (process))._eval
  if (execArgv === process.execArgv && evaluated != null) {
    const at = execArgv.lastIndexOf(evaluated)
    if (at > 0) execArgv = [...execArgv.slice(0, at - 1), ...execArgv.slice(at + 1)]
  }
  if (args !== undefined && args !== null && !Array.isArray(args)) {
    throw invalidArg(`args must be an array of strings, got ${describe(args)}`)
  }
  const o = normalize(
    execPath,
    [...execArgv, modulePath, ...(args ?? [])],
    { ...options, shell: false },
    {
      stdio: silent ? 'pipe' : 'inherit',
      ipc: true,
      serialization: serialization ?? 'json',
      env: { NODE_CHANNEL_FD: '3', NODE_CHANNEL_SERIALIZATION_MODE: serialization ?? 'json' },
    },
  )
  return new Child(o, kCreate)
}

// In the default 'truncate' mode, output past maxBuffer is read and dropped — but not for ever:
// past this many times maxBuffer (and at least DRAIN_MIN bytes) per stream the child is killed
// and exec rejects with ERR_OUTPUT_TOO_LARGE, so a program that writes without end cannot leave
// exec pending.
const DRAIN_FACTOR = 64
const DRAIN_MIN = 256 * 1024 * 1024

/**
 * Keeps the first `limit` bytes of `stream` (and of `all`, the interleaving of both streams);
 * calls `over()` when more than `cap` bytes came.
 */
function collect(stream, limit, cap, state, all, over) {
  const chunks = []
  let size = 0
  let seen = 0
  const result = { chunks, done: Promise.resolve(), cut: false }
  if (stream === null) return result
  stream.on('data', (chunk) => {
    // Someone may have called setEncoding() on the stream (as child_process allows).
    if (typeof chunk === 'string') chunk = Buffer.from(chunk, stream.readableEncoding ?? 'utf8')
    seen += chunk.length
    if (all !== null) all.add(chunk)
    if (seen > cap) over()
    if (size >= limit) {
      if (chunk.length > 0) state.truncated = result.cut = true
      return
    }
    if (size + chunk.length > limit) {
      chunks.push(chunk.subarray(0, limit - size))
      size = limit
      state.truncated = result.cut = true
    } else {
      chunks.push(chunk)
      size += chunk.length
    }
  })
  result.done = new Promise((resolve) => {
    stream.once('end', resolve)
    stream.once('close', resolve)
  })
  return result
}

const MAX_BUFFER_MODES = ['truncate', 'kill']

function execOptions(options) {
  options = check.object(options)
  const { input, encoding = 'utf8' } = options
  if (input !== undefined && typeof input !== 'string' && !(input instanceof Uint8Array)) {
    throw invalidArg(`options.input must be a string, Buffer or Uint8Array, got ${describe(input)}`)
  }
  if (encoding !== 'buffer' && encoding !== null && !Buffer.isEncoding(encoding)) {
    throw invalidArg(`options.encoding must be a Buffer encoding or 'buffer', got ${describe(encoding)}`)
  }
  const maxBuffer = check.int(options.maxBuffer, 'options.maxBuffer', { infinity: true, default: 1024 * 1024 })
  const onMaxBuffer = check.oneOf(options.onMaxBuffer, 'options.onMaxBuffer', MAX_BUFFER_MODES, { default: 'truncate' })
  const reject = check.bool(options.reject, 'options.reject', { default: true })
  const stripFinalNewline = check.bool(options.stripFinalNewline, 'options.stripFinalNewline', { default: false })
  const all = check.bool(options.all, 'options.all', { default: false })
  return { options, input, encoding, maxBuffer, reject, onMaxBuffer, stripFinalNewline, all }
}

/** Drops one final '\n' (or '\r\n') from a string or Buffer. */
function stripNewline(value) {
  if (typeof value === 'string') {
    if (value.endsWith('\r\n')) return value.slice(0, -2)
    return value.endsWith('\n') ? value.slice(0, -1) : value
  }
  let end = value.length
  if (end > 0 && value[end - 1] === 10) end--
  if (end > 0 && end < value.length && value[end - 1] === 13) end--
  return end === value.length ? value : value.subarray(0, end)
}

async function runExec(child, command, args, o) {
  const { options, input, encoding, maxBuffer, reject, onMaxBuffer, stripFinalNewline } = o
  const state = { truncated: false, tooLarge: false }
  const cap = onMaxBuffer === 'kill' ? maxBuffer : Math.max(maxBuffer * DRAIN_FACTOR, DRAIN_MIN)
  const over = () => {
    if (state.tooLarge) return
    state.tooLarge = true
    child.kill()
  }
  /** @type {{ chunks: Buffer[], cut: boolean, add(chunk: Buffer): void } | null} */
  let all = null
  if (o.all) {
    const chunks = []
    let size = 0
    const limit = maxBuffer * 2
    all = {
      chunks,
      cut: false,
      add(chunk) {
        if (size >= limit) {
          all.cut = true
          return
        }
        const part = size + chunk.length > limit ? chunk.subarray(0, limit - size) : chunk
        if (part !== chunk) all.cut = true
        chunks.push(part)
        size += part.length
      },
    }
  }
  const out = collect(child.stdout, maxBuffer, cap, state, all, over)
  const err = collect(child.stderr, maxBuffer, cap, state, all, over)
  if (input !== undefined && child.stdin) child.stdin.end(input)
  const decode = ({ chunks, cut }) => {
    const buf = Buffer.concat(chunks)
    let value
    if (encoding === 'buffer' || encoding === null) value = buf
    else {
      // A head cut at maxBuffer may end inside a character: drop that partial character rather
      // than decode it as U+FFFD, which the child never wrote.
      const multiByte = /^(utf-?8|utf-?16le|ucs-?2)$/i.test(encoding)
      value = cut && multiByte ? new StringDecoder(encoding).write(buf) : buf.toString(encoding)
    }
    return stripFinalNewline ? stripNewline(value) : value
  }
  let result
  let failure
  try {
    result = await child.exited
  } catch (e) {
    failure = e
  }
  if (!failure || failure.code !== 'ERR_SPAWN') {
    const ended = Promise.all([out.done, err.done])
    let timer
    const late = new Promise((resolve) => {
      timer = setTimeout(resolve, PIPE_GRACE_MS, 'late')
    })
    const outcome = await Promise.race([ended, late])
    clearTimeout(timer)
    if (outcome === 'late') {
      child.stdout?.destroy()
      child.stderr?.destroy()
    }
  }
  const stdout = decode(out)
  const stderr = decode(err)
  const fields = { stdout, stderr, truncated: state.truncated }
  if (all !== null) fields.all = decode(all)
  if (options.signal?.aborted) {
    throw Object.assign(abortError(options.signal.reason), fields)
  }
  if (failure) throw Object.assign(failure, fields)
  const { code, signal, durationMs } = result
  const line = [command, ...(args ?? [])].join(' ')
  if (state.tooLarge) {
    const which = onMaxBuffer === 'kill' ? `maxBuffer (${maxBuffer} bytes)` : `${cap} bytes`
    const e = new CorepoolError(
      'ERR_OUTPUT_TOO_LARGE',
      `Command wrote more than ${which} to stdout or stderr and was killed: ${line}`,
    )
    throw Object.assign(e, fields, { exitCode: code, signal, durationMs, command: line })
  }
  if (reject && (code !== 0 || signal !== null)) {
    const why = signal !== null ? `was killed with ${signal}` : `failed with exit code ${code}`
    const tail = typeof stderr === 'string' && stderr.trim() !== '' ? `\n${stderr.trim().slice(-2000)}` : ''
    const e = new CorepoolError('ERR_CHILD_EXIT', `Command ${why}: ${line}${tail}`)
    throw Object.assign(e, fields, { exitCode: code, signal, durationMs, command: line })
  }
  return { ...fields, code, signal, durationMs }
}

/** Adds the handle of a running exec to its promise (execa-style). */
function execHandle(promise, child) {
  const rejected = child === null ? promise.then(() => undefined) : null
  rejected?.catch(noop)
  Object.defineProperties(promise, {
    child: { value: child },
    pid: { get: () => child?.pid },
    stdin: { value: child?.stdin ?? null },
    stdout: { value: child?.stdout ?? null },
    stderr: { value: child?.stderr ?? null },
    exited: { value: child?.exited ?? rejected },
    kill: { value: (signal, options) => (child === null ? false : child.kill(signal, options)) },
  })
  return promise
}

/**
 * Runs `command` with `args` (no shell) and resolves `{ stdout, stderr, code, signal, truncated,
 * durationMs, all? }`. The returned promise is also a handle on the running child: `pid`,
 * `kill()`, `stdin`/`stdout`/`stderr`, `exited`, `child`. Output beyond `maxBuffer` bytes per
 * stream is dropped (the head is kept, `truncated` set) or, with `onMaxBuffer: 'kill'`, kills the
 * child and rejects with ERR_OUTPUT_TOO_LARGE. A non-zero exit or a signal rejects with
 * ERR_CHILD_EXIT unless `reject: false`.
 */
function exec(command, args, options) {
  let child = null
  let promise
  try {
    unsupported()
    ;[args, options] = optionalArgs(args, options)
    const o = execOptions(options)
    if (o.options.signal?.aborted) throw abortError(o.options.signal.reason)
    // `input` wins over a stdin given in `stdio`, as in child_process and execa.
    const given = Array.isArray(o.options.stdio) ? o.options.stdio[0] : o.options.stdio
    const stdin = o.input !== undefined ? 'pipe' : (given ?? 'ignore')
    child = spawn(command, args, { ...o.options, stdio: [stdin, 'pipe', 'pipe'] })
    promise = runExec(child, command, args, o)
  } catch (err) {
    promise = Promise.reject(asArgError(err))
  }
  return execHandle(promise, child)
}

module.exports = { spawn, exec, fork, Child }
// What checking the caller's arguments throws (a getter of `options`, say) is ERR_INVALID_ARG.
guardMethods(module.exports, ['spawn', 'fork'])
