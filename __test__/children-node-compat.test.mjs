// Cases of Node's test/parallel/test-child-process-*.js, translated to corepool's API. Each test
// names its upstream file; the mapping follows corepool's documented differences (docs/children.md,
// "Ported tests"): `exited` instead of callbacks, ERR_* codes instead of Node's, maxBuffer in bytes
// cut at a character boundary, onMaxBuffer: 'kill' for Node's exec behaviour, no shell.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { spawn, exec, fork } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const compat = (name) => path.join(here, 'fixtures', 'compat', name)
const node = process.execPath

function collectText(stream) {
  let s = ''
  stream.setEncoding('utf8')
  stream.on('data', (d) => (s += d))
  return () => s
}

// test-child-process-spawn-event.js
test("spawn-event: 'spawn' precedes data, end, close and exit", async () => {
  const subprocess = spawn('echo', ['ok'])
  let didSpawn = false
  const order = []
  subprocess.on('spawn', () => (didSpawn = true))
  const after = (name) => () => order.push([name, didSpawn])
  subprocess.on('error', () => assert.fail('error'))
  subprocess.stdout.on('data', after('stdout data'))
  subprocess.stdout.on('end', after('stdout end'))
  subprocess.stdout.on('close', after('stdout close'))
  subprocess.stderr.on('data', () => assert.fail('stderr data'))
  subprocess.stderr.on('end', after('stderr end'))
  subprocess.stderr.on('close', after('stderr close'))
  subprocess.on('exit', after('exit'))
  await once(subprocess, 'close')
  order.push(['close', didSpawn])
  assert.ok(
    order.every(([, spawned]) => spawned),
    JSON.stringify(order),
  )
  assert.equal(order.length, 7)
})

// test-child-process-kill.js
test('kill: cat killed before it runs ends with SIGTERM and both pipes reach EOF', async () => {
  const cat = spawn('cat')
  const ends = [once(cat.stdout, 'end'), once(cat.stderr, 'end')]
  cat.stdout.resume()
  cat.stderr.on('data', () => assert.fail('stderr data'))
  assert.equal(cat.killed, false)
  cat.kill()
  assert.equal(cat.killed, true)
  const [code, signal] = await once(cat, 'exit')
  assert.equal(code, null)
  assert.equal(signal, 'SIGTERM')
  await Promise.all(ends)
})

// test-child-process-stdin.js
test('stdin: writes reach cat, stdin is writable only, exit 0, close has the whole response', async () => {
  const cat = spawn('cat')
  cat.stdin.write('hello')
  cat.stdin.write(' ')
  cat.stdin.write('world')
  assert.ok(cat.stdin.writable)
  assert.ok(!cat.stdin.readable)
  cat.stdin.end()
  const response = collectText(cat.stdout)
  cat.stderr.on('data', () => assert.fail('stderr data'))
  const stdoutEnd = once(cat.stdout, 'end')
  const stderrEnd = once(cat.stderr, 'end')
  const closed = once(cat, 'close')
  const [status] = await once(cat, 'exit')
  assert.equal(status, 0)
  await closed
  await Promise.all([stdoutEnd, stderrEnd])
  assert.equal(response(), 'hello world')
})

