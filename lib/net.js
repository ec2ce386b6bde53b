'use strict'
// Port sharing for multi-process servers (see README, "Several processes on one port").
const native = require('./native')
const { invalidArg, describe, systemError } = require('./errors')

/**
 * Opens a listening socket on `host:port` with SO_REUSEPORT and returns its file descriptor,
 * for `server.listen({ fd })`. Every process that does the same shares the port.
 */
function listenReusePort(port, host = '0.0.0.0') {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw invalidArg(`port must be an integer from 0 to 65535, got ${describe(port)}`)
  }
  if (typeof host !== 'string') throw invalidArg(`host must be an IP address string, got ${describe(host)}`)
  const fd = native.listenReusePort(host, port)
  if (typeof fd !== 'number') throw systemError(`cannot listen on ${host}:${port}`, fd.errno, fd.syscall)
  return fd
}

module.exports = { listenReusePort }
