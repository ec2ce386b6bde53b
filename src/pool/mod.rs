//! The worker pool's napi binding; the scheduler itself is `corepool_core::pool`.

pub mod binding;
pub mod moved;
mod wake;
pub use corepool_core::pool::*;
