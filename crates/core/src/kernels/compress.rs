//! Compression kernels: gzip, deflate (zlib), deflate-raw, brotli and zstd, in node:zlib's
//! formats. Decoding is streamed into an output that never grows past `maxOutputLength`, so a
//! decompression bomb costs at most that much memory before it is refused.

use std::io::{Read, Write};

use crate::error::ErrorCode;
use crate::pool::scheduler::{TaskCtx, TaskError};

/// Input bytes fed to an encoder between two cancel checks.
const COMPRESS_CHUNK: usize = 256 * 1024;
/// Output bytes produced by a decoder between two cancel checks.
const DECOMPRESS_CHUNK: usize = 64 * 1024;

/// zstd's own default bound on a frame's window (128 MiB): larger windows are never accepted.
const ZSTD_WINDOW_LOG_LIMIT: u32 = 27;
/// The window bound never goes below 8 MiB, the largest window zstd's levels 1–19 use for a
/// stream of unknown size, so such streams always decode whatever `maxOutputLength` is.
const ZSTD_WINDOW_LOG_FLOOR: u32 = 23;
/// zstd's `ZSTD_getErrorName` text for `frameParameter_windowTooLarge`.
const ZSTD_WINDOW_TOO_LARGE: &str = "Frame requires too much memory for decoding";

/// The largest window (log2 of bytes) a zstd frame may declare when at most `max` bytes of
/// output are wanted: a frame whose content fits in `max` bytes never needs a window larger
/// than `max` rounded up to a power of two (zstd sizes windows to the content when it knows
/// it), and the decoder allocates its window before producing any output.
pub fn zstd_window_log_max(max: usize) -> u32 {
    let log = usize::BITS - max.saturating_sub(1).leading_zeros();
    log.clamp(ZSTD_WINDOW_LOG_FLOOR, ZSTD_WINDOW_LOG_LIMIT)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Gzip,
    Deflate,
    DeflateRaw,
    Brotli,
    Zstd,
}

impl Format {
    pub const NAMES: &'static str = "gzip, deflate, deflate-raw, brotli, zstd";

    pub fn parse(name: &str) -> Result<Self, String> {
        Ok(match name {
            "gzip" => Format::Gzip,
            "deflate" => Format::Deflate,
            "deflate-raw" => Format::DeflateRaw,
            "brotli" => Format::Brotli,
            "zstd" => Format::Zstd,
            _ => {
                return Err(format!(
                    "format must be one of {}, got {name:?}",
                    Self::NAMES
                ))
            }
        })
    }

    /// `(min, max, default)` compression levels; the defaults are node:zlib's.
    pub fn levels(self) -> (i32, i32, i32) {
        match self {
            Format::Gzip | Format::Deflate | Format::DeflateRaw => (-1, 9, 6),
            Format::Brotli => (0, 11, 11),
            Format::Zstd => (
                zstd::zstd_safe::min_c_level(),
                zstd::zstd_safe::max_c_level(),
                3,
            ),
        }
    }

    /// The level to use, or a message naming the accepted range.
    pub fn check_level(self, level: Option<f64>) -> Result<i32, String> {
        let (min, max, default) = self.levels();
        match level {
            None => Ok(default),
            Some(l) if l.fract() == 0.0 && l >= min as f64 && l <= max as f64 => Ok(l as i32),
            Some(l) => Err(format!(
                "options.level must be an integer from {min} to {max} for this format, got {l}"
            )),
        }
    }
}

fn feed<W: Write>(mut w: W, data: &[u8], ctx: &TaskCtx) -> Result<W, TaskError> {
    for chunk in data.chunks(COMPRESS_CHUNK) {
        ctx.check()?;
        w.write_all(chunk).map_err(internal)?;
    }
    ctx.check()?;
    Ok(w)
}

fn internal(e: std::io::Error) -> TaskError {
    // Writing into a Vec only fails inside the encoder itself.
    TaskError::failed(ErrorCode::InvalidArg, format!("compression failed: {e}"))
}

