// Kernel benchmark: corepool's native kernels against the peer each user would reach for, in one
// run. Usage: node bench/kernels.mjs [--quick] [--only hash,compress,argon2,thumbnail]
// (use a release build: `npm run build`)
// Prints a markdown table; "ratio" is peer time / corepool time (> 1: corepool is faster): the
// median of the ratios of interleaved pairs of runs, with their range.
// Noisy machines: compare numbers within one run only.
import os from 'node:os'
import fs from 'node:fs'
import path from 'node:path'
import crypto from 'node:crypto'
import zlib from 'node:zlib'
import { promisify } from 'node:util'
import { performance } from 'node:perf_hooks'
import { createRequire } from 'node:module'
import { Pool, hash, hashMany, compress, passwordHash, resize } from 'corepool'

const require = createRequire(import.meta.url)
const argon2 = require('@node-rs/argon2')
const xxhash = require('@node-rs/xxhash')
const sharp = require('sharp')

const quick = process.argv.includes('--quick')
const onlyArg = process.argv.indexOf('--only')
const only = onlyArg > 0 ? process.argv[onlyArg + 1].split(',') : null
/** Whether to run a section: hash, compress, argon2, thumbnail (all unless --only lists some). */
const want = (section) => !only || only.includes(section)
const THREADS = os.availableParallelism()
const pool = new Pool({ threads: THREADS })
const rows = []

