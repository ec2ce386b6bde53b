//! The thin napi layer over `child.rs`: option conversion, pipe creation, event delivery.
//!
//! Pipes are created synchronously on the JS thread (a few microseconds), so `lib/children.js`
//! can wrap the parent ends in Node streams at once; the spawn itself runs on the spawner thread
//! and its events come back through a weak threadsafe function (the JS side decides what keeps
//! Node alive).

use std::os::fd::{IntoRawFd, OwnedFd};
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;

use super::child::{self, ChildHandle, ChildSink, Exit, SpawnError, SpawnSpec, Stdio};
use super::sys;
use crate::error::{napi_failure, CodedError, SystemFailure};

/// Options of `spawnChild`, already validated and normalised by `lib/children.js`.
/// What one of a child's stdin, stdout and stderr is.
#[napi(string_enum)]
pub enum StdioKind {
    /// A pipe to this process.
    #[napi(value = "pipe")]
    Pipe,
    /// This process's own descriptor of the same number.
    #[napi(value = "inherit")]
    Inherit,
    /// /dev/null.
    #[napi(value = "ignore")]
    Ignore,
    /// This process's descriptor `fd`.
    #[napi(value = "fd")]
    Fd,
    /// The file at `path`, truncated (created if missing).
    #[napi(value = "file")]
    File,
    /// The file at `path`, appended to (created if missing).
    #[napi(value = "append")]
    Append,
}

/// One of a child's stdin, stdout and stderr.
#[napi(object)]
pub struct NativeStdio {
    pub kind: StdioKind,
    /// The descriptor, for `fd`.
    pub fd: Option<i32>,
    /// The path, for `file` and `append`.
    pub path: Option<String>,
}

#[napi(object)]
pub struct NativeSpawnOptions {
    /// Program name or path.
    pub file: String,
    /// argv including argv[0].
    pub args: Vec<String>,
    /// The complete environment, `KEY=value` entries; absent: this process's environment.
    pub env: Option<Vec<String>>,
    pub cwd: Option<String>,
    /// stdin, stdout and stderr.
    pub stdio: (NativeStdio, NativeStdio, NativeStdio),
    /// Adds Node's IPC channel (a Unix socket pair) as fd 3.
    pub ipc: bool,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// A new session, no death signal, not killed with us: the child may outlive this process.
    pub detached: Option<bool>,
}

type EventArgs = FnArgs<(String, Option<f64>, Option<f64>, f64, String)>;
type EventFn = ThreadsafeFunction<Event, (), EventArgs, Status, false, true>;

enum Event {
    Spawned(i32),
    Failed(SpawnError),
    Exited(Exit),
}

struct JsSink(EventFn);

impl ChildSink for JsSink {
    fn spawned(&self, pid: i32) {
        self.0
            .call(Event::Spawned(pid), ThreadsafeFunctionCallMode::NonBlocking);
    }
    fn failed(&self, error: SpawnError) {
        self.0.call(
            Event::Failed(error),
            ThreadsafeFunctionCallMode::NonBlocking,
        );
    }
    fn exited(&self, exit: Exit) {
        self.0
            .call(Event::Exited(exit), ThreadsafeFunctionCallMode::NonBlocking);
    }
}

/// A child as seen from JS: its parent-side descriptors and a way to signal it.
#[napi]
pub struct NativeChild {
    handle: Arc<ChildHandle>,
    fds: Vec<i32>,
}

#[napi]
impl NativeChild {
    /// Parent-side descriptors `[stdin, stdout, stderr, ipc]`, null where there is none. The JS
    /// side owns them (wraps them in sockets).
    #[napi(getter)]
    pub fn fds(&self) -> Vec<Option<i32>> {
        self.fds.iter().map(|&fd| (fd >= 0).then_some(fd)).collect()
    }

    /// The pid once spawned.
    #[napi(getter)]
    pub fn pid(&self) -> Option<i32> {
        self.handle.pid()
    }

    /// Sends a signal to the child (or to its whole process tree). Returns whether the child was
    /// still running.
    #[napi]
    /// A failure of the system call comes back as a [`SystemFailure`] (the JS layer throws it as
    /// `ERR_SYSTEM`).
    pub fn kill(&self, signal: i32, tree: bool) -> Either<bool, SystemFailure> {
        match self.handle.kill(signal, tree) {
            Ok(sent) => Either::A(sent),
            Err(e) => Either::B(SystemFailure {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
                syscall: "kill".to_string(),
            }),
        }
    }
}

/// Starts children through the subreaper helper binary at `path` (called once at load time when
/// the binary is there): every descendant stays below it and dies with this process.
#[napi]
pub fn configure_subreaper(path: String) {
    super::helper::configure(&path);
}

