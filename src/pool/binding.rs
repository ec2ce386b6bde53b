//! The thin napi layer over the scheduler: promises in, settlements out.
//!
//! Each task's promise is a raw `napi_deferred` carried through the core as the task's ticket.
//! Pool threads push settlements into one queue and wake the JS thread (a libuv async handle,
//! see [`super::wake`]) only when the queue goes from empty to non-empty, so a burst of
//! completions costs one wake-up. The handle is referenced only while the pool has something
//! in flight: an idle pool never keeps Node alive, a busy one always does.

use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::ffi::c_char;
use std::ptr;
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use napi_derive::napi;

use super::jstask::{JsJob, JsSlots, WorkerControl};
use super::report::PoolStats;
use super::scheduler::{
    spin_time, CancelReason, Lender, Pool, PoolOptions, Sink, SubmitError, SubmitOptions, TaskCtx,
    TaskError, TaskHandle, Work,
};
use super::stats::Mirror;
use super::timer::millis;
use super::wake::{self, Wake, WakeRef};
use crate::counters::binding::NativeCounters;
use crate::counters::Counters;
use crate::error::{check, create_js_error, js_error, napi_failure, Code, CodedError, ErrorCode};
// The kernels name it through here.
use crate::sync::lock;
pub use crate::values::{buffer_value, RawValue};

/// What a native job produces; converted to a JS value on the JS thread.
pub enum Output {
    Undefined,
    Number(f64),
    /// A `Buffer` with these bytes.
    Buffer(Vec<u8>),
    /// Any other result, converted by its napi-rs type (see [`Output::value`]).
    Value(Box<dyn FnOnce(sys::napi_env) -> napi::Result<sys::napi_value> + Send>),
}

impl Output {
    /// A result converted to JS by its napi-rs [`ToNapiValue`] (strings, booleans, arrays,
    /// typed arrays, `#[napi(object)]` structs).
    pub fn value<T: ToNapiValue + Send + 'static>(value: T) -> Self {
        Output::Value(Box::new(move |env| {
            // SAFETY: `into_js` is only called on the pool's JS thread, with its live env.
            unsafe { T::to_napi_value(env, value) }
        }))
    }

    fn into_js(self, env: sys::napi_env) -> napi::Result<sys::napi_value> {
        let mut value = ptr::null_mut();
        match self {
            // SAFETY: `env` is the live env of the JS thread running this conversion.
            Output::Undefined => check(unsafe { sys::napi_get_undefined(env, &mut value) })?,
            // SAFETY: as above.
            Output::Number(n) => check(unsafe { sys::napi_create_double(env, n, &mut value) })?,
            Output::Buffer(bytes) => value = buffer_value(env, bytes)?,
            Output::Value(convert) => value = convert(env)?,
        }
        Ok(value)
    }
}

impl From<()> for Output {
    fn from((): ()) -> Self {
        Output::Undefined
    }
}

impl From<f64> for Output {
    fn from(n: f64) -> Self {
        Output::Number(n)
    }
}

/// A `Buffer` (kernels' digests and codecs' output; a JS task's result bytes, which
/// `lib/jscodec.js` decodes).
impl From<Vec<u8>> for Output {
    fn from(bytes: Vec<u8>) -> Self {
        Output::Buffer(bytes)
    }
}

/// The options every native task takes: the last three arguments of every task binding
/// (`priority`, `timeout` in ms, `cancelKey`), each `undefined` when not given. (Three optional
/// numbers rather than one object: reading an object's properties through Node-API would cost
/// every task with options about a microsecond.)
pub struct TaskOptions {
    /// Higher runs first; default 0.
    pub priority: Option<f64>,
    /// Time limit in milliseconds; none when absent.
    pub timeout: Option<f64>,
    /// The key `NativePool.cancel` takes to abort the task; not cancellable when absent.
    pub cancel_key: Option<i64>,
}

/// A task's promise, plus the key under which JS may cancel it.
pub struct Ticket {
    deferred: sys::napi_deferred,
    cancel_key: Option<i64>,
}

