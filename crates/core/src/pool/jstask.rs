//! JavaScript tasks: a pool thread that picks a JS task lends itself to one worker_thread
//! while that worker runs it, so native kernels and JS tasks share one concurrency budget.
//!
//! Each of the pool's `threads` slots here holds at most one worker. A slot is free when no pool
//! thread has claimed or leased it; its worker goes through [`SlotState`]:
//!
//! ```text
//!   Absent --spawn_worker--> Starting --attach--> Ready --retire/exited--> Absent
//!      ^                        |                   |
//!      +-------exited-----------+                   +--(lease) busy with task `running`
//! ```
//!
//! A task's journey (one pool thread P, one worker W, the pool's JS thread J):
//!
//! ```text
//!   J: run()          -> queue;  (cold pool: J spawns W at once, see `prestart`)
//!   P: pops the task  -> serve(): claims a free slot (Ready first, then Starting, then Absent),
//!                        waits until its worker is Ready, sends Run through the worker's inbox,
//!                        stands by: forwards aborts, terminates W past the grace period, fails
//!                        the task if W dies
//!   W: runs it        -> done(): settles the task through the lease (J is woken to resolve
//!                        its promise) and, when the head of the queue is a JS task, gets it in
//!                        the same call (no wake-up at all)
//!   W: queue empty    -> done() keeps W for up to LENT_WAIT in the scheduler's `pull`: the
//!                        worker that reported last first spins briefly (registered before its
//!                        result is delivered, so J's next task is left to it and needs no
//!                        wake-up at all), then blocks; a JS task submitted meanwhile is handed
//!                        to the worker that waited last (one wake-up: J -> W), before any
//!                        sleeping pool thread is woken
//!   W: nothing next   -> the lease is cleared; P sees that and goes back to the queue; the
//!                        next task then takes two wake-ups (J -> P, P -> W through the inbox)
//! ```
//!
//! A one-at-a-time round trip therefore costs one cross-thread wake-up (W -> J, a libuv async
//! send) when the worker is still spinning, two when it already blocks; a stream of tasks
//! costs none per task on the worker's side. The same worker keeps taking the tasks while it
//! keeps up with them (its caches stay warm); the others time out and hand their slots back.
//!
//! Data never goes through `postMessage`: the task's serialized bytes go straight from the
//! submitting thread to the worker, and the result bytes straight back. No napi types here: the
//! worker inbox and the control channel to the pool's JS thread (spawn/terminate a worker) are
//! traits the binding implements.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::scheduler::{Lease, Lender, TaskError};
use crate::error::ErrorCode;
use crate::sync::lock;

/// Memory of an `ArrayBuffer` transferred to a JS task: the binding keeps it alive (and knows
/// how to release it, on drop) until the worker has copied it.
pub trait Transfer: Send {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Start of the bytes, which the worker copies.
    fn as_mut_ptr(&mut self) -> *mut u8;
}

/// A queued JS task: the serialized argument, the export to call and the contents of the
/// ArrayBuffers it transfers (copied once, into the worker's heap, when the task starts).
pub struct JsJob {
    pub payload: Vec<u8>,
    pub name: Option<String>,
    /// A task module other than the pool's (`run(data, { filename })`).
    pub filename: Option<String>,
    pub buffers: Vec<Box<dyn Transfer>>,
    /// The submitting thread's id for a task that talks to it (progress, or data that must be
    /// handed over by `postMessage`); `None` for a task that does not.
    pub tag: Option<f64>,
    /// The data itself is handed over by the submitting thread (see `tag`); `payload` is empty.
    pub relayed: bool,
    /// The caller listens to the task's progress values (see `tag`).
    pub progress: bool,
}

/// A message for a worker's JS thread.
pub enum WorkerMsg {
    Run {
        seq: u64,
        job: JsJob,
    },
    Abort {
        seq: u64,
    },
    /// The pool is gone: the worker should exit.
    Exit,
}

/// Delivers messages into one worker's JS thread. `false` when the worker is gone.
pub trait WorkerInbox: Send + Sync {
    fn send(&self, msg: WorkerMsg) -> bool;
}

/// Requests for the pool's JS thread, which owns the `Worker` objects.
pub trait WorkerControl: Send + Sync {
    fn spawn_worker(&self, slot: usize, generation: u64);
    fn terminate_worker(&self, slot: usize, generation: u64);
}

/// The life of a slot's worker.
enum SlotState {
    Absent,
    Starting,
    Ready(Arc<dyn WorkerInbox>),
}

impl SlotState {
    /// Preference when a pool thread picks a free slot: a ready worker, then one starting.
    fn rank(&self) -> u8 {
        match self {
            SlotState::Ready(_) => 0,
            SlotState::Starting => 1,
            SlotState::Absent => 2,
        }
    }
}

