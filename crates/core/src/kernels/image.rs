//! Image resize: decode JPEG/PNG/WebP (`image`), resize with a Lanczos3 convolution
//! (`fast_image_resize`, SIMD), encode JPEG/PNG/WebP.
//!
//! Image bombs: the decoder's header is read first and an image with more than `max_pixels`
//! pixels is refused (`ERR_OUTPUT_TOO_LARGE`) before any pixel memory is allocated; the same
//! limit applies to the requested output size. Memory is bounded by bytes too: every pixel
//! buffer (the decoded image, its 8-bit conversion, the resizer's intermediate image, the output)
//! holds at most [`BYTES_PER_PIXEL`] × `max_pixels` bytes, so a small file declaring a huge
//! 16-bit image, or a resize whose intermediate pass would be huge, is refused up front.

use std::io::Cursor;

use crate::error::ErrorCode;
use crate::pool::scheduler::{TaskCtx, TaskError};
use fast_image_resize as fr;
use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageFormat, ImageReader};

/// sharp's default `limitInputPixels` (0x3FFF × 0x3FFF).
pub const DEFAULT_MAX_PIXELS: u64 = 0x3FFF * 0x3FFF;

/// Bytes per pixel of `max_pixels` that one pixel buffer may hold (8-bit RGBA).
pub const BYTES_PER_PIXEL: u64 = 4;

/// The most bytes one pixel buffer may hold.
pub fn buffer_budget(max_pixels: u64) -> u64 {
    max_pixels.saturating_mul(BYTES_PER_PIXEL)
}

