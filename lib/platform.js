'use strict'
// Which native addon this process needs and where to find it: the napi-rs platform triple
// (`linux-x64-gnu`, `linux-arm64-musl`, ...), the prebuilt package that carries it
// (`corepool-<triple>`, an optional dependency of corepool) and the local build
// (`corepool.<triple>.node` in the package root, made by scripts/install.js from the sources).
//
// The libc is glibc where musl's loader is absent (one stat); otherwise it is read from the ELF
// interpreter of the running node binary (one 1 KiB read), then from /usr/bin/ldd, and only then
// from process.report.getReport() (~5-10 ms, it collects a full diagnostic report), so that
// loading corepool stays as cheap as loading a napi-rs package.
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const PT_INTERP = 3

// The Rust targets corepool can be built for (package.json's `napi.targets` lists those
// published as prebuilt packages) and their napi-rs names and npm `os`/`cpu`/`libc` fields.
const rustTargets = {
  'x86_64-unknown-linux-gnu': { triple: 'linux-x64-gnu', os: 'linux', cpu: 'x64', libc: 'glibc' },
  'aarch64-unknown-linux-gnu': { triple: 'linux-arm64-gnu', os: 'linux', cpu: 'arm64', libc: 'glibc' },
  'x86_64-unknown-linux-musl': { triple: 'linux-x64-musl', os: 'linux', cpu: 'x64', libc: 'musl' },
  'aarch64-unknown-linux-musl': { triple: 'linux-arm64-musl', os: 'linux', cpu: 'arm64', libc: 'musl' },
}

function readAt(fd, position, length) {
  // allocUnsafe: small reads come from Buffer's pool, and every byte used is one read here.
  const buf = Buffer.allocUnsafe(length)
  const n = fs.readSync(fd, buf, 0, length, position)
  return buf.subarray(0, n)
}

// Bytes as a string up to the first NUL (file names are ASCII; a plain loop avoids loading a
// decoder at start-up).
function cString(bytes) {
  let s = ''
  for (let i = 0; i < bytes.length && bytes[i] !== 0; i++) s += String.fromCharCode(bytes[i])
  return s
}

// The program interpreter (PT_INTERP) of an ELF file, e.g. /lib64/ld-linux-x86-64.so.2 or
// /lib/ld-musl-x86_64.so.1; null if the file is not ELF or is statically linked. One read of
// 1 KiB covers the header, the program headers and the interpreter's name of usual binaries.
function elfInterpreter(file) {
  let fd
  try {
    fd = fs.openSync(file, 'r')
    const head = readAt(fd, 0, 1024)
    if (head.length < 52 || head.readUInt32BE(0) !== 0x7f454c46) return null
    const is64 = head[4] === 2
    const le = head[5] === 1
    const u16 = (b, o) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o))
    const u32 = (b, o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
    // 64-bit offsets as two halves (no BigInt): anything past 2^53 is not a real file offset.
    const word = (b, o) =>
      is64 ? (le ? u32(b, o) + u32(b, o + 4) * 2 ** 32 : u32(b, o) * 2 ** 32 + u32(b, o + 4)) : u32(b, o)
    const phoff = word(head, is64 ? 0x20 : 0x1c)
    const phentsize = u16(head, is64 ? 0x36 : 0x2a)
    const phnum = u16(head, is64 ? 0x38 : 0x2c)
    const size = phentsize * phnum
    const table = phoff + size <= head.length ? head.subarray(phoff, phoff + size) : readAt(fd, phoff, size)
    for (let i = 0; i < phnum; i++) {
      const ph = table.subarray(i * phentsize, (i + 1) * phentsize)
      if (ph.length < phentsize || u32(ph, 0) !== PT_INTERP) continue
      const offset = word(ph, is64 ? 8 : 4)
      const filesz = Math.min(word(ph, is64 ? 32 : 16), 4096)
      const bytes = offset + filesz <= head.length ? head.subarray(offset, offset + filesz) : readAt(fd, offset, filesz)
      return cString(bytes)
    }
    return null
  } catch {
    return null
  } finally {
    if (fd !== undefined) fs.closeSync(fd)
  }
}

