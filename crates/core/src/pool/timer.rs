//! One process-wide timer thread for task deadlines.
//!
//! Timeouts must fire while the JS thread is busy and while a native job is running, so they
//! cannot live on the event loop. A single lazily started thread serves every pool; an entry is
//! removed when its task settles first, so the map only holds live deadlines.

use crate::sync::lock;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// A duration that JS gave in milliseconds: `None` means no limit — `Infinity`, or more than a
/// `Duration` holds (about 5.8e11 years). Non-positive values and NaN are refused by the JS
/// layer; here they mean zero, never a panic.
pub fn millis(ms: f64) -> Option<Duration> {
    if ms.is_nan() || ms <= 0.0 {
        return Some(Duration::ZERO);
    }
    Duration::try_from_secs_f64(ms / 1000.0).ok()
}

/// The instant `after` from now, or `None` when that lies past what an `Instant` can hold (a
/// limit so far away it never comes).
pub fn deadline(after: Duration) -> Option<Instant> {
    Instant::now().checked_add(after)
}

type Callback = Box<dyn FnOnce() + Send>;

/// Identifies a scheduled callback so it can be cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TimerKey(Instant, u64);

pub struct Timer {
    entries: Mutex<BTreeMap<TimerKey, Callback>>,
    changed: Condvar,
    seq: AtomicU64,
}

impl Timer {
    /// The shared timer; its thread starts on first use and sleeps while nothing is scheduled.
    pub fn global() -> &'static Timer {
        static TIMER: OnceLock<&'static Timer> = OnceLock::new();
        TIMER.get_or_init(|| {
            let timer: &'static Timer = Box::leak(Box::new(Timer {
                entries: Mutex::new(BTreeMap::new()),
                changed: Condvar::new(),
                seq: AtomicU64::new(0),
            }));
            thread::Builder::new()
                .name("corepool-timer".into())
                .spawn(move || timer.run())
                .expect("cannot start the corepool timer thread");
            timer
        })
    }

    /// Runs `callback` on the timer thread at `deadline` unless cancelled first.
    pub fn schedule(&self, deadline: Instant, callback: Callback) -> TimerKey {
        let key = TimerKey(deadline, self.seq.fetch_add(1, Ordering::Relaxed));
        let mut entries = lock(&self.entries);
        let earliest = entries.keys().next().is_none_or(|first| key < *first);
        entries.insert(key, callback);
        drop(entries);
        if earliest {
            self.changed.notify_one();
        }
        key
    }

    /// Drops a pending callback; returns false when it already ran or was cancelled.
    pub fn cancel(&self, key: TimerKey) -> bool {
        lock(&self.entries).remove(&key).is_some()
    }

    fn run(&self) {
        let mut entries = lock(&self.entries);
        loop {
            let now = Instant::now();
            match entries.keys().next().copied() {
                Some(key) if key.0 <= now => {
                    let callback = entries.remove(&key);
                    drop(entries);
                    if let Some(callback) = callback {
                        // A callback must never take the timer down with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback));
                    }
                    entries = lock(&self.entries);
                }
                Some(key) => {
                    entries = self
                        .changed
                        .wait_timeout(entries, key.0 - now)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
                None => {
                    entries = self
                        .changed
                        .wait(entries)
                        .unwrap_or_else(|e| e.into_inner());
                }
            }
        }
    }
}

/// A timer without a thread, fired by hand: the scheduler's model tests stand in for the timer
/// thread with it.
#[cfg(all(test, feature = "loom"))]
impl Timer {
    pub(crate) fn manual() -> std::sync::Arc<Timer> {
        std::sync::Arc::new(Timer {
            entries: Mutex::new(BTreeMap::new()),
            changed: Condvar::new(),
            seq: AtomicU64::new(0),
        })
    }

    /// Runs every scheduled callback now, as if each deadline had come.
    pub(crate) fn fire_all(&self) {
        let entries = std::mem::take(&mut *lock(&self.entries));
        for callback in entries.into_values() {
            callback();
        }
    }

    /// How many callbacks are scheduled.
    pub(crate) fn pending(&self) -> usize {
        lock(&self.entries).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn millis_from_js_never_panics() {
        assert_eq!(millis(1.5), Some(Duration::from_micros(1500)));
        assert_eq!(millis(0.0), Some(Duration::ZERO));
        assert_eq!(millis(-1.0), Some(Duration::ZERO));
        assert_eq!(millis(f64::NAN), Some(Duration::ZERO));
        assert!(millis(1e22).is_some()); // 3e11 years still fits in a Duration
        assert_eq!(millis(1e300), None);
        assert_eq!(millis(f64::INFINITY), None);
        assert_eq!(deadline(Duration::MAX), None);
        assert_eq!(deadline(millis(1e22).unwrap()), None);
        assert!(deadline(Duration::from_secs(1)).is_some());
    }

    #[test]
    fn fires_in_deadline_order_and_cancel_prevents_firing() {
        let timer = Timer::global();
        let (tx, rx) = mpsc::channel();
        let now = Instant::now();
        let tx2 = tx.clone();
        let tx3 = tx.clone();
        timer.schedule(
            now + Duration::from_millis(40),
            Box::new(move || tx.send(2).unwrap()),
        );
        timer.schedule(
            now + Duration::from_millis(10),
            Box::new(move || tx2.send(1).unwrap()),
        );
        let k = timer.schedule(
            now + Duration::from_millis(20),
            Box::new(move || tx3.send(3).unwrap()),
        );
        assert!(timer.cancel(k));
        assert!(!timer.cancel(k));
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 1);
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), 2);
        assert!(now.elapsed() >= Duration::from_millis(40));
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }
}
