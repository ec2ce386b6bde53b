//! Model checks of the scheduler's races with loom: every interleaving of the pool threads, a
//! canceller, the timer and the submitting thread, up to a bound on preemptions
//! (`LOOM_MAX_PREEMPTIONS`, default 2). Run with
//! `cargo test -p corepool-core --release --features loom --lib loom`.
//!
//! A model whose thread blocks for good (a lost wake-up, a pool thread that never exits) fails
//! as a deadlock; a task settled twice or never fails the assertions. The timer is a
//! [`Timer::manual`] that a model thread fires; the pool threads never spin (see `spin_time`).

use super::*;
use crate::sync::thread;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::atomic::{AtomicBool as StdAtomicBool, AtomicUsize as StdAtomicUsize};

type Outcome = Result<u64, TaskError>;
type Lendable = u64;
type ModelPool = Pool<u64, u64, Lendable>;

/// What the pool handed to its sink.
#[derive(Default)]
struct Seen {
    delivered: Vec<(u64, Outcome)>,
    stopped: bool,
}

#[derive(Default)]
struct ModelSink {
    seen: Mutex<Seen>,
    changed: Condvar,
}

impl Sink<u64, u64> for ModelSink {
    fn deliver(&self, ticket: u64, outcome: Outcome) {
        lock(&self.seen).delivered.push((ticket, outcome));
        self.changed.notify_all();
    }
    fn stopped(&self) {
        lock(&self.seen).stopped = true;
        self.changed.notify_all();
    }
}

impl ModelSink {
    /// Blocks until `done` holds (a model in which it never does deadlocks).
    fn wait_until(&self, done: impl Fn(&Seen) -> bool) {
        let mut seen = lock(&self.seen);
        while !done(&seen) {
            seen = self.changed.wait(seen).unwrap_or_else(|e| e.into_inner());
        }
    }

    fn delivered(&self, ticket: u64) -> Vec<Outcome> {
        lock(&self.seen)
            .delivered
            .iter()
            .filter(|(t, _)| *t == ticket)
            .map(|(_, o)| o.clone())
            .collect()
    }
}

/// Runs lendable work the way the JS-task slots do: settles each task through the lease and
/// asks for the next lendable one in the same call.
#[derive(Default)]
struct ModelLender {
    /// Slots whose running task was cancelled.
    cancelled: std::sync::Mutex<Vec<usize>>,
}

impl Lender<u64, Lendable> for ModelLender {
    fn serve(&self, lease: Arc<dyn Lease<u64, Lendable>>, seq: u64, job: Lendable) {
        let (mut seq, mut job) = (seq, job);
        loop {
            let outcome = match lease.cancelled(seq) {
                Some(reason) => Err(TaskError::Cancelled(reason)),
                None => Ok(job),
            };
            match lease.finish(seq, outcome, false, true) {
                Some((next, next_job)) => (seq, job) = (next, next_job),
                None => return,
            }
        }
    }
    fn cancelled(&self, slot: usize) {
        crate::sync::lock(&self.cancelled).push(slot);
    }
}

struct Model {
    pool: Arc<ModelPool>,
    sink: Arc<ModelSink>,
    timer: Arc<Timer>,
    lender: Arc<ModelLender>,
}

fn model_pool(threads: usize) -> Model {
    let sink = Arc::new(ModelSink::default());
    let timer = Timer::manual();
    let lender = Arc::new(ModelLender::default());
    let pool = ModelPool::with_timer(
        PoolOptions {
            threads,
            max_queue: None,
            nice: 0,
        },
        sink.clone(),
        Some(lender.clone()),
        Some(timer.clone()),
    )
    .expect("model threads start");
    Model {
        pool: Arc::new(pool),
        sink,
        timer,
        lender,
    }
}

impl Model {
    /// Closes the pool and waits until its threads exited.
    fn close_and_wait(&self) {
        self.pool.close();
        self.sink.wait_until(|s| s.stopped);
    }

