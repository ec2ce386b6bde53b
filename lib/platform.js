'use strict'
// The addon's file name for this platform, shared by the loader and the install script.

function isMusl() {
  if (process.platform !== 'linux') return false
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null
  return report ? !report.header?.glibcVersionRuntime : false
}

function platformTriple() {
  const { platform, arch } = process
  if (platform === 'linux') return `linux-${arch}-${isMusl() ? 'musl' : 'gnu'}`
  if (platform === 'win32') return `win32-${arch}-msvc`
  return `${platform}-${arch}`
}

function nativeFileName() {
  return `corepool.${platformTriple()}.node`
}

module.exports = { platformTriple, nativeFileName }
