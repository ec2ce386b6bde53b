//! Supervised children: spawning without a shell from one long-lived thread, exit observation
//! through pidfds, process-tree kill and the no-orphans watchdog. No napi types here except in
//! `binding.rs`; the restart logic of `Supervisor` lives in `lib/supervisor.js`.

pub mod binding;
pub mod child;
mod reaper;
mod sys;
mod watchdog;