    /// Tasks settled twice would show here; so would tasks queued or running after the end.
    fn assert_drained(&self, tasks: u64) {
        let s = self.pool.stats();
        assert_eq!((s.queued, s.running), (0, 0), "{s:?}");
        assert_eq!(s.completed + s.failed + s.cancelled(), tasks, "{s:?}");
        assert_eq!(self.timer.pending(), 0, "a deadline outlived its task");
    }
}

fn check(f: impl Fn() + Sync + Send + 'static) {
    let mut builder = loom::model::Builder::new();
    if builder.preemption_bound.is_none() {
        builder.preemption_bound = Some(2);
    }
    let runs = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = runs.clone();
    builder.check(move || {
        counted.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        f()
    });
    // Shown with --nocapture: how many interleavings the model explored.
    eprintln!(
        "{} interleavings",
        runs.load(std::sync::atomic::Ordering::Relaxed)
    );
}

/// A job that returns `v` and records that it ran.
fn job(v: u64, ran: &Arc<StdAtomicBool>) -> Work<u64, Lendable> {
    let ran = Arc::clone(ran);
    Work::Run(Box::new(move |_| {
        ran.store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(v)
    }))
}

const NO_TIMEOUT: SubmitOptions = SubmitOptions {
    priority: 0.0,
    timeout: None,
};

const WITH_TIMEOUT: SubmitOptions = SubmitOptions {
    priority: 0.0,
    timeout: Some(Duration::from_secs(3600)),
};

/// Completion, an abort and the timeout race for one task: exactly one of them settles it,
/// with its own outcome, and the deadline does not outlive the task.
#[test]
fn loom_settles_once_when_completion_abort_and_timeout_race() {
    check(|| {
        let m = model_pool(1);
        let ran = Arc::new(StdAtomicBool::new(false));
        let h = m.pool.submit(job(7, &ran), WITH_TIMEOUT, 1).unwrap();
        let aborter = {
            let (pool, h) = (m.pool.clone(), h.clone());
            thread::spawn(move || pool.cancel(&h, CancelReason::Aborted))
        };
        let timer = {
            let timer = m.timer.clone();
            thread::spawn(move || timer.fire_all())
        };
        let aborted = aborter.join().unwrap();
        timer.join().unwrap();
        m.close_and_wait();

        let delivered = m.sink.delivered(1);
        match aborted {
            Some(ticket) => {
                assert_eq!(ticket, 1);
                assert!(delivered.is_empty(), "aborted and delivered: {delivered:?}");
            }
            None => assert!(
                delivered == [Ok(7)]
                    || delivered == [Err(TaskError::Cancelled(CancelReason::TimedOut))],
                "{delivered:?}"
            ),
        }
        m.assert_drained(1);
    });
}

/// A cancel of a queued task races the pool thread that pops it: one settle, and a task the
/// cancel settled either never runs or runs with its cancel flag set. The task has a deadline
/// that never fires here: it must not outlive the task, even when the task settles before
/// `submit` stored the deadline's key.
#[test]
fn loom_cancel_of_a_queued_task_races_the_pool_thread_pulling_it() {
    check(|| {
        let m = model_pool(1);
        let ran = Arc::new(StdAtomicBool::new(false));
        let h = m.pool.submit(job(3, &ran), WITH_TIMEOUT, 1).unwrap();
        let aborted = m.pool.cancel(&h, CancelReason::Aborted);
        m.close_and_wait();

        let delivered = m.sink.delivered(1);
        if aborted.is_some() {
            assert!(delivered.is_empty(), "{delivered:?}");
            if ran.load(std::sync::atomic::Ordering::SeqCst) {
                assert_eq!(h.ctx.cancelled(), Some(CancelReason::Aborted));
            }
        } else {
            assert_eq!(delivered, [Ok(3)]);
        }
        m.assert_drained(1);
    });
}

