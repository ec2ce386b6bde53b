//! JS errors from [`ErrorCode`]s: the one place where the core's codes become napi errors.

use std::ffi::c_char;
use std::ptr;

use napi::sys;
use napi_derive::napi;

pub use corepool_core::error::ErrorCode;

/// [`ErrorCode`] as the status type of napi errors: napi-rs reports its own argument-conversion
/// failures through it, so it needs `From<napi::Status>` (which only this crate can give).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code(pub ErrorCode);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0.as_str()
    }
}

/// The Node-API statuses that mean a value of the wrong type: a bad argument. Any other
/// Node-API failure is not.
const TYPE_STATUSES: [napi::Status; 12] = {
    use napi::Status::*;
    [
        InvalidArg,
        ObjectExpected,
        StringExpected,
        NameExpected,
        FunctionExpected,
        NumberExpected,
        BooleanExpected,
        ArrayExpected,
        BigintExpected,
        DateExpected,
        ArrayBufferExpected,
        DetachableArraybufferExpected,
    ]
};

impl From<napi::Status> for Code {
    fn from(status: napi::Status) -> Self {
        Code(if TYPE_STATUSES.contains(&status) {
            ErrorCode::InvalidArg
        } else {
            ErrorCode::System
        })
    }
}

/// The names of the Node-API statuses that mean a bad argument (napi-rs reports them as an
/// error's `code` when a native argument has the wrong type): `lib/errors.js` gives such
/// errors ERR_INVALID_ARG, any other status ERR_SYSTEM, as [`Code::from`] does.
#[napi(js_name = "napiTypeStatuses")]
pub fn napi_type_statuses() -> Vec<String> {
    TYPE_STATUSES
        .iter()
        .map(|s| s.as_ref().to_string())
        .collect()
}

/// A system call that failed: the JS layer turns it into an `ERR_SYSTEM` error as Node reports
/// system errors (`errno`, `syscall`).
#[napi(object)]
pub struct SystemFailure {
    /// The positive OS error number.
    pub errno: i32,
    pub syscall: String,
}

/// A napi error whose JS `code` is one of ours.
pub type CodedError = napi::Error<Code>;

/// A failed Node-API call (making a promise, a reference, a threadsafe function) as one of our
/// errors: its code is the status's ([`Code::from`]), not `ERR_INVALID_ARG` whatever happened.
pub fn napi_failure(e: napi::Error) -> CodedError {
    napi::Error::new(Code::from(e.status), e.reason)
}

/// A napi error whose JS `code` is one of ours (thrown synchronously by constructors).
pub fn js_error(code: ErrorCode, message: impl Into<String>) -> CodedError {
    napi::Error::new(Code(code), message.into())
}

/// Builds a JS `Error` value with `code` set; `AbortError` gets its conventional `name`.
/// Must be called on the JS thread that owns `env`.
pub fn create_js_error(
    env: sys::napi_env,
    code: ErrorCode,
    message: &str,
) -> napi::Result<sys::napi_value> {
    let code_value = create_string(env, code.as_str())?;
    let message_value = create_string(env, message)?;
    let mut error = ptr::null_mut();
    // SAFETY: `env` is the live environment of the calling JS thread and both strings are valid
    // napi values created just above in the same scope.
    check(unsafe { sys::napi_create_error(env, code_value, message_value, &mut error) })?;
    if code == ErrorCode::Aborted {
        let name = create_string(env, "AbortError")?;
        // SAFETY: as above; `error` is the object just created, the key is a NUL-terminated literal.
        check(unsafe {
            sys::napi_set_named_property(env, error, c"name".as_ptr() as *const c_char, name)
        })?;
    }
    Ok(error)
}

fn create_string(env: sys::napi_env, text: &str) -> napi::Result<sys::napi_value> {
    let mut value = ptr::null_mut();
    // SAFETY: `text` is valid UTF-8 of the given length for the duration of the call.
    check(unsafe {
        sys::napi_create_string_utf8(
            env,
            text.as_ptr() as *const c_char,
            text.len() as isize,
            &mut value,
        )
    })?;
    Ok(value)
}

pub fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(
            napi::Status::from(status),
            "a Node-API call failed",
        ))
    }
}
