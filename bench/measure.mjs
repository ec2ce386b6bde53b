// Shared measuring helpers of the benchmarks.
import { performance } from 'node:perf_hooks'

/** Keeps `inflight` tasks outstanding until `total` have completed; returns tasks/s. */
export async function throughput(run, total, inflight) {
  let started = 0
  const t0 = performance.now()
  await new Promise((resolve, reject) => {
    let done = 0
    const next = () => {
      if (started >= total) return
      started++
      run().then(() => {
        if (++done === total) resolve()
        else next()
      }, reject)
    }
    for (let i = 0; i < Math.min(inflight, total); i++) next()
  })
  return total / ((performance.now() - t0) / 1000)
}

/** One task at a time: round-trip latency percentiles in microseconds (and the samples). */
export async function latency(run, count, keepSamples = false) {
  const samples = new Float64Array(count)
  for (let i = 0; i < count; i++) {
    const t = performance.now()
    await run()
    samples[i] = (performance.now() - t) * 1000
  }
  samples.sort()
  const q = (p) => samples[Math.min(count - 1, Math.floor(p * count))]
  return keepSamples ? { p50: q(0.5), p99: q(0.99), samples } : { p50: q(0.5), p99: q(0.99) }
}

/** Compact number formatting for the tables. */
export const fmt = (x, d = 1) => (x >= 100 ? Math.round(x).toLocaleString('en-US') : x.toFixed(d))