/// The same race for lendable work, which a lent slot pulls straight after finishing the task
/// before it (`Lease::finish` with `pull`) or the pool thread takes after the lender returns:
/// one settle, and the lender hears about a cancel of the task it runs.
#[test]
fn loom_cancel_of_lendable_work_races_a_lent_slot_pulling_it() {
    check(|| {
        let m = model_pool(1);
        m.pool.submit(Work::Lend(1), NO_TIMEOUT, 1).unwrap();
        let h = m.pool.submit(Work::Lend(2), NO_TIMEOUT, 2).unwrap();
        let aborter = {
            let (pool, h) = (m.pool.clone(), h.clone());
            thread::spawn(move || pool.cancel(&h, CancelReason::Aborted))
        };
        let aborted = aborter.join().unwrap();
        m.close_and_wait();

        assert_eq!(m.sink.delivered(1), [Ok(1)]);
        let delivered = m.sink.delivered(2);
        match aborted {
            Some(_) => assert!(delivered.is_empty(), "{delivered:?}"),
            None => assert_eq!(delivered, [Ok(2)]),
        }
        // Cancelled while running (its flag set): the lender heard which slot; while queued:
        // nothing to tell.
        let told = crate::sync::lock(&m.lender.cancelled).clone();
        match h.ctx.cancelled() {
            Some(_) => assert_eq!(told, [0]),
            None => assert!(told.is_empty(), "{told:?}"),
        }
        m.assert_drained(2);
    });
}

/// `close()` and `destroy()` race a submit and the pool thread pulling: a submit is either
/// refused (ticket back) or its task settles once — run to the end by `close()`, run or
/// settled `Closed` by `destroy()` — and every pool thread exits.
#[test]
fn loom_shutdown_races_submit_and_pull() {
    for destroy in [false, true] {
        check(move || {
            let m = model_pool(1);
            let ran = Arc::new(StdAtomicBool::new(false));
            m.pool.submit(job(1, &ran), NO_TIMEOUT, 1).unwrap();
            let submitter = {
                let (pool, ran) = (m.pool.clone(), ran.clone());
                thread::spawn(move || pool.submit(job(2, &ran), NO_TIMEOUT, 2).map(|_| ()))
            };
            let closed = if destroy {
                m.pool.destroy()
            } else {
                m.pool.close();
                Vec::new()
            };
            let submitted = submitter.join().unwrap();
            m.sink.wait_until(|s| s.stopped);

            let mut accepted = 1;
            match submitted {
                Ok(()) => accepted += 1,
                Err((why, ticket)) => {
                    assert_eq!((why, ticket), (SubmitError::Closed, 2));
                }
            }
            for ticket in 1..=accepted {
                let delivered = m.sink.delivered(ticket);
                let by_destroy = closed.iter().filter(|t| **t == ticket).count();
                if destroy {
                    assert!(
                        (delivered == [Ok(ticket)] && by_destroy == 0)
                            || (delivered.is_empty() && by_destroy == 1),
                        "task {ticket}: {delivered:?}, {by_destroy}"
                    );
                } else {
                    assert_eq!(delivered, [Ok(ticket)], "task {ticket}");
                }
            }
            m.assert_drained(accepted);
        });
    }
}

/// The wake rule: a task queued while a thread sits idle reaches it. Task 1 waits until task 2
/// has run, so both pool threads must be running at once; a submit that leaves the second
/// thread asleep (or a thread that goes to sleep past a submit) deadlocks the model.
#[test]
fn loom_a_queued_task_wakes_an_idle_thread() {
    check(|| {
        let m = model_pool(2);
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let waiter = gate.clone();
        let first = Work::Run(Box::new(move |_: &TaskCtx| {
            let (open, changed) = &*waiter;
            let mut open = lock(open);
            while !*open {
                open = changed.wait(open).unwrap_or_else(|e| e.into_inner());
            }
            Ok(1)
        }));
        let opener = gate.clone();
        let second = Work::Run(Box::new(move |_: &TaskCtx| {
            let (open, changed) = &*opener;
            *lock(open) = true;
            changed.notify_all();
            Ok(2)
        }));
        m.pool.submit(first, NO_TIMEOUT, 1).unwrap();
        m.pool.submit(second, NO_TIMEOUT, 2).unwrap();
        // Before close(), whose notify_all would wake a thread that missed its wake-up.
        m.sink.wait_until(|s| s.delivered.len() == 2);
        m.close_and_wait();
        m.assert_drained(2);
    });
}

