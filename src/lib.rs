//! corepool: a native worker pool, shared-memory counters and supervised children for Node.js.

// This crate is #[napi] glue only, with no tests of its own (`test = false`; the logic and its
// unit tests are in crates/core). `cargo clippy --all-targets` still checks it under cfg(test),
// where napi-derive registers nothing and every export looks unused.
#![cfg_attr(test, allow(dead_code))]

mod buffers;
mod counters;
mod error;
mod kernels;
mod net;
mod pool;
mod supervisor;
use corepool_core::sync;
