'use strict'
// `npm start`: the example service on PORT (default 3000).
// `npm start -- --workers N`: N server processes in a corepool cluster, sharing the port and one
// shared-memory counter region, so /metrics on any of them shows the totals (and every
// worker's gauges, labelled worker="<id>"). SIGHUP reloads them one by one, no request failing.
const { createApp, counterNames } = require('./app')
const { cluster } = require('../../index.js')

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '0.0.0.0'
const workersArg = process.argv.indexOf('--workers')
const workers = workersArg >= 0 ? Number(process.argv[workersArg + 1]) : 0
const ROUTES =
  'routes: GET /health, GET /compute?n=, GET /compute-js?n=, POST /hash, POST /thumbnail?width=&height=&format=, ' +
  'GET /report.pdf, POST /jobs/transcode?format= (needs ffmpeg), GET /jobs/:id, GET /jobs/:id/output, GET /metrics'

/** The transcoder: ffmpeg, or a stand-in script named by COREPOOL_EXAMPLE_TRANSCODER (tests). */
function transcodeOptions() {
  const script = process.env.COREPOOL_EXAMPLE_TRANSCODER
  return script ? { command: process.execPath, args: (input, output) => [script, input, output] } : undefined
}

/** One server process (alone, or a worker of the cluster, which hands it the shared port). */
async function serve() {
  const counters = cluster.isWorker ? cluster.counters() : undefined
  const { app, close } = createApp({ counters, transcode: transcodeOptions() })
  const server = app.listen(port, host)
  await new Promise((resolve) => server.once('listening', resolve))
  if (!cluster.isWorker) {
    console.log(`corepool example listening on http://127.0.0.1:${server.address().port}`)
    console.log(ROUTES)
  }
  let stopping = false
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, async () => {
      if (stopping) return
      stopping = true
      if (!cluster.isWorker) console.log(`${signal}: finishing in-flight requests`)
      try {
        // Stop accepting, let in-flight requests finish (no kept-alive request fails), then
        // stop pools and children.
        await cluster.closeGracefully(server)
        await close()
        if (!cluster.isWorker) console.log('stopped')
      } catch (err) {
        console.error(err)
        process.exitCode = 1
      }
      process.disconnect?.()
    })
  }
}

/** `--workers N`: the supervising process. */
async function supervise(n) {
  const c = await cluster({
    module: __filename,
    workers: n,
    port,
    host,
    name: `corepool-example-${port || process.pid}`,
    counters: counterNames(),
    shutdownMs: 10_000,
  })
  const pids = c
    .status()
    .workers.map((w) => w.pid)
    .join(', ')
  console.log(`corepool example listening on http://127.0.0.1:${c.port} (${n} workers: ${pids})`)
  console.log(ROUTES)
  c.on('stop', () => console.log('stopped'))
  c.on('error', (err) => {
    console.error(`cluster gave up: ${err.message}`)
    process.exitCode = 1
  })
}

const main = cluster.isWorker || !(workers > 0) ? serve() : supervise(workers)
main.catch((err) => {
  console.error(err)
  process.exit(1)
})
