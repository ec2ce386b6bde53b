//! `ArrayBuffer`s transferred to a JS task, held until the worker has its copy.
//!
//! `pool.run(data, { transferList })` detaches the caller's buffers by moving their memory into
//! fresh `ArrayBuffer`s that only corepool references (like `postMessage`). [`Moved`] keeps such
//! a buffer alive by a napi reference on the thread that submitted it until the worker that runs
//! the task has copied the memory into an `ArrayBuffer` of its own and dropped the `Moved`. A napi
//! reference may only be deleted on its own thread, so dropping a `Moved` anywhere else queues
//! the reference and wakes that thread (an unref'd thread-safe function) to delete it; the
//! buffer is then collected as usual.

use std::cell::RefCell;
use std::ffi::c_void;
use std::ptr;
use std::sync::{Arc, Mutex};

use napi::bindgen_prelude::{ArrayBuffer, JsValue};
use napi::sys;

use super::jstask::Transfer;
use crate::error::check;
use crate::sync::lock;

/// The memory of one transferred `ArrayBuffer`, valid as long as this value lives.
pub struct Moved {
    ptr: *mut u8,
    len: usize,
    reference: sys::napi_ref,
    owner: Arc<Releases>,
}

// SAFETY: the buffer is reachable from JS only through the worker's view of it (the submitting
// thread holds nothing but a reference it never reads through), and the reference itself is only
// ever deleted on its own thread, by `Releases::drain`.
unsafe impl Send for Moved {}

impl Moved {
    /// Holds `buffer` (which the caller can no longer reach) by a reference. JS thread of `env`.
    pub fn hold(env: sys::napi_env, buffer: &ArrayBuffer) -> napi::Result<Self> {
        let owner = Releases::of_thread(env)?;
        let mut reference = ptr::null_mut();
        // SAFETY: JS thread of `env`; `buffer` is a live value of it.
        check(unsafe { sys::napi_create_reference(env, buffer.raw(), 1, &mut reference) })?;
        Ok(Moved {
            ptr: buffer.as_ptr() as *mut u8,
            len: buffer.len(),
            reference,
            owner,
        })
    }
}

impl Transfer for Moved {
    fn len(&self) -> usize {
        self.len
    }

    fn as_mut_ptr(&mut self) -> *mut u8 {
        self.ptr
    }
}

impl Drop for Moved {
    fn drop(&mut self) {
        self.owner.release(self.reference);
    }
}

/// References waiting to be deleted on the thread that created them.
struct Releases {
    state: Mutex<ReleaseState>,
}

struct ReleaseState {
    pending: Vec<usize>,
    /// Wakes the owning thread; `None` once its environment is being torn down (which frees
    /// every reference of it anyway).
    wake: Option<usize>,
}

thread_local! {
    /// The current JS thread's queue, made on its first transfer.
    static RELEASES: RefCell<Option<Arc<Releases>>> = const { RefCell::new(None) };
}

impl Releases {
    fn of_thread(env: sys::napi_env) -> napi::Result<Arc<Releases>> {
        if let Some(existing) = RELEASES.with(|r| r.borrow().clone()) {
            return Ok(existing);
        }
        let releases = Arc::new(Releases {
            state: Mutex::new(ReleaseState {
                pending: Vec::new(),
                wake: None,
            }),
        });
        let mut name = ptr::null_mut();
        let mut tsfn = ptr::null_mut();
        // SAFETY: JS thread of `env`. The thread-safe function's context is one count of
        // `releases`, given back in `finalize`; it has no JS function (`drain` does the work)
        // and is unref'd, so it never keeps the event loop alive.
        unsafe {
            let label = "corepool transferred buffers";
            check(sys::napi_create_string_utf8(
                env,
                label.as_ptr().cast(),
                label.len() as isize,
                &mut name,
            ))?;
            let context = Arc::into_raw(Arc::clone(&releases)) as *mut c_void;
            let status = sys::napi_create_threadsafe_function(
                env,
                ptr::null_mut(),
                ptr::null_mut(),
                name,
                0,
                1,
                context,
                Some(finalize),
                context,
                Some(drain),
                &mut tsfn,
            );
            if status != sys::Status::napi_ok {
                drop(Arc::from_raw(context as *const Releases));
                check(status)?;
            }
            check(sys::napi_unref_threadsafe_function(env, tsfn))?;
            // Registered after the thread-safe function, so it runs before that is destroyed.
            let hook_arg = Arc::into_raw(Arc::clone(&releases)) as *mut c_void;
            check(sys::napi_add_env_cleanup_hook(env, Some(closing), hook_arg))?;
        }
        lock(&releases.state).wake = Some(tsfn as usize);
        RELEASES.with(|r| *r.borrow_mut() = Some(Arc::clone(&releases)));
        Ok(releases)
    }

    /// Any thread: queues `reference` for deletion on its own thread.
    fn release(&self, reference: sys::napi_ref) {
        let mut state = lock(&self.state);
        // Without `wake` the environment is gone, and the reference with it.
        if let Some(wake) = state.wake {
            state.pending.push(reference as usize);
            if state.pending.len() == 1 {
                // SAFETY: `wake` stays valid while it is `Some`: `closing` clears it (under this
                // lock) before the environment destroys the function.
                unsafe {
                    sys::napi_call_threadsafe_function(
                        wake as sys::napi_threadsafe_function,
                        ptr::null_mut(),
                        sys::ThreadsafeFunctionCallMode::nonblocking,
                    );
                }
            }
        }
    }
}

/// On the owning thread: deletes the queued references.
unsafe extern "C" fn drain(
    env: sys::napi_env,
    _js_callback: sys::napi_value,
    context: *mut c_void,
    _data: *mut c_void,
) {
    if env.is_null() {
        return;
    }
    // SAFETY: `context` is a count of the `Releases` held until `finalize`.
    let releases = unsafe { &*(context as *const Releases) };
    let pending = std::mem::take(&mut lock(&releases.state).pending);
    for reference in pending {
        let reference = reference as sys::napi_ref;
        let mut buffer = ptr::null_mut();
        // SAFETY: JS thread of `env`, which created the reference; each is deleted once. The
        // buffer is one only corepool ever referenced and nothing reads its memory any more (the
        // worker has its copy, or the task was dropped): detaching it frees that memory now
        // instead of at this thread's next collection, which would otherwise be a full one
        // forced by the memory pressure of every transferred buffer.
        unsafe {
            if sys::napi_get_reference_value(env, reference, &mut buffer) == sys::Status::napi_ok
                && !buffer.is_null()
            {
                sys::napi_detach_arraybuffer(env, buffer);
            }
            sys::napi_delete_reference(env, reference);
        }
    }
}

/// The thread-safe function is destroyed: give back its count of the `Releases`.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: `data` is the count taken in `of_thread`.
    drop(unsafe { Arc::from_raw(data as *const Releases) });
}

/// The environment is being torn down: stop waking it, forget its references.
unsafe extern "C" fn closing(arg: *mut c_void) {
    // SAFETY: `arg` is the count taken in `of_thread` for this hook.
    let releases = unsafe { Arc::from_raw(arg as *const Releases) };
    {
        let mut state = lock(&releases.state);
        state.wake = None;
        state.pending.clear();
    }
    let _ = RELEASES.try_with(|r| r.borrow_mut().take());
}
