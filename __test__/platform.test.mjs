// Packaging: libc detection, the loader's order (platform package, then local build) and its
// report when nothing loads, the install script's checks, the per-platform package manifests.
import { test as nodeTest } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { fileURLToPath } from 'node:url'

// test(name, [options], fn), with a timeout.
const test = (name, options, fn) =>
  fn === undefined ? nodeTest(name, { timeout: 60_000 }, options) : nodeTest(name, { timeout: 60_000, ...options }, fn)
const require = createRequire(import.meta.url)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const platform = require('../lib/platform')
const { check, platformPackages, rootPackage } = require('../scripts/npm-dirs')
const pkg = rootPackage()
const TRIPLE = platform.platformTriple()
const LOCAL = path.join(ROOT, platform.nativeFileName(TRIPLE))

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-platform-test-'))
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }))

// A minimal ELF file: header, one program header table, optionally a PT_INTERP segment.
function elf({ is64 = true, le = true, interp = null, machine = 62, interpAt = null }) {
  const ehsize = is64 ? 64 : 52
  const phentsize = is64 ? 56 : 32
  const phoff = ehsize
  const text = interp === null ? null : Buffer.from(`${interp}\0`, 'latin1')
  const offset = interpAt ?? phoff + phentsize
  const buf = Buffer.alloc(Math.max(offset + (text?.length ?? 0), phoff + phentsize))
  buf.writeUInt32BE(0x7f454c46, 0)
  buf[4] = is64 ? 2 : 1
  buf[5] = le ? 1 : 2
  buf[6] = 1
  const u16 = (v, o) => (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o))
  const u32 = (v, o) => (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o))
  const word = (v, o) =>
    is64 ? (le ? buf.writeBigUInt64LE(BigInt(v), o) : buf.writeBigUInt64BE(BigInt(v), o)) : u32(v, o)
  u16(3, 16) // ET_DYN
  u16(machine, 18)
  word(phoff, is64 ? 0x20 : 0x1c)
  u16(phentsize, is64 ? 0x36 : 0x2a)
  u16(1, is64 ? 0x38 : 0x2c)
  u32(text ? 3 : 1, phoff) // PT_INTERP, or PT_LOAD for a static binary
  if (text) {
    word(offset, phoff + (is64 ? 8 : 4))
    word(text.length, phoff + (is64 ? 32 : 16))
    text.copy(buf, offset)
  }
  return buf
}

test('the ELF interpreter is read from 64- and 32-bit, little- and big-endian binaries', () => {
  const cases = [
    [{ interp: '/lib/ld-musl-x86_64.so.1' }, '/lib/ld-musl-x86_64.so.1', 'musl'],
    [{ interp: '/lib64/ld-linux-x86-64.so.2' }, '/lib64/ld-linux-x86-64.so.2', 'glibc'],
    [{ is64: false, interp: '/lib/ld-linux-armhf.so.3' }, '/lib/ld-linux-armhf.so.3', 'glibc'],
    [{ is64: false, le: false, interp: '/lib/ld-musl-mips.so.1' }, '/lib/ld-musl-mips.so.1', 'musl'],
    [{ le: false, interp: '/lib64/ld64.so.1' }, '/lib64/ld64.so.1', 'glibc'],
    // The interpreter string past the first 4 KiB: read separately.
    [{ interp: '/lib/ld-musl-aarch64.so.1', interpAt: 10_000 }, '/lib/ld-musl-aarch64.so.1', 'musl'],
  ]
  for (const [spec, interp, family] of cases) {
    const file = path.join(tmp, 'elf')
    fs.writeFileSync(file, elf(spec))
    assert.equal(platform.elfInterpreter(file), interp, JSON.stringify(spec))
    assert.equal(platform.libcOfInterpreter(interp), family)
  }
  fs.writeFileSync(path.join(tmp, 'static'), elf({ interp: null }))
  assert.equal(platform.elfInterpreter(path.join(tmp, 'static')), null)
  fs.writeFileSync(path.join(tmp, 'script'), '#!/bin/sh\necho hi\n')
  assert.equal(platform.elfInterpreter(path.join(tmp, 'script')), null)
  assert.equal(platform.elfInterpreter(path.join(tmp, 'missing')), null)
  assert.equal(platform.libcOfLdd('#!/bin/sh\nexec /lib/ld-musl-x86_64.so.1 --list "$@"\n'), 'musl')
  assert.equal(platform.libcOfLdd('# This file is part of the GNU C Library.\n'), 'glibc')
  assert.equal(platform.libcOfLdd('#!/bin/sh\n'), null)
})

