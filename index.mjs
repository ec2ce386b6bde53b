import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, defaultPool } = corepool
export const { spawn, exec, fork, Child, Supervisor } = corepool
export default corepool
