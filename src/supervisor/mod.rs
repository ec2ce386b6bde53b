//! Supervised children: spawning without a shell from one long-lived thread, exit observation
//! through pidfds, process-tree kill and the no-orphans watchdog. No napi types here except in
//! `binding.rs`; the restart logic of `Supervisor` lives in `lib/supervisor.js`.
//! Linux only: elsewhere the module is empty and `lib/children.js` reports ERR_SPAWN.
#![cfg(target_os = "linux")]
// Under `cargo test` napi does not register the exported functions, so the binding and what only
// it uses look unused.
#![cfg_attr(test, allow(dead_code))]

pub mod binding;
pub mod child;
mod reaper;
mod sys;
mod watchdog;