/// `ERR_OUTPUT_TOO_LARGE` when `what` needs more than one pixel buffer's budget.
fn check_bytes(what: &str, bytes: u64, max_pixels: u64) -> Result<(), TaskError> {
    let budget = buffer_budget(max_pixels);
    if bytes <= budget {
        return Ok(());
    }
    Err(TaskError::failed(
        ErrorCode::OutputTooLarge,
        format!(
            "{what} needs {bytes} bytes, more than {BYTES_PER_PIXEL} bytes per pixel of maxPixels \
             ({budget} bytes)"
        ),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Fill the box exactly, cropping the overflow (centred). sharp's default.
    Cover,
    /// Fit inside the box and pad to its exact size with opaque black.
    Contain,
    /// Stretch to the box, ignoring the aspect ratio.
    Fill,
    /// Fit inside the box, keeping the aspect ratio (output may be smaller on one side).
    Inside,
    /// Cover the box, keeping the aspect ratio (output may be larger on one side).
    Outside,
}

impl Fit {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "cover" => Fit::Cover,
            "contain" => Fit::Contain,
            "fill" => Fit::Fill,
            "inside" => Fit::Inside,
            "outside" => Fit::Outside,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jpeg,
    Png,
    Webp,
}

impl Format {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "jpeg" | "jpg" => Format::Jpeg,
            "png" => Format::Png,
            "webp" => Format::Webp,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::Jpeg => "jpeg",
            Format::Png => "png",
            Format::Webp => "webp",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Request {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fit: Fit,
    /// `None`: the input's format.
    pub format: Option<Format>,
    /// JPEG quality 1..=100 (PNG and WebP are lossless here).
    pub quality: u8,
    pub max_pixels: u64,
}

pub struct Resized {
    pub data: Vec<u8>,
    pub width: u32,
    pub height: u32,
    pub format: Format,
}

fn corrupt(message: impl Into<String>) -> TaskError {
    TaskError::failed(ErrorCode::CorruptInput, message)
}

/// `ERR_OUTPUT_TOO_LARGE` when a `w`×`h` image (`what`) has more than `max` pixels.
fn check_pixels(what: &str, w: u32, h: u32, max: u64) -> Result<(), TaskError> {
    let pixels = w as u64 * h as u64;
    if pixels <= max {
        return Ok(());
    }
    Err(TaskError::failed(
        ErrorCode::OutputTooLarge,
        format!("{what} is {w}×{h} = {pixels} pixels, more than maxPixels ({max})"),
    ))
}

fn decode_error(e: image::ImageError) -> TaskError {
    match e {
        image::ImageError::Limits(l) => TaskError::failed(
            ErrorCode::OutputTooLarge,
            format!("decoding needs more memory than allowed: {l}"),
        ),
        other => corrupt(format!("invalid or truncated image: {other}")),
    }
}

/// Output size and the source crop box `(left, top, width, height)`, plus the padded canvas
/// size for `contain`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Plan {
    pub width: u32,
    pub height: u32,
    pub crop: Option<(f64, f64, f64, f64)>,
    pub canvas: Option<(u32, u32)>,
}

fn scaled(v: u32, factor: f64) -> u32 {
    ((v as f64 * factor).round() as u32).max(1)
}

pub fn plan(sw: u32, sh: u32, req: &Request) -> Plan {
    let simple = |width, height| Plan {
        width,
        height,
        crop: None,
        canvas: None,
    };
    match (req.width, req.height) {
        (None, None) => simple(sw, sh),
        (Some(w), None) => simple(w, scaled(sh, w as f64 / sw as f64)),
        (None, Some(h)) => simple(scaled(sw, h as f64 / sh as f64), h),
        (Some(w), Some(h)) => {
            let (fx, fy) = (w as f64 / sw as f64, h as f64 / sh as f64);
            match req.fit {
                Fit::Fill => simple(w, h),
                Fit::Inside => {
                    let f = fx.min(fy);
                    simple(scaled(sw, f).min(w), scaled(sh, f).min(h))
                }
                Fit::Outside => {
                    let f = fx.max(fy);
                    simple(scaled(sw, f).max(w), scaled(sh, f).max(h))
                }
                Fit::Contain => {
                    let f = fx.min(fy);
                    Plan {
                        canvas: Some((w, h)),
                        ..simple(scaled(sw, f).min(w), scaled(sh, f).min(h))
                    }
                }
                Fit::Cover => {
                    let target = w as f64 / h as f64;
                    let (sw, sh) = (sw as f64, sh as f64);
                    let crop = if sw / sh > target {
                        let cw = sh * target;
                        ((sw - cw) / 2.0, 0.0, cw, sh)
                    } else {
                        let ch = sw / target;
                        (0.0, (sh - ch) / 2.0, sw, ch)
                    };
                    Plan {
                        crop: Some(crop),
                        ..simple(w, h)
                    }
                }
            }
        }
    }
}

pub fn resize(data: &[u8], req: &Request, ctx: &TaskCtx) -> Result<Resized, TaskError> {
    ctx.check()?;
    let reader = ImageReader::new(Cursor::new(data))
        .with_guessed_format()
        .map_err(|e| corrupt(format!("cannot read image: {e}")))?;
    let input_format = match reader.format() {
        Some(ImageFormat::Jpeg) => Format::Jpeg,
        Some(ImageFormat::Png) => Format::Png,
        Some(ImageFormat::WebP) => Format::Webp,
        _ => return Err(corrupt("not a JPEG, PNG or WebP image")),
    };
    if input_format == Format::Jpeg && !jpeg_is_complete(data) {
        return Err(corrupt(
            "truncated JPEG: no end-of-image marker after the last scan",
        ));
    }
    let mut reader = reader;
    let mut limits = image::Limits::default();
    // Up to 16-bit RGBA per pixel, plus decoder scratch space.
    limits.max_alloc = Some(req.max_pixels.saturating_mul(8).saturating_add(64 << 20));
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(corrupt("the image has no pixels"));
    }
    check_pixels("the input image", w, h, req.max_pixels)?;
    // 16-bit and float images take more than 4 bytes per pixel.
    check_bytes(
        &format!("decoding the {w}×{h} {:?} image", decoder.color_type()),
        decoder.total_bytes(),
        req.max_pixels,
    )?;
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let format = req.format.unwrap_or(input_format);

    // Shrink-on-load: a JPEG reduced at least 2× is decoded at 1/2, 1/4 or 1/8 scale by the
    // DCT itself (what libvips/sharp do), then resized the rest of the way.
    let upright = orientation == image::metadata::Orientation::NoTransforms;
    let fast = if input_format == Format::Jpeg && upright {
        let p = plan(w, h, req);
        let (cw, ch) = p.crop.map_or((w as f64, h as f64), |c| (c.2, c.3));
        let shrink = (cw / p.width as f64).min(ch / p.height as f64);
        match [8u32, 4, 2].into_iter().find(|&d| d as f64 <= shrink) {
            Some(d) => decode_jpeg_scaled(data, w.div_ceil(d), h.div_ceil(d)),
            None => None,
        }
    } else {
        None
    };
    let (pixels, pixel_type, sw, sh, alpha, (full_w, full_h)) = match fast {
        Some((pixels, dw, dh)) => (pixels, fr::PixelType::U8x3, dw, dh, false, (w, h)),
        None => {
            let mut img = DynamicImage::from_decoder(decoder).map_err(decode_error)?;
            img.apply_orientation(orientation);
            let alpha = img.color().has_alpha() && format != Format::Jpeg;
            let (sw, sh) = (img.width(), img.height());
            let (pixels, pixel_type) = if alpha {
                (img.into_rgba8().into_raw(), fr::PixelType::U8x4)
            } else {
                (img.into_rgb8().into_raw(), fr::PixelType::U8x3)
            };
            (pixels, pixel_type, sw, sh, alpha, (sw, sh))
        }
    };
    ctx.check()?;

    // The plan is made on the full-size (oriented) image; its crop box is then mapped onto the
    // pixels actually decoded.
    let mut p = plan(full_w, full_h, req);
    let (sx, sy) = (sw as f64 / full_w as f64, sh as f64 / full_h as f64);
    p.crop = p
        .crop
        .map(|(l, t, cw, ch)| (l * sx, t * sy, cw * sx, ch * sy));
    let (ow, oh) = p.canvas.unwrap_or((p.width, p.height));
    check_pixels("the output image", ow, oh, req.max_pixels)?;

    let resized = if p.width == sw && p.height == sh && p.crop.is_none() {
        pixels
    } else {
        // For 8-bit pixels the resizer runs the vertical pass first, into an intermediate image
        // as wide as the source and as tall as the output (a wide strip resized into a tall one
        // would need width × height of it).
        let bpp = if alpha { 4 } else { 3 };
        check_bytes(
            "resizing",
            sw as u64 * p.height as u64 * bpp,
            req.max_pixels,
        )?;
        let src = fr::images::Image::from_vec_u8(sw, sh, pixels, pixel_type)
            .map_err(|e| corrupt(format!("decoded image has an unexpected size: {e}")))?;
        let mut dst = fr::images::Image::new(p.width, p.height, pixel_type);
        let mut options = fr::ResizeOptions::new()
            .resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::Lanczos3));
        if let Some((left, top, width, height)) = p.crop {
            options = options.crop(left, top, width, height);
        }
        fr::Resizer::new()
            .resize(&src, &mut dst, &options)
            .map_err(|e| corrupt(format!("resize failed: {e}")))?;
        dst.into_vec()
    };
    let pixels = match p.canvas {
        None => resized,
        Some((cw, ch)) => pad(&resized, p.width, p.height, cw, ch, alpha),
    };
    ctx.check()?;

    let color = if alpha {
        image::ExtendedColorType::Rgba8
    } else {
        image::ExtendedColorType::Rgb8
    };
    let mut out = Vec::new();
    let encoded = match format {
        Format::Jpeg => image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, req.quality)
            .write_image(&pixels, ow, oh, color),
        Format::Png => {
            image::codecs::png::PngEncoder::new(&mut out).write_image(&pixels, ow, oh, color)
        }
        Format::Webp => image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(&pixels, ow, oh, color),
    };
    encoded.map_err(|e| {
        TaskError::failed(
            ErrorCode::InvalidArg,
            format!("cannot encode {}: {e}", format.name()),
        )
    })?;
    Ok(Resized {
        data: out,
        width: ow,
        height: oh,
        format,
    })
}

