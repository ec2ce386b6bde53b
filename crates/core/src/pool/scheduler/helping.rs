//! Work a running task shares with its own pool's idle threads ([`TaskCtx::parallel`]).
//!
//! The task's job splits its work into numbered parts and offers them on its pool's board. A
//! pool thread that finds no queued task, and would otherwise spin or sleep, joins the offer
//! with the highest priority and claims parts through one atomic index, as the job itself does.
//! So a pool never has more than its `threads` busy, and a queued task always goes before
//! helping: a helper leaves between two parts as soon as something is queued.
//!
//! The parts are a closure on the job's stack. A helper may only call it between joining (seen
//! `open` and counted in `active`, under the offer's lock) and leaving; the job withdraws the
//! offer, closes it and waits until `active` is zero before [`TaskCtx::parallel`] returns (a
//! panic of the job's own part included), so no helper touches the closure afterwards. A helper
//! that joins late finds the offer closed and does nothing; the job never waits for it.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

use super::{panic_text, QueueKey, TaskCtx, TaskError};
use crate::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use crate::sync::{lock_model as lock, Arc, Condvar, Mutex, Weak};

/// One part of an offer's work, by index.
pub(super) type Part<'a> = dyn Fn(usize) -> Result<(), TaskError> + Sync + 'a;

/// The parts of one [`TaskCtx::parallel`] call, shared with the pool's helpers.
pub(super) struct Offer {
    /// The offering task's queue key: helpers take the highest-priority offer first.
    pub(super) key: QueueKey,
    parts: usize,
    /// The next part to claim; claims past `parts` find nothing.
    next: AtomicUsize,
    /// Set at the first failed part: nobody claims another.
    stop: AtomicBool,
    /// The job's closure; only called between [`Offer::help`]'s join and leave (module docs).
    run: *const Part<'static>,
    helpers: Mutex<Helpers>,
    /// Signalled when the last helper leaves a closed offer.
    left: Condvar,
}

struct Helpers {
    /// Helpers may still join.
    open: bool,
    /// Helpers that joined and have not left.
    active: usize,
    /// The first failure of a helper's part (its error or panic).
    error: Option<TaskError>,
}

// SAFETY: `run` points to a `Sync` closure, called from other threads only while the offering
// job waits for them (the module docs); everything else in an `Offer` is `Send + Sync`.
unsafe impl Send for Offer {}
// SAFETY: as above.
unsafe impl Sync for Offer {}

impl Offer {
    /// Whether a helper joining now could find a part to run.
    pub(super) fn has_work(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.next.load(Ordering::Relaxed) < self.parts
    }

    fn claim(&self) -> Option<usize> {
        if self.stop.load(Ordering::Relaxed) {
            return None;
        }
        let part = self.next.fetch_add(1, Ordering::Relaxed);
        (part < self.parts).then_some(part)
    }

    /// Runs parts on a helper thread until none is left, one fails, or `leave()` says the
    /// thread has something better to do (checked before each claim). Never panics.
    pub(super) fn help(&self, leave: &dyn Fn() -> bool) {
        {
            let mut h = lock(&self.helpers);
            if !h.open {
                return;
            }
            h.active += 1;
        }
        // SAFETY: joined while open, so the offering job waits in `close` for this helper to
        // leave before its closure goes away (module docs).
        let run = unsafe { &*self.run };
        let outcome = catch_unwind(AssertUnwindSafe(|| {
            while !leave() {
                let Some(part) = self.claim() else { break };
                run(part)?;
            }
            Ok(())
        }))
        .unwrap_or_else(|payload| Err(TaskError::Panicked(panic_text(payload))));
        let mut h = lock(&self.helpers);
        if let Err(e) = outcome {
            self.stop.store(true, Ordering::Relaxed);
            h.error.get_or_insert(e);
        }
        h.active -= 1;
        let last = h.active == 0 && !h.open;
        drop(h);
        if last {
            self.left.notify_all();
        }
    }

