// Native kernels: hashing, compression, password hashing, numeric work, image resize.
import { test, describe } from 'node:test'
import assert from 'node:assert/strict'
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import zlib from 'node:zlib'
import { promisify } from 'node:util'
import { createRequire } from 'node:module'
import * as corepool from '../index.mjs'

const require = createRequire(import.meta.url)
const { hash, hashMany, hashFile, createHasher, Pool } = corepool

async function rejectsWith(promise, code) {
  assert.ok(promise instanceof Promise, 'returns a promise (never throws synchronously)')
  await assert.rejects(promise, (err) => {
    assert.equal(err.code, code, `${err.code}: ${err.message}`)
    return true
  })
}

// The BLAKE3 reference vectors' input: bytes 0, 1, ..., 250, 0, 1, ...
const blake3Input = (n) => Buffer.from(Array.from({ length: n }, (_, i) => i % 251))

// xxHash's sanity-test buffer (tests/sanity_test.c: fillTestBuffer).
function xxhSanityBuffer(n) {
  const PRIME32 = 2654435761n
  const PRIME64 = 11400714785074694797n
  const out = Buffer.alloc(n)
  let gen = PRIME32
  for (let i = 0; i < n; i++) {
    out[i] = Number(gen >> 56n)
    gen = (gen * PRIME64) & 0xffffffffffffffffn
  }
  return out
}

