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
  countPrimes,
  sortFloat64,
  statsFloat64,
  sumFloat64,
  meanFloat64,
  minFloat64,
  maxFloat64,
  resize,
  DEFAULT_MAX_PIXELS,
  defaultPool,
  listenReusePort,
  SharedCounters,
  move,
  isWorkerThread,
  workerData,
} = corepool
export const { spawn, exec, fork, Child, Supervisor, cluster, Cluster } = corepool
export default corepool
