'use strict'
// corepool as the executor of BullMQ workers: a BullMQ `Worker` whose processor runs each job as
// a corepool task (a native kernel call or an export of the pool's JS task module), so the
// event loop stays free for lock renewal, and a producer-side cancel that reaches the running
// task. The mapping of corepool outcomes to BullMQ's is described in docs/bullmq.md.
const { Pool, STATS_COUNTERS } = require('./pool')
const { SharedCounters } = require('./counters')
const { invalidArg, describe } = require('./errors')
const { longDelay, longTimeout } = require('./timers')
const check = require('./validate')

function requirePeer(name) {
  try {
    return require(name)
  } catch (err) {
    const missing = err?.code === 'MODULE_NOT_FOUND' && /'(bullmq|ioredis)'/.exec(String(err.message))?.[1]
    if (!missing) throw err
    const peer = new Error(
      `corepool/bullmq needs its optional peer dependencies bullmq and ioredis; "${missing}" is not installed ` +
        '(npm install bullmq ioredis)',
      { cause: err },
    )
    peer.code = 'MODULE_NOT_FOUND'
    throw peer
  }
}

const bullmq = requirePeer('bullmq')
const ioredis = requirePeer('ioredis')
const { Worker, UnrecoverableError, WaitingError } = bullmq
const Redis = ioredis.Redis ?? ioredis.default ?? ioredis

/** The per-host counters createWorker adds to (option `counters`), in slot order. */
const COUNTER_NAMES = Object.freeze([
  'corepool_bullmq_jobs_started_total',
  'corepool_bullmq_jobs_completed_total',
  'corepool_bullmq_jobs_failed_total',
  'corepool_bullmq_jobs_cancelled_total',
  'corepool_bullmq_jobs_requeued_total',
  'corepool_bullmq_jobs_stalled_total',
  'corepool_bullmq_lock_losses_total',
])
const ACTIVE_GAUGE = 'corepool_bullmq_jobs_active'
const HELP = {
  corepool_tasks_completed_total: 'Pool tasks that completed',
  corepool_tasks_failed_total: 'Pool tasks that failed',
  corepool_tasks_cancelled_total: 'Pool tasks that were aborted or timed out',
  corepool_bullmq_jobs_started_total: 'BullMQ job attempts started on this host',
  corepool_bullmq_jobs_completed_total: 'BullMQ job attempts that completed',
  corepool_bullmq_jobs_failed_total: 'BullMQ job attempts that failed (errors and timeouts)',
  corepool_bullmq_jobs_cancelled_total: 'BullMQ jobs cancelled by their producer while on this host',
  corepool_bullmq_jobs_requeued_total: 'BullMQ jobs aborted on close past drainTimeout and moved back to wait',
  corepool_bullmq_jobs_stalled_total: "Stalled jobs this host's stalled checker moved back to wait",
  corepool_bullmq_lock_losses_total: 'BullMQ job attempts aborted because their lock was lost',
  corepool_bullmq_jobs_active: 'BullMQ jobs running on this host',
}

// corepool errors that no retry can fix: the job fails at once (UnrecoverableError).
const UNRECOVERABLE_CODES = new Set(['ERR_INVALID_ARG', 'ERR_CORRUPT_INPUT', 'ERR_OUTPUT_TOO_LARGE'])
// How long a cancel that reached a worker before the job's attempt registered here is kept (ms).
const EARLY_CANCEL_TTL = 60_000
const DEFAULT_DRAIN_TIMEOUT = 30_000
// After the remaining tasks were aborted, how long BullMQ gets to hand their jobs back.
const CLOSE_TIMEOUT = 10_000
const DEFAULT_PROGRESS_INTERVAL = 100

