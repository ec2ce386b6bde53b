//! Spawning children from one long-lived thread, and killing their process trees.
//!
//! Why one thread: `PR_SET_PDEATHSIG` fires when the *thread* that created the child exits, so
//! every child is cloned from a thread that lives as long as the process. The thread blocks all
//! signals, so nothing runs in a freshly cloned child before it resets its signal state.
//!
//! Each child gets its own process group (so the whole tree can be signalled at once), the
//! death signal SIGKILL (so it dies with us), and is registered with the watchdog (so its group,
//! grandchildren included, is killed when we die). Its exit is observed through a pidfd by the
//! reaper thread; no SIGCHLD handler is installed (libuv owns SIGCHLD and only reaps its own pids).

use crate::sync::lock;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::mpsc::{channel, Sender};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::helper;
use super::reaper;
use super::sys::{self, Stage, WaitStatus};
use super::watchdog;

/// What the child gets as stdin/stdout/stderr (or an extra descriptor).
#[derive(Debug)]
pub enum Stdio {
    /// The child end of a pipe created by the caller.
    Fd(OwnedFd),
    /// The parent's own descriptor of the same number.
    Inherit,
    /// /dev/null.
    Ignore,
    /// A descriptor number of the parent, shared with the child (not closed here).
    Raw(RawFd),
    /// A file opened for the child: reading for stdin, writing (truncate or append) otherwise.
    File { path: String, append: bool },
}

/// Everything needed to start one child.
#[derive(Debug)]
pub struct SpawnSpec {
    /// The program: a path when it contains '/', otherwise looked up in PATH.
    pub file: String,
    /// argv, including argv[0].
    pub args: Vec<String>,
    /// The complete environment, `KEY=value`; `None`: this process's environment.
    pub env: Option<Vec<String>>,
    pub cwd: Option<String>,
    pub stdio: [Stdio; 3],
    /// Extra descriptors: `(target fd number, child end)` — e.g. Node's IPC channel on fd 3.
    pub extra: Vec<(RawFd, OwnedFd)>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// Own session, no death signal, no watchdog: the child may outlive us.
    pub detached: bool,
}

/// Why a child could not be started.
#[derive(Debug, Clone)]
pub struct SpawnError {
    pub errno: i32,
    /// Node-style: `spawn <file>`, `chdir`, `open`, ...
    pub syscall: String,
    /// The path involved (program, cwd or stdio file).
    pub path: String,
    /// What the errno does not say (empty when it says it all: JS names the errno, see
    /// `errnoName` in `lib/errors.js`).
    pub message: String,
}

/// How a child ended.
#[derive(Debug, Clone, Copy)]
pub struct Exit {
    pub status: WaitStatus,
    pub duration_ms: f64,
}

/// Receives a child's life events, on the spawner and reaper threads.
pub trait ChildSink: Send + Sync + 'static {
    fn spawned(&self, pid: i32);
    fn failed(&self, error: SpawnError);
    fn exited(&self, exit: Exit);
}

enum State {
    /// Queued on the spawner thread; a kill requested now is applied right after the spawn.
    Pending {
        kill: Option<(i32, bool)>,
    },
    Running {
        pid: i32,
        pidfd: Option<OwnedFd>,
        /// Started by the subreaper helper (which reaps it and kills its tree).
        helper: bool,
    },
    Exited {
        pid: i32,
    },
    Failed,
}

/// A started (or starting) child. Dropping it does not kill the child.
pub struct ChildHandle {
    state: Mutex<State>,
}

impl ChildHandle {
    /// A handle for a child that could not even be prepared (its failure is reported elsewhere).
    pub fn failed() -> Arc<ChildHandle> {
        Arc::new(ChildHandle {
            state: Mutex::new(State::Failed),
        })
    }

    pub fn pid(&self) -> Option<i32> {
        match *lock(&self.state) {
            State::Running { pid, .. } | State::Exited { pid } => Some(pid),
            _ => None,
        }
    }