function libcOfInterpreter(interp) {
  const name = path.basename(interp)
  if (name.startsWith('ld-musl')) return 'musl'
  if (name.startsWith('ld-linux') || name === 'ld.so.1' || name.startsWith('ld64.so')) return 'glibc'
  return null
}

function libcOfLdd(text) {
  if (text.includes('musl')) return 'musl'
  if (text.includes('GNU C Library') || text.includes('GLIBC')) return 'glibc'
  return null
}

// musl's dynamic loader on the architectures corepool publishes binaries for. A node binary
// linked against musl cannot start without it (it is its ELF interpreter), so where it is
// missing the libc is glibc: one stat, the usual case, instead of reading the node binary.
const muslLoader = { x64: '/lib/ld-musl-x86_64.so.1', arm64: '/lib/ld-musl-aarch64.so.1' }

let detected
// { family: 'glibc' | 'musl', how: 'a sentence saying where that came from' }; Linux only.
function libc() {
  if (detected) return detected
  const loader = muslLoader[process.arch]
  if (loader !== undefined && !fs.existsSync(loader)) {
    detected = { family: 'glibc', how: `the absence of ${loader}` }
    return detected
  }
  const interp = elfInterpreter(process.execPath)
  const fromElf = interp && libcOfInterpreter(interp)
  if (fromElf) {
    detected = { family: fromElf, how: `ELF interpreter ${interp} of ${process.execPath}` }
    return detected
  }
  try {
    const fromLdd = libcOfLdd(fs.readFileSync('/usr/bin/ldd', 'latin1'))
    if (fromLdd) {
      detected = { family: fromLdd, how: '/usr/bin/ldd' }
      return detected
    }
  } catch {
    // no ldd (distroless images): ask node itself below
  }
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
  const glibc = report?.header?.glibcVersionRuntime
  detected = glibc
    ? { family: 'glibc', how: `process.report (glibc ${glibc})` }
    : { family: 'musl', how: 'process.report (no glibc version)' }
  return detected
}

// The napi-rs name of this platform, as used in package and file names.
function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') {
    const musl = libc().family === 'musl'
    if (arch === 'arm') return `linux-arm-${musl ? 'musleabihf' : 'gnueabihf'}`
    return `linux-${arch}-${musl ? 'musl' : 'gnu'}`
  }
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function nativeFileName(triple = platformTriple()) {
  return `corepool.${triple}.node`
}

function packageName(triple = platformTriple()) {
  return `corepool-${triple}`
}

// A package.json, parsed (not through require: no module record, no resolution).
function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'))
}

function describeError(err) {
  const first = String(err?.message ?? err).split('\n')[0]
  return err?.code ? `${err.code}: ${first}` : first
}

// Tries, in order: COREPOOL_NATIVE_PATH (alone, when set), the prebuilt platform package, the
// local build. Returns { binding, from, file, attempts } (attempts: [{ what, error }], those that
// failed first) or { binding: null, attempts, triple }.
// `options` (for tests and the install script): another package root, triple or environment.
function findNative(options = {}) {
  const dir = options.root ?? root
  const triple = options.triple ?? platformTriple()
  const req = require
  const env = options.env ?? process.env
  const attempts = []
  // load() returns the file it loaded: { binding, from, file, attempts }.
  const attempt = (what, load) => {
    try {
      const file = load()
      return { binding: req(file), from: what, file, attempts }
    } catch (error) {
      attempts.push({ what, error: describeError(error) })
      return null
    }
  }
  if (env.COREPOOL_NATIVE_PATH) {
    const file = path.resolve(env.COREPOOL_NATIVE_PATH)
    return attempt(`${file} (COREPOOL_NATIVE_PATH)`, () => file) ?? { binding: null, attempts, triple }
  }
  const pkg = packageName(triple)
  const found =
    attempt(`package ${pkg}`, () => {
      // The usual layouts (npm, pnpm, yarn's node_modules linker) put the platform package
      // beside corepool: read it there without a trip through Node's resolver, which finds it
      // anywhere else. The binary is the package's `main`, next to its package.json.
      const sibling = path.join(dir, '..', pkg, 'package.json')
      const metaFile = fs.existsSync(sibling) ? sibling : req.resolve(`${pkg}/package.json`)
      const meta = readJson(metaFile)
      const want = readJson(path.join(dir, 'package.json')).version
      if (meta.version !== want) {
        const e = new Error(`version ${meta.version} is installed, corepool ${want} needs the same version`)
        e.code = 'ERR_VERSION_MISMATCH'
        throw e
      }
      return path.join(path.dirname(metaFile), meta.main ?? nativeFileName(triple))
    }) ?? attempt(path.join(dir, nativeFileName(triple)), () => path.join(dir, nativeFileName(triple)))
  return found ?? { binding: null, attempts, triple }
}

