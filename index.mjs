import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, defaultPool } = corepool
export const { spawn, exec, fork, Child } = corepool
export default corepool
