'use strict'
// Task module: the seeds' sharp thumbnail, run on a worker thread.
const sharp = require('sharp')

module.exports = async function thumbnail({ image, width }) {
  const { data, info } = await sharp(image)
    .resize({ width })
    .jpeg({ quality: 80 })
    .toBuffer({ resolveWithObject: true })
  return { data, width: info.width, height: info.height }
}