// test-child-process-exec-maxbuf.js (Node's exec kills at maxBuffer: onMaxBuffer 'kill').
const printed = (code) => [node, ['-e', code]]
test('exec-maxbuf: default 1 MiB, exceeded by one byte', async () => {
  const [cmd, args] = printed("console.log('a'.repeat(1024 * 1024))")
  await assert.rejects(exec(cmd, args, { onMaxBuffer: 'kill' }), (err) => {
    assert.equal(err.code, 'ERR_OUTPUT_TOO_LARGE')
    assert.equal(err.stdout, 'a'.repeat(1024 * 1024))
    return true
  })
})
test('exec-maxbuf: default 1 MiB, not exceeded', async () => {
  const [cmd, args] = printed("console.log('a'.repeat(1024 * 1024 - 1))")
  const { stdout, stderr } = await exec(cmd, args, { onMaxBuffer: 'kill' })
  assert.equal(stdout.trim(), 'a'.repeat(1024 * 1024 - 1))
  assert.equal(stderr, '')
})
test('exec-maxbuf: maxBuffer Infinity', async () => {
  const [cmd, args] = printed("console.log('hello world');")
  const { stdout, stderr } = await exec(cmd, args, { maxBuffer: Infinity, onMaxBuffer: 'kill' })
  assert.equal(stdout.trim(), 'hello world')
  assert.equal(stderr, '')
})
test('exec-maxbuf: echo hello world with maxBuffer 5 keeps "hello"', async () => {
  await assert.rejects(exec('echo hello world', { shell: true, maxBuffer: 5, onMaxBuffer: 'kill' }), (err) => {
    assert.equal(err.code, 'ERR_OUTPUT_TOO_LARGE')
    assert.equal(err.stdout, 'hello')
    return true
  })
})
const unicode = '中文测试' // 12 bytes
// Node counts characters once decoded; corepool counts bytes and cuts at a character boundary.
test('exec-maxbuf: unicode on stdout, maxBuffer 10 (bytes): the whole characters that fit', async () => {
  const [cmd, args] = printed(`console.log('${unicode}');`)
  await assert.rejects(exec(cmd, args, { maxBuffer: 10, onMaxBuffer: 'kill' }), (err) => {
    assert.equal(err.code, 'ERR_OUTPUT_TOO_LARGE')
    assert.equal(err.stdout, '中文测')
    return true
  })
})
test('exec-maxbuf: unicode on stderr, maxBuffer 3', async () => {
  const [cmd, args] = printed(`console.error('${unicode}');`)
  await assert.rejects(exec(cmd, args, { maxBuffer: 3, onMaxBuffer: 'kill' }), (err) => {
    assert.equal(err.stderr, '中')
    return true
  })
})
test('exec-maxbuf: encoding null, maxBuffer 5 keeps the first 5 bytes', async () => {
  const [cmd, args] = printed(`console.error('${unicode}');`)
  await assert.rejects(exec(cmd, args, { encoding: null, maxBuffer: 5, onMaxBuffer: 'kill' }), (err) => {
    assert.deepEqual(err.stderr, Buffer.from(unicode).subarray(0, 5))
    return true
  })
})

// test-child-process-env.js
test('env: values, undefined dropped, null stringified, empty kept, prototype keys included', async () => {
  const env = Object.assign({}, process.env, { HELLO: 'WORLD', UNDEFINED: undefined, NULL: null, EMPTY: '' })
  Object.setPrototypeOf(env, { FOO: 'BAR' })
  const child = spawn('/usr/bin/env', [], { env })
  const response = collectText(child.stdout)
  await once(child, 'close')
  assert.ok(response().includes('HELLO=WORLD'))
  assert.ok(response().includes('FOO=BAR'))
  assert.ok(!response().includes('UNDEFINED=undefined'))
  assert.ok(response().includes('NULL=null'))
  assert.ok(response().includes(`EMPTY=${os.EOL}`))
})

// test-child-process-default-options.js
test('default-options: process.env is the default environment', async () => {
  process.env.HELLO = 'WORLD'
  try {
    const child = spawn('/usr/bin/env', [], {})
    const response = collectText(child.stdout)
    await once(child, 'close')
    assert.ok(response().includes('HELLO=WORLD'), 'spawn did not use process.env as default')
  } finally {
    delete process.env.HELLO
  }
})

// test-child-process-exec-env.js
test('exec-env: env replaces nothing but is added to process.env; the command succeeds', async () => {
  const p = exec('/usr/bin/env', { env: { HELLO: 'WORLD' } })
  const response = collectText(p.stdout)
  const { stdout } = await p
  assert.notEqual(stdout, '')
  assert.ok(response().includes('HELLO=WORLD'))
})

