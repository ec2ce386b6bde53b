//! Shared-memory atomic counters: the napi binding over `corepool_core::counters`.

pub mod binding;
pub use corepool_core::counters::*;
