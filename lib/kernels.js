'use strict'
// Public wrappers of the native kernels.
const native = require('./native')
const { submitNative } = require('./pool')
const { invalidArg, describe } = require('./errors')

/**
 * Sum of Math.sqrt(i) for 0 <= i < n, computed on the pool.
 * @param {number} n a non-negative safe integer
 */
function sqrtSum(n, options) {
  if (typeof n !== 'number') {
    return Promise.reject(invalidArg(`n must be a non-negative safe integer, got ${describe(n)}`))
  }
  return submitNative(native.sqrtSum, n, options)
}

module.exports = { sqrtSum }
