import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import fs from 'node:fs'
import path from 'node:path'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
const run = (...args) => spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', timeout: 120_000 })

test('examples/pdf writes valid PDFs and exits', () => {
  const r = run('examples/pdf')
  assert.equal(r.status, 0, r.stderr)
  const files = [...r.stdout.matchAll(/^(.+\.pdf): (\d+) bytes$/gm)]
  assert.equal(files.length, 4)
  for (const [, file] of files) {
    assert.equal(fs.readFileSync(file).subarray(0, 5).toString(), '%PDF-')
    fs.unlinkSync(file)
  }
})

test('examples/image makes the same thumbnail with sharp in a JS task and with native resize', () => {
  const r = run('examples/image')
  assert.equal(r.status, 0, r.stderr)
  const sizes = [...r.stdout.matchAll(/: (\d+)x(\d+), \d+ bytes in [\d.]+ ms -> (.+\.jpg)$/gm)]
  assert.equal(sizes.length, 2, r.stdout)
  for (const [, w, h, file] of sizes) {
    assert.deepEqual([Number(w), Number(h)], [320, 240])
    const jpeg = fs.readFileSync(file)
    assert.deepEqual([...jpeg.subarray(0, 2)], [0xff, 0xd8])
    fs.unlinkSync(file)
  }
})

test('examples/child-processes run and exit', () => {
  const fork = run('examples/child-processes/fork-and-message.mjs')
  assert.equal(fork.status, 0, fork.stderr)
  assert.match(fork.stdout, /squares: 1, 4, 9, 16, 25/)
  const transcode = run('examples/child-processes/transcode.mjs')
  assert.equal(transcode.status, 0, transcode.stderr)
  const supervised = run('examples/child-processes/supervised.mjs')
  assert.equal(supervised.status, 0, supervised.stderr)
  assert.match(supervised.stdout, /flaky: starts \d+, restarts \d+/)
})
