//! Supervised children: the napi binding over `corepool_core::supervisor`.
//! Linux only: elsewhere the module is empty and `lib/children.js` reports ERR_SPAWN.
#![cfg(target_os = "linux")]

pub mod binding;
pub use corepool_core::supervisor::*;
