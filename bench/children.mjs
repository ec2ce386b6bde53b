// corepool children vs node:child_process vs execa, one run, printed as ratios.
//   node bench/children.mjs            (all sections; ~1 min)
//   SPAWNS=1000 HEAP_GB=2 STREAM_MB=256 node bench/children.mjs
// Sections: spawn latency of `true` (sequential), event-loop block per spawn while the process
// holds a large V8 heap (run in a subprocess with a bigger heap limit), line-streaming throughput.
import { spawn as nodeSpawn, execFileSync } from 'node:child_process'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { execa } from 'execa'
import { spawn } from '../index.mjs'

const SPAWNS = Number(process.env.SPAWNS ?? 1000)
const HEAP_GB = Number(process.env.HEAP_GB ?? 2)
const STREAM_MB = Number(process.env.STREAM_MB ?? 256)
const BLOCK_SPAWNS = 50

const exitOf = (child) => new Promise((resolve) => child.on('exit', resolve))
const runners = {
  corepool: () => spawn('true').exited,
  child_process: () => exitOf(nodeSpawn('true')),
  execa: () => execa('true'),
}

async function spawnLatency() {
  const out = {}
  for (const [name, run] of Object.entries(runners)) {
    for (let i = 0; i < 20; i++) await run() // warm-up
    const t = performance.now()
    for (let i = 0; i < SPAWNS; i++) await run()
    out[name] = (performance.now() - t) / SPAWNS
  }
  return out
}

// Runs inside a subprocess that was given a large heap: fills it, then measures how long the
// event loop is blocked by each spawn (the synchronous part of the call, and the largest gap
// seen by a 1 ms timer while spawning).
async function heapPart() {
  const keep = []
  const perArray = 1e7 // 80 MB of SMIs each
  const arrays = Math.round((HEAP_GB * 1024 ** 3) / (perArray * 8))
  for (let i = 0; i < arrays; i++) keep.push(new Array(perArray).fill(i))
  const heapUsed = process.memoryUsage().heapUsed
  const out = { heapGB: heapUsed / 1024 ** 3 }
  for (const [name, run] of Object.entries(runners)) {
    await run()
    let maxGap = 0
    let last = performance.now()
    const tick = setInterval(() => {
      const now = performance.now()
      maxGap = Math.max(maxGap, now - last)
      last = now
    }, 1)
    let maxSync = 0
    let sumSync = 0
    for (let i = 0; i < BLOCK_SPAWNS; i++) {
      const t = performance.now()
      const p = run()
      const sync = performance.now() - t
      maxSync = Math.max(maxSync, sync)
      sumSync += sync
      await p
      last = performance.now()
    }
    clearInterval(tick)
    out[name] = { meanSync: sumSync / BLOCK_SPAWNS, maxSync, maxGap }
  }
  keep.length = 0
  return out
}

async function streamThroughput() {
  const line = 'x'.repeat(99)
  const bytes = Math.floor((STREAM_MB * 1024 * 1024) / 100) * 100
  const cmd = ['sh', ['-c', `yes '${line}' | head -n ${bytes / 100}`]]
  const consumers = {
    corepool: async () => {
      const child = spawn(...cmd)
      let n = 0
      for await (const l of child.lines()) n += l.length + 1
      await child.exited
      return n
    },
    child_process: async () => {
      const child = nodeSpawn(...cmd)
      let n = 0
      for await (const l of createInterface({ input: child.stdout, crlfDelay: Infinity })) n += l.length + 1
      await exitOf(child)
      return n
    },
    execa: async () => {
      const child = execa(...cmd, { buffer: false })
      let n = 0
      for await (const l of child) n += l.length + 1
      await child
      return n
    },
  }
  const out = {}
  for (const [name, consume] of Object.entries(consumers)) {
    const t = performance.now()
    const n = await consume()
    const s = (performance.now() - t) / 1000
    if (n !== bytes) throw new Error(`${name} read ${n} bytes, expected ${bytes}`)
    out[name] = n / 1024 ** 2 / s
  }
  return out
}

if (process.argv.includes('--heap-part')) {
  console.log(JSON.stringify(await heapPart()))
} else {
  const fmt = (x, d = 2) => x.toFixed(d)
  console.log(`node ${process.version}, ${(await import('node:os')).cpus().length} cpus`)

  const lat = await spawnLatency()
  console.log(`\nspawn latency of \`true\` ×${SPAWNS} (sequential, mean ms per spawn; lower is better)`)
  for (const [name, ms] of Object.entries(lat)) {
    console.log(`  ${name.padEnd(14)} ${fmt(ms, 3)} ms   corepool/${name} = ${fmt(lat.corepool / ms)}`)
  }

  const heapMb = Math.ceil(HEAP_GB * 1024 + 1024)
  const heapOut = execFileSync(
    process.execPath,
    [`--max-old-space-size=${heapMb}`, fileURLToPath(import.meta.url), '--heap-part'],
    { encoding: 'utf8', env: { ...process.env }, maxBuffer: 1 << 20 },
  )
  const heap = JSON.parse(heapOut.trim().split('\n').pop())
  console.log(
    `\nevent-loop block per spawn with a ${fmt(heap.heapGB, 1)} GB heap (${BLOCK_SPAWNS} spawns; ms; lower is better)`,
  )
  for (const name of Object.keys(runners)) {
    const r = heap[name]
    console.log(
      `  ${name.padEnd(14)} sync call mean ${fmt(r.meanSync, 3)}  max ${fmt(r.maxSync, 3)}  largest timer gap ${fmt(r.maxGap, 2)}`,
    )
  }

  const tp = await streamThroughput()
  console.log(`\nline streaming, ${STREAM_MB} MB of 100-byte lines (MB/s; higher is better)`)
  for (const [name, mbs] of Object.entries(tp)) {
    console.log(`  ${name.padEnd(14)} ${fmt(mbs, 0)} MB/s   corepool/${name} = ${fmt(tp.corepool / mbs)}`)
  }
}
