// Kernel benchmark: corepool's native kernels against the peer each user would reach for, in one
// run. Usage: node bench/kernels.mjs [--quick]   (use a release build: `npm run build`)
// Prints a markdown table; "ratio" is peer time / corepool time (> 1: corepool is faster).
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
const THREADS = os.availableParallelism()
const pool = new Pool({ threads: THREADS })
const rows = []

const mib = (n) => n * 1024 * 1024
const fmtMs = (ms) => (ms < 1 ? `${(ms * 1000).toFixed(0)} µs` : `${ms.toFixed(1)} ms`)

/** Median wall time of `runs` calls of `fn` (after one warm-up). */
async function time(fn, runs = quick ? 3 : 7) {
  await fn()
  const times = []
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now()
    await fn()
    times.push(performance.now() - t0)
  }
  times.sort((a, b) => a - b)
  return times[times.length >> 1]
}

function row(name, ours, peerName, theirs, unit = 'time') {
  const ratio = theirs / ours
  const show = unit === 'time' ? fmtMs : (v) => `${v.toFixed(1)} ${unit}`
  // For throughputs larger is better, so the ratio is ours / theirs.
  const r = unit === 'time' ? ratio : ours / theirs
  rows.push({ name, ours: show(ours), peer: `${peerName}: ${show(theirs)}`, ratio: r.toFixed(2) })
  console.error(`${name}: corepool ${show(ours)}, ${peerName} ${show(theirs)}, ratio ${r.toFixed(2)}`)
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
{
  const big = crypto.randomBytes(mib(64))
  const ours = await time(() => hash('sha256', big, { pool }))
  const theirs = await time(() => crypto.createHash('sha256').update(big).digest('hex'))
  row('sha256, one 64 MiB buffer', ours, 'node:crypto createHash', theirs)

  const small = Array.from({ length: 10_000 }, () => crypto.randomBytes(1024))
  const ours2 = await time(() => hashMany('sha256', small, { pool }))
  const theirs2 = await time(() => small.map((b) => crypto.createHash('sha256').update(b).digest('hex')))
  row('sha256, 10 000 × 1 KiB (hashMany)', ours2, 'node:crypto createHash loop', theirs2)

  const ours3 = await time(() => hash('xxh3-64', big, { pool }))
  const theirs3 = await time(() => xxhash.xxh3.xxh64(big))
  row('xxh3-64, one 64 MiB buffer', ours3, '@node-rs/xxhash (sync)', theirs3)

  const ours4 = await time(() => hashMany('xxh3-64', small, { pool }))
  const theirs4 = await time(() => small.map((b) => xxhash.xxh3.xxh64(b)))
  row('xxh3-64, 10 000 × 1 KiB (hashMany)', ours4, '@node-rs/xxhash loop', theirs4)

  const ours5 = await time(() => hash('blake3', big, { pool }))
  row('blake3, one 64 MiB buffer (vs node sha256)', ours5, 'node:crypto sha256', theirs)
}

// ---------------------------------------------------------------- compression
{
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

  const oursGz = mbps(await saturate(() => compress('gzip', input, { pool }), jobs, inflight))
  const theirsGz = mbps(await saturate(() => gzip(input), jobs, inflight))
  row(`gzip level 6, ${jobs} × 1 MiB, saturated`, oursGz, 'async zlib.gzip', theirsGz, 'MB/s')

  const params = { params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 5 } }
  const oursBr = mbps(await saturate(() => compress('brotli', input, { pool, level: 5 }), jobs, inflight))
  const theirsBr = mbps(await saturate(() => brotli(input, params), jobs, inflight))
  row(`brotli quality 5, ${jobs} × 1 MiB, saturated`, oursBr, 'async zlib.brotliCompress', theirsBr, 'MB/s')

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
{
  const o = { memoryCost: 19456, timeCost: 2, parallelism: 1 }
  const ours = await time(() => passwordHash('correct horse battery staple', { pool, ...o }))
  const theirs = await time(() => argon2.hash('correct horse battery staple', o))
  row('argon2id m=19456 t=2 p=1, one hash', ours, '@node-rs/argon2', theirs)

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
{
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
  const ours = await time(() => resize(jpeg, { pool, width: 320, height: 240, format: 'jpeg', quality: 80 }))
  const theirs = await time(() => sharp(jpeg).resize(320, 240).jpeg({ quality: 80 }).toBuffer())
  row('thumbnail 2000×1500 JPEG → 320×240, one', ours, 'sharp', theirs)

  const n = quick ? 8 : 24
  const oursAll = await saturate(
    () => resize(jpeg, { pool, width: 320, height: 240, format: 'jpeg', quality: 80 }),
    n,
    THREADS * 2,
  )
  const theirsAll = await saturate(() => sharp(jpeg).resize(320, 240).jpeg({ quality: 80 }).toBuffer(), n, THREADS * 2)
  row(`thumbnails, ${n} concurrent`, oursAll, 'sharp', theirsAll)
}

await pool.close()

console.log(
  `\nnode ${process.version}, ${os.cpus()[0]?.model ?? 'cpu'} × ${THREADS} threads${quick ? ' (quick)' : ''}\n`,
)
console.log('| benchmark | corepool | peer | ratio |')
console.log('|---|---|---|---|')
for (const r of rows) console.log(`| ${r.name} | ${r.ours} | ${r.peer} | ${r.ratio} |`)
