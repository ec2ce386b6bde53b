//! `resize`; see `corepool_core::kernels::image`.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use corepool_core::kernels::image::{resize, Fit, Format, Request, DEFAULT_MAX_PIXELS};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, Output, RawValue, TaskArgs};
use crate::pool::scheduler::TaskCtx;

/// A resized image, as `resize` resolves it.
#[napi(object)]
pub struct ResizedImage {
    pub data: Buffer,
    pub width: u32,
    pub height: u32,
    pub format: String,
}

/// Native `resize`. Zero width/height means "not given"; the JS wrapper validates names.
#[allow(clippy::too_many_arguments)]
#[napi(js_name = "resize")]
pub fn resize_task(
    pool: &NativePool,
    image: JsBytes,
    width: u32,
    height: u32,
    fit: String,
    format: String,
    quality: u32,
    max_pixels: f64,
    priority: f64,
    timeout_ms: f64,
    cancel_key: f64,
) -> napi::Result<RawValue> {
    let task = TaskArgs {
        priority,
        timeout_ms,
        cancel_key,
    };
    let job = request(width, height, &fit, &format, quality, max_pixels).map(|req| {
        let data = to_vec(image);
        move |ctx: &TaskCtx| {
            let r = resize(&data, &req, ctx)?;
            Ok(Output::value(ResizedImage {
                data: r.data.into(),
                width: r.width,
                height: r.height,
                format: r.format.name().to_string(),
            }))
        }
    });
    pool.submit_task(task, job)
}

fn request(
    width: u32,
    height: u32,
    fit: &str,
    format: &str,
    quality: u32,
    max_pixels: f64,
) -> Result<Request, String> {
    let fit = Fit::parse(fit).ok_or_else(|| format!("unknown fit {fit:?}"))?;
    let format = match format {
        "" => None,
        name => Some(Format::parse(name).ok_or_else(|| format!("unknown format {name:?}"))?),
    };
    if !(1..=100).contains(&quality) {
        return Err("options.quality must be an integer from 1 to 100".into());
    }
    Ok(Request {
        width: (width > 0).then_some(width),
        height: (height > 0).then_some(height),
        fit,
        format,
        quality: quality as u8,
        max_pixels: if max_pixels >= 1.0 {
            max_pixels as u64
        } else {
            DEFAULT_MAX_PIXELS
        },
    })
}
