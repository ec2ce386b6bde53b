//! The worker pool: a scheduler on threads corepool owns, JS-task slots, the timer and stats.

pub mod jstask;
pub mod scheduler;
pub mod stats;
pub mod timer;
