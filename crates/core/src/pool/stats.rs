//! Pool statistics: settle counts, wait/run-time histograms and utilization.

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
    busy_ns: AtomicU64,
    hist: Mutex<Histograms>,
    mirror: OnceLock<Mirror>,
}

fn new_histogram() -> Histogram<u64> {
    // Microsecond resolution, auto-resizing, 3 significant digits.
    let mut h = Histogram::new(3).expect("3 significant digits is a valid precision");
    h.auto(true);
    h
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
            hist: Mutex::new(Histograms {
                wait: new_histogram(),
                run: new_histogram(),
            }),
            mirror: OnceLock::new(),
        }
    }

    /// A job ran on a slot for `run` after waiting `wait` in the queue.
    pub fn ran(&self, wait: Duration, run: Duration) {
        self.busy_ns.fetch_add(
            run.as_nanos().min(u64::MAX as u128) as u64,
            Ordering::Relaxed,
        );
        let mut h = lock(&self.hist);
        // Auto-resizing histograms only fail to record on overflow of u64 counts.
        let _ = h.wait.record(micros(wait));
        let _ = h.run.record(micros(run));
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

    pub fn snapshot(&self, threads: usize, queued: usize, running: usize) -> StatsSnapshot {
        let h = lock(&self.hist);
        let elapsed = self.started.elapsed().as_nanos() as f64 * threads as f64;
        let busy = self.busy_ns.load(Ordering::Relaxed) as f64;
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
