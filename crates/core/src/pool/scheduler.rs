//! The pool core: a priority queue served by threads the pool owns.
//!
//! No napi types here. A task carries an opaque `ticket` (the binding's promise handle); the
//! ticket is taken exactly once, by whoever settles the task first — the worker that ran it,
//! a cancel (abort, timeout) or `destroy()` — and handed back to the caller or to the [`Sink`].
//! That single `Option::take` under a mutex is what guarantees "every task settles exactly once".

use std::cmp::Reverse;
use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use self::helping::{Board, Offer};
use super::stats::{Mirror, Stats, StatsSnapshot};
use super::timer::{self, Timer, TimerKey};
use crate::error::ErrorCode;
use crate::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use crate::sync::thread::{self, Thread};
use crate::sync::{lock_model as lock, Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};

/// Why a task was cancelled before it produced its own result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CancelReason {
    Aborted = 1,
    TimedOut = 2,
    Closed = 3,
}

impl CancelReason {
    fn from_u8(v: u8) -> Option<CancelReason> {
        match v {
            1 => Some(CancelReason::Aborted),
            2 => Some(CancelReason::TimedOut),
            3 => Some(CancelReason::Closed),
            _ => None,
        }
    }

    pub fn code(self) -> ErrorCode {
        match self {
            CancelReason::Aborted => ErrorCode::Aborted,
            CancelReason::TimedOut => ErrorCode::TaskTimeout,
            CancelReason::Closed => ErrorCode::PoolClosed,
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            CancelReason::Aborted => "The task was aborted",
            CancelReason::TimedOut => "The task timed out",
            CancelReason::Closed => "The pool was destroyed before the task finished",
        }
    }
}

/// How a task failed.
#[derive(Debug, Clone, PartialEq)]
pub enum TaskError {
    /// The job reported an error of its own (bad input found late, corrupt data, ...).
    Failed { code: ErrorCode, message: String },
    /// The job panicked; the text is the panic payload.
    Panicked(String),
    /// The task was cancelled (it may have stopped early at a cancel check).
    Cancelled(CancelReason),
}

impl TaskError {
    pub fn failed(code: ErrorCode, message: impl Into<String>) -> Self {
        TaskError::Failed {
            code,
            message: message.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            TaskError::Failed { code, .. } => *code,
            TaskError::Panicked(_) => ErrorCode::TaskPanicked,
            TaskError::Cancelled(r) => r.code(),
        }
    }

    pub fn message(&self) -> String {
        match self {
            TaskError::Failed { message, .. } => message.clone(),
            TaskError::Panicked(text) => format!("A native task panicked: {text}"),
            TaskError::Cancelled(r) => r.message().to_string(),
        }
    }
}

/// Why a submission was refused; the ticket is handed back so the caller can settle it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubmitError {
    Closed,
    QueueFull,
}

pub type Job<T> = Box<dyn FnOnce(&TaskCtx) -> Result<T, TaskError> + Send>;

/// A queued unit of work.
pub enum Work<T, L> {
    /// Runs on the pool thread.
    Run(Job<T>),
    /// Runs outside the pool (on a JS worker) through the pool's [`Lender`]. The pool thread that
    /// picks it stands by meanwhile, so it still counts against the pool's `threads`.
    Lend(L),
}

/// Runs lendable work for the pool.
pub trait Lender<T, L>: Send + Sync {
    /// Called on the pool thread that picked task `seq`. Returns once the slot
    /// is empty again: the task, and every task chained after it through [`Lease::finish`], has
    /// been finished.
    fn serve(&self, lease: Arc<dyn Lease<T, L>>, seq: u64, job: L);
    /// The task running on `slot` was just cancelled (it may or may not be lent work).
    fn cancelled(&self, slot: usize);
}

/// A pool thread lent to a [`Lender`]: whoever runs its tasks settles them here.
pub trait Lease<T, L>: Send + Sync {
    /// Why task `seq` was cancelled, if it was (`None` also when it is no longer on this slot).
    fn cancelled(&self, seq: u64) -> Option<CancelReason>;
    /// Settles task `seq` with `outcome` (dropped if the task was already settled by a cancel).
    /// With `pull`, when the head of the queue is lendable work it starts on this slot at once
    /// and is returned (after a short wait if the queue is empty); otherwise the slot is empty
    /// and the lender should return it. A stale `seq` changes nothing and returns `None`.
    /// `failed` counts an `Ok` outcome as a failed task (a JS task's thrown error travels as
    /// result bytes).
    fn finish(
        &self,
        seq: u64,
        outcome: Result<T, TaskError>,
        failed: bool,
        pull: bool,
    ) -> Option<(u64, L)>;
}

/// Receives results from pool threads and the timer thread.
pub trait Sink<K, T>: Send + Sync + 'static {
    /// A task settled away from the caller's thread (worker result or timeout).
    fn deliver(&self, ticket: K, outcome: Result<T, TaskError>);
    /// Every pool thread has exited after `close()`/`destroy()`.
    fn stopped(&self);
}

#[derive(Debug, Clone, Copy)]
pub struct PoolOptions {
    pub threads: usize,
    /// Bound on tasks waiting beyond the running ones; `None`: unbounded.
    pub max_queue: Option<usize>,
    /// Added to each pool thread's nice value (Linux); 0 keeps the process's priority.
    pub nice: i32,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitOptions {
    /// Higher runs first; FIFO among equal priorities.
    pub priority: f64,
    /// Settle with `TimedOut` after this long (queued or running).
    pub timeout: Option<Duration>,
}

/// What a running job sees of its task: the cooperative cancel flag.
pub struct TaskCtx {
    cancel: AtomicU8,
    runner: OnceLock<Thread>,
    slot: AtomicUsize,
}

impl TaskCtx {
    fn new() -> Self {
        TaskCtx {
            cancel: AtomicU8::new(0),
            runner: OnceLock::new(),
            slot: AtomicUsize::new(0),
        }
    }

    /// Index of the pool thread running the task (0..threads).
    pub fn slot(&self) -> usize {
        self.slot.load(Ordering::Relaxed)
    }

    /// The reason this task was cancelled, if it was.
    pub fn cancelled(&self) -> Option<CancelReason> {
        CancelReason::from_u8(self.cancel.load(Ordering::Relaxed))
    }

    /// `Err(Cancelled)` once the task is cancelled; jobs call this between chunks of work.
    pub fn check(&self) -> Result<(), TaskError> {
        match self.cancelled() {
            Some(reason) => Err(TaskError::Cancelled(reason)),
            None => Ok(()),
        }
    }

    /// Sleeps for `duration`, waking early (with `Err`) when the task is cancelled.
    pub fn sleep(&self, duration: Duration) -> Result<(), TaskError> {
        let deadline = timer::deadline(duration);
        loop {
            self.check()?;
            match deadline {
                Some(deadline) => {
                    let now = Instant::now();
                    if now >= deadline {
                        return Ok(());
                    }
                    thread::park_timeout(deadline - now);
                }
                // Longer than an `Instant` reaches: only a cancel ends it.
                None => thread::park(),
            }
        }
    }

