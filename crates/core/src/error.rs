//! The one list of error codes users see as `err.code`, and their conversion to JS errors.
//!
//! The core modules (scheduler, kernels, counters, supervisor) only use [`ErrorCode`] and plain
//! strings; the addon crate converts them to JS errors in one place.

/// Stable error codes (see the README's API section). Never rename a variant's string.
///
/// This is the one list: each variant's doc comment is its "when" text, and
/// `node scripts/error-codes.js` generates `lib/error-codes.js`, `types/error-codes.d.ts` and the
/// README's table from it (CI runs it with `--check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// wrong type / out-of-range option or input (the message names the argument)
    InvalidArg,
    /// `maxQueue` reached
    QueueFull,
    /// the task's `AbortSignal` fired (`err.name === 'AbortError'`, `err.cause` = reason)
    Aborted,
    /// the task's `timeout` elapsed
    TaskTimeout,
    /// submit after `close()`/`destroy()`, or task dropped by `destroy()`
    PoolClosed,
    /// a native job panicked; the pool stays healthy
    TaskPanicked,
    /// a JS worker died while running the task (it is replaced)
    WorkerCrashed,
    /// shared-memory region cannot be created/opened/validated
    Shm,
    /// a child could not be started (`errno`, `syscall`, `path` as in Node)
    Spawn,
    /// a child exceeded its `timeout` and was killed
    ChildTimeout,
    /// `exec` saw a non-zero exit or a signal (`exitCode`, `signal`, `stdout`, `stderr`)
    ChildExit,
    /// a Supervisor exceeded its restart intensity
    SupervisorGaveUp,
    /// compressed data, image or other encoded input is malformed
    CorruptInput,
    /// a result would exceed its limit
    OutputTooLarge,
    /// `send()` on a child's IPC channel that is closed (the child exited or disconnected)
    IpcChannelClosed,
    /// a system call failed for a reason other than the arguments (`errno`, `syscall` as in
    /// Node): a port in use, no more threads, ...
    System,
    /// the object cannot do that in its current state: a Supervisor that is stopping, stopped or
    /// gave up, `start()` called twice, a Hasher used after `digest()`
    InvalidState,
    /// `cluster()` found another corepool cluster running with the same port or name (`err.pid`,
    /// `err.port`, `err.clusterName` describe it)
    ClusterRunning,
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
            ErrorCode::System => "ERR_SYSTEM",
            ErrorCode::InvalidState => "ERR_INVALID_STATE",
            ErrorCode::ClusterRunning => "ERR_CLUSTER_RUNNING",
        }
    }
}

impl AsRef<str> for ErrorCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}
