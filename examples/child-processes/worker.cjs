// The forked side: ordinary Node IPC (process.on('message') / process.send), nothing corepool-specific.
process.on('message', (message) => {
  if (message.type === 'square') {
    process.send({ type: 'result', id: message.id, value: message.n * message.n })
  } else if (message.type === 'stop') {
    process.disconnect()
  }
})
process.send({ type: 'ready', pid: process.pid })