test('the libc found without process.report agrees with process.report', { skip: process.platform !== 'linux' }, () => {
  const report = process.report.getReport()
  assert.equal(platform.libc().family, report.header.glibcVersionRuntime ? 'glibc' : 'musl')
  assert.match(platform.libc().how, /ELF interpreter|ldd|the absence of \/lib\/ld-musl-/)
  // Where musl's loader is there, the ELF interpreter decides (the stat alone proves nothing).
  if (fs.existsSync('/lib/ld-musl-x86_64.so.1') || fs.existsSync('/lib/ld-musl-aarch64.so.1')) {
    assert.match(platform.libc().how, /ELF interpreter|ldd/)
  }
})

test('require("corepool") loads the addon only: no process.report, no node:net, no pool module', () => {
  const probe = `
    let reports = 0
    const real = process.report.getReport
    process.report.getReport = (...a) => { reports++; return real.apply(process.report, a) }
    const corepool = require(${JSON.stringify(path.join(ROOT, 'index.js'))})
    const loaded = Object.keys(require.cache).map((f) => require('node:path').relative(${JSON.stringify(ROOT)}, f))
    const builtins = process.moduleLoadList.filter((m) => /^NativeModule (net|v8|worker_threads)$/.test(m))
    console.log(JSON.stringify({ reports, loaded, builtins, sqrtSum: typeof corepool.sqrtSum }))`
  const r = spawnSync(process.execPath, ['-e', probe], {
    encoding: 'utf8',
    env: { ...process.env, COREPOOL_NATIVE_PATH: '' },
  })
  assert.equal(r.status, 0, r.stderr)
  const got = JSON.parse(r.stdout)
  assert.equal(got.reports, 0)
  assert.deepEqual(got.builtins, [])
  assert.deepEqual(got.loaded.filter((f) => f.startsWith('lib')).sort(), ['lib/platform.js'])
  assert.equal(got.sqrtSum, 'function') // reading a name loads its module
})

test('index.js exports every export of the modules it used to spread', async () => {
  const cjs = require('../index.js')
  for (const mod of ['../lib/kernels', '../lib/counters', '../lib/children']) {
    for (const [name, value] of Object.entries(require(mod))) assert.equal(cjs[name], value, `${mod} ${name}`)
  }
})

// A package tree in a temporary folder: node_modules/corepool (the loader) and, when asked, a
// platform package whose main is a JS stand-in for the .node file.
function tree(name, { platformVersion = null, local = false } = {}) {
  const dir = path.join(tmp, name)
  const core = path.join(dir, 'node_modules', 'corepool')
  fs.mkdirSync(path.join(core, 'lib'), { recursive: true })
  fs.mkdirSync(path.join(core, 'scripts'), { recursive: true })
  for (const f of ['lib/platform.js', 'lib/native.js', 'scripts/install.js', 'package.json', 'Cargo.toml']) {
    fs.copyFileSync(path.join(ROOT, f), path.join(core, f))
  }
  if (platformVersion) {
    const p = path.join(dir, 'node_modules', platform.packageName(TRIPLE))
    fs.mkdirSync(p, { recursive: true })
    fs.writeFileSync(
      path.join(p, 'package.json'),
      JSON.stringify({ name: platform.packageName(TRIPLE), version: platformVersion, main: 'binding.js' }),
    )
    fs.writeFileSync(
      path.join(p, 'binding.js'),
      'module.exports = { from: "platform package", configureSubreaper(p) { this.helper = p } }\n',
    )
    fs.writeFileSync(path.join(p, 'corepool-watchdog'), '')
  }
  if (local) fs.copyFileSync(LOCAL, path.join(core, platform.nativeFileName(TRIPLE)))
  return core
}

function load(core, env = {}) {
  const code = `
    const { findNative } = require('./lib/platform')
    const r = findNative()
    let error = null
    try { require('./lib/native') } catch (e) { error = { code: e.code, message: e.message } }
    const helper = r.binding?.helper ?? null
    console.log(JSON.stringify({ from: r.from ?? null, attempts: r.attempts, marker: r.binding?.from ?? null, helper, error }))`
  const r = spawnSync(process.execPath, ['-e', code], {
    cwd: core,
    encoding: 'utf8',
    env: { ...process.env, COREPOOL_NATIVE_PATH: '', COREPOOL_SUBREAPER_PATH: undefined, ...env },
  })
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout)
}