    /// Sends `sig` to the child, or to its whole tree (its process group plus every descendant
    /// found in /proc). Returns whether the child itself was still running.
    pub fn kill(&self, sig: i32, tree: bool) -> io::Result<bool> {
        let mut state = lock(&self.state);
        match &mut *state {
            State::Pending { kill } => {
                *kill = Some((sig, tree));
                Ok(true)
            }
            State::Running {
                pid,
                helper: true,
                pidfd,
            } => {
                if tree {
                    return helper::kill(*pid, sig, true);
                }
                match pidfd {
                    Some(fd) => match sys::pidfd_send_signal(fd, sig) {
                        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
                        r => r.map(|()| true),
                    },
                    None => helper::kill(*pid, sig, false),
                }
            }
            State::Running { pid, pidfd, .. } => {
                signal_running(*pid, pidfd.as_ref(), sig, tree)?;
                Ok(true)
            }
            // Once reaped, the pid and the group id may belong to someone else: send nothing.
            State::Exited { .. } | State::Failed => Ok(false),
        }
    }

    /// Marks a child the helper reaped as exited.
    pub(super) fn mark_exited(&self) {
        let mut state = lock(&self.state);
        if let State::Running { pid, .. } = *state {
            *state = State::Exited { pid };
        }
    }

    /// Marks the child reaped (reaper thread). The state lock is held while reaping, so `kill`
    /// never signals a recycled pid.
    pub(super) fn reap(&self, block: bool) -> Option<WaitStatus> {
        let mut state = lock(&self.state);
        let State::Running { pid, .. } = *state else {
            return None;
        };
        match sys::waitpid(pid, block) {
            Ok(Some(status)) => {
                *state = State::Exited { pid };
                Some(status)
            }
            Ok(None) => None,
            Err(_) => {
                // ECHILD: somebody else reaped it (waitpid(-1) elsewhere); report an unknown end.
                *state = State::Exited { pid };
                Some(WaitStatus {
                    code: None,
                    signal: None,
                })
            }
        }
    }
}

fn signal_running(pid: i32, pidfd: Option<&OwnedFd>, sig: i32, tree: bool) -> io::Result<()> {
    if tree {
        // Find descendants before signalling: once a parent dies its children are re-parented
        // and can no longer be found from it.
        let found = sys::descendants(pid);
        let _ = sys::kill(-pid, sig);
        for d in found {
            let _ = sys::kill(d, sig);
        }
    }
    match pidfd {
        Some(fd) => match sys::pidfd_send_signal(fd, sig) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        },
        None => match sys::kill(pid, sig) {
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(()),
            r => r,
        },
    }
}

struct Job {
    spec: SpawnSpec,
    handle: Arc<ChildHandle>,
    sink: Arc<dyn ChildSink>,
}

fn spawner() -> &'static Mutex<Sender<Job>> {
    static SPAWNER: OnceLock<Mutex<Sender<Job>>> = OnceLock::new();
    SPAWNER.get_or_init(|| {
        let (tx, rx) = channel::<Job>();
        std::thread::Builder::new()
            .name("corepool-spawner".into())
            .spawn(move || {
                sys::block_all_signals();
                // This thread never exits while the process lives: children's death signal is
                // tied to it.
                for job in rx {
                    run_job(job);
                }
            })
            .expect("cannot start the corepool spawner thread");
        Mutex::new(tx)
    })
}

/// Queues a spawn; events arrive on `sink`. Never blocks on the child.
pub fn spawn(spec: SpawnSpec, sink: Arc<dyn ChildSink>) -> Arc<ChildHandle> {
    let handle = Arc::new(ChildHandle {
        state: Mutex::new(State::Pending { kill: None }),
    });
    let job = Job {
        spec,
        handle: Arc::clone(&handle),
        sink,
    };
    if let Err(e) = lock(spawner()).send(job) {
        let job = e.0;
        *lock(&job.handle.state) = State::Failed;
        job.sink.failed(SpawnError {
            errno: libc::EAGAIN,
            syscall: format!("spawn {}", job.spec.file),
            path: job.spec.file.clone(),
            message: "the spawner thread is gone".into(),
        });
    }
    handle
}

