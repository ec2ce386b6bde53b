import m from './lib/bullmq.js'

export const { createWorker, cancelJob, hostCounters, COUNTER_NAMES, ACTIVE_GAUGE } = m
export default m
