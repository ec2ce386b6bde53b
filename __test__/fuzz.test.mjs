// Property tests over the public API with hostile input: whatever a caller passes, the process
// survives, async functions return a promise (never a synchronous throw), constructors throw
// only corepool errors, and every rejection or throw carries a documented `err.code`.
//
// The seed is fixed so CI is repeatable; `npm run fuzz` runs longer with a random seed
// (FUZZ_RUNS, FUZZ_SEED). Child-process entry points only ever run harmless commands.
import { test, after } from 'node:test'
import assert from 'node:assert/strict'
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'
import fc from 'fast-check'
import corepool from '../index.js'
import testing from '../testing.js'
import errors from '../lib/errors.js'

const { CODES } = errors
const RUNS = Number(process.env.FUZZ_RUNS ?? 120)
const SEED = process.env.FUZZ_SEED === undefined ? 20261201 : Number(process.env.FUZZ_SEED)
const params = { numRuns: RUNS, seed: SEED, endOnFailure: true, includeErrorInReport: true }

const pool = new corepool.Pool({ threads: 2 })
const echoTask = new URL('./fixtures/echo-task.mjs', import.meta.url).pathname
const jsPool = new corepool.Pool({ threads: 1, filename: echoTask })
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-fuzz-'))
after(async () => {
  await pool.destroy()
  await jsPool.destroy()
  fs.rmSync(tmp, { recursive: true, force: true })
})

// Anything that escapes as an unhandled rejection is a bug (a submitted task nobody observes).
const unhandled = []
process.on('unhandledRejection', (err) => unhandled.push(err))

// How a value is shown in a counterexample (the fuzzer's own printing must not trip on it).
const named = (value, name) => Object.defineProperty(value, fc.toStringMethod, { value: () => name })

function detached() {
  const buffer = new ArrayBuffer(8)
  structuredClone(buffer, { transfer: [buffer] })
  return named(buffer, 'detachedArrayBuffer')
}

// Durations and sizes a caller might pass: the boundaries where overflow and clamping live.
const hostileNumber = fc.constantFrom(
  0,
  -0,
  -1,
  0.5,
  1,
  2 ** 31 - 1,
  2 ** 31,
  2 ** 32,
  2 ** 53 - 1,
  2 ** 53,
  9.3e21,
  1e22,
  1e300,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Infinity,
  -Infinity,
  NaN,
)

function detachedView() {
  const view = new Uint8Array(8)
  structuredClone(view.buffer, { transfer: [view.buffer] })
  return named(view, 'detachedUint8Array')
}

const throwingSignal = () => ({
  [fc.toStringMethod]: () => 'throwingSignal',
  aborted: false,
  reason: undefined,
  addEventListener() {
    throw new Error('no listeners here')
  },
  removeEventListener() {
    throw new Error('no listeners here')
  },
})

const getterBomb = () =>
  new Proxy(
    {},
    {
      has: (_, key) => key === fc.toStringMethod,
      get(_, key) {
        if (key === fc.toStringMethod) return () => 'getterBomb'
        throw new Error('getter bomb')
      },
    },
  )

const hostileValue = fc.oneof(
  { weight: 3, arbitrary: hostileNumber },
  { weight: 2, arbitrary: fc.anything({ maxDepth: 1 }) },
  fc.constantFrom(undefined, null, '', 'a\0b', true, 1n, -1n, Symbol('s')),
  fc.constant(null).map(() => detached()),
  fc.constant(null).map(() => detachedView()),
  fc.constant(null).map(() => throwingSignal()),
  fc.constant(null).map(() => getterBomb()),
  fc.constant(null).map(() => new AbortController().signal),
  fc.constant(null).map(() => AbortSignal.abort('gone')),
  fc.constant(null).map(() => new SharedArrayBuffer(4)),
  fc.constant(null).map(() => Buffer.from('bytes')),
  fc.constant(null).map(() => new Float64Array([3, 1, 2])),
)

const taskOptionNames = ['signal', 'timeout', 'priority', 'pool']
const hostileOptions = (names) =>
  fc.oneof(hostileValue, fc.dictionary(fc.constantFrom(...names, ...taskOptionNames), hostileValue, { maxKeys: 4 }))