fn parse_stdio(
    index: usize,
    spec: &NativeStdio,
    parent_fds: &mut [i32; 4],
) -> std::io::Result<Stdio> {
    let missing = || std::io::Error::from_raw_os_error(libc::EINVAL);
    Ok(match spec.kind {
        StdioKind::Pipe => {
            let (r, w) = sys::pipe()?;
            let (parent, child): (OwnedFd, OwnedFd) = if index == 0 { (w, r) } else { (r, w) };
            parent_fds[index] = parent.into_raw_fd();
            Stdio::Fd(child)
        }
        StdioKind::Inherit => Stdio::Inherit,
        StdioKind::Ignore => Stdio::Ignore,
        StdioKind::Fd => Stdio::Raw(spec.fd.ok_or_else(missing)?),
        StdioKind::File | StdioKind::Append => Stdio::File {
            path: spec.path.clone().ok_or_else(missing)?,
            append: matches!(spec.kind, StdioKind::Append),
        },
    })
}

/// Starts a child asynchronously. `onEvent(kind, a, b, c, text)` is called with
/// `('spawn', pid)`, `('error', errno, null, 0, syscall + '\n' + path + '\n' + message)` or
/// `('exit', code or null, signal number or null, durationMs)`; nothing follows 'error' or 'exit'.
/// Failures to create the pipes are reported through 'error' too, never thrown.
#[napi]
pub fn spawn_child(
    options: NativeSpawnOptions,
    #[napi(
        ts_arg_type = "(kind: 'spawn' | 'error' | 'exit', a: number | null, b: number | null, c: number, text: string) => void"
    )]
    on_event: Function<EventArgs, ()>,
) -> std::result::Result<NativeChild, CodedError> {
    let tsfn: EventFn = on_event
        .build_threadsafe_function::<Event>()
        .weak::<true>()
        .callee_handled::<false>()
        .build_callback(|ctx| {
            Ok(FnArgs::from(match ctx.value {
                Event::Spawned(pid) => (
                    "spawn".to_string(),
                    Some(pid as f64),
                    None,
                    0.0,
                    String::new(),
                ),
                Event::Failed(e) => (
                    "error".to_string(),
                    Some(e.errno as f64),
                    None,
                    0.0,
                    format!("{}\n{}\n{}", e.syscall, e.path, e.message),
                ),
                Event::Exited(x) => (
                    "exit".to_string(),
                    x.status.code.map(f64::from),
                    x.status.signal.map(f64::from),
                    x.duration_ms,
                    String::new(),
                ),
            }))
        })
        .map_err(napi_failure)?;
    let sink: Arc<dyn ChildSink> = Arc::new(JsSink(tsfn));
    let mut parent_fds = [-1i32; 4];
    match setup_fds(&options, &mut parent_fds) {
        Ok((stdio, extra)) => {
            let spec = SpawnSpec {
                file: options.file,
                args: options.args,
                env: options.env,
                cwd: options.cwd,
                stdio,
                extra,
                uid: options.uid,
                gid: options.gid,
                detached: options.detached.unwrap_or(false),
            };
            Ok(NativeChild {
                handle: child::spawn(spec, sink),
                fds: parent_fds.to_vec(),
            })
        }
        Err((e, syscall)) => {
            for &fd in parent_fds.iter().filter(|&&fd| fd >= 0) {
                // SAFETY: these descriptors were created by `setup_fds` and handed to nobody.
                unsafe { libc::close(fd) };
            }
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            sink.failed(SpawnError {
                errno,
                message: String::new(),
                syscall: syscall.to_string(),
                path: options.file,
            });
            Ok(NativeChild {
                handle: ChildHandle::failed(),
                fds: vec![-1; 4],
            })
        }
    }
}

type Fds = ([Stdio; 3], Vec<(i32, OwnedFd)>);

/// Creates the pipes (and the IPC socket pair); parent ends go to `parent_fds`.
fn setup_fds(
    options: &NativeSpawnOptions,
    parent_fds: &mut [i32; 4],
) -> std::result::Result<Fds, (std::io::Error, &'static str)> {
    let (stdin, stdout, stderr) = &options.stdio;
    let mut parse = |i, s| parse_stdio(i, s, parent_fds).map_err(|e| (e, "pipe"));
    let stdio = [parse(0, stdin)?, parse(1, stdout)?, parse(2, stderr)?];
    let mut extra = Vec::new();
    if options.ipc {
        let (parent, child) = sys::socketpair().map_err(|e| (e, "socketpair"))?;
        parent_fds[3] = parent.into_raw_fd();
        extra.push((3, child));
    }
    Ok((stdio, extra))
}
