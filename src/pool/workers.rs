//! The JS-task bindings: `runJs` submits a task for a worker thread, and the calls
//! `lib/worker.js` makes (attach, task done, retire, exit, nice) drive the pool's JS-task slots
//! (`corepool_core::pool::jstask`).

use std::ptr;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::sys;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::binding::{NativePool, Output, TaskOptions};
use super::jstask::{JsJob, JsSlots, Transfer, WorkerInbox, WorkerMsg};
use super::moved::Moved;
use super::scheduler::{lower_thread_priority, Work};
use crate::error::{check, ErrorCode};
use crate::values::{array_value, buffer_value, RawValue};

/// Submits a JS task (`payload` is the serialized argument) to run on a worker of the pool.
/// `filename` overrides the pool's task module; `tag` is the submitting thread's id for a task
/// that talks to it (absent for one that does not): with `relayed`, that thread hands the data over itself; with
/// `progress`, it listens to the task's progress values.
#[allow(clippy::too_many_arguments)]
#[napi(js_name = "runJs", ts_return_type = "Promise<Buffer>")]
pub fn run_js(
    env: Env,
    pool: &NativePool,
    payload: Uint8ArraySlice,
    name: Option<String>,
    filename: Option<String>,
    transfers: Option<Vec<ArrayBuffer>>,
    tag: Option<f64>,
    relayed: bool,
    progress: bool,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    if pool.js.is_none() {
        return pool.reject(
            ErrorCode::InvalidArg,
            "this pool has no task module (options.filename)",
        );
    }
    let buffers = transfers
        .unwrap_or_default()
        .iter()
        .map(|b| Moved::hold(env.raw(), b).map(|m| Box::new(m) as Box<dyn Transfer>))
        .collect::<napi::Result<_>>()?;
    let job = JsJob {
        payload: payload.to_vec(),
        name,
        filename,
        buffers,
        tag,
        relayed,
        progress,
    };
    pool.submit_work(Work::Lend(job), task)
}

/// `(kind, value)`: kind 0 runs the task `value` (see [`task_value`]), 1 aborts task `value`
/// (its seq), 2 tells the worker to exit.
type InboxArgs = FnArgs<(u32, RawValue)>;
type InboxFn = ThreadsafeFunction<WorkerMsg, (), InboxArgs, Status, false, false>;

struct TsfnInbox(InboxFn);

impl WorkerInbox for TsfnInbox {
    fn send(&self, msg: WorkerMsg) -> bool {
        self.0.call(msg, ThreadsafeFunctionCallMode::NonBlocking) == Status::Ok
    }
}

/// A task as `lib/worker.js` takes it: `[seq, payload, name, buffers, filename, tag,
/// relayed, progress]` (`tag` null for a task that does not talk to its caller). JS thread only.
fn task_value(env: sys::napi_env, seq: u64, job: JsJob) -> napi::Result<sys::napi_value> {
    // SAFETY: JS thread of `env`.
    let elements = unsafe {
        [
            f64::to_napi_value(env, seq as f64)?,
            buffer_value(env, job.payload)?,
            Option::<String>::to_napi_value(env, job.name)?,
            transferred(env, job.buffers)?,
            Option::<String>::to_napi_value(env, job.filename)?,
            Option::<f64>::to_napi_value(env, job.tag)?,
            bool::to_napi_value(env, job.relayed)?,
            bool::to_napi_value(env, job.progress)?,
        ]
    };
    array_value(env, &elements)
}

/// A task's transferred buffers as an array of `ArrayBuffer`s of the worker's own, or `null`
/// when there are none. Each is a copy made here, and the caller's memory is let go of at once.
///
/// A view over the caller's memory would save that copy, but the caller can free its memory
/// only after the worker has collected the view, and a worker that allocates little collects
/// rarely: 400 tasks of 1 MiB, 4 in flight, held 380-400 MiB at their peak. Reporting the views
/// to V8 as external memory bounded that but made the worker collect fully every 64 MiB, which
/// cost more than the copy. A copy is memory V8 allocated, counts and frees like any other.
///
/// The copy is made by `napi_create_buffer_copy`, whose memory is not zero-filled first (an
/// `ArrayBuffer` made by `napi_create_arraybuffer` is, which doubled the bytes written); its
/// `Buffer` spans the whole of a new `ArrayBuffer`, which is what the task gets.
fn transferred(
    env: sys::napi_env,
    buffers: Vec<Box<dyn Transfer>>,
) -> napi::Result<sys::napi_value> {
    if buffers.is_empty() {
        // SAFETY: JS thread of `env`.
        return unsafe { Null::to_napi_value(env, Null) };
    }
    let mut elements = Vec::with_capacity(buffers.len());
    for mut input in buffers {
        let (mut view, mut value) = (ptr::null_mut(), ptr::null_mut());
        let len = input.len();
        // SAFETY: JS thread of `env`; the source is valid for `len` bytes until `input` is
        // dropped below, and the out-pointers not needed may be null.
        unsafe {
            check(sys::napi_create_buffer_copy(
                env,
                len,
                input.as_mut_ptr().cast(),
                ptr::null_mut(),
                &mut view,
            ))?;
            check(sys::napi_get_typedarray_info(
                env,
                view,
                ptr::null_mut(),
                ptr::null_mut(),
                ptr::null_mut(),
                &mut value,
                ptr::null_mut(),
            ))?;
        }
        // The caller's thread deletes its reference to the memory, which it then collects.
        drop(input);
        elements.push(value);
    }
    array_value(env, &elements)
}

