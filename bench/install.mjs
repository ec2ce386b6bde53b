// Install time and cold start, corepool against @node-rs/argon2 (a napi-rs package), one run.
//
//   npm run prebuilds && node bench/install.mjs [--dist dist] [--source] [--samples 41]
//
// `npm install` into empty projects: corepool's platform package and main package (tarballs from
// `npm run prebuilds`), @node-rs/argon2 from the registry (the version in devDependencies) and,
// with --source, corepool's main package alone (built from source: minutes). Then the cold
// start: one fresh node process per sample timing its first `require()`, alternating between
// the two packages, reported as medians and the median of the per-pair ratios.
import { execFileSync, spawnSync } from 'node:child_process'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const argv = process.argv.slice(2)
const opt = (name, dflt) => (argv.includes(name) ? argv[argv.indexOf(name) + 1] : dflt)
const dist = path.resolve(opt('--dist', path.join(root, 'dist')))
const samples = Number(opt('--samples', 41))
const argon2 = `@node-rs/argon2@${JSON.parse(fs.readFileSync(path.join(root, 'package.json'))).devDependencies['@node-rs/argon2'].replace(/^\^/, '')}`

const tarballs = fs.readdirSync(dist).filter((f) => f.endsWith('.tgz'))
const main = tarballs.find((f) => /^corepool-\d/.test(f))
const host = tarballs.filter((f) => f !== main)
if (!main || host.length === 0) throw new Error(`no tarballs in ${dist}: run \`npm run prebuilds\` first`)

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-bench-install-'))
process.on('exit', () => fs.rmSync(work, { recursive: true, force: true }))

function install(name, specs) {
  const dir = path.join(work, name)
  fs.mkdirSync(dir)
  fs.writeFileSync(path.join(dir, 'package.json'), '{"name":"bench","version":"1.0.0","private":true}\n')
  const t0 = process.hrtime.bigint()
  const r = spawnSync('npm', ['install', '--no-audit', '--no-fund', ...specs], { cwd: dir, encoding: 'utf8' })
  const s = Number(process.hrtime.bigint() - t0) / 1e9
  if (r.status !== 0) throw new Error(`npm install ${specs.join(' ')} failed:\n${r.stderr}`)
  return { dir, s }
}

const rows = []
const prebuilt = install('prebuilt', [...host.map((f) => path.join(dist, f)), path.join(dist, main)])
rows.push(['corepool: platform package + main package (tarballs)', prebuilt.s])
const peer = install('argon2', [argon2])
rows.push([`${argon2} (registry)`, peer.s])
if (argv.includes('--source')) {
  rows.push(['corepool: main package alone, built from source', install('source', [path.join(dist, main)]).s])
}
console.log('| npm install into an empty project | seconds |\n|---|---|')
for (const [what, s] of rows) console.log(`| ${what} | ${s.toFixed(2)} |`)

// [wall ms, CPU ms (user + system)] of the first require() in a fresh node process. CPU time
// is reported too because wall time on a loaded machine mostly measures the waiting.
// With `warm`, Node's package-exports resolver is loaded first (by resolving the package's
// package.json), as the first package with an `exports` map does in most applications.
function coldRequire(dir, mod, warm = false) {
  const pre = warm ? `require.resolve(${JSON.stringify(`${mod}/package.json`)});` : ''
  const code = `${pre}const c=process.cpuUsage(),t=process.hrtime.bigint();require(${JSON.stringify(mod)});const w=Number(process.hrtime.bigint()-t)/1e6,u=process.cpuUsage(c);process.stdout.write(JSON.stringify([w,(u.user+u.system)/1e3]))`
  return JSON.parse(execFileSync(process.execPath, ['-e', code], { cwd: dir, encoding: 'utf8' }))
}
const ours = []
const theirs = []
const oursWarm = []
const theirsWarm = []
for (let i = 0; i < samples; i++) {
  // Alternate which goes first so machine load hits both alike.
  const pair = [
    () => ours.push(coldRequire(prebuilt.dir, 'corepool')),
    () => theirs.push(coldRequire(peer.dir, '@node-rs/argon2')),
    () => oursWarm.push(coldRequire(prebuilt.dir, 'corepool', true)),
    () => theirsWarm.push(coldRequire(peer.dir, '@node-rs/argon2', true)),
  ]
  if (i % 2) pair.reverse()
  for (const run of pair) run()
}
const sorted = (a) => a.slice().sort((x, y) => x - y)
const median = (a) => sorted(a)[a.length >> 1]
console.log(
  `\ncold start, first require() in a fresh process, ${samples} pairs (medians; ratio = median of pair ratios, quartiles):`,
)
console.log('| measure | corepool | @node-rs/argon2 | ratio |\n|---|---|---|---|')
for (const [k, what, a, b] of [
  [0, 'wall ms', ours, theirs],
  [1, 'CPU ms', ours, theirs],
  [1, "CPU ms, Node's exports resolver already loaded", oursWarm, theirsWarm],
]) {
  const ratios = sorted(a.map((v, i) => v[k] / b[i][k]))
  const q = (p) => ratios[Math.min(ratios.length - 1, Math.floor(p * ratios.length))].toFixed(2)
  const m = (a) => median(a.map((v) => v[k])).toFixed(2)
  console.log(`| ${what} | ${m(a)} | ${m(b)} | ${median(ratios).toFixed(2)}× (${q(0.25)}–${q(0.75)}×) |`)
}
