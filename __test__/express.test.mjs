import { test, before, after } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import path from 'node:path'
import http from 'node:http'
import os from 'node:os'

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)))
let server
let base

function startServer(env = {}, args = []) {
  const child = spawn(process.execPath, ['examples/express/server.js', ...args], {
    cwd: root,
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      COREPOOL_EXAMPLE_TRANSCODER: path.join(root, '__test__', 'fixtures', 'fake-ffmpeg.mjs'),
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.setEncoding('utf8')
  child.stderr.setEncoding('utf8')
  child.stderr.on('data', (d) => (out += d))
  return new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve({ child, base: m[1], output: () => out })
    })
    child.once('exit', (code) => reject(new Error(`server exited early (${code}): ${out}`)))
  })
}

async function get(url, init) {
  const res = await fetch(base + url, init)
  const body = res.headers.get('content-type')?.includes('json')
    ? await res.json()
    : Buffer.from(await res.arrayBuffer())
  return { status: res.status, body, type: res.headers.get('content-type') }
}

before(async () => {
  server = await startServer()
  base = server.base
})

after(() => {
  if (server.child.exitCode === null) server.child.kill('SIGKILL')
})

const jsSqrtSum = (n) => {
  let s = 0
  for (let i = 0; i < n; i++) s += Math.sqrt(i)
  return s
}

test('GET /health', async () => {
  const r = await get('/health')
  assert.equal(r.status, 200)
  assert.equal(r.body.ok, true)
})

test('GET /compute and /compute-js compute the seeds loop', async () => {
  for (const route of ['/compute', '/compute-js']) {
    const r = await get(`${route}?n=12345`)
    assert.equal(r.status, 200)
    assert.ok(Math.abs(r.body.result - jsSqrtSum(12345)) <= jsSqrtSum(12345) * 1e-9)
  }
})

test('bad requests get 4xx JSON with the corepool error code', async () => {
  for (const q of ['n=-1', 'n=abc', 'n=1.5', 'n=']) {
    for (const route of ['/compute', '/compute-js']) {
      const r = await get(`${route}?${q}`)
      assert.equal(r.status, 400, `${route}?${q}`)
      assert.equal(r.body.error, 'ERR_INVALID_ARG')
    }
  }
  const missing = await get('/nope')
  assert.equal(missing.status, 404)
})

test('POST /hash returns the sha256 of the body', async () => {
  const { createHash } = await import('node:crypto')
  const body = Buffer.alloc(300_000, 7)
  const r = await get('/hash', { method: 'POST', body, headers: { 'content-type': 'application/octet-stream' } })
  assert.equal(r.status, 200)
  assert.equal(r.body.digest, createHash('sha256').update(body).digest('hex'))
  assert.equal(r.body.bytes, body.length)
})

test('POST /thumbnail resizes an image natively', async () => {
  const { default: sharp } = await import('sharp')
  const jpeg = await sharp({ create: { width: 800, height: 600, channels: 3, background: '#3a7' } })
    .jpeg()
    .toBuffer()
  const r = await get('/thumbnail?width=200', { method: 'POST', body: jpeg })
  assert.equal(r.status, 200)
  assert.equal(r.type, 'image/jpeg')
  const meta = await sharp(r.body).metadata()
  assert.deepEqual([meta.width, meta.height, meta.format], [200, 150, 'jpeg'])
  const png = await get('/thumbnail?width=50&height=50&format=png', { method: 'POST', body: jpeg })
  assert.equal(png.type, 'image/png')
  const bad = await get('/thumbnail', { method: 'POST', body: Buffer.from('not an image') })
  assert.equal(bad.status, 400)
  assert.equal(bad.body.error, 'ERR_CORRUPT_INPUT')
})

test('GET /report.pdf returns a PDF made in a JS task', async () => {
  const r = await get('/report.pdf?title=Hello')
  assert.equal(r.status, 200)
  assert.equal(r.type, 'application/pdf')
  assert.equal(r.body.subarray(0, 5).toString(), '%PDF-')
})