function checkError(err, where) {
  assert.ok(err instanceof Error, `${where}: threw a non-Error ${String(err)}`)
  assert.ok(CODES.has(err.code), `${where}: undocumented code ${String(err.code)} (${err.message})`)
}

/** Calls an async API; it must return a promise that settles with a documented code. */
async function asyncCall(where, fn) {
  let result
  try {
    result = fn()
  } catch (err) {
    assert.fail(`${where} threw synchronously: ${err?.code} ${err?.message}`)
  }
  assert.ok(result instanceof Promise, `${where} did not return a promise`)
  await result.then(
    () => {},
    (err) => checkError(err, where),
  )
}

/** Calls a synchronous API (constructor, method): it may throw, only with a documented code. */
function syncCall(where, fn) {
  try {
    return fn()
  } catch (err) {
    checkError(err, where)
    return undefined
  }
}

async function property(name, arbitraries, body) {
  await fc.assert(
    fc.asyncProperty(...arbitraries, async (...args) => {
      await body(...args)
    }),
    params,
  )
  assert.deepEqual(unhandled, [], `${name}: unhandled rejections`)
}

test('sqrtSum, countPrimes and the Float64 kernels: hostile input and options', async () => {
  await property('numeric', [hostileValue, hostileOptions([])], async (value, options) => {
    for (const fn of ['sqrtSum', 'countPrimes']) {
      // A valid but huge n would run for minutes: only small numbers reach the kernel here.
      const n = typeof value === 'number' && value > 1e6 && Number.isFinite(value) ? 10 : value
      await asyncCall(fn, () => corepool[fn](n, options))
    }
    for (const fn of ['sortFloat64', 'statsFloat64', 'sumFloat64', 'meanFloat64', 'minFloat64', 'maxFloat64']) {
      await asyncCall(fn, () => corepool[fn](value, options))
    }
  })
})

test('hash, hashMany, hashFile and Hasher: hostile input and options', async () => {
  const file = path.join(tmp, 'data')
  fs.writeFileSync(file, 'abc')
  const algorithms = fc.oneof(fc.constantFrom('sha256', 'blake3', 'xxh3', 'md5', 'SHA256', 'nope'), hostileValue)
  const options = hostileOptions(['encoding', 'seed'])
  await property('hash', [algorithms, hostileValue, options], async (algorithm, data, o) => {
    await asyncCall('hash', () => corepool.hash(algorithm, data, o))
    await asyncCall('hashMany', () => corepool.hashMany(algorithm, [data, data], o))
    await asyncCall('hashMany(items)', () => corepool.hashMany(algorithm, data, o))
    await asyncCall('hashFile', () => corepool.hashFile(algorithm, typeof data === 'string' ? file : data, o))
    const hasher = syncCall('createHasher', () => corepool.createHasher(algorithm, o))
    if (hasher !== undefined) {
      await asyncCall('hasher.update', () => hasher.update(data))
      await asyncCall('hasher.digest', () => hasher.digest(data))
      await asyncCall('hasher.digest again', () => hasher.digest())
    }
    syncCall('new Hasher', () => new corepool.Hasher(algorithm, o))
  })
})

test('compress and decompress: hostile input, formats and limits', async () => {
  const formats = fc.oneof(fc.constantFrom('gzip', 'deflate', 'deflate-raw', 'brotli', 'zstd', 'lz4'), hostileValue)
  const options = hostileOptions(['level', 'maxOutputLength'])
  await property('compress', [formats, hostileValue, options], async (format, data, o) => {
    await asyncCall('compress', () => corepool.compress(format, data, o))
    await asyncCall('decompress', () => corepool.decompress(format, data, o))
  })
})

