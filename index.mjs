import corepool from './index.js'

export const {
  Pool,
  CorepoolError,
  sqrtSum,
  hash,
  hashMany,
  hashFile,
  createHasher,
  Hasher,
  compress,
  decompress,
  DEFAULT_MAX_OUTPUT_LENGTH,
  passwordHash,
  passwordVerify,
  defaultPool,
} = corepool
export default corepool
