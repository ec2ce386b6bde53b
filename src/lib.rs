//! corepool: a native worker pool, shared-memory counters and supervised children for Node.js.

mod buffers;
mod counters;
mod error;
mod kernels;
mod net;
mod pool;
mod supervisor;
mod values;
use corepool_core::sync;
