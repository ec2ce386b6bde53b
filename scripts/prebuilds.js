#!/usr/bin/env node
'use strict'
// `npm run prebuilds`: the platform packages and the main package as tarballs in one folder,
// ready for `npm publish` (platform packages first).
//
//   node scripts/prebuilds.js                   build this machine's target (cargo, release), pack
//   node scripts/prebuilds.js --artifacts DIR   take the corepool.<triple>.node and
//                                               corepool-watchdog.<triple> files found under DIR
//                                               (the release workflow's build jobs) instead
//   --out DIR   the folder (default dist/; emptied first)
//   --all       fail unless every target in package.json's napi.targets has a binary (releases)
//
// The main package is exactly what `npm pack` takes from this folder, with one change to its
// package.json: `optionalDependencies` lists the platform packages packed beside it, at the
// same version (what `napi pre-publish` adds before a publish).
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { platformPackages, check, rootPackage } = require('./npm-dirs')
const platform = require('../lib/platform')

const root = path.join(__dirname, '..')
const argv = process.argv.slice(2)
const opt = (name) => {
  const i = argv.indexOf(name)
  return i >= 0 ? argv[i + 1] : undefined
}
const out = path.resolve(opt('--out') ?? path.join(root, 'dist'))
const artifactsDir = opt('--artifacts')
const requireAll = argv.includes('--all')
const ELF_MACHINE = { x64: 62, arm64: 183 }

function die(message) {
  console.error(`prebuilds: ${message}`)
  process.exit(1)
}

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], ...options })
  if (r.error || r.status !== 0) die(`\`${cmd} ${args.join(' ')}\` failed (${r.error?.message ?? `exit ${r.status}`})`)
  return r.stdout
}

function pack(dir) {
  const [info] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', out], { cwd: dir }))
  return info
}

function findArtifacts(dir, wanted) {
  const found = new Map()
  const walk = (d) => {
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, entry.name)
      if (entry.isDirectory()) walk(p)
      else if (wanted.has(entry.name)) found.set(wanted.get(entry.name), p)
    }
  }
  walk(path.resolve(dir))
  return found
}

const problems = check()
if (problems.length) die(`npm/ is out of date (run \`node scripts/npm-dirs.js\`):\n  ${problems.join('\n  ')}`)
const pkg = rootPackage()
const packages = platformPackages(pkg)

let artifacts
let watchdogs
if (artifactsDir) {
  artifacts = findArtifacts(artifactsDir, new Map(packages.map((p) => [p.file, p.triple])))
  watchdogs = findArtifacts(artifactsDir, new Map(packages.map((p) => [`corepool-watchdog.${p.triple}`, p.triple])))
} else {
  const host = platform.platformTriple()
  if (!packages.some((p) => p.triple === host)) die(`this machine (${host}) is not in package.json napi.targets`)
  const build = spawnSync(process.execPath, [path.join(__dirname, 'install.js'), '--force'], { stdio: 'inherit' })
  if (build.status !== 0) die('the release build failed')
  artifacts = new Map([[host, path.join(root, platform.nativeFileName(host))]])
  watchdogs = new Map([[host, path.join(root, 'corepool-watchdog')]])
}
const missing = packages.filter((p) => !artifacts.has(p.triple)).map((p) => p.triple)
if (missing.length && requireAll) die(`no binary for ${missing.join(', ')} (--all)`)
if (artifacts.size === 0) die('no binary to pack')

fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out, { recursive: true })
const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-prebuilds-'))
const packed = []
try {
  const optionalDependencies = {}
  for (const p of packages) {
    const binary = artifacts.get(p.triple)
    if (!binary) continue
    const watchdog = watchdogs.get(p.triple)
    if (!watchdog) die(`no corepool-watchdog for ${p.triple} beside ${binary}`)
    // A binary for the wrong CPU would install cleanly and fail on every require: check it.
    const head = Buffer.alloc(20)
    const fd = fs.openSync(binary, 'r')
    fs.readSync(fd, head, 0, 20, 0)
    fs.closeSync(fd)
    const machine = head.readUInt16LE(18)
    if (head.readUInt32BE(0) !== 0x7f454c46 || machine !== ELF_MACHINE[p.manifest.cpu[0]]) {
      die(`${binary} is not an ELF binary for ${p.manifest.cpu[0]} (e_machine ${machine})`)
    }
    const dir = path.join(stage, p.triple)
    fs.mkdirSync(dir)
    fs.copyFileSync(path.join(p.dir, 'package.json'), path.join(dir, 'package.json'))
    fs.copyFileSync(path.join(p.dir, 'README.md'), path.join(dir, 'README.md'))
    fs.copyFileSync(path.join(root, 'LICENSE'), path.join(dir, 'LICENSE'))
    fs.copyFileSync(binary, path.join(dir, p.file))
    fs.copyFileSync(watchdog, path.join(dir, 'corepool-watchdog'))
    fs.chmodSync(path.join(dir, 'corepool-watchdog'), 0o755)
    packed.push(pack(dir))
    optionalDependencies[p.name] = pkg.version
  }

  // The main package: the files `npm pack` would take, and optionalDependencies added.
  const [list] = JSON.parse(run('npm', ['pack', '--dry-run', '--json'], { cwd: root }))
  const main = path.join(stage, 'main')
  for (const { path: rel } of list.files) {
    fs.mkdirSync(path.dirname(path.join(main, rel)), { recursive: true })
    fs.copyFileSync(path.join(root, rel), path.join(main, rel))
  }
  const manifest = { ...pkg, optionalDependencies: { ...pkg.optionalDependencies, ...optionalDependencies } }
  fs.writeFileSync(path.join(main, 'package.json'), `${JSON.stringify(manifest, null, 2)}\n`)
  const info = pack(main)
  const bad = info.files.filter((f) => /(^|\/)target\/|\.node$|\.log$|\.tgz$/.test(f.path))
  if (bad.length) die(`the main package would ship ${bad.map((f) => f.path).join(', ')}`)
  packed.push(info)
} finally {
  fs.rmSync(stage, { recursive: true, force: true })
}

const kb = (n) => `${(n / 1024).toFixed(0)} KiB`
const shown = path.relative(process.cwd(), out).startsWith('..') ? out : path.relative(process.cwd(), out) || '.'
console.log(`\nprebuilds: ${packed.length} tarballs in ${shown}/`)
for (const t of packed) {
  console.log(`  ${t.filename}  ${kb(t.size)} packed, ${kb(t.unpackedSize)} unpacked, ${t.entryCount} files`)
}
if (missing.length) console.log(`not built here (the release workflow builds them): ${missing.join(', ')}`)
console.log('publish the platform packages first, then corepool:')
for (const t of packed) console.log(`  npm publish ${path.join(shown, t.filename)}`)