/// Compresses `data`; `level` must come from [`Format::check_level`].
pub fn compress(
    format: Format,
    level: i32,
    data: &[u8],
    ctx: &TaskCtx,
) -> Result<Vec<u8>, TaskError> {
    let out = Vec::with_capacity(data.len() / 2 + 64);
    let zlib_level = || {
        if level < 0 {
            flate2::Compression::default()
        } else {
            flate2::Compression::new(level as u32)
        }
    };
    match format {
        Format::Gzip => feed(flate2::write::GzEncoder::new(out, zlib_level()), data, ctx)?
            .finish()
            .map_err(internal),
        Format::Deflate => feed(
            flate2::write::ZlibEncoder::new(out, zlib_level()),
            data,
            ctx,
        )?
        .finish()
        .map_err(internal),
        Format::DeflateRaw => feed(
            flate2::write::DeflateEncoder::new(out, zlib_level()),
            data,
            ctx,
        )?
        .finish()
        .map_err(internal),
        Format::Brotli => {
            // lgwin 22 is node:zlib's default window (BROTLI_DEFAULT_WINDOW).
            let w = brotli::CompressorWriter::new(out, 64 * 1024, level as u32, 22);
            Ok(feed(w, data, ctx)?.into_inner())
        }
        Format::Zstd => {
            let mut encoder = zstd::stream::write::Encoder::new(out, level).map_err(internal)?;
            // Record the content size in the frame header (decoders may use it to size their
            // output); the encoder then also checks that exactly that many bytes arrive.
            encoder
                .set_pledged_src_size(Some(data.len() as u64))
                .map_err(internal)?;
            feed(encoder, data, ctx)?.finish().map_err(internal)
        }
    }
}

fn corrupt(format: Format, detail: impl std::fmt::Display) -> TaskError {
    TaskError::failed(
        ErrorCode::CorruptInput,
        format!("invalid or truncated {} data: {detail}", format.name()),
    )
}

/// Reads `reader` to the end into a buffer never larger than `max` bytes.
fn read_limited(
    reader: &mut impl Read,
    format: Format,
    max: usize,
    size_hint: usize,
    ctx: &TaskCtx,
) -> Result<Vec<u8>, TaskError> {
    let mut out: Vec<u8> = Vec::with_capacity(size_hint.min(max));
    let mut chunk = vec![0u8; DECOMPRESS_CHUNK];
    loop {
        ctx.check()?;
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) if format == Format::Zstd && e.to_string() == ZSTD_WINDOW_TOO_LARGE => {
                return Err(TaskError::failed(
                    ErrorCode::OutputTooLarge,
                    format!(
                        "the zstd frame's window is larger than maxOutputLength ({max} bytes) \
                         allows (at most {} bytes)",
                        1u64 << zstd_window_log_max(max)
                    ),
                ));
            }
            Err(e) => return Err(corrupt(format, e)),
        };
        if n > max - out.len() {
            return Err(TaskError::failed(
                ErrorCode::OutputTooLarge,
                format!("the decompressed data is larger than maxOutputLength ({max} bytes)"),
            ));
        }
        if out.capacity() - out.len() < n {
            // Grow geometrically but never past the limit.
            let want = (out.capacity() * 2).max(out.len() + n).min(max);
            out.reserve_exact(want - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// Bytes after the end of the compressed stream mean the input is not what the caller thinks
/// it is (random bytes can start with a short valid stream): refuse rather than drop them.
fn no_trailing_bytes(format: Format, rest: &[u8]) -> Result<(), TaskError> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(corrupt(
            format,
            format!("{} bytes follow the end of the stream", rest.len()),
        ))
    }
}

impl Format {
    pub fn name(self) -> &'static str {
        match self {
            Format::Gzip => "gzip",
            Format::Deflate => "deflate",
            Format::DeflateRaw => "deflate-raw",
            Format::Brotli => "brotli",
            Format::Zstd => "zstd",
        }
    }
}

