import { test as nodeTest, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { execFile } from 'node:child_process'
import { once } from 'node:events'
import fs from 'node:fs'
import { setTimeout as delay } from 'node:timers/promises'
import { promisify } from 'node:util'
import { SharedCounters } from '../index.mjs'
import { countersFixture, code, CHILD, INDEX } from './fixtures/counters-helpers.mjs'
import { hammerCounter } from '../testing.mjs'

// Every test is bounded: a regression must fail, never hang the suite.
const test = (name, fn) => nodeTest(name, { timeout: 120_000 }, fn)

const { regionName, startChild } = countersFixture('')

function runWorker(source, workerData) {
  const w = new Worker(`const { SharedCounters } = require(${JSON.stringify(INDEX)});\n${source}`, {
    eval: true,
    workerData,
  })
  return new Promise((resolve, reject) => {
    w.once('error', reject)
    w.once('exit', (c) => (c === 0 ? resolve() : reject(new Error(`worker exited with ${c}`))))
  })
}

describe('SharedCounters basics', () => {
  test('inc, add, get, set, compareExchange, snapshot, reset', () => {
    const c = new SharedCounters({ names: ['requests_total', { name: 'inflight', type: 'gauge' }] })
    assert.deepEqual(c.names, ['requests_total', 'inflight'])
    assert.equal(c.name, null)
    assert.equal(c.get('requests_total'), 0)
    c.inc('requests_total')
    c.add('requests_total', 41)
    c.add('inflight', -3)
    assert.equal(c.get('requests_total'), 42)
    assert.equal(c.get('inflight'), -3)
    c.set('inflight', 7n)
    assert.equal(c.getBigInt('inflight'), 7n)
    assert.equal(c.compareExchange('inflight', 7, 9), 7)
    assert.equal(c.compareExchange('inflight', 7, 11), 9)
    assert.equal(c.compareExchange('inflight', 9n, 1n), 9n)
    assert.deepEqual(c.snapshot(), { requests_total: 42, inflight: 1 })
    assert.deepEqual(c.snapshot({ bigint: true }), { requests_total: 42n, inflight: 1n })
    c.reset('inflight')
    assert.deepEqual(c.snapshot(), { requests_total: 42, inflight: 0 })
    c.reset()
    assert.deepEqual(c.snapshot(), { requests_total: 0, inflight: 0 })
  })

  test('64-bit values: BigInt in and out, Number when safe, wrapping at 64 bits', () => {
    const c = new SharedCounters({ names: ['big'] })
    c.set('big', 2n ** 62n)
    c.add('big', 2n ** 62n - 1n)
    assert.equal(c.getBigInt('big'), 2n ** 63n - 1n)
    c.inc('big')
    assert.equal(c.getBigInt('big'), -(2n ** 63n))
    c.set('big', Number.MAX_SAFE_INTEGER)
    assert.equal(c.get('big'), Number.MAX_SAFE_INTEGER)
  })

  test('array fast path is the same memory as the methods, slots padded apart', () => {
    const c = new SharedCounters({ names: ['a', 'b'] })
    assert.ok(c.array instanceof BigInt64Array)
    const a = c.index('a')
    const b = c.index('b')
    assert.ok((b - a) * 8 >= 64, 'slots are at least a cache line apart')
    Atomics.add(c.array, a, 5n)
    c.inc('a')
    assert.equal(c.get('a'), 6)
    assert.equal(Atomics.load(c.array, a), 6n)
    assert.equal(c.get('b'), 0)
  })

  test('two instances over one region (fromHandle in the same thread) see each other', () => {
    const c = new SharedCounters({ names: ['x'] })
    const d = SharedCounters.fromHandle(structuredClone(c.handle))
    d.add('x', 3)
    assert.equal(c.get('x'), 3)
    assert.notEqual(c.array, d.array)
  })

  test('named region: created with mode 0600, shared by open, unlink', () => {
    const name = regionName('named')
    assert.throws(() => SharedCounters.open(name), code('ERR_SHM'))
    const c = SharedCounters.open(name, { names: ['a', 'b'], create: true })
    assert.equal(c.name, name)
    assert.equal(fs.statSync(`/dev/shm/${name}`).mode & 0o777, 0o600)
    c.add('b', 5)
    const d = SharedCounters.open(name)
    assert.deepEqual(d.names, ['a', 'b'])
    assert.equal(d.get('b'), 5)
    const e = SharedCounters.open(name, { names: ['a', 'b'], create: true })
    assert.equal(e.get('b'), 5, 'create: true opens an existing region with the same names')
    assert.equal(SharedCounters.fromHandle(c.handle).get('b'), 5)
    assert.equal(SharedCounters.unlink(name), true)
    assert.equal(SharedCounters.unlink(name), false)
    d.inc('a')
    assert.equal(c.get('a'), 1, 'open instances keep working after unlink')
  })
})

describe('exact totals under concurrency', () => {
  test('4 worker_threads × 1 000 000 inc() = 4 000 000', async () => {
    const c = new SharedCounters({ names: ['hits'] })
    const src = `const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
      for (let i = 0; i < 1e6; i++) c.inc('hits')`
    await Promise.all([0, 1, 2, 3].map(() => runWorker(src, c.handle)))
    assert.equal(c.get('hits'), 4_000_000)
  })

  test('4 child processes × 1 000 000 inc() on a named region = 4 000 000', async () => {
    const name = regionName('procs')
    const c = SharedCounters.open(name, { names: ['hits', 'go'], create: true })
    const children = [0, 1, 2, 3].map(() => startChild(['inc', name, '1000000']))
    // Start them together so they really contend.
    await delay(200)
    c.inc('go')
    const codes = await Promise.all(children.map((ch) => once(ch, 'exit')))
    assert.deepEqual(
      codes.map(([c]) => c),
      [0, 0, 0, 0],
    )
    assert.equal(c.get('hits'), 4_000_000)
  })

  test('Rust threads, the main thread and a worker together are exact', async () => {
    const c = new SharedCounters({ names: ['hits'] })
    const rust = hammerCounter(c, 'hits', { threads: 2, iterations: 1_000_000 })
    const worker = runWorker(
      `const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
       const a = c.array, i = c.index('hits')
       for (let n = 0; n < 1e6; n++) Atomics.add(a, i, 1n)`,
      c.handle,
    )
    for (let n = 0; n < 1_000_000; n++) c.inc('hits')
    assert.equal(await rust, true)
    await worker
    assert.equal(c.get('hits'), 4_000_000)
  })

  test('a process SIGKILLed mid-loop loses none of the increments it made', async () => {
    const name = regionName('kill')
    const c = SharedCounters.open(name, { names: ['hits', { name: 'made', type: 'gauge' }], create: true })
    const child = startChild(['loop', name])
    await c.waitFor('made', 200_000, { timeout: 30_000 })
    child.kill('SIGKILL')
    const [, signal] = await once(child, 'exit')
    assert.equal(signal, 'SIGKILL')
    const hits = c.get('hits')
    const made = c.get('made')
    // The child records `made = i` right after its i-th increment; it may die between the two.
    assert.ok(made >= 200_000)
    assert.ok(hits === made || hits === made + 1, `hits ${hits}, made ${made}`)
    await delay(20)
    assert.equal(c.get('hits'), hits, 'nothing was buffered or lost')
  })
})

describe('waitFor', () => {
  test('resolves at once when the value is already >= target', async () => {
    const c = new SharedCounters({ names: ['x'] })
    c.add('x', 5)
    assert.equal(await c.waitFor('x', 3), 5)
    assert.equal(await c.waitFor('x', 5n), 5n)
  })

  test('wakes when another thread increments', async () => {
    const c = new SharedCounters({ names: ['x'] })
    const waiting = c.waitFor('x', 1000, { timeout: 30_000 })
    await runWorker(
      `const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
       for (let i = 0; i < 1000; i++) c.inc('x')`,
      c.handle,
    )
    assert.equal(await waiting, 1000)
  })

  test('wakes on raw writes through the array and on Rust-side adds', async () => {
    const c = new SharedCounters({ names: ['x'] })
    const waiting = c.waitFor('x', 1, { timeout: 30_000 })
    await delay(10)
    Atomics.add(c.array, c.index('x'), 1n)
    assert.equal(await waiting, 1)
    const rust = c.waitFor('x', 1001, { timeout: 30_000 })
    await hammerCounter(c, 'x', { threads: 1, iterations: 1000 })
    assert.equal(await rust, 1001)
  })

  test('wakes on a change made by another process', async () => {
    const name = regionName('wait')
    const c = SharedCounters.open(name, { names: ['hits', 'go'], create: true })
    const waiting = c.waitFor('hits', 1000, { timeout: 30_000 })
    const child = startChild(['inc', name, '1000'])
    c.inc('go')
    assert.equal(await waiting, 1000)
    await once(child, 'exit')
  })

  test('predicate form re-evaluates on every change it sees', async () => {
    const c = new SharedCounters({ names: ['g'] })
    c.set('g', 10)
    const seen = []
    const waiting = c.waitFor(
      'g',
      (v) => {
        seen.push(v)
        return v < 0
      },
      { timeout: 30_000 },
    )
    await delay(20)
    c.add('g', -5)
    await delay(20)
    c.add('g', -10)
    assert.equal(await waiting, -5)
    assert.equal(seen[0], 10)
    assert.equal(seen.at(-1), -5)
    await assert.rejects(
      c.waitFor('g', () => {
        throw new Error('boom')
      }),
      /boom/,
    )
  })

  test('times out with ERR_TASK_TIMEOUT', async () => {
    const c = new SharedCounters({ names: ['x'] })
    const huge = c.waitFor('x', 1, { timeout: 1e300 })
    c.inc('x')
    assert.equal(await huge, 1, 'a huge timeout is no timeout')
    c.reset()
    await assert.rejects(c.waitFor('x', 1, { timeout: 30 }), code('ERR_TASK_TIMEOUT'))
    await assert.rejects(
      c.waitFor('x', () => false, { timeout: 30 }),
      code('ERR_TASK_TIMEOUT'),
    )
  })

  test('aborts with ERR_ABORTED (AbortError), before and while waiting', async () => {
    const c = new SharedCounters({ names: ['x'] })
    await assert.rejects(c.waitFor('x', 1, { signal: AbortSignal.abort() }), (err) => {
      assert.equal(err.name, 'AbortError')
      return code('ERR_ABORTED')(err)
    })
    const ac = new AbortController()
    const waiting = c.waitFor('x', 1, { signal: ac.signal, timeout: undefined })
    await delay(10)
    ac.abort(new Error('stop'))
    await assert.rejects(waiting, (err) => code('ERR_ABORTED')(err) && err.cause?.message === 'stop')
  })

  test('a pending waitFor keeps Node alive; a settled one and the counters do not', async () => {
    const run = promisify(execFile)
    const { stdout } = await run(process.execPath, [CHILD, 'wait-timeout', 'unused', '150'])
    const result = JSON.parse(stdout)
    assert.equal(result.code, 'ERR_TASK_TIMEOUT')
    assert.ok(result.elapsed >= 150)
    const idle = await run(process.execPath, [CHILD, 'idle', 'unused'], { timeout: 20_000 })
    assert.equal(idle.stdout.trim(), 'done')
  })
})

describe('waitFor threads', () => {
  const waitingThreads = () =>
    fs
      .readdirSync('/proc/self/task')
      .filter((t) => fs.readFileSync(`/proc/self/task/${t}/comm`, 'utf8').startsWith('corepool-wait')).length
  // Waits of earlier tests (cancelled or settled) may still be finishing: let them.
  async function threadsSettleTo(n) {
    for (let i = 0; i < 500 && waitingThreads() !== n; i++) await delay(10)
    return waitingThreads()
  }

  test('terminating a worker with a pending waitFor ends its waiting thread', async () => {
    const c = new SharedCounters({ names: ['x'] })
    assert.equal(await threadsSettleTo(0), 0)
    const w = new Worker(
      `const { SharedCounters } = require(${JSON.stringify(INDEX)})
       const { workerData, parentPort } = require('node:worker_threads')
       SharedCounters.fromHandle(workerData).waitFor('x', 1)
       parentPort.postMessage('waiting')`,
      { eval: true, workerData: c.handle },
    )
    try {
      await once(w, 'message')
      assert.equal(await threadsSettleTo(1), 1)
    } finally {
      await w.terminate()
    }
    assert.equal(await threadsSettleTo(0), 0)
  })

  test('a settled waitFor leaves no thread behind', async () => {
    const c = new SharedCounters({ names: ['x'] })
    const p = c.waitFor('x', 1)
    c.inc('x')
    await p
    await assert.rejects(c.waitFor('x', 5, { timeout: 10 }), code('ERR_TASK_TIMEOUT'))
    assert.equal(await threadsSettleTo(0), 0)
  })
})

describe('Prometheus export', () => {
  // A strict reader of the text exposition format 0.0.4 (what `promtool check metrics` parses).
  function parseExposition(text) {
    assert.ok(text.endsWith('\n'), 'ends with a newline')
    const types = new Map()
    const samples = []
    const helps = []
    const name = '[a-zA-Z_:][a-zA-Z0-9_:]*'
    const labelValue = '"(?:[^"\\\\\\n]|\\\\[\\\\n"])*"'
    const sample = new RegExp(
      `^(${name})(?:\\{((?:[a-zA-Z_][a-zA-Z0-9_]*=${labelValue})(?:,[a-zA-Z_][a-zA-Z0-9_]*=${labelValue})*)?\\})? (-?[0-9]+(?:\\.[0-9]+)?(?:e[+-]?[0-9]+)?|NaN|[+-]Inf)$`,
    )
    for (const line of text.slice(0, -1).split('\n')) {
      let m
      if (line === '') continue // blank lines are allowed (prom-client separates metrics with one)
      if ((m = line.match(new RegExp(`^# TYPE (${name}) (counter|gauge|untyped|summary|histogram)$`)))) {
        assert.ok(!types.has(m[1]), `one TYPE line per metric (${m[1]})`)
        types.set(m[1], m[2])
      } else if ((m = line.match(new RegExp(`^# HELP (${name}) (.*)$`)))) {
        helps.push(m[1])
        assert.ok(!/\\[^\\n]/.test(m[2].replace(/\\\\/g, '')), 'HELP escapes only \\\\ and \\n')
      } else if ((m = line.match(sample))) {
        assert.ok(types.has(m[1]), `TYPE comes before the samples of ${m[1]}`)
        samples.push({ name: m[1], labels: m[2] ?? '', value: Number(m[3]) })
      } else {
        assert.fail(`not a valid exposition line: ${JSON.stringify(line)}`)
      }
    }
    return { types, samples, helps }
  }

  test('no options: names as they are, types from the region', () => {
    const c = new SharedCounters({ names: ['http_requests_total', { name: 'queue_depth', type: 'gauge' }] })
    c.add('http_requests_total', 12)
    c.set('queue_depth', -2)
    const text = c.toPrometheus()
    const { types, samples, helps } = parseExposition(text)
    assert.deepEqual(helps, ['http_requests_total', 'queue_depth'], 'every metric has a HELP line')
    assert.deepEqual(
      [...types],
      [
        ['http_requests_total', 'counter'],
        ['queue_depth', 'gauge'],
      ],
    )
    assert.deepEqual(samples, [
      { name: 'http_requests_total', labels: '', value: 12 },
      { name: 'queue_depth', labels: '', value: -2 },
    ])
  })

  test('prefix, help and labels, escaped', () => {
    const c = new SharedCounters({ names: ['a_total', 'b_total'] })
    c.inc('b_total')
    const text = c.toPrometheus({
      prefix: 'app_',
      help: { a_total: 'Line one\nback\\slash' },
      labels: { instance: 'host "1"\\x\n', shard: 3 },
    })
    const { samples } = parseExposition(text)
    assert.match(text, /^# HELP app_a_total Line one\\nback\\\\slash$/m)
    assert.equal(samples.length, 2)
    assert.equal(samples[1].name, 'app_b_total')
    assert.equal(samples[1].labels, 'instance="host \\"1\\"\\\\x\\n",shard="3"')
    assert.equal(samples[1].value, 1)
    parseExposition(c.toPrometheus({ help: 'same for all' }))
  })

  test('registers with prom-client and reads the shared value at scrape time', async () => {
    const { Registry } = await import('prom-client')
    const register = new Registry()
    const c = new SharedCounters({ names: ['jobs_total', { name: 'busy', type: 'gauge' }] })
    assert.deepEqual(c.registerWithPromClient(register, { prefix: 'svc_', labels: { app: 'x' } }), [
      'svc_jobs_total',
      'svc_busy',
    ])
    c.add('jobs_total', 5)
    c.set('busy', 2)
    const { samples, types } = parseExposition(await register.metrics())
    assert.equal(types.get('svc_jobs_total'), 'counter')
    assert.equal(types.get('svc_busy'), 'gauge')
    assert.deepEqual(
      samples.map((s) => [s.name, s.labels, s.value]),
      [
        ['svc_jobs_total', 'app="x"', 5],
        ['svc_busy', 'app="x"', 2],
      ],
    )
    c.inc('jobs_total')
    assert.match(await register.metrics(), /^svc_jobs_total\{app="x"\} 6$/m)
    register.resetMetrics()
    assert.equal(c.get('jobs_total'), 6, 'resetMetrics does not zero shared counters')
  })
})

describe('bad input gives the documented error codes', () => {
  test('constructor: wrong types and bad counter names → ERR_INVALID_ARG', () => {
    const bad = [
      undefined,
      null,
      42,
      {},
      { names: 'a' },
      { names: [] },
      { names: [1] },
      { names: [''] },
      { names: ['a-b'] },
      { names: ['../x'] },
      { names: ['9lives'] },
      { names: ['a'.repeat(256)] },
      { names: ['a', 'a'] },
      { names: [{ name: 'a', type: 'summary' }] },
      { names: [{ name: 'a', type: 'histogram', buckets: [] }] },
      { names: [{ name: 'a', type: 'histogram', buckets: [2, 1] }] },
      { names: [{ name: 'a', type: 'histogram', buckets: [1, Infinity] }] },
      { names: [{ name: 'a', type: 'histogram', buckets: [NaN] }] },
      { names: [{ name: 'a', type: 'counter', buckets: [1] }] },
      { names: [{ name: 'a', type: 'counter', perProcess: true }] },
      { names: [{ name: 'a', type: 'gauge', perProcess: 'yes' }] },
      { names: ['a{b="1"}', { name: 'a{b="2"}', type: 'gauge' }] },
      { names: ['a{b=1}'] },
      { names: ['a{le="1"}'] },
      { names: ['a'], processes: 0 },
      { names: ['a'], processes: 1.5 },
      { names: Array.from({ length: 4097 }, (_, i) => `c${i}`) },
    ]
    for (const options of bad) {
      assert.throws(() => new SharedCounters(options), code('ERR_INVALID_ARG'), JSON.stringify(options)?.slice(0, 60))
    }
    assert.equal(new SharedCounters({ names: ['a'.repeat(255)] }).names[0].length, 255)
  })

  test('region names: bad, ../x, too long → ERR_SHM; wrong types → ERR_INVALID_ARG', () => {
    for (const name of ['', '../x', 'a/b', '.hidden', '-x', 'a b', 'x'.repeat(201)]) {
      assert.throws(() => SharedCounters.open(name, { names: ['a'], create: true }), code('ERR_SHM'), name)
      assert.throws(() => SharedCounters.unlink(name), code('ERR_SHM'), name)
    }
    assert.ok(!fs.existsSync('/dev/x'))
    for (const name of [undefined, 1, null, {}]) {
      assert.throws(() => SharedCounters.open(name, { names: ['a'], create: true }), code('ERR_INVALID_ARG'))
      assert.throws(() => SharedCounters.unlink(name), code('ERR_INVALID_ARG'))
    }
    const ok = regionName('args')
    assert.throws(() => SharedCounters.open(ok, { create: true }), code('ERR_INVALID_ARG'))
    assert.throws(() => SharedCounters.open(ok, { names: ['a'], create: 'yes' }), code('ERR_INVALID_ARG'))
    assert.throws(() => SharedCounters.open(ok, 'a'), code('ERR_INVALID_ARG'))
    assert.throws(() => SharedCounters.open(ok, { names: ['a-b'], create: true }), code('ERR_INVALID_ARG'))
    assert.throws(() => SharedCounters.open(ok), code('ERR_SHM'), 'missing region without create')
    SharedCounters.open(ok, { names: ['a', 'b'], create: true })
    assert.throws(() => SharedCounters.open(ok, { names: ['b', 'a'] }), code('ERR_SHM'), 'other names')
    assert.throws(() => SharedCounters.open(ok, { names: [{ name: 'a', type: 'gauge' }, 'b'] }), code('ERR_SHM'))
  })

  test('a region of another version, corrupt, truncated or empty → ERR_SHM', () => {
    const name = regionName('corrupt')
    SharedCounters.open(name, { names: ['a'], create: true })
    const path = `/dev/shm/${name}`
    const good = fs.readFileSync(path)

    const version = Buffer.from(good)
    version.writeUInt32LE(2, 8)
    fs.writeFileSync(path, version)
    assert.throws(
      () => SharedCounters.open(name),
      (err) => code('ERR_SHM')(err) && /version 2/.test(err.message),
    )

    const magic = Buffer.from(good)
    magic.write('NOTMAGIC', 0)
    fs.writeFileSync(path, magic)
    assert.throws(() => SharedCounters.open(name), code('ERR_SHM'))

    const names = Buffer.from(good)
    names[66] ^= 1
    fs.writeFileSync(path, names)
    assert.throws(
      () => SharedCounters.open(name),
      (err) => code('ERR_SHM')(err) && /checksum/.test(err.message),
    )

    fs.writeFileSync(path, good.subarray(0, good.length - 64))
    assert.throws(
      () => SharedCounters.open(name),
      (err) => code('ERR_SHM')(err) && /truncated/.test(err.message),
    )
    fs.writeFileSync(path, good.subarray(0, 20))
    assert.throws(() => SharedCounters.open(name), code('ERR_SHM'))
    fs.writeFileSync(path, '')
    assert.throws(() => SharedCounters.open(name), code('ERR_SHM'))
    fs.writeFileSync(path, Buffer.alloc(4096, 0xff))
    assert.throws(() => SharedCounters.open(name), code('ERR_SHM'))

    fs.writeFileSync(path, good)
    assert.equal(SharedCounters.open(name).get('a'), 0)
  })

  test('unknown counters and wrong value types → ERR_INVALID_ARG', async () => {
    const c = new SharedCounters({ names: ['a'] })
    const calls = [
      () => c.inc('nope'),
      () => c.inc(),
      () => c.inc(0),
      () => c.add('nope', 1),
      () => c.get('nope'),
      () => c.getBigInt('nope'),
      () => c.set('nope', 1),
      () => c.reset('nope'),
      () => c.index('nope'),
      () => c.compareExchange('nope', 0, 1),
      () => c.add('a', 1.5),
      () => c.add('a', '1'),
      () => c.add('a', NaN),
      () => c.add('a', 2 ** 53),
      () => c.add('a', 2n ** 63n),
      () => c.add('a'),
      () => c.set('a', -(2n ** 63n) - 1n),
      () => c.set('a', null),
      () => c.compareExchange('a', 0, 1.5),
      () => c.snapshot('x'),
      () => c.toPrometheus({ prefix: 'bad-prefix' }),
      () => c.toPrometheus({ labels: { 'bad-label': 'x' } }),
      () => c.toPrometheus({ labels: { __reserved: 'x' } }),
      () => c.toPrometheus({ labels: { a: {} } }),
      () => c.toPrometheus({ help: { nope: 'x' } }),
      () => c.toPrometheus({ help: 3 }),
      () => c.registerWithPromClient({}),
      () => SharedCounters.fromHandle(undefined),
      () => SharedCounters.fromHandle({ type: 'other' }),
      () => SharedCounters.fromHandle({ type: 'corepool.SharedCounters' }),
    ]
    for (const call of calls) assert.throws(call, code('ERR_INVALID_ARG'), call.toString())
    assert.equal(c.get('a'), 0, 'no failed call changed the value')
    // Async: never throws synchronously.
    for (const call of [
      () => c.waitFor('nope', 1),
      () => c.waitFor('a', 1.5),
      () => c.waitFor('a', 'x'),
      () => c.waitFor('a', 1, { timeout: -1 }),
      () => c.waitFor('a', 1, { timeout: 'soon' }),
      () => c.waitFor('a', 1, { signal: {} }),
      () => c.waitFor('a', 1, 'opts'),
    ]) {
      let p
      assert.doesNotThrow(() => (p = call()))
      await assert.rejects(p, code('ERR_INVALID_ARG'), call.toString())
    }
    // The API's one duration rule: a `timeout` of 0 or Infinity is none, and a limit too long
    // for any timer or deadline is just never reached.
    for (const timeout of [0, Infinity, 2 ** 31, 1e22]) {
      const waiting = c.waitFor('a', 1, { timeout })
      c.add('a', 1)
      assert.equal(await waiting, 1, `timeout: ${timeout}`)
      c.set('a', 0)
    }
  })

  test('handles: an anonymous handle from another process or a dropped region → ERR_SHM', () => {
    const c = new SharedCounters({ names: ['a'] })
    assert.throws(() => SharedCounters.fromHandle({ ...c.handle, pid: process.pid + 1 }), code('ERR_SHM'))
    assert.throws(() => SharedCounters.fromHandle({ ...c.handle, id: 1e9 }), code('ERR_SHM'))
  })
})