/// Decodes a JPEG with DCT scaling to the smallest of 1/1, 1/2, 1/4, 1/8 that is at least
/// `want_w`×`want_h`, as RGB8. `None` when this decoder cannot handle the file (CMYK, 16-bit,
/// any error): the caller then takes the general path, which reports real corruption.
fn decode_jpeg_scaled(data: &[u8], want_w: u32, want_h: u32) -> Option<(Vec<u8>, u32, u32)> {
    let mut decoder = jpeg_decoder::Decoder::new(data);
    decoder.read_info().ok()?;
    let (w, h) = decoder
        .scale(u16::try_from(want_w).ok()?, u16::try_from(want_h).ok()?)
        .ok()?;
    let pixels = decoder.decode().ok()?;
    let info = decoder.info()?;
    let (w, h) = (w as u32, h as u32);
    if (info.width as u32, info.height as u32) != (w, h) {
        return None;
    }
    let n = w as usize * h as usize;
    match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 if pixels.len() == n * 3 => Some((pixels, w, h)),
        jpeg_decoder::PixelFormat::L8 if pixels.len() == n => {
            Some((pixels.iter().flat_map(|&l| [l, l, l]).collect(), w, h))
        }
        _ => None,
    }
}

/// The JPEG decoder fills a truncated scan with grey instead of failing; a complete file has an
/// end-of-image marker (FF D9) after its last start-of-scan (FF DA). Inside entropy-coded data
/// 0xFF is always followed by 0x00 or a restart marker, so neither marker can appear by chance.
fn jpeg_is_complete(data: &[u8]) -> bool {
    let Some(sos) = data.windows(2).rposition(|w| w == [0xFF, 0xDA]) else {
        return false;
    };
    data[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

/// Centres a `w`×`h` image on a `cw`×`ch` opaque black canvas.
fn pad(pixels: &[u8], w: u32, h: u32, cw: u32, ch: u32, alpha: bool) -> Vec<u8> {
    let bpp = if alpha { 4 } else { 3 };
    let mut canvas = vec![0u8; cw as usize * ch as usize * bpp];
    if alpha {
        canvas.chunks_exact_mut(4).for_each(|px| px[3] = 255);
    }
    let (left, top) = (((cw - w) / 2) as usize, ((ch - h) / 2) as usize);
    let row = w as usize * bpp;
    for y in 0..h as usize {
        let dst = ((top + y) * cw as usize + left) * bpp;
        canvas[dst..dst + row].copy_from_slice(&pixels[y * row..(y + 1) * row]);
    }
    canvas
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(width: Option<u32>, height: Option<u32>, fit: Fit) -> Request {
        Request {
            width,
            height,
            fit,
            format: None,
            quality: 80,
            max_pixels: DEFAULT_MAX_PIXELS,
        }
    }

    #[test]
    fn plans() {
        let p = |w, h, fit| plan(2000, 1500, &req(w, h, fit));
        assert_eq!(
            (
                p(Some(200), None, Fit::Cover).width,
                p(Some(200), None, Fit::Cover).height
            ),
            (200, 150)
        );
        assert_eq!(p(None, Some(300), Fit::Cover).width, 400);
        let cover = p(Some(100), Some(100), Fit::Cover);
        assert_eq!((cover.width, cover.height), (100, 100));
        assert_eq!(cover.crop, Some((250.0, 0.0, 1500.0, 1500.0)));
        let inside = p(Some(100), Some(100), Fit::Inside);
        assert_eq!((inside.width, inside.height), (100, 75));
        let outside = p(Some(100), Some(100), Fit::Outside);
        assert_eq!((outside.width, outside.height), (133, 100));
        let contain = p(Some(100), Some(100), Fit::Contain);
        assert_eq!(
            (contain.width, contain.height, contain.canvas),
            (100, 75, Some((100, 100)))
        );
        let fill = p(Some(10), Some(500), Fit::Fill);
        assert_eq!((fill.width, fill.height, fill.crop), (10, 500, None));
    }

    fn png(w: u32, h: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(w, h, |x, y| image::Rgb([x as u8, y as u8, 128]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        out
    }

    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = !0u32;
        for &b in bytes {
            crc ^= b as u32;
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }

    /// A PNG whose header declares `w`×`h` pixels of `depth` bits, colour type `color`, with
    /// one tiny IDAT chunk (far too little data for that size).
    fn png_header_only(w: u32, h: u32, depth: u8, color: u8) -> Vec<u8> {
        let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
        let mut chunk = |kind: &[u8], data: &[u8]| {
            out.extend_from_slice(&(data.len() as u32).to_be_bytes());
            let body = [kind, data].concat();
            out.extend_from_slice(&body);
            out.extend_from_slice(&crc32(&body).to_be_bytes());
        };
        let mut ihdr = [w.to_be_bytes(), h.to_be_bytes()].concat();
        ihdr.extend_from_slice(&[depth, color, 0, 0, 0]);
        chunk(b"IHDR", &ihdr);
        // zlib stream of a few zero bytes.
        chunk(
            b"IDAT",
            &[0x78, 0x9C, 0x63, 0x60, 0x00, 0x00, 0x00, 0x02, 0x00, 0x01],
        );
        chunk(b"IEND", &[]);
        out
    }

    #[test]
    fn memory_is_bounded_by_bytes() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let err = |data: &[u8], r: Request| resize(data, &r, &ctx).err().unwrap();
        // 256 M pixels (under the default maxPixels) of 16-bit RGBA: 2 GiB decoded.
        let big16 = png_header_only(16_000, 16_000, 16, 6);
        let e = err(&big16, req(Some(100), None, Fit::Cover));
        assert_eq!(e.code(), ErrorCode::OutputTooLarge, "{}", e.message());
        assert!(e.message().contains("bytes"), "{}", e.message());
        // The same header in 8-bit RGBA fits the budget (1 GiB): it fails as truncated instead.
        let big8 = png_header_only(16_000, 16_000, 8, 6);
        assert_eq!(
            err(&big8, req(Some(100), None, Fit::Cover)).code(),
            ErrorCode::CorruptInput
        );
        // A wide strip resized into a tall one: the intermediate image would be 20 000² pixels.
        let strip = png(20_000, 1);
        let e = err(
            &strip,
            Request {
                max_pixels: 100_000,
                ..req(Some(1), Some(20_000), Fit::Fill)
            },
        );
        assert_eq!(e.code(), ErrorCode::OutputTooLarge, "{}", e.message());
        assert!(e.message().contains("resizing"), "{}", e.message());
        // Ordinary resizes stay inside it: the intermediate image here is 300×300.
        let ok = resize(
            &png(300, 200),
            &Request {
                max_pixels: 90_000,
                ..req(Some(150), Some(300), Fit::Fill)
            },
            &ctx,
        )
        .unwrap();
        assert_eq!((ok.width, ok.height), (150, 300));
    }

    #[test]
    fn resizes_and_reencodes() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let src = png(300, 200);
        for format in [Format::Jpeg, Format::Png, Format::Webp] {
            let r = resize(
                &src,
                &Request {
                    format: Some(format),
                    ..req(Some(60), Some(60), Fit::Contain)
                },
                &ctx,
            )
            .unwrap();
            assert_eq!((r.width, r.height, r.format), (60, 60, format));
            let back = image::load_from_memory(&r.data).unwrap();
            assert_eq!((back.width(), back.height()), (60, 60));
        }
    }

    #[test]
    fn jpeg_shrink_on_load_matches_full_decode() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let (w, h) = (640, 480);
        let img = image::RgbImage::from_fn(w, h, |x, y| {
            image::Rgb([(x / 3) as u8, (y / 2) as u8, ((x + y) / 5) as u8])
        });
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 95)
            .write_image(img.as_raw(), w, h, image::ExtendedColorType::Rgb8)
            .unwrap();
        let (pixels, dw, dh) = decode_jpeg_scaled(&jpeg, 80, 60).unwrap();
        assert_eq!((dw, dh, pixels.len()), (80, 60, 80 * 60 * 3));
        for fit in [Fit::Cover, Fit::Fill, Fit::Inside] {
            let small = resize(
                &jpeg,
                &Request {
                    format: Some(Format::Png),
                    ..req(Some(64), Some(40), fit)
                },
                &ctx,
            )
            .unwrap();
            let got = image::load_from_memory(&small.data).unwrap().to_rgb8();
            // Reference: full decode, then resize the same way.
            let full = image::load_from_memory(&jpeg).unwrap().to_rgb8();
            let p = plan(w, h, &req(Some(64), Some(40), fit));
            assert_eq!((got.width(), got.height()), (p.width, p.height));
            let mut dst = fr::images::Image::new(p.width, p.height, fr::PixelType::U8x3);
            let src =
                fr::images::Image::from_vec_u8(w, h, full.into_raw(), fr::PixelType::U8x3).unwrap();
            let mut options = fr::ResizeOptions::new();
            if let Some((l, t, cw, ch)) = p.crop {
                options = options.crop(l, t, cw, ch);
            }
            fr::Resizer::new().resize(&src, &mut dst, &options).unwrap();
            let diff: f64 = got
                .as_raw()
                .iter()
                .zip(dst.buffer())
                .map(|(a, b)| (*a as f64 - *b as f64).abs())
                .sum::<f64>()
                / got.as_raw().len() as f64;
            assert!(diff < 3.0, "{fit:?}: mean abs difference {diff}");
        }
    }

    #[test]
    fn refuses_bad_and_huge_images() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let src = png(300, 200);
        let err = |data: &[u8], r: Request| resize(data, &r, &ctx).err().unwrap().code();
        let any = req(Some(10), None, Fit::Cover);
        assert_eq!(err(b"hello", any), ErrorCode::CorruptInput);
        assert_eq!(err(&src[..src.len() / 2], any), ErrorCode::CorruptInput);
        let mut jpeg = Vec::new();
        let img = image::RgbImage::from_fn(64, 64, |x, y| image::Rgb([(x * y) as u8, x as u8, 7]));
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .write_image(img.as_raw(), 64, 64, image::ExtendedColorType::Rgb8)
            .unwrap();
        assert!(resize(&jpeg, &any, &ctx).is_ok());
        assert_eq!(err(&jpeg[..jpeg.len() - 10], any), ErrorCode::CorruptInput);
        let small_limit = Request {
            max_pixels: 1000,
            ..any
        };
        assert_eq!(err(&src, small_limit), ErrorCode::OutputTooLarge);
        let big_output = Request {
            max_pixels: 100_000,
            ..req(Some(1000), Some(1000), Fit::Fill)
        };
        assert_eq!(err(&src, big_output), ErrorCode::OutputTooLarge);
    }
}
