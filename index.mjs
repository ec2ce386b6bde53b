import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, defaultPool } = corepool
export default corepool