fn run_job(job: Job) {
    let Job { spec, handle, sink } = job;
    let started = Instant::now();
    let mut pending_kill = None;
    match start(&spec, Some((&handle.state, &mut pending_kill))) {
        Ok(Started {
            pid,
            registry: Some(registry),
        }) => {
            // The helper reaps it and reports the exit (after 'spawn': see helper::watch).
            sink.spawned(pid);
            helper::watch(&registry, pid, Arc::clone(&handle), sink, started);
            if let Some((sig, tree)) = pending_kill {
                let _ = handle.kill(sig, tree);
            }
        }
        Ok(Started {
            pid,
            registry: None,
        }) => {
            let pidfd = sys::pidfd_open(pid).ok();
            // The reaper owns the pidfd's readiness; the handle keeps one for signalling.
            let for_reaper = pidfd.as_ref().and_then(|fd| fd.try_clone().ok());
            if let State::Running { pidfd: slot, .. } = &mut *lock(&handle.state) {
                *slot = pidfd;
            }
            sink.spawned(pid);
            reaper::watch(pid, for_reaper, Arc::clone(&handle), sink, started);
            if let Some((sig, tree)) = pending_kill {
                let _ = handle.kill(sig, tree);
            }
        }
        Err(error) => {
            *lock(&handle.state) = State::Failed;
            sink.failed(error);
        }
    }
    // `spec` drops here: the child ends of pipes are closed in the parent.
}

/// The state to switch to Running, and where to put a kill requested while pending.
type StateSlot<'a> = (&'a Mutex<State>, &'a mut Option<(i32, bool)>);

/// A started child: by the helper (its registry) or by this process.
struct Started {
    pid: i32,
    registry: Option<Arc<helper::Registry>>,
}

