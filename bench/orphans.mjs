// Soak test for "no orphans": N times per scenario, start a Node parent that spawns (through
// corepool) a child with a grandchild that stays in its tree (`tree`), leaves its group and
// session while its parent lives (`setsid`), or is a double-forked daemon in a session of its
// own (`daemon`); SIGKILL the parent and check that child and grandchild are gone within 1 s.
// Usage: node bench/orphans.mjs [runs=100] [scenarios=tree,setsid,daemon]
import fs from 'node:fs'
import { gone, startOrphanParent } from '../__test__/fixtures/proc.mjs'

const runs = Number(process.argv[2] ?? 100)
const scenarios = (process.argv[3] ?? 'tree,setsid,daemon').split(',')
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

let total = 0
for (const mode of scenarios) {
  let orphans = 0
  let worst = 0
  for (let i = 0; i < runs; i++) {
    const { parent, pids } = await startOrphanParent(mode)
    const killedAt = performance.now()
    parent.kill('SIGKILL')
    const targets = [pids.child, pids.grandchild]
    while (!targets.every(gone) && performance.now() - killedAt < 1000) await sleep(5)
    const took = performance.now() - killedAt
    worst = Math.max(worst, took)
    const left = targets.filter((pid) => !gone(pid))
    if (left.length > 0) {
      orphans += left.length
      const which = left.map((pid) => (pid === pids.child ? `child ${pid}` : `grandchild ${pid}`)).join(', ')
      while (!left.every(gone) && performance.now() - killedAt < 10000) await sleep(5)
      const late = left.every(gone)
        ? `gone after ${(performance.now() - killedAt).toFixed(0)} ms`
        : 'still alive after 10 s'
      console.error(
        `${mode} run ${i}: ${which} alive after 1 s (${late}); load ${fs.readFileSync('/proc/loadavg', 'utf8').trim()}`,
      )
      for (const pid of left) {
        try {
          process.kill(pid, 'SIGKILL')
        } catch {}
      }
    }
  }
  total += orphans
  console.log(`${mode}: ${runs} runs, ${orphans} survivors after 1 s; slowest cleanup ${worst.toFixed(1)} ms`)
}
process.exitCode = total === 0 ? 0 : 1
