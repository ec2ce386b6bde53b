//! corepool: a native worker pool, shared-memory counters and supervised children for Node.js.

mod error;
mod kernels;
mod pool;
mod supervisor;
