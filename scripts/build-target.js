#!/usr/bin/env node
'use strict'
// The release binaries (the addon and the corepool-watchdog helper) for one target of package.json's `napi.targets`, for the release workflow
// (.github/workflows/release.yml), which runs it once per target and hands the files to
// `npm run prebuilds -- --artifacts DIR --all`.
//
//   node scripts/build-target.js <rust target> [--out DIR (default artifacts/)]
//
// It cross-compiles with cargo-zigbuild (`pip install ziglang cargo-zigbuild`, plus
// `rustup target add <rust target>`): zig links glibc targets against an old glibc (a plain
// build needs the builder's), and it provides the C cross compiler zstd needs. Both binaries
// link against glibc 2.17, the baseline of napi-rs packages and of Rust's own gnu targets (Rust's
// std references the newer functions it uses, gettid among them, weakly; corepool calls them
// through libc::syscall), and scripts/check-glibc.js then checks that neither needs more.
// musl targets are built with the C runtime linked dynamically (-crt-static), as a Node addon
// must be.
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')
const { rustTargets, nativeFileName } = require('../lib/platform')

const root = path.join(__dirname, '..')
const [target] = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const outIndex = process.argv.indexOf('--out')
const out = path.resolve(outIndex > 0 ? process.argv[outIndex + 1] : path.join(root, 'artifacts'))
const t = rustTargets[target]
if (!t) {
  console.error(`usage: build-target.js <${Object.keys(rustTargets).join(' | ')}> [--out DIR]`)
  process.exit(2)
}
// The oldest glibc the gnu binaries run on.
const GLIBC = '2.17'
const glibc = (version) => (t.libc === 'glibc' ? `${target}.${version}` : target)
const env = { ...process.env }
if (t.libc === 'musl') env.RUSTFLAGS = `${env.RUSTFLAGS ?? ''} -C target-feature=-crt-static`.trim()
for (const a of [
  ['zigbuild', '--release', '--locked', '--lib', '--target', glibc(GLIBC)],
  ['zigbuild', '--release', '--locked', '-p', 'corepool-core', '--bin', 'corepool-watchdog', '--target', glibc(GLIBC)],
]) {
  console.log(`build-target: cargo ${a.join(' ')}`)
  const r = spawnSync('cargo', a, { cwd: root, stdio: 'inherit', env })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
const targetDir = env.CARGO_TARGET_DIR ? path.resolve(root, env.CARGO_TARGET_DIR) : path.join(root, 'target')
fs.mkdirSync(out, { recursive: true })
const file = path.join(out, nativeFileName(t.triple))
fs.copyFileSync(path.join(targetDir, target, 'release', 'libcorepool.so'), file)
const watchdog = path.join(out, `corepool-watchdog.${t.triple}`)
fs.copyFileSync(path.join(targetDir, target, 'release', 'corepool-watchdog'), watchdog)
if (t.libc === 'glibc') {
  const r = spawnSync(process.execPath, [path.join(__dirname, 'check-glibc.js'), '--max', GLIBC, file, watchdog], {
    stdio: 'inherit',
  })
  if (r.status !== 0) process.exit(r.status ?? 1)
}
console.log(`build-target: ${file}, ${watchdog}`)
