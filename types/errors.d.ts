import type { ErrorCode } from './error-codes'

export type { ErrorCode } from './error-codes'

/**
 * Every corepool error: an `Error` with a stable `code` from the documented list.
 * `err instanceof CorepoolError` holds for errors created natively too. The other fields are
 * set by the APIs that document them.
 */
export class CorepoolError extends Error {
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown })
  code: ErrorCode
  /** `ERR_ABORTED`: `'AbortError'`. */
  name: string
  /** `ERR_CHILD_EXIT`: the child's exit status (`null` when a signal ended it). */
  exitCode?: number | null
  /** `ERR_CHILD_EXIT`, `ERR_CHILD_TIMEOUT`: the signal that ended the child, if any. */
  signal?: NodeJS.Signals | null
  /** `ERR_CHILD_EXIT`, `ERR_CHILD_TIMEOUT`, `ERR_OUTPUT_TOO_LARGE` from `exec`: the output captured. */
  stdout?: string | Buffer
  stderr?: string | Buffer
  /** `ERR_SPAWN`, `ERR_SYSTEM`: the negated OS error number, as in Node's system errors. */
  errno?: number
  /** `ERR_SPAWN`, `ERR_SYSTEM`: the system call that failed. */
  syscall?: string
  /** `ERR_SPAWN`: the command that could not be started, and its arguments. */
  path?: string
  spawnargs?: string[]
  /** `ERR_CHILD_TIMEOUT`: how long the child ran, in milliseconds. */
  durationMs?: number
  /** `ERR_SUPERVISOR_GAVE_UP`: the id of the child whose failures exhausted the intensity. */
  childId?: string
  /** `ERR_CLUSTER_RUNNING`: the running cluster's pid, port and name. */
  pid?: number
  port?: number
  clusterName?: string
}
