// FFmpeg transcode with live progress, without a shell and without orphans: if this script is
// killed (even with SIGKILL), ffmpeg dies with it.
//   node examples/child-processes/transcode.mjs [input] [output]
// Without an input file, ffmpeg's built-in test source is encoded for 5 seconds of video.
import os from 'node:os'
import path from 'node:path'
import { spawn, exec } from '../../index.mjs'

try {
  await exec('ffmpeg', ['-version'])
} catch (err) {
  if (err.code === 'ERR_SPAWN') {
    console.log('ffmpeg is not installed (or not on PATH); skipping this example.')
    process.exit(0)
  }
  throw err
}

const [input, output = path.join(os.tmpdir(), 'corepool-transcode.mp4')] = process.argv.slice(2)
const source = input ? ['-i', input] : ['-f', 'lavfi', '-i', 'testsrc=duration=5:size=640x360:rate=25']
const args = ['-y', '-hide_banner', '-loglevel', 'error', ...source, '-c:v', 'libx264', '-preset', 'veryfast']
const ffmpeg = spawn('ffmpeg', [...args, '-progress', 'pipe:1', '-nostats', output], {
  stdio: ['ignore', 'pipe', 'pipe'],
  timeout: 10 * 60_000, // a stuck transcode is killed (SIGTERM, SIGKILL 5 s later)
})

// Drain stderr concurrently, so a chatty ffmpeg can never block on a full pipe.
const errors = []
const stderrDone = (async () => {
  for await (const line of ffmpeg.lines('stderr')) errors.push(line)
})()

// `-progress pipe:1` prints key=value lines; one block per update, ending with progress=...
let block = {}
for await (const line of ffmpeg.lines('stdout')) {
  const eq = line.indexOf('=')
  if (eq < 0) continue
  block[line.slice(0, eq)] = line.slice(eq + 1)
  if (line.startsWith('progress=')) {
    console.log(`frame ${block.frame}  time ${block.out_time}  speed ${block.speed}  (${block.progress})`)
    block = {}
  }
}
await stderrDone
const { code, signal, durationMs } = await ffmpeg.exited
if (code !== 0) {
  console.error(`ffmpeg failed (${signal ?? `exit ${code}`}):\n${errors.join('\n')}`)
  process.exitCode = 1
} else {
  console.log(`wrote ${output} in ${(durationMs / 1000).toFixed(1)} s`)
}
