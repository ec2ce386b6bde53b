//! The one list of error codes users see as `err.code`, and their conversion to JS errors.
//!
//! The core modules (scheduler, kernels, counters, supervisor) only use [`ErrorCode`] and plain
//! strings; the addon crate converts them to JS errors in one place.

/// Stable error codes (see the README's API section). Never rename a variant's string.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidArg,
    QueueFull,
    Aborted,
    TaskTimeout,
    PoolClosed,
    TaskPanicked,
    WorkerCrashed,
    Shm,
    Spawn,
    ChildTimeout,
    ChildExit,
    SupervisorGaveUp,
    CorruptInput,
    OutputTooLarge,
    /// `send()` on a child's IPC channel that is closed (the child exited or disconnected).
    IpcChannelClosed,
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
            ErrorCode::IpcChannelClosed => "ERR_IPC_CHANNEL_CLOSED",
        }
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
