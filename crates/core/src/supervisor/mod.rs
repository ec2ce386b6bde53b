//! Supervised children: spawning without a shell from one long-lived thread, exit observation
//! through pidfds, process-tree kill and the no-orphans watchdog. Linux only. The restart logic
//! of `Supervisor` lives in `lib/supervisor.js`, the napi layer in the addon crate.

pub mod child;
pub mod helper;
mod reaper;
pub mod subreaper;
pub mod sys;
mod watchdog;