struct SlotData<T> {
    worker: SlotState,
    /// Incremented for every worker spawned on this slot; stale events carry an old value.
    generation: u64,
    /// A pool thread picked this slot and waits for its worker to be ready.
    claimed: bool,
    /// Set while a pool thread is lent to this slot's worker.
    lease: Option<Arc<dyn Lease<T, JsJob>>>,
    /// The task the worker is running.
    running: Option<u64>,
    /// The worker died while it had the slot (or while it was starting); why.
    died: Option<String>,
    /// The worker is being terminated: it gets no further task.
    terminating: bool,
}

impl<T> SlotData<T> {
    fn free(&self) -> bool {
        self.lease.is_none() && !self.claimed && !self.terminating
    }

    fn leased_by(&self, lease: &Arc<dyn Lease<T, JsJob>>) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|l| std::ptr::addr_eq(Arc::as_ptr(l), Arc::as_ptr(lease)))
    }
}

struct Slot<T> {
    state: Mutex<SlotData<T>>,
    changed: Condvar,
}

/// The worker side of one pool. `T` is the pool's output type, made from result bytes.
pub struct JsSlots<T> {
    id: u64,
    slots: Vec<Slot<T>>,
    control: Arc<dyn WorkerControl>,
    /// How long a cancelled task may keep running before its worker is terminated.
    grace: Duration,
    /// The pool's environment is gone: no worker will start or report again.
    shut: AtomicBool,
}

/// A slot whose worker is ready, still locked, and that worker's inbox.
type Ready<'a, T> = (MutexGuard<'a, SlotData<T>>, Arc<dyn WorkerInbox>);

/// How often a standing-by pool thread re-checks its task's cancel flag even without being told
/// (a cancel wakes it at once through [`Lender::cancelled`]); also the pace of the grace timer.
const POLL: Duration = Duration::from_millis(50);

const SHUT: &str = "the pool's environment was torn down";

/// A pool's output type: made from a JS task's result bytes.
pub trait JsOutput: From<Vec<u8>> + Send + 'static {}

impl<T: From<Vec<u8>> + Send + 'static> JsOutput for T {}

/// Live pools by id, where workers' calls find theirs.
type Registry = Mutex<HashMap<u64, Weak<dyn Any + Send + Sync>>>;

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(Registry::default)
}

