// Cases of execa's tests (test/exit/kill.js, test/exit/timeout.js, test/arguments/env.js),
// translated to corepool's API. Each test names its upstream file and case. Mapping: execa's
// subprocess promise is corepool's exec() promise-and-handle; a rejected execa promise with
// `isTerminated`/`signal`/`timedOut` is a rejection with ERR_CHILD_EXIT / ERR_CHILD_TIMEOUT /
// ERR_OUTPUT_TOO_LARGE and `err.signal`; `forceKillAfterDelay` is `forceKillAfter`; execa's `ipc`
// readiness message comes from fork(). See docs/children.md, "Ported tests".
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { exec, fork } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const compat = (name) => path.join(here, 'fixtures', 'compat', name)
const node = process.execPath
const forever = [node, [compat('forever.cjs')]]
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))
const isRunning = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** execa's spawnNoKillable: a child that ignores SIGTERM/SIGINT, once it said it is ready. */
async function spawnNoKillable(forceKillAfter, options) {
  const subprocess = fork(compat('no-killable.cjs'), [], { forceKillAfter, silent: true, ...options })
  await once(subprocess, 'message')
  return subprocess
}

// test/exit/kill.js
test('kill.js: kill("SIGKILL") should terminate cleanly', async () => {
  const subprocess = await spawnNoKillable()
  subprocess.kill('SIGKILL')
  assert.equal((await subprocess.exited).signal, 'SIGKILL')
})
for (const [name, value] of [
  ['NaN', Number.NaN],
  ['negative', -1],
]) {
  test(`kill.js: \`forceKillAfterDelay\` should not be ${name}`, async () => {
    await assert.rejects(exec('true', [], { forceKillAfter: value }), { code: 'ERR_INVALID_ARG' })
  })
}
// execa waits 6 s; 1 s shows the same: nothing followed the first signal.
async function testNoForceKill(forceKillAfter, killArgument, options) {
  const subprocess = await spawnNoKillable(forceKillAfter, options)
  subprocess.kill(killArgument)
  await sleep(1000)
  assert.ok(isRunning(subprocess.pid))
  subprocess.kill('SIGKILL')
  assert.equal((await subprocess.exited).signal, 'SIGKILL')
}
test('kill.js: `forceKillAfterDelay: false` should not kill after a timeout', () => testNoForceKill(false))
async function testForceKill(forceKillAfter, killArgument, options) {
  const subprocess = await spawnNoKillable(forceKillAfter, options)
  subprocess.kill(killArgument)
  assert.equal((await subprocess.exited).signal, 'SIGKILL')
}
test('kill.js: `forceKillAfterDelay: number` should kill after a timeout', () => testForceKill(50))
// A delay of 0 is at once (the API's duration rule, as in execa); Infinity, like false, is never.
test('kill.js: `forceKillAfterDelay: 0` kills at once', () => testForceKill(0))
test('kill.js: `forceKillAfterDelay: Infinity` should not kill after a timeout', () => testNoForceKill(Infinity))
test('kill.js: `forceKillAfterDelay: undefined` should kill after a timeout', () => testForceKill(undefined))
test('kill.js: `forceKillAfterDelay` should kill after a timeout with SIGTERM', () => testForceKill(50, 'SIGTERM'))
test('kill.js: `forceKillAfterDelay` should kill after a timeout with the killSignal string', () =>
  testForceKill(50, 'SIGINT', { killSignal: 'SIGINT' }))
test('kill.js: `forceKillAfterDelay` should kill after a timeout with the killSignal number', () =>
  testForceKill(50, os.constants.signals.SIGINT, { killSignal: os.constants.signals.SIGINT }))

