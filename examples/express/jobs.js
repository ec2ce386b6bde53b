'use strict'
// Transcode jobs: each job is an ffmpeg child started by corepool (no shell, own process group,
// killed with its whole tree on timeout or shutdown, never orphaned), its progress read from
// `-progress pipe:1` lines.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const crypto = require('node:crypto')
const { spawn } = require('../../index.js')

/**
 * @param {object} [options]
 * @param {string} [options.command] the transcoder (default `ffmpeg`)
 * @param {(input: string, output: string) => string[]} [options.args] its arguments
 * @param {number} [options.timeout] per-job limit in ms
 */
function createJobs(options = {}) {
  const command = options.command ?? 'ffmpeg'
  const args =
    options.args ??
    ((input, output) => ['-hide_banner', '-nostdin', '-y', '-i', input, '-progress', 'pipe:1', '-nostats', output])
  const timeout = options.timeout ?? 10 * 60_000
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'corepool-jobs-'))
  const jobs = new Map()
  // The client sees its job's id, never where the server keeps its files.
  const hidePaths = (text) =>
    text
      .split(dir + path.sep)
      .join('')
      .split(dir)
      .join('')

  function view(job) {
    const { id, state, progress, error, exit, outputBytes, startedAt, finishedAt } = job
    return { id, state, progress, error, exit, outputBytes, startedAt, finishedAt }
  }

  /** Starts a job on `input` (bytes) producing `format`; returns its public view. */
  function start(input, format = 'mp4') {
    const id = crypto.randomUUID()
    const inFile = path.join(dir, `${id}.in`)
    const outFile = path.join(dir, `${id}.${format}`)
    fs.writeFileSync(inFile, input)
    const job = {
      id,
      state: 'running',
      progress: {},
      error: null,
      exit: null,
      outputBytes: 0,
      outFile,
      startedAt: Date.now(),
      finishedAt: null,
      child: null,
    }
    jobs.set(id, job)
    const child = spawn(command, args(inFile, outFile), { timeout, stdio: ['ignore', 'pipe', 'pipe'] })
    job.child = child
    let stderr = ''
    child.stderr.setEncoding('utf8')
    child.stderr.on('data', (d) => {
      stderr = (stderr + d).slice(-4000)
    })
    ;(async () => {
      // ffmpeg -progress writes key=value lines, one block per update.
      for await (const line of child.lines('stdout')) {
        const eq = line.indexOf('=')
        if (eq > 0) job.progress[line.slice(0, eq).trim()] = line.slice(eq + 1).trim()
      }
    })().catch(() => {})
    child.exited.then(
      (exit) => {
        job.exit = exit
        job.finishedAt = Date.now()
        if (exit.code === 0) {
          job.state = 'done'
          job.outputBytes = fs.existsSync(outFile) ? fs.statSync(outFile).size : 0
        } else {
          job.state = 'failed'
          job.error = { code: 'ERR_CHILD_EXIT', message: hidePaths(stderr.trim().split('\n').slice(-3).join('\n')) }
        }
        fs.rm(inFile, { force: true }, () => {})
      },
      (err) => {
        job.state = 'failed'
        job.finishedAt = Date.now()
        job.error = { code: err.code, message: hidePaths(err.message) }
        fs.rm(inFile, { force: true }, () => {})
      },
    )
    return view(job)
  }

  const get = (id) => {
    const job = jobs.get(id)
    return job && view(job)
  }

  const output = (id) => {
    const job = jobs.get(id)
    return job?.state === 'done' ? job.outFile : null
  }

  /** Kills running jobs (whole process trees) and removes the files. */
  async function close() {
    const running = [...jobs.values()].filter((j) => j.state === 'running' && j.child)
    for (const job of running) job.child.kill('SIGKILL')
    await Promise.allSettled(running.map((j) => j.child.exited))
    fs.rmSync(dir, { recursive: true, force: true })
  }

  return { start, get, output, close }
}

module.exports = { createJobs }
