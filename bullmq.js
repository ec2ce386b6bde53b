'use strict'
// corepool/bullmq: BullMQ workers whose jobs run on a corepool Pool (see docs/bullmq.md).
module.exports = require('./lib/bullmq')