const spawnNoKillableSimple = (options) => exec(...forever, { killSignal: 'SIGWINCH', forceKillAfter: 1, ...options })
test('kill.js: `forceKillAfterDelay` works with the "signal" option', async () => {
  const abortController = new AbortController()
  const subprocess = spawnNoKillableSimple({ signal: abortController.signal })
  await subprocess.child.spawned
  abortController.abort()
  await assert.rejects(subprocess, { code: 'ERR_ABORTED' })
  assert.equal((await subprocess.exited).signal, 'SIGKILL')
})
test('kill.js: `forceKillAfterDelay` works with the "timeout" option', async () => {
  const subprocess = spawnNoKillableSimple({ timeout: 1 })
  await assert.rejects(subprocess, (err) => err.code === 'ERR_CHILD_TIMEOUT' && err.signal === 'SIGKILL')
})
test('kill.js: `forceKillAfterDelay` works with the "maxBuffer" option', async () => {
  const subprocess = exec(node, ['-e', "setInterval(() => process.stdout.write('.'), 1)"], {
    killSignal: 'SIGWINCH',
    forceKillAfter: 1,
    maxBuffer: 1,
    onMaxBuffer: 'kill',
  })
  await assert.rejects(subprocess, (err) => err.code === 'ERR_OUTPUT_TOO_LARGE' && err.signal === 'SIGKILL')
})
test('kill.js: Can call `.kill()` with `forceKillAfterDelay` multiple times', async () => {
  const subprocess = spawnNoKillableSimple()
  await subprocess.child.spawned
  subprocess.kill()
  subprocess.kill()
  await assert.rejects(subprocess, (err) => err.signal === 'SIGKILL')
})
test('kill.js: Can call `.kill()` multiple times', async () => {
  const subprocess = exec(...forever)
  subprocess.kill()
  subprocess.kill()
  await assert.rejects(subprocess, (err) => err.code === 'ERR_CHILD_EXIT' && err.signal === 'SIGTERM')
})
test('kill.js: execa() returns a promise with kill()', async () => {
  const subprocess = exec('echo', ['foo'])
  assert.equal(typeof subprocess.kill, 'function')
  await subprocess
})
for (const [label, arg] of [
  ['.kill(null)', null],
  ['.kill(0n)', 0n],
  ['.kill(true)', true],
  ['.kill(errorObject)', { name: '', message: '', stack: '' }],
]) {
  test(`kill.js: Cannot call ${label}`, async () => {
    const subprocess = exec('true')
    assert.throws(() => subprocess.kill(arg), { code: 'ERR_INVALID_ARG' })
    await subprocess
  })
}
test('kill.js: .kill() is a noop if process already exited', async () => {
  const subprocess = exec('true')
  await subprocess
  assert.equal(isRunning(subprocess.pid), false)
  assert.equal(subprocess.kill(), false)
})

// test/exit/timeout.js
test('timeout.js: timeout kills the process if it times out', async () => {
  await assert.rejects(exec(...forever, { timeout: 1 }), (err) => {
    assert.equal(err.code, 'ERR_CHILD_TIMEOUT')
    assert.equal(err.signal, 'SIGTERM')
    assert.equal(err.message, `Command timed out after 1 ms: ${node} ${compat('forever.cjs')}`)
    return true
  })
})
test('timeout.js: timeout does not kill the process if it does not time out', async () => {
  const p = exec('sleep', ['0.5'], { timeout: 1e8 })
  await p
  assert.equal(p.child.timedOut, false)
})
test('timeout.js: timeout uses killSignal', async () => {
  await assert.rejects(
    exec(...forever, { timeout: 1, killSignal: 'SIGINT' }),
    (err) => err.code === 'ERR_CHILD_TIMEOUT' && err.signal === 'SIGINT',
  )
})
for (const [name, timeout] of [
  ['must not be negative', -1],
  ['must be an integer', false],
]) {
  test(`timeout.js: timeout ${name}`, async () => {
    await assert.rejects(exec('true', [], { timeout }), { code: 'ERR_INVALID_ARG' })
  })
}
test('timeout.js: timedOut is false if timeout is undefined', async () => {
  const p = exec('true')
  await p
  assert.equal(p.child.timedOut, false)
})
test('timeout.js: timedOut is false if timeout is 0', async () => {
  const p = exec('true', [], { timeout: 0 })
  await p
  assert.equal(p.child.timedOut, false)
})

// test/arguments/env.js (execa sets process.env.FOO = 'foo' for the whole file)
async function withFoo(fn) {
  process.env.FOO = 'foo'
  try {
    return await fn()
  } finally {
    delete process.env.FOO
  }
}
const environment = (options) => exec(node, [compat('environment.cjs')], { stripFinalNewline: true, ...options })
test('env.js: use environment variables by default', () =>
  withFoo(async () => {
    const { stdout } = await environment()
    assert.deepEqual(stdout.split('\n'), ['foo', 'undefined'])
  }))
test('env.js: extend environment variables by default', () =>
  withFoo(async () => {
    const { stdout } = await environment({ env: { BAR: 'bar' } })
    assert.deepEqual(stdout.split('\n'), ['foo', 'bar'])
  }))
test('env.js: do not extend environment with `extendEnv: false`', () =>
  withFoo(async () => {
    const { stdout } = await environment({ env: { BAR: 'bar', PATH: process.env.PATH }, extendEnv: false })
    assert.deepEqual(stdout.split('\n'), ['undefined', 'bar'])
  }))
for (const [name, options] of [
  ['no `env`', {}],
  ['`env: {}`', { env: {} }],
]) {
  test(`env.js: do not use process.env with \`extendEnv: false\` and ${name}`, () =>
    withFoo(async () => {
      const { stdout } = await environment({ extendEnv: false, ...options })
      assert.deepEqual(stdout.split('\n'), ['undefined', 'undefined'])
    }))
}
test('env.js: use extend environment with `extendEnv: true` and `shell: true`', async () => {
  process.env.TEST = 'test'
  try {
    const { stdout } = await exec('echo $TEST', { shell: true, env: {}, extendEnv: true, stripFinalNewline: true })
    assert.equal(stdout, 'test')
  } finally {
    delete process.env.TEST
  }
})
