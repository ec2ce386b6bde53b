import { test } from 'node:test'
import assert from 'node:assert/strict'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gone } from './fixtures/proc.mjs'
import { Supervisor, SharedCounters } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', name)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const forever = { command: 'sleep', args: ['300'] }

const pids = (sup) => Object.fromEntries(sup.status().children.map((c) => [c.id, c.pid]))

function once(emitter, event, filter = () => true) {
  return new Promise((resolve) => {
    const on = (...args) => {
      if (filter(...args)) {
        emitter.off(event, on)
        resolve(args)
      }
    }
    emitter.on(event, on)
  })
}

test('start() starts in order, stop() stops in reverse order, done resolves', async () => {
  const sup = new Supervisor()
  sup
    .add({ id: 'a', ...forever })
    .add({ id: 'b', ...forever })
    .add({ id: 'c', ...forever })
  const started = []
  sup.on('start', (id) => started.push(id))
  await sup.start()
  assert.deepEqual(started, ['a', 'b', 'c'])
  const status = sup.status()
  assert.equal(status.state, 'running')
  for (const c of status.children) {
    assert.equal(c.state, 'running')
    assert.ok(c.pid > 0)
    assert.equal(c.starts, 1)
    assert.equal(c.restarts, 0)
  }
  const before = pids(sup)
  const exited = []
  sup.on('exit', (id, info) => exited.push([id, info.expected]))
  await sup.stop()
  await sup.done
  assert.deepEqual(exited, [
    ['c', true],
    ['b', true],
    ['a', true],
  ])
  assert.equal(sup.status().state, 'stopped')
  assert.ok(Object.values(before).every(gone))
})

test('one_for_one restarts only the failed child', async () => {
  const sup = new Supervisor({ strategy: 'one_for_one', backoff: { initial: 10 } })
  sup.add({ id: 'a', ...forever }).add({ id: 'b', ...forever })
  await sup.start()
  const before = pids(sup)
  const restarted = once(sup, 'start', (id) => id === 'a')
  process.kill(before.a, 'SIGKILL')
  await restarted
  const after = pids(sup)
  assert.notEqual(after.a, before.a)
  assert.equal(after.b, before.b)
  const a = sup.status().children[0]
  assert.equal(a.restarts, 1)
  assert.equal(a.exits, 1)
  assert.equal(a.lastExit.signal, 'SIGKILL')
  await sup.stop()
})