impl<T: JsOutput> JsSlots<T> {
    pub fn new(threads: usize, grace: Duration, control: Arc<dyn WorkerControl>) -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let slots = (0..threads)
            .map(|_| Slot {
                state: Mutex::new(SlotData {
                    worker: SlotState::Absent,
                    generation: 0,
                    claimed: false,
                    lease: None,
                    running: None,
                    died: None,
                    terminating: false,
                }),
                changed: Condvar::new(),
            })
            .collect();
        let this = Arc::new(JsSlots {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            slots,
            control,
            grace,
            shut: AtomicBool::new(false),
        });
        let weak: Weak<dyn Any + Send + Sync> = Arc::downgrade(&this) as Weak<Self>;
        let mut reg = lock(registry());
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(this.id, weak);
        drop(reg);
        this
    }

    /// The id workers use to find this pool (it crosses into their environments as a number).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn find(id: u64) -> Option<Arc<JsSlots<T>>> {
        let pool = lock(registry()).get(&id).and_then(Weak::upgrade)?;
        pool.downcast().ok()
    }

    fn slot(&self, slot: usize) -> Option<&Slot<T>> {
        self.slots.get(slot)
    }

    fn with_slot(&self, slot: usize, f: impl FnOnce(&mut SlotData<T>) -> bool) -> bool {
        let Some(Slot { state, changed }) = self.slot(slot) else {
            return false;
        };
        let done = f(&mut lock(state));
        if done {
            changed.notify_all();
        }
        done
    }

    /// Claims a free slot for a pool thread, preferring one whose worker is ready (then one
    /// whose worker is starting), so that as few workers as possible are started. Serving pool
    /// threads never outnumber slots, so one is always free.
    fn claim(&self) -> Option<usize> {
        for rank in 0..=2 {
            for (index, slot) in self.slots.iter().enumerate() {
                let mut st = lock(&slot.state);
                if st.free() && st.worker.rank() == rank {
                    st.claimed = true;
                    return Some(index);
                }
            }
        }
        None
    }

    /// Starts a worker at once on a free slot without one (on the pool's JS thread, which asks
    /// when it submits a task that no worker is there for), so that a task submitted to a cold
    /// pool does not wait for that thread's event loop to start its worker. Returns the slot
    /// and generation to spawn, if a slot was free.
    pub fn prestart(&self) -> Option<(usize, u64)> {
        if self.shut.load(Ordering::Acquire) {
            return None;
        }
        for (index, slot) in self.slots.iter().enumerate() {
            let mut st = lock(&slot.state);
            if st.free() && matches!(st.worker, SlotState::Absent) {
                st.generation += 1;
                st.worker = SlotState::Starting;
                return Some((index, st.generation));
            }
        }
        None
    }

    /// Waits (on the pool thread) until the claimed slot's worker is ready, starting one if
    /// needed. `Err` when the task should fail instead: its worker died starting, it was
    /// cancelled, or the pool's environment is gone. The claim is dropped either way.
    fn ready_worker<'a>(
        &self,
        index: usize,
        slot: &'a Slot<T>,
        lease: &dyn Lease<T, JsJob>,
        seq: u64,
    ) -> Result<Ready<'a, T>, TaskError> {
        let mut st = lock(&slot.state);
        let outcome = loop {
            if self.shut.load(Ordering::Acquire) {
                break Err(TaskError::failed(ErrorCode::WorkerCrashed, SHUT));
            }
            if let Some(message) = st.died.take() {
                st.worker = SlotState::Absent;
                break Err(TaskError::failed(ErrorCode::WorkerCrashed, message));
            }
            match &st.worker {
                SlotState::Ready(inbox) => break Ok(Arc::clone(inbox)),
                SlotState::Absent => {
                    st.generation += 1;
                    st.worker = SlotState::Starting;
                    self.control.spawn_worker(index, st.generation);
                }
                SlotState::Starting => {}
            }
            // A task cancelled while its worker starts gives up; the worker still comes up.
            if let Some(reason) = lease.cancelled(seq) {
                break Err(TaskError::Cancelled(reason));
            }
            st = slot
                .changed
                .wait_timeout(st, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        st.claimed = false;
        outcome.map(|inbox| (st, inbox))
    }

    /// The worker finished task `seq` with `result` (its value, or with `ok == false` the error
    /// it threw, encoded by the worker). Returns the next task for it, if the next queued task
    /// is a JS task; otherwise the slot goes back to its pool thread.
    pub fn done(&self, slot: usize, seq: u64, result: Vec<u8>, ok: bool) -> Option<(u64, JsJob)> {
        let Slot { state, changed } = self.slot(slot)?;
        let st = lock(state);
        if st.running != Some(seq) {
            return None;
        }
        let lease = Arc::clone(st.lease.as_ref()?);
        let pull = !st.terminating && !self.shut.load(Ordering::Acquire);
        // Unlocked while the pool settles `seq` and maybe waits for the next task: the pool
        // thread standing by only reads the slot meanwhile (the worker is alive: it is here).
        drop(st);
        let next = lease.finish(seq, Ok(T::from(result)), !ok, pull);
        let mut st = lock(state);
        st.running = next.as_ref().map(|(seq, _)| *seq);
        if st.running.is_none() && !st.terminating {
            // A terminating worker keeps the slot until it has exited.
            st.lease = None;
            changed.notify_all();
        }
        next
    }

    /// A worker has loaded the task module and is ready for tasks.
    pub fn attach(&self, slot: usize, generation: u64, inbox: Arc<dyn WorkerInbox>) -> bool {
        if self.shut.load(Ordering::Acquire) {
            return false;
        }
        self.with_slot(slot, |st| {
            if st.generation == generation && matches!(st.worker, SlotState::Starting) {
                st.worker = SlotState::Ready(inbox);
                true
            } else {
                false
            }
        })
    }

    /// The worker of `generation` exited or failed to start; `message` says why. `None` for a
    /// stale generation; otherwise whether a task had (or waited for) the worker, and so fails
    /// with `message`.
    pub fn exited(&self, slot: usize, generation: u64, message: String) -> Option<bool> {
        let mut task = None;
        self.with_slot(slot, |st| {
            if st.generation != generation {
                return false;
            }
            let was_starting = matches!(st.worker, SlotState::Starting);
            st.worker = SlotState::Absent;
            let affected = st.lease.is_some() || was_starting;
            if affected {
                st.died = Some(message);
            }
            task = Some(affected);
            true
        });
        task
    }

    /// An idle worker asks to leave; granted only if it does not have the slot.
    pub fn retire(&self, slot: usize, generation: u64) -> bool {
        self.with_slot(slot, |st| {
            if st.generation == generation && st.free() && matches!(st.worker, SlotState::Ready(_))
            {
                st.worker = SlotState::Absent;
                true
            } else {
                false
            }
        })
    }

    /// The pool's environment is being torn down: its workers are terminated with it and will
    /// never report again. Every pool thread standing by fails its task and returns; no worker
    /// starts any more, so the threads can finish and exit.
    pub fn shutdown(&self) {
        self.shut.store(true, Ordering::Release);
        for slot in &self.slots {
            let mut st = lock(&slot.state);
            if st.lease.is_some() {
                st.died = Some(SHUT.to_string());
            }
            st.terminating = false;
            drop(st);
            slot.changed.notify_all();
        }
    }
}

impl<T: JsOutput> Lender<T, JsJob> for JsSlots<T> {
    fn cancelled(&self, _pool_thread: usize) {
        // Any slot may be lent to that pool thread; cancels are rare, so tell them all. Under
        // each lock: a standing-by thread is then either before its check or already waiting.
        for slot in &self.slots {
            drop(lock(&slot.state));
            slot.changed.notify_all();
        }
    }

