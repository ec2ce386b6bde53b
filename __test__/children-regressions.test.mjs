// Regression tests for defects found by porting child_process users' habits to corepool.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn as nodeSpawn } from 'node:child_process'
import { getEventListeners } from 'node:events'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gone, waitGone } from './fixtures/proc.mjs'
import { spawn, exec, fork, Supervisor, CorepoolError } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', name)
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/** Runs a Node script with node:child_process; resolves { code, stdout, stderr }. */
function runNode(script, { args = [], input = '' } = {}) {
  return new Promise((resolve, reject) => {
    const p = nodeSpawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    p.stdout.on('data', (d) => (stdout += d))
    p.stderr.on('data', (d) => (stderr += d))
    p.on('error', reject)
    p.on('close', (code) => resolve({ code, stdout, stderr }))
    p.stdin.end(input)
  })
}

test("stdio 'inherit' / [0, 1, 2] and fork's default: the child gets the parent's open stdio", async () => {
  // Node marks its own fds 0-2 close-on-exec; passed on as they are, execve would close them.
  const r = await runNode(fixture('inherit-parent.mjs'), { input: 'a\nb\nc\n' })
  assert.equal(r.code, 0, r.stderr)
  assert.equal(r.stdout, 'out:a\ncode:0\nout:b\ncode:0\nout:c\ncode:0\nforked out\nfork code:0\n')
  assert.equal(r.stderr, 'err\nerr\nerr\nforked err\n')
})

const fdCount = () => fs.readdirSync('/proc/self/fd').length
function closed(child) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`'close' did not follow the exit of ${child.pid}`)), 10_000)
    child.once('close', (code, signal) => {
      clearTimeout(t)
      resolve({ code, signal })
    })
  })
}

test("unread pipes are closed at exit: 'close' follows 'exit', stdin is destroyed", async () => {
  // Output nobody reads, stdin nobody ends.
  const child = spawn('sh', ['-c', 'echo out; echo err >&2'])
  const events = []
  child.on('exit', () => events.push('exit'))
  child.on('close', () => events.push('close'))
  assert.deepEqual(await closed(child), { code: 0, signal: null })
  assert.deepEqual(events, ['exit', 'close'])
  assert.equal(child.stdin.destroyed, true)
  assert.equal(child.stdout.destroyed, true)
  assert.equal(child.stderr.destroyed, true)
  // Reading may still start in the tick of 'exit' (as with child_process); nothing is lost then.
  const late = spawn('sh', ['-c', 'echo late'])
  const got = await new Promise((resolve) => {
    late.on('exit', () => {
      let s = ''
      late.stdout.on('data', (d) => (s += d))
      late.stdout.on('end', () => resolve(s))
    })
  })
  assert.equal(got, 'late\n')
})

test('the fd count stays flat over 2 000 spawns in every usage pattern', async () => {
  const patterns = {
    'pipes unread': async () => {
      const c = spawn('true')
      await Promise.all([c.exited, closed(c)])
    },
    'output read': async () => {
      const c = spawn('sh', ['-c', 'echo out; echo err >&2'])
      c.stdout.on('data', () => {})
      c.stderr.resume()
      await Promise.all([c.exited, closed(c)])
    },
    'stdin ended': async () => {
      const c = spawn('cat')
      c.stdin.end('x')
      c.stdout.resume()
      await Promise.all([c.exited, closed(c)])
    },
    exec: async () => {
      await exec('echo', ['x'])
    },
  }
  for (const [name, run] of Object.entries(patterns)) {
    for (let i = 0; i < 20; i++) await run() // warm up: the watchdog, reaper and their descriptors
    const before = fdCount()
    let started = 0
    // 8 at a time: quicker, and a leak shows just the same.
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (started++ < 2000) await run()
      }),
    )
    const after = fdCount()
    assert.ok(after <= before + 2, `${name}: ${before} fds before 2 000 spawns, ${after} after`)
  }
})

async function output(child) {
  let out = ''
  child.stdout.setEncoding('utf8')
  for await (const chunk of child.stdout) out += chunk
  return out
}

/** The watchdog: our child that kills our children's trees when we die (the subreaper helper,
 * or the /bin/sh script without it). */
function watchdogPid() {
  for (const task of fs.readdirSync('/proc/self/task')) {
    const kids = fs.readFileSync(`/proc/self/task/${task}/children`, 'utf8').split(' ').filter(Boolean)
    for (const pid of kids) {
      try {
        const cmdline = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8')
        if (cmdline.startsWith('corepool-watchdog') || cmdline.includes("trap '' HUP INT QUIT TERM PIPE")) {
          return Number(pid)
        }
      } catch {}
    }
  }
  return undefined
}

