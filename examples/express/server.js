'use strict'
// `npm start`: the example service on PORT (default 3000).
const { createApp } = require('./app')

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? '0.0.0.0'

const { app, close } = createApp()
const server = app.listen(port, host, () => {
  const { port: actual } = server.address()
  console.log(`corepool example listening on http://127.0.0.1:${actual}`)
  console.log(
    'routes: GET /health, GET /compute?n=, GET /compute-js?n=, POST /hash, POST /thumbnail?width=&height=&format=,',
    'GET /report.pdf, POST /jobs/transcode, GET /jobs/:id, GET /metrics',
  )
})

let stopping = false
async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.log(`${signal}: finishing in-flight requests`)
  // Stop accepting, let in-flight requests finish, then stop the pools.
  server.close()
  server.closeIdleConnections?.()
  await new Promise((resolve) => server.once('close', resolve))
  await close()
  console.log('stopped')
}
process.once('SIGTERM', () => shutdown('SIGTERM'))
process.once('SIGINT', () => shutdown('SIGINT'))
