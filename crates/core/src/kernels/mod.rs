//! The native kernels' compute, one file per family. Each runs as a pool task: it takes its
//! input and a [`TaskCtx`](crate::pool::scheduler::TaskCtx) and checks for cancellation between
//! chunks of work.

pub mod compress;
pub mod hash;
pub mod image;
pub mod numeric;
pub mod password;
