//! Pool statistics: settle counts, wait/run-time histograms, busy time and utilization.
//!
//! Two measures only grow, so that a caller can diff two snapshots for any recent window:
//! busy time (thread time spent running tasks, the running ones included) and a run-time
//! histogram with fixed buckets.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::scheduler::CancelReason;
use crate::counters::Counters;
use crate::sync::lock;

/// Counter names a pool adds to when its stats are mirrored into a shared region.
pub const COMPLETED_COUNTER: &str = "corepool_tasks_completed_total";
pub const FAILED_COUNTER: &str = "corepool_tasks_failed_total";
pub const CANCELLED_COUNTER: &str = "corepool_tasks_cancelled_total";

/// The slots of a shared counters region that mirror this pool's settle counts, so every
/// process of an app sees the totals; a name missing from the region is simply not mirrored.
pub struct Mirror {
    counters: Counters,
    completed: Option<usize>,
    failed: Option<usize>,
    cancelled: Option<usize>,
}

impl Mirror {
    pub fn new(counters: Counters) -> Self {
        Mirror {
            completed: counters.index(COMPLETED_COUNTER),
            failed: counters.index(FAILED_COUNTER),
            cancelled: counters.index(CANCELLED_COUNTER),
            counters,
        }
    }

    /// Whether the region has any of the pool's counters.
    pub fn is_empty(&self) -> bool {
        self.completed.is_none() && self.failed.is_none() && self.cancelled.is_none()
    }

    fn add(&self, slot: Option<usize>, n: u64) {
        if let Some(i) = slot {
            self.counters.add(i, n as i64);
        }
    }
}

/// Upper bounds, in nanoseconds, of the run-time histogram's buckets (10 µs to 60 s); a last
/// bucket, `+Inf`, follows.
pub const RUN_BUCKETS_NS: [u64; 21] = [
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    25_000_000,
    50_000_000,
    100_000_000,
    250_000_000,
    500_000_000,
    1_000_000_000,
    2_500_000_000,
    5_000_000_000,
    10_000_000_000,
    30_000_000_000,
    60_000_000_000,
];

/// Percentile summary of a duration histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

/// A consistent-enough copy of the counters at one moment.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StatsSnapshot {
    pub threads: usize,
    pub queued: usize,
    pub running: usize,
    pub completed: u64,
    pub failed: u64,
    pub aborted: u64,
    pub timed_out: u64,
    pub closed: u64,
    pub wait_time: Summary,
    pub run_time: Summary,
    /// Tasks by run time (start to end, not the wait): per bucket of [`RUN_BUCKETS_NS`], then
    /// `+Inf`; not cumulative. Only grows.
    pub run_buckets: Vec<u64>,
    /// Run time of the tasks counted in `run_buckets`, summed, in nanoseconds.
    pub run_sum_ns: u64,
    /// Thread time spent running tasks since the pool started, summed over threads, the tasks
    /// running now included, in nanoseconds. Never decreases.
    pub busy_ns: u64,
    /// Busy thread time over available thread time since the pool started, 0..=1.
    pub utilization: f64,
}

impl StatsSnapshot {
    /// Tasks that settled because they were cancelled (abort, timeout or pool destroyed).
    pub fn cancelled(&self) -> u64 {
        self.aborted + self.timed_out + self.closed
    }
}

struct Histograms {
    wait: Histogram<u64>,
    run: Histogram<u64>,
}

pub struct Stats {
    started: Instant,
    completed: AtomicU64,
    failed: AtomicU64,
    aborted: AtomicU64,
    timed_out: AtomicU64,
    closed: AtomicU64,
    /// Run time of the tasks that left their slots; the pool adds the running ones' (see
    /// [`Stats::snapshot`]).
    busy_ns: AtomicU64,
    run_buckets: [AtomicU64; RUN_BUCKETS_NS.len() + 1],
    run_sum_ns: AtomicU64,
    hist: Mutex<Histograms>,
    mirror: OnceLock<Mirror>,
}

fn new_histogram() -> Histogram<u64> {
    // Microsecond resolution, auto-resizing, 3 significant digits.
    let mut h = Histogram::new(3).expect("3 significant digits is a valid precision");
    h.auto(true);
    h
}