    fn cancel(&self, reason: CancelReason) {
        let _ = self
            .cancel
            .compare_exchange(0, reason as u8, Ordering::Relaxed, Ordering::Relaxed);
        if let Some(t) = self.runner.get() {
            t.unpark();
        }
    }
}

const QUEUED: u8 = 0;
const RUNNING: u8 = 1;
const FINISHED: u8 = 2;

type QueueKey = (Reverse<i64>, u64);

/// Shared state of one task; the binding keeps a [`TaskHandle`] to cancel it.
pub struct Task<K> {
    ticket: Mutex<Option<K>>,
    timer: Mutex<Option<TimerKey>>,
    state: AtomicU8,
    key: QueueKey,
    ctx: TaskCtx,
}

pub type TaskHandle<K> = Arc<Task<K>>;

impl<K> std::fmt::Debug for Task<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Task")
            .field("seq", &self.key.1)
            .field("state", &self.state.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

struct Queued<K, T, L> {
    task: Arc<Task<K>>,
    work: Work<T, L>,
    enqueued: Instant,
}

/// A task on a pool thread (or on the lender the thread is lent to).
struct Running<K> {
    task: Arc<Task<K>>,
    enqueued: Instant,
    started: Instant,
}

struct State<K, T, L> {
    queue: BTreeMap<QueueKey, Queued<K, T, L>>,
    /// The task each thread is running, by thread index.
    slots: Vec<Option<Running<K>>>,
    running: usize,
    live_threads: usize,
    /// Threads blocked in `work.wait`; submit only signals the condvar when some are.
    sleepers: usize,
    /// Lent slots whose runner waits in [`Inner::pull`] for more lendable work.
    lent_waiters: usize,
    /// Running tasks' work that idle threads may help with ([`TaskCtx::parallel`]).
    offers: Vec<Arc<Offer>>,
    /// The waiting lent slots not signalled yet, as (report stamp, slot), the one whose worker
    /// reported a result last on top: `submit` wakes that one (its caches are warm, and the
    /// others time out and hand their slots back when one worker keeps up with the tasks).
    lent_idle: Vec<(u64, usize)>,
    /// Counts results reported on lent slots (the stamps of `lent_idle`).
    reports: u64,
    /// Lent slots spinning in [`Inner::pull`] before they wait (at most one).
    lent_spinning: usize,
    closing: bool,
    seq: u64,
}

impl<K, T, L> State<K, T, L> {
    /// Whether every queued task is lendable work that the runners waiting in
    /// [`Inner::pull`] can take (a pool thread then leaves it to them). Never while closing, so
    /// closing threads always drain the queue themselves.
    fn leave_to_lent_waiters(&self) -> bool {
        self.lent_waiters > 0
            && !self.closing
            && self.queue.len() <= self.lent_waiters
            && self.queue.values().all(|q| matches!(q.work, Work::Lend(_)))
    }

    /// The highest-priority offer that still has parts to claim.
    fn offer_to_help(&self) -> Option<Arc<Offer>> {
        self.offers
            .iter()
            .filter(|o| o.has_work())
            .min_by_key(|o| o.key)
            .cloned()
    }
}

struct Inner<K, T, L> {
    state: Mutex<State<K, T, L>>,
    work: Condvar,
    /// Where each lent slot waits for more lendable work (see [`Inner::pull`]), by slot.
    lent_work: Vec<Condvar>,
    sink: Arc<dyn Sink<K, T>>,
    lender: Option<Arc<dyn Lender<T, L>>>,
    /// Each pool thread's handle, by slot.
    runners: Vec<OnceLock<Thread>>,
    threads: usize,
    /// Tasks queued plus running may not exceed this (threads + maxQueue).
    capacity: usize,
    /// Mirror of `queue.len()` that a spinning thread (and a helper) polls without the lock.
    queued: AtomicUsize,
    /// Mirror of `offers.len()` that a spinning thread polls without the lock.
    offered: AtomicUsize,
    spinning: AtomicBool,
    /// Nice increment applied to each pool thread.
    nice: i32,
    stats: Stats,
    /// Where deadlines are kept; `None`: the process-wide timer thread (started on first use).
    timer: Option<Arc<Timer>>,
}

/// A pool of `threads` OS threads owned by corepool, serving a priority queue. `L` is the work
/// it can lend (see [`Work::Lend`]).
pub struct Pool<K: Send + 'static, T: Send + 'static, L: Send + 'static = std::convert::Infallible>
{
    inner: Arc<Inner<K, T, L>>,
}

/// Maps an f64 priority onto an integer with the same total order (`f64::total_cmp`).
fn order_key(priority: f64) -> i64 {
    let bits = priority.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

impl<K: Send + 'static, T: Send + 'static, L: Send + 'static> Pool<K, T, L> {
    /// Starts `threads` threads. `max_queue` bounds tasks waiting beyond the running ones.
    /// `lender` runs [`Work::Lend`] work; a pool without one fails such tasks.
    pub fn new(
        options: PoolOptions,
        sink: Arc<dyn Sink<K, T>>,
        lender: Option<Arc<dyn Lender<T, L>>>,
    ) -> std::io::Result<Self> {
        Self::with_timer(options, sink, lender, None)
    }

    /// [`Pool::new`] with deadlines kept by `timer` instead of the process-wide timer thread
    /// (tests fire it by hand).
    fn with_timer(
        options: PoolOptions,
        sink: Arc<dyn Sink<K, T>>,
        lender: Option<Arc<dyn Lender<T, L>>>,
        timer: Option<Arc<Timer>>,
    ) -> std::io::Result<Self> {
        let PoolOptions {
            threads, max_queue, ..
        } = options;
        assert!(threads > 0, "a pool needs at least one thread");
        quiet_job_panics();
        let inner = Arc::new(Inner {
            state: Mutex::new(State {
                queue: BTreeMap::new(),
                slots: (0..threads).map(|_| None).collect(),
                running: 0,
                live_threads: threads,
                sleepers: 0,
                lent_waiters: 0,
                offers: Vec::new(),
                lent_idle: Vec::with_capacity(threads),
                reports: 0,
                lent_spinning: 0,
                closing: false,
                seq: 0,
            }),
            work: Condvar::new(),
            lent_work: (0..threads).map(|_| Condvar::new()).collect(),
            sink,
            lender,
            runners: (0..threads).map(|_| OnceLock::new()).collect(),
            threads,
            capacity: max_queue.map_or(usize::MAX, |q| q.saturating_add(threads)),
            queued: AtomicUsize::new(0),
            offered: AtomicUsize::new(0),
            spinning: AtomicBool::new(false),
            nice: options.nice,
            stats: Stats::new(),
            timer,
        });
        for index in 0..threads {
            let worker = Arc::clone(&inner);
            let spawned = thread::Builder::new()
                .name(format!("corepool-{index}"))
                .spawn(move || worker.work_loop(index));
            if let Err(e) = spawned {
                // Threads already started exit once they see `closing`.
                let mut st = lock(&inner.state);
                st.closing = true;
                st.live_threads = index;
                drop(st);
                inner.work.notify_all();
                return Err(e);
            }
        }
        Ok(Pool { inner })
    }

    pub fn threads(&self) -> usize {
        self.inner.threads
    }

    /// Queues `work`. On refusal the ticket comes back with the reason.
    pub fn submit(
        &self,
        work: Work<T, L>,
        options: SubmitOptions,
        ticket: K,
    ) -> Result<TaskHandle<K>, (SubmitError, K)> {
        let inner = &self.inner;
        let mut st = lock(&inner.state);
        if st.closing {
            return Err((SubmitError::Closed, ticket));
        }
        if st.queue.len() + st.running >= inner.capacity {
            return Err((SubmitError::QueueFull, ticket));
        }
        st.seq += 1;
        let key = (Reverse(order_key(options.priority)), st.seq);
        let lendable = matches!(work, Work::Lend(_));
        let task = Arc::new(Task {
            ticket: Mutex::new(Some(ticket)),
            timer: Mutex::new(None),
            state: AtomicU8::new(QUEUED),
            key,
            ctx: TaskCtx::new(),
        });
        st.queue.insert(
            key,
            Queued {
                task: Arc::clone(&task),
                work,
                enqueued: Instant::now(),
            },
        );
        inner.queued.store(st.queue.len(), Ordering::Relaxed);
        // Lendable work goes to a lent slot waiting for it first (its runner is ready to run
        // it at once); other work to a sleeping pool thread, or else makes a waiting lent slot
        // hand itself back so that its pool thread takes the work.
        // A sleeping pool thread is woken too when more tasks are queued than lent slots wait:
        // a queued task never waits while a thread (and its worker) sits idle.
        let wake_lent = st.lent_waiters > 0 && (lendable || st.sleepers == 0);
        let wake = st.sleepers > 0 && (!wake_lent || st.queue.len() > st.lent_waiters);
        // A spinning lent slot takes the task without a signal; more tasks than spinners also
        // need a waiting one.
        let lent = if wake_lent && st.queue.len() > st.lent_spinning {
            st.lent_idle.pop().map(|(_, index)| index)
        } else {
            None
        };
        drop(st);
        if let Some(index) = lent {
            inner.lent_work[index].notify_one();
        }
        if wake {
            inner.work.notify_one();
        }
        // A deadline past what an `Instant` holds never comes: no timer at all.
        if let Some(at) = options.timeout.and_then(timer::deadline) {
            let pool = Arc::downgrade(inner);
            let weak_task = Arc::downgrade(&task);
            let key = inner
                .timer()
                .schedule(at, Box::new(move || Inner::on_timeout(pool, weak_task)));
            *lock(&task.timer) = Some(key);
            // The task may have settled before the key was stored; then nobody else cancels it.
            if lock(&task.ticket).is_none() {
                if let Some(key) = lock(&task.timer).take() {
                    inner.timer().cancel(key);
                }
            }
        }
        Ok(task)
    }

    /// Cancels a task. Returns its ticket when this call settled it (the caller then rejects
    /// it with `reason`); `None` when it had already settled.
    pub fn cancel(&self, task: &TaskHandle<K>, reason: CancelReason) -> Option<K> {
        self.inner.cancel(task, reason)
    }

    /// Stops accepting tasks; queued ones still run; then the threads exit and the sink hears
    /// `stopped()`.
    pub fn close(&self) {
        lock(&self.inner.state).closing = true;
        self.inner.work.notify_all();
        self.inner.wake_lent_all();
    }

    /// Stops accepting tasks and cancels queued and running ones with `Closed`; returns the
    /// tickets of every task this call settled. Threads exit once their current job returns.
    pub fn destroy(&self) -> Vec<K> {
        let inner = &self.inner;
        let mut st = lock(&inner.state);
        st.closing = true;
        let queued = std::mem::take(&mut st.queue);
        inner.queued.store(0, Ordering::Relaxed);
        let running: Vec<Arc<Task<K>>> = st
            .slots
            .iter()
            .flatten()
            .map(|r| Arc::clone(&r.task))
            .collect();
        drop(st);
        inner.work.notify_all();
        inner.wake_lent_all();
        let mut tickets = Vec::with_capacity(queued.len() + running.len());
        for (_, q) in queued {
            q.task.state.store(FINISHED, Ordering::Release);
            tickets.extend(inner.take_ticket(&q.task));
        }
        for task in running {
            if let Some(ticket) = inner.take_ticket(&task) {
                inner.cancel_running(&task, CancelReason::Closed);
                tickets.push(ticket);
            }
        }
        inner
            .stats
            .cancelled(CancelReason::Closed, tickets.len() as u64);
        tickets
    }

    /// Cancels every queued (not yet running) task with `Closed`; returns their tickets.
    pub fn cancel_queued(&self) -> Vec<K> {
        let inner = &self.inner;
        let mut st = lock(&inner.state);
        let queued = std::mem::take(&mut st.queue);
        inner.queued.store(0, Ordering::Relaxed);
        drop(st);
        let tickets: Vec<K> = queued
            .into_values()
            .filter_map(|q| {
                q.task.state.store(FINISHED, Ordering::Release);
                inner.take_ticket(&q.task)
            })
            .collect();
        inner
            .stats
            .cancelled(CancelReason::Closed, tickets.len() as u64);
        tickets
    }

    /// Mirrors this pool's settle counts into a shared counters region (see [`Mirror`]).
    pub fn mirror_stats(&self, mirror: Mirror) -> bool {
        self.inner.stats.mirror_to(mirror)
    }

    /// Lent slots whose runner waits in `pull` for more lendable work (tests only).
    #[cfg(test)]
    pub fn lent_waiters(&self) -> usize {
        lock(&self.inner.state).lent_waiters
    }

    /// Lent slots blocked in `pull` and not signalled yet, not counting a spinning one (tests
    /// only).
    #[cfg(test)]
    pub fn lent_idle(&self) -> usize {
        lock(&self.inner.state).lent_idle.len()
    }

    pub fn stats(&self) -> StatsSnapshot {
        let st = lock(&self.inner.state);
        let (queued, running) = (st.queue.len(), st.running);
        // Under the lock a task leaves its slot under (`Stats::vacated`): each task's time is
        // counted once, as running or as done, so busy time never goes back.
        let now = Instant::now();
        let busy = st
            .slots
            .iter()
            .flatten()
            .map(|r| now.saturating_duration_since(r.started).as_nanos() as u64)
            .fold(self.inner.stats.vacated_ns(), u64::saturating_add);
        drop(st);
        self.inner
            .stats
            .snapshot(self.inner.threads, queued, running, busy)
    }
}

impl<K: Send + 'static, T: Send + 'static, L: Send + 'static> Drop for Pool<K, T, L> {
    fn drop(&mut self) {
        // An abandoned pool finishes what it was given, then its threads exit.
        self.close();
    }
}

impl<K: Send + 'static, T: Send + 'static, L: Send + 'static> Inner<K, T, L> {
    fn timer(&self) -> &Timer {
        match &self.timer {
            Some(timer) => timer,
            None => Timer::global(),
        }
    }

