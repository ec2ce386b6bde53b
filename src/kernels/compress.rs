//! `compress` and `decompress`; see `corepool_core::kernels::compress`.

use napi_derive::napi;

use corepool_core::kernels::compress::{compress, decompress, Format};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, RawValue, TaskOptions};
use crate::pool::scheduler::TaskCtx;

/// A compression format, named as in node:zlib.
#[napi(string_enum)]
pub enum CompressFormat {
    #[napi(value = "gzip")]
    Gzip,
    /// zlib
    #[napi(value = "deflate")]
    Deflate,
    #[napi(value = "deflate-raw")]
    DeflateRaw,
    #[napi(value = "brotli")]
    Brotli,
    #[napi(value = "zstd")]
    Zstd,
}

impl From<CompressFormat> for Format {
    fn from(f: CompressFormat) -> Self {
        match f {
            CompressFormat::Gzip => Format::Gzip,
            CompressFormat::Deflate => Format::Deflate,
            CompressFormat::DeflateRaw => Format::DeflateRaw,
            CompressFormat::Brotli => Format::Brotli,
            CompressFormat::Zstd => Format::Zstd,
        }
    }
}

/// Options of native `compress`.
#[napi(object)]
pub struct CompressOptions {
    /// The format's level (its range depends on the format); node:zlib's default when absent.
    pub level: Option<i32>,
}

/// Options of native `decompress`.
#[napi(object)]
pub struct DecompressOptions {
    /// Output beyond this many bytes fails with ERR_OUTPUT_TOO_LARGE (an integer >= 1).
    pub max_output_length: f64,
}

/// Native `compress`.
#[napi(js_name = "compress", ts_return_type = "Promise<Buffer>")]
pub fn compress_task(
    pool: &NativePool,
    format: CompressFormat,
    #[napi(ts_arg_type = "string | Uint8Array")] data: JsBytes,
    options: CompressOptions,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let format = Format::from(format);
    let job = format
        .check_level(options.level.map(f64::from))
        .map(|level| {
            let data = to_vec(data);
            move |ctx: &TaskCtx| compress(format, level, &data, ctx)
        });
    pool.submit_task(task, job)
}

/// Native `decompress`.
#[napi(js_name = "decompress", ts_return_type = "Promise<Buffer>")]
pub fn decompress_task(
    pool: &NativePool,
    format: CompressFormat,
    #[napi(ts_arg_type = "string | Uint8Array")] data: JsBytes,
    options: DecompressOptions,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let format = Format::from(format);
    // `as` saturates; lib/kernels.js gives an integer >= 1.
    let max = options.max_output_length as usize;
    let data = to_vec(data);
    let job = move |ctx: &TaskCtx| decompress(format, &data, max, ctx);
    pool.submit_task(task, Ok(job))
}
