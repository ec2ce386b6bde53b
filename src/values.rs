//! JS values made by hand for native functions to return: a value as-is, `Buffer`s and
//! arrays built through Node-API.

use std::ptr;

use napi::bindgen_prelude::{Buffer, ToNapiValue};
use napi::sys;

use crate::error::check;

/// Small results are copied into a fresh `Buffer`; large ones become an external `Buffer` over
/// the `Vec`'s memory (no copy on the JS thread). JS thread only.
pub fn buffer_value(env: sys::napi_env, bytes: Vec<u8>) -> napi::Result<sys::napi_value> {
    const COPY_BELOW: usize = 64 * 1024;
    if bytes.len() >= COPY_BELOW {
        // SAFETY: `env` is the live env of the calling JS thread.
        return unsafe { Buffer::to_napi_value(env, Buffer::from(bytes)) };
    }
    let mut value = ptr::null_mut();
    // SAFETY: JS thread; the source pointer is valid for `bytes.len()` bytes during the call and
    // the out-pointer for the data is allowed to be null.
    check(unsafe {
        sys::napi_create_buffer_copy(
            env,
            bytes.len(),
            bytes.as_ptr().cast(),
            ptr::null_mut(),
            &mut value,
        )
    })?;
    Ok(value)
}

/// A JS value returned as-is from a native function.
pub struct RawValue(pub sys::napi_value);

impl ToNapiValue for RawValue {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}

/// A JS array of `elements`. JS thread only.
pub fn array_value(
    env: sys::napi_env,
    elements: &[sys::napi_value],
) -> napi::Result<sys::napi_value> {
    let mut array = ptr::null_mut();
    // SAFETY: JS thread of `env`; `array` and the elements are live handles of this scope.
    unsafe {
        check(sys::napi_create_array_with_length(
            env,
            elements.len(),
            &mut array,
        ))?;
        for (i, element) in elements.iter().enumerate() {
            check(sys::napi_set_element(env, array, i as u32, *element))?;
        }
    }
    Ok(array)
}
