import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, hash, hashMany, hashFile, createHasher, Hasher, defaultPool } = corepool
export default corepool
