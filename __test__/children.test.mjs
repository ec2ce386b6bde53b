import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn as nodeSpawn } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gone, waitGone } from './fixtures/proc.mjs'
import { spawn, exec, fork, Child, CorepoolError } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', name)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

function describeProc(pid) {
  try {
    return fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch (err) {
    return err.code
  }
}

async function text(stream) {
  let s = ''
  for await (const chunk of stream) s += chunk
  return s
}

test('spawn: streams, pid and exited', async () => {
  const child = spawn('sh', ['-c', 'echo out; echo err >&2; exit 3'])
  assert.ok(child instanceof Child)
  const [out, err, result] = await Promise.all([text(child.stdout), text(child.stderr), child.exited])
  assert.equal(out, 'out\n')
  assert.equal(err, 'err\n')
  assert.equal(result.code, 3)
  assert.equal(result.signal, null)
  assert.equal(typeof result.durationMs, 'number')
  assert.ok(result.durationMs >= 0)
  assert.ok(Number.isInteger(child.pid) && child.pid > 0)
  assert.equal(child.exitCode, 3)
})

test('spawn: stdin is writable, lines() splits lines', async () => {
  const child = spawn('cat')
  child.stdin.end('a\nb\r\nc')
  const lines = []
  for await (const line of child.lines()) lines.push(line)
  assert.deepEqual(lines, ['a', 'b', 'c'])
  assert.equal((await child.exited).code, 0)
})

test("lines('stderr'), 'close' after 'exit', EPIPE on stdin does not crash", async () => {
  const child = spawn('sh', ['-c', 'echo one >&2; echo two >&2'])
  const events = []
  child.on('exit', () => events.push('exit'))
  const closed = new Promise((resolve) => child.on('close', (code) => resolve(code)))
  const lines = []
  for await (const line of child.lines('stderr')) lines.push(line)
  assert.deepEqual(lines, ['one', 'two'])
  assert.equal(await closed, 0)
  assert.deepEqual(events, ['exit'])
  const deaf = spawn('true')
  await deaf.exited
  deaf.stdin.write(Buffer.alloc(1024 * 1024))
  await sleep(100)
})

test('lines() reads a large output completely and applies back-pressure', async () => {
  const child = spawn('sh', ['-c', 'seq 1 200000'])
  let count = 0
  let last
  for await (const line of child.lines('stdout')) {
    count++
    last = line
    if (count === 10) {
      // While we do not pull, the child blocks on a full pipe instead of being buffered in memory.
      await sleep(300)
      assert.equal(child.running, true)
      assert.ok(child.stdout.readableLength < 256 * 1024)
    }
  }
  assert.equal(count, 200000)
  assert.equal(last, '200000')
  await child.exited
})

test('exec: no shell, arguments are passed literally', async () => {
  const { stdout, code } = await exec('echo', ['$(id)', '`id`', ';', 'a b'])
  assert.equal(stdout, '$(id) `id` ; a b\n')
  assert.equal(code, 0)
})

test('exec: shell: true runs through /bin/sh', async () => {
  const { stdout } = await exec('echo $((1 + 2))', [], { shell: true })
  assert.equal(stdout, '3\n')
})

test('exec: 100 MB of output with maxBuffer 1 MB keeps the head, sets truncated, does not hang', async () => {
  const r = await exec('head', ['-c', String(100 * 1024 * 1024), '/dev/zero'], {
    maxBuffer: 1024 * 1024,
    encoding: 'buffer',
  })
  assert.equal(r.truncated, true)
  assert.ok(Buffer.isBuffer(r.stdout))
  assert.equal(r.stdout.length, 1024 * 1024)
  assert.equal(r.code, 0)
})

test('exec: input, encoding, non-zero exit and reject: false', async () => {
  assert.equal((await exec('cat', [], { input: 'héllo' })).stdout, 'héllo')
  assert.deepEqual(
    (await exec('cat', [], { input: Buffer.from([1, 2]), encoding: 'buffer' })).stdout,
    Buffer.from([1, 2]),
  )
  await assert.rejects(exec('sh', ['-c', 'echo partial; echo oops >&2; exit 4']), (err) => {
    assert.equal(err.code, 'ERR_CHILD_EXIT')
    assert.ok(err instanceof CorepoolError)
    assert.equal(err.exitCode, 4)
    assert.equal(err.signal, null)
    assert.equal(err.stdout, 'partial\n')
    assert.equal(err.stderr, 'oops\n')
    assert.match(err.message, /exit code 4/)
    return true
  })
  const r = await exec('sh', ['-c', 'exit 5'], { reject: false })
  assert.equal(r.code, 5)
  await assert.rejects(
    exec('sh', ['-c', 'kill -TERM $$']),
    (err) => err.code === 'ERR_CHILD_EXIT' && err.signal === 'SIGTERM',
  )
})

test('a grandchild holding the pipe does not hang exited or exec', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & echo started'])
  const result = await child.exited
  assert.equal(result.code, 0)
  child.kill() // the tree: the sleeping grandchild too
  const t = Date.now()
  const r = await exec('sh', ['-c', 'sleep 30 & echo started'], { timeout: 20000 })
  assert.equal(r.stdout, 'started\n')
  assert.ok(Date.now() - t < 10000)
})

