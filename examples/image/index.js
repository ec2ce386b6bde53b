'use strict'
// Thumbnails two ways: sharp in a JS task on the pool's worker threads, and corepool's native
// `resize` kernel. `node examples/image [photo.jpg]` (without a file, a test image is generated).
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { performance } = require('node:perf_hooks')
const { Pool, resize } = require('../../index.js')

async function testImage() {
  const sharp = require('sharp')
  // A 2000×1500 gradient with some noise, so JPEG has real work to do.
  const width = 2000
  const height = 1500
  const pixels = Buffer.alloc(width * height * 3)
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3
      pixels[i] = (x * 255) / width
      pixels[i + 1] = (y * 255) / height
      pixels[i + 2] = (x * y) % 251
    }
  }
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .jpeg({ quality: 90 })
    .toBuffer()
}

async function main() {
  const input = process.argv[2] ? fs.readFileSync(process.argv[2]) : await testImage()
  const width = 320
  const pool = new Pool({ filename: path.join(__dirname, 'thumbnail-task.js'), threads: 2 })

  let t = performance.now()
  const js = await pool.run({ image: input, width })
  const jsMs = performance.now() - t

  t = performance.now()
  const native = await resize(input, { width, format: 'jpeg', quality: 80 })
  const nativeMs = performance.now() - t

  for (const [name, out, ms] of [
    ['sharp in a JS task', js, jsMs],
    ['native resize', native, nativeMs],
  ]) {
    const file = path.join(os.tmpdir(), `corepool-thumbnail-${name.split(' ')[0]}.jpg`)
    fs.writeFileSync(file, out.data)
    console.log(`${name}: ${out.width}x${out.height}, ${out.data.length} bytes in ${ms.toFixed(1)} ms -> ${file}`)
  }
  await pool.close()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
