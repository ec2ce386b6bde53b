//! What `pool.stats` returns: the core's stats snapshot as typed JS objects, and the names of
//! the counters a pool mirrors its totals into.

use napi_derive::napi;

use super::stats::{
    StatsSnapshot, Summary, CANCELLED_COUNTER, COMPLETED_COUNTER, FAILED_COUNTER, RUN_BUCKETS_NS,
};

/// Percentiles of a duration histogram, in milliseconds.
#[napi(object)]
pub struct TimeSummary {
    pub count: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
}

impl From<Summary> for TimeSummary {
    fn from(s: Summary) -> Self {
        TimeSummary {
            count: s.count as f64,
            min: s.min,
            max: s.max,
            mean: s.mean,
            p50: s.p50,
            p90: s.p90,
            p99: s.p99,
        }
    }
}

/// One bucket of a cumulative histogram: the tasks that ran at most `le` ms.
#[napi(object)]
pub struct HistogramBucket {
    pub le: f64,
    pub count: f64,
}

/// Run times in fixed buckets (cumulative counts, `Infinity` last), their sum (ms) and count.
#[napi(object)]
pub struct RunTimeHistogram {
    pub buckets: Vec<HistogramBucket>,
    pub sum: f64,
    pub count: f64,
}

fn run_time_histogram(counts: &[u64], sum_ns: u64) -> RunTimeHistogram {
    let mut total = 0u64;
    let buckets = counts
        .iter()
        .enumerate()
        .map(|(i, &n)| {
            total += n;
            HistogramBucket {
                le: RUN_BUCKETS_NS
                    .get(i)
                    .map_or(f64::INFINITY, |&ns| ns as f64 / 1e6),
                count: total as f64,
            }
        })
        .collect();
    RunTimeHistogram {
        buckets,
        sum: sum_ns as f64 / 1e6,
        count: total as f64,
    }
}

/// A snapshot of a pool's counters.
#[napi(object)]
pub struct PoolStats {
    pub threads: u32,
    pub queued: u32,
    pub running: u32,
    pub completed: f64,
    pub failed: f64,
    pub cancelled: f64,
    pub aborted: f64,
    pub timed_out: f64,
    pub wait_time: TimeSummary,
    pub run_time: TimeSummary,
    /// Run time only (not queue time) in fixed buckets; only grows.
    pub run_time_histogram: RunTimeHistogram,
    /// Thread time spent running tasks, ms, summed over threads, running tasks included.
    pub busy_time: f64,
    pub utilization: f64,
}

impl From<StatsSnapshot> for PoolStats {
    fn from(s: StatsSnapshot) -> Self {
        PoolStats {
            threads: s.threads as u32,
            queued: s.queued as u32,
            running: s.running as u32,
            completed: s.completed as f64,
            failed: s.failed as f64,
            cancelled: s.cancelled() as f64,
            aborted: s.aborted as f64,
            timed_out: s.timed_out as f64,
            wait_time: s.wait_time.into(),
            run_time: s.run_time.into(),
            run_time_histogram: run_time_histogram(&s.run_buckets, s.run_sum_ns),
            busy_time: s.busy_ns as f64 / 1e6,
            utilization: s.utilization,
        }
    }
}

/// The stats of a pool of `threads` threads that has run nothing (`pool.stats` before the
/// threads start): the same shape and histogram buckets as [`NativePool::stats`].
#[napi(js_name = "emptyPoolStats")]
pub fn empty_pool_stats(threads: u32) -> PoolStats {
    StatsSnapshot {
        threads: threads as usize,
        run_buckets: vec![0; RUN_BUCKETS_NS.len() + 1],
        ..StatsSnapshot::default()
    }
    .into()
}

/// The names of the counters a pool adds its completed, failed and cancelled counts to in a
/// shared region (`Pool` option `counters`).
#[napi(js_name = "poolStatsCounters")]
pub fn pool_stats_counters() -> Vec<String> {
    [COMPLETED_COUNTER, FAILED_COUNTER, CANCELLED_COUNTER]
        .map(String::from)
        .to_vec()
}
