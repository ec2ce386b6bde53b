#!/usr/bin/env node
'use strict'
// Which glibc a Linux binary needs: the GLIBC_x.y versions its dynamic symbols require (read
// from the ELF file itself: .dynsym, .gnu.version and .gnu.version_r; no binutils needed, any
// architecture), so that the release binaries need no newer glibc than napi-rs packages do.
//
//   node scripts/check-glibc.js [--max 2.17] FILE...
//
// Prints, per file, the highest GLIBC_ version required and the symbols that require more than
// --max; exits 1 if any does. Also refused, whatever --max: a strong reference to a glibc
// function added after 2.17 (below), which a binary linked against an old glibc (the release
// workflow's zig builds) keeps unversioned and which then fails to load where that glibc is old.
const fs = require('node:fs')

const SHT_DYNSYM = 11
const SHT_GNU_VERNEED = 0x6ffffffe
const SHT_GNU_VERSYM = 0x6fffffff
const STB_WEAK = 2

// glibc functions newer than 2.17 that Rust code can reach through the libc crate, with the
// version that added them; call them through libc::syscall instead.
const AFTER_2_17 = {
  getrandom: '2.25',
  getentropy: '2.25',
  explicit_bzero: '2.25',
  reallocarray: '2.26',
  preadv2: '2.26',
  pwritev2: '2.26',
  memfd_create: '2.27',
  copy_file_range: '2.27',
  mlock2: '2.27',
  statx: '2.28',
  renameat2: '2.28',
  posix_spawn_file_actions_addchdir_np: '2.29',
  gettid: '2.30',
  tgkill: '2.30',
  close_range: '2.34',
  closefrom: '2.34',
  posix_spawn_file_actions_addclosefrom_np: '2.34',
  epoll_pwait2: '2.35',
  pidfd_open: '2.36',
  pidfd_send_signal: '2.36',
  pidfd_getfd: '2.36',
  arc4random: '2.36',
}

const versionKey = (v) => v.split('.').map(Number)
function compareVersions(a, b) {
  const x = versionKey(a)
  const y = versionKey(b)
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0)
    if (d !== 0) return d
  }
  return 0
}

/** The undefined dynamic symbols of an ELF file: [{ name, version (e.g. 'GLIBC_2.30') or null, weak }]. */
function importedSymbols(file) {
  const b = fs.readFileSync(file)
  if (b.length < 64 || b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${file} is not an ELF file`)
  const is64 = b[4] === 2
  const le = b[5] === 1
  const u16 = (o) => (le ? b.readUInt16LE(o) : b.readUInt16BE(o))
  const u32 = (o) => (le ? b.readUInt32LE(o) : b.readUInt32BE(o))
  const word = (o) => (is64 ? Number(le ? b.readBigUInt64LE(o) : b.readBigUInt64BE(o)) : u32(o))
  const shoff = word(is64 ? 0x28 : 0x20)
  const shentsize = u16(is64 ? 0x3a : 0x2e)
  const shnum = u16(is64 ? 0x3c : 0x30)
  const sections = []
  for (let i = 0; i < shnum; i++) {
    const o = shoff + i * shentsize
    sections.push({
      type: u32(o + 4),
      offset: word(o + (is64 ? 0x18 : 0x10)),
      size: word(o + (is64 ? 0x20 : 0x14)),
      link: u32(o + (is64 ? 0x28 : 0x18)),
      entsize: word(o + (is64 ? 0x38 : 0x24)),
    })
  }
  const cstr = (section, at) => {
    const start = section.offset + at
    return b.toString('latin1', start, b.indexOf(0, start))
  }
  const dynsym = sections.find((s) => s.type === SHT_DYNSYM)
  if (dynsym === undefined) return [] // statically linked
  const dynstr = sections[dynsym.link]
  // Version index -> name, from the version needs (vna_other is the index .gnu.version uses).
  const names = new Map()
  const verneed = sections.find((s) => s.type === SHT_GNU_VERNEED)
  if (verneed !== undefined) {
    const strings = sections[verneed.link]
    for (let vn = verneed.offset, more = true; more;) {
      const cnt = u16(vn + 2)
      for (let k = 0, vna = vn + u32(vn + 8); k < cnt; k++) {
        names.set(u16(vna + 6), cstr(strings, u32(vna + 8)))
        const next = u32(vna + 12)
        vna += next
      }
      const next = u32(vn + 12)
      more = next !== 0
      vn += next
    }
  }
  const versym = sections.find((s) => s.type === SHT_GNU_VERSYM)
  const entsize = dynsym.entsize || (is64 ? 24 : 16)
  const symbols = []
  for (let i = 1; i < dynsym.size / entsize; i++) {
    const o = dynsym.offset + i * entsize
    const info = b[o + (is64 ? 4 : 12)]
    const shndx = u16(o + (is64 ? 6 : 14))
    if (shndx !== 0) continue // defined here
    const name = cstr(dynstr, u32(o))
    if (name === '') continue
    const index = versym === undefined ? 0 : u16(versym.offset + i * 2) & 0x7fff
    symbols.push({ name, version: names.get(index) ?? null, weak: info >> 4 === STB_WEAK })
  }
  return symbols
}

/** { max: highest GLIBC_ version or null, above: symbols above `max`, newer: strong refs to AFTER_2_17 }. */
function glibcNeeds(file, max = null) {
  const symbols = importedSymbols(file)
  let highest = null
  const above = []
  const newer = []
  for (const s of symbols) {
    const v = /^GLIBC_(\d+(?:\.\d+)*)$/.exec(s.version ?? '')?.[1]
    if (v !== undefined) {
      if (highest === null || compareVersions(v, highest) > 0) highest = v
      if (max !== null && compareVersions(v, max) > 0) above.push(`${s.name}@GLIBC_${v}`)
    }
    if (!s.weak && Object.hasOwn(AFTER_2_17, s.name)) newer.push(`${s.name} (glibc ${AFTER_2_17[s.name]})`)
  }
  return { max: highest, above, newer }
}

if (require.main === module) {
  const argv = process.argv.slice(2)
  const at = argv.indexOf('--max')
  const max = at >= 0 ? argv[at + 1] : null
  const files = argv.filter((_, i) => at < 0 || (i !== at && i !== at + 1))
  if (files.length === 0 || (at >= 0 && !/^\d+(\.\d+)*$/.test(max ?? ''))) {
    console.error('usage: check-glibc.js [--max 2.17] FILE...')
    process.exit(2)
  }
  let ok = true
  for (const file of files) {
    const r = glibcNeeds(file, max)
    console.log(`${file}: needs ${r.max === null ? 'no glibc version' : `GLIBC_${r.max}`}`)
    for (const s of r.above) console.log(`  above ${max}: ${s}`)
    for (const s of r.newer) console.log(`  a glibc function newer than 2.17, by name: ${s}`)
    if (r.above.length > 0 || r.newer.length > 0) ok = false
  }
  process.exit(ok ? 0 : 1)
}

module.exports = { importedSymbols, glibcNeeds, AFTER_2_17 }
