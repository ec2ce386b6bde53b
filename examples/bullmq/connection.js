'use strict'
// REDIS_URL (default redis://127.0.0.1:6379) as ioredis options for BullMQ.
function connectionFromEnv() {
  const url = new URL(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379')
  return { host: url.hostname, port: Number(url.port || 6379), maxRetriesPerRequest: null }
}

module.exports = { connectionFromEnv }
