import type { TaskOptions } from './types/pool'

/** A native task that panics: rejects with `ERR_TASK_PANICKED` (for tests of error handling). */
export function panic(options?: TaskOptions): Promise<never>
/** A native task that holds a pool thread for `ms` milliseconds, waking early when cancelled. */
export function sleep(ms: number, options?: TaskOptions): Promise<void>
