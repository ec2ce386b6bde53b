//! `passwordHash` and `passwordVerify`; see `corepool_core::kernels::password`.

use napi_derive::napi;

use corepool_core::kernels::password::{
    hash_password, params, verify_password, DEFAULT_MEMORY_KIB, DEFAULT_OUTPUT_LEN,
    DEFAULT_PARALLELISM, DEFAULT_TIME_COST,
};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, Output, RawValue, TaskOptions};
use crate::pool::scheduler::TaskCtx;

/// Options of native `passwordHash` (argon2id); OWASP's defaults when absent.
#[napi(object)]
pub struct PasswordHashOptions {
    /// Memory in KiB, 8 × `parallelism` to 4 GiB; default 19456.
    pub memory_cost: Option<u32>,
    /// Passes, 1 to 1024; default 2.
    pub time_cost: Option<u32>,
    /// Lanes, 1 to 64; default 1.
    pub parallelism: Option<u32>,
    /// Hash length in bytes, 4 to 1024; default 32.
    pub output_length: Option<u32>,
}

/// Native `passwordHash`.
#[napi(js_name = "passwordHash", ts_return_type = "Promise<string>")]
pub fn password_hash_task(
    pool: &NativePool,
    #[napi(ts_arg_type = "string | Uint8Array")] password: JsBytes,
    options: PasswordHashOptions,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    // `params` checks what the types cannot say (the one declaration of the ranges).
    let job = params(
        options.memory_cost.unwrap_or(DEFAULT_MEMORY_KIB),
        options.time_cost.unwrap_or(DEFAULT_TIME_COST),
        options.parallelism.unwrap_or(DEFAULT_PARALLELISM),
        options.output_length.unwrap_or(DEFAULT_OUTPUT_LEN),
    )
    .map(|params| {
        let password = to_vec(password);
        move |ctx: &TaskCtx| hash_password(&password, params, ctx).map(Output::value)
    });
    pool.submit_task(task, job)
}

/// Native `passwordVerify`.
#[napi(js_name = "passwordVerify", ts_return_type = "Promise<boolean>")]
pub fn password_verify_task(
    pool: &NativePool,
    hash: String,
    #[napi(ts_arg_type = "string | Uint8Array")] password: JsBytes,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let password = to_vec(password);
    let job = move |ctx: &TaskCtx| verify_password(&hash, &password, ctx).map(Output::value);
    pool.submit_task(task, Ok(job))
}
