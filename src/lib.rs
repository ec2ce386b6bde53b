//! corepool: a native worker pool, shared-memory counters and supervised children for Node.js.

mod counters;
mod error;
mod kernels;
mod net;
mod pool;
// napi registration is not compiled into unit-test builds, so code reached only from JS looks
// unused there; the library build still checks it.
#[cfg_attr(test, allow(dead_code))]
mod supervisor;
