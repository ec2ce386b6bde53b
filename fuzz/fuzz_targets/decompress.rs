//! `decompress` of every format on arbitrary bytes: it must return (an output within the limit,
//! or ERR_CORRUPT_INPUT / ERR_OUTPUT_TOO_LARGE), never panic, hang or use unbounded memory.
//! The first byte picks the format.
#![no_main]

use corepool_core::error::ErrorCode;
use corepool_core::kernels::compress::{decompress, Format};
use corepool_core::pool::scheduler::tests_support::ctx;
use libfuzzer_sys::fuzz_target;

const FORMATS: [Format; 5] = [
    Format::Gzip,
    Format::Deflate,
    Format::DeflateRaw,
    Format::Brotli,
    Format::Zstd,
];
/// Small enough that a bomb hits it quickly, large enough for real streams.
const MAX_OUTPUT: usize = 4 << 20;

fuzz_target!(|input: &[u8]| {
    let Some((&selector, data)) = input.split_first() else {
        return;
    };
    let format = FORMATS[selector as usize % FORMATS.len()];
    match decompress(format, data, MAX_OUTPUT, &ctx()) {
        Ok(out) => assert!(out.len() <= MAX_OUTPUT),
        Err(e) => assert!(
            matches!(
                e.code(),
                ErrorCode::CorruptInput | ErrorCode::OutputTooLarge
            ),
            "{format:?}: unexpected {:?}: {}",
            e.code(),
            e.message()
        ),
    }
});