    /// Takes the task's ticket if nobody has yet; the winner settles the task.
    fn take_ticket(&self, task: &Task<K>) -> Option<K> {
        let ticket = lock(&task.ticket).take();
        if ticket.is_some() {
            if let Some(key) = lock(&task.timer).take() {
                self.timer().cancel(key);
            }
        }
        ticket
    }

    fn cancel(&self, task: &Arc<Task<K>>, reason: CancelReason) -> Option<K> {
        let st = lock(&self.state);
        let ticket = match task.state.load(Ordering::Acquire) {
            QUEUED => {
                let mut st = st;
                st.queue.remove(&task.key);
                self.queued.store(st.queue.len(), Ordering::Relaxed);
                task.state.store(FINISHED, Ordering::Release);
                drop(st);
                self.take_ticket(task)
            }
            RUNNING => {
                drop(st);
                // Ticket first: once the flag is set the job may return and settle on its own.
                let ticket = self.take_ticket(task);
                if ticket.is_some() {
                    self.cancel_running(task, reason);
                }
                ticket
            }
            _ => None,
        };
        if ticket.is_some() {
            self.stats.cancelled(reason, 1);
        }
        ticket
    }

    /// Flags a running task as cancelled and tells whoever runs it.
    fn cancel_running(&self, task: &Task<K>, reason: CancelReason) {
        task.ctx.cancel(reason);
        if let Some(lender) = &self.lender {
            lender.cancelled(task.ctx.slot());
        }
    }

    fn on_timeout(pool: Weak<Self>, task: Weak<Task<K>>) {
        let (Some(pool), Some(task)) = (pool.upgrade(), task.upgrade()) else {
            return;
        };
        if let Some(ticket) = pool.cancel(&task, CancelReason::TimedOut) {
            pool.sink
                .deliver(ticket, Err(TaskError::Cancelled(CancelReason::TimedOut)));
        }
    }

