import type { TaskOptions } from './types/pool'

/** A native task that panics: rejects with `ERR_TASK_PANICKED` (for tests of error handling). */
export function panic(options?: TaskOptions): Promise<never>
/** A native task that holds a pool thread for `ms` milliseconds, waking early when cancelled. */
export function sleep(ms: number, options?: TaskOptions): Promise<void>
import type { SharedCounters } from './types/counters'

/** Rust threads add 1 to counter `name` `iterations` times each (default 4 threads × 1e6) through the Rust-side counters API; resolves `true` when done. */
export function hammerCounter(
  counters: SharedCounters,
  name: string,
  options?: { threads?: number; iterations?: number },
): Promise<boolean>