/// Called by a worker once its task module is loaded: `on_message(kind, value)` receives its
/// tasks (see [`InboxArgs`]). Holding the inbox keeps the worker's event loop alive.
#[napi(js_name = "jsWorkerAttach")]
pub fn js_worker_attach(
    pool_id: f64,
    slot: u32,
    generation: f64,
    #[napi(ts_arg_type = "(kind: number, value: unknown) => void")] on_message: Function<
        InboxArgs,
        (),
    >,
) -> napi::Result<bool> {
    let Some(js) = JsSlots::<Output>::find(pool_id as u64) else {
        return Ok(false);
    };
    let inbox: InboxFn = on_message
        .build_threadsafe_function::<WorkerMsg>()
        .callee_handled::<false>()
        .build_callback(|ctx| {
            let env = ctx.env.raw();
            // SAFETY: the callback runs on the worker's JS thread.
            let (kind, value) = unsafe {
                match ctx.value {
                    WorkerMsg::Run { seq, job } => (0, task_value(env, seq, job)?),
                    WorkerMsg::Abort { seq } => (1, f64::to_napi_value(env, seq as f64)?),
                    WorkerMsg::Exit => (2, Null::to_napi_value(env, Null)?),
                }
            };
            Ok((kind, RawValue(value)).into())
        })?;
    Ok(js.attach(slot as usize, generation as u64, Arc::new(TsfnInbox(inbox))))
}

/// A worker reports the encoded result of task `seq` (`ok == false`: the task threw). Returns
/// the next task for the worker (see [`task_value`]) when the next queued task is a JS task;
/// otherwise `null` (the worker then waits for its inbox). A result passed to `move()` does not
/// come this way: the worker posts its memory to the pool's thread, which takes it from the
/// worker's port (see `lib/worker.js`).
#[napi(
    js_name = "jsTaskDone",
    ts_return_type = "[number, Buffer, string | null, Array<ArrayBuffer> | null, string | null, number | null, boolean, boolean] | null"
)]
pub fn js_task_done(
    env: Env,
    pool_id: f64,
    slot: u32,
    seq: f64,
    result: Uint8ArraySlice,
    ok: bool,
) -> napi::Result<RawValue> {
    let env = env.raw();
    let next = JsSlots::<Output>::find(pool_id as u64)
        .and_then(|js| js.done(slot as usize, seq as u64, result.to_vec(), ok));
    Ok(RawValue(match next {
        Some((seq, job)) => task_value(env, seq, job)?,
        // SAFETY: JS thread of `env`.
        None => unsafe { Null::to_napi_value(env, Null)? },
    }))
}

/// An idle worker asks to exit; `true` means it may (no task is assigned to it).
#[napi(js_name = "jsWorkerRetire")]
pub fn js_worker_retire(pool_id: f64, slot: u32, generation: f64) -> bool {
    JsSlots::<Output>::find(pool_id as u64)
        .is_some_and(|js| js.retire(slot as usize, generation as u64))
}

/// What a worker's exit meant to its pool (see [`js_worker_exited`]).
#[napi(string_enum)]
pub enum WorkerExit {
    /// A report about an earlier worker of the slot: ignored.
    #[napi(value = "stale")]
    Stale,
    /// No task had or waited for the worker.
    #[napi(value = "outsideTask")]
    OutsideTask,
    /// A task had or waited for the worker, and fails with the message.
    #[napi(value = "taskFailed")]
    TaskFailed,
}

/// The pool's JS thread saw a worker exit (or fail to start) with `message`.
#[napi(js_name = "jsWorkerExited")]
pub fn js_worker_exited(pool_id: f64, slot: u32, generation: f64, message: String) -> WorkerExit {
    match JsSlots::<Output>::find(pool_id as u64)
        .and_then(|js| js.exited(slot as usize, generation as u64, message))
    {
        None => WorkerExit::Stale,
        Some(false) => WorkerExit::OutsideTask,
        Some(true) => WorkerExit::TaskFailed,
    }
}

/// Lowers the calling thread's scheduling priority by `nice` (a worker applies its pool's
/// `niceIncrement` to itself, as the pool threads do).
#[napi(js_name = "jsWorkerNice")]
pub fn js_worker_nice(nice: i32) {
    if nice > 0 {
        lower_thread_priority(nice);
    }
}
