// corepool: a native worker pool, shared-memory counters and supervised children for Node.js.
export * from './types/errors'
export * from './types/pool'
export * from './types/counters'
export * from './types/kernels'
export * from './types/children'
export * from './types/cluster'