test('the loader takes the platform package first, the local build after it', { skip: !fs.existsSync(LOCAL) }, () => {
  const both = load(tree('both', { platformVersion: pkg.version, local: true }))
  assert.equal(both.from, `package ${platform.packageName(TRIPLE)}`)
  assert.equal(both.marker, 'platform package')
  assert.equal(both.error, null)
  // The children's subreaper helper is the one beside the addon that loaded.
  assert.equal(both.helper, path.join(tmp, 'both', 'node_modules', platform.packageName(TRIPLE), 'corepool-watchdog'))

  const localOnly = tree('local', { local: true })
  const local = load(localOnly)
  assert.equal(local.from, path.join(localOnly, platform.nativeFileName(TRIPLE)))
  assert.match(local.attempts[0].error, /MODULE_NOT_FOUND/)
  assert.equal(local.error, null)

  // A platform package of another version is refused (its binary may not match lib/).
  const skewed = load(tree('skewed', { platformVersion: '0.0.0-other', local: true }))
  assert.equal(skewed.marker, null)
  assert.match(skewed.attempts[0].error, /ERR_VERSION_MISMATCH: version 0\.0\.0-other is installed/)
})

test('a subreaper helper that is not there (checked at the first spawn, not at load): children start in-process', () => {
  for (const missing of [path.join(tmp, 'no-such-helper'), tmp /* a directory */]) {
    const r = spawnSync(
      process.execPath,
      ['-e', "require('./index.js').exec('echo', ['hi']).then((r) => process.stdout.write(r.stdout))"],
      { cwd: ROOT, encoding: 'utf8', env: { ...process.env, COREPOOL_SUBREAPER_PATH: missing } },
    )
    assert.equal(r.status, 0, r.stderr)
    assert.equal(r.stdout, 'hi\n')
  }
})

test(
  'the addon and its helper call no glibc function newer than 2.17 by name (scripts/check-glibc.js)',
  { skip: !fs.existsSync(LOCAL) || TRIPLE !== 'linux-x64-gnu' },
  () => {
    const { glibcNeeds } = require('../scripts/check-glibc.js')
    const helper = path.join(ROOT, 'corepool-watchdog')
    for (const file of [LOCAL, ...(fs.existsSync(helper) ? [helper] : [])]) {
      // A build here links against this machine's glibc (its newest symbol versions); the release
      // builds link against 2.17, where such a function would be left unversioned and fail to load.
      assert.deepEqual(glibcNeeds(file).newer, [], file)
    }
    // The reference: a napi-rs package's binary.
    const argon2 = require.resolve('@node-rs/argon2-linux-x64-gnu')
    const r = glibcNeeds(argon2, '2.17')
    assert.ok(r.max !== null && r.above.length === 0, JSON.stringify(r))
    assert.ok(glibcNeeds(LOCAL, '2.0').above.length > 0, 'a bound below every version is exceeded')
  },
)

test('when nothing loads, the error names the triple, the libc, every path tried and the fixes', () => {
  const core = tree('none')
  const { error } = load(core)
  assert.equal(error.code, 'ERR_NATIVE_ADDON')
  assert.match(error.message, new RegExp(`native addon for ${TRIPLE} `))
  if (process.platform === 'linux')
    assert.match(error.message, /\((glibc|musl), from (ELF interpreter|\/usr\/bin\/ldd|the absence of \/lib\/ld-musl-)/)
  assert.ok(error.message.includes(`package ${platform.packageName(TRIPLE)}: MODULE_NOT_FOUND`), error.message)
  assert.ok(error.message.includes(`${path.join(core, platform.nativeFileName(TRIPLE))}: MODULE_NOT_FOUND`))
  assert.match(error.message, /npm install-scripts approve corepool/)
  assert.match(error.message, /npm rebuild corepool/)
  assert.ok(error.message.includes(`cargo >= ${platform.minCargo(ROOT)}`))
  assert.match(error.message, /rustup/)

  const custom = load(core, { COREPOOL_NATIVE_PATH: path.join(tmp, 'nowhere.node') })
  assert.equal(custom.attempts.length, 1)
  assert.ok(custom.error.message.includes(`${path.join(tmp, 'nowhere.node')} (COREPOOL_NATIVE_PATH)`))
})

function install(core, env) {
  return spawnSync(process.execPath, [path.join(core, 'scripts', 'install.js')], {
    cwd: core,
    encoding: 'utf8',
    env: { ...process.env, COREPOOL_NATIVE_PATH: '', npm_lifecycle_event: '', ...env },
  })
}

test('install: nothing to build when the platform package loads, even without cargo', () => {
  const r = install(tree('install-prebuilt', { platformVersion: pkg.version }), { CARGO: path.join(tmp, 'no-cargo') })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '')
})