test('a finished child does not keep Node alive; a running one does', async () => {
  const run = (file) =>
    new Promise((resolve) => {
      const p = nodeSpawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] })
      let out = ''
      p.stdout.on('data', (d) => (out += d))
      p.on('exit', (code) => resolve({ code, out }))
    })
  const t = Date.now()
  const finished = await run(fixture('finished-child.mjs'))
  assert.equal(finished.code, 0)
  assert.equal(JSON.parse(finished.out).code, 0)
  assert.ok(Date.now() - t < 15000, 'the script must not wait for the 30 s grandchild')
  const running = await run(fixture('running-child.mjs'))
  assert.equal(running.out, 'exit 0\n')
  const t2 = Date.now()
  const unrefd = await run(fixture('unref-child.mjs'))
  const { pid } = JSON.parse(unrefd.out)
  assert.ok(Date.now() - t2 < 15000, 'unref() must let Node exit')
  assert.ok(await waitGone([pid], 3000), 'the unref()d child dies with its parent')
})

test('timeout kills the tree and rejects with ERR_CHILD_TIMEOUT', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!; wait'], { timeout: 200 })
  const lines = child.lines()
  const grandchild = Number((await lines.next()).value)
  await assert.rejects(child.exited, (err) => {
    assert.equal(err.code, 'ERR_CHILD_TIMEOUT')
    assert.equal(err.signal, 'SIGTERM')
    return true
  })
  assert.equal(child.timedOut, true)
  assert.ok(await waitGone([grandchild], 5000))
  await assert.rejects(exec('sleep', ['30'], { timeout: 100 }), { code: 'ERR_CHILD_TIMEOUT' })
})

test('killSignal and forceKillAfter: SIGKILL follows an ignored signal', async () => {
  const child = spawn('sh', ['-c', "trap '' TERM; echo armed; while :; do sleep 0.05; done"], {
    timeout: 100,
    forceKillAfter: 300,
  })
  await assert.rejects(child.exited, (err) => err.code === 'ERR_CHILD_TIMEOUT' && err.signal === 'SIGKILL')
  const c2 = spawn('sleep', ['30'], { killSignal: 'SIGINT' })
  await c2.spawned
  assert.equal(c2.kill(), true)
  assert.equal((await c2.exited).signal, 'SIGINT')
  assert.equal(c2.kill(), false)
})

test('kill() kills the whole tree by default', async () => {
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!; sleep 30'])
  const grandchild = Number((await child.lines().next()).value)
  assert.equal(gone(grandchild), false)
  child.kill('SIGKILL')
  assert.equal((await child.exited).signal, 'SIGKILL')
  assert.ok(await waitGone([child.pid, grandchild], 5000))
})

test('kill() before the spawn completed is applied once it has', async () => {
  const child = spawn('sleep', ['30'])
  child.kill('SIGKILL')
  assert.equal((await child.exited).signal, 'SIGKILL')
})