/// The wake rule for lent slots: a lent slot waiting in `pull` for more lendable work hands
/// itself back when a native task arrives (its pool thread is the only one), and the task
/// runs without waiting for the lent slot's timeout.
#[test]
fn loom_a_native_task_reaches_a_pool_thread_lent_out_and_waiting() {
    check(|| {
        let m = model_pool(1);
        m.pool.submit(Work::Lend(1), NO_TIMEOUT, 1).unwrap();
        m.sink.wait_until(|s| !s.delivered.is_empty());
        let ran = Arc::new(StdAtomicBool::new(false));
        m.pool.submit(job(2, &ran), NO_TIMEOUT, 2).unwrap();
        m.sink.wait_until(|s| s.delivered.len() == 2);
        m.close_and_wait();
        assert_eq!(m.sink.delivered(2), [Ok(2)]);
        m.assert_drained(2);
    });
}

/// A cancel wakes a running job that sleeps (loom's park stands in for the timed one): the
/// cancel's unpark is never lost, whatever the job was doing when it came.
#[test]
fn loom_cancel_wakes_a_sleeping_job() {
    check(|| {
        let m = model_pool(1);
        let sleeper = Work::Run(Box::new(move |ctx: &TaskCtx| {
            ctx.sleep(Duration::from_secs(3600))?;
            Ok(0)
        }));
        let h = m.pool.submit(sleeper, NO_TIMEOUT, 1).unwrap();
        assert_eq!(m.pool.cancel(&h, CancelReason::Aborted), Some(1));
        m.close_and_wait();
        assert!(m.sink.delivered(1).is_empty());
        m.assert_drained(1);
    });
}

/// A job that shares two parts with the pool's idle thread ([`TaskCtx::parallel`]), with a
/// cancel racing it when `cancel` is set. Every part runs at most once (each exactly once when
/// the job's own result is delivered); no part runs after `parallel` returned (a helper that
/// comes late finds the offer closed, and the job never waits for it); a sleeping thread hears
/// of the offer or the job runs every part itself; the task settles once; the pool drains.
fn parallel_model(cancel: bool) {
    check(move || {
        let m = model_pool(2);
        let runs: Arc<[StdAtomicUsize; 2]> =
            Arc::new([StdAtomicUsize::new(0), StdAtomicUsize::new(0)]);
        let returned = Arc::new(StdAtomicBool::new(false));
        let (counts, done) = (runs.clone(), returned.clone());
        let job = Work::Run(Box::new(move |ctx: &TaskCtx| {
            let outcome = ctx.parallel(2, &|i| {
                assert!(!done.load(SeqCst), "part {i} ran after parallel returned");
                counts[i].fetch_add(1, SeqCst);
                Ok(())
            });
            done.store(true, SeqCst);
            outcome.map(|()| 5)
        }));
        let h = m.pool.submit(job, NO_TIMEOUT, 1).unwrap();
        let aborted = if cancel {
            m.pool.cancel(&h, CancelReason::Aborted)
        } else {
            None
        };
        if aborted.is_none() {
            m.sink.wait_until(|s| !s.delivered.is_empty());
        }
        m.close_and_wait();

        let runs: Vec<usize> = runs.iter().map(|r| r.load(SeqCst)).collect();
        assert!(runs.iter().all(|r| *r <= 1), "{runs:?}");
        let delivered = m.sink.delivered(1);
        match aborted {
            Some(_) => assert!(delivered.is_empty(), "{delivered:?}"),
            None => {
                assert_eq!(delivered, [Ok(5)]);
                assert_eq!(runs, [1, 1]);
            }
        }
        m.assert_drained(1);
    });
}

#[test]
fn loom_parallel_parts_are_claimed_once_and_helpers_waited_for() {
    parallel_model(false);
}

#[test]
fn loom_parallel_parts_race_a_cancel() {
    parallel_model(true);
}
