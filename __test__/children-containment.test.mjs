// Containment: no descendant of a child survives the parent, even one that left the child's
// process group and session (setsid, double-forking daemons), and child.kill() reaches those too.
// The 100-run soak with timings is bench/orphans.mjs.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { gone, waitGone, startOrphanParent } from './fixtures/proc.mjs'
import { spawn } from '../index.mjs'

const here = path.dirname(fileURLToPath(import.meta.url))
const helper = fs.existsSync(path.join(here, '..', 'corepool-watchdog')) && process.env.COREPOOL_SUBREAPER_PATH !== ''

function session(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[3])
}

/** Waits until `pid` runs in a session other than `other`'s (setsid may not have run yet). */
async function escapes(pid, other) {
  for (let i = 0; i < 200 && session(pid) === session(other); i++) await new Promise((r) => setTimeout(r, 10))
  return session(pid) !== session(other)
}

for (const mode of ['tree', 'setsid', 'daemon']) {
  test(
    `parent SIGKILLed: no survivor (${mode}), 10 runs`,
    { skip: !helper && mode !== 'tree' && 'needs the subreaper helper' },
    async () => {
      for (let run = 0; run < 10; run++) {
        const { parent, pids } = await startOrphanParent(mode)
        const targets = [pids.child, pids.grandchild]
        try {
          assert.ok(!targets.some(gone), `run ${run}: ${JSON.stringify(pids)} not running`)
          if (mode !== 'tree') assert.ok(await escapes(pids.grandchild, pids.child), 'did not escape')
        } finally {
          parent.kill('SIGKILL')
        }
        const ok = await waitGone(targets, 5000)
        if (!ok) for (const pid of targets) if (!gone(pid)) process.kill(pid, 'SIGKILL')
        assert.ok(ok, `run ${run}: ${JSON.stringify(pids)} survived`)
      }
    },
  )
}

test(
  'child.kill() reaches descendants that escaped the tree (setsid, double fork)',
  { skip: !helper && 'needs the subreaper helper' },
  async () => {
    const child = spawn('sh', ['-c', 'setsid sleep 300 & echo $!; sh -c "setsid sleep 300 & echo \\$!"; sleep 300'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    })
    const lines = child.lines()
    const escaped = [Number((await lines.next()).value), Number((await lines.next()).value)]
    await lines.return()
    try {
      for (const pid of escaped) assert.ok(await escapes(pid, child.pid), `${pid} did not escape`)
      assert.equal(child.kill(), true)
      assert.equal((await child.exited).signal, 'SIGTERM')
      assert.ok(await waitGone(escaped, 5000), `escaped ${escaped} survived kill()`)
    } finally {
      for (const pid of escaped) if (!gone(pid)) process.kill(pid, 'SIGKILL')
    }
  },
)