// The oldest cargo that builds corepool: `rust-version` in Cargo.toml (the highest of Cargo.lock
// version 4's need, 1.78, and the dependencies' own rust-version; __test__/platform.test.mjs
// checks it).
function minCargo(dir = root) {
  try {
    const toml = fs.readFileSync(path.join(dir, 'Cargo.toml'), 'utf8')
    return /^rust-version\s*=\s*"([^"]+)"/m.exec(toml)?.[1] ?? null
  } catch {
    return null
  }
}

function notLoaded(result) {
  const { triple, attempts } = result
  const pkg = require(path.join(root, 'package.json'))
  const lc = process.platform === 'linux' ? libc() : null
  const prebuilt = (pkg.napi?.targets ?? []).map((t) => rustTargets[t]?.triple).filter(Boolean)
  const min = minCargo() ?? '(see Cargo.toml)'
  const lines = [
    `corepool: cannot load its native addon for ${triple}` +
      (lc ? ` (${lc.family}, from ${lc.how})` : '') +
      ` on Node ${process.version}.`,
    'Tried:',
    ...attempts.map((a) => `  - ${a.what}: ${a.error}`),
  ]
  if (!process.env.COREPOOL_NATIVE_PATH) {
    const missing = /MODULE_NOT_FOUND/.test(attempts.find((a) => a.what.startsWith('package '))?.error ?? '')
    if (prebuilt.includes(triple) && !missing) {
      lines.push(`${packageName(triple)} is installed but did not load (above); the source build below replaces it.`)
    } else if (prebuilt.includes(triple)) {
      lines.push(
        `${packageName(triple)}@${pkg.version} (the prebuilt binary for this platform) is not installed:`,
        '  npm skips optional dependencies with --omit=optional, and a package-lock.json written on another',
        '  platform may lack it (npm/cli#4828). Run `npm install` again after deleting node_modules and',
        `  package-lock.json, or \`npm install ${packageName(triple)}@${pkg.version}\`.`,
      )
    } else {
      lines.push(`No prebuilt binary is published for ${triple} (prebuilt: ${prebuilt.join(', ') || 'none'}).`)
    }
    lines.push(
      `The fallback is a build from source by corepool's install script (cargo >= ${min}, from`,
      '  https://rustup.rs, and a C compiler). If npm skipped that script (ignore-scripts, or on npm 11 an',
      '  allowScripts policy without corepool), run `npm install-scripts approve corepool` (npm 11), then',
      '  `npm rebuild corepool`.',
    )
  }
  const e = new Error(lines.join('\n'))
  e.code = 'ERR_NATIVE_ADDON'
  e.attempts = attempts
  return e
}

let loaded = null
// The addon, loaded once (index.js calls this directly, lib/native.js for the other modules);
// throws ERR_NATIVE_ADDON with the report above when nothing loads.
function loadNative() {
  if (loaded) return loaded
  const result = findNative()
  if (!result.binding) throw notLoaded(result)
  loaded = result.binding
  // The subreaper helper that every child is started from, shipped next to the addon (in the
  // platform package or the local build): without it, children are started in-process and
  // descendants that leave their process group can escape. The addon checks that the file is
  // there when the first child starts, not now.
  const helper = process.env.COREPOOL_SUBREAPER_PATH ?? path.join(path.dirname(result.file), 'corepool-watchdog')
  if (helper !== '' && typeof loaded.configureSubreaper === 'function') loaded.configureSubreaper(helper)
  return loaded
}

module.exports = {
  loadNative,
  rustTargets,
  minCargo,
  platformTriple,
  nativeFileName,
  packageName,
  libc,
  findNative,
  elfInterpreter,
  libcOfInterpreter,
  libcOfLdd,
}
