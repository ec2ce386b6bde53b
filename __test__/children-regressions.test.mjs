// Regression tests for defects found by porting child_process users' habits to corepool.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn as nodeSpawn } from 'node:child_process'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

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