const cancelChannel = (queueBase, workerId) => queueBase.toKey(`corepool:cancel:${workerId}`)
// The raw Redis client of a Queue or Worker (BullMQ 6 keeps it on the Redis backend).
const redisClient = (queueBase) => (queueBase.getBackend?.() ?? queueBase).client
// The failedReason of a cancelled job (running or not started yet).
const CANCELLED = 'ERR_ABORTED: the job was aborted: cancelled'
const cancelledReason = (reason) => `${CANCELLED}${reason !== undefined ? ` (${String(reason)})` : ''}`
// cancelJob's one round trip: KEYS job hash, its lock, the completed and failed sets; ARGV job
// id, failedReason. A job not finished yet gets BullMQ's deferred failure (field `defa`): a
// worker that takes it next (its first attempt or a retry) fails it without running it. Returns
// ['missing'], ['finished'] or ['marked', lock token or ''].
const CANCEL_SCRIPT = `
if redis.call('EXISTS', KEYS[1]) == 0 then return {'missing'} end
if redis.call('ZSCORE', KEYS[3], ARGV[1]) or redis.call('ZSCORE', KEYS[4], ARGV[1]) then return {'finished'} end
redis.call('HSET', KEYS[1], 'defa', ARGV[2])
return {'marked', redis.call('GET', KEYS[2]) or ''}
`

/**
 * Opens (creating it if needed) the named shared-memory region of a host: the pool's task
 * counters and createWorker's job counters side by side, so one `toPrometheus()` shows both and
 * every process of the host adds to the same totals. Pass it as `counters` to both `new Pool`
 * and `createWorker`.
 */
function hostCounters(name) {
  return SharedCounters.open(name, {
    names: [...STATS_COUNTERS, ...COUNTER_NAMES, { name: ACTIVE_GAUGE, type: 'gauge' }],
    create: true,
  })
}

function parseOptions(queueName, pool, options) {
  check.string(queueName, 'queueName', { nonEmpty: true, required: true })
  check.instance(pool, 'pool', Pool, { what: 'corepool Pool', required: true })
  if (typeof options !== 'object' || options === null) {
    throw invalidArg(`options must be an object with a connection, got ${describe(options)}`)
  }
  const { task, run, concurrency, timeout, retryTimeouts, progress, counters, drainTimeout, signals, closePool } =
    options
  const workerOptions = check.object(options.worker, 'options.worker')
  const connection = options.connection ?? workerOptions.connection
  if (typeof connection !== 'object' || connection === null) {
    throw invalidArg(`options.connection must be ioredis options or an ioredis instance, got ${describe(connection)}`)
  }
  if (task !== undefined && run !== undefined) throw invalidArg('options.task and options.run are exclusive')
  if (task !== undefined && typeof task !== 'string' && typeof task !== 'function') {
    throw invalidArg(`options.task must be a function or the name of a task-module export, got ${describe(task)}`)
  }
  check.fn(run, 'options.run')
  check.int(concurrency, 'options.concurrency', { min: 1 })
  if (typeof timeout !== 'function') check.timeout(timeout, 'options.timeout')
  check.bool(retryTimeouts, 'options.retryTimeouts')
  check.bool(closePool, 'options.closePool')
  let progressInterval = 0 // no progress forwarded
  if (progress === true) progressInterval = DEFAULT_PROGRESS_INTERVAL
  else if (typeof progress === 'object' && progress !== null) {
    progressInterval = check.duration(progress.interval, 'options.progress.interval', {
      positive: true,
      default: DEFAULT_PROGRESS_INTERVAL,
    })
  } else if (progress !== undefined && progress !== false) {
    throw invalidArg(`options.progress must be a boolean or { interval }, got ${describe(progress)}`)
  }
  if (counters !== undefined) {
    check.instance(counters, 'options.counters', SharedCounters)
    if (![...COUNTER_NAMES, ACTIVE_GAUGE].some((name) => counters.names.includes(name))) {
      throw invalidArg(`options.counters has none of the job counters (${COUNTER_NAMES.join(', ')})`)
    }
  }
  let signalList = ['SIGTERM', 'SIGINT']
  if (signals === false) signalList = []
  else if (signals !== undefined) {
    if (!Array.isArray(signals) || !signals.every((s) => typeof s === 'string' && /^SIG[A-Z0-9]+$/.test(s))) {
      throw invalidArg(`options.signals must be false or an array of signal names, got ${describe(signals)}`)
    }
    signalList = signals
  }
  return {
    task,
    run,
    connection,
    workerOptions,
    concurrency: concurrency ?? workerOptions.concurrency ?? pool.threads,
    timeout,
    retryTimeouts: retryTimeouts ?? true,
    progressInterval,
    counters,
    drainTimeout: check.duration(drainTimeout, 'options.drainTimeout', { default: DEFAULT_DRAIN_TIMEOUT }),
    signals: signalList,
    closePool: closePool ?? true,
  }
}

