// A Supervisor keeping two processes up: a forked worker that announces readiness over IPC, and a
// command that crashes now and then (restarted with backoff). Stops everything after 3 s.
//   node examples/child-processes/supervised.mjs
import { Supervisor } from '../../index.mjs'

const sup = new Supervisor({
  strategy: 'one_for_one',
  intensity: 5,
  period: 10_000,
  backoff: { initial: 100, factor: 2, max: 2000 },
})
// The worker sends { type: 'ready', pid } once it listens: a predicate recognises it.
sup.add({
  id: 'worker',
  module: new URL('./worker.cjs', import.meta.url),
  ready: { message: (m) => m?.type === 'ready' },
})
sup.add({ id: 'flaky', command: 'sh', args: ['-c', 'echo flaky up; sleep 0.5; exit 1'], ready: { line: 'flaky up' } })

sup.on('start', (id, pid) => console.log(`start   ${id} (pid ${pid})`))
sup.on('exit', (id, { code, signal, expected }) =>
  console.log(`exit    ${id} ${signal ?? code}${expected ? ' (stopping)' : ''}`),
)
sup.on('restart', (id, { attempt, delayMs }) => console.log(`restart ${id} #${attempt} in ${delayMs} ms`))
sup.on('gaveUp', (err) => console.log(`gave up: ${err.message}`))

await sup.start()
console.log(
  'all started:',
  sup
    .status()
    .children.map((c) => `${c.id}=${c.state}`)
    .join(', '),
)
await new Promise((resolve) => setTimeout(resolve, 3000))
await sup.stop()
for (const c of sup.status().children)
  console.log(`${c.id}: starts ${c.starts}, restarts ${c.restarts}, exits ${c.exits}`)