    /// Lets no more helpers join and waits for the ones that did; returns a helper's failure.
    fn close(&self) -> Option<TaskError> {
        let mut h = lock(&self.helpers);
        h.open = false;
        while h.active > 0 {
            h = self.left.wait(h).unwrap_or_else(|e| e.into_inner());
        }
        h.error.take()
    }
}

/// Where a pool lists its running tasks' offers (the pool's shared state).
pub(super) trait Board: Send + Sync {
    /// Lists an offer of `parts` parts of the task running on `slot` and wakes sleeping pool
    /// threads. `None` (run every part on the calling thread) when no other thread could help:
    /// a one-thread pool, or `slot` runs no task (a helper's own nested call).
    fn offer(&self, slot: usize, parts: usize, run: *const Part<'static>) -> Option<Arc<Offer>>;
    /// Takes the offer off the list.
    fn withdraw(&self, offer: &Arc<Offer>);
}

impl Offer {
    pub(super) fn new(key: QueueKey, parts: usize, run: *const Part<'static>) -> Self {
        Offer {
            key,
            parts,
            next: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            run,
            helpers: Mutex::new(Helpers {
                open: true,
                active: 0,
                error: None,
            }),
            left: Condvar::new(),
        }
    }
}

crate::sync::thread_local! {
    /// The pool of the current pool thread, and the thread's slot.
    static BOARD: std::cell::RefCell<Option<(Weak<dyn Board>, usize)>> =
        std::cell::RefCell::new(None);
}

/// Called once by each pool thread when it starts.
pub(super) fn register(board: Weak<dyn Board>, slot: usize) {
    BOARD.with(|b| *b.borrow_mut() = Some((board, slot)));
}

impl TaskCtx {
    /// Runs `part(0)`, ..., `part(parts - 1)`, each once, on the calling pool thread and on
    /// idle threads of the same pool (threads that find nothing queued), at this task's
    /// priority; returns once every part ran, or the first failure: a part's error, a cancel
    /// (checked before each part) or a helper's panic (`Panicked`). Parts are claimed in order
    /// but may run at the same time, on up to `threads` threads in all. Helpers leave between
    /// two parts when a task is queued, so a part should be short (a few ms at most).
    /// Outside a pool thread (unit tests, a thread the job started) every part runs here.
    pub fn parallel<F>(&self, parts: usize, part: &F) -> Result<(), TaskError>
    where
        F: Fn(usize) -> Result<(), TaskError> + Sync,
    {
        let run = |i: usize| {
            self.check()?;
            part(i)
        };
        let board = if parts > 1 {
            BOARD.with(|b| {
                let b = b.borrow();
                let (board, slot) = b.as_ref()?;
                Some((board.upgrade()?, *slot))
            })
        } else {
            None
        };
        let local: &Part<'_> = &run;
        // SAFETY: only the lifetime is erased; helpers call `run` only while this function
        // waits for them in `close` (module docs), and `run` lives until it returns.
        let erased: *const Part<'static> = unsafe { std::mem::transmute(local) };
        let offered = match board {
            Some((board, slot)) => board.offer(slot, parts, erased).map(|offer| (board, offer)),
            None => None,
        };
        let Some((board, offer)) = offered else {
            return (0..parts).try_for_each(run);
        };
        let mine = catch_unwind(AssertUnwindSafe(|| {
            while let Some(i) = offer.claim() {
                if let Err(e) = run(i) {
                    offer.stop.store(true, Ordering::Relaxed);
                    return Err(e);
                }
            }
            Ok(())
        }));
        board.withdraw(&offer);
        let helpers = offer.close();
        match mine {
            Err(payload) => resume_unwind(payload),
            Ok(Err(e)) => Err(e),
            Ok(Ok(())) => helpers.map_or(Ok(()), Err),
        }
    }
}