test('/health answers while /compute saturates the pool', async () => {
  let computesDone = 0
  const computes = Array.from({ length: 8 }, () =>
    get('/compute?n=400000000').then((r) => {
      assert.equal(r.status, 200)
      computesDone++
    }),
  )
  await new Promise((r) => setTimeout(r, 100))
  for (let i = 0; i < 5; i++) {
    const r = await get('/health')
    assert.equal(r.status, 200)
  }
  assert.ok(computesDone < 8, 'health answered before the compute burst finished')
  await Promise.all(computes)
})

test('a client that goes away cancels its task', async () => {
  await new Promise((resolve) => {
    const req = http.get(`${base}/compute?n=1000000000000`)
    req.on('error', () => resolve())
    setTimeout(() => {
      req.destroy()
      resolve()
    }, 200)
  })
  for (let i = 0; i < 200; i++) {
    const m = (await get('/metrics')).body.toString()
    if (/^corepool_tasks_cancelled_total 1$/m.test(m)) {
      // The request is counted although no response was sent.
      assert.match(m, /^http_requests_disconnected_total\{route="\/compute"\} 1$/m)
      assert.match(m, /^http_request_duration_seconds_count\{route="\/compute"\} [1-9]\d*$/m)
      return
    }
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.fail('the task of the closed request was not cancelled')
})

test('empty bodies and other client errors: 4xx with a corepool code and a helpful message', async () => {
  const post = (url, body) => get(url, { method: 'POST', ...(body === undefined ? {} : { body }) })
  for (const [url, hint] of [
    ['/hash', /request body is empty: send the bytes to hash/],
    ['/thumbnail', /request body is empty: send an image/],
    ['/jobs/transcode', /send the media to transcode as the request body/],
  ]) {
    for (const body of [undefined, Buffer.alloc(0)]) {
      const r = await post(url, body)
      assert.equal(r.status, 400, url)
      assert.equal(r.body.error, 'ERR_INVALID_ARG', url)
      assert.match(r.body.message, hint)
    }
  }
  // A body in an encoding the server does not read is the client's error too (415), labelled
  // with a corepool code rather than ERR_INTERNAL.
  const badEncoding = await get('/hash', { method: 'POST', body: 'abc', headers: { 'content-encoding': 'bogus' } })
  assert.equal(badEncoding.status, 415)
  assert.equal(badEncoding.body.error, 'ERR_INVALID_ARG')
})

test("POST /hash and /thumbnail run on the app's pool (its totals count them)", async () => {
  const completed = async () =>
    Number(/^corepool_tasks_completed_total (\d+)$/m.exec((await get('/metrics')).body.toString())[1])
  const before = await completed()
  assert.equal((await get('/hash', { method: 'POST', body: 'abc' })).status, 200)
  assert.equal(await completed(), before + 1)
  assert.match(
    (await get('/metrics')).body.toString(),
    /^corepool_task_duration_seconds_count\{pool="native"\} [1-9]\d*$/m,
  )
})

test('GET /metrics is valid Prometheus text', async () => {
  const r = await get('/metrics')
  assert.equal(r.status, 200)
  assert.match(r.type, /^text\/plain/)
  const text = r.body.toString()
  const typed = new Set()
  for (const line of text.trimEnd().split('\n')) {
    if (line.startsWith('# HELP ')) continue
    const t = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge|histogram|summary|untyped)$/.exec(line)
    if (t) {
      typed.add(t[1])
      continue
    }
    const m =
      /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*"(?:,[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*")*\})? (-?[0-9.e+-]+|NaN|[+-]Inf)$/.exec(
        line,
      )
    assert.ok(m, `not a sample line: ${line}`)
    assert.ok(
      [...typed].some((name) => m[1] === name || m[1].startsWith(name + '_')),
      `no TYPE for ${m[1]}`,
    )
  }
  assert.match(text, /^http_requests_total\{route="\/health"\} [1-9]\d*$/m)
  assert.match(text, /^http_request_errors_total\{route="\/compute"\} [1-9]\d*$/m)
  assert.match(text, /^corepool_tasks_completed_total [1-9]\d*$/m)
})

