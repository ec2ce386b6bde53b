'use strict'
// The native addon: the prebuilt platform package (corepool-<triple>) first, then the local
// build made from the sources on install; see platform.js, which also says, when neither
// loads, what was tried and how to fix it. Its declarations are types/native.d.ts (generated).
/** @type {typeof import('../types/native')} */
module.exports = require('./platform').loadNative()