const mib = (n) => n * 1024 * 1024
const fmtMs = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`)

/** A row measured once per side (no pairing). */
function row(name, ours, peerName, theirs) {
  const r = (theirs / ours).toFixed(2)
  rows.push({ name, ours: fmtMs(ours), peer: `${peerName}: ${fmtMs(theirs)}`, ratio: r })
  console.error(`${name}: corepool ${fmtMs(ours)}, ${peerName} ${fmtMs(theirs)}, ratio ${r}`)
}

const median = (xs) => {
  const v = [...xs].sort((a, b) => a - b)
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2
}

/**
 * Runs `ours` and `theirs` (each returns a number, or a promise of one) `runs` times each,
 * interleaved and alternating which goes first, after one warm-up each, and adds a row: the
 * median of each side and the median (and range) of the per-pair ratios, > 1 when corepool is
 * better. `unit` 'time' measures wall time of the calls; otherwise the functions return a
 * throughput in that unit (larger is better).
 */
async function compare(name, ours, peerName, theirs, { unit = 'time', runs = quick ? 3 : 9 } = {}) {
  const measure = async (fn) => {
    if (unit !== 'time') return fn()
    const t0 = performance.now()
    await fn()
    return performance.now() - t0
  }
  await ours()
  await theirs()
  const a = []
  const b = []
  for (let i = 0; i < runs; i++) {
    if (i % 2) {
      b.push(await measure(theirs))
      a.push(await measure(ours))
    } else {
      a.push(await measure(ours))
      b.push(await measure(theirs))
    }
  }
  const ratios = a.map((x, i) => (unit === 'time' ? b[i] / x : x / b[i])).sort((x, y) => x - y)
  const show = unit === 'time' ? fmtMs : (v) => `${v.toFixed(1)} ${unit}`
  const r = `${median(ratios).toFixed(2)} (${ratios[0].toFixed(2)}–${ratios[ratios.length - 1].toFixed(2)})`
  rows.push({ name, ours: show(median(a)), peer: `${peerName}: ${show(median(b))}`, ratio: r })
  console.error(`${name}: corepool ${show(median(a))}, ${peerName} ${show(median(b))}, ratio ${r}`)
  return median(a)
}

/** Runs `total` calls of `fn` keeping `inflight` outstanding; returns wall ms. */
async function saturate(fn, total, inflight) {
  let started = 0
  const t0 = performance.now()
  const worker = async () => {
    while (started < total) {
      started++
      await fn()
    }
  }
  await Promise.all(Array.from({ length: inflight }, worker))
  return performance.now() - t0
}

// ---------------------------------------------------------------- hashing
if (want('hash')) {
  const big = crypto.randomBytes(mib(64))
  await compare(
    'sha256, one 64 MiB buffer',
    () => hash('sha256', big, { pool }),
    'node:crypto createHash',
    () => crypto.createHash('sha256').update(big).digest('hex'),
  )

  const small = Array.from({ length: 10_000 }, () => crypto.randomBytes(1024))
  await compare(
    'sha256, 10 000 × 1 KiB (hashMany)',
    () => hashMany('sha256', small, { pool }),
    'node:crypto createHash loop',
    () => small.map((b) => crypto.createHash('sha256').update(b).digest('hex')),
  )
  await compare(
    'xxh3-64, one 64 MiB buffer',
    () => hash('xxh3-64', big, { pool }),
    '@node-rs/xxhash (sync)',
    () => xxhash.xxh3.xxh64(big),
  )
  await compare(
    'xxh3-64, 10 000 × 1 KiB (hashMany)',
    () => hashMany('xxh3-64', small, { pool }),
    '@node-rs/xxhash loop',
    () => small.map((b) => xxhash.xxh3.xxh64(b)),
  )
  await compare(
    'blake3, one 64 MiB buffer (vs node sha256)',
    () => hash('blake3', big, { pool }),
    'node:crypto sha256',
    () => crypto.createHash('sha256').update(big).digest('hex'),
  )
}

// ---------------------------------------------------------------- compression
if (want('compress')) {
  // Text-like input: compressible but not trivial.
  const words = ['corepool', 'native', 'kernel', 'thread', 'buffer', 'promise', 'zlib', 'brotli', 'hash', 'pool']
  const rnd = crypto.randomBytes(mib(1))
  const text = Buffer.from(Array.from(rnd, (b, i) => words[b % 10] + (i % 13 === 0 ? '\n' : ' ')).join(''))
  const input = text.subarray(0, mib(1))
  const jobs = quick ? 16 : 48
  const gzip = promisify(zlib.gzip)
  const brotli = promisify(zlib.brotliCompress)
  const inflight = Math.max(8, THREADS * 4)
  const mbps = (ms) => (jobs * input.length) / 1e6 / (ms / 1000)

  const runs = quick ? 3 : 5
  await compare(
    `gzip level 6, ${jobs} × 1 MiB, saturated`,
    async () => mbps(await saturate(() => compress('gzip', input, { pool }), jobs, inflight)),
    'async zlib.gzip',
    async () => mbps(await saturate(() => gzip(input), jobs, inflight)),
    { unit: 'MB/s', runs },
  )
  const params = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }
  await compare(
    `brotli quality 5, ${jobs} × 1 MiB, saturated`,
    async () => mbps(await saturate(() => compress('brotli', input, { pool, level: 5 }), jobs, inflight)),
    'async zlib.brotliCompress',
    async () => mbps(await saturate(() => brotli(input, params), jobs, inflight)),
    { unit: 'MB/s', runs },
  )

  // Scaling from 1 to N threads.
  for (let t = 1; t <= THREADS; t++) {
    const p = new Pool({ threads: t })
    const v = mbps(await saturate(() => compress('gzip', input, { pool: p }), jobs, inflight))
    rows.push({ name: `gzip scaling: Pool({ threads: ${t} })`, ours: `${v.toFixed(1)} MB/s`, peer: '', ratio: '' })
    console.error(`gzip with ${t} thread(s): ${v.toFixed(1)} MB/s`)
    await p.close()
  }
}

// ---------------------------------------------------------------- argon2
if (want('argon2')) {
  const o = { memoryCost: 19456, timeCost: 2, parallelism: 1 }
  await compare(
    'argon2id m=19456 t=2 p=1, one hash',
    () => passwordHash('correct horse battery staple', { pool, ...o }),
    '@node-rs/argon2',
    () => argon2.hash('correct horse battery staple', o),
  )

  // fs latency while argon2 hashes are kept in flight for a while: corepool runs them on its own
  // threads, @node-rs/argon2 on libuv's pool, which fs shares.
  const file = path.join(os.tmpdir(), `corepool-bench-${process.pid}`)
  fs.writeFileSync(file, 'x')
  async function fsLatency(start) {
    const until = performance.now() + (quick ? 1000 : 3000)
    const load = async () => {
      while (performance.now() < until) await start()
    }
    const burst = Promise.all(Array.from({ length: THREADS * 4 }, load))
    const lat = []
    while (performance.now() < until) {
      const t0 = performance.now()
      await fs.promises.stat(file)
      lat.push(performance.now() - t0)
    }
    await burst
    lat.sort((a, b) => a - b)
    return { p50: lat[lat.length >> 1], p99: lat[Math.floor(lat.length * 0.99)], n: lat.length }
  }
  const oursLat = await fsLatency(() => passwordHash('pw', { pool, ...o }))
  const theirsLat = await fsLatency(() => argon2.hash('pw', o))
  row(
    `fs.stat p50 while argon2 runs (${oursLat.n} vs ${theirsLat.n} stats)`,
    oursLat.p50,
    '@node-rs/argon2',
    theirsLat.p50,
  )
  row('fs.stat p99 while argon2 runs', oursLat.p99, '@node-rs/argon2', theirsLat.p99)
  fs.rmSync(file, { force: true })
}

// ---------------------------------------------------------------- thumbnails
if (want('thumbnail')) {
  const width = 2000
  const height = 1500
  const raw = Buffer.alloc(width * height * 3)
  const noise = crypto.randomBytes(raw.length)
  for (let y = 0, i = 0; y < height; y++) {
    for (let x = 0; x < width; x++, i += 3) {
      raw[i] = ((x * 255) / width + (noise[i] & 31)) & 0xff
      raw[i + 1] = ((y * 255) / height + (noise[i + 1] & 31)) & 0xff
      raw[i + 2] = ((x + y) & 0xff) ^ (noise[i + 2] & 15)
    }
  }
  const jpeg = await sharp(raw, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer()
  const ours = () => resize(jpeg, { pool, width: 320, height: 240, format: 'jpeg', quality: 80 })
  const theirs = () => sharp(jpeg).resize(320, 240).jpeg({ quality: 80 }).toBuffer()
  await compare('thumbnail 2000×1500 JPEG → 320×240, one', ours, 'sharp', theirs)
  const n = quick ? 8 : 24
  await compare(
    `thumbnails, ${n} concurrent`,
    () => saturate(ours, n, THREADS * 2),
    'sharp',
    () => saturate(theirs, n, THREADS * 2),
    { runs: quick ? 3 : 5 },
  )
}

await pool.close()

console.log(
  `\nnode ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${THREADS} threads${quick ? ' (quick)' : ''}\n`,
)
console.log('| benchmark | corepool | peer | ratio |')
console.log('|---|---|---|---|')
for (const r of rows) console.log(`| ${r.name} | ${r.ours} | ${r.peer} | ${r.ratio} |`)
