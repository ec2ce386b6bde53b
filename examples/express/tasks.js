'use strict'
// JS tasks of the example server, run on worker_threads by a corepool Pool.

/** The seeds' CPU loop, as plain JavaScript. */
function sqrtSum({ n }) {
  let s = 0
  for (let i = 0; i < n; i++) s += Math.sqrt(i)
  return s
}

/** A PDF report generated with pdfkit, returned as bytes. */
async function report({ title, rows }) {
  const PDFDocument = require('pdfkit')
  const doc = new PDFDocument({ size: 'A4', margin: 50 })
  const chunks = []
  doc.on('data', (c) => chunks.push(c))
  const done = new Promise((resolve, reject) => {
    doc.on('end', resolve)
    doc.on('error', reject)
  })
  doc.fontSize(20).text(title)
  doc.moveDown()
  doc.fontSize(11)
  for (const [key, value] of rows) doc.text(`${key}: ${value}`)
  doc.end()
  await done
  const pdf = Buffer.concat(chunks)
  return new Uint8Array(pdf.buffer, pdf.byteOffset, pdf.byteLength)
}

module.exports = { sqrtSum, report }