    fn serve(&self, lease: Arc<dyn Lease<T, JsJob>>, seq: u64, job: JsJob) {
        let fail = |e: TaskError| {
            lease.finish(seq, Err(e), false, false);
        };
        let Some((index, slot)) = self.claim().and_then(|i| Some((i, self.slot(i)?))) else {
            return fail(TaskError::failed(
                ErrorCode::WorkerCrashed,
                "no free worker slot",
            ));
        };
        let (mut st, inbox) = match self.ready_worker(index, slot, &*lease, seq) {
            Ok(ready) => ready,
            Err(e) => return fail(e),
        };
        st.lease = Some(Arc::clone(&lease));
        st.running = Some(seq);
        st.terminating = false;
        if !inbox.send(WorkerMsg::Run { seq, job }) {
            st.lease = None;
            st.running = None;
            st.worker = SlotState::Absent;
            drop(st);
            return fail(TaskError::failed(
                ErrorCode::WorkerCrashed,
                "the worker is gone",
            ));
        }
        // Stand by while the worker has the slot: forward aborts, terminate a worker whose task
        // ignores its abort past the grace period, fail the task of a worker that died.
        let mut abort_sent: Option<(u64, Instant)> = None;
        loop {
            if !st.leased_by(&lease) {
                return;
            }
            if let Some(message) = st.died.take() {
                st.lease = None;
                st.terminating = false;
                let running = st.running.take();
                drop(st);
                slot.changed.notify_all();
                if let Some(seq) = running {
                    let error = match lease.cancelled(seq) {
                        Some(reason) => TaskError::Cancelled(reason),
                        None => TaskError::failed(ErrorCode::WorkerCrashed, message),
                    };
                    lease.finish(seq, Err(error), false, false);
                }
                return;
            }
            let mut wait = POLL;
            if let Some(seq) = st.running.filter(|seq| lease.cancelled(*seq).is_some()) {
                match abort_sent {
                    Some((sent, at)) if sent == seq => {
                        let left = self.grace.saturating_sub(at.elapsed());
                        if st.terminating {
                            // Waiting for the worker's exit.
                        } else if left.is_zero() {
                            // The task ignores its AbortSignal: its worker is terminated and the
                            // slot stays busy until the worker has exited.
                            st.terminating = true;
                            self.control.terminate_worker(index, st.generation);
                        } else {
                            wait = wait.min(left);
                        }
                    }
                    _ => {
                        inbox.send(WorkerMsg::Abort { seq });
                        abort_sent = Some((seq, Instant::now()));
                        wait = wait.min(self.grace);
                    }
                }
            }
            st = slot
                .changed
                .wait_timeout(st, wait)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

impl<T> Drop for JsSlots<T> {
    fn drop(&mut self) {
        lock(registry()).remove(&self.id);
        // A pool dropped without close() (garbage-collected) must not leave idle workers behind.
        for slot in &self.slots {
            if let SlotState::Ready(inbox) = &lock(&slot.state).worker {
                inbox.send(WorkerMsg::Exit);
            }
        }
    }
}

#[cfg(all(test, not(feature = "loom")))]
mod tests {
    use super::*;
    use crate::pool::scheduler::{CancelReason, Pool, PoolOptions, Sink, SubmitOptions, Work};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::thread;

    type Outcome = Result<Vec<u8>, TaskError>;

    struct TestSink(Mutex<Sender<(u64, Outcome)>>);

    impl Sink<u64, Vec<u8>> for TestSink {
        fn deliver(&self, ticket: u64, outcome: Outcome) {
            lock(&self.0).send((ticket, outcome)).unwrap();
        }
        fn stopped(&self) {}
    }

    /// A fake JS side: workers that answer on their own thread. Payload `crash` kills the
    /// worker, `hang` never answers, anything else is answered reversed.
    struct Fake {
        slots: OnceLock<Weak<JsSlots<Vec<u8>>>>,
        spawned: Mutex<Vec<(usize, u64)>>,
        terminated: Mutex<Vec<(usize, u64)>>,
        /// Tasks that reached a worker through its inbox (from a pool thread lending its slot)
        /// rather than as the answer to the previous task's report.
        inboxed: Mutex<Vec<u64>>,
        /// Every task a worker started, in order.
        ran: Mutex<Vec<u64>>,
        /// The slot of the worker that ran each task.
        ran_on: Mutex<HashMap<u64, usize>>,
        ignore_abort: bool,
        /// Spawned workers attach (a `false` leaves them starting forever).
        attach: bool,
        /// Tasks with payload `meet` that have started; each waits until two have.
        met: Mutex<usize>,
        meeting: Condvar,
        /// Permits for tasks with payload `gate`, each of which takes one before answering.
        gate: Mutex<usize>,
    }

    struct FakeInbox {
        fake: Arc<Fake>,
        slot: usize,
        generation: u64,
    }

    impl FakeInbox {
        /// Runs tasks the way lib/worker.js does: each report may return the next task.
        fn run(
            fake: &Fake,
            slots: Arc<JsSlots<Vec<u8>>>,
            slot: usize,
            generation: u64,
            mut seq: u64,
            mut job: JsJob,
        ) {
            loop {
                lock(&fake.ran).push(seq);
                lock(&fake.ran_on).insert(seq, slot);
                if job.payload == b"meet" {
                    let mut met = lock(&fake.met);
                    *met += 1;
                    fake.meeting.notify_all();
                    let deadline = Instant::now() + Duration::from_secs(10);
                    while !(*met).is_multiple_of(2) && Instant::now() < deadline {
                        met = fake.meeting.wait_timeout(met, POLL).unwrap().0;
                    }
                }
                if job.payload == b"gate" {
                    let mut permits = lock(&fake.gate);
                    while *permits == 0 {
                        permits = fake.meeting.wait(permits).unwrap();
                    }
                    *permits -= 1;
                }
                if job.payload == b"crash" {
                    slots.exited(slot, generation, "worker crashed".into());
                    return;
                }
                if job.payload == b"hang" {
                    return;
                }
                let mut out = job.payload.clone();
                out.reverse();
                match slots.done(slot, seq, out, true) {
                    Some((next_seq, next_job)) => (seq, job) = (next_seq, next_job),
                    None => return,
                }
            }
        }
    }

    impl WorkerInbox for FakeInbox {
        fn send(&self, msg: WorkerMsg) -> bool {
            // Exit comes from the pool's Drop, when it can no longer be upgraded.
            let Some(slots) = self.fake.slots.get().unwrap().upgrade() else {
                return matches!(msg, WorkerMsg::Exit);
            };
            let (slot, generation, ignore) = (self.slot, self.generation, self.fake.ignore_abort);
            let fake = Arc::clone(&self.fake);
            if let WorkerMsg::Run { seq, .. } = &msg {
                lock(&self.fake.inboxed).push(*seq);
            }
            thread::spawn(move || match msg {
                WorkerMsg::Run { seq, job } => {
                    FakeInbox::run(&fake, slots, slot, generation, seq, job)
                }
                WorkerMsg::Abort { seq } => {
                    if !ignore {
                        slots.done(slot, seq, b"aborted".to_vec(), true);
                    }
                }
                WorkerMsg::Exit => {}
            });
            true
        }
    }

    impl WorkerControl for Arc<Fake> {
        fn spawn_worker(&self, slot: usize, generation: u64) {
            lock(&self.spawned).push((slot, generation));
            if !self.attach {
                return;
            }
            let fake = Arc::clone(self);
            thread::spawn(move || {
                let slots = fake.slots.get().unwrap().upgrade().unwrap();
                let inbox = Arc::new(FakeInbox {
                    fake: Arc::clone(&fake),
                    slot,
                    generation,
                });
                assert!(slots.attach(slot, generation, inbox));
            });
        }
        fn terminate_worker(&self, slot: usize, generation: u64) {
            lock(&self.terminated).push((slot, generation));
            let slots = self.slots.get().unwrap().upgrade().unwrap();
            thread::spawn(move || {
                slots.exited(slot, generation, "terminated".into());
            });
        }
    }

    struct Setup {
        pool: Pool<u64, Vec<u8>, JsJob>,
        rx: Receiver<(u64, Outcome)>,
        slots: Arc<JsSlots<Vec<u8>>>,
        fake: Arc<Fake>,
    }

    fn setup(threads: usize, ignore_abort: bool) -> Setup {
        setup_with(threads, ignore_abort, true)
    }

    fn setup_with(threads: usize, ignore_abort: bool, attach: bool) -> Setup {
        let fake = Arc::new(Fake {
            slots: OnceLock::new(),
            spawned: Mutex::new(vec![]),
            terminated: Mutex::new(vec![]),
            inboxed: Mutex::new(vec![]),
            ran: Mutex::new(vec![]),
            ran_on: Mutex::new(HashMap::new()),
            ignore_abort,
            attach,
            met: Mutex::new(0),
            meeting: Condvar::new(),
            gate: Mutex::new(0),
        });
        let slots = JsSlots::new(
            threads,
            Duration::from_millis(20),
            Arc::new(Arc::clone(&fake)),
        );
        fake.slots.set(Arc::downgrade(&slots)).ok().unwrap();
        let (tx, rx) = channel();
        let options = PoolOptions {
            threads,
            max_queue: None,
            nice: 0,
        };
        let lender: Arc<dyn Lender<Vec<u8>, JsJob>> = slots.clone();
        let pool = Pool::new(options, Arc::new(TestSink(Mutex::new(tx))), Some(lender)).unwrap();
        Setup {
            pool,
            rx,
            slots,
            fake,
        }
    }

    fn js(payload: &[u8]) -> Work<Vec<u8>, JsJob> {
        Work::Lend(JsJob {
            payload: payload.to_vec(),
            name: None,
            filename: None,
            buffers: vec![],
            tag: None,
            relayed: false,
            progress: false,
        })
    }

    fn recv(rx: &Receiver<(u64, Outcome)>) -> (u64, Outcome) {
        rx.recv_timeout(Duration::from_secs(10))
            .expect("a task never settled")
    }

    #[test]
    fn starts_a_worker_once_and_reuses_it() {
        let s = setup(1, false);
        s.pool
            .submit(js(b"abc"), SubmitOptions::default(), 1)
            .unwrap();
        assert_eq!(recv(&s.rx), (1, Ok(b"cba".to_vec())));
        s.pool
            .submit(js(b"xy"), SubmitOptions::default(), 2)
            .unwrap();
        assert_eq!(recv(&s.rx), (2, Ok(b"yx".to_vec())));
        assert_eq!(*lock(&s.fake.spawned), vec![(0, 1)]);
        assert!(Arc::ptr_eq(&JsSlots::find(s.slots.id()).unwrap(), &s.slots));
    }

    #[test]
    fn a_worker_chains_queued_tasks_and_native_work_still_runs() {
        let s = setup(2, false);
        let (release, gate) = channel::<()>();
        // Both pool threads: one blocked in native work, the other serving JS tasks.
        s.pool
            .submit(
                Work::Run(Box::new(move |_| {
                    gate.recv().unwrap();
                    Ok(b"native".to_vec())
                })),
                SubmitOptions::default(),
                0,
            )
            .unwrap();
        for i in 1..=200u64 {
            s.pool
                .submit(js(&i.to_le_bytes()), SubmitOptions::default(), i)
                .unwrap();
        }
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..200 {
            let (ticket, outcome) = recv(&s.rx);
            let mut expect = ticket.to_le_bytes().to_vec();
            expect.reverse();
            assert_eq!(outcome, Ok(expect));
            assert!(seen.insert(ticket), "task {ticket} settled twice");
        }
        release.send(()).unwrap();
        assert_eq!(recv(&s.rx), (0, Ok(b"native".to_vec())));
        assert_eq!(
            lock(&s.fake.spawned).len(),
            1,
            "one worker served the whole stream"
        );
        // A native task is delivered just before its thread clears its slot.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while s.pool.stats().running != 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        let stats = s.pool.stats();
        assert_eq!((stats.completed, stats.running, stats.queued), (201, 0, 0));
    }

    #[test]
    fn a_worker_waiting_for_more_gets_the_next_task_before_an_idle_pool_thread() {
        let Setup { pool, rx, fake, .. } = setup(2, false);
        let pool = Arc::new(pool);
        let mut checked = 0;
        for round in 0..20u64 {
            // Tickets equal the pool's task sequence numbers (1, 2, 3, ... in submission order).
            let (first, native_ticket, second) = (round * 3 + 1, round * 3 + 2, round * 3 + 3);
            pool.submit(js(b"one"), SubmitOptions::default(), first)
                .unwrap();
            assert_eq!(recv(&rx).0, first);
            // The worker that ran `first` now waits for more (briefly). A native task on the
            // other pool thread queues the next JS task and returns at once, so that thread is
            // back at the queue while the waiting worker is still being woken.
            let p = Arc::clone(&pool);
            let (tx, waiting) = channel();
            let native = Work::Run(Box::new(move |_| {
                let waited = p.lent_waiters() > 0;
                p.submit(js(b"two"), SubmitOptions::default(), second)
                    .unwrap();
                tx.send(waited).unwrap();
                Ok(vec![])
            }));
            pool.submit(native, SubmitOptions::default(), native_ticket)
                .unwrap();
            let mut settled: Vec<u64> = vec![recv(&rx).0, recv(&rx).0];
            settled.sort();
            assert_eq!(settled, vec![native_ticket, second]);
            if waiting.recv().unwrap() {
                checked += 1;
                assert!(
                    !lock(&fake.inboxed).contains(&second),
                    "round {round}: a waiting worker ran the next task (no slot was lent for it)"
                );
            }
        }
        assert!(checked > 0, "the worker was never still waiting");
    }

    #[test]
    fn the_worker_that_reported_last_gets_the_next_task() {
        let Setup { pool, rx, fake, .. } = setup(2, false);
        let pause = || thread::sleep(Duration::from_micros(200));
        let (mut checked, mut to_last) = (0, 0);
        for round in 0..40u64 {
            let (gated, quick, next) = (round * 3 + 1, round * 3 + 2, round * 3 + 3);
            // One worker holds `gated` while the other runs `quick` and then waits for more;
            // `gated` is released a little later (after the first one's brief spin), so the
            // worker that ran it reports last.
            pool.submit(js(b"gate"), SubmitOptions::default(), gated)
                .unwrap();
            pool.submit(js(b"q"), SubmitOptions::default(), quick)
                .unwrap();
            assert_eq!(recv(&rx).0, quick);
            pause();
            *lock(&fake.gate) += 1;
            fake.meeting.notify_all();
            assert_eq!(recv(&rx).0, gated);
            pause();
            // Both block now unless this thread was too slow (a waiting slot hands itself back
            // after LENT_WAIT) or a spin outlasted the pause: such a round is not checked.
            let both = pool.lent_idle() == 2;
            pool.submit(js(b"n"), SubmitOptions::default(), next)
                .unwrap();
            assert_eq!(recv(&rx).0, next);
            let ran_on = lock(&fake.ran_on);
            if both && !lock(&fake.inboxed).contains(&next) && ran_on[&gated] != ran_on[&quick] {
                checked += 1;
                if ran_on[&next] == ran_on[&gated] {
                    to_last += 1;
                }
            }
        }
        // Signalled, the worker that reported last may still be slower to wake than the other
        // one's wait is to time out (the other then takes the task): most rounds, not all. In
        // FIFO order (the worker that waited longer first) hardly any round would.
        assert!(checked > 0, "no round had both workers waiting");
        assert!(
            to_last * 4 >= checked * 3,
            "the next task went to the worker that reported last in {to_last} of {checked} rounds"
        );
    }

    #[test]
    fn a_crash_fails_the_task_and_the_next_task_gets_a_new_worker() {
        let s = setup(1, false);
        s.pool
            .submit(js(b"crash"), SubmitOptions::default(), 1)
            .unwrap();
        let (ticket, outcome) = recv(&s.rx);
        assert_eq!(ticket, 1);
        assert_eq!(outcome.unwrap_err().code(), ErrorCode::WorkerCrashed);
        s.pool
            .submit(js(b"ok"), SubmitOptions::default(), 2)
            .unwrap();
        assert_eq!(recv(&s.rx), (2, Ok(b"ko".to_vec())));
        assert_eq!(*lock(&s.fake.spawned), vec![(0, 1), (0, 2)]);
    }

    #[test]
    fn a_retired_worker_is_replaced_and_stale_exits_are_ignored() {
        let s = setup(1, false);
        s.pool
            .submit(js(b"a"), SubmitOptions::default(), 1)
            .unwrap();
        assert_eq!(recv(&s.rx), (1, Ok(b"a".to_vec())));
        // The slot goes back to the pool thread right after the result (plus a short wait).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !s.slots.retire(0, 1) {
            assert!(Instant::now() < deadline, "the worker never got to retire");
            thread::sleep(Duration::from_millis(1));
        }
        assert!(!s.slots.retire(0, 1));
        s.pool
            .submit(js(b"b"), SubmitOptions::default(), 2)
            .unwrap();
        assert_eq!(recv(&s.rx), (2, Ok(b"b".to_vec())));
        // The first worker's exit arrives late: it must not hurt the second one.
        assert!(s.slots.exited(0, 1, "old".into()).is_none());
        s.pool
            .submit(js(b"cd"), SubmitOptions::default(), 3)
            .unwrap();
        assert_eq!(recv(&s.rx), (3, Ok(b"dc".to_vec())));
        assert_eq!(lock(&s.fake.spawned).len(), 2);
    }

    #[test]
    fn a_task_ignoring_abort_gets_its_worker_terminated() {
        let s = setup(1, true);
        let h = s
            .pool
            .submit(js(b"hang"), SubmitOptions::default(), 1)
            .unwrap();
        // Queued behind it: runs on a new worker once the stuck one is gone.
        s.pool
            .submit(js(b"next"), SubmitOptions::default(), 2)
            .unwrap();
        thread::sleep(Duration::from_millis(30));
        assert_eq!(s.pool.cancel(&h, CancelReason::Aborted), Some(1));
        assert_eq!(recv(&s.rx), (2, Ok(b"txen".to_vec())));
        assert_eq!(*lock(&s.fake.terminated), vec![(0, 1)]);
        assert_eq!(s.pool.stats().aborted, 1);
    }

    /// Occupies one pool thread with native work until the returned sender is dropped.
    fn native_blocker(pool: &Pool<u64, Vec<u8>, JsJob>, ticket: u64) -> Sender<()> {
        let (release, gate) = channel::<()>();
        let (started, running) = channel::<()>();
        pool.submit(
            Work::Run(Box::new(move |_| {
                started.send(()).unwrap();
                let _ = gate.recv();
                Ok(b"native".to_vec())
            })),
            SubmitOptions::default(),
            ticket,
        )
        .unwrap();
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        release
    }

    #[test]
    fn a_cancelled_queued_task_never_reaches_a_worker() {
        let s = setup(1, false);
        let release = native_blocker(&s.pool, 1);
        let queued = s
            .pool
            .submit(js(b"no"), SubmitOptions::default(), 2)
            .unwrap();
        s.pool
            .submit(js(b"yes"), SubmitOptions::default(), 3)
            .unwrap();
        assert_eq!(s.pool.cancel(&queued, CancelReason::Aborted), Some(2));
        assert_eq!(s.pool.stats().queued, 1);
        drop(release);
        let mut settled = vec![recv(&s.rx), recv(&s.rx)];
        settled.sort_by_key(|(ticket, _)| *ticket);
        assert_eq!(
            settled,
            vec![(1, Ok(b"native".to_vec())), (3, Ok(b"sey".to_vec()))]
        );
        // Tickets equal the pool's sequence numbers here: only task 3 ever started.
        assert_eq!(*lock(&s.fake.ran), vec![3]);
        assert_eq!(s.pool.stats().aborted, 1);
    }

    #[test]
    fn queued_tasks_never_wait_while_a_worker_is_idle() {
        // Each round submits two tasks that can only finish together: both must be running at
        // once, on both slots, whatever state the workers were left in by the previous round.
        let s = setup(2, false);
        for round in 0..50u64 {
            s.pool
                .submit(js(b"meet"), SubmitOptions::default(), round * 2)
                .unwrap();
            s.pool
                .submit(js(b"meet"), SubmitOptions::default(), round * 2 + 1)
                .unwrap();
            let mut got = vec![recv(&s.rx).0, recv(&s.rx).0];
            got.sort();
            assert_eq!(got, vec![round * 2, round * 2 + 1], "round {round}");
        }
        assert!(lock(&s.fake.spawned).len() <= 2);
    }

    #[test]
    fn prestart_hands_out_each_absent_slot_once_and_serving_uses_its_worker() {
        let s = setup(2, false);
        assert_eq!(s.slots.prestart(), Some((0, 1)));
        assert_eq!(s.slots.prestart(), Some((1, 1)));
        assert_eq!(s.slots.prestart(), None, "no slot left without a worker");
        // The JS side starts those two workers itself; one of them attaches.
        let inbox = Arc::new(FakeInbox {
            fake: Arc::clone(&s.fake),
            slot: 1,
            generation: 1,
        });
        assert!(s.slots.attach(1, 1, inbox.clone()));
        assert!(!s.slots.attach(1, 1, inbox), "attached once");
        s.pool
            .submit(js(b"ab"), SubmitOptions::default(), 1)
            .unwrap();
        assert_eq!(recv(&s.rx), (1, Ok(b"ba".to_vec())));
        assert!(
            lock(&s.fake.spawned).is_empty(),
            "the ready worker ran it: the pool asked for no worker of its own"
        );
        // A worker that fails to start frees its slot for prestart again.
        assert_eq!(s.slots.exited(0, 1, "gone".into()), Some(true));
        assert_eq!(s.slots.prestart(), Some((0, 2)));
    }

    #[test]
    fn shutdown_fails_waiting_and_running_tasks_and_starts_no_worker() {
        // Workers never attach: a task waits for its worker until the environment goes.
        let s = setup_with(2, false, false);
        s.pool
            .submit(js(b"waits"), SubmitOptions::default(), 1)
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while lock(&s.fake.spawned).is_empty() {
            assert!(Instant::now() < deadline, "no worker was asked for");
            thread::sleep(Duration::from_millis(1));
        }
        s.slots.shutdown();
        let (ticket, outcome) = recv(&s.rx);
        assert_eq!(ticket, 1);
        let err = outcome.unwrap_err();
        assert_eq!(err.code(), ErrorCode::WorkerCrashed);
        assert_eq!(err.message(), SHUT);
        assert_eq!(s.slots.prestart(), None);
        // Later tasks fail at once instead of waiting for a worker that cannot come.
        s.pool
            .submit(js(b"late"), SubmitOptions::default(), 2)
            .unwrap();
        let (ticket, outcome) = recv(&s.rx);
        assert_eq!(ticket, 2);
        assert_eq!(outcome.unwrap_err().code(), ErrorCode::WorkerCrashed);
        assert_eq!(lock(&s.fake.spawned).len(), 1, "no worker started after it");

        // A task running on a worker when the environment goes fails too.
        let s = setup(1, false);
        s.pool
            .submit(js(b"hang"), SubmitOptions::default(), 1)
            .unwrap();
        while lock(&s.fake.ran).is_empty() {
            thread::sleep(Duration::from_millis(1));
        }
        s.slots.shutdown();
        let (ticket, outcome) = recv(&s.rx);
        assert_eq!(ticket, 1);
        assert_eq!(outcome.unwrap_err().code(), ErrorCode::WorkerCrashed);
    }

    #[test]
    fn a_pool_without_a_lender_fails_js_work() {
        let (tx, rx) = channel();
        let options = PoolOptions {
            threads: 1,
            max_queue: None,
            nice: 0,
        };
        let pool: Pool<u64, Vec<u8>, JsJob> =
            Pool::new(options, Arc::new(TestSink(Mutex::new(tx))), None).unwrap();
        pool.submit(js(b"x"), SubmitOptions::default(), 7).unwrap();
        let (ticket, outcome) = recv(&rx);
        assert_eq!(ticket, 7);
        // Not a panic: the pool was made without a lender.
        let err = outcome.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidState);
        assert_eq!(err.message(), "this pool cannot run lent work");
    }
}
