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