// SAFETY: a ticket only carries the deferred pointer across threads; it is dereferenced (by
// napi_resolve/reject_deferred) exclusively on the JS thread that created it, in `settle`.
unsafe impl Send for Ticket {}

type Outcome = std::result::Result<Output, TaskError>;

enum Event {
    Settled(Ticket, Outcome),
    Stopped,
    /// Spawn (`terminate == false`) or terminate the worker of a JS-task slot.
    Worker {
        terminate: bool,
        slot: usize,
        generation: u64,
    },
}

#[derive(Default)]
struct Pending {
    events: Vec<Event>,
    scheduled: bool,
}

struct JsSink {
    pending: Arc<Mutex<Pending>>,
    wake: Wake,
}

impl JsSink {
    fn push(&self, event: Event) {
        let schedule = {
            let mut pending = lock(&self.pending);
            pending.events.push(event);
            !std::mem::replace(&mut pending.scheduled, true)
        };
        // Outside the lock: the JS thread this wakes takes it at once to drain the events,
        // and would otherwise often find it still held and have to sleep again.
        if schedule {
            // A refused wake-up (the environment is gone) drops nothing that matters: the
            // env's promises went away with it.
            self.wake.wake();
        }
    }
}

/// Forwards worker requests from pool threads to the pool's JS thread.
struct SinkControl(std::sync::Weak<JsSink>);

impl WorkerControl for SinkControl {
    fn spawn_worker(&self, slot: usize, generation: u64) {
        if let Some(sink) = self.0.upgrade() {
            sink.push(Event::Worker {
                terminate: false,
                slot,
                generation,
            });
        }
    }
    fn terminate_worker(&self, slot: usize, generation: u64) {
        if let Some(sink) = self.0.upgrade() {
            sink.push(Event::Worker {
                terminate: true,
                slot,
                generation,
            });
        }
    }
}

impl Sink<Ticket, Output> for JsSink {
    fn deliver(&self, ticket: Ticket, outcome: Outcome) {
        self.push(Event::Settled(ticket, outcome));
    }
    fn stopped(&self) {
        self.push(Event::Stopped);
    }
}

/// State touched only on the pool's JS thread.
struct MainState {
    env: sys::napi_env,
    /// What the pool threads settled or asked for, which the next wake-up delivers.
    pending: Arc<Mutex<Pending>>,
    /// Set right after the state is made (the wake-up callback holds the state).
    wake: OnceCell<WakeRef>,
    /// Promises not yet settled plus pending close/destroy calls; > 0 keeps Node alive.
    inflight: Cell<usize>,
    cancellable: RefCell<HashMap<i64, TaskHandle<Ticket>>>,
    stop_waiters: RefCell<Vec<sys::napi_deferred>>,
    stopped: Cell<bool>,
    /// JS handler for worker spawn/terminate requests (pools with JS tasks only).
    control: Option<FunctionRef<ControlArgs, ()>>,
}

type ControlArgs = FnArgs<(bool, u32, f64)>;

impl MainState {
    fn hold(&self) {
        if self.inflight.get() == 0 {
            if let Some(wake) = self.wake.get() {
                wake.set_ref(true);
            }
        }
        self.inflight.set(self.inflight.get() + 1);
    }

    fn release(&self) {
        let n = self.inflight.get().saturating_sub(1);
        self.inflight.set(n);
        if n == 0 {
            if let Some(wake) = self.wake.get() {
                wake.set_ref(false);
                wake.stop_polling();
            }
        }
    }

    /// A task was just submitted: when the pool has a thread for every task in flight, its
    /// result may come back within the pool threads' spin time, and the event loop polls for
    /// it rather than sleeping (see `wake.rs`). A busier pool's results come often enough.
    fn expect_result(&self, threads: usize) {
        if self.inflight.get() <= threads {
            if let Some(wake) = self.wake.get() {
                wake.poll_for(spin_time());
            }
        }
    }

