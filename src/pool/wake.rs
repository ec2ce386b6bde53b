//! Waking a pool's JS thread from pool and worker threads: a libuv async handle on the JS
//! thread's event loop.
//!
//! A threadsafe function does the same but sends its wake-up while holding its queue's mutex,
//! which the woken JS thread takes at once to read the (empty) queue: it often finds it still
//! held and has to sleep a second time, waiting for the sender to let go (seen as a contended
//! futex on every few round trips). Here a wake-up is only `uv_async_send` (an atomic flag and
//! one write to the loop's eventfd); the pool keeps its own queue of events.
//!
//! While a wake-up is expected soon (a task was submitted to a pool with a free thread), an idle
//! handle of the same loop keeps it polling instead of sleeping, for a window as long as the pool
//! threads' own spin: on virtual machines a sleeping thread takes tens of microseconds to be
//! woken, about as long as a short task's whole round trip. The window ends early when no task
//! is in flight any more; the idle handle never keeps the loop alive.
//!
//! Lifetime: the handles are closed on the JS thread, either when the last [`Wake`] is dropped
//! (pool threads may drop it anywhere: the drop only asks the JS thread to close the handle,
//! after one last call of the callback) or when the environment is torn down (cleanup hook).
//! After that, wake-ups do nothing.

use std::alloc::{alloc, dealloc, Layout};
use std::ffi::{c_int, c_void};
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use napi::sys;

use crate::error::check;

/// libuv's `uv_async_t`, `uv_handle_t` and `uv_loop_t`: only ever behind pointers.
type UvHandle = c_void;
/// `UV_ASYNC` and `UV_IDLE` in libuv's `uv_handle_type` (stable across libuv 1.x).
const UV_ASYNC: c_int = 1;
const UV_IDLE: c_int = 6;

// libuv as linked into Node (the addon is loaded into a process that exports it, like the
// Node-API functions).
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_async_init(
        event_loop: *mut sys::uv_loop_s,
        handle: *mut UvHandle,
        callback: unsafe extern "C" fn(*mut UvHandle),
    ) -> c_int;
    fn uv_async_send(handle: *mut UvHandle) -> c_int;
    fn uv_idle_init(event_loop: *mut sys::uv_loop_s, handle: *mut UvHandle) -> c_int;
    fn uv_idle_start(handle: *mut UvHandle, callback: unsafe extern "C" fn(*mut UvHandle))
        -> c_int;
    fn uv_idle_stop(handle: *mut UvHandle) -> c_int;
    fn uv_hrtime() -> u64;
    fn uv_close(handle: *mut UvHandle, callback: Option<unsafe extern "C" fn(*mut UvHandle)>);
    fn uv_ref(handle: *mut UvHandle);
    fn uv_unref(handle: *mut UvHandle);
    fn uv_handle_set_data(handle: *mut UvHandle, data: *mut c_void);
    fn uv_handle_get_data(handle: *const UvHandle) -> *mut c_void;
}

/// The handle's address, usable from any thread while the handle is open.
#[derive(Clone, Copy)]
struct Raw(*mut UvHandle);
// SAFETY: only `uv_async_send` is called through it off the JS thread, which libuv allows from
// any thread while the handle is open; the `RwLock` in `Shared` keeps it from being closed
// meanwhile.
unsafe impl Send for Raw {}
unsafe impl Sync for Raw {}

struct Shared {
    /// `None` once the handle is closed (or closing).
    handle: RwLock<Option<Raw>>,
    /// The last `Wake` was dropped: close the handle after the next callback.
    dead: AtomicBool,
    /// When the loop stops polling for an expected wake-up (`uv_hrtime`, ns). JS thread only.
    poll_until: AtomicU64,
}

/// Wakes the JS thread (from any thread); the callback given to [`new`] then runs there. Wake-
/// ups sent before the callback runs coalesce into one call.
pub struct Wake(Arc<Shared>);

impl Wake {
    /// Returns false when the handle is closed (the environment is gone).
    pub fn wake(&self) -> bool {
        let handle = self.0.handle.read().unwrap_or_else(|e| e.into_inner());
        match *handle {
            // SAFETY: the handle is open while the read lock is held (see `close`).
            Some(Raw(h)) => unsafe { uv_async_send(h) == 0 },
            None => false,
        }
    }
}

impl Drop for Wake {
    fn drop(&mut self) {
        self.0.dead.store(true, Ordering::Release);
        self.wake();
    }
}

/// The JS thread's side: whether the handle keeps the event loop (and Node) alive, and whether
/// the loop polls for an expected wake-up.
pub struct WakeRef {
    handle: *mut UvHandle,
    idle: *mut UvHandle,
    shared: Arc<Shared>,
}

