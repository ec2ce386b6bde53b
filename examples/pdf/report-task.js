'use strict'
// Task module: builds a PDF invoice with pdfkit on a worker thread and returns its bytes.
const PDFDocument = require('pdfkit')

module.exports = async function invoice({ number, customer, items }, { signal }) {
  const doc = new PDFDocument({ size: 'A4', margin: 50 })
  const chunks = []
  doc.on('data', (chunk) => chunks.push(chunk))
  const finished = new Promise((resolve, reject) => {
    doc.on('end', resolve)
    doc.on('error', reject)
  })
  doc.fontSize(22).text(`Invoice ${number}`)
  doc.moveDown().fontSize(12).text(`Customer: ${customer}`)
  doc.moveDown()
  let total = 0
  for (const [i, { label, amount }] of items.entries()) {
    // A long document can be abandoned half-way when the caller aborts.
    if (i % 100 === 0) signal.throwIfAborted()
    doc.text(`${label.padEnd(40, '.')} ${amount.toFixed(2)}`)
    total += amount
  }
  doc
    .moveDown()
    .fontSize(14)
    .text(`Total: ${total.toFixed(2)}`)
  doc.end()
  await finished
  return Buffer.concat(chunks)
}