    fn work_loop(self: &Arc<Self>, index: usize) {
        if self.nice != 0 {
            lower_thread_priority(self.nice);
        }
        let _ = self.runners[index].set(thread::current());
        helping::register(Arc::downgrade(self) as Weak<dyn Board>, index);
        let mut st = lock(&self.state);
        loop {
            if st.leave_to_lent_waiters() {
                // A JS worker waiting in `pull` (already signalled by `submit`) runs it with
                // one wake-up; lending this thread's slot would need two more.
                st = self.sleep(st);
                continue;
            }
            let Some(Queued {
                task,
                work,
                enqueued,
            }) = st.queue.pop_first().map(|(_, q)| q)
            else {
                // Nothing queued: help a running task with its parts before going idle.
                if let Some(offer) = st.offer_to_help() {
                    drop(st);
                    self.help(&offer);
                    st = lock(&self.state);
                    continue;
                }
                if st.closing {
                    break;
                }
                st = self.idle(st);
                continue;
            };
            let started = self.start(&mut st, index, &task, enqueued);
            drop(st);
            match work {
                Work::Run(job) => {
                    let outcome = match task.ctx.check() {
                        // Cancelled between being picked and starting: do not run it at all.
                        Err(e) => Err(e),
                        Ok(()) => catch_unwind(AssertUnwindSafe(|| job(&task.ctx))).unwrap_or_else(
                            |payload| Err(TaskError::Panicked(panic_text(payload))),
                        ),
                    };
                    self.settle(&task, enqueued, started, outcome, false);
                    // Cleared under the lock that also picks the next task.
                    st = lock(&self.state);
                    st.slots[index] = None;
                    self.stats.vacated(started);
                    st.running -= 1;
                    continue;
                }
                Work::Lend(job) => {
                    let lease = Arc::new(Lent {
                        inner: Arc::clone(self),
                        index,
                    });
                    let seq = task.key.1;
                    let served = match &self.lender {
                        Some(lender) => {
                            catch_unwind(AssertUnwindSafe(|| lender.serve(lease, seq, job)))
                                .map_err(|payload| TaskError::Panicked(panic_text(payload)))
                        }
                        // Not a panic: the task was submitted to a pool made without a lender.
                        None => Err(TaskError::failed(
                            ErrorCode::InvalidState,
                            "this pool cannot run lent work",
                        )),
                    };
                    // A lender must leave the slot empty; whatever it left is failed here.
                    let left = lock(&self.state).slots[index]
                        .as_ref()
                        .map(|r| r.task.key.1);
                    if let Some(seq) = left {
                        let why = served.err().unwrap_or_else(|| {
                            TaskError::Panicked("the task was lost".to_string())
                        });
                        self.finish(index, seq, Err(why), false, false);
                    }
                }
            }
            st = lock(&self.state);
        }
        st.live_threads -= 1;
        let last = st.live_threads == 0;
        drop(st);
        if last {
            self.sink.stopped();
        }
    }

    /// Puts the popped `task` on slot `index` (state lock held); returns when it started.
    fn start(
        &self,
        st: &mut State<K, T, L>,
        index: usize,
        task: &Arc<Task<K>>,
        enqueued: Instant,
    ) -> Instant {
        self.queued.store(st.queue.len(), Ordering::Relaxed);
        task.state.store(RUNNING, Ordering::Release);
        let started = Instant::now();
        st.slots[index] = Some(Running {
            task: Arc::clone(task),
            enqueued,
            started,
        });
        st.running += 1;
        let _ = task.ctx.runner.set(self.runner(index));
        task.ctx.slot.store(index, Ordering::Relaxed);
        started
    }

    /// Takes task `seq` off slot `index` and settles it with `outcome` unless a cancel already
    /// did. `false` if that task is not on the slot.
    /// Settles task `seq` of lent slot `index`. `None` if it is no longer there; otherwise
    /// whether the slot spins for its next task (see [`Inner::pull`]): with `pull`, it is
    /// counted as a spinning waiter before the outcome is delivered, so the next task, which
    /// the submitting thread may send as soon as it has the result, is left to it.
    fn finish(
        &self,
        index: usize,
        seq: u64,
        outcome: Result<T, TaskError>,
        failed: bool,
        pull: bool,
    ) -> Option<(bool, u64)> {
        let mut st = lock(&self.state);
        let Running {
            task,
            enqueued,
            started,
        } = st.slots[index].take_if(|r| r.task.key.1 == seq)?;
        self.stats.vacated(started);
        st.running -= 1;
        st.reports += 1;
        let stamp = st.reports;
        // Only when nothing else runs: a spin then takes no CPU that a running task, or the
        // submitting thread handling its results, needs.
        let spin = pull
            && st.lent_spinning == 0
            && st.running == 0
            && !st.closing
            && !spin_time().is_zero();
        if spin {
            st.lent_waiters += 1;
            st.lent_spinning += 1;
        }
        drop(st);
        self.settle(&task, enqueued, started, outcome, failed);
        Some((spin, stamp))
    }

    /// Records a finished task's times and hands `outcome` to the sink, unless a cancel already
    /// settled the task (then the outcome is dropped here).
    fn settle(
        &self,
        task: &Task<K>,
        enqueued: Instant,
        started: Instant,
        outcome: Result<T, TaskError>,
        failed: bool,
    ) {
        self.stats.ran(started - enqueued, started.elapsed());
        if let Some(ticket) = self.take_ticket(task) {
            match &outcome {
                Err(TaskError::Cancelled(reason)) => self.stats.cancelled(*reason, 1),
                other => self.stats.settled_ok(other.is_ok() && !failed),
            }
            self.sink.deliver(ticket, outcome);
        }
        task.state.store(FINISHED, Ordering::Release);
    }

    /// Starts the next task on lent slot `index` if the head of the queue is lendable work.
    /// With an empty queue, one lent slot at a time (`spinning`, decided in
    /// [`Inner::finish`]) first spins for up to the spin time,
    /// yielding its CPU at every turn: the runner has just sent a result to the submitting
    /// thread, which often runs on the runner's own core and must not wait for the spin, and
    /// which often submits the next task at once (the request/response rhythm), which the
    /// spinning runner then starts without any wake-up. Then it waits on its `lent_work`
    /// condvar for up to [`LENT_WAIT`], which `submit` signals (for the slot that waited last,
    /// whose worker ran a task last) before any sleeping pool thread, so a JS task submitted
    /// later still reaches an idle worker with a single wake-up.
    fn pull(&self, index: usize, spinning: bool, stamp: u64) -> Option<(u64, L)> {
        let mut waited = false;
        if spinning {
            self.spin_for_lent();
        }
        let mut st = lock(&self.state);
        if spinning {
            st.lent_waiters -= 1;
            st.lent_spinning -= 1;
        }
        loop {
            match st.queue.first_key_value() {
                Some((_, q)) if matches!(q.work, Work::Lend(_)) => {
                    let (_, q) = st.queue.pop_first()?;
                    self.start(&mut st, index, &q.task, q.enqueued);
                    let Work::Lend(job) = q.work else {
                        unreachable!("checked above")
                    };
                    return Some((q.task.key.1, job));
                }
                // Other work at the head: an idle pool thread takes it if there is one (a
                // sleeping one was signalled by `submit`, a spinning one sees it), and this
                // slot keeps waiting for lendable work; otherwise the slot goes back to its
                // pool thread, which takes it.
                Some(_)
                    if waited || (st.sleepers == 0 && !self.spinning.load(Ordering::Relaxed)) =>
                {
                    return None
                }
                Some(_) => {}
                None if st.closing || waited => return None,
                None => {}
            }
            waited = true;
            st.lent_waiters += 1;
            let at = st.lent_idle.partition_point(|&(s, _)| s < stamp);
            st.lent_idle.insert(at, (stamp, index));
            st = self.lent_work[index]
                .wait_timeout(st, LENT_WAIT)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            st.lent_waiters -= 1;
            // Still there after a timeout (or a spurious wake-up): not signalled.
            st.lent_idle.retain(|&(_, i)| i != index);
        }
    }

    /// Spins until something is queued or the spin time is over, yielding the CPU at every turn
    /// so that the thread this runner just sent a result to runs first if it shares this core.
    fn spin_for_lent(&self) {
        let spin = spin_time();
        if spin.is_zero() {
            return;
        }
        let until = Instant::now() + spin;
        while self.queued.load(Ordering::Relaxed) == 0 && Instant::now() < until {
            thread::yield_now();
        }
    }

    /// Wakes every lent slot waiting in [`Inner::pull`] (closing: they hand their slots back).
    fn wake_lent_all(&self) {
        for waiting in &self.lent_work {
            waiting.notify_all();
        }
    }

    /// The pool thread of slot `index`: a cancel unparks it.
    fn runner(&self, index: usize) -> Thread {
        self.runners[index]
            .get()
            .cloned()
            .unwrap_or_else(thread::current)
    }
    /// Waits for work with the queue empty. One thread at a time first spins briefly: waking a
    /// sleeping thread costs tens of microseconds on virtual machines, and a task submitted right
    /// after the previous one finished (the request/response rhythm) is then picked up at once.
    fn idle<'a>(&'a self, st: MutexGuard<'a, State<K, T, L>>) -> MutexGuard<'a, State<K, T, L>> {
        drop(st);
        self.spin();
        let st = lock(&self.state);
        if !st.queue.is_empty() || st.closing || st.offer_to_help().is_some() {
            return st;
        }
        self.sleep(st)
    }