fn nanos(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

fn micros(d: Duration) -> u64 {
    (d.as_micros().min(u64::MAX as u128) as u64).max(1)
}

impl Default for Stats {
    fn default() -> Self {
        Self::new()
    }
}

impl Stats {
    pub fn new() -> Self {
        Stats {
            started: Instant::now(),
            completed: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            aborted: AtomicU64::new(0),
            timed_out: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            run_buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            run_sum_ns: AtomicU64::new(0),
            hist: Mutex::new(Histograms {
                wait: new_histogram(),
                run: new_histogram(),
            }),
            mirror: OnceLock::new(),
        }
    }

    /// A job ran on a slot for `run` after waiting `wait` in the queue.
    pub fn ran(&self, wait: Duration, run: Duration) {
        let ns = nanos(run);
        let bucket = RUN_BUCKETS_NS.partition_point(|&le| le < ns);
        self.run_buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.run_sum_ns.fetch_add(ns, Ordering::Relaxed);
        let mut h = lock(&self.hist);
        // Auto-resizing histograms only fail to record on overflow of u64 counts.
        let _ = h.wait.record(micros(wait));
        let _ = h.run.record(micros(run));
    }

    /// A task that started at `started` left its slot: its run time becomes busy time. Called
    /// under the pool's state lock, the lock [`Stats::snapshot`]'s caller reads the running
    /// tasks under, so busy time moves from "running" to "done" without a reader seeing it
    /// twice or not at all.
    pub fn vacated(&self, started: Instant) {
        self.busy_ns
            .fetch_add(nanos(started.elapsed()), Ordering::Relaxed);
    }

    /// Busy time of the tasks that left their slots (read under the pool's state lock).
    pub fn vacated_ns(&self) -> u64 {
        self.busy_ns.load(Ordering::Relaxed)
    }

    /// Mirrors settle counts into a shared region from now on; only the first call counts.
    pub fn mirror_to(&self, mirror: Mirror) -> bool {
        self.mirror.set(mirror).is_ok()
    }

    pub fn settled_ok(&self, ok: bool) {
        let counter = if ok { &self.completed } else { &self.failed };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = self.mirror.get() {
            m.add(if ok { m.completed } else { m.failed }, 1);
        }
    }

    pub fn cancelled(&self, reason: CancelReason, n: u64) {
        let counter = match reason {
            CancelReason::Aborted => &self.aborted,
            CancelReason::TimedOut => &self.timed_out,
            CancelReason::Closed => &self.closed,
        };
        counter.fetch_add(n, Ordering::Relaxed);
        if let Some(m) = self.mirror.get() {
            m.add(m.cancelled, n);
        }
    }

    /// The counters now; `busy_ns` is [`Stats::vacated_ns`] plus the running tasks' time so
    /// far, both read under the pool's state lock.
    pub fn snapshot(
        &self,
        threads: usize,
        queued: usize,
        running: usize,
        busy_ns: u64,
    ) -> StatsSnapshot {
        let h = lock(&self.hist);
        let elapsed = self.started.elapsed().as_nanos() as f64 * threads as f64;
        let busy = busy_ns as f64;
        StatsSnapshot {
            threads,
            queued,
            running,
            completed: self.completed.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            aborted: self.aborted.load(Ordering::Relaxed),
            timed_out: self.timed_out.load(Ordering::Relaxed),
            closed: self.closed.load(Ordering::Relaxed),
            wait_time: summarize(&h.wait),
            run_time: summarize(&h.run),
            run_buckets: self
                .run_buckets
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            run_sum_ns: self.run_sum_ns.load(Ordering::Relaxed),
            busy_ns,
            utilization: if elapsed > 0.0 {
                (busy / elapsed).min(1.0)
            } else {
                0.0
            },
        }
    }
}

fn summarize(h: &Histogram<u64>) -> Summary {
    if h.is_empty() {
        return Summary::default();
    }
    let ms = |us: u64| us as f64 / 1000.0;
    Summary {
        count: h.len(),
        min: ms(h.min()),
        max: ms(h.max()),
        mean: h.mean() / 1000.0,
        p50: ms(h.value_at_quantile(0.5)),
        p90: ms(h.value_at_quantile(0.9)),
        p99: ms(h.value_at_quantile(0.99)),
    }
}