// test-child-process-advanced-serialization.js
test('advanced-serialization: invalid serialization values', () => {
  for (const value of [null, 42, Infinity, 'foo']) {
    assert.throws(() => fork(compat('echo-message.cjs'), [], { serialization: value }), { code: 'ERR_INVALID_ARG' })
  }
})
test('advanced-serialization: typed arrays, Buffer, Map, BigInt, cycles and errors round-trip', async () => {
  const cp = fork(compat('echo-message.cjs'), [], { serialization: 'advanced' })
  const circular = {}
  circular.circular = circular
  for (const message of [
    { uint8: new Uint8Array(4) },
    { float64: new Float64Array([Math.PI]) },
    { buffer: Buffer.from('Hello!') },
    { map: new Map([{ a: 1 }, { b: 2 }]) },
    { bigInt: 1337n },
    circular,
    new Error('Something went wrong'),
    new RangeError('Something range-y went wrong'),
  ]) {
    cp.send(message)
    const [received] = await once(cp, 'message')
    assert.deepStrictEqual(received, message)
  }
  cp.disconnect()
  await cp.exited
})

// test-child-process-stdout-flush-exit.js
test('stdout-flush-exit: all output of a child that exits at once arrives', async () => {
  const child = spawn(node, [compat('flush-exit.cjs')])
  child.stderr.on('data', () => assert.fail('stderr data'))
  const out = collectText(child.stdout)
  await once(child, 'close')
  assert.ok(out().startsWith('hello\n'))
  assert.ok(out().endsWith('goodbye\n'))
})

// test-child-process-spawn-error.js
test('spawn-error: ENOENT sets up stdio, no spawn event, error with code, syscall, path, spawnargs', async () => {
  const enoentPath = 'foo123'
  const spawnargs = ['bar']
  assert.equal(fs.existsSync(enoentPath), false)
  const enoentChild = spawn(enoentPath, spawnargs)
  assert.notEqual(enoentChild.stdin, undefined)
  assert.notEqual(enoentChild.stdout, undefined)
  assert.notEqual(enoentChild.stderr, undefined)
  assert.ok(Array.isArray(enoentChild.stdio))
  assert.equal(enoentChild.stdio[0], enoentChild.stdin)
  assert.equal(enoentChild.stdio[1], enoentChild.stdout)
  assert.equal(enoentChild.stdio[2], enoentChild.stderr)
  enoentChild.on('spawn', () => assert.fail('spawn'))
  const err = await new Promise((resolve) => enoentChild.once('error', resolve))
  // corepool: err.code is ERR_SPAWN; the errno name is err.cause.code.
  assert.equal(err.code, 'ERR_SPAWN')
  assert.equal(err.cause.code, 'ENOENT')
  assert.equal(os.constants.errno.ENOENT, -err.errno)
  assert.equal(err.syscall, `spawn ${enoentPath}`)
  assert.equal(err.path, enoentPath)
  assert.deepEqual(err.spawnargs, spawnargs)
})

// test-child-process-spawn-argv0.js
test('spawn-argv0: without argv0 the child sees execPath', async () => {
  const { stdout } = await exec(node, [compat('print-argv0.cjs')])
  assert.equal(stdout.trim(), node)
})
test('spawn-argv0: with argv0', async () => {
  const { stdout } = await exec(node, [compat('print-argv0.cjs')], { argv0: 'withArgv0' })
  assert.equal(stdout.trim(), 'withArgv0')
})
test('spawn-argv0: argv0 must be a string', () => {
  assert.throws(() => spawn(node, [compat('print-argv0.cjs')], { argv0: [] }), { code: 'ERR_INVALID_ARG' })
})

// test-child-process-flush-stdio.js
test("flush-stdio: close fires for a child whose stdout was read() once before 'exit'", async () => {
  const p = spawn('echo', [])
  p.stdout.read()
  const [code, signal] = await once(p, 'close')
  assert.equal(code, 0)
  assert.equal(signal, null)
})
test("flush-stdio: data read in 'readable' handlers is all there at close", async () => {
  const buffer = []
  const p = spawn('echo', ['123'])
  p.stdout.on('readable', function () {
    setImmediate(() => {
      let buf
      while ((buf = this.read())) buffer.push(buf)
    })
  })
  const [code, signal] = await once(p, 'close')
  assert.equal(code, 0)
  assert.equal(signal, null)
  assert.equal(Buffer.concat(buffer).toString().trim(), '123')
})

