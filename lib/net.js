// @ts-check
'use strict'
// Port sharing for multi-process servers (see README, "Several processes on one port").
const native = require('./native')
const { systemError } = require('./errors')
const check = require('./validate')

/**
 * Opens a listening socket on `host:port` with SO_REUSEPORT and returns its file descriptor,
 * for `server.listen({ fd })`. Every process that does the same shares the port.
 */
function listenReusePort(port, host = '0.0.0.0') {
  check.int(port, 'port', { max: 65535, required: true })
  check.string(host, 'host')
  const fd = native.listenReusePort(host, port)
  if (typeof fd !== 'number') throw systemError(`cannot listen on ${host}:${port}`, fd.errno, fd.syscall)
  return fd
}

module.exports = { listenReusePort }