test('after the watchdog died, the next child runs (no SIGPIPE) and a new watchdog takes over', async () => {
  const running = spawn('sleep', ['30'])
  await running.spawned
  const first = watchdogPid()
  assert.ok(first > 0, 'no watchdog found')
  const isHelper = fs.readFileSync(`/proc/${first}/cmdline`, 'utf8').startsWith('corepool-watchdog')
  process.kill(first, 'SIGKILL')
  assert.ok(await waitGone([first], 5000))
  if (isHelper) {
    // The children of a helper that died die with it (death signal), and their end is reported.
    assert.equal((await running.exited).signal, 'SIGKILL')
  } else running.kill('SIGKILL')
  for (let i = 0; i < 3; i++) {
    const child = spawn('echo', ['alive'])
    const [out, result] = await Promise.all([output(child), child.exited])
    assert.deepEqual([out, result.code, result.signal], ['alive\n', 0, null])
  }
  const second = watchdogPid()
  assert.ok(second > 0 && second !== first, `watchdog ${first} was not replaced (${second})`)
})

test('kill() after the exit sends nothing and returns false, even with a grandchild in the group', async () => {
  // The grandchild keeps the group alive; once the leader is reaped its id may be reused.
  const child = spawn('sh', ['-c', 'sleep 30 & echo $!'], { stdio: ['ignore', 'pipe', 'ignore'] })
  const lines = child.lines()
  const grandchild = Number((await lines.next()).value)
  await child.exited
  try {
    assert.equal(child.kill(), false)
    assert.equal(child.kill('SIGKILL', { tree: true }), false)
    await sleep(200)
    assert.equal(gone(grandchild), false, 'kill() after the exit signalled the old process group')
  } finally {
    process.kill(grandchild, 'SIGKILL')
  }
})

const root = process.getuid?.() === 0
const python = fs.existsSync('/usr/bin/python3')
test(
  'uid/gid: the death signal survives the change of credentials',
  { skip: (!root && 'needs root') || (!python && 'needs python3 for prctl(PR_GET_PDEATHSIG)') },
  async () => {
    const script = [
      'import ctypes',
      'v = ctypes.c_int(0)',
      'ctypes.CDLL(None).prctl(2, ctypes.byref(v))', // PR_GET_PDEATHSIG
      'print(v.value)',
    ].join('\n')
    const { stdout } = await exec('python3', ['-c', script], { uid: 65534, gid: 65534 })
    assert.equal(stdout.trim(), '9') // SIGKILL
  },
)

test("exec: input wins over the stdin given in 'stdio'", async () => {
  for (const stdio of ['inherit', 'ignore', ['ignore', 'pipe', 'pipe']]) {
    const r = await exec('cat', [], { input: 'from input', stdio })
    assert.equal(r.stdout, 'from input')
  }
})

test('exec: maxBuffer cuts at a character boundary', async () => {
  // 'aé€': 1 + 2 + 3 bytes.
  for (const [max, expected] of [
    [1, 'a'],
    [2, 'a'],
    [3, 'aé'],
    [4, 'aé'],
    [5, 'aé'],
    [6, 'aé€'],
  ]) {
    const r = await exec('printf', ['aé€'], { maxBuffer: max, reject: false })
    assert.equal(r.stdout, expected, `maxBuffer ${max}`)
    assert.equal(r.truncated, max < 6)
    assert.ok(!r.stdout.includes('\uFFFD'))
  }
})

test('NUL bytes in command, args, cwd, env, argv0 or shell are ERR_INVALID_ARG up front', async () => {
  const bad = [
    ['tr\0ue', []],
    ['true', ['a\0b']],
    ['true', [], { cwd: '/tmp\0x' }],
    ['true', [], { env: { A: 'x\0y' } }],
    ['true', [], { env: { 'A\0B': 'x' } }],
    ['true', [], { argv0: 'a\0' }],
    ['true', [], { shell: '/bin/sh\0' }],
  ]
  for (const [cmd, args, options] of bad) {
    assert.throws(() => spawn(cmd, args, options), { code: 'ERR_INVALID_ARG' }, JSON.stringify([cmd, args, options]))
    const p = exec(cmd, args, options)
    assert.ok(p instanceof Promise)
    await assert.rejects(p, { code: 'ERR_INVALID_ARG' })
  }
})

test('cwd \'\' / null and timeout 0 mean "not given"; env keys from the prototype are passed', async () => {
  for (const cwd of ['', null]) {
    const r = await exec('pwd', [], { cwd })
    assert.equal(r.stdout.trim(), process.cwd())
  }
  const r = await exec('sleep', ['0.2'], { timeout: 0 })
  assert.equal(r.code, 0)
  const env = Object.create({ FROM_PROTO: 'proto' })
  env.OWN = 'own'
  const e = await exec('sh', ['-c', 'echo "$FROM_PROTO $OWN"'], { env })
  assert.equal(e.stdout, 'proto own\n')
})

