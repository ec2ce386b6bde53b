//! Node's side of the subreaper helper (see `subreaper.rs`): starts it once, sends it spawn and
//! kill requests, and turns its exit reports into child events on a thread of its own.
//!
//! Used for every child that is not `detached`, when the helper binary is there
//! ([`configure`]); otherwise children are started in-process with the `/bin/sh` watchdog.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::child::{ChildHandle, ChildSink, Exit};
use super::subreaper::{self, SpawnRequest};
use super::sys::{self, Plan, Stage, WaitStatus};
use crate::sync::lock;

static CONFIGURED: OnceLock<CString> = OnceLock::new();
static PATH: OnceLock<Option<CString>> = OnceLock::new();

/// Sets the helper binary to use (once; later calls are ignored). Whether it is there is only
/// checked when the first child starts, so that loading the addon touches no file for it.
pub fn configure(path: &str) {
    if let Ok(c) = CString::new(path) {
        let _ = CONFIGURED.set(c);
    }
}

/// The configured helper binary, if it is an executable file (checked once).
fn path() -> Option<&'static CString> {
    PATH.get_or_init(|| {
        let c = CONFIGURED.get()?;
        // SAFETY: `c` is a valid NUL-terminated string; access(2) only reads it.
        let executable = unsafe { libc::access(c.as_ptr(), libc::X_OK) } == 0;
        let file =
            std::fs::metadata(std::ffi::OsStr::from_bytes(c.as_bytes())).is_ok_and(|m| m.is_file());
        (executable && file).then(|| c.clone())
    })
    .as_ref()
}

/// Whether children are started through the helper.
pub fn enabled() -> bool {
    path().is_some()
}

enum Slot {
    Waiting {
        handle: Arc<ChildHandle>,
        sink: Arc<dyn ChildSink>,
        started: Instant,
    },
    /// The exit report came before the spawner registered the child.
    Early(WaitStatus),
}

/// The children of one helper instance, by pid.
#[derive(Default)]
pub struct Registry {
    slots: Mutex<HashMap<i32, Slot>>,
    dead: std::sync::atomic::AtomicBool,
}

struct Running {
    socket: OwnedFd,
    pid: i32,
    registry: Arc<Registry>,
}

static HELPER: Mutex<Option<Running>> = Mutex::new(None);

fn start(path: &CString) -> io::Result<Running> {
    let (ours, theirs) = sys::socketpair()?;
    let (events, report) = sys::pipe()?;
    let null = sys::open("/dev/null", libc::O_RDWR)?;
    let c = |s: &str| CString::new(s).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL));
    let plan = Plan::helper(
        path.clone(),
        vec![c("corepool-watchdog")?],
        Vec::new(),
        vec![
            (null.as_raw_fd(), 0),
            (null.as_raw_fd(), 1),
            (null.as_raw_fd(), 2),
            (theirs.as_raw_fd(), subreaper::REQUEST_FD),
            (report.as_raw_fd(), subreaper::EVENT_FD),
        ],
    );
    let pid = sys::spawn(&plan).map_err(|(e, _)| e)?;
    let registry = Arc::new(Registry::default());
    let r = Arc::clone(&registry);
    std::thread::Builder::new()
        .name("corepool-helper-events".into())
        .spawn(move || {
            sys::block_all_signals();
            events_loop(events, r);
        })?;
    Ok(Running {
        socket: ours,
        pid,
        registry,
    })
}

fn events_loop(events: OwnedFd, registry: Arc<Registry>) {
    let mut file = std::fs::File::from(events);
    let mut record = [0u8; 12];
    while std::io::Read::read_exact(&mut file, &mut record).is_ok() {
        let [pid, code, signal] = subreaper::from_ints(&record);
        let status = WaitStatus {
            code: (code >= 0).then_some(code),
            signal: (signal > 0).then_some(signal),
        };
        let slot = {
            let mut slots = lock(&registry.slots);
            match slots.remove(&pid) {
                Some(Slot::Waiting {
                    handle,
                    sink,
                    started,
                }) => Some((handle, sink, started)),
                _ => {
                    slots.insert(pid, Slot::Early(status));
                    None
                }
            }
        };
        if let Some((handle, sink, started)) = slot {
            finish(&handle, &sink, started, status);
        }
    }
    // The helper died (it was killed): its children got their death signal with it.
    registry
        .dead
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let left: Vec<Slot> = lock(&registry.slots).drain().map(|(_, s)| s).collect();
    for slot in left {
        if let Slot::Waiting {
            handle,
            sink,
            started,
        } = slot
        {
            let status = WaitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            };
            finish(&handle, &sink, started, status);
        }
    }
}