    /// Resolves or rejects a task's promise. JS thread only.
    fn settle(&self, ticket: Ticket, outcome: Outcome, cause: Option<sys::napi_value>) {
        if let Some(key) = ticket.cancel_key {
            self.cancellable.borrow_mut().remove(&key);
        }
        let env = self.env;
        let result = match outcome {
            Ok(output) => output.into_js(env).map(|v| (true, v)),
            Err(e) => task_error_value(env, &e, cause).map(|v| (false, v)),
        };
        let (ok, value) = match result {
            Ok(r) => r,
            Err(e) => match create_js_error(env, Code::from(e.status).0, &e.reason) {
                Ok(v) => (false, v),
                Err(_) => (false, ptr::null_mut()),
            },
        };
        // SAFETY: the deferred was created on this JS thread by `new_promise` and is settled
        // exactly once: the scheduler hands each ticket out a single time.
        unsafe {
            if ok {
                sys::napi_resolve_deferred(env, ticket.deferred, value);
            } else {
                sys::napi_reject_deferred(env, ticket.deferred, value);
            }
        }
        self.release();
    }

    fn on_worker_event(&self, env: &Env, terminate: bool, slot: usize, generation: u64) {
        let Some(control) = &self.control else {
            return;
        };
        // The JS handler does not throw; if it ever did, the task waiting for the worker is
        // still bounded by its own cancel/timeout.
        if let Ok(f) = control.borrow_back(env) {
            let _ = f.call((terminate, slot as u32, generation as f64).into());
        }
    }

    fn on_stopped(&self) {
        self.stopped.set(true);
        let waiters = std::mem::take(&mut *self.stop_waiters.borrow_mut());
        for deferred in waiters {
            resolve_undefined(self.env, deferred);
            self.release();
        }
    }

    /// Takes the pending events and acts on them, in order. JS thread only.
    fn drain(&self) {
        let events = {
            let mut p = lock(&self.pending);
            p.scheduled = false;
            std::mem::take(&mut p.events)
        };
        let env = Env::from_raw(self.env);
        for event in events {
            match event {
                Event::Settled(ticket, outcome) => self.settle(ticket, outcome, None),
                Event::Stopped => self.on_stopped(),
                Event::Worker {
                    terminate,
                    slot,
                    generation,
                } => self.on_worker_event(&env, terminate, slot, generation),
            }
        }
    }
}

fn task_error_value(
    env: sys::napi_env,
    e: &TaskError,
    cause: Option<sys::napi_value>,
) -> napi::Result<sys::napi_value> {
    let error = create_js_error(env, e.code(), &e.message())?;
    if let Some(cause) = cause {
        // SAFETY: `error` and `cause` are live values of this env; the key is a C literal.
        check(unsafe {
            sys::napi_set_named_property(env, error, c"cause".as_ptr() as *const c_char, cause)
        })?;
    }
    Ok(error)
}

fn resolve_undefined(env: sys::napi_env, deferred: sys::napi_deferred) {
    let mut undefined = ptr::null_mut();
    // SAFETY: JS thread; `deferred` came from `new_promise` on this env and is settled once.
    unsafe {
        sys::napi_get_undefined(env, &mut undefined);
        sys::napi_resolve_deferred(env, deferred, undefined);
    }
}

fn new_promise(env: sys::napi_env) -> napi::Result<(sys::napi_deferred, sys::napi_value)> {
    let mut deferred = ptr::null_mut();
    let mut promise = ptr::null_mut();
    // SAFETY: JS thread, live env; both out-pointers are valid locals.
    check(unsafe { sys::napi_create_promise(env, &mut deferred, &mut promise) })?;
    Ok((deferred, promise))
}

/// How `lib/pool.js` makes a [`NativePool`] (its options checked there).
#[napi(object)]
pub struct NativePoolOptions {
    /// Pool threads (at least 1; `lib/pool.js` says how many at most).
    pub threads: u32,
    /// Tasks that may wait beyond the running ones; unbounded when absent.
    pub max_queue: Option<f64>,
    /// How much lower than normal the threads' scheduling priority is (`niceIncrement`, 0 to 19).
    pub nice: u32,
    /// JS tasks: how long, in ms, the worker of an aborted task may take to stop before it is
    /// terminated; never when absent.
    pub abort_grace: Option<f64>,
}

