//! The worker pool: a scheduler on threads corepool owns, and its napi binding.

pub mod binding;
pub mod jstask;
pub mod moved;
pub mod scheduler;
mod stats;
mod timer;
