// Error codes: one list (crates/core/src/error.rs), honest codes for failures that are not bad
// arguments.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import net from 'node:net'
import os from 'node:os'
import { execFileSync } from 'node:child_process'
import corepool from '../index.js'
import errors from '../lib/errors.js'
import codes from '../lib/error-codes.js'

const { CorepoolError, listenReusePort } = corepool

test('every copy of the error list matches crates/core/src/error.rs', () => {
  const out = execFileSync(
    process.execPath,
    [new URL('../scripts/error-codes.js', import.meta.url).pathname, '--check'],
    {
      encoding: 'utf8',
    },
  )
  assert.match(out, /every copy up to date/)
  assert.deepEqual(
    [...errors.CODES],
    codes.map(({ code }) => code),
  )
  assert.ok(errors.CODES.has('ERR_SYSTEM'))
})

test('one errno naming for every error: the platform name, UNKNOWN when it has none', () => {
  assert.equal(errors.errnoName(os.constants.errno.ENOENT), 'ENOENT')
  assert.equal(errors.errnoName(os.constants.errno.ECHILD), 'ECHILD')
  assert.equal(errors.errnoName(99999), 'UNKNOWN')
  const err = errors.systemError('cannot do it', 99999, 'bind')
  assert.equal(err.message, 'cannot do it: bind UNKNOWN')
  assert.equal(err.errno, -99999)
})

test('a port held without SO_REUSEPORT is ERR_SYSTEM with errno and syscall, not a bad argument', async () => {
  const server = net.createServer()
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address()
  try {
    assert.throws(
      () => listenReusePort(port, '127.0.0.1'),
      (err) => {
        assert.ok(err instanceof CorepoolError)
        assert.equal(err.code, 'ERR_SYSTEM')
        assert.equal(err.syscall, 'bind')
        assert.equal(err.errno, -os.constants.errno.EADDRINUSE)
        assert.match(err.message, /EADDRINUSE/)
        return true
      },
    )
  } finally {
    server.close()
  }
  assert.throws(() => listenReusePort(70000), { code: 'ERR_INVALID_ARG' })
})

test('what a native call throws maps to documented codes', () => {
  const ours = new CorepoolError('ERR_SHM', 'x')
  assert.equal(errors.fromNative(ours), ours)
  const typeMismatch = Object.assign(
    new Error('Failed to convert JavaScript value `Number 1` into rust type `String`'),
    {
      code: 'StringExpected',
    },
  )
  assert.equal(errors.fromNative(typeMismatch).code, 'ERR_INVALID_ARG')
  assert.equal(errors.fromNative(typeMismatch).cause, typeMismatch)
  const failure = Object.assign(new Error('a Node-API call failed'), { code: 'GenericFailure' })
  assert.equal(errors.fromNative(failure).code, 'ERR_SYSTEM')
})