// Handles that close on a signal; one handler per signal closes them all, then exits.
const onSignal = new Map() // signal -> listener
const signalHandles = new Set()

function watchSignals(handle, signals) {
  if (signals.length === 0) return () => {}
  signalHandles.add(handle)
  for (const sig of signals) {
    if (onSignal.has(sig)) continue
    const listener = () => {
      const closing = [...signalHandles].map((h) => h.close())
      Promise.all(closing).then(
        () => process.exit(0),
        (err) => {
          console.error(`corepool/bullmq: closing on ${sig} failed:`, err)
          process.exit(1)
        },
      )
    }
    onSignal.set(sig, listener)
    process.on(sig, listener)
  }
  return () => {
    signalHandles.delete(handle)
    if (signalHandles.size > 0) return
    for (const [sig, listener] of onSignal) process.removeListener(sig, listener)
    onSignal.clear()
  }
}

function codedError(err, Class = Error) {
  const message = err?.code ? `${err.code}: ${err.message}` : String(err?.message ?? err)
  const mapped = new Class(message, { cause: err })
  if (err?.code !== undefined) mapped.code = err.code
  return mapped
}

/**
 * A BullMQ Worker on queue `queueName` whose jobs run as tasks on `pool`. Throws ERR_INVALID_ARG
 * on bad arguments. Returns `{ worker, close(), counters, metrics() }`.
 */