describe('hash', () => {
  test('NIST SHA-1 / SHA-256 / SHA-512 vectors (FIPS 180 examples)', async () => {
    const abc = 'abc'
    const two = 'abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq'
    assert.equal(await hash('sha1', abc), 'a9993e364706816aba3e25717850c26c9cd0d89d')
    assert.equal(await hash('sha1', two), '84983e441c3bd26ebaae4aa1f95129e5e54670f1')
    assert.equal(await hash('sha256', abc), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad')
    assert.equal(await hash('sha256', ''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855')
    assert.equal(await hash('sha256', two), '248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1')
    assert.equal(
      await hash('sha256', Buffer.alloc(1_000_000, 'a')),
      'cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0',
    )
    assert.equal(
      await hash('sha512', abc),
      'ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f',
    )
    assert.equal(
      await hash('sha512', ''),
      'cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e',
    )
  })

  test('MD5 vectors (RFC 1321)', async () => {
    assert.equal(await hash('md5', ''), 'd41d8cd98f00b204e9800998ecf8427e')
    assert.equal(await hash('md5', 'abc'), '900150983cd24fb0d6963f7d28e17f72')
    assert.equal(await hash('md5', 'message digest'), 'f96b697d7cb7938d525a2f31aaf161d0')
  })

  test('BLAKE3 reference vectors (test_vectors.json, default 32-byte output)', async () => {
    const cases = {
      0: 'af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262',
      1: '2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213',
      1023: '10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11',
      1024: '42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7',
      1025: 'd00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444',
      3073: '7124b49501012f81cc7f11ca069ec9226cecb8a2c850cfe644e327d22d3e1cd3',
      7169: 'a003fc7a51754a9b3c7fae0367ab3d782dccf28855a03d435f8cfe74605e7817',
    }
    for (const [len, want] of Object.entries(cases)) {
      assert.equal(await hash('blake3', blake3Input(Number(len))), want, `len ${len}`)
    }
  })

  test('xxHash sanity vectors (seed 0), canonical big-endian', async () => {
    const buf = xxhSanityBuffer(4096 + 64 + 1)
    const xxh64 = {
      0: 'ef46db3751d8e999',
      1: 'e934a84adb052768',
      4: '9136a0dca57457ee',
      14: '8282dcc4994e35c8',
      222: 'b641ae8cb691c174',
    }
    const xxh3 = {
      1: 'c44bdff4074eecdb',
      6: '27b56a84cd2d7325',
      12: 'a713daf0dfbb77e7',
      24: 'a3fe70bf9d3510eb',
      48: '397da259ecba1f11',
      80: 'bcdefbbb2c47c90a',
      195: 'cd94217ee362ec3a',
      403: 'cdeb804d65c6dea4',
      512: '617e49599013cb6b',
      2048: 'dd59e2c3a5f038e0',
      2240: '6e73a90539cf2948',
      2367: 'cb37aeb9e5d361ed',
    }
    // { low64, high64 } in the reference; the canonical form is high64 then low64.
    const xxh128 = {
      0: ['6001c324468d497f', '99aa06d3014798d8'],
      1: ['c44bdff4074eecdb', 'a6cd5e9392000f6a'],
      6: ['3e7039bdda43cfc6', '082afe0b8162d12a'],
      12: ['061a192713f69ad9', '6e3efd8fc7802b18'],
      24: ['1e7044d28b1b901d', '0ce966e4678d3761'],
      222: ['f1aebd597cec6b3a', '337e09641b948717'],
      2048: ['dd59e2c3a5f038e0', 'f736557fd47073a5'],
      2367: ['cb37aeb9e5d361ed', 'e89c0f6ff369b427'],
    }
    for (const [len, want] of Object.entries(xxh64)) {
      assert.equal(await hash('xxh64', buf.subarray(0, Number(len))), want, `xxh64 len ${len}`)
    }
    for (const [len, want] of Object.entries(xxh3)) {
      assert.equal(await hash('xxh3-64', buf.subarray(0, Number(len))), want, `xxh3-64 len ${len}`)
    }
    for (const [len, [low, high]] of Object.entries(xxh128)) {
      assert.equal(await hash('xxh3-128', buf.subarray(0, Number(len))), high + low, `xxh3-128 len ${len}`)
    }
  })

  test('matches node:crypto on random data of many sizes, every input type and encoding', async () => {
    for (const alg of ['sha256', 'sha512', 'sha1', 'md5']) {
      for (const size of [0, 1, 63, 64, 65, 1000, (1 << 20) + 3, 3 * (1 << 20)]) {
        const data = crypto.randomBytes(size)
        const want = crypto.createHash(alg).update(data).digest()
        assert.equal(await hash(alg, data), want.toString('hex'), `${alg} ${size}`)
        assert.deepEqual(await hash(alg, new Uint8Array(data), { encoding: 'buffer' }), want)
        assert.equal(await hash(alg, data, { encoding: 'base64' }), want.toString('base64'))
      }
      assert.equal(await hash(alg, 'héllo ✓'), crypto.createHash(alg).update('héllo ✓').digest('hex'))
      // Any ArrayBufferView: its bytes, respecting byteOffset/byteLength.
      const f = new Float64Array([1.5, 2.5, 3.5])
      const view = new DataView(f.buffer, 8, 16)
      assert.equal(
        await hash(alg, view),
        crypto
          .createHash(alg)
          .update(Buffer.from(f.buffer, 8, 16))
          .digest('hex'),
      )
    }
    const buf = await hash('sha256', 'x', { encoding: 'buffer' })
    assert.ok(Buffer.isBuffer(buf))
  })

  test('the caller may mutate its buffer right after the call (input is copied on submit)', async () => {
    const data = crypto.randomBytes(4 << 20)
    const want = crypto.createHash('sha256').update(data).digest('hex')
    const p = hash('sha256', data)
    data.fill(0)
    assert.equal(await p, want)
  })

  test('bad input is ERR_INVALID_ARG as a rejected promise', async () => {
    await rejectsWith(hash('sha3-256', 'x'), 'ERR_INVALID_ARG')
    await rejectsWith(hash(undefined, 'x'), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', 42), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', null), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', [1, 2]), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', 'x', { encoding: 'utf8' }), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', 'x', 'hex'), 'ERR_INVALID_ARG')
    await rejectsWith(hash('sha256', 'x', { timeout: -1 }), 'ERR_INVALID_ARG')
    // Options set to undefined mean "not given".
    assert.equal(
      await hash('md5', '', { encoding: undefined, timeout: undefined, signal: undefined }),
      'd41d8cd98f00b204e9800998ecf8427e',
    )
  })

  test('a long hash is cancelled by its signal and by its timeout', async () => {
    const pool = new Pool({ threads: 1 })
    try {
      const big = Buffer.alloc(256 << 20, 7)
      const controller = new AbortController()
      const p = hash('sha512', big, { pool, signal: controller.signal })
      // Input this large is hashed while the call copies it; when the call returns the hash is
      // under way and far from done (hashing is slower than copying), whatever the machine.
      assert.equal(pool.stats.running, 1)
      controller.abort()
      await rejectsWith(p, 'ERR_ABORTED')
      await rejectsWith(hash('sha512', big, { pool, timeout: 5 }), 'ERR_TASK_TIMEOUT')
      // The pool is healthy afterwards.
      assert.equal(await hash('md5', 'abc', { pool }), '900150983cd24fb0d6963f7d28e17f72')
    } finally {
      await pool.destroy()
    }
  })
})

describe('hashMany', () => {
  test('one digest per item, in order, equal to node:crypto', async () => {
    const items = Array.from({ length: 1000 }, (_, i) => crypto.randomBytes(i % 300))
    items.push('a string', 'ünïcødé ✓ 🎉', '', new Uint8Array([1, 2, 3]), new Float32Array([1.5, -2]))
    for (const alg of ['sha256', 'md5', 'sha512']) {
      const got = await hashMany(alg, items)
      assert.equal(got.length, items.length)
      items.forEach((item, i) =>
        assert.equal(got[i], crypto.createHash(alg).update(item).digest('hex'), `${alg} #${i}`),
      )
    }
    const b64 = await hashMany('sha1', items.slice(0, 5), { encoding: 'base64' })
    b64.forEach((d, i) => assert.equal(d, crypto.createHash('sha1').update(items[i]).digest('base64')))
    const bufs = await hashMany('xxh64', ['', ''], { encoding: 'buffer' })
    assert.deepEqual(
      bufs.map((b) => b.toString('hex')),
      ['ef46db3751d8e999', 'ef46db3751d8e999'],
    )
    assert.deepEqual(await hashMany('sha256', []), [])
  })

  // CPU time (clock ticks) of each thread of this process, by thread id.
  function threadTimes() {
    const times = new Map()
    for (const tid of fs.readdirSync('/proc/self/task')) {
      try {
        const comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim()
        const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
        // Fields after "(comm) ": state is the first, utime and stime the 12th and 13th.
        const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
        times.set(tid, { comm, ticks: Number(fields[11]) + Number(fields[12]) })
      } catch {
        // The thread exited meanwhile.
      }
    }
    return times
  }

  test('a batch never runs on more threads than the pool has', { skip: os.platform() !== 'linux' }, async () => {
    const pool = new Pool({ threads: 1 })
    try {
      const item = crypto.randomBytes(64 * 1024)
      const items = new Array(4000).fill(item) // 256 MiB to hash: hundreds of ms of CPU
      const before = threadTimes()
      const digests = await hashMany('sha512', items, { pool })
      const after = threadTimes()
      assert.equal(digests.length, items.length)
      assert.equal(digests[3999], crypto.createHash('sha512').update(item).digest('hex'))
      // Threads other than the JS thread that used CPU meanwhile: new ones (created for the
      // call) and corepool's own (a helper thread pool would be named after the thread that
      // started it).
      const busy = busyThreads(before, after)
      assert.ok(busy.length <= 1, `threads busy hashing: ${busy.join(', ')}`)
    } finally {
      await pool.close()
    }
  })

  // Threads of this process, other than the JS thread and the timer, that used at least 3 clock
  // ticks of CPU between two threadTimes() readings: new ones and corepool's own.
  function busyThreads(before, after) {
    return [...after]
      .filter(([tid, t]) => Number(tid) !== process.pid && t.comm !== 'corepool-timer')
      .filter(([tid, t]) => !before.has(tid) || t.comm.startsWith('corepool-'))
      .filter(([tid, t]) => t.ticks - (before.get(tid)?.ticks ?? 0) >= 3)
      .map(([tid, t]) => `${t.comm} (${tid})`)
  }

  test('a large batch of mixed sizes equals node:crypto, on one thread or two', async () => {
    // Empty items, small ones, and a few over 1 MiB (hashed in 1 MiB chunks) among them.
    const items = Array.from({ length: 20_000 }, (_, i) =>
      i % 7 === 0
        ? Buffer.alloc(0)
        : i % 4001 === 5
          ? crypto.randomBytes((1 << 20) + 1 + i)
          : crypto.randomBytes(i % 3000),
    )
    items[123] = 'a string item'
    for (const threads of [1, 2]) {
      const pool = new Pool({ threads })
      try {
        for (const alg of ['sha256', 'sha1', 'md5', 'sha512']) {
          const got = await hashMany(alg, items, { pool })
          assert.equal(got.length, items.length)
          items.forEach((item, i) =>
            assert.equal(got[i], crypto.createHash(alg).update(item).digest('hex'), `${alg} #${i}, ${threads} threads`),
          )
        }
      } finally {
        await pool.close()
      }
    }
  })

  test(
    'with nothing else to run, both threads of a 2-thread pool hash one batch',
    { skip: os.platform() !== 'linux' },
    async () => {
      const pool = new Pool({ threads: 2 })
      try {
        const item = crypto.randomBytes(64 * 1024)
        const items = new Array(4000).fill(item) // 256 MiB to hash: hundreds of ms of CPU
        const before = threadTimes()
        const digests = await hashMany('sha512', items, { pool })
        const after = threadTimes()
        assert.equal(digests[3999], crypto.createHash('sha512').update(item).digest('hex'))
        const busy = busyThreads(before, after)
        assert.equal(busy.length, 2, `threads busy hashing: ${busy.join(', ')}`)
        assert.ok(
          busy.every((t) => t.startsWith('corepool-')),
          `only the pool's threads hash: ${busy.join(', ')}`,
        )
      } finally {
        await pool.close()
      }
    },
  )

  // CPU ticks that the pool threads (corepool-N) used between two threadTimes() readings.
  function poolTicks(before, after) {
    let sum = 0
    for (const [tid, t] of after) {
      if (/^corepool-\d+$/.test(t.comm)) sum += t.ticks - (before.get(tid)?.ticks ?? 0)
    }
    return sum
  }

  test(
    'a task submitted during a batch runs while most of the batch is still to hash',
    { skip: os.platform() !== 'linux' },
    async () => {
      const pool = new Pool({ threads: 2 })
      try {
        const item = crypto.randomBytes(64 * 1024)
        const items = new Array(4000).fill(item) // 256 MiB: hundreds of ms of CPU on two threads
        // A loaded machine may delay the submission until the batch is nearly done, which
        // leaves nothing to tell the two behaviours apart: that run is made again.
        for (let attempt = 1; ; attempt++) {
          const start = threadTimes()
          const batch = hashMany('sha512', items, { pool })
          // The copy is done, the hashing is not: once both pool threads hash the batch, the
          // task takes the thread of the first one to finish its current group of items.
          let ended = false
          batch.finally(() => (ended = true)).catch(() => {})
          let submitted
          for (;;) {
            await new Promise((resolve) => setTimeout(resolve, 5))
            assert.ok(!ended, 'the batch ended before both pool threads hashed it')
            submitted = threadTimes()
            const busy = [...submitted].filter(
              ([tid, t]) => /^corepool-\d+$/.test(t.comm) && t.ticks - (start.get(tid)?.ticks ?? 0) >= 2,
            )
            if (busy.length === 2) break
          }
          const digest = await hash('sha256', 'urgent', { pool, priority: 1 })
          const mid = threadTimes()
          const digests = await batch
          const end = threadTimes()
          assert.equal(digest, crypto.createHash('sha256').update('urgent').digest('hex'))
          assert.equal(digests[3999], crypto.createHash('sha512').update(item).digest('hex'))
          const total = poolTicks(start, end)
          if (poolTicks(start, submitted) > total / 2 && attempt < 5) continue
          // Had it waited for the batch's helper to run out of items, the pool's threads would
          // have hashed the rest of the batch while it waited, and nothing after it.
          const during = poolTicks(submitted, mid)
          const after = poolTicks(mid, end)
          assert.ok(
            after > during,
            `CPU ticks of the batch: ${total}; while the task waited ${during}, after it ${after}`,
          )
          break
        }
      } finally {
        await pool.close()
      }
    },
  )

  test('an abort mid-batch rejects once with ERR_ABORTED; the pool stays usable', async () => {
    const pool = new Pool({ threads: 2 })
    try {
      const item = crypto.randomBytes(64 * 1024)
      const items = new Array(4000).fill(item)
      const controller = new AbortController()
      const batch = hashMany('sha512', items, { pool, signal: controller.signal })
      setTimeout(() => controller.abort(), 30)
      await rejectsWith(batch, 'ERR_ABORTED')
      const digests = await hashMany('md5', items.slice(0, 100), { pool })
      assert.equal(digests[99], crypto.createHash('md5').update(item).digest('hex'))
      const s = pool.stats
      // Each settled once (a cancelled job may still hold its thread for a moment: not `running`).
      assert.deepEqual([s.aborted, s.completed, s.failed, s.queued], [1, 1, 0, 0])
    } finally {
      await pool.close()
    }
  })

  test('a timeout mid-batch rejects once with ERR_TASK_TIMEOUT', async () => {
    const pool = new Pool({ threads: 2 })
    try {
      const item = crypto.randomBytes(64 * 1024)
      const items = new Array(4000).fill(item) // 256 MiB: far longer than the timeout
      await rejectsWith(hashMany('sha512', items, { pool, timeout: 20 }), 'ERR_TASK_TIMEOUT')
      const digests = await hashMany('sha256', items.slice(0, 10), { pool })
      assert.equal(digests[9], crypto.createHash('sha256').update(item).digest('hex'))
      const s = pool.stats
      assert.deepEqual([s.timedOut, s.completed, s.failed, s.queued], [1, 1, 0, 0])
    } finally {
      await pool.close()
    }
  })

  test('bad input', async () => {
    await rejectsWith(hashMany('sha256', 'abc'), 'ERR_INVALID_ARG')
    await rejectsWith(hashMany('sha256', ['ok', 5]), 'ERR_INVALID_ARG')
    await rejectsWith(hashMany('whirlpool', ['ok']), 'ERR_INVALID_ARG')
  })
})

describe('streaming', () => {
  test('createHasher: chunks are hashed in call order', async () => {
    const chunks = Array.from({ length: 50 }, () => crypto.randomBytes(70_000))
    for (const alg of ['sha256', 'blake3', 'xxh3-128']) {
      const h = createHasher(alg)
      // Not awaited on purpose: ordering must not depend on the caller waiting.
      for (const c of chunks) h.update(c)
      const got = await h.digest()
      assert.equal(got, await hash(alg, Buffer.concat(chunks)), alg)
    }
    const h = createHasher('md5')
    await h.update('ab')
    await h.update(Buffer.from('c'))
    assert.deepEqual(await h.digest('buffer'), Buffer.from('900150983cd24fb0d6963f7d28e17f72', 'hex'))
    await rejectsWith(h.update('more'), 'ERR_INVALID_STATE')
    await rejectsWith(h.digest(), 'ERR_INVALID_STATE')
    assert.throws(() => createHasher('crc32'), { code: 'ERR_INVALID_ARG' })
    await rejectsWith(createHasher('md5').update(17), 'ERR_INVALID_ARG')
  })

  test('a cancelled update makes digest() reject', async () => {
    const controller = new AbortController()
    const h = createHasher('sha512', { signal: controller.signal })
    const p = h.update(Buffer.alloc(128 << 20))
    controller.abort()
    await rejectsWith(p, 'ERR_ABORTED')
    await rejectsWith(h.digest(), 'ERR_ABORTED')
  })

  test('hashFile reads the file natively', async () => {
    const file = path.join(os.tmpdir(), `corepool-hash-${process.pid}.bin`)
    const data = crypto.randomBytes(3 * (1 << 20) + 5)
    fs.writeFileSync(file, data)
    try {
      assert.equal(await hashFile('sha256', file), crypto.createHash('sha256').update(data).digest('hex'))
      assert.equal(await hashFile('blake3', new URL(`file://${file}`)), await hash('blake3', data))
      await rejectsWith(hashFile('sha256', path.join(os.tmpdir(), 'corepool-does-not-exist')), 'ERR_INVALID_ARG')
      await rejectsWith(hashFile('sha256', 42), 'ERR_INVALID_ARG')
      await rejectsWith(hashFile('sha256', new URL('https://example.com/x')), 'ERR_INVALID_ARG')
    } finally {
      fs.rmSync(file, { force: true })
    }
  })
})

describe('compress / decompress', () => {
  const { compress, decompress } = corepool
  const text = Buffer.from(
    Array.from({ length: 20_000 }, (_, i) => `line ${i}: ${'lorem ipsum '.repeat(i % 7)}\n`).join(''),
  )
  const nodeZstd = typeof zlib.zstdCompress === 'function'
  const node = {
    gzip: [promisify(zlib.gzip), promisify(zlib.gunzip)],
    deflate: [promisify(zlib.deflate), promisify(zlib.inflate)],
    'deflate-raw': [promisify(zlib.deflateRaw), promisify(zlib.inflateRaw)],
    brotli: [promisify(zlib.brotliCompress), promisify(zlib.brotliDecompress)],
    ...(nodeZstd ? { zstd: [promisify(zlib.zstdCompress), promisify(zlib.zstdDecompress)] } : {}),
  }

  test('round trip in every format, from Buffer, Uint8Array and string', async () => {
    for (const format of ['gzip', 'deflate', 'deflate-raw', 'brotli', 'zstd']) {
      const packed = await compress(format, text, { level: format === 'brotli' ? 5 : undefined })
      assert.ok(Buffer.isBuffer(packed) && packed.length < text.length, format)
      assert.deepEqual(await decompress(format, packed), text, format)
      assert.deepEqual(await decompress(format, new Uint8Array(packed)), text, format)
      const fromString = await compress(format, 'héllo wörld')
      assert.equal((await decompress(format, fromString)).toString(), 'héllo wörld')
    }
  })

  test('node:zlib decodes our output and we decode node:zlib output (zstd where node has it)', async () => {
    for (const [format, [nodeCompress, nodeDecompress]] of Object.entries(node)) {
      for (const level of format === 'brotli' ? [1, 11] : format === 'zstd' ? [1, 19] : [0, 1, 6, 9]) {
        const ours = await compress(format, text, { level })
        assert.deepEqual(await nodeDecompress(ours), text, `${format} ${level}: node decodes ours`)
      }
      const theirs = await nodeCompress(text)
      assert.deepEqual(await decompress(format, theirs), text, `${format}: we decode node's`)
    }
    // Concatenated gzip members decode as one stream, as with zlib.gunzip.
    const two = Buffer.concat([zlib.gzipSync('ab'), zlib.gzipSync('cd')])
    assert.equal((await decompress('gzip', two)).toString(), 'abcd')
  })

  test('zstd interop with node:zlib', { skip: !nodeZstd && 'this Node has no zlib.zstdCompress' }, async () => {
    assert.deepEqual(zlib.zstdDecompressSync(await compress('zstd', text)), text)
    assert.deepEqual(await decompress('zstd', zlib.zstdCompressSync(text)), text)
  })

  test('corrupt and truncated input reject with ERR_CORRUPT_INPUT', async () => {
    // Fixed noise: random bytes often start with a short valid brotli or deflate-raw stream, so
    // this also checks that bytes after the end of a stream are refused.
    const noise = Buffer.concat(
      Array.from({ length: 16 }, (_, i) => crypto.createHash('sha512').update(`${i}`).digest()),
    )
    for (const format of ['gzip', 'deflate', 'deflate-raw', 'brotli', 'zstd']) {
      const packed = await compress(format, text, { level: 1 })
      await rejectsWith(decompress(format, packed.subarray(0, packed.length >> 1)), 'ERR_CORRUPT_INPUT')
      await rejectsWith(decompress(format, noise), 'ERR_CORRUPT_INPUT')
      await rejectsWith(decompress(format, Buffer.concat([packed, Buffer.from('xyz')])), 'ERR_CORRUPT_INPUT')
      const flipped = Buffer.from(packed)
      for (let i = 20; i < flipped.length; i += 50) flipped[i] ^= 0xff
      await rejectsWith(decompress(format, flipped), 'ERR_CORRUPT_INPUT')
    }
    // A gzip member with a wrong CRC.
    const gz = zlib.gzipSync(text)
    gz[gz.length - 6] ^= 1
    await rejectsWith(decompress('gzip', gz), 'ERR_CORRUPT_INPUT')
  })

  test('a decompression bomb stops at maxOutputLength with ERR_OUTPUT_TOO_LARGE', async () => {
    const zeros = Buffer.alloc(64 << 20)
    for (const format of ['gzip', 'deflate', 'deflate-raw', 'brotli', 'zstd']) {
      const bomb = await compress(format, zeros, { level: 1 })
      assert.ok(bomb.length < 1 << 20, `${format} bomb is small (${bomb.length})`)
      await rejectsWith(decompress(format, bomb, { maxOutputLength: 1 << 20 }), 'ERR_OUTPUT_TOO_LARGE')
      // The default (256 MiB) lets 64 MiB through; exactly the size is allowed.
      assert.equal((await decompress(format, bomb)).length, 64 << 20)
      assert.equal((await decompress(format, bomb, { maxOutputLength: 64 << 20 })).length, 64 << 20)
    }
    assert.equal(corepool.DEFAULT_MAX_OUTPUT_LENGTH, 256 * 1024 * 1024)
  })

  test('a zstd frame declaring a window larger than maxOutputLength allows is refused before it is allocated', async () => {
    // Magic, no content size, a 128 MiB window (exponent 17), one last raw block holding "a".
    const frame = Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 17 << 3, 0x09, 0x00, 0x00, 0x61])
    await assert.rejects(decompress('zstd', frame, { maxOutputLength: 1 << 20 }), {
      code: 'ERR_OUTPUT_TOO_LARGE',
      message: /window/,
    })
    // With room for a 128 MiB output, the same frame decodes.
    assert.equal((await decompress('zstd', frame, { maxOutputLength: 128 << 20 })).toString(), 'a')
  })

  test('bad arguments reject with ERR_INVALID_ARG', async () => {
    await rejectsWith(compress('lz4', 'x'), 'ERR_INVALID_ARG')
    await rejectsWith(compress('gzip', 123), 'ERR_INVALID_ARG')
    await rejectsWith(compress('gzip', 'x', { level: 10 }), 'ERR_INVALID_ARG')
    await rejectsWith(compress('gzip', 'x', { level: 1.5 }), 'ERR_INVALID_ARG')
    await rejectsWith(compress('brotli', 'x', { level: 12 }), 'ERR_INVALID_ARG')
    await rejectsWith(compress('zstd', 'x', { level: 23 }), 'ERR_INVALID_ARG')
    await rejectsWith(compress('gzip', 'x', { level: '6' }), 'ERR_INVALID_ARG')
    await rejectsWith(decompress('gzip', {}), 'ERR_INVALID_ARG')
    await rejectsWith(decompress('rar', Buffer.alloc(1)), 'ERR_INVALID_ARG')
    await rejectsWith(decompress('gzip', zlib.gzipSync('x'), { maxOutputLength: 0 }), 'ERR_INVALID_ARG')
    await rejectsWith(decompress('gzip', zlib.gzipSync('x'), { maxOutputLength: 1.5 }), 'ERR_INVALID_ARG')
    await rejectsWith(decompress('gzip', zlib.gzipSync('x'), { maxOutputLength: -1 }), 'ERR_INVALID_ARG')
    assert.equal(
      (await decompress('gzip', zlib.gzipSync('x'), { maxOutputLength: undefined, level: undefined })).toString(),
      'x',
    )
  })

  test('a long compress is cancelled by signal and by timeout; the pool stays usable', async () => {
    const pool = new Pool({ threads: 1 })
    try {
      const big = crypto.randomBytes(32 << 20)
      const controller = new AbortController()
      const p = compress('brotli', big, { pool, signal: controller.signal })
      setTimeout(() => controller.abort(new Error('enough')), 10)
      await rejectsWith(p, 'ERR_ABORTED')
      await rejectsWith(compress('gzip', big, { pool, level: 9, timeout: 10 }), 'ERR_TASK_TIMEOUT')
      const bomb = await compress('zstd', Buffer.alloc(256 << 20), { pool })
      await rejectsWith(decompress('zstd', bomb, { pool, timeout: 5, maxOutputLength: 2 ** 31 }), 'ERR_TASK_TIMEOUT')
      assert.equal((await decompress('gzip', await compress('gzip', 'ok', { pool }), { pool })).toString(), 'ok')
    } finally {
      await pool.destroy()
    }
  })
})

