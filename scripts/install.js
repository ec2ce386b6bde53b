#!/usr/bin/env node
'use strict'
// `npm install` step: use a prebuilt addon for this platform if the package ships one,
// otherwise compile it from the Rust sources with cargo (release profile).
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { nativeFileName } = require('../lib/platform')

const root = path.join(__dirname, '..')
const target = path.join(root, nativeFileName())
const profile = process.argv.includes('--debug') ? 'debug' : 'release'
const force = process.argv.includes('--force') || process.env.COREPOOL_BUILD_FROM_SOURCE === '1'

function fail(message) {
  console.error(`\ncorepool: ${message}\n`)
  process.exit(1)
}

if (fs.existsSync(target) && !force) {
  process.exit(0)
}

const cargo = process.env.CARGO || 'cargo'
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' })
if (probe.error || probe.status !== 0) {
  fail(
    `no prebuilt binary for ${process.platform}-${process.arch} and no Rust toolchain found.\n` +
      'corepool compiles its native addon from source on install. Install Rust (cargo >= 1.88),\n' +
      'for example from https://rustup.rs or your distribution (apt-get install cargo), then run\n' +
      '`npm rebuild corepool`.',
  )
}

const args = ['build', '--lib', '--locked']
if (profile === 'release') args.push('--release')
const build = spawnSync(cargo, args, { cwd: root, stdio: 'inherit' })
if (build.error || build.status !== 0) {
  fail(`\`cargo ${args.join(' ')}\` failed (exit ${build.status ?? build.error?.message}).`)
}

const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(root, process.env.CARGO_TARGET_DIR)
  : path.join(root, 'target')
const libName =
  process.platform === 'win32' ? 'corepool.dll' : process.platform === 'darwin' ? 'libcorepool.dylib' : 'libcorepool.so'
const built = path.join(targetDir, profile, libName)
if (!fs.existsSync(built)) fail(`the build did not produce ${built}.`)
// Copy to a temporary name first so a half-written file is never loaded.
fs.copyFileSync(built, `${target}.tmp`)
fs.renameSync(`${target}.tmp`, target)

// The subreaper helper every child is started from (Linux): a small binary next to the addon.
if (process.platform === 'linux') {
  const binArgs = ['build', '-p', 'corepool-core', '--bin', 'corepool-watchdog', '--locked']
  if (profile === 'release') binArgs.push('--release')
  const bin = spawnSync(cargo, binArgs, { cwd: root, stdio: 'inherit' })
  if (bin.error || bin.status !== 0) {
    fail(`\`cargo ${binArgs.join(' ')}\` failed (exit ${bin.status ?? bin.error?.message}).`)
  }
  const helper = path.join(root, 'corepool-watchdog')
  fs.copyFileSync(path.join(targetDir, profile, 'corepool-watchdog'), `${helper}.tmp`)
  fs.chmodSync(`${helper}.tmp`, 0o755)
  fs.renameSync(`${helper}.tmp`, helper)
}

// Installed as a dependency: the build directory is only a cache (hundreds of MB); drop it.
const inNodeModules = root.split(path.sep).includes('node_modules')
if (inNodeModules && !process.env.CARGO_TARGET_DIR && process.env.COREPOOL_KEEP_TARGET !== '1') {
  fs.rmSync(targetDir, { recursive: true, force: true })
}