impl WakeRef {
    fn open(&self) -> bool {
        self.shared
            .handle
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// A wake-up is expected soon: the event loop polls instead of sleeping for `window` from
    /// now (or until [`WakeRef::stop_polling`]). JS thread only; nothing once the handle is
    /// closed.
    pub fn poll_for(&self, window: Duration) {
        if window.is_zero() || !self.open() {
            return;
        }
        let window = u64::try_from(window.as_nanos()).unwrap_or(u64::MAX);
        // SAFETY: JS thread, handles open (they are only closed on this thread). Starting an
        // active idle handle again does nothing.
        unsafe {
            self.shared
                .poll_until
                .store(uv_hrtime().saturating_add(window), Ordering::Relaxed);
            uv_idle_start(self.idle, on_idle);
        }
    }

    /// No wake-up is expected any more: the loop may sleep again. JS thread only.
    pub fn stop_polling(&self) {
        if self.open() {
            // SAFETY: JS thread, handle open.
            unsafe { uv_idle_stop(self.idle) };
        }
    }

    /// Keeps (`true`) or stops keeping (`false`) the event loop alive. JS thread only; nothing
    /// once the handle is closed.
    pub fn set_ref(&self, keep_alive: bool) {
        if self.open() {
            // SAFETY: JS thread, handle open (it is only closed on this thread).
            unsafe {
                if keep_alive {
                    uv_ref(self.handle)
                } else {
                    uv_unref(self.handle)
                }
            }
        }
    }
}

type Callback = Box<dyn FnMut(sys::napi_env)>;

/// What the async handle carries (its `data`; the idle handle's is the same); freed once the
/// async handle is closed (both are closed together).
struct Data {
    env: sys::napi_env,
    idle: *mut UvHandle,
    shared: Arc<Shared>,
    callback: Option<Callback>,
    async_context: sys::napi_async_context,
    resource: sys::napi_ref,
}

fn layout(kind: c_int) -> Layout {
    // SAFETY: a pure query of libuv's handle size.
    let size = unsafe { uv_handle_size(kind) };
    Layout::from_size_align(size.max(1), 16).expect("a small handle layout")
}

/// Allocates a handle of `kind` and initialises it with `init`; null, with nothing left
/// allocated, when either fails.
fn new_handle(kind: c_int, init: impl FnOnce(*mut UvHandle) -> c_int) -> *mut UvHandle {
    // SAFETY: a non-zero layout; the memory is freed here if `init` refuses it.
    unsafe {
        let handle = alloc(layout(kind)) as *mut UvHandle;
        if !handle.is_null() && init(handle) != 0 {
            dealloc(handle as *mut u8, layout(kind));
            return ptr::null_mut();
        }
        handle
    }
}

/// Creates the handles on `env`'s event loop (JS thread). `callback` runs on the JS thread in a
/// handle scope and a callback scope (microtasks and `process.nextTick` callbacks run when it
/// returns), once per batch of wake-ups. The handle starts unreferenced.
pub fn new(
    env: sys::napi_env,
    callback: impl FnMut(sys::napi_env) + 'static,
) -> napi::Result<(Wake, WakeRef)> {
    let mut event_loop = ptr::null_mut();
    // SAFETY: JS thread of `env`; every out-pointer is a valid local.
    unsafe {
        check(sys::napi_get_uv_event_loop(env, &mut event_loop))?;
        let mut name = ptr::null_mut();
        check(sys::napi_create_string_utf8(
            env,
            c"corepool".as_ptr(),
            8,
            &mut name,
        ))?;
        let mut object = ptr::null_mut();
        check(sys::napi_create_object(env, &mut object))?;
        let mut resource = ptr::null_mut();
        check(sys::napi_create_reference(env, object, 1, &mut resource))?;
        let mut async_context = ptr::null_mut();
        if let Err(e) = check(sys::napi_async_init(env, object, name, &mut async_context)) {
            sys::napi_delete_reference(env, resource);
            return Err(e);
        }
        let undo = || {
            sys::napi_async_destroy(env, async_context);
            sys::napi_delete_reference(env, resource);
        };
        let idle = new_handle(UV_IDLE, |h| uv_idle_init(event_loop, h));
        if idle.is_null() {
            undo();
            return Err(napi::Error::from_reason(
                "cannot create a libuv idle handle",
            ));
        }
        // Polling never keeps the loop alive.
        uv_unref(idle);
        let handle = new_handle(UV_ASYNC, |h| uv_async_init(event_loop, h, on_async));
        if handle.is_null() {
            uv_close(idle, Some(on_idle_closed));
            undo();
            return Err(napi::Error::from_reason(
                "cannot create a libuv async handle",
            ));
        }
        uv_unref(handle);
        let shared = Arc::new(Shared {
            handle: RwLock::new(Some(Raw(handle))),
            dead: AtomicBool::new(false),
            poll_until: AtomicU64::new(0),
        });
        let data = Box::into_raw(Box::new(Data {
            env,
            idle,
            shared: Arc::clone(&shared),
            callback: Some(Box::new(callback)),
            async_context,
            resource,
        }));
        uv_handle_set_data(handle, data as *mut c_void);
        uv_handle_set_data(idle, data as *mut c_void);
        if sys::napi_add_env_cleanup_hook(env, Some(env_cleanup), data as *mut c_void)
            != sys::Status::napi_ok
        {
            close(data, false);
            return Err(napi::Error::from_reason(
                "cannot add an environment cleanup hook",
            ));
        }
        Ok((
            Wake(Arc::clone(&shared)),
            WakeRef {
                handle,
                idle,
                shared,
            },
        ))
    }
}

unsafe extern "C" fn on_async(handle: *mut UvHandle) {
    // SAFETY: the data was set in `new` and lives until the handle's close callback; libuv
    // calls this on the JS thread of `env` only while the handle is open.
    let data = unsafe { uv_handle_get_data(handle) } as *mut Data;
    let d = unsafe { &mut *data };
    let env = d.env;
    if let Some(callback) = d.callback.as_mut() {
        // SAFETY: JS thread of `env`, outside any other scope of this module.
        unsafe {
            let mut scope = ptr::null_mut();
            let scoped = sys::napi_open_handle_scope(env, &mut scope) == sys::Status::napi_ok;
            let mut resource = ptr::null_mut();
            sys::napi_get_reference_value(env, d.resource, &mut resource);
            let mut callback_scope = ptr::null_mut();
            let in_callback = !resource.is_null()
                && sys::napi_open_callback_scope(
                    env,
                    resource,
                    d.async_context,
                    &mut callback_scope,
                ) == sys::Status::napi_ok;
            callback(env);
            // Whatever JS the callback ran and threw is an uncaught exception, as in any
            // other callback from the event loop.
            let mut pending = false;
            sys::napi_is_exception_pending(env, &mut pending);
            if pending {
                let mut error = ptr::null_mut();
                sys::napi_get_and_clear_last_exception(env, &mut error);
                sys::napi_fatal_exception(env, error);
            }
            if in_callback {
                sys::napi_close_callback_scope(env, callback_scope);
            }
            if scoped {
                sys::napi_close_handle_scope(env, scope);
            }
        }
    }
    if d.shared.dead.load(Ordering::Acquire) {
        // SAFETY: JS thread; the handle is still open (this is its callback).
        unsafe { close(data, true) };
    }
}

unsafe extern "C" fn on_idle(idle: *mut UvHandle) {
    // SAFETY: the idle handle's data is the async handle's, alive until both are closed; libuv
    // calls this on the JS thread only while the handle is open and active.
    let d = unsafe { &*(uv_handle_get_data(idle) as *const Data) };
    // SAFETY: JS thread; the handle is open (this is its callback).
    unsafe {
        if uv_hrtime() >= d.shared.poll_until.load(Ordering::Relaxed) {
            uv_idle_stop(idle);
        }
    }
}

unsafe extern "C" fn env_cleanup(data: *mut c_void) {
    // SAFETY: the hook's argument is the handle's data, alive until the handle is closed; the
    // hook is removed whenever the handle is closed another way.
    unsafe { close(data as *mut Data, false) };
}

/// Closes the handle (JS thread): no wake-up reaches it any more, the callback (and what it
/// holds) is dropped now, the memory freed once libuv has closed the handle.
unsafe fn close(data: *mut Data, remove_hook: bool) {
    // SAFETY: callers pass the live data of an open handle, on its JS thread.
    let d = unsafe { &mut *data };
    let Some(Raw(handle)) = d
        .shared
        .handle
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .take()
    else {
        return;
    };
    let env = d.env;
    // SAFETY: JS thread of `env`; each resource is released once (the handle is `None` now).
    unsafe {
        if remove_hook {
            sys::napi_remove_env_cleanup_hook(env, Some(env_cleanup), data as *mut c_void);
        }
        d.callback = None;
        sys::napi_async_destroy(env, d.async_context);
        sys::napi_delete_reference(env, d.resource);
        // The idle handle's close callback frees only its own memory, so the shared data may
        // go first (with the async handle's).
        uv_close(d.idle, Some(on_idle_closed));
        uv_close(handle, Some(on_closed));
    }
}

unsafe extern "C" fn on_closed(handle: *mut UvHandle) {
    // SAFETY: libuv is done with the handle; its data was boxed in `new` and is freed only here.
    unsafe {
        drop(Box::from_raw(uv_handle_get_data(handle) as *mut Data));
        dealloc(handle as *mut u8, layout(UV_ASYNC));
    }
}

unsafe extern "C" fn on_idle_closed(idle: *mut UvHandle) {
    // SAFETY: libuv is done with the handle, allocated in `new`; its data is not touched.
    unsafe { dealloc(idle as *mut u8, layout(UV_IDLE)) };
}