describe('passwordHash / passwordVerify', () => {
  const { passwordHash, passwordVerify } = corepool
  const nodeRs = require('@node-rs/argon2')

  test('argon2id PHC string with OWASP defaults; verify true/false', async () => {
    const phc = await passwordHash('correct horse battery staple')
    assert.match(phc, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$/)
    assert.equal(await passwordVerify(phc, 'correct horse battery staple'), true)
    assert.equal(await passwordVerify(phc, 'correct horse battery stapler'), false)
    assert.notEqual(await passwordHash('correct horse battery staple'), phc, 'fresh salt every time')
    const custom = await passwordHash(Buffer.from('pw'), {
      memoryCost: 1024,
      timeCost: 1,
      parallelism: 2,
      outputLength: 16,
    })
    assert.match(custom, /^\$argon2id\$v=19\$m=1024,t=1,p=2\$/)
    assert.equal(await passwordVerify(custom, new Uint8Array(Buffer.from('pw'))), true)
  })

  test('reference implementation vector', async () => {
    const phc = '$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4'
    assert.equal(await passwordVerify(phc, 'password'), true)
    assert.equal(await passwordVerify(phc, 'Password'), false)
  })

  test('interoperates with @node-rs/argon2 both ways', async () => {
    const ours = await passwordHash('s3cret ✓')
    assert.equal(await nodeRs.verify(ours, 's3cret ✓'), true)
    assert.equal(await nodeRs.verify(ours, 's3cret'), false)
    for (const algorithm of [nodeRs.Algorithm.Argon2id, nodeRs.Algorithm.Argon2i, nodeRs.Algorithm.Argon2d]) {
      const theirs = await nodeRs.hash('s3cret ✓', { algorithm, memoryCost: 4096, timeCost: 3, parallelism: 2 })
      assert.equal(await passwordVerify(theirs, 's3cret ✓'), true, theirs)
      assert.equal(await passwordVerify(theirs, 's3cret'), false, theirs)
    }
  })

  test('bad input rejects with ERR_INVALID_ARG', async () => {
    await rejectsWith(passwordHash(undefined), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash(12345), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { memoryCost: 4 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { memoryCost: 1.5 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { timeCost: 0 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { parallelism: 0 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { outputLength: 2 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordHash('pw', { memoryCost: 2 ** 40 }), 'ERR_INVALID_ARG')
    await rejectsWith(passwordVerify(42, 'pw'), 'ERR_INVALID_ARG')
    await rejectsWith(passwordVerify('not a hash', 'pw'), 'ERR_INVALID_ARG')
    await rejectsWith(passwordVerify('$2b$10$abcdefghijklmnopqrstuv', 'pw'), 'ERR_INVALID_ARG')
    await rejectsWith(
      passwordVerify(
        '$argon2id$v=19$m=4294967295,t=1,p=1$c29tZXNhbHQ$nf65EOgLrQMR/uIPnA4rEsF5h7TKyQwu9U1bMCHGi/4',
        'pw',
      ),
      'ERR_INVALID_ARG',
    )
    await rejectsWith(passwordVerify('$argon2id$v=19$m=256,t=2,p=1$c29tZXNhbHQ$nf65EOgLrQMR', {}), 'ERR_INVALID_ARG')
  })
})

describe('numeric', () => {
  const { countPrimes, sortFloat64, statsFloat64, sumFloat64, meanFloat64, minFloat64, maxFloat64 } = corepool

  test('countPrimes counts primes <= limit', async () => {
    const known = [
      [0, 0],
      [1, 0],
      [2, 1],
      [10, 4],
      [100, 25],
      [7919, 1000],
      [1_000_000, 78_498],
    ]
    for (const [limit, want] of known) assert.equal(await countPrimes(limit), want, `pi(${limit})`)
    for (const bad of [-1, 1.5, NaN, Infinity, 2 ** 53, '10', undefined, 10n]) {
      await rejectsWith(countPrimes(bad), 'ERR_INVALID_ARG')
    }
  })

  test('countPrimes of a huge limit is cancellable', async () => {
    const controller = new AbortController()
    const p = countPrimes(1e13, { signal: controller.signal })
    setTimeout(() => controller.abort(), 20)
    await rejectsWith(p, 'ERR_ABORTED')
    await rejectsWith(countPrimes(1e13, { timeout: 20 }), 'ERR_TASK_TIMEOUT')
  })

  test('sortFloat64 returns a sorted copy in typed-array order', async () => {
    const input = new Float64Array([3, NaN, -0, 0, -1.5, Infinity, -Infinity, 2, 1e-300])
    const copy = input.slice()
    const sorted = await sortFloat64(input)
    assert.ok(sorted instanceof Float64Array)
    assert.notEqual(sorted.buffer, input.buffer)
    assert.deepEqual(input, copy, 'input unchanged')
    assert.deepEqual(sorted, copy.slice().sort())
    assert.ok(Object.is(sorted[2], -0) && Object.is(sorted[3], 0))
    const big = Float64Array.from({ length: 3_000_000 }, () => Math.random() * 2e6 - 1e6)
    assert.deepEqual(await sortFloat64(big), big.slice().sort())
    assert.deepEqual(await sortFloat64(new Float64Array(0)), new Float64Array(0))
    // A view with an offset sorts only its own elements.
    const view = new Float64Array(new Float64Array([9, 3, 2, 1, 0]).buffer, 8, 3)
    assert.deepEqual(await sortFloat64(view), new Float64Array([1, 2, 3]))
    await rejectsWith(sortFloat64([3, 2, 1]), 'ERR_INVALID_ARG')
    await rejectsWith(sortFloat64(new Float32Array(3)), 'ERR_INVALID_ARG')
  })

  test('statsFloat64 and sum/mean/min/max', async () => {
    const v = new Float64Array([1, 2, 3, 4])
    assert.deepEqual(await statsFloat64(v), { count: 4, sum: 10, mean: 2.5, min: 1, max: 4 })
    assert.equal(await sumFloat64(new Float64Array([1e100, 1, -1e100])), 1)
    assert.equal(await meanFloat64(v), 2.5)
    assert.equal(await minFloat64(v), 1)
    assert.equal(await maxFloat64(v), 4)
    assert.deepEqual(await statsFloat64(new Float64Array(0)), {
      count: 0,
      sum: 0,
      mean: NaN,
      min: Infinity,
      max: -Infinity,
    })
    assert.ok(Number.isNaN(await minFloat64(new Float64Array([1, NaN]))))
    assert.ok(Object.is(await minFloat64(new Float64Array([0, -0])), -0))
    const r = Float64Array.from({ length: 100_000 }, () => Math.random())
    const s = await statsFloat64(r)
    assert.ok(Math.abs(s.sum - r.reduce((a, b) => a + b, 0)) < 1e-6)
    assert.equal(s.min, Math.min(...r.subarray(0, 50_000), ...r.subarray(50_000)))
    await rejectsWith(statsFloat64('1,2,3'), 'ERR_INVALID_ARG')
    await rejectsWith(sumFloat64(null), 'ERR_INVALID_ARG')
  })
})

describe('resize', () => {
  const { resize } = corepool
  const sharp = require('sharp')

  // A 2000×1500 test picture (gradients + noise), made with sharp from raw pixels.
  async function picture(format, width = 2000, height = 1500, channels = 3) {
    const raw = Buffer.alloc(width * height * channels)
    for (let y = 0, i = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        raw[i++] = (x * 255) / width
        raw[i++] = (y * 255) / height
        raw[i++] = (x ^ y) & 0xff
        if (channels === 4) raw[i++] = x < width / 2 ? 255 : 128
      }
    }
    return sharp(raw, { raw: { width, height, channels } }).toFormat(format).toBuffer()
  }

  test('JPEG/PNG/WebP in, every fit, output dimensions match and decode', async () => {
    const jpeg = await picture('jpeg')
    const cases = [
      [{ width: 200 }, 200, 150],
      [{ height: 300 }, 400, 300],
      [{ width: 200, height: 200 }, 200, 200], // cover (default)
      [{ width: 200, height: 200, fit: 'contain' }, 200, 200],
      [{ width: 200, height: 200, fit: 'fill' }, 200, 200],
      [{ width: 200, height: 200, fit: 'inside' }, 200, 150],
      [{ width: 200, height: 200, fit: 'outside' }, 267, 200],
    ]
    for (const [options, w, h] of cases) {
      const out = await resize(jpeg, options)
      assert.equal(out.format, 'jpeg')
      assert.deepEqual([out.width, out.height], [w, h], JSON.stringify(options))
      const meta = await sharp(out.data).metadata()
      assert.deepEqual([meta.format, meta.width, meta.height], ['jpeg', w, h], JSON.stringify(options))
    }
    for (const format of ['png', 'webp', 'jpeg']) {
      const out = await resize(jpeg, { width: 120, height: 90, format })
      assert.ok(Buffer.isBuffer(out.data))
      const meta = await sharp(out.data).metadata()
      assert.deepEqual([meta.format, meta.width, meta.height], [format, 120, 90])
    }
    const png = await picture('png', 300, 200, 4)
    const fromPng = await resize(png, { width: 150 })
    assert.equal(fromPng.format, 'png')
    const meta = await sharp(fromPng.data).metadata()
    assert.deepEqual([meta.width, meta.height, meta.hasAlpha], [150, 100, true])
    const webp = await picture('webp', 300, 200)
    const fromWebp = await resize(new Uint8Array(webp), { width: 30, format: 'jpg', quality: 50 })
    assert.deepEqual([fromWebp.format, fromWebp.width, fromWebp.height], ['jpeg', 30, 20])
  })

  test('the resized picture still looks like the original (mean colour)', async () => {
    const jpeg = await picture('jpeg', 400, 300)
    const out = await resize(jpeg, { width: 40, format: 'png' })
    const a = await sharp(jpeg).stats()
    const b = await sharp(out.data).stats()
    for (let c = 0; c < 3; c++) assert.ok(Math.abs(a.channels[c].mean - b.channels[c].mean) < 8, `channel ${c}`)
  })

  test('bad, truncated and oversized images', async () => {
    const jpeg = await picture('jpeg', 400, 300)
    await rejectsWith(resize(Buffer.from('definitely not an image')), 'ERR_CORRUPT_INPUT')
    await rejectsWith(resize(jpeg.subarray(0, jpeg.length >> 1), { width: 10 }), 'ERR_CORRUPT_INPUT')
    const png = await picture('png', 300, 200)
    await rejectsWith(resize(png.subarray(0, png.length - 100), { width: 10 }), 'ERR_CORRUPT_INPUT')
    const webp = await picture('webp', 300, 200)
    await rejectsWith(resize(webp.subarray(0, webp.length >> 1), { width: 10 }), 'ERR_CORRUPT_INPUT')
    const gif = await sharp({ create: { width: 4, height: 4, channels: 3, background: 'red' } })
      .gif()
      .toBuffer()
    await rejectsWith(resize(gif, { width: 2 }), 'ERR_CORRUPT_INPUT')
    await rejectsWith(resize(jpeg, { width: 10, maxPixels: 1000 }), 'ERR_OUTPUT_TOO_LARGE')
    await rejectsWith(
      resize(jpeg, { width: 4000, height: 4000, fit: 'fill', maxPixels: 1_000_000 }),
      'ERR_OUTPUT_TOO_LARGE',
    )
  })

  // A PNG whose header declares `width`×`height` pixels of `depth` bits (RGBA), with one tiny
  // IDAT chunk: a few hundred bytes that claim gigabytes.
  function pngClaiming(width, height, depth) {
    const crc32 = (bytes) => {
      let crc = ~0
      for (const b of bytes) {
        crc ^= b
        for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0xedb88320 : crc >>> 1
      }
      return ~crc >>> 0
    }
    const chunk = (type, data) => {
      const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
      const head = Buffer.alloc(4)
      head.writeUInt32BE(data.length)
      const tail = Buffer.alloc(4)
      tail.writeUInt32BE(crc32(body))
      return Buffer.concat([head, body, tail])
    }
    const ihdr = Buffer.alloc(13)
    ihdr.writeUInt32BE(width, 0)
    ihdr.writeUInt32BE(height, 4)
    ihdr.set([depth, 6, 0, 0, 0], 8)
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk('IHDR', ihdr),
      chunk('IDAT', zlib.deflateSync(Buffer.alloc(16))),
      chunk('IEND', Buffer.alloc(0)),
    ])
  }

  test('decoding memory is bounded by bytes: 4 per pixel of maxPixels', async () => {
    // 256 M pixels, under the default maxPixels, but 16-bit RGBA: 2 GiB to decode.
    const png16 = pngClaiming(16_000, 16_000, 16)
    assert.ok(png16.length < 200)
    await assert.rejects(resize(png16, { width: 100 }), { code: 'ERR_OUTPUT_TOO_LARGE', message: /bytes/ })
    // 8-bit RGBA of that size fits the budget (1 GiB), so it fails as the truncated file it is.
    await rejectsWith(resize(pngClaiming(16_000, 16_000, 8), { width: 100 }), 'ERR_CORRUPT_INPUT')
  })

  test('bad options reject with ERR_INVALID_ARG', async () => {
    const jpeg = await picture('jpeg', 40, 30)
    await rejectsWith(resize('a string'), 'ERR_INVALID_ARG')
    await rejectsWith(resize(null), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { width: 0 }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { width: 1.5 }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { height: 70000 }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { fit: 'stretch' }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { format: 'gif' }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { quality: 0 }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { quality: 101 }), 'ERR_INVALID_ARG')
    await rejectsWith(resize(jpeg, { maxPixels: 0 }), 'ERR_INVALID_ARG')
    assert.equal(corepool.DEFAULT_MAX_PIXELS, 0x3fff * 0x3fff)
    const same = await resize(jpeg, { width: undefined, height: undefined, fit: undefined, format: undefined })
    assert.deepEqual([same.width, same.height, same.format], [40, 30, 'jpeg'])
  })
})