    /// Runs parts of `offer` on this (idle) pool thread until a task is queued or no part is
    /// left; the time counts as busy time.
    fn help(&self, offer: &Offer) {
        let started = Instant::now();
        offer.help(&|| self.queued.load(Ordering::Relaxed) > 0);
        self.stats.vacated(started);
    }

    /// Spins until something is queued or the spin time is over, if no other thread is spinning
    /// already.
    fn spin(&self) {
        let spin = spin_time();
        if spin.is_zero() || self.spinning.swap(true, Ordering::Acquire) {
            return;
        }
        let until = Instant::now() + spin;
        let mut i = 0u32;
        while self.queued.load(Ordering::Relaxed) == 0 && self.offered.load(Ordering::Relaxed) == 0
        {
            crate::sync::hint::spin_loop();
            i = i.wrapping_add(1);
            if i.is_multiple_of(64) && Instant::now() >= until {
                break;
            }
        }
        self.spinning.store(false, Ordering::Release);
    }

    fn sleep<'a>(
        &'a self,
        mut st: MutexGuard<'a, State<K, T, L>>,
    ) -> MutexGuard<'a, State<K, T, L>> {
        st.sleepers += 1;
        let mut st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
        st.sleepers -= 1;
        st
    }
}

/// The slot a pool thread lent to the pool's [`Lender`].
struct Lent<K: Send + 'static, T: Send + 'static, L: Send + 'static> {
    inner: Arc<Inner<K, T, L>>,
    index: usize,
}

impl<K: Send + 'static, T: Send + 'static, L: Send + 'static> Lease<T, L> for Lent<K, T, L> {
    fn cancelled(&self, seq: u64) -> Option<CancelReason> {
        let st = lock(&self.inner.state);
        st.slots[self.index]
            .as_ref()
            .filter(|r| r.task.key.1 == seq)
            .and_then(|r| r.task.ctx.cancelled())
    }

    fn finish(
        &self,
        seq: u64,
        outcome: Result<T, TaskError>,
        failed: bool,
        pull: bool,
    ) -> Option<(u64, L)> {
        match self.inner.finish(self.index, seq, outcome, failed, pull) {
            Some((spinning, stamp)) if pull => self.inner.pull(self.index, spinning, stamp),
            _ => None,
        }
    }
}

/// How long a lent slot with nothing to run waits for more lendable work before its runner (a
/// JS worker, whose event loop is blocked meanwhile) hands it back.
const LENT_WAIT: Duration = Duration::from_millis(1);

/// How long an idle pool thread spins for work before it sleeps (`COREPOOL_SPIN_US`, default
/// 50 µs; 0 turns spinning off). The pool's JS thread polls as long for an expected result.
pub fn spin_time() -> Duration {
    // A spin bounded by the clock would make a model's runs differ from one another.
    if cfg!(feature = "loom") {
        return Duration::ZERO;
    }
    static SPIN: OnceLock<Duration> = OnceLock::new();
    *SPIN.get_or_init(|| {
        let us = std::env::var("COREPOOL_SPIN_US")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(50);
        Duration::from_micros(us)
    })
}

/// Lowers the calling thread's scheduling priority by `nice` (Linux: per-thread nice value), so
/// pool work yields the CPU to the event loop and libuv's threads when they compete.
pub fn lower_thread_priority(nice: i32) {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: plain syscalls on the calling thread; no memory is passed.
        unsafe {
            // The raw system call: glibc's gettid wrapper only exists from glibc 2.30, and the
            // release binaries link against glibc 2.17.
            let tid = libc::syscall(libc::SYS_gettid) as libc::pid_t;
            let current = libc::getpriority(libc::PRIO_PROCESS, tid as libc::id_t);
            libc::setpriority(
                libc::PRIO_PROCESS,
                tid as libc::id_t,
                (current + nice).clamp(-20, 19),
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = nice;
}

/// A panic inside a job is reported to the caller as ERR_TASK_PANICKED with its text, so the
/// default hook's stderr report is noise there; panics anywhere else still reach it.
fn quiet_job_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let in_pool = std::thread::current()
                .name()
                .is_some_and(|n| n.starts_with("corepool-") && n != "corepool-timer");
            if !in_pool {
                previous(info);
            }
        }));
    });
}

fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    let text = if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic payload".to_string()
    };
    // The payload's own destructor could panic; never let it unwind out of a pool thread.
    let _ = catch_unwind(AssertUnwindSafe(move || drop(payload)));
    text
}

impl<K: Send + 'static, T: Send + 'static, L: Send + 'static> Board for Inner<K, T, L> {
    fn offer(
        &self,
        slot: usize,
        parts: usize,
        run: *const helping::Part<'static>,
    ) -> Option<Arc<Offer>> {
        if self.threads < 2 {
            return None;
        }
        let mut st = lock(&self.state);
        let key = st.slots.get(slot)?.as_ref()?.task.key;
        let offer = Arc::new(Offer::new(key, parts, run));
        st.offers.push(Arc::clone(&offer));
        self.offered.store(st.offers.len(), Ordering::Relaxed);
        let wake = st.sleepers > 0;
        drop(st);
        if wake {
            self.work.notify_all();
        }
        Some(offer)
    }

    fn withdraw(&self, offer: &Arc<Offer>) {
        let mut st = lock(&self.state);
        st.offers.retain(|o| !Arc::ptr_eq(o, offer));
        self.offered.store(st.offers.len(), Ordering::Relaxed);
    }
}

mod helping;