/// The native half of `Pool`: owns the threads and the queue. Used through `lib/pool.js`.
#[napi]
pub struct NativePool {
    core: Arc<Pool<Ticket, Output, JsJob>>,
    main: Rc<MainState>,
    pub(super) js: Option<Arc<JsSlots<Output>>>,
    /// The environment cleanup hook's state (see [`env_teardown`]).
    teardown: *const Teardown,
}

/// What the environment cleanup hook of a pool reaches.
struct Teardown {
    core: std::sync::Weak<Pool<Ticket, Output, JsJob>>,
    js: Option<std::sync::Weak<JsSlots<Output>>>,
    ran: Cell<bool>,
}

/// The pool's environment is torn down (a worker_thread that made the pool is terminated, or
/// the process exits): its workers die with it without reporting, and no promise can be settled
/// any more. Tasks are dropped, pool threads standing by for a worker are released, and every
/// pool thread exits, so nothing outlives the environment.
unsafe extern "C" fn env_teardown(arg: *mut std::ffi::c_void) {
    // SAFETY: `arg` is the count of the `Teardown` taken in `NativePool::new` for this hook;
    // hooks run once, on the environment's JS thread.
    let teardown = unsafe { Rc::from_raw(arg as *const Teardown) };
    teardown.ran.set(true);
    if let Some(js) = teardown.js.as_ref().and_then(std::sync::Weak::upgrade) {
        js.shutdown();
    }
    if let Some(core) = teardown.core.upgrade() {
        // The tickets' promises belong to the environment being destroyed: dropped unsettled.
        drop(core.destroy());
    }
}

impl Drop for NativePool {
    fn drop(&mut self) {
        // SAFETY: JS thread (finalizer). `self.teardown` is a count of the `Teardown`; the hook
        // holds another unless it ran, in which case it consumed that one. Either way the count
        // this pool holds is given back here exactly once.
        unsafe {
            let teardown = Rc::from_raw(self.teardown);
            if !teardown.ran.get() {
                sys::napi_remove_env_cleanup_hook(
                    self.main.env,
                    Some(env_teardown),
                    self.teardown as *mut std::ffi::c_void,
                );
                drop(Rc::from_raw(self.teardown));
            }
        }
    }
}

