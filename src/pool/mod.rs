//! The worker pool's napi binding; the scheduler itself is `corepool_core::pool`. `binding`:
//! `NativePool`, promises and their settlement, the one `submit_task`; `workers`: the JS-task
//! bindings; `report`: `pool.stats`; `moved`: transferred buffers.

pub mod binding;
pub mod moved;
pub mod report;
mod wake;
pub mod workers;
pub use corepool_core::pool::*;
