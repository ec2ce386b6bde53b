// Shared-memory histograms and per-process gauges of SharedCounters (docs/counters.md).
import { test as nodeTest, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { Worker } from 'node:worker_threads'
import { once } from 'node:events'
import { setTimeout as delay } from 'node:timers/promises'
import { SharedCounters } from '../index.mjs'
import { countersFixture, code, CHILD, INDEX } from './fixtures/counters-helpers.mjs'

const test = (name, fn) => nodeTest(name, { timeout: 120_000 }, fn)

const { regionName, startChild } = countersFixture('h-')

/** Samples of a Prometheus text exposition: [name, labels, value] (TYPE checked per family). */
function samples(text) {
  const types = new Map()
  const out = []
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue
    let m
    if ((m = line.match(/^# TYPE (\S+) (counter|gauge|histogram)$/))) {
      assert.ok(!types.has(m[1]), `one TYPE line per family (${m[1]})`)
      types.set(m[1], m[2])
    } else if ((m = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/))) {
      const family = [m[1], m[1].replace(/_(bucket|sum|count)$/, '')].find((n) => types.has(n))
      assert.ok(family, `TYPE comes before ${m[1]}`)
      out.push([m[1], m[2] ?? '', Number(m[3])])
    } else {
      assert.fail(`not an exposition line: ${JSON.stringify(line)}`)
    }
  }
  return { types, samples: out }
}

describe('histograms', () => {
  test('observe counts into the first bucket whose bound is >= the value, sum and count', () => {
    const c = new SharedCounters({
      names: [
        'req_total',
        { name: 'lat', type: 'histogram', buckets: [0.1, 1, 10] },
        { name: 'dflt', type: 'histogram' },
      ],
    })
    for (const v of [0.05, 0.1, 0.5, 1, 3, 10, 11, 1e9, -5, NaN]) c.observe('lat', v)
    assert.deepEqual(c.histogram('lat'), {
      buckets: [
        { le: 0.1, count: 3 },
        { le: 1, count: 5 },
        { le: 10, count: 7 },
        { le: Infinity, count: 10 - 1 },
      ],
      sum: 0.05 + 0.1 + 0.5 + 1 + 3 + 10 + 11 + 1e9 - 5,
      count: 9,
    })
    // prom-client's default buckets.
    assert.deepEqual(
      c.histogram('dflt').buckets.map((b) => b.le),
      [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, Infinity],
    )
    c.observe('lat', Infinity)
    assert.equal(c.histogram('lat').buckets[3].count, 10)
    c.reset('lat')
    assert.deepEqual(
      c.histogram('lat').buckets.map((b) => b.count),
      [0, 0, 0, 0],
    )
    assert.equal(c.histogram('lat').sum, 0)
    c.observe('lat', 2)
    c.inc('req_total')
    c.reset()
    assert.equal(c.histogram('lat').count, 0)
    assert.equal(c.get('req_total'), 0)
    assert.deepEqual(c.snapshot(), { req_total: 0 }, 'histograms are not in snapshot()')
  })

  test('wrong uses → ERR_INVALID_ARG', async () => {
    const c = new SharedCounters({ names: ['n', { name: 'h', type: 'histogram', buckets: [1] }] })
    for (const bad of [
      () => c.observe('n', 1),
      () => c.observe('nope', 1),
      () => c.observe('h', '1'),
      () => c.observe('h', 1n),
    ]) {
      assert.throws(bad, code('ERR_INVALID_ARG'))
    }
    for (const bad of [
      () => c.inc('h'),
      () => c.add('h', 1),
      () => c.get('h'),
      () => c.set('h', 1),
      () => c.index('h'),
    ]) {
      assert.throws(bad, (err) => code('ERR_INVALID_ARG')(err) && /is a histogram/.test(err.message))
    }
    assert.throws(() => c.histogram('n'), code('ERR_INVALID_ARG'))
    await assert.rejects(c.waitFor('h', 1), code('ERR_INVALID_ARG'))
  })

  test('exact across 4 worker threads and the main thread', async () => {
    const c = new SharedCounters({ names: [{ name: 'h', type: 'histogram', buckets: [0.5, 2, 8] }] })
    const src = `const { SharedCounters } = require(${JSON.stringify(INDEX)})
      const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
      const values = [0.25, 1, 4, 64]
      for (let i = 0; i < 200000; i++) c.observe('h', values[i & 3])`
    const workers = [0, 1, 2, 3].map(() => {
      const w = new Worker(src, { eval: true, workerData: c.handle })
      return once(w, 'exit')
    })
    for (let i = 0; i < 200000; i++) c.observe('h', [0.25, 1, 4, 64][i & 3])
    assert.deepEqual(
      (await Promise.all(workers)).map(([code]) => code),
      [0, 0, 0, 0],
    )
    const h = c.histogram('h')
    assert.deepEqual(
      h.buckets.map((b) => b.count),
      [250_000, 500_000, 750_000, 1_000_000],
    )
    assert.equal(h.sum, 250_000 * (0.25 + 1 + 4 + 64), 'no lost update of the sum')
  })

  test('exact across 4 processes on a named region, exported as _bucket/_sum/_count', async () => {
    const name = regionName('procs')
    const c = SharedCounters.open(name, {
      names: ['go', { name: 'h', type: 'histogram', buckets: [0.5, 2, 8] }],
      create: true,
    })
    const kids = [0, 1, 2, 3].map(() => startChild(['observe', name, '100000']))
    await delay(200)
    c.inc('go')
    const exits = await Promise.all(kids.map((ch) => once(ch, 'exit')))
    assert.deepEqual(
      exits.map(([c]) => c),
      [0, 0, 0, 0],
    )
    const { types, samples: s } = samples(c.toPrometheus())
    assert.equal(types.get('h'), 'histogram')
    assert.deepEqual(
      s.filter(([n]) => n.startsWith('h_')),
      [
        ['h_bucket', 'le="0.5"', 100_000],
        ['h_bucket', 'le="2"', 200_000],
        ['h_bucket', 'le="8"', 300_000],
        ['h_bucket', 'le="+Inf"', 400_000],
        ['h_sum', '', 100_000 * (0.25 + 1 + 4 + 64)],
        ['h_count', '', 400_000],
      ],
    )
  })

  test('names with labels form one family per base name; prefix and labels apply', () => {
    const c = new SharedCounters({
      names: [
        'http_requests_total{route="/a"}',
        { name: 'http_seconds{route="/a"}', type: 'histogram', buckets: [1] },
        'http_requests_total{route="/b \\"x\\""}',
        { name: 'http_seconds{route="/b"}', type: 'histogram', buckets: [1] },
      ],
    })
    c.inc('http_requests_total{route="/a"}')
    c.observe('http_seconds{route="/b"}', 0.5)
    const text = c.toPrometheus({ prefix: 'app_', labels: { instance: 'i1' }, help: { http_seconds: 'Latency' } })
    const { types, samples: s } = samples(text)
    assert.deepEqual(
      [...types],
      [
        ['app_http_requests_total', 'counter'],
        ['app_http_seconds', 'histogram'],
      ],
    )
    assert.match(text, /^# HELP app_http_seconds Latency$/m)
    assert.deepEqual(s, [
      ['app_http_requests_total', 'route="/a",instance="i1"', 1],
      ['app_http_requests_total', 'route="/b \\"x\\"",instance="i1"', 0],
      ['app_http_seconds_bucket', 'route="/a",instance="i1",le="1"', 0],
      ['app_http_seconds_bucket', 'route="/a",instance="i1",le="+Inf"', 0],
      ['app_http_seconds_sum', 'route="/a",instance="i1"', 0],
      ['app_http_seconds_count', 'route="/a",instance="i1"', 0],
      ['app_http_seconds_bucket', 'route="/b",instance="i1",le="1"', 1],
      ['app_http_seconds_bucket', 'route="/b",instance="i1",le="+Inf"', 1],
      ['app_http_seconds_sum', 'route="/b",instance="i1"', 0.5],
      ['app_http_seconds_count', 'route="/b",instance="i1"', 1],
    ])
    assert.throws(() => c.toPrometheus({ labels: { route: 'x' } }), code('ERR_INVALID_ARG'))
  })

  test('registerWithPromClient exports histograms that prom-client serializes', async () => {
    const { Registry } = await import('prom-client')
    const register = new Registry()
    const c = new SharedCounters({ names: [{ name: 'lat{route="/x"}', type: 'histogram', buckets: [0.1, 1] }] })
    assert.deepEqual(c.registerWithPromClient(register, { labels: { app: 'a' } }), ['lat'])
    c.observe('lat{route="/x"}', 0.5)
    const { types, samples: s } = samples(await register.metrics())
    assert.equal(types.get('lat'), 'histogram')
    assert.deepEqual(s, [
      ['lat_bucket', 'app="a",route="/x",le="0.1"', 0],
      ['lat_bucket', 'app="a",route="/x",le="1"', 1],
      ['lat_bucket', 'app="a",route="/x",le="+Inf"', 1],
      ['lat_sum', 'app="a",route="/x"', 0.5],
      ['lat_count', 'app="a",route="/x"', 1],
    ])
  })
})

describe('per-process gauges', () => {
  test('each process sets its own value; the export has one sample per live process', async () => {
    const name = regionName('pg')
    const c = SharedCounters.open(name, {
      names: ['ready', { name: 'q', type: 'gauge', perProcess: true }],
      create: true,
      processes: 8,
    })
    const a = startChild(['process-gauge', name, '11'], { COREPOOL_WORKER_ID: '0' })
    const b = startChild(['process-gauge', name, '22'], { COREPOOL_WORKER_ID: '1' })
    const untagged = startChild(['process-gauge', name, '33'], { COREPOOL_WORKER_ID: '' })
    await c.waitFor('ready', 3, { timeout: 30_000 })
    const byLabel = () =>
      Object.fromEntries(
        samples(c.toPrometheus())
          .samples.filter(([n]) => n === 'q')
          .map(([, l, v]) => [l, v]),
      )
    assert.deepEqual(byLabel(), { 'worker="0"': 11, 'worker="1"': 22, [`pid="${untagged.pid}"`]: 33 })
    assert.deepEqual(
      c.perProcess('q').sort((x, y) => x.value - y.value),
      [
        { pid: a.pid, worker: 0, value: 11 },
        { pid: b.pid, worker: 1, value: 22 },
        { pid: untagged.pid, worker: null, value: 33 },
      ],
    )
    // A replacement with the same worker id (a reload) supersedes the old process at once.
    const a2 = startChild(['process-gauge', name, '44'], { COREPOOL_WORKER_ID: '0' })
    await c.waitFor('ready', 4, { timeout: 30_000 })
    assert.equal(byLabel()['worker="0"'], 44)
    // A killed process's sample disappears; the table entry is reused.
    b.kill('SIGKILL')
    await once(b, 'exit')
    assert.equal(byLabel()['worker="1"'], undefined)
    // This process: its own value, claimed on first use.
    c.add('q', 5)
    c.inc('q')
    assert.equal(c.get('q'), 6)
    assert.equal(byLabel()[`pid="${process.pid}"`], 6)
    for (const ch of [a, a2, untagged]) ch.kill('SIGKILL')
    assert.throws(() => c.perProcess('ready'), code('ERR_INVALID_ARG'))
    await assert.rejects(c.waitFor('q', 1), code('ERR_INVALID_ARG'))
  })

  test('per-process gauges hold Numbers: fractions as set, exact integers, exact adds across threads', async () => {
    const name = regionName('pgf')
    const c = SharedCounters.open(name, {
      names: ['ready', { name: 'q', type: 'gauge', perProcess: true }],
      create: true,
      processes: 4,
    })
    c.set('q', 0.73)
    assert.equal(c.get('q'), 0.73)
    const own = () => samples(c.toPrometheus()).samples.find(([n, l]) => n === 'q' && l === `pid="${process.pid}"`)
    assert.equal(own()[2], 0.73)
    assert.match(c.toPrometheus(), new RegExp(`^q\\{pid="${process.pid}"\\} 0\\.73$`, 'm'))
    // Another process's fraction reaches this one exactly, through the shared region.
    const kid = startChild(['process-gauge', name, '0.125'], { COREPOOL_WORKER_ID: '3' })
    await c.waitFor('ready', 1, { timeout: 30_000 })
    assert.deepEqual(
      c.perProcess('q').find((p) => p.worker === 3),
      { pid: kid.pid, worker: 3, value: 0.125 },
    )
    assert.match(c.toPrometheus(), /^q\{worker="3"\} 0\.125$/m)
    kid.kill('SIGKILL')
    // Integers stay exact up to 2^53 - 1; BigInts in that range are accepted.
    c.set('q', Number.MAX_SAFE_INTEGER)
    assert.equal(c.get('q'), Number.MAX_SAFE_INTEGER)
    assert.match(c.toPrometheus(), new RegExp(`^q\\{pid="${process.pid}"\\} 9007199254740991$`, 'm'))
    c.set('q', -5n)
    c.add('q', 2.5)
    c.inc('q')
    assert.equal(c.get('q'), -1.5)
    // Four threads adding 0.5 10 000 times each, with compare-and-swap: exactly +20 000.
    c.set('q', 0)
    const src = `const { SharedCounters } = require(${JSON.stringify(INDEX)})
       const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
       for (let i = 0; i < 10000; i++) c.add('q', 0.5)`
    const workers = Array.from({ length: 4 }, () => new Worker(src, { eval: true, workerData: c.handle }))
    await Promise.all(workers.map((w) => once(w, 'exit')))
    assert.equal(c.get('q'), 20_000)
    for (const bad of [NaN, Infinity, -Infinity, 2n ** 53n, '1', null]) {
      assert.throws(() => c.set('q', bad), code('ERR_INVALID_ARG'), String(bad))
      assert.throws(() => c.add('q', bad), code('ERR_INVALID_ARG'), String(bad))
    }
    assert.throws(() => c.getBigInt('q'), code('ERR_INVALID_ARG'))
    assert.equal(c.get('q'), 20_000)
    // Shared gauges and counters stay 64-bit integers.
    assert.throws(() => c.set('ready', 0.5), code('ERR_INVALID_ARG'))
    c.reset('q')
    assert.equal(c.get('q'), 0)
  })

  test('a full process table → ERR_SHM; threads of one process share one entry', async () => {
    const c = new SharedCounters({ names: [{ name: 'q', type: 'gauge', perProcess: true }], processes: 1 })
    c.set('q', 3)
    const w = new Worker(
      `const { SharedCounters } = require(${JSON.stringify(INDEX)})
       const c = SharedCounters.fromHandle(require('node:worker_threads').workerData)
       c.add('q', 4)`,
      { eval: true, workerData: c.handle },
    )
    assert.equal((await once(w, 'exit'))[0], 0)
    assert.equal(c.get('q'), 7)
    assert.equal(c.perProcess('q').length, 1)
    const name = regionName('full')
    const full = SharedCounters.open(name, {
      names: ['ready', { name: 'q', type: 'gauge', perProcess: true }],
      create: true,
      processes: 1,
    })
    const kid = startChild(['process-gauge', name, '1'])
    await full.waitFor('ready', 1, { timeout: 30_000 })
    assert.throws(() => full.set('q', 1), code('ERR_SHM'))
    kid.kill('SIGKILL')
    await once(kid, 'exit')
    full.set('q', 2)
    assert.equal(full.get('q'), 2)
  })
})