/// Opens stdio files and starts the process; the spec's descriptors stay owned by the caller.
///
/// With `state`, its lock is held across the clone and the state is Running before it is
/// released: the child cannot write anything before it has exec'd, which happens before clone
/// returns, so whoever sees the child's first output and asks for its pid gets it.
fn start(spec: &SpawnSpec, state: Option<StateSlot<'_>>) -> Result<Started, SpawnError> {
    let exec_error = |e: io::Error, syscall: String, path: &str| SpawnError {
        errno: e.raw_os_error().unwrap_or(libc::EINVAL),
        message: String::new(),
        syscall,
        path: path.to_string(),
    };
    let invalid = |what: &str| SpawnError {
        errno: libc::EINVAL,
        syscall: format!("spawn {}", spec.file),
        path: spec.file.clone(),
        message: format!("{what} must not contain NUL bytes"),
    };
    let mut opened: Vec<OwnedFd> = Vec::new();
    let mut fds: Vec<(RawFd, RawFd)> = Vec::new();
    let mut inherit: Vec<RawFd> = Vec::new();
    for (target, stdio) in spec.stdio.iter().enumerate() {
        let target = target as RawFd;
        let src = match stdio {
            Stdio::Fd(fd) => fd.as_raw_fd(),
            Stdio::Raw(fd) if *fd == target => {
                inherit.push(target);
                continue;
            }
            Stdio::Raw(fd) => *fd,
            Stdio::Inherit => {
                inherit.push(target);
                continue;
            }
            Stdio::Ignore => {
                let fd = sys::open("/dev/null", libc::O_RDWR)
                    .map_err(|e| exec_error(e, "open".into(), "/dev/null"))?;
                let raw = fd.as_raw_fd();
                opened.push(fd);
                raw
            }
            Stdio::File { path, append } => {
                let flags = if target == 0 {
                    libc::O_RDONLY
                } else if *append {
                    libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND
                } else {
                    libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC
                };
                let fd = sys::open(path, flags).map_err(|e| exec_error(e, "open".into(), path))?;
                let raw = fd.as_raw_fd();
                opened.push(fd);
                raw
            }
        };
        fds.push((src, target));
    }
    for (target, fd) in &spec.extra {
        fds.push((fd.as_raw_fd(), *target));
    }
    if fds.len() > 16 {
        return Err(SpawnError {
            errno: libc::EINVAL,
            syscall: format!("spawn {}", spec.file),
            path: spec.file.clone(),
            message: "too many stdio descriptors (at most 16)".into(),
        });
    }
    let cstr = |s: &str, what: &str| CString::new(s).map_err(|_| invalid(what));
    let argv = spec
        .args
        .iter()
        .map(|a| cstr(a, "arguments"))
        .collect::<Result<Vec<_>, _>>()?;
    let envp = match &spec.env {
        Some(env) => env
            .iter()
            .map(|a| cstr(a, "environment entries"))
            .collect::<Result<Vec<_>, _>>()?,
        None => own_environment(),
    };
    let candidates = candidates(&spec.file, spec.env.as_deref())
        .iter()
        .map(|p| cstr(p, "the command"))
        .collect::<Result<Vec<_>, _>>()?;
    let cwd = spec.cwd.as_deref().map(|c| cstr(c, "cwd")).transpose()?;
    let mut plan = sys::Plan {
        candidates,
        argv,
        envp,
        cwd,
        fds,
        inherit,
        umask: None,
        uid: spec.uid,
        gid: spec.gid,
        death_signal: if spec.detached { 0 } else { libc::SIGKILL },
        parent_pid: sys::getpid(),
        new_session: spec.detached,
        register_fd: None,
    };
    let (mut guard, pending_out) = match state {
        Some((m, out)) => (Some(lock(m)), Some(out)),
        None => (None, None),
    };
    let via_helper = !spec.detached && helper::enabled();
    if via_helper {
        // The helper's working directory and umask are its own: the child gets ours.
        if plan.cwd.is_none() {
            plan.cwd = std::env::current_dir()
                .ok()
                .and_then(|d| CString::new(d.into_os_string().into_encoded_bytes()).ok());
        }
        plan.umask = sys::umask();
    }
    let mut helper_pidfd = None;
    let mut registry = None;
    let spawned = if via_helper {
        // The helper gets every descriptor the child is to have, ours for inherited ones (that
        // are open: a closed one stays closed in the child).
        let mut all = plan.fds.clone();
        all.extend(
            plan.inherit
                .iter()
                // SAFETY: F_GETFD on a descriptor number only queries it.
                .filter(|&&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
                .map(|&fd| (fd, fd)),
        );
        helper::spawn(&plan, &all).map(|s| {
            helper_pidfd = s.pidfd;
            registry = Some(s.registry);
            s.pid
        })
    } else if spec.detached {
        sys::spawn(&plan)
    } else {
        watchdog::with_fd(|fd| {
            plan.register_fd = fd;
            let pid = sys::spawn(&plan);
            if let (Ok(pid), Some(_)) = (&pid, fd) {
                watchdog::listed(*pid);
            }
            pid
        })
    };
    let result = spawned.map_err(|(e, stage)| {
        let (syscall, path) = match stage {
            Stage::Exec | Stage::ParentGone => (format!("spawn {}", spec.file), spec.file.as_str()),
            Stage::Chdir => ("chdir".into(), spec.cwd.as_deref().unwrap_or("")),
            Stage::Setgid => ("setgid".into(), spec.file.as_str()),
            Stage::Setuid => ("setuid".into(), spec.file.as_str()),
            Stage::Dup => ("dup2".into(), spec.file.as_str()),
            Stage::Setpgid => ("setpgid".into(), spec.file.as_str()),
            Stage::Prctl => ("prctl".into(), spec.file.as_str()),
        };
        exec_error(e, syscall, path)
    });
    if let (Ok(pid), Some(state)) = (&result, guard.as_deref_mut()) {
        if let (State::Pending { kill }, Some(out)) = (&*state, pending_out) {
            *out = *kill;
        }
        *state = State::Running {
            pid: *pid,
            pidfd: helper_pidfd,
            helper: via_helper,
        };
    }
    drop(guard);
    drop(opened);
    result.map(|pid| Started { pid, registry })
}

/// This process's environment as `KEY=value` C strings (entries with NUL bytes cannot exist).
fn own_environment() -> Vec<CString> {
    use std::os::unix::ffi::OsStrExt;
    std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut entry = k.as_bytes().to_vec();
            entry.push(b'=');
            entry.extend_from_slice(v.as_bytes());
            CString::new(entry).ok()
        })
        .collect()
}

