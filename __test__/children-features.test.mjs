// exec as a handle, maxBuffer modes, stripFinalNewline and `all`, fork's advanced serialization.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn as nodeSpawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { exec, fork } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', name)

test('exec returns a promise that is also a handle: pid, kill(), streams, exited', async () => {
  const p = exec('sh', ['-c', 'echo started; sleep 30'])
  assert.ok(p instanceof Promise)
  assert.equal(typeof p.kill, 'function')
  const first = await new Promise((resolve) => p.stdout.once('data', (d) => resolve(String(d))))
  assert.equal(first, 'started\n')
  assert.ok(Number.isInteger(p.pid) && p.pid > 0)
  assert.equal(p.kill(), true)
  await assert.rejects(
    p,
    (err) => err.code === 'ERR_CHILD_EXIT' && err.signal === 'SIGTERM' && err.stdout === 'started\n',
  )
  assert.equal((await p.exited).signal, 'SIGTERM')
  assert.equal(p.kill(), false)
  // Bad arguments: still a handle, with nothing to kill.
  const bad = exec(42)
  assert.equal(bad.kill(), false)
  assert.equal(bad.pid, undefined)
  assert.equal(bad.stdout, null)
  await assert.rejects(bad, { code: 'ERR_INVALID_ARG' })
  await assert.rejects(bad.exited, { code: 'ERR_INVALID_ARG' })
})

test("maxBuffer with onMaxBuffer: 'kill' kills the child and rejects ERR_OUTPUT_TOO_LARGE with the head", async () => {
  await assert.rejects(exec('yes', [], { maxBuffer: 1000, onMaxBuffer: 'kill' }), (err) => {
    assert.equal(err.code, 'ERR_OUTPUT_TOO_LARGE')
    assert.equal(err.stdout, 'y\n'.repeat(500))
    assert.equal(err.truncated, true)
    assert.equal(err.signal, 'SIGTERM')
    return true
  })
  // Within the limit nothing happens.
  assert.equal((await exec('echo', ['x'], { maxBuffer: 2, onMaxBuffer: 'kill' })).stdout, 'x\n')
  await assert.rejects(exec('true', [], { onMaxBuffer: 'drop' }), { code: 'ERR_INVALID_ARG' })
})

test('the default maxBuffer mode never leaves exec pending on a program that writes for ever', async () => {
  await assert.rejects(exec('yes', [], { maxBuffer: 1024 }), (err) => {
    assert.equal(err.code, 'ERR_OUTPUT_TOO_LARGE')
    assert.equal(err.stdout.length, 1024)
    assert.equal(err.truncated, true)
    return true
  })
})

test('stripFinalNewline and all', async () => {
  const r = await exec(
    'sh',
    ['-c', 'printf "out\\r\\n"; sleep 0.1; printf "err\\n" >&2; sleep 0.1; printf "more\\n\\n"'],
    {
      all: true,
      stripFinalNewline: true,
    },
  )
  assert.equal(r.stdout, 'out\r\nmore\n')
  assert.equal(r.stderr, 'err')
  assert.equal(r.all, 'out\r\nerr\nmore\n')
  const b = await exec('echo', ['x'], { encoding: 'buffer', stripFinalNewline: true })
  assert.deepEqual(b.stdout, Buffer.from('x'))
  assert.equal((await exec('echo', ['x'])).stdout, 'x\n')
  assert.equal((await exec('echo', ['x'])).all, undefined)
  await assert.rejects(exec('true', [], { all: 'yes' }), { code: 'ERR_INVALID_ARG' })
})

test("fork({ serialization: 'advanced' }) exchanges structured clones with a plain Node child", async () => {
  const child = fork(fixture('echo-child.cjs'), [], { serialization: 'advanced' })
  assert.equal(await new Promise((resolve) => child.once('message', resolve)), 'ready')
  const value = {
    map: new Map([[1, { big: 2n ** 70n }]]),
    set: new Set(['a']),
    date: new Date(86_400_000),
    bytes: Buffer.from('héllo'),
    floats: new Float64Array([1.5, -0]),
    text: 'é'.repeat(200_000),
    nested: [undefined, null, NaN],
  }
  const reply = new Promise((resolve) => child.once('message', resolve))
  assert.equal(child.send(value), true)
  const { echo } = await reply
  assert.deepEqual(echo.map, value.map)
  assert.deepEqual(echo.set, value.set)
  assert.deepEqual(echo.date, value.date)
  assert.deepEqual(Buffer.from(echo.bytes), value.bytes)
  assert.deepEqual(echo.floats, value.floats)
  assert.equal(echo.text, value.text)
  assert.deepEqual(echo.nested, value.nested)
  const err = await new Promise((resolve) => child.send({ f: () => {} }, resolve))
  assert.equal(err.code, 'ERR_INVALID_ARG')
  child.send('bye')
  assert.equal((await child.exited).code, 0)
})

test('fork from a `node -e` parent runs the module, not the parent code again', async () => {
  // The guard keeps a regression from forking without end.
  const code = `if (process.env.COREPOOL_EVAL_AGAIN) { console.log('parent code ran again'); process.exit(1) }
    const { fork } = require(${JSON.stringify(path.join(here, '..', 'index.js'))});
    const c = fork(${JSON.stringify(fixture('echo-child.cjs'))}, { env: { COREPOOL_EVAL_AGAIN: '1' } });
    c.once('message', (m) => { console.log(m); c.send('bye') })`
  const out = await new Promise((resolve, reject) => {
    const p = nodeSpawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] })
    let s = ''
    p.stdout.on('data', (d) => (s += d))
    p.on('error', reject)
    p.on('close', () => resolve(s))
  })
  assert.equal(out, 'ready\n')
})