test('ENOENT: ERR_SPAWN with errno, syscall and path; error only when listened', async () => {
  const child = spawn('corepool-no-such-command', ['x'])
  await assert.rejects(child.exited, (err) => {
    assert.equal(err.code, 'ERR_SPAWN')
    assert.match(err.message, /ENOENT/)
    assert.equal(err.errno, -os.constants.errno.ENOENT)
    assert.equal(err.syscall, 'spawn corepool-no-such-command')
    assert.equal(err.path, 'corepool-no-such-command')
    assert.deepEqual(err.spawnargs, ['x'])
    assert.equal(err.cause.code, 'ENOENT')
    return true
  })
  const listened = spawn('corepool-no-such-command')
  const seen = await new Promise((resolve) => listened.on('error', resolve))
  assert.equal(seen.code, 'ERR_SPAWN')
  await assert.rejects(exec('corepool-no-such-command'), { code: 'ERR_SPAWN' })
  // Nobody listens and nobody awaits: must not crash the process.
  spawn('corepool-no-such-command')
  await sleep(100)
})

test('EACCES and bad cwd are ERR_SPAWN too', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-'))
  const file = path.join(dir, 'not-executable')
  fs.writeFileSync(file, '#!/bin/sh\necho hi\n', { mode: 0o644 })
  try {
    await assert.rejects(spawn(file).exited, (err) => {
      assert.equal(err.code, 'ERR_SPAWN')
      assert.equal(err.errno, -os.constants.errno.EACCES)
      assert.equal(err.path, file)
      return true
    })
    await assert.rejects(spawn('true', [], { cwd: path.join(dir, 'missing') }).exited, (err) => {
      assert.equal(err.code, 'ERR_SPAWN')
      assert.equal(err.syscall, 'chdir')
      assert.equal(err.errno, -os.constants.errno.ENOENT)
      return true
    })
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('cwd, env (extend or replace) and stdio modes', async () => {
  const dir = fs.realpathSync(fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-')))
  try {
    assert.equal((await exec('pwd', [], { cwd: dir })).stdout, `${dir}\n`)
    const extended = await exec('sh', ['-c', 'echo "$COREPOOL_A:$PATH"'], { env: { COREPOOL_A: 'x' } })
    assert.equal(extended.stdout, `x:${process.env.PATH}\n`)
    const replaced = await exec('/usr/bin/env', [], { env: { ONLY: '1' }, extendEnv: false })
    assert.equal(replaced.stdout, 'ONLY=1\n')
    const out = path.join(dir, 'out.txt')
    const c = spawn('sh', ['-c', 'echo to-file; echo dropped >&2'], { stdio: ['ignore', { file: out }, 'ignore'] })
    assert.equal(c.stdout, null)
    assert.equal(c.stderr, null)
    await c.exited
    assert.equal(fs.readFileSync(out, 'utf8'), 'to-file\n')
    await spawn('sh', ['-c', 'echo again'], { stdio: ['ignore', { file: out, append: true }, 'inherit'] }).exited
    assert.equal(fs.readFileSync(out, 'utf8'), 'to-file\nagain\n')
    const fromFile = await exec('cat', [], { stdio: [{ file: out }] })
    assert.equal(fromFile.stdout, 'to-file\nagain\n')
  } finally {
    fs.rmSync(dir, { recursive: true, force: true })
  }
})

test('uid/gid', { skip: process.getuid?.() !== 0 && 'needs root' }, async () => {
  const r = await exec('id', ['-u'], { uid: 65534, gid: 65534 })
  assert.equal(r.stdout, '65534\n')
})

test('fork: messages both ways and disconnect', async () => {
  const child = fork(fixture('echo-child.cjs'))
  const got = []
  await new Promise((resolve) => {
    child.on('message', (m) => {
      got.push(m)
      if (m === 'ready') child.send({ n: 1, s: 'é\n' })
      else resolve()
    })
  })
  assert.equal(got[0], 'ready')
  assert.deepEqual(got[1], { echo: { n: 1, s: 'é\n' }, pid: child.pid })
  const disconnected = new Promise((resolve) => child.on('disconnect', resolve))
  child.send('bye')
  await disconnected
  assert.equal(child.connected, false)
  assert.equal((await child.exited).code, 0)

  const c2 = fork(fixture('echo-child.cjs'))
  await new Promise((resolve) => c2.once('message', resolve))
  c2.disconnect() // the child has nothing else to do, so it exits
  assert.equal((await c2.exited).code, 0)
})

test('no orphans: SIGKILL of the parent takes the child and the grandchild down', async () => {
  for (let run = 0; run < 3; run++) {
    const parent = nodeSpawn(process.execPath, [fixture('orphan-parent.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
    const pids = await new Promise((resolve, reject) => {
      let out = ''
      parent.stdout.on('data', (d) => {
        out += d
        if (out.includes('\n')) resolve(JSON.parse(out))
      })
      parent.on('exit', () => reject(new Error(`parent exited early: ${out}`)))
    })
    try {
      assert.equal(gone(pids.child), false, `child of ${JSON.stringify(pids)} ${describeProc(pids.child)}`)
      assert.equal(gone(pids.grandchild), false, `grandchild of ${JSON.stringify(pids)}`)
    } finally {
      // Never leave the parent behind (it would keep this test file running).
      parent.kill('SIGKILL')
    }
    assert.ok(await waitGone([pids.child, pids.grandchild], 3000), `run ${run}: ${JSON.stringify(pids)} survived`)
  }
})

test('detached: true lets a child outlive the parent', async () => {
  const parent = nodeSpawn(process.execPath, [fixture('detached-parent.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] })
  const { child } = await new Promise((resolve) => {
    let out = ''
    parent.stdout.on('data', (d) => {
      out += d
      if (out.includes('\n')) resolve(JSON.parse(out))
    })
  })
  parent.kill('SIGKILL')
  await new Promise((resolve) => parent.on('exit', resolve))
  await sleep(300)
  try {
    assert.equal(gone(child), false)
  } finally {
    process.kill(child, 'SIGKILL')
  }
})

test('fork: a large message crosses many chunks intact', async () => {
  const child = fork(fixture('echo-child.cjs'))
  await new Promise((resolve) => child.once('message', resolve))
  const big = { text: 'é'.repeat(500_000), list: Array.from({ length: 10_000 }, (_, i) => i) }
  const reply = new Promise((resolve) => child.once('message', resolve))
  child.send(big)
  assert.deepEqual((await reply).echo, big)
  child.disconnect()
  await child.exited
})

test('bad arguments: spawn throws, exec rejects', async () => {
  assert.throws(() => spawn(''), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => spawn('true', 'x'), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => spawn('true', [], { timeout: -1 }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => spawn('true', [], { stdio: ['bogus'] }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => spawn('true', [], { killSignal: 'SIGNOPE' }), { code: 'ERR_INVALID_ARG' })
  assert.throws(() => fork(fixture('echo-child.cjs'), [], { serialization: 'bogus' }), { code: 'ERR_INVALID_ARG' })
  const p = exec(42)
  assert.ok(p instanceof Promise)
  await assert.rejects(p, { code: 'ERR_INVALID_ARG' })
  await assert.rejects(exec('true', [], { maxBuffer: -1 }), { code: 'ERR_INVALID_ARG' })
  // Options set to undefined mean "not given".
  const r = await exec('true', undefined, { timeout: undefined, cwd: undefined, env: undefined, input: undefined })
  assert.equal(r.code, 0)
})

test('AbortSignal kills the child; exec rejects with ERR_ABORTED', async () => {
  const ac = new AbortController()
  const p = exec('sleep', ['30'], { signal: ac.signal })
  setTimeout(() => ac.abort(), 50)
  await assert.rejects(p, { code: 'ERR_ABORTED', name: 'AbortError' })
  const child = spawn('sleep', ['30'], { signal: AbortSignal.abort() })
  assert.equal((await child.exited).signal, 'SIGTERM')
})
