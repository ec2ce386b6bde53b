import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, defaultPool, SharedCounters } = corepool
export default corepool
