//! The one list of error codes users see as `err.code`, and their conversion to JS errors.
//!
//! The core modules (scheduler, kernels, counters, supervisor) only use [`ErrorCode`] and plain
//! strings; the napi conversion lives at the bottom of this file so it is written once.

use std::ffi::c_char;
use std::ptr;

use napi::sys;

/// Stable error codes (see the README's API section). Never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArg,
    QueueFull,
    Aborted,
    TaskTimeout,
    PoolClosed,
    TaskPanicked,
    // Used by the JS-task, counters and children capabilities.
    #[allow(dead_code)]
    WorkerCrashed,
    #[allow(dead_code)]
    Shm,
    #[allow(dead_code)]
    Spawn,
    #[allow(dead_code)]
    ChildTimeout,
    #[allow(dead_code)]
    ChildExit,
    #[allow(dead_code)]
    SupervisorGaveUp,
    #[allow(dead_code)]
    CorruptInput,
    #[allow(dead_code)]
    OutputTooLarge,
}

impl ErrorCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArg => "ERR_INVALID_ARG",
            ErrorCode::QueueFull => "ERR_QUEUE_FULL",
            ErrorCode::Aborted => "ERR_ABORTED",
            ErrorCode::TaskTimeout => "ERR_TASK_TIMEOUT",
            ErrorCode::PoolClosed => "ERR_POOL_CLOSED",
            ErrorCode::TaskPanicked => "ERR_TASK_PANICKED",
            ErrorCode::WorkerCrashed => "ERR_WORKER_CRASHED",
            ErrorCode::Shm => "ERR_SHM",
            ErrorCode::Spawn => "ERR_SPAWN",
            ErrorCode::ChildTimeout => "ERR_CHILD_TIMEOUT",
            ErrorCode::ChildExit => "ERR_CHILD_EXIT",
            ErrorCode::SupervisorGaveUp => "ERR_SUPERVISOR_GAVE_UP",
            ErrorCode::CorruptInput => "ERR_CORRUPT_INPUT",
            ErrorCode::OutputTooLarge => "ERR_OUTPUT_TOO_LARGE",
        }
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl From<napi::Status> for ErrorCode {
    // napi-rs needs this to report its own conversion failures through our status type; any
    // such failure is a wrong argument from the caller's point of view.
    fn from(_: napi::Status) -> Self {
        ErrorCode::InvalidArg
    }
}

/// A napi error whose JS `code` is one of ours (thrown synchronously by constructors).
pub fn js_error(code: ErrorCode, message: impl Into<String>) -> napi::Error<ErrorCode> {
    napi::Error::new(code, message.into())
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
