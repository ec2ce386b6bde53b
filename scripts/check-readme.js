#!/usr/bin/env node
'use strict'
// Type-checks the README's JavaScript examples as users would run them: every ```js block is
// written to __test__/types/.readme/ as a CommonJS file (its body inside an async function, so
// top-level `await` is allowed) and checked by tsc with `checkJs` and `strict` against the
// package's own declarations. Exits non-zero when any block does not type-check.
const fs = require('node:fs')
const path = require('node:path')
const { spawnSync } = require('node:child_process')

const root = path.join(__dirname, '..')
const out = path.join(root, '__test__', 'types', '.readme')
fs.rmSync(out, { recursive: true, force: true })
fs.mkdirSync(out, { recursive: true })

const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
const files = []
for (const match of readme.matchAll(/^```js\n([\s\S]*?)^```$/gm)) {
  const line = readme.slice(0, match.index).split('\n').length
  const file = path.join(out, `readme-line-${line}.cjs`)
  fs.writeFileSync(file, `// README.md line ${line}\n;(async () => {\n${match[1]}})()\n`)
  files.push(path.relative(out, file))
}
fs.writeFileSync(
  path.join(out, 'tsconfig.json'),
  JSON.stringify({
    compilerOptions: {
      allowJs: true,
      checkJs: true,
      strict: true,
      noEmit: true,
      module: 'nodenext',
      moduleResolution: 'nodenext',
      target: 'es2022',
      types: ['node'],
    },
    files,
  }),
)
const tsc = spawnSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', out], { stdio: 'inherit' })
if (tsc.status !== 0) process.exit(tsc.status ?? 1)
console.log(`README: ${files.length} JavaScript blocks type-check`)