test('pool gauges: measured utilization and run-time p99 over the last 10 s, as fractions', async () => {
  const s = await startServer()
  try {
    const gauge = async (name) => {
      const text = await (await fetch(`${s.base}/metrics`)).text()
      const m = new RegExp(`^${name}\\{pool="native",pid="\\d+"\\} (\\S+)$`, 'm').exec(text)
      assert.ok(m, `${name} in ${text}`)
      return Number(m[1])
    }
    assert.equal(await gauge('corepool_pool_utilization'), 0)
    await Promise.all(Array.from({ length: 4 }, () => fetch(`${s.base}/compute?n=20000000`).then((r) => r.json())))
    await new Promise((r) => setTimeout(r, 600)) // two sampler periods
    const util = await gauge('corepool_pool_utilization')
    const p99 = await gauge('corepool_pool_run_time_p99_seconds')
    assert.ok(util > 0 && util <= 1, `utilization ${util} is a share of the threads' time`)
    assert.ok(!Number.isInteger(util), `utilization ${util} is not rounded to an integer unit`)
    assert.ok(p99 > 0 && p99 < 60, `run-time p99 ${p99} s`)
    // Idle for longer than the window: both fall back to 0 (a lifetime measure would not).
    await new Promise((r) => setTimeout(r, 11_500))
    assert.equal(await gauge('corepool_pool_utilization'), 0)
    assert.equal(await gauge('corepool_pool_run_time_p99_seconds'), 0)
  } finally {
    s.child.kill('SIGKILL')
  }
})

test('SIGTERM finishes in-flight requests and exits cleanly', async () => {
  const s = await startServer()
  const inflight = fetch(`${s.base}/compute?n=300000000`).then((r) => r.json())
  await new Promise((r) => setTimeout(r, 100))
  const exited = new Promise((resolve) => s.child.once('exit', (code, signal) => resolve({ code, signal })))
  s.child.kill('SIGTERM')
  const body = await inflight
  assert.equal(body.n, 300000000)
  assert.deepEqual(await exited, { code: 0, signal: null })
  assert.match(s.output(), /stopped/)
})

