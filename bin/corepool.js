#!/usr/bin/env node
'use strict'
// corepool's command line: PM2's everyday commands over a cluster's control socket.
//
//   corepool start <script> [-i N|max] [--port P] [--name N] [--max-memory-restart 200M]
//                  [--timestamps] [--reuse-port] [-- script args]   (runs in the foreground)
//   corepool reload|stop|status [name]       corepool scale <name> <n>
//   corepool logs [name] [--lines N] [--nostream]
const path = require('node:path')
const { cluster } = require('../lib/cluster')

const USAGE = `usage:
  corepool start <script> [-i N|max] [--port P] [--name NAME] [--max-memory-restart SIZE]
                 [--timestamps] [--reuse-port] [-- args for the script]
  corepool reload [name]        rolling reload, no request fails
  corepool stop [name]          graceful stop
  corepool status [name] [--json]
  corepool scale <name> <n>
  corepool logs [name] [--lines N] [--nostream]`

function fail(message) {
  console.error(`corepool: ${message}`)
  process.exit(1)
}

/** `name`, or the only running cluster's. */
function target(name) {
  if (name) return name
  const names = cluster.list()
  if (names.length === 1) return names[0]
  fail(names.length === 0 ? 'no cluster is running' : `several clusters run (${names.join(', ')}): name one`)
}

async function send(name, message) {
  let answer
  try {
    answer = await cluster.request(name, message, { timeout: 10 * 60_000 })
  } catch (err) {
    fail(err.code === 'ENOENT' || err.code === 'ECONNREFUSED' ? `no cluster named ${name} is running` : err.message)
  }
  if (!answer.ok) fail(`${answer.error?.code}: ${answer.error?.message}`)
  return answer
}

function parseStart(args) {
  const o = { signals: true }
  const rest = []
  for (let i = 0; i < args.length; i++) {
    const a = args[i]
    const value = () => {
      if (i + 1 >= args.length) fail(`${a} needs a value`)
      return args[++i]
    }
    if (a === '--') {
      o.args = args.slice(i + 1)
      break
    } else if (a === '-i' || a === '--instances') {
      const v = value()
      o.workers = v === 'max' ? 'max' : Number(v)
    } else if (a === '--port' || a === '-p') o.port = Number(value())
    else if (a === '--name' || a === '-n') o.name = value()
    else if (a === '--max-memory-restart') o.maxMemoryRestart = value()
    else if (a === '--timestamps' || a === '--time') o.timestamps = true
    else if (a === '--reuse-port') o.reusePort = true
    else if (a.startsWith('-')) fail(`unknown option ${a}\n${USAGE}`)
    else rest.push(a)
  }
  if (rest.length !== 1) fail(`start needs one script\n${USAGE}`)
  o.module = path.resolve(rest[0])
  if (o.port === undefined && process.env.PORT !== undefined) o.port = Number(process.env.PORT)
  return o
}

function table(status) {
  const mb = (b) => (b == null ? '-' : `${(b / 1024 ** 2).toFixed(1)} MB`)
  const s = (ms) => `${Math.round(ms / 1000)}s`
  const lines = [
    `${status.name}: ${status.state}, port ${status.port ?? '-'}, pid ${status.pid}, ${status.reloads} reloads, ${status.restarts} restarts`,
    'id   pid      uptime   restarts  memory',
  ]
  for (const w of status.workers) {
    lines.push(
      `${String(w.id).padEnd(4)} ${String(w.pid).padEnd(8)} ${s(w.uptimeMs).padEnd(8)} ${String(w.restarts).padEnd(9)} ${mb(w.memory)}`,
    )
  }
  return lines.join('\n')
}

async function main() {
  const [command, ...args] = process.argv.slice(2)
  switch (command) {
    case 'start': {
      const c = await cluster(parseStart(args)).catch((err) => fail(`${err.code}: ${err.message}`))
      c.on('stop', () => (process.exitCode = 0))
      return
    }
    case 'reload': {
      const { result } = await send(target(args[0]), { cmd: 'reload' })
      return console.log(`reloaded ${result.replaced} workers in ${Math.round(result.durationMs)} ms`)
    }
    case 'stop': {
      const name = target(args[0])
      await send(name, { cmd: 'stop' })
      // Wait until the control socket is gone (the cluster stopped).
      for (let i = 0; i < 1200 && cluster.list().includes(name); i++) await new Promise((r) => setTimeout(r, 50))
      return console.log(`stopped ${name}`)
    }
    case 'status': {
      const json = args.includes('--json')
      const names = args.filter((a) => a !== '--json')
      const list = names.length ? names : cluster.list()
      if (list.length === 0) return console.log('no cluster is running')
      for (const name of list) {
        const { status } = await send(name, { cmd: 'status' })
        console.log(json ? JSON.stringify(status) : table(status))
      }
      return
    }
    case 'scale': {
      if (args.length !== 2) fail(`scale needs a name and a count\n${USAGE}`)
      const n = args[1] === 'max' ? 'max' : Number(args[1])
      const { workers } = await send(args[0], { cmd: 'scale', workers: n })
      return console.log(`${args[0]}: ${workers} workers`)
    }
    case 'logs': {
      const at = args.indexOf('--lines')
      const lines = at >= 0 ? Number(args[at + 1]) : 50
      const follow = !args.includes('--nostream')
      const name = target(args.find((a, i) => !a.startsWith('--') && (at < 0 || i !== at + 1)))
      const net = require('node:net')
      const socket = net.connect(cluster.controlPath(name))
      socket.on('error', (err) => fail(err.message))
      socket.on('connect', () => socket.write(JSON.stringify({ cmd: 'logs', lines, follow }) + '\n'))
      socket.pipe(process.stdout)
      return
    }
    default:
      console.log(USAGE)
      if (command !== undefined && command !== 'help' && command !== '--help') process.exitCode = 1
  }
}

main()
