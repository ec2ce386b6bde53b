//! Kernels for tests (`require('corepool/testing')`): a job that panics and one that sleeps.

use std::time::Duration;

use napi_derive::napi;

use crate::error::ErrorCode;
use crate::pool::binding::{NativePool, Output, RawValue};
use crate::pool::timer::millis;

/// A task that panics with `message`.
#[allow(dead_code)] // registered with Node by #[napi]
#[napi(js_name = "testPanic")]
pub fn test_panic(
    pool: &NativePool,
    message: String,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    pool.submit(
        Box::new(move |_| panic!("{message}")),
        priority,
        timeout_ms,
        cancel_key,
    )
}

/// A task that holds its thread for `ms` milliseconds, waking early when cancelled.
#[allow(dead_code)] // registered with Node by #[napi]
#[napi(js_name = "testSleep")]
pub fn test_sleep(
    pool: &NativePool,
    ms: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    if !(ms.is_finite() && ms >= 0.0) {
        return pool.reject(
            ErrorCode::InvalidArg,
            &format!("ms must be a finite non-negative number, got {ms}"),
        );
    }
    pool.submit(
        Box::new(move |ctx| {
            ctx.sleep(millis(ms).unwrap_or(Duration::MAX))?;
            Ok(Output::Undefined)
        }),
        priority,
        timeout_ms,
        cancel_key,
    )
}
