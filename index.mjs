import corepool from './index.js'

export const { Pool, CorepoolError, sqrtSum, defaultPool, listenReusePort } = corepool
export default corepool