test('passwordHash, passwordVerify and resize: hostile input and options', async () => {
  const options = hostileOptions([
    'memoryCost',
    'timeCost',
    'parallelism',
    'width',
    'height',
    'fit',
    'format',
    'quality',
    'maxPixels',
  ])
  await property('password/resize', [hostileValue, hostileValue, options], async (a, b, o) => {
    // Valid argon2 parameters may be costly; keep them cheap when the fuzzer picks huge ones.
    let cheap = o
    try {
      if (typeof o?.memoryCost === 'number') cheap = { ...o, memoryCost: Math.min(o.memoryCost, 64) }
    } catch {
      // A getter bomb: passed on as it is.
    }
    await asyncCall('passwordHash', () => corepool.passwordHash(a, cheap))
    await asyncCall('passwordVerify', () => corepool.passwordVerify(a, b, cheap))
    await asyncCall('resize', () => corepool.resize(a, o))
  })
})

test('Pool: hostile constructor options, run() data and options, testing.sleep', async () => {
  const ctorOptions = hostileOptions([
    'threads',
    'maxQueue',
    'niceIncrement',
    'filename',
    'minThreads',
    'idleTimeout',
    'abortGrace',
    'counters',
  ])
  await property('Pool', [ctorOptions, hostileValue, hostileOptions(['name', 'transferList'])], async (c, data, o) => {
    const p = syncCall('new Pool', () => new corepool.Pool(c))
    if (p !== undefined) await p.destroy()
    await asyncCall('pool.run', () => jsPool.run(data, o))
    await asyncCall('pool.run(name)', () => jsPool.run(data, { name: typeof data === 'string' ? data : 'nope' }))
    await asyncCall('testing.sleep', () => testing.sleep(typeof data === 'number' ? Math.min(data, 5) : data, o))
  })
})

test('SharedCounters: hostile names, values and options', async () => {
  const counters = new corepool.SharedCounters({ names: ['a', 'b'] })
  const names = fc.oneof(fc.constantFrom('a', 'b', 'missing'), hostileValue)
  await property(
    'counters',
    [names, hostileValue, hostileOptions(['names', 'prefix', 'labels', 'help'])],
    async (name, value, o) => {
      syncCall('inc', () => counters.inc(name))
      syncCall('add', () => counters.add(name, value))
      syncCall('set', () => counters.set(name, value))
      syncCall('get', () => counters.get(name))
      syncCall('compareExchange', () => counters.compareExchange(name, value, value))
      syncCall('snapshot', () => counters.snapshot(o))
      syncCall('toPrometheus', () => counters.toPrometheus(o))
      // A wait for a value that is already reached, or a short timeout: never a long wait.
      await asyncCall('waitFor', () =>
        counters.waitFor(name, typeof value === 'number' ? Math.min(value, 0) : value, { timeout: 1 }),
      )
      syncCall('new SharedCounters', () => new corepool.SharedCounters({ names: [value] }))
      syncCall('fromHandle', () => corepool.SharedCounters.fromHandle(value))
    },
  )
})

// The cases the fuzzer first found, pinned down.
test('durations past what an Instant holds mean "no limit", never a crash', async () => {
  assert.equal(await corepool.sqrtSum(10, { timeout: 1e22, pool }), await corepool.sqrtSum(10))
  assert.equal(await corepool.sqrtSum(10, { timeout: 1e300, pool }), await corepool.sqrtSum(10))
  assert.equal(await testing.sleep(1, { timeout: Number.MAX_VALUE, pool }), undefined)
  for (const abortGrace of [1e300, Infinity]) {
    const p = new corepool.Pool({ threads: 1, filename: echoTask, abortGrace })
    assert.deepEqual(await p.run({ ok: abortGrace }), { ok: abortGrace })
    await p.destroy()
  }
})

