// Writes a seed corpus of valid inputs for the cargo-fuzz targets (see scripts/fuzz-native.sh):
// node scripts/fuzz-seeds.mjs <dir>. Each decompress seed is a format selector byte followed by
// a stream; each image seed is two option bytes followed by an image.
import fs from 'node:fs'
import path from 'node:path'
import zlib from 'node:zlib'

const dir = process.argv[2]
const write = (target, name, bytes) => {
  fs.mkdirSync(path.join(dir, target), { recursive: true })
  fs.writeFileSync(path.join(dir, target, name), bytes)
}

const text = Buffer.from('corepool fuzz seed '.repeat(40) + Array.from({ length: 200 }, (_, i) => i).join(','))
const codecs = [
  ['gzip', (b) => zlib.gzipSync(b)],
  ['deflate', (b) => zlib.deflateSync(b)],
  ['deflate-raw', (b) => zlib.deflateRawSync(b)],
  ['brotli', (b) => zlib.brotliCompressSync(b)],
  ['zstd', zlib.zstdCompressSync && ((b) => zlib.zstdCompressSync(b))],
]
codecs.forEach(([name, encode], selector) => {
  if (!encode) return
  for (const [i, input] of [text, Buffer.alloc(0), Buffer.alloc(5000, 7)].entries()) {
    write('decompress', `${name}-${i}`, Buffer.concat([Buffer.from([selector]), encode(input)]))
  }
})
if (!zlib.zstdCompressSync) {
  // A frame with one raw block holding "abc" (no zstd in this Node).
  write(
    'decompress',
    'zstd-raw',
    Buffer.from([4, 0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58, 0x19, 0x00, 0x00, 0x61, 0x62, 0x63]),
  )
}

let sharp = null
try {
  sharp = (await import('sharp')).default
} catch {
  // No sharp: the image target starts from an empty corpus.
}
if (sharp) {
  const base = sharp({
    create: { width: 24, height: 16, channels: 4, background: { r: 200, g: 30, b: 90, alpha: 0.5 } },
  })
  for (const format of ['png', 'jpeg', 'webp']) {
    const image = await base.clone().toFormat(format).toBuffer()
    write('image', format, Buffer.concat([Buffer.from([0x21, 0x0a]), image]))
  }
  const gray = await sharp({ create: { width: 9, height: 33, channels: 3, background: 'gray' } })
    .grayscale()
    .png()
    .toBuffer()
  write('image', 'gray-png', Buffer.concat([Buffer.from([0x00, 0x00]), gray]))
  const progressive = await base.clone().jpeg({ progressive: true }).toBuffer()
  write('image', 'progressive-jpeg', Buffer.concat([Buffer.from([0x13, 0x02]), progressive]))
}