function createWorker(queueName, pool, options) {
  const o = parseOptions(queueName, pool, options)
  const active = new Map() // job id -> record of the running attempt
  const counters = o.counters
  const names = new Set(counters?.names ?? [])
  const count = (name, n = 1) => {
    if (names.has(name)) counters.add(name, n)
  }
  let progressSlots = null // lazily made region of one gauge per concurrent job
  const freeSlots = []
  // Cancels received for a job with no attempt registered here (yet): job id -> [reason, when].
  const earlyCancels = new Map()

  // Declared with two parameters, so BullMQ makes no AbortController of its own per job: its
  // worker.cancelJob and cancelAllJobs are routed to abortJob below instead. Nothing here costs
  // a Redis round trip: a cancel arrives on the worker's channel, or as BullMQ's deferred
  // failure on a job not started yet (BullMQ fails it without calling the processor).
  const processor = async (job, token) => {
    const record = { job, token, controller: new AbortController(), cause: null, reason: undefined }
    // An older attempt of this job still running here lost its lock (the job was moved back to
    // wait and taken again): it must not go on unowned.
    const previous = active.get(job.id)
    if (previous !== undefined) lockLost(previous)
    active.set(job.id, record)
    count(COUNTER_NAMES[0])
    count(ACTIVE_GAUGE, 1)
    if (earlyCancels.size > 0) {
      const early = earlyCancels.get(job.id)
      if (early !== undefined) {
        earlyCancels.delete(job.id)
        abortJob(record, 'cancel', early[0])
      }
    }
    const progress = o.progressInterval > 0 || o.run !== undefined ? progressForwarder(job, o.progressInterval) : null
    try {
      const result = await execute(job, record, progress)
      // A result that beat a close() or lock-loss abort is still handed to BullMQ (completing is
      // better than running the job again); a cancel wins over a result.
      if (record.cause === 'cancel') throw record.controller.signal.reason
      if (progress !== null) await progress.flush()
      count(COUNTER_NAMES[1])
      return result
    } catch (err) {
      throw await failure(err, record)
    } finally {
      progress?.stop()
      if (active.get(job.id) === record) active.delete(job.id)
      count(ACTIVE_GAUGE, -1)
    }
  }

  function execute(job, record, progress) {
    const signal = record.controller.signal
    // A time limit (0 or Infinity: none); the job's record says undefined for none.
    const limit = check.timeout(typeof o.timeout === 'function' ? o.timeout(job) : o.timeout, 'options.timeout(job)')
    const timeout = limit === Infinity ? undefined : limit
    if (o.run !== undefined) {
      return o.run(job, {
        pool,
        signal,
        timeout,
        token: record.token,
        progress: progress.report,
        get progressCounter() {
          return progress.counter()
        },
      })
    }
    if (typeof o.task === 'function') return o.task(job.data, { pool, signal, timeout })
    const runOptions = { signal, timeout }
    if (o.task !== undefined && o.task !== 'default') runOptions.name = o.task
    if (progress !== null) runOptions.progress = progress.report
    return pool.run(job.data, runOptions)
  }

  // Forwards a running job's progress to job.updateProgress, at most once per interval (the last
  // value always goes out before the job finishes). Values come from `report(value)` (run()'s
  // context, or the pool's progress channel) or from a shared gauge that a task or kernel sets.
  function progressForwarder(job, interval) {
    let pending
    let hasPending = false
    let last = 0
    let sending = Promise.resolve()
    let wake = null
    let poll = null
    let slot = null
    let seen = 0n
    const send = () => {
      if (!hasPending) return
      hasPending = false
      last = Date.now()
      const value = pending
      sending = sending.then(() => job.updateProgress(value)).catch(() => {})
    }
    const report = (value) => {
      if (interval === 0) return
      pending = value
      hasPending = true
      const wait = last + interval - Date.now()
      if (wait <= 0) send()
      else wake ??= longTimeout(() => ((wake = null), send()), wait)
    }
    const readGauge = () => {
      const v = progressSlots.getBigInt(slot)
      if (v !== seen) {
        seen = v
        report(Number(v))
      }
    }
    return {
      report,
      counter() {
        if (interval === 0) return undefined
        if (slot === null) {
          if (progressSlots === null) {
            const gauges = Array.from({ length: o.concurrency }, (_, i) => `progress_${i}`)
            progressSlots = new SharedCounters({ names: gauges.map((name) => ({ name, type: 'gauge' })) })
            freeSlots.push(...gauges.reverse())
          }
          // BullMQ runs at most `concurrency` jobs at once, so a slot is always free.
          slot = freeSlots.pop()
          progressSlots.set(slot, 0)
          // Any interval works as written (setInterval would run every 1 ms past 2^31 - 1 ms).
          const every = () => {
            poll = longTimeout(() => {
              readGauge()
              every()
            }, interval)
          }
          every()
        }
        return { handle: progressSlots.handle, name: slot }
      },
      async flush() {
        if (poll !== null) readGauge()
        wake?.clear()
        wake = null
        send()
        await sending
      },
      stop() {
        wake?.clear()
        if (poll !== null) {
          poll.clear()
          freeSlots.push(slot)
        }
      },
    }
  }

  function lockLost(record) {
    if (record.cause !== null) return
    count(COUNTER_NAMES[6])
    abortJob(record, 'lock')
  }

  function abortJob(record, cause, reason) {
    if (record.cause !== null) return
    record.cause = cause
    record.reason = reason
    const why = { cancel: 'cancelled', lock: 'its lock was lost', drain: 'the worker is closing' }[cause]
    const err = new Error(`the job was aborted: ${why}${reason !== undefined ? ` (${String(reason)})` : ''}`)
    err.code = 'ERR_ABORTED'
    err.name = 'AbortError'
    record.controller.abort(err)
  }

  // The error BullMQ sees for a failed attempt (see the mapping in docs/bullmq.md).
  async function failure(err, record) {
    switch (record.cause) {
      case 'cancel':
        count(COUNTER_NAMES[3])
        return codedError(record.controller.signal.reason, UnrecoverableError)
      case 'lock':
        // The job is no longer ours: its stalled check puts it back in wait.
        return codedError(record.controller.signal.reason)
      case 'drain':
        try {
          await record.job.moveToWait(record.token)
          count(COUNTER_NAMES[4])
          return new WaitingError()
        } catch (moveErr) {
          return codedError(moveErr)
        }
    }
    count(COUNTER_NAMES[2])
    const code = err?.code
    if (UNRECOVERABLE_CODES.has(code) || err?.name === 'UnrecoverableError') return codedError(err, UnrecoverableError)
    if (code === 'ERR_TASK_TIMEOUT' && !o.retryTimeouts) return codedError(err, UnrecoverableError)
    return err instanceof Error && code === undefined ? err : codedError(err)
  }

  const worker = new Worker(queueName, processor, {
    ...o.workerOptions,
    connection: o.connection,
    concurrency: o.concurrency,
    autorun: false,
  })
  // BullMQ emits 'error' for failures it recovers from (a lost lock, a dropped connection);
  // without a listener EventEmitter would throw them.
  const onError = (err) => {
    if (worker.listenerCount('error') === 1) console.error(`corepool/bullmq: ${err?.message ?? err}`)
  }
  worker.on('error', onError)
  worker.on('lockRenewalFailed', (jobIds) => {
    for (const id of jobIds) {
      const record = active.get(id)
      if (record !== undefined) lockLost(record)
    }
  })
  worker.on('stalled', () => count(COUNTER_NAMES[5]))
  // A job cancelled before it started: BullMQ failed it from its deferred failure, unrun.
  worker.on('failed', (job, err) => {
    const reason = job?.deferredFailure
    if (typeof reason === 'string' && reason.startsWith(CANCELLED) && err?.message === reason) count(COUNTER_NAMES[3])
  })
  // BullMQ's own cancel of a job running in this process.
  worker.cancelJob = (jobId, reason) => {
    const record = active.get(String(jobId))
    if (record === undefined) return false
    abortJob(record, 'cancel', reason)
    return true
  }
  worker.cancelAllJobs = (reason) => {
    for (const record of active.values()) abortJob(record, 'cancel', reason)
  }

  // Cancels reach this worker on a channel of its own: cancelJob finds the worker from the job's
  // lock token, so a cancel is one PUBLISH delivered to one subscriber, whatever the host count.
  const subscriber = typeof o.connection.duplicate === 'function' ? o.connection.duplicate() : new Redis(o.connection)
  subscriber.on('error', onError)
  subscriber.on('message', (channel, message) => {
    let id
    let reason
    try {
      ;({ id, reason } = JSON.parse(message))
    } catch {
      return
    }
    id = String(id)
    reason ??= undefined
    const record = active.get(id)
    if (record !== undefined) return abortJob(record, 'cancel', reason)
    // The lock names this worker, so the attempt is about to start here (the message can
    // overtake the job on the other connection) or has just ended.
    const now = Date.now()
    for (const [key, [, at]] of earlyCancels) {
      if (now - at < EARLY_CANCEL_TTL && earlyCancels.size < 10_000) break
      earlyCancels.delete(key)
    }
    earlyCancels.set(id, [reason, now])
  })
  let running = null
  const ready = Promise.all([subscriber.subscribe(cancelChannel(worker, worker.id)), worker.waitUntilReady()]).then(
    () => {
      if (o.workerOptions.autorun !== false && closing === null) {
        running = worker.run().catch(onError)
      }
    },
  )
  ready.catch(onError)
  // Settles when the cancel subscription is up and the worker takes jobs.
  const started = ready.then(() => undefined)
  started.catch(() => {})

  let closing = null
  let unwatch = () => {}
  const handle = {
    worker,
    counters,
    ready: started,
    /** The counters (pool and jobs) as Prometheus text; '' without `counters`. */
    metrics(promOptions) {
      if (counters === undefined) return ''
      const known = Object.fromEntries(Object.entries(HELP).filter(([name]) => names.has(name)))
      const help =
        typeof promOptions?.help === 'object' ? { ...known, ...promOptions.help } : (promOptions?.help ?? known)
      return counters.toPrometheus({ ...promOptions, help })
    },
    /**
     * Stops taking jobs, lets running ones finish for up to drainTimeout ms, aborts the rest
     * (BullMQ puts them back in wait), then closes the worker, the cancel subscription and
     * (with closePool, the default) the pool.
     */
    close() {
      return (closing ??= closeAll())
    },
  }

  async function closeAll() {
    try {
      await drainAndClose()
    } finally {
      // Only now: a repeated signal (a process-group kill sends one to every member) must find
      // the handler still there, not the default action that would kill the draining process.
      unwatch()
    }
  }

  async function drainAndClose() {
    const workerClosed = worker.close()
    workerClosed.catch(() => {})
    const drain = longDelay(o.drainTimeout)
    await Promise.race([workerClosed, drain.promise])
    drain.handle.clear()
    for (const record of active.values()) abortJob(record, 'drain')
    const bound = longDelay(CLOSE_TIMEOUT)
    const closedInTime = await Promise.race([
      workerClosed.then(
        () => true,
        () => true,
      ),
      bound.promise.then(() => false),
    ])
    bound.handle.clear()
    if (!closedInTime) await worker.disconnect().catch(() => {})
    await ready.catch(() => {})
    await subscriber.quit().catch(() => subscriber.disconnect())
    await running
    if (o.closePool) await pool.close()
  }

  unwatch = watchSignals(handle, o.signals)
  return handle
}

