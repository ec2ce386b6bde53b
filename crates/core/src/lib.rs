//! corepool's core: the scheduler, JS-task slots, timer and stats of the worker pool, the
//! shared-memory counter region, the child spawner, reaper and watchdog, and the kernels'
//! compute (hashes, codecs, argon2, numeric, image). Nothing here knows
//! Node: the addon crate (the repository root) is a thin napi layer over these modules, and
//! `cargo test -p corepool-core` runs without Node.

pub mod buffers;
pub mod counters;
pub mod error;
pub mod kernels;
pub mod net;
pub mod pool;
#[cfg(target_os = "linux")]
pub mod supervisor;
pub mod sync;