/// Decompresses `data`, failing with `ERR_OUTPUT_TOO_LARGE` past `max` bytes of output and
/// `ERR_CORRUPT_INPUT` for malformed or truncated input.
pub fn decompress(
    format: Format,
    data: &[u8],
    max: usize,
    ctx: &TaskCtx,
) -> Result<Vec<u8>, TaskError> {
    let hint = data.len().saturating_mul(4);
    // The `bufread` decoders consume exactly the stream, leaving what follows in the slice.
    macro_rules! flate {
        ($decoder:path) => {{
            let mut decoder = $decoder(data);
            let out = read_limited(&mut decoder, format, max, hint, ctx)?;
            no_trailing_bytes(format, decoder.get_ref())?;
            out
        }};
    }
    Ok(match format {
        // Concatenated gzip members decode as one stream, as with zlib.gunzip.
        Format::Gzip => flate!(flate2::bufread::MultiGzDecoder::new),
        Format::Deflate => flate!(flate2::bufread::ZlibDecoder::new),
        Format::DeflateRaw => flate!(flate2::bufread::DeflateDecoder::new),
        Format::Brotli => {
            let mut decoder = brotli::Decompressor::new(data, 64 * 1024);
            let out = read_limited(&mut decoder, format, max, hint, ctx)?;
            // Past the end of the stream, a further read fails if input is left in the
            // decoder's buffer; what it has not read yet is still in the slice.
            if decoder.read(&mut [0u8; 1]).is_err() {
                return Err(corrupt(format, "bytes follow the end of the stream"));
            }
            no_trailing_bytes(format, decoder.get_ref())?;
            out
        }
        // Concatenated frames decode as one stream (as zstd does); anything else that follows
        // fails as a frame of its own. The window is bounded by the output limit, so a frame
        // declaring a huge window costs no memory (see `zstd_window_log_max`).
        Format::Zstd => {
            let mut decoder =
                zstd::stream::read::Decoder::with_buffer(data).map_err(|e| corrupt(format, e))?;
            decoder
                .window_log_max(zstd_window_log_max(max))
                .map_err(|e| corrupt(format, e))?;
            let out = read_limited(&mut decoder, format, max, hint, ctx)?;
            no_trailing_bytes(format, decoder.get_ref())?;
            out
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Format; 5] = [
        Format::Gzip,
        Format::Deflate,
        Format::DeflateRaw,
        Format::Brotli,
        Format::Zstd,
    ];

    fn sample() -> Vec<u8> {
        (0..20_000u32)
            .flat_map(|i| format!("line {i} {}\n", i % 97).into_bytes())
            .collect()
    }

    #[test]
    fn round_trips_every_format_and_level_bound() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let data = sample();
        for format in ALL {
            let (min, max, default) = format.levels();
            for level in [min.max(-1), default, max.min(9)] {
                let packed = compress(format, level, &data, &ctx).unwrap();
                assert!(packed.len() < data.len(), "{format:?} {level}");
                let back = decompress(format, &packed, usize::MAX, &ctx).unwrap();
                assert!(back == data, "{format:?} {level}");
            }
        }
    }

    #[test]
    fn empty_input_round_trips() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        for format in ALL {
            let packed = compress(format, format.levels().2, b"", &ctx).unwrap();
            assert_eq!(decompress(format, &packed, 10, &ctx).unwrap(), b"");
        }
    }

    #[test]
    fn bomb_is_refused_at_the_limit() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let zeros = vec![0u8; 20 << 20];
        for format in ALL {
            let packed = compress(format, 1.min(format.levels().1), &zeros, &ctx).unwrap();
            let err = decompress(format, &packed, 1 << 20, &ctx).unwrap_err();
            assert_eq!(err.code(), ErrorCode::OutputTooLarge, "{format:?}");
            // Exactly at the limit is fine.
            assert_eq!(
                decompress(format, &packed, 20 << 20, &ctx).unwrap().len(),
                20 << 20
            );
        }
    }

    #[test]
    fn corrupt_and_truncated_input() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let data = sample();
        for format in ALL {
            let packed = compress(format, format.levels().2, &data, &ctx).unwrap();
            let truncated = &packed[..packed.len() / 2];
            let err = decompress(format, truncated, usize::MAX, &ctx).unwrap_err();
            assert_eq!(err.code(), ErrorCode::CorruptInput, "{format:?} truncated");
            let garbage = b"this is not compressed data at all, not even close".repeat(4);
            let err = decompress(format, &garbage, usize::MAX, &ctx).unwrap_err();
            assert_eq!(err.code(), ErrorCode::CorruptInput, "{format:?} garbage");
        }
    }

    #[test]
    fn bytes_after_the_stream_are_refused() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        let data = sample();
        for format in ALL {
            let packed = compress(format, 1, &data, &ctx).unwrap();
            for tail in [&[0u8][..], b"xyz", &[0x55; 100_000]] {
                let input = [&packed[..], tail].concat();
                let err = decompress(format, &input, usize::MAX, &ctx).unwrap_err();
                assert_eq!(
                    err.code(),
                    ErrorCode::CorruptInput,
                    "{format:?} + {}",
                    tail.len()
                );
            }
        }
        // Concatenated gzip members and zstd frames are one stream.
        for format in [Format::Gzip, Format::Zstd] {
            let packed = compress(format, 1, &data, &ctx).unwrap();
            let twice = [&packed[..], &packed[..]].concat();
            let out = decompress(format, &twice, usize::MAX, &ctx).unwrap();
            assert_eq!(out, [&data[..], &data[..]].concat(), "{format:?}");
        }
    }

    /// A zstd frame declaring a `2^log`-byte window (no content size) whose one raw block is
    /// `content`.
    fn zstd_frame_with_window(log: u8, content: &[u8]) -> Vec<u8> {
        let mut frame = vec![0x28, 0xB5, 0x2F, 0xFD]; // magic
        frame.push(0x00); // descriptor: no content size, not single-segment, no checksum
        frame.push((log - 10) << 3); // window descriptor: exponent, mantissa 0
        let header = (content.len() as u32) << 3 | 1; // last block, raw
        frame.extend_from_slice(&header.to_le_bytes()[..3]);
        frame.extend_from_slice(content);
        frame
    }

    #[test]
    fn zstd_window_is_bounded_by_the_output_limit() {
        let ctx = crate::pool::scheduler::tests_support::ctx();
        assert_eq!(zstd_window_log_max(1), 23);
        assert_eq!(zstd_window_log_max(8 << 20), 23);
        assert_eq!(zstd_window_log_max((8 << 20) + 1), 24);
        assert_eq!(zstd_window_log_max(64 << 20), 26);
        assert_eq!(zstd_window_log_max(usize::MAX), 27);
        // A 128 MiB window for one byte of content: refused before the window is allocated
        // unless the limit allows that much output.
        let frame = zstd_frame_with_window(27, b"a");
        let err = decompress(Format::Zstd, &frame, 1 << 20, &ctx).unwrap_err();
        assert_eq!(err.code(), ErrorCode::OutputTooLarge, "{}", err.message());
        assert!(err.message().contains("window"), "{}", err.message());
        assert_eq!(
            decompress(Format::Zstd, &frame, 128 << 20, &ctx).unwrap(),
            b"a"
        );
        // Windows up to the floor decode at any limit.
        let small = zstd_frame_with_window(23, b"abc");
        assert_eq!(decompress(Format::Zstd, &small, 3, &ctx).unwrap(), b"abc");
        // zstd's own frames of content up to the limit always fit the window.
        let data = vec![7u8; (9 << 20) + 5];
        let packed = compress(Format::Zstd, 3, &data, &ctx).unwrap();
        assert_eq!(
            decompress(Format::Zstd, &packed, data.len(), &ctx)
                .unwrap()
                .len(),
            data.len()
        );
    }

    #[test]
    fn levels_are_checked() {
        assert_eq!(Format::Gzip.check_level(None), Ok(6));
        assert!(Format::Gzip.check_level(Some(10.0)).is_err());
        assert!(Format::Brotli.check_level(Some(1.5)).is_err());
        assert_eq!(Format::Zstd.check_level(Some(19.0)), Ok(19));
        assert!(Format::parse("lz4").is_err());
    }
}