fn finish(handle: &ChildHandle, sink: &Arc<dyn ChildSink>, started: Instant, status: WaitStatus) {
    handle.mark_exited();
    sink.exited(Exit {
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
}

/// Observes a child the helper started (its exit report may already be there).
pub fn watch(
    registry: &Arc<Registry>,
    pid: i32,
    handle: Arc<ChildHandle>,
    sink: Arc<dyn ChildSink>,
    started: Instant,
) {
    let early = {
        let mut slots = lock(&registry.slots);
        if registry.dead.load(std::sync::atomic::Ordering::SeqCst) {
            Some(WaitStatus {
                code: None,
                signal: Some(libc::SIGKILL),
            })
        } else {
            match slots.remove(&pid) {
                Some(Slot::Early(status)) => Some(status),
                _ => {
                    slots.insert(
                        pid,
                        Slot::Waiting {
                            handle: Arc::clone(&handle),
                            sink: Arc::clone(&sink),
                            started,
                        },
                    );
                    None
                }
            }
        }
    };
    if let Some(status) = early {
        finish(&handle, &sink, started, status);
    }
}

/// The running helper (started, or restarted when the previous one died).
fn running(state: &mut Option<Running>) -> io::Result<&Running> {
    let path = path().ok_or_else(|| io::Error::from_raw_os_error(libc::ENOENT))?;
    if let Some(r) = state {
        if r.registry.dead.load(std::sync::atomic::Ordering::SeqCst) {
            // It is our child: reap it so it does not stay a zombie.
            let _ = sys::waitpid(r.pid, false);
            *state = None;
        }
    }
    if state.is_none() {
        *state = Some(start(path)?);
    }
    state
        .as_ref()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EAGAIN))
}

fn request(
    r: &Running,
    kind: u8,
    body: &[u8],
    fds: &[RawFd],
) -> io::Result<([i32; 3], Vec<OwnedFd>)> {
    let sock = r.socket.as_raw_fd();
    sys::send_with_fds(sock, &subreaper::frame(kind, body), fds)?;
    let mut answer = [0u8; 12];
    let mut got = Vec::new();
    if !sys::recv_with_fds(sock, &mut answer, &mut got)? {
        return Err(io::Error::from_raw_os_error(libc::EPIPE));
    }
    Ok((subreaper::from_ints(&answer), got))
}

/// A child started by the helper.
pub struct Spawned {
    pub pid: i32,
    pub pidfd: Option<OwnedFd>,
    pub registry: Arc<Registry>,
}

/// Starts a child through the helper: `fds` are `(our descriptor, target number)`.
pub fn spawn(plan: &Plan, fds: &[(RawFd, RawFd)]) -> Result<Spawned, (io::Error, Stage)> {
    let req = SpawnRequest {
        candidates: plan.candidates.clone(),
        argv: plan.argv.clone(),
        envp: plan.envp.clone(),
        cwd: plan.cwd.clone(),
        targets: fds.iter().map(|&(_, t)| t).collect(),
        uid: plan.uid,
        gid: plan.gid,
        umask: plan.umask,
    };
    let ours: Vec<RawFd> = fds.iter().map(|&(f, _)| f).collect();
    let body = req.encode();
    let mut state = lock(&HELPER);
    // One retry: a helper that died since the last request is replaced.
    for attempt in 0..2 {
        let r = running(&mut state).map_err(|e| (e, Stage::Exec))?;
        match request(r, subreaper::SPAWN, &body, &ours) {
            Ok(([pid, errno, stage], mut got)) => {
                if pid > 0 {
                    return Ok(Spawned {
                        pid,
                        pidfd: got.pop(),
                        registry: Arc::clone(&r.registry),
                    });
                }
                return Err((io::Error::from_raw_os_error(errno), Stage::from_i32(stage)));
            }
            Err(e) if attempt == 0 => {
                let _ = e;
                if let Some(r) = state.as_ref() {
                    r.registry
                        .dead
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                }
            }
            Err(e) => return Err((e, Stage::Exec)),
        }
    }
    Err((io::Error::from_raw_os_error(libc::EAGAIN), Stage::Exec))
}

/// Signals a child the helper started, or its whole tree (escaped descendants included).
/// Returns whether the child was still running.
pub fn kill(pid: i32, sig: i32, tree: bool) -> io::Result<bool> {
    let mut body = Vec::with_capacity(12);
    body.extend_from_slice(&subreaper::ints([pid, sig, tree as i32]));
    let state = lock(&HELPER);
    let Some(r) = state.as_ref() else {
        return Ok(false);
    };
    match request(r, subreaper::KILL, &body, &[]) {
        Ok(([sent, errno, _], _)) => {
            if sent == 1 || errno == libc::ESRCH {
                Ok(sent == 1)
            } else {
                Err(io::Error::from_raw_os_error(errno))
            }
        }
        // The helper is gone; so are its children (the next spawn replaces it).
        Err(_) => {
            r.registry
                .dead
                .store(true, std::sync::atomic::Ordering::SeqCst);
            Ok(false)
        }
    }
}