test('install: without cargo it fails naming the platform, the paths tried, the minimum and rustup', () => {
  const core = tree('install-nocargo')
  const r = install(core, { CARGO: path.join(tmp, 'no-cargo') })
  assert.equal(r.status, 1)
  assert.match(r.stderr, new RegExp(`no prebuilt binary for ${TRIPLE}`))
  assert.ok(r.stderr.includes(`tried package ${platform.packageName(TRIPLE)}`), r.stderr)
  assert.ok(r.stderr.includes(`cargo >= ${platform.minCargo(ROOT)}`))
  assert.match(r.stderr, /sh\.rustup\.rs/)
  assert.match(r.stderr, /run your `npm install` again/)
  assert.doesNotMatch(r.stderr, /\[2\/4\]/) // no build started
})

test('install: a cargo older than rust-version is refused before building', () => {
  const fake = path.join(tmp, 'old-cargo')
  fs.writeFileSync(fake, '#!/bin/sh\n[ "$1" = --version ] && echo "cargo 1.65.0" && exit 0\necho BUILT >&2\nexit 3\n', {
    mode: 0o755,
  })
  const r = install(tree('install-oldcargo'), { CARGO: fake })
  assert.equal(r.status, 1)
  assert.match(r.stderr, /cargo 1\.65\.0 .*is too old/)
  assert.ok(r.stderr.includes(`needs\ncargo >= ${platform.minCargo(ROOT)}`), r.stderr)
  assert.match(r.stderr, /Cargo\.lock is version 4, which needs 1\.78/)
  assert.doesNotMatch(r.stderr, /BUILT/)
})

test('rust-version covers Cargo.lock version 4 and every locked dependency', { skip: !hasCargo() }, () => {
  const min = platform.minCargo(ROOT).split('.').map(Number)
  const cmp = (a, b) => a[0] - b[0] || (a[1] ?? 0) - (b[1] ?? 0) || (a[2] ?? 0) - (b[2] ?? 0)
  if (/^version = 4$/m.test(fs.readFileSync(path.join(ROOT, 'Cargo.lock'), 'utf8'))) assert.ok(cmp(min, [1, 78]) >= 0)
  // Not --offline: on a clean machine the registry cache holds only what a build for this target
  // fetched, and the lock file also names crates for other targets.
  const r = spawnSync('cargo', ['metadata', '--format-version', '1', '--locked'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 << 20,
  })
  assert.equal(r.status, 0, r.stderr)
  // What a source build compiles: the workspace members and what they reach through normal and
  // build dependencies (dev-dependencies such as loom are only for the project's own tests).
  const meta = JSON.parse(r.stdout)
  const nodes = new Map(meta.resolve.nodes.map((n) => [n.id, n]))
  const built = new Set()
  const visit = (id) => {
    if (built.has(id)) return
    built.add(id)
    for (const d of nodes.get(id)?.deps ?? []) {
      if (d.dep_kinds.some((k) => k.kind === null || k.kind === 'build')) visit(d.pkg)
    }
  }
  meta.workspace_members.forEach(visit)
  assert.ok(built.size > 20, 'the dependency graph was walked')
  const needs = meta.packages
    .filter((p) => built.has(p.id) && p.rust_version)
    .map((p) => ({ name: p.name, v: p.rust_version.split('.').map(Number) }))
  for (const { name, v } of needs) assert.ok(cmp(min, v) >= 0, `${name} needs ${v.join('.')}`)
})

function hasCargo() {
  return spawnSync('cargo', ['--version']).status === 0
}

test('npm/<triple>/ holds one package per napi target, at the root version, with os/cpu/libc', () => {
  assert.deepEqual(check(), [])
  const packages = platformPackages(pkg)
  assert.ok(packages.some((p) => p.triple === 'linux-x64-gnu'))
  for (const p of packages) {
    const manifest = JSON.parse(fs.readFileSync(path.join(p.dir, 'package.json'), 'utf8'))
    assert.equal(manifest.name, `corepool-${p.triple}`)
    assert.equal(manifest.version, pkg.version)
    assert.deepEqual(manifest.os, ['linux'])
    assert.equal(manifest.cpu.length, 1)
    assert.ok(['glibc', 'musl'].includes(manifest.libc[0]))
    assert.equal(manifest.main, `corepool.${p.triple}.node`)
  }
  // A version bump without regenerating npm/ is caught.
  assert.ok(check({ ...pkg, version: '9.9.9' }).some((m) => /differs from package\.json/.test(m)))
})
