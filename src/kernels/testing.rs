//! Kernels for tests (`require('corepool/testing')`): a job that panics and one that sleeps.

use std::time::Duration;

use napi_derive::napi;

use crate::pool::binding::{NativePool, RawValue, TaskOptions};
use crate::pool::scheduler::{TaskCtx, TaskError};
use crate::pool::timer::millis;

/// A task that panics with `message`.
#[napi(js_name = "testPanic", ts_return_type = "Promise<never>")]
pub fn test_panic(
    pool: &NativePool,
    message: String,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let job = move |_: &TaskCtx| -> Result<(), TaskError> { panic!("{message}") };
    pool.submit_task(task, Ok(job))
}

/// A task that holds its thread for `ms` milliseconds, waking early when cancelled.
#[napi(js_name = "testSleep", ts_return_type = "Promise<void>")]
pub fn test_sleep(
    pool: &NativePool,
    ms: f64,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let job = if ms.is_finite() && ms >= 0.0 {
        Ok(move |ctx: &TaskCtx| ctx.sleep(millis(ms).unwrap_or(Duration::MAX)))
    } else {
        Err(format!("ms must be a finite non-negative number, got {ms}"))
    };
    pool.submit_task(task, job)
}
