#!/usr/bin/env node
'use strict'
// corepool's `npm install` step. Nothing to do when the prebuilt platform package (an optional
// dependency, corepool-<triple>) or an earlier local build loads; otherwise the addon is built
// from the Rust sources in the package: cargo's version is checked first, the build uses the
// locked dependencies, and every stage prints a line.
//
// npm shows an install script's output only when the script fails (or with
// --foreground-scripts), so the stage lines also go to the terminal (/dev/tty) when there is one:
// a build of a few minutes must not look hung.
//
// Flags (for development): --force builds even when an addon loads, --debug builds the debug
// profile. COREPOOL_BUILD_FROM_SOURCE=1 is --force for installs.
const { spawn, spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const platform = require('../lib/platform')

const root = path.join(__dirname, '..')
const argv = process.argv.slice(2)
const profile = argv.includes('--debug') ? 'debug' : 'release'
const force = argv.includes('--force') || process.env.COREPOOL_BUILD_FROM_SOURCE === '1'
const triple = platform.platformTriple()
const target = path.join(root, platform.nativeFileName(triple))
const started = Date.now()

let tty = null
if (!process.stderr.isTTY && process.env.npm_lifecycle_event) {
  try {
    tty = fs.openSync('/dev/tty', 'w')
  } catch {
    tty = null // no controlling terminal (CI): stderr only, which npm prints if the script fails
  }
}
function say(line) {
  const text = `corepool: ${line}\n`
  process.stderr.write(text)
  if (tty !== null) {
    try {
      fs.writeSync(tty, text)
    } catch {
      tty = null
    }
  }
}

function fail(lines) {
  process.stderr.write(`\ncorepool: ${lines.join('\n')}\n\n`)
  if (tty !== null) say('install failed; npm prints the details below.')
  process.exit(1)
}

function seconds(ms) {
  const s = Math.round(ms / 1000)
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} min ${s % 60} s`
}

function libcText() {
  return process.platform === 'linux' ? ` (${platform.libc().family})` : ''
}

const RUSTUP = [
  '    curl --proto =https --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal',
  '    . "$HOME/.cargo/env"',
]
const RETRY =
  'then run your `npm install` again (npm removed corepool after this failure, so\n  `npm rebuild corepool` would have nothing to rebuild).'

function versionOf(text) {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text)
  return m ? m.slice(1).map((n) => Number(n ?? 0)) : null
}
function older(a, b) {
  for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) < (b[i] ?? 0)
  return false
}

function checkCargo(cargo) {
  const min = platform.minCargo(root) ?? '1.89'
  const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' })
  if (probe.error || probe.status !== 0) {
    fail([
      force
        ? `cannot build from source: no \`${cargo}\` (${probe.error ? probe.error.code : `exit ${probe.status}`}).`
        : `cannot install: no prebuilt binary for ${triple}${libcText()} loads, and there is no \`${cargo}\`\n` +
          `to build one from source (${probe.error ? probe.error.code : `exit ${probe.status}`}).`,
      `Install Rust (cargo >= ${min}) with rustup; distribution packages are often older (Debian 12's`,
      'cargo is 1.65, which cannot read this Cargo.lock):',
      ...RUSTUP,
      'and a C compiler (Debian/Ubuntu: apt-get install build-essential; Alpine: apk add build-base),',
      RETRY,
    ])
  }
  const version = probe.stdout.trim()
  const have = versionOf(version)
  if (!have || older(have, versionOf(min))) {
    const where = spawnSync('sh', ['-c', `command -v ${cargo}`], { encoding: 'utf8' }).stdout?.trim()
    const rustup = spawnSync('rustup', ['--version'], { encoding: 'utf8' })
    fail([
      `cannot build from source: ${version}${where ? ` (${where})` : ''} is too old; corepool needs`,
      `cargo >= ${min} (its Cargo.lock is version 4, which needs 1.78; its dependencies need ${min}).`,
      ...(rustup.error || rustup.status !== 0
        ? ['Install the current toolchain with rustup:', ...RUSTUP]
        : ['Update the toolchain: rustup update stable (and make sure ~/.cargo/bin comes first in PATH)']),
      RETRY,
    ])
  }
  return version
}

