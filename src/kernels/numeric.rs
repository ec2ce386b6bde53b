//! `sqrtSum`, `countPrimes`, `sortFloat64`, `statsFloat64`; see
//! `corepool_core::kernels::numeric`.

use napi::bindgen_prelude::{Float64Array, Float64ArraySlice};
use napi_derive::napi;

use corepool_core::kernels::numeric::{count_primes, parse_count, sort_f64, sqrt_sum, stats_f64};

use crate::pool::binding::{NativePool, Output, RawValue, TaskOptions};
use crate::pool::scheduler::TaskCtx;

/// Native `sqrtSum`; see `lib/kernels.js` for the public wrapper.
#[napi(js_name = "sqrtSum", ts_return_type = "Promise<number>")]
pub fn sqrt_sum_task(
    pool: &NativePool,
    n: f64,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let job = parse_count("n", n).map(|n| move |ctx: &TaskCtx| sqrt_sum(n, ctx));
    pool.submit_task(task, job)
}

/// Native `countPrimes`.
#[napi(js_name = "countPrimes", ts_return_type = "Promise<number>")]
pub fn count_primes_task(
    pool: &NativePool,
    limit: f64,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let job = parse_count("limit", limit)
        .map(|limit| move |ctx: &TaskCtx| count_primes(limit, ctx).map(|n| n as f64));
    pool.submit_task(task, job)
}

/// Native `sortFloat64`: sorts a copy and resolves to a new `Float64Array`.
#[napi(js_name = "sortFloat64", ts_return_type = "Promise<Float64Array>")]
pub fn sort_f64_task(
    pool: &NativePool,
    values: Float64ArraySlice,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let mut values = values.as_ref().to_vec();
    let job = move |ctx: &TaskCtx| {
        sort_f64(&mut values, ctx)?;
        Ok(Output::value(Float64Array::new(values)))
    };
    pool.submit_task(task, Ok(job))
}

/// Native `statsFloat64`: resolves to `[count, sum, mean, min, max]`.
#[napi(js_name = "statsFloat64", ts_return_type = "Promise<Array<number>>")]
pub fn stats_f64_task(
    pool: &NativePool,
    values: Float64ArraySlice,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let values = values.as_ref().to_vec();
    let job = move |ctx: &TaskCtx| {
        let s = stats_f64(&values, ctx)?;
        Ok(Output::value(vec![s.count, s.sum, s.mean, s.min, s.max]))
    };
    pool.submit_task(task, Ok(job))
}
