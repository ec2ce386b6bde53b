//! JavaScript tasks: each pool thread (slot) owns at most one worker_thread and hands it the
//! JS tasks the scheduler gives that slot.
//!
//! The pool thread stays occupied while its worker runs the task, so native kernels and JS
//! tasks share one concurrency budget. Data never goes through `postMessage`: the task's
//! serialized bytes go straight from the submitting thread to the worker's inbox, and the
//! result bytes straight back. No napi types here: the worker inbox and the control channel to
//! the pool's JS thread (spawn/terminate a worker) are traits the binding implements.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use super::scheduler::{TaskCtx, TaskError};
use crate::error::ErrorCode;
use crate::sync::lock;

/// A message for a worker's JS thread.
pub enum WorkerMsg {
    Run {
        seq: u64,
        payload: Vec<u8>,
        name: Option<String>,
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

enum WorkerState {
    Absent,
    Starting,
    Ready(Arc<dyn WorkerInbox>),
}

struct SlotState {
    worker: WorkerState,
    /// Incremented for every worker spawned on this slot; stale events carry an old value.
    generation: u64,
    running: Option<u64>,
    result: Option<Vec<u8>>,
    died: Option<String>,
}

struct Slot {
    state: Mutex<SlotState>,
    changed: Condvar,
}

/// The worker side of one pool.
pub struct JsSlots {
    id: u64,
    slots: Vec<Slot>,
    control: Arc<dyn WorkerControl>,
    /// How long a cancelled task may keep running before its worker is terminated.
    grace: Duration,
    seq: AtomicU64,
}

/// How often a waiting pool thread re-checks its cancel flag.
const POLL: Duration = Duration::from_millis(5);

fn registry() -> &'static Mutex<HashMap<u64, Weak<JsSlots>>> {
    static REGISTRY: OnceLock<Mutex<HashMap<u64, Weak<JsSlots>>>> = OnceLock::new();
    REGISTRY.get_or_init(|| Mutex::new(HashMap::new()))
}

impl JsSlots {
    pub fn new(threads: usize, grace: Duration, control: Arc<dyn WorkerControl>) -> Arc<Self> {
        static NEXT_ID: AtomicU64 = AtomicU64::new(1);
        let slots = (0..threads)
            .map(|_| Slot {
                state: Mutex::new(SlotState {
                    worker: WorkerState::Absent,
                    generation: 0,
                    running: None,
                    result: None,
                    died: None,
                }),
                changed: Condvar::new(),
            })
            .collect();
        let this = Arc::new(JsSlots {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            slots,
            control,
            grace,
            seq: AtomicU64::new(1),
        });
        let mut reg = lock(registry());
        reg.retain(|_, w| w.strong_count() > 0);
        reg.insert(this.id, Arc::downgrade(&this));
        this
    }

    /// The id workers use to find this pool (it crosses into their environments as a number).
    pub fn id(&self) -> u64 {
        self.id
    }

    pub fn find(id: u64) -> Option<Arc<JsSlots>> {
        lock(registry()).get(&id).and_then(Weak::upgrade)
    }

    fn slot(&self, slot: usize) -> Option<&Slot> {
        self.slots.get(slot)
    }

