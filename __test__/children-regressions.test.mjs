// Regression tests for defects found by porting child_process users' habits to corepool.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn as nodeSpawn } from 'node:child_process'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { spawn, exec } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const fixture = (name) => path.join(here, 'fixtures', name)

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