test('POST /jobs/transcode runs a supervised transcoder child; GET /jobs/:id shows progress', async () => {
  const media = Buffer.from('pretend this is a video')
  const start = await get('/jobs/transcode?format=mp4', { method: 'POST', body: media })
  assert.equal(start.status, 202)
  assert.equal(start.body.state, 'running')
  let job
  for (let i = 0; i < 400; i++) {
    job = (await get(`/jobs/${start.body.id}`)).body
    if (job.state !== 'running') break
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.equal(job.state, 'done', JSON.stringify(job))
  assert.equal(job.progress.progress, 'end')
  assert.equal(job.progress.out_time_ms, '3000000')
  assert.equal(job.exit.code, 0)
  const out = await get(`/jobs/${start.body.id}/output`)
  assert.equal(out.status, 200)
  assert.deepEqual(out.body, media)

  const bad = await get('/jobs/transcode', { method: 'POST', body: Buffer.from('corrupt input') })
  for (let i = 0; i < 400; i++) {
    job = (await get(`/jobs/${bad.body.id}`)).body
    if (job.state !== 'running') break
    await new Promise((r) => setTimeout(r, 25))
  }
  assert.equal(job.state, 'failed')
  assert.equal(job.error.code, 'ERR_CHILD_EXIT')
  assert.match(job.error.message, /Invalid data/)
  assert.ok(!job.error.message.includes(os.tmpdir()), `no server path in ${job.error.message}`)
  assert.equal((await get('/jobs/nope')).status, 404)
  assert.equal((await get('/jobs/transcode?format=../x', { method: 'POST', body: media })).status, 400)
})

test('--workers 2: processes share the port and the counters; a killed worker is restarted', async () => {
  const s = await startServer({}, ['--workers', '2'])
  const url = s.base
  const health = async () => (await fetch(`${url}/health`, { headers: { connection: 'close' } })).json()
  const pids = new Set()
  for (let i = 0; i < 40; i++) pids.add((await health()).pid)
  assert.ok(pids.size >= 1)
  // Any worker reports the totals of all of them, and every worker's gauges (labelled).
  const scrape = async () => (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text()
  const metrics = await scrape()
  const total = Number(/^http_requests_total\{route="\/health"\} (\d+)$/m.exec(metrics)[1])
  assert.equal(total, 40)
  assert.equal(
    Number(/^http_request_duration_seconds_count\{route="\/health"\} (\d+)$/m.exec(metrics)[1]),
    40,
    'the latency histogram counts every request of every worker',
  )
  assert.match(metrics, /^http_request_duration_seconds_bucket\{route="\/health",le="\+Inf"\} 40$/m)
  const gaugeLabels = (text) =>
    [...text.matchAll(/^corepool_pool_queued\{pool="native",(worker="\d+")\} \d+$/gm)].map((m) => m[1]).sort()
  assert.deepEqual(gaugeLabels(metrics), ['worker="0"', 'worker="1"'])
  // Whichever worker answers, the same series.
  for (let i = 0; i < 6; i++) assert.deepEqual(gaugeLabels(await scrape()), ['worker="0"', 'worker="1"'])
  // Kill one worker: the supervisor starts another; the service keeps answering.
  const victim = [...pids][0]
  process.kill(victim, 'SIGKILL')
  let replaced = false
  for (let i = 0; i < 200 && !replaced; i++) {
    const { pid } = await health().catch(() => ({}))
    if (pid !== undefined && !pids.has(pid)) replaced = true
    else await new Promise((r) => setTimeout(r, 25))
  }
  assert.ok(replaced, 'a new worker answered')
  let restarts = 0
  for (let i = 0; i < 100 && restarts < 1; i++) {
    const text = await (await fetch(`${url}/metrics`, { headers: { connection: 'close' } })).text()
    restarts = Number(/^corepool_cluster_worker_restarts_total (\d+)$/m.exec(text)?.[1] ?? 0)
    if (restarts < 1) await new Promise((r) => setTimeout(r, 25))
  }
  assert.equal(restarts, 1, 'the restart shows in /metrics')
  const exited = new Promise((resolve) => s.child.once('exit', (code, signal) => resolve({ code, signal })))
  s.child.kill('SIGTERM')
  assert.deepEqual(await exited, { code: 0, signal: null })
  for (const pid of pids) {
    let alive = true
    for (let i = 0; i < 100 && alive; i++) {
      try {
        process.kill(pid, 0)
        await new Promise((r) => setTimeout(r, 20))
      } catch {
        alive = false
      }
    }
    assert.equal(alive, false, `worker ${pid} is gone`)
  }
})

test('SIGTERM to `npm start` (what docker stop sends to CMD npm start) stops the server', async () => {
  const npm = spawn('npm', ['start', '--silent'], {
    cwd: root,
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const exited = new Promise((resolve) => npm.once('exit', (code, signal) => resolve({ code, signal })))
  let out = ''
  npm.stdout.setEncoding('utf8')
  const url = await new Promise((resolve, reject) => {
    npm.stdout.on('data', (d) => {
      out += d
      const m = /listening on (http:\/\/127\.0\.0\.1:\d+)/.exec(out)
      if (m) resolve(m[1])
    })
    npm.once('exit', () => reject(new Error(`npm start exited: ${out}`)))
  })
  const { pid } = await (await fetch(`${url}/health`, { headers: { connection: 'close' } })).json()
  // "start" execs node: the server is npm's child itself, not a shell's.
  npm.kill('SIGTERM')
  await exited
  let alive = true
  for (let i = 0; i < 200 && alive; i++) {
    try {
      process.kill(pid, 0)
      await new Promise((r) => setTimeout(r, 25))
    } catch {
      alive = false
    }
  }
  if (alive) process.kill(pid, 'SIGKILL')
  assert.equal(alive, false, 'the server stopped with npm')
})
