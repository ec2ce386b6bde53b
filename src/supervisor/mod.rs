//! Supervised children: the napi binding over `corepool_core::supervisor`.
//! Linux only: elsewhere the module is empty and `lib/children.js` reports ERR_SPAWN.
#![cfg(target_os = "linux")]
// Under `cargo test` napi does not register the exported functions, so the binding and what only
// it uses look unused.
#![cfg_attr(test, allow(dead_code))]

pub mod binding;
pub use corepool_core::supervisor::*;
