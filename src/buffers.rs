//! Bytes that cross from JS into native tasks: always copied on submit (see
//! `corepool_core::buffers` for the recycled copies).

use napi::bindgen_prelude::{Either, Uint8ArraySlice};

pub use corepool_core::buffers::Input;

/// Bytes from JS: a string (UTF-8) or a `Uint8Array`/`Buffer`, always copied on submit so the
/// caller may reuse, mutate or transfer its memory while the task runs.
pub type JsBytes<'a> = Either<String, Uint8ArraySlice<'a>>;

/// A task's private copy of `bytes`.
pub fn to_vec(bytes: JsBytes<'_>) -> Input {
    match &bytes {
        Either::A(s) => Input::copy_of(s.as_bytes()),
        Either::B(slice) => Input::copy_of(slice),
    }
}
