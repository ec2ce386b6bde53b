//! The kernels' #[napi] entry points, one file per family: argument conversion, submit, result
//! conversion. The compute is `corepool_core::kernels`.

// Under `cargo test` napi does not register the exported functions, so the entry points (the
// only things here) look unused.
#![cfg_attr(test, allow(dead_code))]

mod compress;
mod hash;
mod image;
mod numeric;
mod password;
mod testing;