#[cfg(all(test, feature = "loom"))]
mod loom_tests;

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::pool::stats::RUN_BUCKETS_NS;
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::thread;

    type Outcome = Result<u64, TaskError>;

    struct TestSink {
        tx: Mutex<Sender<(u64, Outcome)>>,
        stopped: AtomicUsize,
    }

    impl Sink<u64, u64> for TestSink {
        fn deliver(&self, ticket: u64, outcome: Outcome) {
            lock(&self.tx).send((ticket, outcome)).unwrap();
        }
        fn stopped(&self) {
            self.stopped.fetch_add(1, Ordering::SeqCst);
        }
    }

    type TestPool = (Pool<u64, u64>, Receiver<(u64, Outcome)>, Arc<TestSink>);

    fn pool(threads: usize, max_queue: Option<usize>) -> TestPool {
        let (tx, rx) = channel();
        let sink = Arc::new(TestSink {
            tx: Mutex::new(tx),
            stopped: AtomicUsize::new(0),
        });
        (
            Pool::new(
                PoolOptions {
                    threads,
                    max_queue,
                    nice: 0,
                },
                sink.clone(),
                None,
            )
            .unwrap(),
            rx,
            sink,
        )
    }

    fn recv(rx: &Receiver<(u64, Outcome)>) -> (u64, Outcome) {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a task never settled")
    }

    /// Occupies the pool's only thread until `release` is dropped or sent to.
    fn blocker(p: &Pool<u64, u64>, ticket: u64) -> (TaskHandle<u64>, Sender<()>) {
        let (release, wait) = channel::<()>();
        let (started_tx, started) = channel::<()>();
        let h = p
            .submit(
                run(move |_| {
                    started_tx.send(()).unwrap();
                    let _ = wait.recv();
                    Ok(0)
                }),
                SubmitOptions::default(),
                ticket,
            )
            .unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        (h, release)
    }

    type TestWork = Work<u64, std::convert::Infallible>;

    fn run(job: impl FnOnce(&TaskCtx) -> Result<u64, TaskError> + Send + 'static) -> TestWork {
        Work::Run(Box::new(job))
    }

    fn value(v: u64) -> TestWork {
        run(move |_| Ok(v))
    }

    #[test]
    fn runs_jobs_and_returns_results() {
        let (p, rx, _) = pool(2, None);
        for i in 0..100 {
            p.submit(value(i * 2), SubmitOptions::default(), i).unwrap();
        }
        let mut seen = [false; 100];
        for _ in 0..100 {
            let (t, r) = recv(&rx);
            assert_eq!(r, Ok(t * 2));
            seen[t as usize] = true;
        }
        assert!(seen.iter().all(|s| *s));
        assert_eq!(p.stats().completed, 100);
    }

    #[test]
    fn higher_priority_first_then_fifo() {
        let (p, rx, _) = pool(1, None);
        let (_h, release) = blocker(&p, 0);
        let prios = [0.0, 5.0, -1.0, 5.0, 1.0, 0.0];
        for (i, prio) in prios.iter().enumerate() {
            let opts = SubmitOptions {
                priority: *prio,
                timeout: None,
            };
            p.submit(value(0), opts, i as u64 + 1).unwrap();
        }
        drop(release);
        let order: Vec<u64> = (0..7).map(|_| recv(&rx).0).collect();
        assert_eq!(order, vec![0, 2, 4, 5, 1, 6, 3]);
    }

    #[test]
    fn order_key_matches_total_order() {
        let xs = [
            f64::NEG_INFINITY,
            -1e300,
            -1.0,
            -0.0,
            0.0,
            1e-300,
            1.0,
            7.5,
            f64::INFINITY,
        ];
        for w in xs.windows(2) {
            assert!(order_key(w[0]) < order_key(w[1]), "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn max_queue_counts_waiting_tasks_beyond_threads() {
        let (p, rx, _) = pool(1, Some(2));
        let (_h, release) = blocker(&p, 0);
        p.submit(value(1), SubmitOptions::default(), 1).unwrap();
        p.submit(value(2), SubmitOptions::default(), 2).unwrap();
        let refused = p.submit(value(3), SubmitOptions::default(), 3).unwrap_err();
        assert_eq!(refused, (SubmitError::QueueFull, 3));
        drop(release);
        for _ in 0..3 {
            assert!(recv(&rx).1.is_ok());
        }
    }

    #[test]
    fn cancel_queued_removes_it_and_returns_ticket_once() {
        let (p, rx, _) = pool(1, None);
        let (_h, release) = blocker(&p, 0);
        let h = p.submit(value(1), SubmitOptions::default(), 1).unwrap();
        assert_eq!(p.stats().queued, 1);
        assert_eq!(p.cancel(&h, CancelReason::Aborted), Some(1));
        assert_eq!(p.cancel(&h, CancelReason::Aborted), None);
        assert_eq!(p.stats().queued, 0);
        drop(release);
        assert_eq!(recv(&rx).0, 0);
        assert!(rx.recv_timeout(Duration::from_millis(100)).is_err());
        assert_eq!(p.stats().aborted, 1);
    }

    #[test]
    fn cancel_running_sets_flag_and_job_result_is_dropped() {
        let (p, rx, _) = pool(1, None);
        let (started_tx, started) = channel();
        let h = p
            .submit(
                run(move |ctx| {
                    started_tx.send(()).unwrap();
                    ctx.sleep(Duration::from_secs(60))?;
                    Ok(1)
                }),
                SubmitOptions::default(),
                7,
            )
            .unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(p.cancel(&h, CancelReason::Aborted), Some(7));
        // The thread is free again quickly because sleep() woke on cancel.
        p.submit(value(5), SubmitOptions::default(), 8).unwrap();
        assert_eq!(recv(&rx), (8, Ok(5)));
    }

    #[test]
    fn timeout_of_queued_and_running_tasks() {
        let (p, rx, _) = pool(1, None);
        let timeout = |ms| SubmitOptions {
            priority: 0.0,
            timeout: Some(Duration::from_millis(ms)),
        };
        p.submit(
            run(|ctx| {
                ctx.sleep(Duration::from_secs(60))?;
                Ok(0)
            }),
            timeout(80),
            1,
        )
        .unwrap();
        // Times out while still queued behind the sleeper.
        p.submit(value(2), timeout(20), 2).unwrap();
        let first = recv(&rx);
        let second = recv(&rx);
        assert_eq!(
            first,
            (2, Err(TaskError::Cancelled(CancelReason::TimedOut)))
        );
        assert_eq!(
            second,
            (1, Err(TaskError::Cancelled(CancelReason::TimedOut)))
        );
        assert_eq!(p.stats().timed_out, 2);
        assert_eq!(p.stats().queued, 0);
    }

    #[test]
    fn timeouts_and_sleeps_too_long_for_an_instant_never_fire() {
        let (p, rx, _) = pool(1, None);
        let forever = SubmitOptions {
            priority: 0.0,
            timeout: Some(Duration::MAX),
        };
        p.submit(value(1), forever, 1).unwrap();
        assert_eq!(recv(&rx), (1, Ok(1)));
        let sleeper = p
            .submit(
                run(|ctx| {
                    ctx.sleep(Duration::MAX)?;
                    Ok(0)
                }),
                SubmitOptions {
                    priority: 0.0,
                    timeout: Some(Duration::from_secs(1_000_000_000_000)),
                },
                2,
            )
            .unwrap();
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(p.cancel(&sleeper, CancelReason::Aborted), Some(2));
        // The endless sleep woke on the cancel: the thread runs the next task.
        p.submit(value(5), SubmitOptions::default(), 3).unwrap();
        assert_eq!(recv(&rx), (3, Ok(5)));
    }

    #[test]
    fn panic_becomes_error_and_pool_keeps_serving() {
        let (p, rx, _) = pool(1, None);
        p.submit(run(|_| panic!("boom {}", 42)), SubmitOptions::default(), 1)
            .unwrap();
        assert_eq!(recv(&rx), (1, Err(TaskError::Panicked("boom 42".into()))));
        p.submit(value(3), SubmitOptions::default(), 2).unwrap();
        assert_eq!(recv(&rx), (2, Ok(3)));
        assert_eq!(p.stats().failed, 1);
    }

    /// A job that sleeps `ms` and returns the nanoseconds it measured itself.
    fn measured(ms: u64) -> TestWork {
        run(move |_| {
            let t = Instant::now();
            thread::sleep(Duration::from_millis(ms));
            Ok(t.elapsed().as_nanos() as u64)
        })
    }

    #[test]
    fn busy_time_and_run_histogram_measure_run_time_only() {
        let t0 = Instant::now();
        let (p, rx, _) = pool(1, None);
        let first = p.stats();
        assert_eq!((first.busy_ns, first.run_sum_ns), (0, 0));
        assert_eq!(first.run_buckets, vec![0; RUN_BUCKETS_NS.len() + 1]);
        // The only thread is held, so the next five tasks queue behind it for at least 200 ms.
        let (_h, release) = blocker(&p, 100);
        let a = p.stats();
        thread::sleep(Duration::from_millis(20));
        let b = p.stats();
        assert!(
            b.busy_ns - a.busy_ns >= 20_000_000,
            "a running task's time counts while it runs"
        );
        assert_eq!(b.run_buckets.iter().sum::<u64>(), 0, "not finished yet");
        for i in 0..5 {
            p.submit(measured(2), SubmitOptions::default(), i).unwrap();
        }
        thread::sleep(Duration::from_millis(200));
        let c = p.stats();
        release.send(()).unwrap();
        let mut own = 0;
        let mut last = c.busy_ns;
        for _ in 0..6 {
            let (t, r) = recv(&rx);
            if t < 5 {
                own += r.unwrap();
            }
            let now = p.stats().busy_ns;
            assert!(now >= last, "busy time never goes back");
            last = now;
        }
        let s = p.stats();
        let elapsed = t0.elapsed().as_nanos() as u64;
        // Busy: at least the tasks' own measured run time (and the blocker's 220 ms), at most
        // the elapsed time of the pool's one thread.
        assert!(s.busy_ns >= own + 220_000_000, "{} < {own}", s.busy_ns);
        assert!(s.busy_ns <= elapsed, "{} > {elapsed}", s.busy_ns);
        assert_eq!(
            s.run_buckets.iter().sum::<u64>(),
            6,
            "one count per task run"
        );
        assert!(s.run_sum_ns >= own + 220_000_000);
        // One thread runs one task at a time, so run times (queue time excluded) add up to less
        // than the elapsed time; with the 200+ ms each of five queued tasks waited, they would not.
        assert!(s.run_sum_ns <= elapsed, "{} > {elapsed}", s.run_sum_ns);
        assert!(s.wait_time.max >= 200.0, "the queueing did happen");
        // Every task ran at least 2 ms (the blocker 220 ms): no count in a bucket below.
        let at_2ms = RUN_BUCKETS_NS.partition_point(|&le| le < 2_000_000);
        assert_eq!(s.run_buckets[at_2ms..].iter().sum::<u64>(), 6);
        let at_220ms = RUN_BUCKETS_NS.partition_point(|&le| le < 220_000_000);
        assert!(s.run_buckets[at_220ms..].iter().sum::<u64>() >= 1);
        assert!(s.busy_ns >= s.run_sum_ns, "busy covers every task's run");
    }

    #[test]
    fn close_runs_queued_work_then_stops() {
        let (p, rx, sink) = pool(2, None);
        for i in 0..50 {
            p.submit(value(i), SubmitOptions::default(), i).unwrap();
        }
        p.close();
        assert_eq!(
            p.submit(value(0), SubmitOptions::default(), 99)
                .unwrap_err(),
            (SubmitError::Closed, 99)
        );
        for _ in 0..50 {
            assert!(recv(&rx).1.is_ok());
        }
        let t0 = Instant::now();
        while sink.stopped.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.stopped.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn destroy_settles_queued_and_running_with_closed() {
        let (p, rx, sink) = pool(1, None);
        let (started_tx, started) = channel();
        p.submit(
            run(move |ctx| {
                started_tx.send(()).unwrap();
                ctx.sleep(Duration::from_secs(60))?;
                Ok(0)
            }),
            SubmitOptions::default(),
            1,
        )
        .unwrap();
        started.recv_timeout(Duration::from_secs(10)).unwrap();
        p.submit(value(2), SubmitOptions::default(), 2).unwrap();
        let mut tickets = p.destroy();
        tickets.sort();
        assert_eq!(tickets, vec![1, 2]);
        let t0 = Instant::now();
        while sink.stopped.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(10) {
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(sink.stopped.load(Ordering::SeqCst), 1);
        assert!(rx.try_recv().is_err(), "nothing is delivered twice");
        assert_eq!(p.stats().closed, 2);
    }

    #[test]
    fn soak_every_task_settles_exactly_once() {
        let (p, rx, _) = pool(2, None);
        let n = 20_000u64;
        let mut handles = Vec::new();
        let mut direct = Vec::new();
        let mut rng = 0x2545F4914F6CDD1Du64;
        let mut next = || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for i in 0..n {
            let r = next();
            let opts = SubmitOptions {
                priority: (r % 5) as f64,
                timeout: if r % 7 == 0 {
                    Some(Duration::from_micros(r % 500))
                } else {
                    None
                },
            };
            let spin = r % 50;
            let h = p
                .submit(
                    run(move |ctx| {
                        for _ in 0..spin {
                            ctx.check()?;
                            std::hint::spin_loop();
                        }
                        Ok(i)
                    }),
                    opts,
                    i,
                )
                .unwrap();
            if r % 3 == 0 {
                handles.push(h);
            }
            if handles.len() > 16 {
                let h = handles.swap_remove((next() % 16) as usize);
                direct.extend(p.cancel(&h, CancelReason::Aborted));
            }
        }
        for h in handles {
            direct.extend(p.cancel(&h, CancelReason::Aborted));
        }
        let mut count = vec![0u8; n as usize];
        for t in &direct {
            count[*t as usize] += 1;
        }
        for _ in 0..(n as usize - direct.len()) {
            count[recv(&rx).0 as usize] += 1;
        }
        assert!(rx.recv_timeout(Duration::from_millis(200)).is_err());
        assert!(count.iter().all(|c| *c == 1));
        let s = p.stats();
        assert_eq!(s.completed + s.failed + s.cancelled(), n);
    }

    /// A flag that one thread raises and others wait for (a bounded wait: a test that never
    /// sees it fails instead of hanging).
    #[derive(Default)]
    struct Flag(Mutex<bool>, std::sync::Condvar);

    impl Flag {
        fn raise(&self) {
            *lock(&self.0) = true;
            self.1.notify_all();
        }
        fn is_up(&self) -> bool {
            *lock(&self.0)
        }
        fn wait(&self) -> bool {
            let (up, _) = self
                .1
                .wait_timeout_while(lock(&self.0), Duration::from_secs(10), |up| !*up)
                .unwrap();
            *up
        }
    }

    fn no_helper() -> TaskError {
        TaskError::failed(ErrorCode::InvalidState, "no other thread ran a part")
    }

    #[test]
    fn parallel_parts_run_once_each_and_an_idle_thread_helps() {
        let (p, rx, _) = pool(2, None);
        let runs: Arc<Vec<AtomicUsize>> = Arc::new((0..32).map(|_| AtomicUsize::new(0)).collect());
        let counts = Arc::clone(&runs);
        p.submit(
            run(move |ctx| {
                let owner = thread::current().id();
                let helped = Flag::default();
                let by_helpers = AtomicUsize::new(0);
                ctx.parallel(32, &|i| {
                    counts[i].fetch_add(1, Ordering::SeqCst);
                    if thread::current().id() == owner {
                        // Only another thread can end this wait: the parts must be shared.
                        if !helped.wait() {
                            return Err(no_helper());
                        }
                    } else {
                        by_helpers.fetch_add(1, Ordering::SeqCst);
                        helped.raise();
                    }
                    Ok(())
                })?;
                Ok(by_helpers.load(Ordering::SeqCst) as u64)
            }),
            SubmitOptions::default(),
            1,
        )
        .unwrap();
        let (_, outcome) = recv(&rx);
        assert!(outcome.unwrap() >= 1);
        assert!(runs.iter().all(|r| r.load(Ordering::SeqCst) == 1));
        assert_eq!(p.stats().completed, 1);
    }

    #[test]
    fn parallel_stays_on_the_only_thread_of_a_one_thread_pool_and_off_a_pool() {
        let (p, rx, _) = pool(1, None);
        p.submit(
            run(|ctx| {
                let owner = thread::current().id();
                let elsewhere = AtomicUsize::new(0);
                let done = AtomicUsize::new(0);
                ctx.parallel(100, &|_| {
                    if thread::current().id() != owner {
                        elsewhere.fetch_add(1, Ordering::SeqCst);
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })?;
                assert_eq!(elsewhere.load(Ordering::SeqCst), 0);
                Ok(done.load(Ordering::SeqCst) as u64)
            }),
            SubmitOptions::default(),
            1,
        )
        .unwrap();
        assert_eq!(recv(&rx), (1, Ok(100)));
        // Not on a pool thread: every part runs here, in order.
        let ctx = tests_support::ctx();
        let order = Mutex::new(Vec::new());
        ctx.parallel(5, &|i| {
            lock(&order).push(i);
            Ok(())
        })
        .unwrap();
        assert_eq!(*lock(&order), vec![0, 1, 2, 3, 4]);
    }

    #[test]
    fn a_failing_part_is_the_result() {
        let ctx = tests_support::ctx();
        let ran = AtomicUsize::new(0);
        let outcome = ctx.parallel(10, &|i| {
            ran.fetch_add(1, Ordering::SeqCst);
            if i == 3 {
                return Err(TaskError::failed(ErrorCode::CorruptInput, "bad"));
            }
            Ok(())
        });
        assert_eq!(outcome.unwrap_err().code(), ErrorCode::CorruptInput);
        assert_eq!(ran.load(Ordering::SeqCst), 4);
    }

    #[test]
    fn a_helper_panic_fails_the_task_and_the_pool_keeps_serving() {
        let (p, rx, _) = pool(2, None);
        p.submit(
            run(|ctx| {
                let owner = thread::current().id();
                let helped = Flag::default();
                ctx.parallel(8, &|_| {
                    if thread::current().id() == owner {
                        if !helped.wait() {
                            return Err(no_helper());
                        }
                        return Ok(());
                    }
                    helped.raise();
                    panic!("helper boom")
                })?;
                Ok(0)
            }),
            SubmitOptions::default(),
            1,
        )
        .unwrap();
        assert_eq!(
            recv(&rx),
            (1, Err(TaskError::Panicked("helper boom".into())))
        );
        for i in 2..6 {
            p.submit(value(i), SubmitOptions::default(), i).unwrap();
        }
        let mut got: Vec<u64> = (2..6).map(|_| recv(&rx).0).collect();
        got.sort();
        assert_eq!(got, vec![2, 3, 4, 5]);
        assert_eq!(p.stats().failed, 1);
    }

    /// A job whose parts run until the task is cancelled; `started` rises once two threads run
    /// parts, and `late` counts parts that started after `parallel` returned (there must be none).
    fn endless_parts(started: &Arc<Flag>, late: &Arc<AtomicUsize>) -> TestWork {
        let (started, late) = (Arc::clone(started), Arc::clone(late));
        run(move |ctx| {
            let returned = Arc::new(AtomicBool::new(false));
            let threads = Mutex::new(std::collections::HashSet::new());
            let outcome = ctx.parallel(1000, &|_| {
                if returned.load(Ordering::SeqCst) {
                    late.fetch_add(1, Ordering::SeqCst);
                }
                let mut t = lock(&threads);
                t.insert(thread::current().id());
                if t.len() == 2 {
                    started.raise();
                }
                drop(t);
                loop {
                    ctx.check()?;
                    thread::sleep(Duration::from_millis(1));
                }
            });
            returned.store(true, Ordering::SeqCst);
            outcome.map(|()| 0)
        })
    }

    #[test]
    fn cancel_stops_the_job_and_its_helpers_and_settles_once() {
        let (p, rx, _) = pool(2, None);
        let (started, late) = (Arc::new(Flag::default()), Arc::new(AtomicUsize::new(0)));
        let h = p
            .submit(endless_parts(&started, &late), SubmitOptions::default(), 1)
            .unwrap();
        assert!(started.wait(), "two threads ran parts");
        assert_eq!(p.cancel(&h, CancelReason::Aborted), Some(1));
        // Both threads are free again: two sleepers that wait for each other both run.
        let both = Arc::new((Flag::default(), Flag::default()));
        for (ticket, mine) in [(2, true), (3, false)] {
            let both = Arc::clone(&both);
            p.submit(
                run(move |_| {
                    let (a, b) = &*both;
                    let (me, other) = if mine { (a, b) } else { (b, a) };
                    me.raise();
                    Ok(other.wait() as u64)
                }),
                SubmitOptions::default(),
                ticket,
            )
            .unwrap();
        }
        let mut got = [recv(&rx), recv(&rx)];
        got.sort_by_key(|(t, _)| *t);
        assert_eq!(got, [(2, Ok(1)), (3, Ok(1))]);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
        assert_eq!(late.load(Ordering::SeqCst), 0);
        assert_eq!(p.stats().aborted, 1);
    }

    #[test]
    fn a_timeout_stops_the_job_and_its_helpers() {
        let (p, rx, _) = pool(2, None);
        let (started, late) = (Arc::new(Flag::default()), Arc::new(AtomicUsize::new(0)));
        let opts = SubmitOptions {
            priority: 0.0,
            timeout: Some(Duration::from_millis(100)),
        };
        p.submit(endless_parts(&started, &late), opts, 1).unwrap();
        assert_eq!(
            recv(&rx),
            (1, Err(TaskError::Cancelled(CancelReason::TimedOut)))
        );
        p.submit(value(4), SubmitOptions::default(), 2).unwrap();
        assert_eq!(recv(&rx), (2, Ok(4)));
        assert_eq!(late.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn destroy_and_close_while_helpers_run() {
        let (p, rx, sink) = pool(2, None);
        let (started, late) = (Arc::new(Flag::default()), Arc::new(AtomicUsize::new(0)));
        p.submit(endless_parts(&started, &late), SubmitOptions::default(), 1)
            .unwrap();
        assert!(started.wait());
        assert_eq!(p.destroy(), vec![1]);
        let stopped = |sink: &TestSink| {
            let t0 = Instant::now();
            while sink.stopped.load(Ordering::SeqCst) == 0 && t0.elapsed() < Duration::from_secs(10)
            {
                thread::sleep(Duration::from_millis(1));
            }
            sink.stopped.load(Ordering::SeqCst)
        };
        assert_eq!(stopped(&sink), 1);
        assert!(rx.try_recv().is_err());

        // close(): the job (and its helper) run to the end, then the threads exit.
        let (p, rx, sink) = pool(2, None);
        let helped = Arc::new(Flag::default());
        let flag = Arc::clone(&helped);
        p.submit(
            run(move |ctx| {
                let owner = thread::current().id();
                let done = AtomicUsize::new(0);
                ctx.parallel(200, &|_| {
                    if thread::current().id() != owner {
                        flag.raise();
                    }
                    thread::sleep(Duration::from_micros(200));
                    done.fetch_add(1, Ordering::SeqCst);
                    Ok(())
                })?;
                Ok(done.load(Ordering::SeqCst) as u64)
            }),
            SubmitOptions::default(),
            1,
        )
        .unwrap();
        assert!(helped.wait());
        p.close();
        assert_eq!(recv(&rx), (1, Ok(200)));
        assert_eq!(stopped(&sink), 1);
    }

    #[test]
    fn a_queued_task_goes_before_helping() {
        let (p, rx, _) = pool(2, None);
        let (ran_b, helping) = (Arc::new(Flag::default()), Arc::new(Flag::default()));
        let done = Arc::new(AtomicUsize::new(0));
        const PARTS: usize = 1000;
        {
            let (ran_b, helping, done) = (ran_b.clone(), helping.clone(), done.clone());
            p.submit(
                run(move |ctx| {
                    let owner = thread::current().id();
                    ctx.parallel(PARTS, &|_| {
                        if thread::current().id() == owner {
                            // Held until the queued task ran: only the helper thread is left
                            // to run it, and only if it stops helping.
                            if !ran_b.wait() {
                                return Err(no_helper());
                            }
                        } else {
                            helping.raise();
                            thread::sleep(Duration::from_millis(1));
                        }
                        done.fetch_add(1, Ordering::SeqCst);
                        Ok(())
                    })?;
                    Ok(done.load(Ordering::SeqCst) as u64)
                }),
                SubmitOptions::default(),
                1,
            )
            .unwrap();
        }
        assert!(helping.wait());
        let seen = Arc::new(AtomicUsize::new(usize::MAX));
        {
            let (ran_b, done, seen) = (ran_b.clone(), done.clone(), seen.clone());
            let lower = SubmitOptions {
                priority: -1.0,
                timeout: None,
            };
            p.submit(
                run(move |_| {
                    seen.store(done.load(Ordering::SeqCst), Ordering::SeqCst);
                    ran_b.raise();
                    Ok(2)
                }),
                lower,
                2,
            )
            .unwrap();
        }
        // Either may settle first: the helping task finishes its last parts at once when the
        // queued one lets it go.
        let mut settled = [recv(&rx), recv(&rx)];
        settled.sort_by_key(|(ticket, _)| *ticket);
        assert_eq!(settled, [(1, Ok(PARTS as u64)), (2, Ok(2))]);
        // It ran between two parts, long before the helper could have run them all.
        assert!(seen.load(Ordering::SeqCst) < PARTS / 2, "{seen:?}");
        assert!(ran_b.is_up());
    }
}

/// Helpers for unit tests of code that runs as pool tasks (here and in the addon crate).
#[doc(hidden)]
pub mod tests_support {
    /// A cancel context for running kernels directly in unit tests.
    pub fn ctx() -> super::TaskCtx {
        super::TaskCtx::new()
    }
}
