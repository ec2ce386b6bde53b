#!/usr/bin/env node
'use strict'
// The per-platform packages, napi-rs layout: npm/<triple>/package.json and README.md for every
// target in package.json's `napi.targets`, with the root's version and metadata and the
// `os`/`cpu`/`libc` fields npm uses to install only the matching one. package.json is the one
// source of truth; this script writes the files (as `napi create-npm-dirs` would) and, with
// --check, fails when the committed ones differ (a version bump without regenerating them).
const fs = require('node:fs')
const path = require('node:path')
const { rustTargets } = require('../lib/platform')

const root = path.join(__dirname, '..')
const npmDir = path.join(root, 'npm')

function rootPackage() {
  return JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'))
}

// [{ rustTarget, triple, dir, name, file, manifest, readme }] for every configured target.
function platformPackages(pkg = rootPackage()) {
  const binary = pkg.napi?.binaryName ?? pkg.name
  return (pkg.napi?.targets ?? []).map((rustTarget) => {
    const t = rustTargets[rustTarget]
    if (!t) throw new Error(`package.json napi.targets: unknown target ${rustTarget}`)
    const name = `${pkg.name}-${t.triple}`
    const file = `${binary}.${t.triple}.node`
    const manifest = {
      name,
      version: pkg.version,
      description: `The ${rustTarget} binary of ${pkg.name}`,
      cpu: [t.cpu],
      main: file,
      // The subreaper helper every child is started from, next to the addon (lib/platform.js).
      files: [file, 'corepool-watchdog'],
      license: pkg.license,
      engines: pkg.engines,
      ...(pkg.repository ? { repository: pkg.repository } : {}),
      ...(pkg.homepage ? { homepage: pkg.homepage } : {}),
      ...(pkg.bugs ? { bugs: pkg.bugs } : {}),
      os: [t.os],
      libc: [t.libc],
    }
    const readme = `# \`${name}\`\n\nThis is the **${rustTarget}** binary for \`${pkg.name}\`\n`
    return { rustTarget, triple: t.triple, dir: path.join(npmDir, t.triple), name, file, manifest, readme }
  })
}

function expectedFiles(pkg) {
  const files = new Map()
  for (const p of platformPackages(pkg)) {
    files.set(path.join(p.dir, 'package.json'), `${JSON.stringify(p.manifest, null, 2)}\n`)
    files.set(path.join(p.dir, 'README.md'), p.readme)
  }
  return files
}

function check(pkg = rootPackage()) {
  const problems = []
  const files = expectedFiles(pkg)
  for (const [file, text] of files) {
    const rel = path.relative(root, file)
    if (!fs.existsSync(file)) problems.push(`${rel} is missing`)
    else if (fs.readFileSync(file, 'utf8') !== text) problems.push(`${rel} differs from package.json`)
  }
  const dirs = fs.existsSync(npmDir) ? fs.readdirSync(npmDir) : []
  for (const d of dirs) {
    if (!files.has(path.join(npmDir, d, 'package.json'))) problems.push(`npm/${d} is not in napi.targets`)
  }
  return problems
}

function write(pkg = rootPackage()) {
  for (const [file, text] of expectedFiles(pkg)) {
    fs.mkdirSync(path.dirname(file), { recursive: true })
    fs.writeFileSync(file, text)
  }
}

if (require.main === module) {
  if (process.argv.includes('--check')) {
    const problems = check()
    if (problems.length) {
      console.error(`npm/ is out of date (run \`node scripts/npm-dirs.js\`):\n  ${problems.join('\n  ')}`)
      process.exit(1)
    }
    const pkg = rootPackage()
    console.log(`npm/: ${platformPackages(pkg).length} platform packages at ${pkg.version}, as package.json says`)
  } else {
    write()
  }
}

module.exports = { platformPackages, check, rootPackage }