test('counters: starts, restarts and exits per child in a shared region', async () => {
  const names = Supervisor.counterNames(['a', 'web-1'])
  assert.deepEqual(names.slice(0, 3), [
    'supervisor_starts_total:a',
    'supervisor_restarts_total:a',
    'supervisor_exits_total:a',
  ])
  assert.equal(names[3], 'supervisor_starts_total:web_1')
  const counters = new SharedCounters({ names: [...names, 'other'] })
  const sup = new Supervisor({ backoff: { initial: 10 }, counters })
  sup.add({ id: 'a', ...forever }).add({ id: 'web-1', ...forever })
  await sup.start()
  const restarted = once(sup, 'start', (id) => id === 'a')
  process.kill(pids(sup).a, 'SIGKILL')
  await restarted
  await sup.stop()
  assert.deepEqual(counters.snapshot(), {
    'supervisor_starts_total:a': 2,
    'supervisor_restarts_total:a': 1,
    'supervisor_exits_total:a': 2,
    'supervisor_starts_total:web_1': 1,
    'supervisor_restarts_total:web_1': 0,
    'supervisor_exits_total:web_1': 1,
    other: 0,
  })
  assert.throws(() => new Supervisor({ counters: {} }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => Supervisor.counterNames('a'), { code: 'ERR_INVALID_ARG' })
})

test('one_for_all restarts every child; rest_for_one the failed one and those after it', async () => {
  const all = new Supervisor({ strategy: 'one_for_all', backoff: { initial: 10 } })
  all
    .add({ id: 'a', ...forever })
    .add({ id: 'b', ...forever })
    .add({ id: 'c', ...forever })
  await all.start()
  let before = pids(all)
  let done = once(all, 'start', (id) => id === 'c')
  process.kill(before.b, 'SIGKILL')
  await done
  let after = pids(all)
  for (const id of ['a', 'b', 'c']) assert.notEqual(after[id], before[id], id)
  assert.ok(gone(before.a) && gone(before.c))
  await all.stop()

  const rest = new Supervisor({ strategy: 'rest_for_one', backoff: { initial: 10 } })
  rest
    .add({ id: 'a', ...forever })
    .add({ id: 'b', ...forever })
    .add({ id: 'c', ...forever })
  await rest.start()
  before = pids(rest)
  done = once(rest, 'start', (id) => id === 'c')
  process.kill(before.b, 'SIGKILL')
  await done
  after = pids(rest)
  assert.equal(after.a, before.a)
  assert.notEqual(after.b, before.b)
  assert.notEqual(after.c, before.c)
  await rest.stop()
})

test('restart types: transient restarts only abnormal exits, temporary never', async () => {
  const sup = new Supervisor({ backoff: { initial: 10 } })
  sup.add({ id: 'ok', command: 'true', restart: 'transient' })
  sup.add({ id: 'temp', command: 'false', restart: 'temporary' })
  sup.add({ id: 'crash', command: 'sh', args: ['-c', 'sleep 0.05; exit 1'], restart: 'transient' })
  const restarts = []
  sup.on('restart', (id) => restarts.push(id))
  await sup.start()
  await once(sup, 'restart', (id) => id === 'crash')
  await sleep(300)
  assert.ok(!restarts.includes('ok'))
  assert.ok(!restarts.includes('temp'))
  const byId = Object.fromEntries(sup.status().children.map((c) => [c.id, c]))
  assert.equal(byId.ok.state, 'stopped')
  assert.equal(byId.temp.state, 'stopped')
  assert.ok(byId.crash.restarts >= 1)
  await sup.stop()
})

test('restart storm: gaveUp after `intensity` restarts within `period`', async () => {
  const sup = new Supervisor({ intensity: 3, period: 60_000, backoff: { initial: 0 } })
  sup.add({ id: 'steady', ...forever })
  sup.add({ id: 'storm', command: 'sh', args: ['-c', 'exit 1'] })
  const restarts = []
  sup.on('restart', (id) => restarts.push(id))
  const gaveUp = once(sup, 'gaveUp')
  await sup.start().catch(() => {}) // may already have given up
  const steadyPid = sup.status().children[0].pid
  const [err] = await gaveUp
  assert.equal(err.code, 'ERR_SUPERVISOR_GAVE_UP')
  assert.deepEqual(restarts, ['storm', 'storm', 'storm'])
  await assert.rejects(sup.done, { code: 'ERR_SUPERVISOR_GAVE_UP' })
  const status = sup.status()
  assert.equal(status.state, 'gaveUp')
  assert.ok(status.children.every((c) => c.state === 'stopped'))
  assert.equal(status.children[1].exits, 4)
  assert.ok(steadyPid === undefined || gone(steadyPid))
})

test('gaveUp before the children are ready rejects start()', async () => {
  const sup = new Supervisor({ intensity: 1, period: 60_000, backoff: { initial: 0 } })
  sup.add({ id: 'never', command: 'sh', args: ['-c', 'exit 1'], ready: { line: 'up' } })
  await assert.rejects(sup.start(), { code: 'ERR_SUPERVISOR_GAVE_UP' })
  await assert.rejects(sup.done, { code: 'ERR_SUPERVISOR_GAVE_UP' })
})

test('backoff delays follow the schedule', async () => {
  const backoff = { initial: 100, factor: 2, max: 400 }
  const sup = new Supervisor({ intensity: 10, period: 60_000, backoff })
  sup.add({ id: 'x', command: 'sh', args: ['-c', 'exit 1'] })
  assert.deepEqual(
    [1, 2, 3, 4, 5].map((n) => sup.backoffDelay(n)),
    [100, 200, 400, 400, 400],
  )
  const gaps = []
  const planned = []
  let exitAt = 0
  sup.on('exit', () => (exitAt = performance.now()))
  sup.on('restart', (id, info) => planned.push(info.delayMs))
  sup.on('start', () => {
    if (exitAt > 0) gaps.push(performance.now() - exitAt)
  })
  await sup.start()
  const deadline = Date.now() + 60_000
  while (gaps.length < 4 && Date.now() < deadline) await sleep(20)
  await sup.stop()
  assert.ok(gaps.length >= 4, `only ${gaps.length} restarts seen in 60 s`)
  assert.deepEqual(planned.slice(0, 4), [100, 200, 400, 400])
  gaps.slice(0, 4).forEach((gap, i) => {
    const want = planned[i]
    // ±5 % of the schedule plus scheduling and spawn noise on a busy 2-core machine.
    assert.ok(gap >= want * 0.95, `restart ${i + 1}: ${gap.toFixed(1)} ms < ${want} ms`)
    assert.ok(gap <= want * 1.05 + 250, `restart ${i + 1}: ${gap.toFixed(1)} ms >> ${want} ms`)
  })
})

test('ready: { message } and { line } gate start()', async () => {
  const sup = new Supervisor()
  sup.add({ id: 'ipc', module: fixture('ready-child.cjs'), ready: { message: { ready: true } } })
  sup.add({ id: 'ipc2', module: fixture('ready-child.cjs'), ready: { message: (m) => m?.ready === true } })
  sup.add({
    id: 'line',
    command: 'sh',
    args: ['-c', 'sleep 0.1; echo listening on 1234; exec sleep 300'],
    ready: { line: /listening on \d+/ },
  })
  const lines = []
  sup.on('line', (id, line) => lines.push(line))
  const t = performance.now()
  await sup.start()
  assert.ok(performance.now() - t >= 100)
  assert.deepEqual(lines, ['listening on 1234'])
  assert.ok(sup.status().children.every((c) => c.state === 'running'))
  await sup.stop()
})

test('stop(): SIGKILL after shutdownMs for a child that ignores SIGTERM; restart(id) by hand', async () => {
  const sup = new Supervisor()
  sup.add({
    id: 'stubborn',
    command: 'sh',
    args: ['-c', "trap '' TERM; echo armed; while :; do sleep 0.05; done"],
    shutdownMs: 200,
    ready: { line: 'armed' },
  })
  await sup.start()
  const first = pids(sup).stubborn
  await sup.restart('stubborn')
  const second = pids(sup).stubborn
  assert.notEqual(first, second)
  assert.ok(gone(first))
  assert.equal(sup.status().children[0].restarts, 1)
  const t = performance.now()
  await sup.stop()
  assert.ok(performance.now() - t >= 150)
  assert.ok(gone(second))
  await assert.rejects(sup.restart('stubborn'), { code: 'ERR_INVALID_STATE' })
})

test('bad arguments', async () => {
  assert.throws(() => new Supervisor({ strategy: 'all' }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => new Supervisor({ intensity: -1 }), { code: 'ERR_INVALID_ARG' })
  const sup = new Supervisor({ intensity: undefined, backoff: undefined })
  assert.throws(() => sup.add({ id: 'x' }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => sup.add({ id: 'x', command: 'true', restart: 'sometimes' }), { code: 'ERR_INVALID_ARG' })
  sup.add({ id: 'x', command: 'true', restart: 'temporary' })
  assert.throws(() => sup.add({ id: 'x', command: 'true' }), { code: 'ERR_INVALID_ARG' })
  await assert.rejects(sup.restart('nope'), { code: 'ERR_INVALID_ARG' })
  await sup.start()
  await assert.rejects(sup.start(), { code: 'ERR_INVALID_STATE' })
  await sup.stop()
})

test('start() waiting for a child that stop() or remove() ends rejects ERR_INVALID_STATE', async () => {
  for (const end of ['stop', 'remove']) {
    const sup = new Supervisor()
    sup.add({ id: 'slow', ...forever, ready: { line: 'never printed' } })
    const spawned = once(sup, 'spawn')
    const started = sup.start()
    await spawned
    await (end === 'stop' ? sup.stop() : sup.remove('slow'))
    await assert.rejects(started, { code: 'ERR_INVALID_STATE' }, end)
    await sup.stop()
  }
})

test("remove() stops one child gracefully and forgets it; 'spawn' hands out the child", async () => {
  const sup = new Supervisor()
  const spawned = []
  sup.on('spawn', (id, child) => spawned.push([id, typeof child.kill]))
  sup.add({ id: 'a', ...forever }).add({ id: 'b', ...forever })
  await sup.start()
  assert.deepEqual(spawned, [
    ['a', 'function'],
    ['b', 'function'],
  ])
  const { a } = pids(sup)
  const restarts = []
  sup.on('restart', (id) => restarts.push(id))
  await sup.remove('a')
  await gone(a)
  assert.deepEqual(
    sup.status().children.map((c) => c.id),
    ['b'],
  )
  assert.deepEqual(restarts, [], 'a removal is not a restart')
  await assert.rejects(sup.remove('a'), { code: 'ERR_INVALID_ARG' })
  await sup.stop()
})