// test-child-process-spawn-controller.js
const aliveScript = compat('forever.cjs')
async function abortedEnd(cp) {
  // Not events.once: it rejects when 'error' comes first.
  const error = new Promise((resolve) => cp.once('error', resolve))
  const [code, killSignal] = await new Promise((resolve) => cp.once('exit', (...a) => resolve(a)))
  const e = await error
  return { code, killSignal, name: e.name }
}
test('spawn-controller: passing an AbortSignal works', async () => {
  const controller = new AbortController()
  const cp = spawn(node, [aliveScript], { signal: controller.signal })
  const end = abortedEnd(cp)
  controller.abort()
  assert.deepEqual(await end, { code: null, killSignal: 'SIGTERM', name: 'AbortError' })
})
test('spawn-controller: an already aborted signal works', async () => {
  const controller = new AbortController()
  controller.abort()
  const cp = spawn(node, [aliveScript], { signal: controller.signal })
  assert.deepEqual(await abortedEnd(cp), { code: null, killSignal: 'SIGTERM', name: 'AbortError' })
})
test('spawn-controller: waiting a bit and aborting works', async () => {
  const controller = new AbortController()
  const cp = spawn(node, [aliveScript], { signal: controller.signal })
  const end = abortedEnd(cp)
  setTimeout(() => controller.abort(), 1)
  assert.deepEqual(await end, { code: null, killSignal: 'SIGTERM', name: 'AbortError' })
})
test('spawn-controller: a different killSignal', async () => {
  const controller = new AbortController()
  const cp = spawn(node, [aliveScript], { signal: controller.signal, killSignal: 'SIGKILL' })
  const end = abortedEnd(cp)
  setTimeout(() => controller.abort(), 1)
  assert.deepEqual(await end, { code: null, killSignal: 'SIGKILL', name: 'AbortError' })
})
test("spawn-controller: aborting after 'exit' (before 'close') emits no error", async () => {
  const controller = new AbortController()
  const cp = spawn(node, [aliveScript], { signal: controller.signal })
  cp.on('exit', () => controller.abort())
  cp.on('error', () => assert.fail('error'))
  setTimeout(() => cp.kill(), 1)
  await once(cp, 'close')
})

// test-child-process-cwd.js
async function testCwd(options, expectCode = 0, expectData) {
  const child = spawn('pwd', [], options)
  const data = collectText(child.stdout)
  const closed = once(child, 'close')
  const [code] = await once(child, 'exit')
  assert.equal(code, expectCode)
  await closed
  if (expectData) assert.equal(data().trim(), expectData)
}
test('cwd: a missing directory fails with ENOENT (no exit: ERR_SPAWN)', async () => {
  const child = spawn('pwd', [], { cwd: 'does-not-exist' })
  assert.equal(typeof child.pid, 'undefined')
  const e = await new Promise((resolve) => child.once('error', resolve))
  assert.equal(e.cause.code, 'ENOENT')
})
test('cwd: URLs that are not file URLs are refused', () => {
  assert.throws(() => spawn('pwd', [], { cwd: new URL('http://example.com/') }), /The URL must be of scheme file/)
  assert.throws(
    () => spawn('pwd', [], { cwd: new URL('file://host/dev/null') }),
    /File URL host must be "localhost" or empty/,
  )
})
test('cwd: existing directories, as paths and file URLs', async () => {
  const tmp = fs.realpathSync(os.tmpdir())
  await testCwd({ cwd: tmp }, 0, tmp)
  await testCwd({ cwd: '/dev' }, 0, '/dev')
  await testCwd({ cwd: pathToFileURL(tmp) }, 0, tmp)
})
test("cwd: '', undefined and null are not given", async () => {
  await testCwd({ cwd: '' })
  await testCwd({ cwd: undefined })
  await testCwd({ cwd: null })
})

// test-child-process-exec-timeout-expire.js
test('exec-timeout-expire: the child is killed with SIGTERM, killed and timedOut set', async () => {
  const p = exec(node, [aliveScript], { timeout: 100 })
  await assert.rejects(p, (err) => {
    assert.equal(err.code, 'ERR_CHILD_TIMEOUT')
    assert.equal(err.exitCode, null)
    assert.equal(err.signal, 'SIGTERM')
    assert.equal(err.stdout.trim(), '')
    assert.equal(err.stderr.trim(), '')
    return true
  })
  assert.equal(p.child.killed, true)
  assert.equal(p.child.timedOut, true)
})
