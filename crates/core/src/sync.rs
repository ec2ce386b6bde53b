//! Small synchronisation helpers shared by every module.

use std::sync::{Mutex, MutexGuard};

/// Locks a mutex, ignoring poisoning: corepool's critical sections leave their data consistent
/// before anything that could panic, and a panic in a job must not wedge the pool, a counter
/// region or the child reaper afterwards.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
