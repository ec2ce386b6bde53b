'use strict'
// Closing an HTTP server without failing a request (used by cluster workers on SIGTERM, and by
// apps through cluster.closeGracefully).
const net = require('node:net')

// Idle keep-alive connections are closed this long after the server stops accepting (a
// connection that carries another request before that is told `Connection: close`).
const IDLE_GRACE_MS = 1000

const kInFlight = Symbol('corepool.inFlight')
const kClosing = Symbol('corepool.closing')

/** HTTP servers: remember the responses in flight, and end keep-alive once closing. */
function trackResponses(server) {
  if (typeof server.closeIdleConnections !== 'function' || server[kInFlight]) return // not HTTP, or tracked
  server[kInFlight] = new Set()
  // First of the 'request' listeners: an app that answers synchronously (res.json() in the
  // handler) has sent its headers by the time a listener after it runs, too late to say
  // `Connection: close`; the connection would stay kept-alive until its idle close races
  // with the client's next request.
  server.prependListener('request', (req, res) => {
    if (server[kClosing]) res.shouldKeepAlive = false
    server[kInFlight].add(res)
    res.once('close', () => server[kInFlight].delete(res))
  })
}

/**
 * Stops accepting on `server` and lets its connections end without a request failing: responses
 * not yet started say `Connection: close`, requests arriving on kept-alive connections are
 * answered (with `Connection: close`), idle connections are closed after IDLE_GRACE_MS.
 * (http.Server#close() would close idle connections at once, which resets a request the client
 * is sending at that moment.) Calls `done` once every connection ended.
 */
function closeGracefully(server, done) {
  trackResponses(server) // from now on, if the server was not tracked yet
  server[kClosing] = true
  for (const res of server[kInFlight] ?? []) if (!res.headersSent) res.shouldKeepAlive = false
  net.Server.prototype.close.call(server, done)
  if (server[kInFlight] !== undefined) {
    const timer = setInterval(() => server.closeIdleConnections(), IDLE_GRACE_MS)
    timer.unref()
    server.once('close', () => clearInterval(timer))
  }
}

module.exports = { trackResponses, closeGracefully }
