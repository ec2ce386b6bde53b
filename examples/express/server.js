'use strict'
// `npm start`: the example service on PORT (default 3000).
// `npm start -- --workers N`: N server processes under a corepool Supervisor, sharing the port
// (SO_REUSEPORT) and one shared-memory counter region, so /metrics on any of them shows totals.
const net = require('node:net')
const { createApp, counterNames } = require('./app')
const { SharedCounters, Supervisor, listenReusePort } = require('../../index.js')

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '0.0.0.0'
const workersArg = process.argv.indexOf('--workers')
const workers = workersArg >= 0 ? Number(process.argv[workersArg + 1]) : 0
const ROUTES =
  'routes: GET /health, GET /compute?n=, GET /compute-js?n=, POST /hash, POST /thumbnail?width=&height=&format=, ' +
  'GET /report.pdf, POST /jobs/transcode?format=, GET /jobs/:id, GET /jobs/:id/output, GET /metrics'

/** The transcoder: ffmpeg, or a stand-in script named by COREPOOL_EXAMPLE_TRANSCODER (tests). */
function transcodeOptions() {
  const script = process.env.COREPOOL_EXAMPLE_TRANSCODER
  return script ? { command: process.execPath, args: (input, output) => [script, input, output] } : undefined
}

function onSignals(handler) {
  let stopping = false
  for (const signal of ['SIGTERM', 'SIGINT']) {
    process.once(signal, () => {
      if (stopping) return
      stopping = true
      handler(signal).catch((err) => {
        console.error(err)
        process.exitCode = 1
      })
    })
  }
}

/** One server process. In a group, it listens on the shared port and uses the shared region. */
async function serve() {
  const region = process.env.COREPOOL_EXAMPLE_REGION
  // The supervising process created the region (with its own counters besides the app's).
  const counters = region ? SharedCounters.open(region) : undefined
  const { app, close } = createApp({ counters, transcode: transcodeOptions() })
  const server = region ? app.listen({ fd: listenReusePort(port, host) }) : app.listen(port, host)
  await new Promise((resolve) => server.once('listening', resolve))
  if (!region) {
    console.log(`corepool example listening on http://127.0.0.1:${server.address().port}`)
    console.log(ROUTES)
  }
  process.send?.('ready')

  onSignals(async (signal) => {
    if (!region) console.log(`${signal}: finishing in-flight requests`)
    // Stop accepting, let in-flight requests finish, then stop pools and children.
    const closed = new Promise((resolve) => server.close(resolve))
    server.closeIdleConnections?.()
    await closed
    await close()
    if (!region) console.log('stopped')
    process.disconnect?.()
  })
}

/** The supervising process of `--workers N`. */
async function supervise(n) {
  // Pick the port once (port 0: an ephemeral one) so every worker binds the same.
  const probe = net.createServer().listen({ fd: listenReusePort(port, host) })
  await new Promise((resolve) => probe.once('listening', resolve))
  const actualPort = probe.address().port
  await new Promise((resolve) => probe.close(resolve))

  const region = `corepool-example-${process.pid}`
  const ids = Array.from({ length: n }, (_, i) => `web-${i}`)
  const counters = SharedCounters.open(region, {
    names: [...counterNames(), ...Supervisor.counterNames(ids)],
    create: true,
  })
  const supervisor = new Supervisor({
    counters,
    strategy: 'one_for_one',
    intensity: 10,
    period: 10_000,
    backoff: { initial: 100, factor: 2, max: 5_000 },
  })
  for (const id of ids) {
    supervisor.add({
      id,
      module: __filename,
      options: {
        env: { ...process.env, PORT: String(actualPort), HOST: host, COREPOOL_EXAMPLE_REGION: region },
        stdio: 'inherit',
      },
      ready: { message: 'ready', timeout: 30_000 },
      shutdownMs: 10_000,
    })
  }
  supervisor.on('restart', (id, { attempt, delayMs }) =>
    console.log(`${id} restarting (#${attempt}, in ${delayMs} ms)`),
  )
  const cleanup = () => SharedCounters.unlink(region)
  supervisor.done.catch((err) => {
    console.error(`supervisor gave up: ${err.message}`)
    cleanup()
    process.exitCode = 1
  })
  await supervisor.start()
  const pids = supervisor
    .status()
    .children.map((c) => c.pid)
    .join(', ')
  console.log(`corepool example listening on http://127.0.0.1:${actualPort} (${n} workers: ${pids})`)
  console.log(ROUTES)

  onSignals(async (signal) => {
    console.log(`${signal}: stopping workers`)
    await supervisor.stop()
    cleanup()
    console.log('stopped')
  })
}

const main = process.env.COREPOOL_EXAMPLE_REGION || !(workers > 0) ? serve() : supervise(workers)
main.catch((err) => {
  console.error(err)
  process.exit(1)
})
