// Calls the declarations must refuse (each line below the marker must be a type error, or tsc
// fails with "Unused '@ts-expect-error' directive"), next to the forms they must accept.
import { Hasher, exec, Pool, Supervisor, sqrtSum, CorepoolError, type ErrorCode } from 'corepool'

// @ts-expect-error the algorithm is required (the runtime throws ERR_INVALID_ARG)
new Hasher()
new Hasher('sha256')
// @ts-expect-error not an algorithm corepool has
new Hasher('sha3')

await exec('true', { timeout: 1000 })
await exec('true', ['-x'], { timeout: 1000 })
// @ts-expect-error arguments are strings
await exec('true', [1])

// @ts-expect-error sqrtSum takes a number
await sqrtSum('10')
// @ts-expect-error unknown option
new Pool({ thread: 2 })

const sup = new Supervisor()
sup.add({ id: 'a', module: './a.js', ready: { message: (m: unknown) => m === 'ready' } })
sup.add({ id: 'b', module: './b.js', ready: { message: { ready: true } } })

function codeOf(err: unknown): ErrorCode | undefined {
  return err instanceof CorepoolError ? err.code : undefined
}
// @ts-expect-error not a documented code
const wrong: ErrorCode = 'ERR_NOPE'
const fields = (err: CorepoolError) => [
  err.exitCode,
  err.signal,
  err.stdout,
  err.stderr,
  err.errno,
  err.syscall,
  err.path,
  err.spawnargs,
]
void [codeOf, wrong, fields]
