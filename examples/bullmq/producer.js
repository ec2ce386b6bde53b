'use strict'
// The producer: writes a test photo, queues thumbnail jobs for the worker hosts, prints each
// result as it arrives, and cancels one job while it runs (its task is aborted on the host).
// Exits when every job has finished.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Queue, QueueEvents } = require('bullmq')
const { cancelJob } = require('../../bullmq.js')
const { connectionFromEnv } = require('./connection.js')

const JOBS = Number(process.env.JOBS ?? 8)

async function testPhoto(file) {
  const sharp = require('sharp')
  const width = 4000
  const height = 3000
  const pixels = Buffer.alloc(width * height * 3)
  for (let i = 0; i < pixels.length; i += 3) {
    const x = (i / 3) % width
    const y = Math.floor(i / 3 / width)
    pixels[i] = (x * 255) / width
    pixels[i + 1] = (y * 255) / height
    pixels[i + 2] = (x * y) % 251
  }
  await sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toFile(file)
}

async function main() {
  const connection = connectionFromEnv()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-bullmq-'))
  const input = path.join(dir, 'photo.jpg')
  await testPhoto(input)
  const queue = new Queue('thumbnails', { connection })
  const events = new QueueEvents('thumbnails', { connection })
  await events.waitUntilReady()

  const jobs = await queue.addBulk(
    Array.from({ length: JOBS }, (_, i) => ({
      name: 'thumbnail',
      data: { input, output: path.join(dir, `thumb-${i}.jpg`), width: 160 + 40 * i },
      opts: { attempts: 3, backoff: { type: 'exponential', delay: 500 }, removeOnComplete: 100 },
    })),
  )
  console.log(`queued ${jobs.length} thumbnail jobs (input ${input})`)

  // Cancel the last job as soon as it runs (a user closed the page, say).
  const last = jobs.at(-1)
  events.on('active', ({ jobId }) => {
    if (jobId === last.id)
      cancelJob(queue, jobId, 'the user left').then((s) => console.log(`cancel job ${jobId}: ${s}`))
  })

  let completed = 0
  let failed = 0
  await Promise.all(
    jobs.map((job) =>
      job.waitUntilFinished(events, 120_000).then(
        (r) => {
          completed++
          console.log(`job ${job.id}: ${r.width}x${r.height}, ${r.bytes} bytes on host ${r.pid}`)
        },
        (err) => {
          failed++
          console.log(`job ${job.id} failed: ${err.message}`)
        },
      ),
    ),
  )
  console.log(`${completed} completed, ${failed} failed; thumbnails in ${dir}`)
  await events.close()
  await queue.close()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