// The API's one duration rule (README, "Durations"): a duration is accepted exactly when it is a
// number >= 0, Infinity included, whichever API takes it; every accepted value works as written.
test('one duration rule across the API: accepted iff a number >= 0', async () => {
  const counters = new corepool.SharedCounters({ names: ['reached'] })
  const duration = fc.oneof(hostileNumber, fc.double(), fc.constantFrom('10', null, true, 10n, {}, []))
  // true: accepted (it may still time out); false: ERR_INVALID_ARG.
  const settled = (promise, ...accepted) =>
    promise.then(
      () => true,
      (err) => {
        if (err.code === 'ERR_INVALID_ARG') return false
        assert.ok(accepted.includes(err.code), `${err.code}: ${err.message}`)
        return true
      },
    )
  const constructed = (make) => {
    try {
      make().destroy()
      return true
    } catch (err) {
      assert.equal(err.code, 'ERR_INVALID_ARG', err.message)
      return false
    }
  }
  await fc.assert(
    fc.asyncProperty(duration, async (ms) => {
      const valid = typeof ms === 'number' && ms >= 0
      const outcomes = {
        'task timeout': await settled(corepool.sqrtSum(1, { pool, timeout: ms }), 'ERR_TASK_TIMEOUT'),
        'waitFor timeout': await settled(counters.waitFor('reached', 0, { timeout: ms })),
        closeTimeout: constructed(() => new corepool.Pool({ threads: 1, closeTimeout: ms })),
        abortGrace: constructed(() => new corepool.Pool({ threads: 1, abortGrace: ms })),
        idleTimeout: constructed(() => new corepool.Pool({ threads: 1, idleTimeout: ms })),
      }
      for (const [option, accepted] of Object.entries(outcomes))
        assert.equal(accepted, valid, `${option}: ${String(ms)}`)
    }),
    params,
  )
  for (const key of ['timeout', 'forceKillAfter']) {
    for (const ms of [0, 0.5, 2 ** 31, 1e22, Infinity]) {
      const child = corepool.spawn('true', [], { stdio: 'ignore', [key]: ms })
      // Accepted; a timeout as short as 0.5 ms may also elapse before `true` exits.
      assert.ok(await settled(child.exited, 'ERR_CHILD_TIMEOUT'), `${key}: ${ms}`)
    }
    for (const ms of [-1, -Infinity, NaN, '10']) {
      assert.throws(() => corepool.spawn('true', [], { [key]: ms }), { code: 'ERR_INVALID_ARG' }, `${key}: ${ms}`)
    }
  }
})

test('a look-alike signal whose methods throw refuses the call; nothing is left unobserved', async () => {
  for (const call of [
    () => corepool.sqrtSum(10, { signal: throwingSignal() }),
    () => corepool.hash('sha256', 'x', { signal: throwingSignal() }),
    () => jsPool.run(1, { signal: throwingSignal() }),
  ]) {
    await assert.rejects(call(), { code: 'ERR_INVALID_ARG' })
  }
  await new Promise((resolve) => setImmediate(resolve))
  assert.deepEqual(unhandled, [])
})