/// execvp's candidate list: the name itself when it has a '/', else every PATH entry (the
/// child's PATH when its environment has one, ours otherwise).
fn candidates(file: &str, env: Option<&[String]>) -> Vec<String> {
    if file.contains('/') {
        return vec![file.to_string()];
    }
    if file.is_empty() {
        return Vec::new();
    }
    let path = env
        .unwrap_or_default()
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .map(str::to_string)
        .or_else(|| std::env::var("PATH").ok())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".to_string());
    path.split(':')
        .map(|dir| {
            if dir.is_empty() {
                file.to_string()
            } else {
                format!("{}/{file}", dir.trim_end_matches('/'))
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    enum Ev {
        Spawned(i32),
        Failed(SpawnError),
        Exited(Exit),
    }
    struct Chan(Mutex<mpsc::Sender<Ev>>);
    impl ChildSink for Chan {
        fn spawned(&self, pid: i32) {
            let _ = lock(&self.0).send(Ev::Spawned(pid));
        }
        fn failed(&self, e: SpawnError) {
            let _ = lock(&self.0).send(Ev::Failed(e));
        }
        fn exited(&self, e: Exit) {
            let _ = lock(&self.0).send(Ev::Exited(e));
        }
    }

    fn spec(file: &str, args: &[&str]) -> SpawnSpec {
        SpawnSpec {
            file: file.into(),
            args: std::iter::once(file)
                .chain(args.iter().copied())
                .map(String::from)
                .collect(),
            env: Some(vec!["PATH=/usr/bin:/bin".into()]),
            cwd: None,
            stdio: [Stdio::Ignore, Stdio::Ignore, Stdio::Ignore],
            extra: vec![],
            uid: None,
            gid: None,
            detached: false,
        }
    }

    fn run(s: SpawnSpec) -> (Arc<ChildHandle>, mpsc::Receiver<Ev>) {
        let (tx, rx) = mpsc::channel();
        let h = spawn(s, Arc::new(Chan(Mutex::new(tx))));
        (h, rx)
    }

    const T: Duration = Duration::from_secs(10);

    #[test]
    fn exit_code_is_reported() {
        let (_h, rx) = run(spec("sh", &["-c", "exit 7"]));
        assert!(matches!(rx.recv_timeout(T).unwrap(), Ev::Spawned(p) if p > 0));
        match rx.recv_timeout(T).unwrap() {
            Ev::Exited(e) => assert_eq!(e.status.code, Some(7)),
            _ => panic!("expected exit"),
        }
    }

    #[test]
    fn missing_program_fails_with_enoent() {
        let (_h, rx) = run(spec("corepool-no-such-program", &[]));
        match rx.recv_timeout(T).unwrap() {
            Ev::Failed(e) => {
                assert_eq!(e.errno, libc::ENOENT);
                assert_eq!(e.syscall, "spawn corepool-no-such-program");
            }
            _ => panic!("expected failure"),
        }
    }

    #[test]
    fn bad_cwd_fails_in_chdir() {
        let mut s = spec("true", &[]);
        s.cwd = Some("/corepool/no/such/dir".into());
        let (_h, rx) = run(s);
        match rx.recv_timeout(T).unwrap() {
            Ev::Failed(e) => {
                assert_eq!(e.errno, libc::ENOENT);
                assert_eq!(e.syscall, "chdir");
            }
            _ => panic!("expected failure"),
        }
    }

    #[test]
    fn kill_tree_reports_signal() {
        let (h, rx) = run(spec("sleep", &["30"]));
        assert!(matches!(rx.recv_timeout(T).unwrap(), Ev::Spawned(_)));
        assert!(h.kill(libc::SIGTERM, true).unwrap());
        match rx.recv_timeout(T).unwrap() {
            Ev::Exited(e) => assert_eq!(e.status.signal, Some(libc::SIGTERM)),
            _ => panic!("expected exit"),
        }
        assert!(!h.kill(libc::SIGTERM, true).unwrap());
    }

    #[test]
    fn pipes_carry_output() {
        use std::io::Read;
        let (r, w) = sys::pipe().unwrap();
        let mut s = spec("echo", &["hi", "$(id)"]);
        s.stdio[1] = Stdio::Fd(w);
        let (_h, rx) = run(s);
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        assert_eq!(out, "hi $(id)\n");
        assert!(matches!(rx.recv_timeout(T).unwrap(), Ev::Spawned(_)));
        assert!(matches!(rx.recv_timeout(T).unwrap(), Ev::Exited(_)));
    }

    #[test]
    fn candidates_follow_path() {
        let env = vec!["PATH=/a:/b/".to_string()];
        assert_eq!(candidates("x", Some(&env)), vec!["/a/x", "/b/x"]);
        assert_eq!(candidates("./x", Some(&env)), vec!["./x"]);
        assert!(!candidates("x", None).is_empty());
    }
}
