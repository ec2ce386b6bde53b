//! `compress` and `decompress`; see `corepool_core::kernels::compress`.

use napi_derive::napi;

use corepool_core::kernels::compress::{compress, decompress, Format};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, RawValue, TaskArgs};
use crate::pool::scheduler::TaskCtx;

/// Native `compress`; a non-finite `level` (NaN) means "the format's default".
#[allow(clippy::too_many_arguments)]
#[napi(js_name = "compress")]
pub fn compress_task(
    pool: &NativePool,
    format: String,
    data: JsBytes,
    level: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let job = Format::parse(&format).and_then(|format| {
        let level = format.check_level(level.is_finite().then_some(level))?;
        let data = to_vec(data);
        Ok(move |ctx: &TaskCtx| compress(format, level, &data, ctx))
    });
    pool.submit_task(task, job)
}

/// Native `decompress`; `max_output_length` is validated by the JS wrapper.
#[allow(clippy::too_many_arguments)]
#[napi(js_name = "decompress")]
pub fn decompress_task(
    pool: &NativePool,
    format: String,
    data: JsBytes,
    max_output_length: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let job = Format::parse(&format).and_then(|format| {
        if !(max_output_length.fract() == 0.0 && max_output_length >= 1.0) {
            return Err(format!(
                "options.maxOutputLength must be a positive integer, got {max_output_length}"
            ));
        }
        let max = max_output_length.min(usize::MAX as f64) as usize;
        let data = to_vec(data);
        Ok(move |ctx: &TaskCtx| decompress(format, &data, max, ctx))
    });
    pool.submit_task(task, job)
}
