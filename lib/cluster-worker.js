'use strict'
// Preloaded (`node --require`) into every worker of a corepool cluster (lib/cluster.js).
//
// - A server that listens on the cluster's port listens on the cluster's socket instead: the
//   listening socket the supervising process holds, inherited as fd 0 (so connections waiting
//   in its queue survive any worker's exit), or with `reusePort`, a socket of its own bound
//   with SO_REUSEPORT. The app's code stays `app.listen(PORT)`.
// - Once such a server listens, the worker tells the cluster (it is ready).
// - SIGTERM/SIGINT, when the app installs no handler of its own: stop accepting, finish the
//   in-flight requests, then exit.
const net = require('node:net')
const { trackResponses, closeGracefully } = require('./graceful')

const port = Number(process.env.COREPOOL_CLUSTER_PORT)
const host = process.env.COREPOOL_CLUSTER_HOST || '0.0.0.0'
const sharedFd = process.env.COREPOOL_LISTEN_FD === undefined ? null : Number(process.env.COREPOOL_LISTEN_FD)
const servers = new Set()

/** The port a `listen(...)` call asks for, or null (a path, a handle, no port). */
function requestedPort(args) {
  const first = args[0]
  if (typeof first === 'object' && first !== null) {
    if (first.fd !== undefined || first.path !== undefined || first.handle !== undefined) return null
    return first.port === undefined ? null : Number(first.port)
  }
  if (typeof first === 'number' || (typeof first === 'string' && /^[0-9]+$/.test(first))) return Number(first)
  return null
}

if (Number.isInteger(port) && port > 0) {
  const listen = net.Server.prototype.listen
  net.Server.prototype.listen = function corepoolClusterListen(...args) {
    if (requestedPort(args) !== port) return listen.apply(this, args)
    const callback = typeof args[args.length - 1] === 'function' ? args[args.length - 1] : undefined
    const fd = sharedFd ?? require('./net').listenReusePort(port, host)
    servers.add(this)
    trackResponses(this)
    this.once('listening', () => process.send?.({ type: 'corepool:listening', port }))
    this.once('close', () => servers.delete(this))
    return listen.call(this, { fd }, callback)
  }
}

function shutdown(signal) {
  // The app has its own handler: it decides (this one was installed first).
  if (process.listenerCount(signal) > 1) return
  if (servers.size === 0) process.exit(0)
  let open = servers.size
  for (const server of servers) {
    closeGracefully(server, () => {
      if (--open === 0) process.exit(0)
    })
  }
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => shutdown(signal))