test('arguments whose getters throw are ERR_INVALID_ARG, in messages too', async () => {
  await assert.rejects(corepool.sqrtSum(getterBomb()), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(corepool.hash('sha256', getterBomb()), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new corepool.Pool(getterBomb()), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new corepool.SharedCounters(getterBomb()), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => corepool.SharedCounters.fromHandle(getterBomb()), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(corepool.compress('gzip', detachedView()), { code: 'ERR_INVALID_ARG' })
})

test('a Supervisor refuses an oversized child id instead of copying it around', () => {
  const sup = new corepool.Supervisor()
  assert.throws(() => sup.add({ id: 'x'.repeat(64 << 20), command: 'true' }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => sup.add({ id: 'x'.repeat(257), command: 'true' }), { code: 'ERR_INVALID_ARG' })
  sup.add({ id: 'x'.repeat(256), command: 'true' })
})

test('spawn, exec and Supervisor: hostile arguments and options (harmless commands only)', async () => {
  // Only these programs ever run; `shell` is never fuzzed (no command line is ever interpreted).
  const commands = fc.oneof(fc.constantFrom('true', 'false', 'corepool-missing-command', ''), hostileValue)
  const childOptions = fc.oneof(
    hostileValue,
    fc.dictionary(
      fc.constantFrom(
        'cwd',
        'env',
        'argv0',
        'stdio',
        'detached',
        'uid',
        'gid',
        'timeout',
        'killSignal',
        'forceKillAfter',
        'signal',
        'input',
        'encoding',
        'maxBuffer',
        'reject',
        'extendEnv',
      ),
      hostileValue,
      { maxKeys: 4 },
    ),
  )
  const args = fc.oneof(fc.array(hostileValue, { maxLength: 3 }), hostileValue)
  await property('children', [commands, args, childOptions, hostileValue], async (command, a, o, signal) => {
    if (o !== null && typeof o === 'object' && !Array.isArray(o)) {
      try {
        o = { ...o, shell: false, stdio: o.stdio === 'inherit' ? 'ignore' : o.stdio }
      } catch {
        // A getter bomb is passed on as it is.
      }
    }
    await asyncCall('exec', () => corepool.exec(command, a, o))
    const child = syncCall('spawn', () => corepool.spawn(command, a, o))
    if (child !== undefined) {
      syncCall('child.kill', () => child.kill(signal))
      await child.exited.then(
        () => {},
        (err) => checkError(err, 'child.exited'),
      )
    }
    const sup = syncCall('new Supervisor', () => new corepool.Supervisor(o))
    if (sup !== undefined) {
      syncCall('sup.add', () => sup.add({ id: 'c', command, args: a, options: o, shutdownMs: signal }))
      await asyncCall('sup.stop', () => sup.stop())
    }
  })
})

test('the rest of the surface: close, listenReusePort, fork, Child and Supervisor methods, histograms, cluster', async () => {
  const counters = new corepool.SharedCounters({
    names: ['n', { name: 'h', type: 'histogram', buckets: [1, 2] }, { name: 'g', type: 'gauge', perProcess: true }],
  })
  const echoChild = new URL('./fixtures/echo-child.cjs', import.meta.url).pathname
  await property('surface', [hostileValue, hostileValue], async (a, b) => {
    await asyncCall('pool.close', () => new corepool.Pool({ threads: 1 }).close(a))
    syncCall('listenReusePort', () => corepool.listenReusePort(a, b))
    syncCall('observe', () => counters.observe(a, b))
    syncCall('observe(h)', () => counters.observe('h', a))
    syncCall('histogram', () => counters.histogram(a))
    syncCall('perProcess', () => counters.perProcess(a))
    syncCall('set(g)', () => counters.set('g', a))
    counters.inc('n')
    await asyncCall('waitFor', () => counters.waitFor('n', 1, a))
    // Only a module path nothing can be made of, or corepool's own options checks, run here.
    let startable = false
    try {
      startable = a !== null && typeof a === 'object' && ('module' in a || 'command' in a)
    } catch {
      // A getter bomb is passed on as it is.
    }
    if (!startable) await asyncCall('cluster', () => corepool.cluster(a))

    const child = syncCall('spawn', () => corepool.spawn('true', [], { stdio: 'pipe' }))
    syncCall('child.lines', () => child.lines(a))
    syncCall('child.send (not forked)', () => child.send(a))
    syncCall('child.kill', () => child.kill(b))
    await child.exited.then(
      () => {},
      (err) => checkError(err, 'child.exited'),
    )

    const sup = syncCall('new Supervisor', () => new corepool.Supervisor())
    await asyncCall('sup.restart', () => sup.restart(a))
    await asyncCall('sup.remove', () => sup.remove(a))
    syncCall('sup.status', () => sup.status(a))
    syncCall('sup.add', () => sup.add(a))
    await asyncCall('sup.start', () => sup.start(a))
    await asyncCall('sup.stop', () => sup.stop(b))
    await asyncCall('sup.start after stop', () => sup.start())
  })
  // Forked children cost a Node process each: fewer runs.
  await fc.assert(
    fc.asyncProperty(hostileValue, fc.oneof(fc.constant(undefined), hostileValue), async (a, b) => {
      // Mostly a child that starts, so that its methods meet the hostile values.
      const child = syncCall('fork', () => corepool.fork(echoChild, b === undefined ? [] : a, b ?? { silent: true }))
      if (child === undefined) return
      syncCall('child.send', () => child.send(a))
      syncCall('child.send(callback)', () => child.send('bye', b))
      child.kill('SIGKILL') // whether or not 'bye' went out
      await child.exited.then(
        () => {},
        (err) => checkError(err, 'fork exited'),
      )
      syncCall('child.send after exit', () => child.send(a))
    }),
    { ...params, numRuns: Math.min(RUNS, 25) },
  )
  assert.deepEqual(unhandled, [], 'fork: unhandled rejections')
})
