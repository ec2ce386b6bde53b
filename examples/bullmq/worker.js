'use strict'
// A worker host: BullMQ jobs of queue "thumbnails" run on a corepool pool — corepool's native
// `resize` kernel by default, or with --js the seeds' sharp thumbnail task (examples/image) on
// worker threads. The event loop only talks to Redis, so locks are renewed on time however heavy
// the images. Prometheus metrics (pool + jobs, shared by every process of this host) are served
// on http://127.0.0.1:9464/metrics. SIGTERM/SIGINT: stop taking jobs, finish the running ones.
const fs = require('node:fs/promises')
const http = require('node:http')
const path = require('node:path')
const { Pool, resize } = require('../../index.js')
const { createWorker, hostCounters } = require('../../bullmq.js')
const { connectionFromEnv } = require('./connection.js')

const useJs = process.argv.includes('--js')
const counters = hostCounters(process.env.COUNTERS ?? 'corepool-example-thumbnails')
const pool = useJs
  ? new Pool({ filename: path.join(__dirname, '..', 'image', 'thumbnail-task.js'), counters })
  : new Pool({ counters })

async function thumbnail(job, { signal, timeout }) {
  const { input, output, width } = job.data
  const image = await fs.readFile(input) // shared storage in production (a bucket, NFS)
  const thumb = useJs
    ? await pool.run({ image, width }, { signal, timeout })
    : await resize(image, { width, format: 'jpeg', quality: 80, pool, signal, timeout })
  await fs.writeFile(output, thumb.data)
  return { output, width: thumb.width, height: thumb.height, bytes: thumb.data.length, pid: process.pid }
}

const { worker, ready, metrics } = createWorker('thumbnails', pool, {
  connection: connectionFromEnv(),
  run: thumbnail,
  timeout: 30_000,
  drainTimeout: 10_000,
  counters,
  worker: { lockDuration: 10_000 },
})
worker.on('completed', (job, result) =>
  console.log(`job ${job.id}: ${result.width}x${result.height} -> ${result.output}`),
)
worker.on('failed', (job, err) => console.log(`job ${job?.id} failed: ${err.message}`))

const port = Number(process.env.METRICS_PORT ?? 9464)
const server = http.createServer((req, res) => {
  res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(metrics())
})
server.unref() // the worker keeps the process alive; metrics never block a shutdown
server.listen(port, '127.0.0.1')

ready.then(() =>
  console.log(
    `worker host ${process.pid} ready (${useJs ? 'sharp in JS tasks' : 'native resize'}, ${pool.threads} threads)`,
  ),
)
