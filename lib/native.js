'use strict'
// Loads the compiled addon for this platform (built by scripts/install.js on `npm install`).
const fs = require('node:fs')
const path = require('node:path')
const { nativeFileName } = require('./platform')

const file = process.env.COREPOOL_NATIVE_PATH || path.join(__dirname, '..', nativeFileName())

let binding
try {
  binding = require(file)
} catch (err) {
  const e = new Error(
    `corepool: cannot load the native addon ${file} (${err.message}). ` +
      'It is built on `npm install`; run `npm rebuild corepool` (needs a Rust toolchain: https://rustup.rs).',
  )
  e.code = 'ERR_NATIVE_ADDON'
  e.cause = err
  throw e
}
// The subreaper helper that every child is started from (built next to the addon): without it,
// children are started in-process and descendants that leave their process group can escape.
const helper = process.env.COREPOOL_SUBREAPER_PATH ?? path.join(path.dirname(file), 'corepool-watchdog')
if (helper !== '' && typeof binding.configureSubreaper === 'function' && fs.existsSync(helper)) {
  binding.configureSubreaper(helper)
}
module.exports = binding