#[napi]
impl NativePool {
    /// `control` handles worker spawn/terminate requests (pools with JS tasks only).
    #[napi(constructor)]
    pub fn new(
        env: Env,
        options: NativePoolOptions,
        #[napi(
            ts_arg_type = "((terminate: boolean, slot: number, generation: number) => void) | undefined | null"
        )]
        control: Option<Function<ControlArgs, ()>>,
    ) -> std::result::Result<Self, CodedError> {
        let NativePoolOptions {
            threads,
            max_queue,
            nice,
            abort_grace,
        } = options;
        // A float-to-int `as` saturates: beyond usize::MAX is unbounded in effect.
        let max_queue = max_queue.map(|n| n as usize);
        let pending = Arc::new(Mutex::new(Pending::default()));
        let main = Rc::new(MainState {
            env: env.raw(),
            pending: Arc::clone(&pending),
            wake: OnceCell::new(),
            inflight: Cell::new(0),
            cancellable: RefCell::new(HashMap::new()),
            stop_waiters: RefCell::new(Vec::new()),
            stopped: Cell::new(false),
            control: control
                .map(|f| f.create_ref())
                .transpose()
                .map_err(napi_failure)?,
        });
        let drain_main = Rc::clone(&main);
        let (wake, wake_ref) = wake::new(env.raw(), move |_| drain_main.drain())
            .map_err(|e| js_error(ErrorCode::System, e.reason))?;
        let _ = main.wake.set(wake_ref);
        let sink = Arc::new(JsSink { pending, wake });
        let js = main.control.is_some().then(|| {
            // Absent (Infinity) or longer than a `Duration`: a task's worker is never terminated.
            let grace = abort_grace.and_then(millis).unwrap_or(Duration::MAX);
            JsSlots::new(
                threads as usize,
                grace,
                Arc::new(SinkControl(Arc::downgrade(&sink))),
            )
        });
        let options = PoolOptions {
            threads: threads as usize,
            max_queue,
            // lower_thread_priority keeps the result within the system's range.
            nice: nice as i32,
        };
        let lender = js.clone().map(|js| js as Arc<dyn Lender<Output, JsJob>>);
        let core =
            Arc::new(Pool::new(options, sink, lender).map_err(|e| {
                js_error(ErrorCode::System, format!("cannot start pool threads: {e}"))
            })?);
        let teardown = Rc::into_raw(Rc::new(Teardown {
            core: Arc::downgrade(&core),
            js: js.as_ref().map(Arc::downgrade),
            ran: Cell::new(false),
        }));
        // SAFETY: JS thread of `env`. The hook gets a count of the `Teardown` of its own (the
        // pool keeps the other; see `Drop`).
        unsafe {
            Rc::increment_strong_count(teardown);
            let status = sys::napi_add_env_cleanup_hook(
                env.raw(),
                Some(env_teardown),
                teardown as *mut std::ffi::c_void,
            );
            if status != sys::Status::napi_ok {
                Rc::decrement_strong_count(teardown);
                (*teardown).ran.set(true);
            }
        }
        Ok(NativePool {
            core,
            main,
            js,
            teardown,
        })
    }

    /// Starts a worker at once for a task about to be submitted when no worker is there for it
    /// (see `JsSlots::prestart`): `[slot, generation]` to spawn now, or `null`.
    #[napi]
    pub fn prestart(&self) -> Option<Vec<f64>> {
        let (slot, generation) = self.js.as_ref()?.prestart()?;
        Some(vec![slot as f64, generation as f64])
    }

    /// Id under which this pool's workers find it (null when the pool has no JS tasks).
    #[napi(getter)]
    pub fn js_pool_id(&self) -> Option<f64> {
        self.js.as_ref().map(|js| js.id() as f64)
    }

    /// Number of threads.
    #[napi(getter)]
    pub fn threads(&self) -> u32 {
        self.core.threads() as u32
    }

    /// Cancels the task registered under `key` (abort). Returns whether this call settled it.
    #[napi]
    pub fn cancel(&self, key: i64, reason: Unknown) -> bool {
        let handle = self.main.cancellable.borrow_mut().remove(&key);
        let Some(handle) = handle else {
            return false;
        };
        match self.core.cancel(&handle, CancelReason::Aborted) {
            Some(ticket) => {
                let cause = match reason.get_type() {
                    Ok(ValueType::Undefined) | Err(_) => None,
                    Ok(_) => Some(reason.raw()),
                };
                self.main.settle(
                    ticket,
                    Err(TaskError::Cancelled(CancelReason::Aborted)),
                    cause,
                );
                true
            }
            None => false,
        }
    }

    /// Stop accepting tasks, finish queued ones, then stop the threads.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn close(&self) -> napi::Result<RawValue> {
        self.core.close();
        self.wait_stopped()
    }

    /// Rejects the queued tasks (not the running ones) with ERR_POOL_CLOSED (`close({ force })`).
    #[napi]
    pub fn cancel_queued(&self) {
        for ticket in self.core.cancel_queued() {
            self.main.settle(
                ticket,
                Err(TaskError::Cancelled(CancelReason::Closed)),
                None,
            );
        }
    }

    /// Delivers now what the next wake-up would: the results the pool threads and workers have
    /// reported so far settle their promises (in order) before this returns. A worker's `exit`
    /// handler calls it, so the results it reported before it exited are settled before the
    /// pool forgets what the worker left behind.
    #[napi]
    pub fn deliver(&self) {
        self.main.drain();
    }

    /// Reject queued and running tasks with ERR_POOL_CLOSED, then stop the threads.
    #[napi(ts_return_type = "Promise<void>")]
    pub fn destroy(&self) -> napi::Result<RawValue> {
        for ticket in self.core.destroy() {
            self.main.settle(
                ticket,
                Err(TaskError::Cancelled(CancelReason::Closed)),
                None,
            );
        }
        self.wait_stopped()
    }

    /// From now on, adds this pool's completed/failed/cancelled counts to the counters of that
    /// name in `counters`' region. `false` if the region has none of them or stats are already
    /// mirrored.
    #[napi]
    pub fn mirror_stats(&self, counters: &NativeCounters) -> std::result::Result<bool, CodedError> {
        let region = counters.region();
        let view = Counters::new(region).map_err(|e| js_error(ErrorCode::Shm, e.to_string()))?;
        let mirror = Mirror::new(view);
        Ok(!mirror.is_empty() && self.core.mirror_stats(mirror))
    }

    /// Counters, queue length and wait/run-time percentiles.
    #[napi]
    pub fn stats(&self) -> PoolStats {
        self.core.stats().into()
    }
}