// Runs `cargo <args>` with a progress line every 15 s, its output kept in a log that is shown
// (its tail) if it fails; then `next()`.
function build(cargo, stage, args, what, next, env = {}) {
  if (profile === 'release') args.push('--release')
  say(`${stage} cargo ${args.join(' ')}: ${what}`)
  const log = path.join(os.tmpdir(), `corepool-build-${process.pid}.log`)
  const out = fs.openSync(log, 'w')
  const child = spawn(cargo, args, {
    cwd: root,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...env, CARGO_TERM_COLOR: 'never', CARGO_TERM_PROGRESS_WHEN: 'never' },
  })
  let crates = 0
  let current = ''
  let lastReport = Date.now()
  let buffered = ''
  const onData = (chunk) => {
    fs.writeSync(out, chunk)
    buffered += chunk.toString('utf8')
    const lines = buffered.split('\n')
    buffered = lines.pop()
    for (const line of lines) {
      const m = /^\s*Compiling (\S+)/.exec(line)
      if (m) {
        crates++
        current = m[1]
      }
    }
    if (Date.now() - lastReport >= 15_000) {
      lastReport = Date.now()
      say(`      ${seconds(Date.now() - started)}: ${crates} crates compiled, now ${current}`)
    }
  }
  child.stdout.on('data', onData)
  child.stderr.on('data', onData)
  // A timer too, so a long final link step (LTO) still prints a line now and then.
  const timer = setInterval(() => {
    if (Date.now() - lastReport >= 30_000) {
      lastReport = Date.now()
      say(`      ${seconds(Date.now() - started)}: ${crates} crates compiled, still on ${current || 'the first'}`)
    }
  }, 5_000)
  child.on('error', (err) => {
    clearInterval(timer)
    fail([`cannot run \`${cargo}\`: ${err.message}`])
  })
  child.on('close', (code, signal) => {
    clearInterval(timer)
    fs.closeSync(out)
    if (code !== 0) {
      const tail = fs.readFileSync(log, 'utf8').trimEnd().split('\n').slice(-30)
      const noCc = tail.some((l) =>
        /linker `cc` not found|failed to find tool|cc: not found|error occurred: Command "cc"/.test(l),
      )
      fail([
        `\`cargo ${args.join(' ')}\` failed (${signal ?? `exit ${code}`}); the last lines of its output:`,
        ...tail.map((l) => `  | ${l}`),
        `The whole log: ${log}`,
        ...(noCc
          ? ['A C compiler is missing (Debian/Ubuntu: apt-get install build-essential; Alpine: apk add build-base);']
          : []),
        RETRY,
      ])
    }
    fs.rmSync(log, { force: true })
    next()
  })
}

function install() {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(root, process.env.CARGO_TARGET_DIR)
    : path.join(root, 'target')
  const libName =
    process.platform === 'win32'
      ? 'corepool.dll'
      : process.platform === 'darwin'
        ? 'libcorepool.dylib'
        : 'libcorepool.so'
  const built = path.join(targetDir, profile, libName)
  if (!fs.existsSync(built)) fail([`the build did not produce ${built}.`])
  // Copy to a temporary name first so a half-written file is never loaded.
  fs.copyFileSync(built, `${target}.tmp`)
  fs.renameSync(`${target}.tmp`, target)
  if (process.platform === 'linux') {
    // The subreaper helper every child is started from: a small binary next to the addon.
    const helper = path.join(root, 'corepool-watchdog')
    fs.copyFileSync(path.join(targetDir, profile, 'corepool-watchdog'), `${helper}.tmp`)
    fs.chmodSync(`${helper}.tmp`, 0o755)
    fs.renameSync(`${helper}.tmp`, helper)
  }
  const size = (fs.statSync(target).size / 1e6).toFixed(1)
  let dropped = ''
  // Installed as a dependency: the build directory is only a cache (hundreds of MB); drop it.
  const inNodeModules = root.split(path.sep).includes('node_modules')
  if (inNodeModules && !process.env.CARGO_TARGET_DIR && process.env.COREPOOL_KEEP_TARGET !== '1') {
    fs.rmSync(targetDir, { recursive: true, force: true })
    dropped = '; removed the build cache target/'
  }
  say(`[4/4] built ${path.basename(target)} (${size} MB) in ${seconds(Date.now() - started)}${dropped}.`)
}

const cargo = process.env.CARGO || 'cargo'
if (!force) {
  const found = platform.findNative({ root })
  if (found.binding) process.exit(0) // the prebuilt package or an earlier build loads: done
  say(`no prebuilt binary loads for ${triple}${libcText()}; building it from source.`)
  for (const a of found.attempts) say(`      tried ${a.what}: ${a.error}`)
}
say(`[1/4] ${checkCargo(cargo)} (>= ${platform.minCargo(root)} needed)`)
const slow = profile === 'release' ? 'a few minutes (the last step, LTO, is the longest)' : 'debug profile'
build(cargo, '[2/4]', ['build', '--lib', '--locked'], slow, nextStep, typeDefEnv())

// napi-derive writes the native layer's type definitions while it compiles (a few KB under
// target/napi-type-def/<profile>); scripts/native-dts.js renders them into types/native.d.ts.
// A build cargo finds fresh writes nothing, so the crate is rebuilt when they are missing.
function typeDefEnv() {
  const targetDir = process.env.CARGO_TARGET_DIR
    ? path.resolve(root, process.env.CARGO_TARGET_DIR)
    : path.join(root, 'target')
  const dir = path.join(targetDir, 'napi-type-def', profile)
  fs.mkdirSync(dir, { recursive: true })
  const env = { NAPI_TYPE_DEF_TMP_FOLDER: dir }
  if (!fs.existsSync(path.join(dir, 'corepool'))) env.NAPI_FORCE_BUILD_COREPOOL = String(Date.now())
  return env
}

function nextStep() {
  if (process.platform !== 'linux') return install()
  build(
    cargo,
    '[3/4]',
    ['build', '-p', 'corepool-core', '--bin', 'corepool-watchdog', '--locked'],
    'the subreaper helper',
    install,
  )
}