    /// Runs one task on `slot`'s worker (starting it if needed) and returns the worker's
    /// encoded result. Called on the pool thread that owns `slot`.
    pub fn run(
        &self,
        slot: usize,
        payload: Vec<u8>,
        name: Option<String>,
        ctx: &TaskCtx,
    ) -> Result<Vec<u8>, TaskError> {
        let Some(Slot { state, changed }) = self.slot(slot) else {
            return Err(TaskError::failed(
                ErrorCode::WorkerCrashed,
                "no such pool slot",
            ));
        };
        let mut st = lock(state);
        let inbox = loop {
            if let Some(message) = st.died.take() {
                st.worker = WorkerState::Absent;
                return Err(TaskError::failed(ErrorCode::WorkerCrashed, message));
            }
            match &st.worker {
                WorkerState::Ready(inbox) => break Arc::clone(inbox),
                WorkerState::Absent => {
                    st.generation += 1;
                    st.worker = WorkerState::Starting;
                    self.control.spawn_worker(slot, st.generation);
                }
                WorkerState::Starting => {}
            }
            // A task cancelled while its worker starts gives up; the worker still comes up.
            ctx.check()?;
            st = changed
                .wait_timeout(st, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        };
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        st.running = Some(seq);
        st.result = None;
        if !inbox.send(WorkerMsg::Run { seq, payload, name }) {
            st.running = None;
            st.worker = WorkerState::Absent;
            return Err(TaskError::failed(
                ErrorCode::WorkerCrashed,
                "the worker is gone",
            ));
        }
        let mut abort_sent: Option<Instant> = None;
        let mut terminating = false;
        loop {
            if let Some(result) = st.result.take() {
                st.running = None;
                return match ctx.cancelled() {
                    Some(reason) => Err(TaskError::Cancelled(reason)),
                    None => Ok(result),
                };
            }
            if let Some(message) = st.died.take() {
                st.running = None;
                st.worker = WorkerState::Absent;
                return match ctx.cancelled() {
                    Some(reason) => Err(TaskError::Cancelled(reason)),
                    None => Err(TaskError::failed(ErrorCode::WorkerCrashed, message)),
                };
            }
            if ctx.cancelled().is_some() {
                match abort_sent {
                    None => {
                        inbox.send(WorkerMsg::Abort { seq });
                        abort_sent = Some(Instant::now());
                    }
                    Some(at) if !terminating && at.elapsed() >= self.grace => {
                        // The task ignores its AbortSignal: its worker is terminated and the
                        // slot stays busy until the worker has exited.
                        terminating = true;
                        self.control.terminate_worker(slot, st.generation);
                    }
                    Some(_) => {}
                }
            }
            st = changed
                .wait_timeout(st, POLL)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    fn with_slot(&self, slot: usize, f: impl FnOnce(&mut SlotState) -> bool) -> bool {
        let Some(Slot { state, changed }) = self.slot(slot) else {
            return false;
        };
        let done = f(&mut lock(state));
        if done {
            changed.notify_all();
        }
        done
    }

    /// A worker has loaded the task module and is ready for tasks.
    pub fn attach(&self, slot: usize, generation: u64, inbox: Arc<dyn WorkerInbox>) -> bool {
        self.with_slot(slot, |st| {
            if st.generation == generation && matches!(st.worker, WorkerState::Starting) {
                st.worker = WorkerState::Ready(inbox);
                true
            } else {
                false
            }
        })
    }

    /// The worker finished task `seq` (result or thrown error, encoded by the worker).
    pub fn done(&self, slot: usize, seq: u64, result: Vec<u8>) -> bool {
        self.with_slot(slot, |st| {
            if st.running == Some(seq) {
                st.result = Some(result);
                true
            } else {
                false
            }
        })
    }

    /// The worker of `generation` exited or failed to start; `message` says why.
    pub fn exited(&self, slot: usize, generation: u64, message: String) -> bool {
        self.with_slot(slot, |st| {
            if st.generation != generation {
                return false;
            }
            let was_starting = matches!(st.worker, WorkerState::Starting);
            st.worker = WorkerState::Absent;
            if st.running.is_some() || was_starting {
                st.died = Some(message);
            }
            true
        })
    }

    /// An idle worker asks to leave; granted only if no task is assigned to it.
    pub fn retire(&self, slot: usize, generation: u64) -> bool {
        self.with_slot(slot, |st| {
            if st.generation == generation
                && st.running.is_none()
                && matches!(st.worker, WorkerState::Ready(_))
            {
                st.worker = WorkerState::Absent;
                true
            } else {
                false
            }
        })
    }
}

impl Drop for JsSlots {
    fn drop(&mut self) {
        lock(registry()).remove(&self.id);
        // A pool dropped without close() (garbage-collected) must not leave idle workers behind.
        for slot in &self.slots {
            if let WorkerState::Ready(inbox) = &lock(&slot.state).worker {
                inbox.send(WorkerMsg::Exit);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pool::scheduler::tests_support::ctx;
    use std::thread;

    /// A fake JS side: workers that answer on their own thread.
    struct Fake {
        slots: OnceLock<Weak<JsSlots>>,
        spawned: Mutex<Vec<(usize, u64)>>,
        terminated: Mutex<Vec<(usize, u64)>>,
        ignore_abort: bool,
    }

    struct FakeInbox {
        fake: Arc<Fake>,
        slot: usize,
        generation: u64,
    }

    impl WorkerInbox for FakeInbox {
        fn send(&self, msg: WorkerMsg) -> bool {
            // Exit comes from the pool's Drop, when it can no longer be upgraded.
            let Some(slots) = self.fake.slots.get().unwrap().upgrade() else {
                return matches!(msg, WorkerMsg::Exit);
            };
            let (slot, generation, ignore) = (self.slot, self.generation, self.fake.ignore_abort);
            thread::spawn(move || match msg {
                WorkerMsg::Run { seq, payload, .. } => {
                    if payload == b"crash" {
                        slots.exited(slot, generation, "worker crashed".into());
                    } else if payload != b"hang" {
                        let mut out = payload.clone();
                        out.reverse();
                        slots.done(slot, seq, out);
                    }
                }
                WorkerMsg::Abort { seq } => {
                    if !ignore {
                        slots.done(slot, seq, b"aborted".to_vec());
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

    fn setup(ignore_abort: bool) -> (Arc<JsSlots>, Arc<Fake>) {
        let fake = Arc::new(Fake {
            slots: OnceLock::new(),
            spawned: Mutex::new(vec![]),
            terminated: Mutex::new(vec![]),
            ignore_abort,
        });
        let slots = JsSlots::new(2, Duration::from_millis(20), Arc::new(Arc::clone(&fake)));
        fake.slots.set(Arc::downgrade(&slots)).ok().unwrap();
        (slots, fake)
    }

    #[test]
    fn starts_a_worker_once_and_reuses_it() {
        let (slots, fake) = setup(false);
        let c = ctx();
        assert_eq!(slots.run(0, b"abc".to_vec(), None, &c).unwrap(), b"cba");
        assert_eq!(slots.run(0, b"xy".to_vec(), None, &c).unwrap(), b"yx");
        assert_eq!(*lock(&fake.spawned), vec![(0, 1)]);
        assert!(Arc::ptr_eq(&JsSlots::find(slots.id()).unwrap(), &slots));
    }

    #[test]
    fn a_crash_fails_the_task_and_the_next_task_gets_a_new_worker() {
        let (slots, fake) = setup(false);
        let c = ctx();
        let err = slots.run(1, b"crash".to_vec(), None, &c).unwrap_err();
        assert_eq!(err.code(), ErrorCode::WorkerCrashed);
        assert_eq!(slots.run(1, b"ok".to_vec(), None, &c).unwrap(), b"ko");
        assert_eq!(*lock(&fake.spawned), vec![(1, 1), (1, 2)]);
    }

    #[test]
    fn a_retired_worker_is_replaced_and_stale_exits_are_ignored() {
        let (slots, fake) = setup(false);
        let c = ctx();
        slots.run(0, b"a".to_vec(), None, &c).unwrap();
        assert!(slots.retire(0, 1));
        assert!(!slots.retire(0, 1));
        slots.run(0, b"b".to_vec(), None, &c).unwrap();
        // The first worker's exit arrives late: it must not hurt the second one.
        assert!(!slots.exited(0, 1, "old".into()));
        assert_eq!(slots.run(0, b"cd".to_vec(), None, &c).unwrap(), b"dc");
        assert_eq!(lock(&fake.spawned).len(), 2);
    }

    #[test]
    fn a_task_ignoring_abort_gets_its_worker_terminated() {
        let (slots, fake) = setup(true);
        let slots2 = Arc::clone(&slots);
        let c = Arc::new(ctx());
        let c2 = Arc::clone(&c);
        let t = thread::spawn(move || slots2.run(0, b"hang".to_vec(), None, &c2));
        thread::sleep(Duration::from_millis(30));
        crate::pool::scheduler::tests_support::cancel(&c);
        let err = t.join().unwrap().unwrap_err();
        assert!(matches!(err, TaskError::Cancelled(_)));
        assert_eq!(*lock(&fake.terminated), vec![(0, 1)]);
    }
}