impl NativePool {
    fn wait_stopped(&self) -> napi::Result<RawValue> {
        let (deferred, promise) = new_promise(self.main.env)?;
        if self.main.stopped.get() {
            resolve_undefined(self.main.env, deferred);
        } else {
            self.main.hold();
            self.main.stop_waiters.borrow_mut().push(deferred);
        }
        Ok(RawValue(promise))
    }

    /// Submits the job `prepared` holds and returns its promise; every native task binding
    /// goes through here. `Err(message)` (bad input found while preparing the job) returns a
    /// promise rejected with `ERR_INVALID_ARG` instead.
    pub fn submit_task<F, T>(
        &self,
        task: TaskOptions,
        prepared: std::result::Result<F, String>,
    ) -> napi::Result<RawValue>
    where
        F: FnOnce(&TaskCtx) -> std::result::Result<T, TaskError> + Send + 'static,
        T: Into<Output>,
    {
        match prepared {
            Ok(job) => self.submit_work(
                Work::Run(Box::new(move |ctx| job(ctx).map(Into::into))),
                task,
            ),
            Err(message) => self.reject(ErrorCode::InvalidArg, &message),
        }
    }

    pub(super) fn submit_work(
        &self,
        work: Work<Output, JsJob>,
        task: TaskOptions,
    ) -> napi::Result<RawValue> {
        let TaskOptions {
            priority,
            timeout,
            cancel_key,
        } = task;
        let (deferred, promise) = new_promise(self.main.env)?;
        self.main.hold();
        let ticket = Ticket {
            deferred,
            cancel_key,
        };
        let options = SubmitOptions {
            priority: priority.unwrap_or(0.0),
            // Longer than a `Duration` can say: no deadline (it could never be reached).
            timeout: timeout.and_then(millis),
        };
        match self.core.submit(work, options, ticket) {
            Ok(handle) => {
                if let Some(key) = cancel_key {
                    self.main.cancellable.borrow_mut().insert(key, handle);
                }
                self.main.expect_result(self.core.threads());
            }
            Err((reason, ticket)) => {
                let (code, message) = match reason {
                    SubmitError::Closed => (ErrorCode::PoolClosed, "The pool is closed"),
                    SubmitError::QueueFull => (
                        ErrorCode::QueueFull,
                        "The pool's queue is full (maxQueue reached)",
                    ),
                };
                self.main
                    .settle(ticket, Err(TaskError::failed(code, message)), None);
            }
        }
        Ok(RawValue(promise))
    }

    /// A promise already rejected with `code` (bad input found by a kernel binding).
    pub fn reject(&self, code: ErrorCode, message: &str) -> napi::Result<RawValue> {
        let (deferred, promise) = new_promise(self.main.env)?;
        let error = create_js_error(self.main.env, code, message)?;
        // SAFETY: JS thread; the deferred was just created and is settled once, here.
        unsafe { sys::napi_reject_deferred(self.main.env, deferred, error) };
        Ok(RawValue(promise))
    }
}
