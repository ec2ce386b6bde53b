//! `resize`; see `corepool_core::kernels::image`.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use corepool_core::kernels::image::{self, resize, Fit, Format, Request};

use crate::buffers::{to_vec, JsBytes};
use crate::pool::binding::{NativePool, Output, RawValue, TaskOptions};
use crate::pool::scheduler::TaskCtx;

/// A resized image, as `resize` resolves it.
#[napi(object)]
pub struct ResizedImage {
    pub data: Buffer,
    pub width: u32,
    pub height: u32,
    /// `'jpeg'`, `'png'` or `'webp'`.
    pub format: String,
}

/// How `resize` fits the image into `width` × `height` (sharp's meanings).
#[napi(string_enum)]
pub enum ImageFit {
    /// Fill the box exactly, cropping the overflow (centred).
    #[napi(value = "cover")]
    Cover,
    /// Fit inside the box and pad to its exact size with opaque black.
    #[napi(value = "contain")]
    Contain,
    /// Stretch to the box, ignoring the aspect ratio.
    #[napi(value = "fill")]
    Fill,
    /// Fit inside the box, keeping the aspect ratio.
    #[napi(value = "inside")]
    Inside,
    /// Cover the box, keeping the aspect ratio.
    #[napi(value = "outside")]
    Outside,
}

/// An image format `resize` encodes.
#[napi(string_enum)]
pub enum ImageFormat {
    #[napi(value = "jpeg")]
    Jpeg,
    /// The same as `'jpeg'`.
    #[napi(value = "jpg")]
    Jpg,
    #[napi(value = "png")]
    Png,
    #[napi(value = "webp")]
    Webp,
}

/// Default `maxPixels` of `resize` (sharp's `limitInputPixels` default, 0x3FFF²).
#[napi]
pub const DEFAULT_MAX_PIXELS: f64 = image::DEFAULT_MAX_PIXELS as f64;

/// Options of native `resize`.
#[napi(object)]
pub struct ResizeOptions {
    /// Output width (1 to 65535); from `height` and the aspect ratio when absent.
    pub width: Option<u32>,
    /// Output height (1 to 65535); from `width` and the aspect ratio when absent.
    pub height: Option<u32>,
    /// Default `'cover'`.
    pub fit: Option<ImageFit>,
    /// Default: the input's format.
    pub format: Option<ImageFormat>,
    /// JPEG quality, 1 to 100; default 80.
    pub quality: Option<u8>,
    /// Larger inputs or outputs fail with ERR_OUTPUT_TOO_LARGE before decoding; default
    /// `DEFAULT_MAX_PIXELS`.
    pub max_pixels: Option<f64>,
}

/// Native `resize`.
#[napi(js_name = "resize", ts_return_type = "Promise<ResizedImage>")]
pub fn resize_task(
    pool: &NativePool,
    #[napi(ts_arg_type = "string | Uint8Array")] image: JsBytes,
    options: ResizeOptions,
    priority: Option<f64>,
    timeout: Option<f64>,
    cancel_key: Option<i64>,
) -> napi::Result<RawValue> {
    let task = TaskOptions {
        priority,
        timeout,
        cancel_key,
    };
    let req = request(options);
    let data = to_vec(image);
    let job = move |ctx: &TaskCtx| {
        let r = resize(&data, &req, ctx)?;
        Ok(Output::value(ResizedImage {
            data: r.data.into(),
            width: r.width,
            height: r.height,
            format: r.format.name().to_string(),
        }))
    };
    pool.submit_task(task, Ok(job))
}

fn request(o: ResizeOptions) -> Request {
    Request {
        width: o.width,
        height: o.height,
        fit: match o.fit.unwrap_or(ImageFit::Cover) {
            ImageFit::Cover => Fit::Cover,
            ImageFit::Contain => Fit::Contain,
            ImageFit::Fill => Fit::Fill,
            ImageFit::Inside => Fit::Inside,
            ImageFit::Outside => Fit::Outside,
        },
        format: o.format.map(|f| match f {
            ImageFormat::Jpeg | ImageFormat::Jpg => Format::Jpeg,
            ImageFormat::Png => Format::Png,
            ImageFormat::Webp => Format::Webp,
        }),
        quality: o.quality.unwrap_or(80),
        max_pixels: o.max_pixels.map_or(image::DEFAULT_MAX_PIXELS, |n| n as u64),
    }
}
