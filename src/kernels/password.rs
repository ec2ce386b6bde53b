//! `passwordHash` and `passwordVerify`; see `corepool_core::kernels::password`.

use napi_derive::napi;

use corepool_core::kernels::password::{
    hash_password, params, verify_password, DEFAULT_MEMORY_KIB, DEFAULT_OUTPUT_LEN,
    DEFAULT_PARALLELISM, DEFAULT_TIME_COST,
};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, Output, RawValue, TaskArgs};
use crate::pool::scheduler::TaskCtx;

fn to_u32(x: f64) -> u32 {
    if x.is_finite() && x >= 0.0 && x <= u32::MAX as f64 && x.fract() == 0.0 {
        x as u32
    } else {
        // Out of every accepted range, so `params` reports it (as 0: below every minimum).
        0
    }
}

/// Native `passwordHash`. NaN options mean "default".
#[allow(clippy::too_many_arguments)]
#[napi(js_name = "passwordHash")]
pub fn password_hash_task(
    pool: &NativePool,
    password: JsBytes,
    memory_cost: f64,
    time_cost: f64,
    parallelism: f64,
    output_length: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let or = |x: f64, default: u32| if x.is_nan() { default } else { to_u32(x) };
    let job = params(
        or(memory_cost, DEFAULT_MEMORY_KIB),
        or(time_cost, DEFAULT_TIME_COST),
        or(parallelism, DEFAULT_PARALLELISM),
        or(output_length, DEFAULT_OUTPUT_LEN),
    )
    .map(|params| {
        let password = to_vec(password);
        move |ctx: &TaskCtx| hash_password(&password, params, ctx).map(Output::value)
    });
    pool.submit_task(task, job)
}

/// Native `passwordVerify`.
#[napi(js_name = "passwordVerify")]
pub fn password_verify_task(
    pool: &NativePool,
    hash: String,
    password: JsBytes,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let password = to_vec(password);
    let job = move |ctx: &TaskCtx| verify_password(&hash, &password, ctx).map(Output::value);
    pool.submit_task(task, Ok(job))
}
