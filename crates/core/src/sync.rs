//! Synchronisation primitives of the scheduler, and small helpers shared by every module.
//!
//! The scheduler takes its mutexes, condition variables, atomics and threads from here: std's
//! normally, [loom](https://docs.rs/loom)'s when built with the `loom` feature, so that the
//! model tests (`cargo test -p corepool-core --features loom --lib loom`) explore every
//! interleaving of the settle, cancel and pull races. `Arc`, `Weak` and `OnceLock` stay std's
//! in both builds: loom's `Arc` has no `Weak`, and reference counts are not what the models
//! check. The timer thread, the stats and the JS-task slots use std directly: they are real
//! threads and bookkeeping that the models replace or do not need.

#[cfg(feature = "loom")]
pub use loom::sync::{Condvar, Mutex, MutexGuard};
pub use std::sync::{Arc, OnceLock, Weak};
#[cfg(not(feature = "loom"))]
pub use std::sync::{Condvar, Mutex, MutexGuard};

pub mod atomic {
    #[cfg(feature = "loom")]
    pub use loom::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
    #[cfg(not(feature = "loom"))]
    pub use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
}

pub mod thread {
    #[cfg(feature = "loom")]
    pub use self::model::{current, park, park_timeout, Thread};
    #[cfg(feature = "loom")]
    pub use loom::thread::{spawn, yield_now, Builder};
    #[cfg(not(feature = "loom"))]
    pub use std::thread::{current, park, park_timeout, spawn, yield_now, Builder, Thread};

    /// Parking for models. loom's own `unpark` of a thread that is blocked on a mutex makes it
    /// runnable while the mutex is still held (std keeps the token for the next `park`), so the
    /// token is kept here, under a loom mutex.
    #[cfg(feature = "loom")]
    mod model {
        use super::super::{lock_model, Arc, Condvar, Mutex};

        #[derive(Clone)]
        pub struct Thread(Arc<(Mutex<bool>, Condvar)>);

        impl Thread {
            pub fn unpark(&self) {
                *lock_model(&self.0 .0) = true;
                self.0 .1.notify_one();
            }
        }

        loom::thread_local! {
            static CURRENT: Thread = Thread(Arc::new((Mutex::new(false), Condvar::new())));
        }

        pub fn current() -> Thread {
            CURRENT.with(Thread::clone)
        }

        pub fn park() {
            let me = current();
            let (token, unparked) = &*me.0;
            let mut token = lock_model(token);
            while !*token {
                token = unparked.wait(token).unwrap_or_else(|e| e.into_inner());
            }
            *token = false;
        }

        /// No timed park in a model: only an unpark ends it, so a model whose thread waits for
        /// a timeout that nobody cuts short is reported as a deadlock.
        pub fn park_timeout(_: std::time::Duration) {
            park()
        }
    }
}

#[cfg(feature = "loom")]
pub use loom::thread_local;
#[cfg(not(feature = "loom"))]
pub use std::thread_local;

pub mod hint {
    #[cfg(feature = "loom")]
    pub use loom::hint::spin_loop;
    #[cfg(not(feature = "loom"))]
    pub use std::hint::spin_loop;
}

/// Locks a mutex, ignoring poisoning: corepool's critical sections leave their data consistent
/// before anything that could panic, and a panic in a job must not wedge the pool, a counter
/// region or the child reaper afterwards.
pub fn lock<T: ?Sized>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// [`lock`] for this module's [`Mutex`] (loom's in a model build).
#[cfg(feature = "loom")]
pub fn lock_model<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
#[cfg(not(feature = "loom"))]
pub use self::lock as lock_model;
