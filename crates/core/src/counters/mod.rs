//! Shared-memory atomic counters: a region (anonymous, or named in /dev/shm) of cache-line
//! padded 64-bit slots, shared by JS threads, Rust threads and other processes.
//!
//! [`layout`] is the byte format, [`region`] maps regions and implements the atomic operations
//! and native waiting, [`Counters`] is the Rust-side API other modules (pool, supervisor) use,
//! the Rust-side API other modules (pool, supervisor) use. The napi layer lives in the addon crate.

pub mod layout;
pub mod region;

use std::sync::Arc;

pub use region::{Region, RegionError, View};

/// Rust-side handle on a counters region, for pool tasks, the supervisor and tests: cheap atomic
/// operations by slot index, visible at once to every JS thread and process using the region.
///
/// Each `Counters` owns its own mapping; clone the [`Arc<Region>`] to make more.
pub struct Counters {
    view: View,
}

impl Counters {
    /// A new mapping of `region`.
    pub fn new(region: &Arc<Region>) -> Result<Counters, RegionError> {
        Ok(Counters {
            view: region.view()?,
        })
    }

    /// The slot index of the counter called `name`.
    pub fn index(&self, name: &str) -> Option<usize> {
        self.view.layout().index_of(name)
    }

    /// Adds `n` (negative for gauges) and returns the previous value. Panics if `index` is out
    /// of range.
    pub fn add(&self, index: usize, n: i64) -> i64 {
        self.view.add(index, n)
    }

    /// Adds one.
    pub fn inc(&self, index: usize) -> i64 {
        self.view.add(index, 1)
    }

    pub fn get(&self, index: usize) -> i64 {
        self.view.get(index)
    }

    /// Stores `v` (gauges) and returns the previous value.
    pub fn set(&self, index: usize, v: i64) -> i64 {
        self.view.set(index, v)
    }

    pub fn compare_exchange(&self, index: usize, expected: i64, new: i64) -> i64 {
        self.view.compare_exchange(index, expected, new)
    }

    /// Records `v` in histogram `index`. Panics if `index` is not a histogram.
    pub fn observe(&self, index: usize, v: f64) {
        self.view.observe(index, v)
    }

    pub fn len(&self) -> usize {
        self.view.len()
    }

    pub fn is_empty(&self) -> bool {
        self.view.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::layout::{Kind, SlotSpec};
    use super::*;

    #[test]
    fn rust_side_api_updates_what_other_mappings_see() {
        let specs = ["tasks_total", "busy"]
            .iter()
            .map(|n| SlotSpec::new(*n, Kind::Counter))
            .collect();
        let region = Region::anonymous(specs).unwrap();
        let pool_side = Counters::new(&region).unwrap();
        let js_side = region.view().unwrap();
        let tasks = pool_side.index("tasks_total").unwrap();
        let busy = pool_side.index("busy").unwrap();
        assert_eq!(pool_side.index("nope"), None);
        assert_eq!(pool_side.len(), 2);
        assert!(!pool_side.is_empty());
        pool_side.inc(tasks);
        pool_side.add(tasks, 2);
        pool_side.set(busy, 4);
        pool_side.add(busy, -1);
        assert_eq!(js_side.get(tasks), 3);
        assert_eq!(js_side.get(busy), 3);
        assert_eq!(pool_side.compare_exchange(busy, 3, 0), 3);
        assert_eq!(pool_side.get(busy), 0);
    }
}
