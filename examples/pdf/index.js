'use strict'
// Generates PDF invoices on worker threads: `node examples/pdf` writes them to the OS temp dir.
const fs = require('node:fs')
const os = require('node:os')
const path = require('node:path')
const { Pool } = require('../../index.js')

async function main() {
  const pool = new Pool({ filename: path.join(__dirname, 'report-task.js'), threads: 2 })
  const invoices = Array.from({ length: 4 }, (_, i) => ({
    number: `2026-${String(i + 1).padStart(4, '0')}`,
    customer: `Customer ${i + 1}`,
    items: Array.from({ length: 30 }, (_, j) => ({ label: `Item ${j + 1}`, amount: (j + 1) * 1.5 })),
  }))
  const pdfs = await Promise.all(invoices.map((invoice) => pool.run(invoice, { timeout: 30_000 })))
  for (const [i, pdf] of pdfs.entries()) {
    const file = path.join(os.tmpdir(), `corepool-invoice-${invoices[i].number}.pdf`)
    fs.writeFileSync(file, pdf)
    console.log(`${file}: ${pdf.byteLength} bytes`)
  }
  await pool.close()
}

main().catch((err) => {
  console.error(err)
  process.exitCode = 1
})