/**
 * Producer side: cancels job `jobId` of `queue` (a BullMQ Queue). A running job's worker is told
 * at once and aborts its task; a job that has not started yet (waiting, delayed, or waiting for a
 * retry) fails as cancelled when a worker takes it, without running. The job fails without retry
 * (UnrecoverableError). Resolves with 'running' (the worker running it was told), 'pending' (it
 * will fail when it starts), 'finished' (too late: it already completed or failed) or 'missing'
 * (no such job).
 */
async function cancelJob(queue, jobId, reason) {
  if (typeof queue !== 'object' || queue === null || typeof queue.toKey !== 'function') {
    throw invalidArg(`queue must be a BullMQ Queue, got ${describe(queue)}`)
  }
  if (!((typeof jobId === 'string' && jobId !== '') || Number.isSafeInteger(jobId))) {
    throw invalidArg(`jobId must be a non-empty string, got ${describe(jobId)}`)
  }
  if (reason !== undefined && typeof reason !== 'string') {
    throw invalidArg(`reason must be a string, got ${describe(reason)}`)
  }
  const id = String(jobId)
  const client = await redisClient(queue)
  // One script: the deferred failure is set and the lock read at the same instant, so either a
  // worker took the job before (it holds the lock: it is told below) or it takes it after and
  // BullMQ fails it from the deferred failure.
  const keys = [queue.toKey(id), queue.toKey(`${id}:lock`), queue.toKey('completed'), queue.toKey('failed')]
  const [state, token] = await client.eval(CANCEL_SCRIPT, keys.length, ...keys, id, cancelledReason(reason))
  if (state !== 'marked') return state
  if (token !== '') {
    const workerId = token.slice(0, token.lastIndexOf(':'))
    const receivers = await client.publish(cancelChannel(queue, workerId), JSON.stringify({ id, reason }))
    if (receivers > 0) return 'running'
  }
  return 'pending'
}

module.exports = { createWorker, cancelJob, hostCounters, COUNTER_NAMES, ACTIVE_GAUGE }
