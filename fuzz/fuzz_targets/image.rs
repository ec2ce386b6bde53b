//! `resize` on arbitrary bytes (JPEG, PNG, WebP decoders, then resize and encode): it must
//! return an image or ERR_CORRUPT_INPUT / ERR_OUTPUT_TOO_LARGE, never panic, hang or use more
//! memory than the pixel budget allows. The first two bytes pick the output size and fit.
#![no_main]

use corepool_core::error::ErrorCode;
use corepool_core::kernels::image::{resize, Fit, Format, Request};
use corepool_core::pool::scheduler::tests_support::ctx;
use libfuzzer_sys::fuzz_target;

const FITS: [Fit; 5] = [
    Fit::Cover,
    Fit::Contain,
    Fit::Fill,
    Fit::Inside,
    Fit::Outside,
];
const FORMATS: [Option<Format>; 4] = [
    None,
    Some(Format::Jpeg),
    Some(Format::Png),
    Some(Format::Webp),
];
/// 1 M pixels: at most 4 MiB per pixel buffer.
const MAX_PIXELS: u64 = 1 << 20;

fuzz_target!(|input: &[u8]| {
    let [size, options, data @ ..] = input else {
        return;
    };
    let side = |bits: u8| (bits != 0).then_some(bits as u32 * 8);
    let req = Request {
        width: side(size & 0x0F),
        height: side(size >> 4),
        fit: FITS[(options & 0x07) as usize % FITS.len()],
        format: FORMATS[(options >> 3 & 0x03) as usize],
        quality: 1 + (options >> 5) * 14,
        max_pixels: MAX_PIXELS,
    };
    match resize(data, &req, &ctx()) {
        Ok(r) => assert!(r.width as u64 * r.height as u64 <= MAX_PIXELS),
        Err(e) => assert!(
            matches!(
                e.code(),
                ErrorCode::CorruptInput | ErrorCode::OutputTooLarge
            ),
            "unexpected {:?}: {}",
            e.code(),
            e.message()
        ),
    }
});