test("the AbortSignal listener is removed before 'exit'", async () => {
  const ac = new AbortController()
  const child = spawn('true', [], { signal: ac.signal })
  assert.equal(getEventListeners(ac.signal, 'abort').length, 1)
  const during = await new Promise((resolve) => child.on('exit', () => resolve(getEventListeners(ac.signal, 'abort'))))
  assert.equal(during.length, 0)
  // A spawn failure too.
  const failed = spawn('corepool-no-such-command', [], { signal: ac.signal })
  await assert.rejects(failed.exited, { code: 'ERR_SPAWN' })
  assert.equal(getEventListeners(ac.signal, 'abort').length, 0)
})

test('send() on a closed IPC channel fails with ERR_IPC_CHANNEL_CLOSED', async () => {
  const child = fork(fixture('print-child.cjs'), [], { silent: true })
  child.stdout.resume()
  child.stderr.resume()
  await child.exited
  await new Promise((resolve) => (child.connected ? child.once('disconnect', resolve) : resolve()))
  const err = await new Promise((resolve) => assert.equal(child.send({ a: 1 }, resolve), false))
  assert.equal(err.code, 'ERR_IPC_CHANNEL_CLOSED')
  assert.ok(err instanceof CorepoolError)
  const emitted = new Promise((resolve) => child.once('error', resolve))
  assert.equal(child.send('x'), false)
  assert.equal((await emitted).code, 'ERR_IPC_CHANNEL_CLOSED')
})

test("'spawn' is always emitted before the first 'data'", async () => {
  const runs = 300
  let early = 0
  await Promise.all(
    Array.from({ length: 6 }, async (_, w) => {
      for (let i = w; i < runs; i += 6) {
        const child = spawn('echo', ['x'])
        let spawned = false
        child.on('spawn', () => {
          spawned = true
          assert.ok(child.pid > 0)
        })
        child.stdout.on('data', () => {
          if (!spawned) early++
        })
        await new Promise((resolve) => child.on('close', resolve))
        assert.equal(spawned, true)
      }
    }),
  )
  assert.equal(early, 0, `${early} of ${runs} children emitted 'data' before 'spawn'`)
})

test('durations of 2^31 ms and more, and Infinity, mean what they say', async () => {
  const warnings = []
  const onWarning = (w) => warnings.push(w.name)
  process.on('warning', onWarning)
  try {
    for (const timeout of [2 ** 31, 2 ** 40, Number.MAX_VALUE, Infinity]) {
      const r = await exec('sleep', ['0.3'], { timeout, forceKillAfter: timeout })
      assert.equal(r.code, 0, `timeout ${timeout}`)
    }
    // forceKillAfter: SIGTERM is ignored; a huge grace must not turn into an immediate SIGKILL.
    const child = spawn('sh', ['-c', "trap '' TERM; echo ready; sleep 0.5"], { forceKillAfter: 2 ** 31 })
    const lines = child.lines()
    await lines.next()
    child.kill('SIGTERM')
    assert.deepEqual(await child.exited.then((r) => [r.code, r.signal]), [0, null])
    // Supervisor: shutdownMs, ready.timeout and backoff.
    for (const ms of [2 ** 31, Infinity]) {
      const sup = new Supervisor({ backoff: { initial: 1, max: ms } })
      sup.add({
        id: 'x',
        command: 'sh',
        args: ['-c', "trap 'sleep 0.3; exit 0' TERM; echo ready; while :; do sleep 0.05; done"],
        options: { stdio: ['ignore', 'pipe', 'ignore'] },
        shutdownMs: ms,
        ready: { line: 'ready', timeout: ms },
      })
      const exits = []
      sup.on('exit', (id, info) => exits.push(info))
      await sup.start()
      await sleep(100) // a ready.timeout that fired at once would have killed it by now
      assert.equal(exits.length, 0, `ready.timeout ${ms} killed the child`)
      await sup.stop()
      assert.deepEqual(
        exits.map((e) => [e.code, e.signal]),
        [[0, null]],
        `shutdownMs ${ms}: the child was not given its grace`,
      )
    }
  } finally {
    process.off('warning', onWarning)
  }
  assert.deepEqual(
    warnings.filter((n) => n === 'TimeoutOverflowWarning'),
    [],
  )
})

test('lines() of a child that could not start throws the ERR_SPAWN error', async () => {
  const child = spawn('corepool-no-such-command')
  await assert.rejects(
    async () => {
      for await (const line of child.lines()) assert.fail(`unexpected line ${line}`)
    },
    (err) => err.code === 'ERR_SPAWN' && err.cause.code === 'ENOENT',
  )
  await assert.rejects(child.exited, { code: 'ERR_SPAWN' })
})
