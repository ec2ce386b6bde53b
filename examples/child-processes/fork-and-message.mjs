// Fork a Node worker and talk to it over IPC; the worker exits when the channel closes.
//   node examples/child-processes/fork-and-message.mjs
import { fork } from '../../index.mjs'

const worker = fork(new URL('./worker.cjs', import.meta.url))
const pending = new Map()
let nextId = 1

function square(n) {
  const id = nextId++
  worker.send({ type: 'square', id, n })
  return new Promise((resolve) => pending.set(id, resolve))
}

worker.on('message', (message) => {
  if (message.type === 'ready') console.log(`worker ${message.pid} ready`)
  if (message.type === 'result') {
    pending.get(message.id)(message.value)
    pending.delete(message.id)
  }
})

const results = await Promise.all([1, 2, 3, 4, 5].map(square))
console.log('squares:', results.join(', '))
worker.send({ type: 'stop' })
const { code } = await worker.exited
console.log(`worker exited with code ${code}`)
