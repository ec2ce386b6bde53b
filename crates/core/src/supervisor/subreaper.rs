//! The subreaper helper: a small process (the `corepool-watchdog` binary, started once per Node
//! process) that starts every supervised child, so that every descendant — also one that leaves
//! its process group or session (`setsid`, double-forking daemons) — stays below it: it is a
//! child subreaper (`PR_SET_CHILD_SUBREAPER`, no privilege needed), so orphans are re-parented to
//! it instead of to init. When the Node process goes away (its end of the request socket closes,
//! however it dies) the helper kills every process below it and exits.
//!
//! Protocol on fd 3 (a Unix stream socket; Node sends, the helper answers each request):
//! - spawn: `[1, len: u32]` + body, the child's descriptors attached (SCM_RIGHTS); the answer is
//!   `[pid, errno, stage]` (three i32), with a pidfd of the child attached when there is one
//!   (opened before the child can be reaped, so it never names a recycled pid).
//! - kill: `[2, len: u32]` + `[pid, signal, tree]` (three i32); the answer is `[sent, errno, 0]`.
//!
//! Each child is started by a shim of its own: a fork of the helper, a subreaper too, that stays
//! its parent. Descendants that escape the child's tree (their parent died) are re-parented to
//! that shim, so `child.kill()` of the tree finds them below it; the shim reaps everything below
//! it and reports the child's end on fd 4 (a pipe to Node): `[pid, code (-1: none), signal
//! (0: none)]`. It exits once nothing is left below it.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::{Duration, Instant};

use super::sys::{self, Plan};

/// The request socket in the helper.
pub const REQUEST_FD: RawFd = 3;
/// The event pipe in the helper.
pub const EVENT_FD: RawFd = 4;

pub const SPAWN: u8 = 1;
pub const KILL: u8 = 2;

/// What a spawn request carries besides the descriptors.
pub struct SpawnRequest {
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    /// The target descriptor number of each attached descriptor, in order.
    pub targets: Vec<RawFd>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub umask: Option<u32>,
}

fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}

fn put_list(out: &mut Vec<u8>, list: &[CString]) {
    put_u32(out, list.len() as u32);
    for s in list {
        put_u32(out, s.as_bytes().len() as u32);
        out.extend_from_slice(s.as_bytes());
    }
}

/// `[kind, len]` + body.
pub fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(kind);
    put_u32(&mut out, body.len() as u32);
    out.extend_from_slice(body);
    out
}

impl SpawnRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        put_list(&mut out, &self.candidates);
        put_list(&mut out, &self.argv);
        put_list(&mut out, &self.envp);
        match &self.cwd {
            Some(c) => put_list(&mut out, std::slice::from_ref(c)),
            None => put_u32(&mut out, 0),
        }
        put_u32(&mut out, self.targets.len() as u32);
        for &t in &self.targets {
            out.extend_from_slice(&t.to_le_bytes());
        }
        for id in [self.uid, self.gid, self.umask] {
            out.extend_from_slice(&id.map_or(-1i64, i64::from).to_le_bytes());
        }
        out
    }

    fn decode(mut b: &[u8]) -> Option<SpawnRequest> {
        fn u32_(b: &mut &[u8]) -> Option<u32> {
            let (h, t) = b.split_at_checked(4)?;
            *b = t;
            Some(u32::from_le_bytes(h.try_into().ok()?))
        }
        fn i64_(b: &mut &[u8]) -> Option<i64> {
            let (h, t) = b.split_at_checked(8)?;
            *b = t;
            Some(i64::from_le_bytes(h.try_into().ok()?))
        }
        fn list(b: &mut &[u8]) -> Option<Vec<CString>> {
            let n = u32_(b)? as usize;
            let mut out = Vec::with_capacity(n.min(1 << 16));
            for _ in 0..n {
                let len = u32_(b)? as usize;
                let (h, t) = b.split_at_checked(len)?;
                *b = t;
                out.push(CString::new(h).ok()?);
            }
            Some(out)
        }
        let candidates = list(&mut b)?;
        let argv = list(&mut b)?;
        let envp = list(&mut b)?;
        let cwd = list(&mut b)?.pop();
        let n = u32_(&mut b)? as usize;
        let mut targets = Vec::with_capacity(n.min(64));
        for _ in 0..n {
            targets.push(u32_(&mut b)? as RawFd);
        }
        let id = |v: i64| u32::try_from(v).ok();
        let uid = id(i64_(&mut b)?);
        let gid = id(i64_(&mut b)?);
        let umask = id(i64_(&mut b)?);
        Some(SpawnRequest {
            candidates,
            argv,
            envp,
            cwd,
            targets,
            uid,
            gid,
            umask,
        })
    }
}

pub fn ints(v: [i32; 3]) -> [u8; 12] {
    let mut out = [0u8; 12];
    for (i, x) in v.iter().enumerate() {
        out[i * 4..i * 4 + 4].copy_from_slice(&x.to_le_bytes());
    }
    out
}

pub fn from_ints(b: &[u8; 12]) -> [i32; 3] {
    let at = |i: usize| i32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
    [at(0), at(4), at(8)]
}

/// A child started here, below its own subreaper shim.
struct Root {
    /// The shim: a fork of this process that started the child and is its parent, a subreaper
    /// too, so descendants that leave the child's tree are re-parented to it — and still found.
    shim: i32,
    /// The child's start time: tells it from a process that got its pid after it was reaped.
    start: u64,
}

struct Helper {
    /// Children started here (by pid), until their shim is gone.
    roots: HashMap<i32, Root>,
    me: i32,
}

impl Helper {
    fn spawn(&mut self, req: SpawnRequest, fds: Vec<OwnedFd>) -> ([i32; 3], Option<OwnedFd>) {
        if fds.len() != req.targets.len() {
            return ([0, libc::EINVAL, 1], None);
        }
        let mut plan = Plan {
            candidates: req.candidates,
            argv: req.argv,
            envp: req.envp,
            cwd: req.cwd,
            fds: fds
                .iter()
                .map(|f| f.as_raw_fd())
                .zip(req.targets.iter().copied())
                .collect(),
            inherit: Vec::new(),
            umask: req.umask,
            uid: req.uid,
            gid: req.gid,
            // The child dies with its shim, which dies with this process, which dies with Node
            // (each single-threaded: the thread is the process).
            death_signal: libc::SIGKILL,
            parent_pid: 0,
            new_session: false,
            register_fd: None,
        };
        let (ours, theirs) = match sys::socketpair() {
            Ok(p) => p,
            Err(e) => return ([0, e.raw_os_error().unwrap_or(libc::EMFILE), 1], None),
        };
        // SAFETY: this process is single-threaded, so the forked shim may run any code.
        let shim = unsafe { libc::fork() };
        if shim == -1 {
            let errno = io::Error::last_os_error()
                .raw_os_error()
                .unwrap_or(libc::EAGAIN);
            return ([0, errno, 1], None);
        }
        if shim == 0 {
            drop(ours);
            plan.parent_pid = sys::getpid();
            run_shim(self.me, &plan, theirs, fds)
        }
        drop(theirs);
        drop(fds);
        let mut answer = [0u8; 12];
        let mut got = Vec::new();
        match sys::recv_with_fds(ours.as_raw_fd(), &mut answer, &mut got) {
            Ok(true) => {
                let answer = from_ints(&answer);
                if answer[0] > 0 {
                    let start = sys::start_time(answer[0]).unwrap_or(0);
                    self.roots.insert(answer[0], Root { shim, start });
                }
                (answer, got.pop())
            }
            _ => ([0, libc::EAGAIN, 1], None),
        }
    }

    fn kill(&mut self, pid: i32, sig: i32, tree: bool) -> [i32; 3] {
        let Some(root) = self.roots.get(&pid) else {
            return [0, libc::ESRCH, 0];
        };
        if sys::start_time(pid) != Some(root.start) {
            // Reaped by its shim: the pid and group id are not ours any more.
            return [0, libc::ESRCH, 0];
        }
        // Everything below the shim: the child's tree and what escaped it. Found before
        // signalling: a parent that dies takes the links to its children along.
        let found = if tree {
            sys::descendants(root.shim)
        } else {
            Vec::new()
        };
        // The child first: once signalled it may be reaped before the others are.
        let answer = match sys::kill(pid, sig) {
            Ok(()) => [1, 0, 0],
            Err(e) => [0, e.raw_os_error().unwrap_or(0), 0],
        };
        if tree {
            let _ = sys::kill(-pid, sig);
            for d in found.into_iter().filter(|&d| d != pid) {
                let _ = sys::kill(d, sig);
            }
        }
        answer
    }

    /// Reaps every shim (and adopted orphan) that exited.
    fn reap(&mut self) {
        loop {
            let mut status: libc::c_int = 0;
            // SAFETY: plain system call with a valid out-pointer.
            let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
            if pid <= 0 {
                return;
            }
            self.roots.retain(|_, r| r.shim != pid);
        }
    }

    /// Node is gone: kill everything below us, until nothing is left.
    fn shutdown(&mut self) -> ! {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for &root in self.roots.keys() {
                let _ = sys::kill(-root, libc::SIGKILL);
            }
            let all = sys::descendants(self.me);
            for &pid in &all {
                let _ = sys::kill(pid, libc::SIGKILL);
            }
            self.roots.clear();
            self.reap();
            if all.is_empty() || Instant::now() > deadline {
                // SAFETY: plain exit.
                unsafe { libc::_exit(0) }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

/// The shim (a fork of the helper): starts the child, answers through `reply` with its pid and
/// a pidfd, then reaps everything below it, reporting the child's end on the event pipe; exits
/// when nothing is left.
fn run_shim(helper: i32, plan: &Plan, reply: OwnedFd, fds: Vec<OwnedFd>) -> ! {
    // SAFETY: plain system calls on our own process.
    unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        );
        if libc::getppid() != helper {
            libc::_exit(0);
        }
    }
    let child = match sys::spawn(plan) {
        Ok(pid) => {
            let pidfd = sys::pidfd_open(pid).ok();
            let attach: Vec<RawFd> = pidfd.iter().map(|f| f.as_raw_fd()).collect();
            let _ = sys::send_with_fds(reply.as_raw_fd(), &ints([pid, 0, 0]), &attach);
            pid
        }
        Err((e, stage)) => {
            let errno = e.raw_os_error().unwrap_or(libc::EINVAL);
            let _ = sys::send_with_fds(reply.as_raw_fd(), &ints([0, errno, stage as i32]), &[]);
            // SAFETY: plain exit.
            unsafe { libc::_exit(0) }
        }
    };
    // Keep nothing but the event pipe: the child's pipes must close when the child is done.
    drop(fds);
    drop(reply);
    // SAFETY: closing descriptors we do not use.
    unsafe {
        libc::close(REQUEST_FD);
        libc::syscall(libc::SYS_close_range, EVENT_FD + 1, u32::MAX, 0);
    }
    loop {
        let mut status: libc::c_int = 0;
        // SAFETY: plain system call with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, 0) };
        if pid == -1 {
            if io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            // SAFETY: plain exit: nothing is left below us.
            unsafe { libc::_exit(0) }
        }
        if pid == child {
            let ws = sys::decode_status(status);
            let record = ints([pid, ws.code.unwrap_or(-1), ws.signal.unwrap_or(0)]);
            // SAFETY: a 12-byte write (atomic on a pipe) to the event descriptor.
            unsafe { libc::write(EVENT_FD, record.as_ptr() as *const libc::c_void, 12) };
        }
    }
}

fn read_request(fds: &mut Vec<OwnedFd>) -> io::Result<Option<(u8, Vec<u8>)>> {
    let mut head = [0u8; 5];
    if !sys::recv_with_fds(REQUEST_FD, &mut head, fds)? {
        return Ok(None);
    }
    let len = u32::from_le_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len];
    if len > 0 && !sys::recv_with_fds(REQUEST_FD, &mut body, fds)? {
        return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
    }
    Ok(Some((head[0], body)))
}

/// The helper's main loop (the `corepool-watchdog` binary runs only this).
pub fn serve() -> ! {
    // SAFETY: plain system calls on our own process.
    let sigfd = unsafe {
        libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
        // Terminal signals are for Node; we end when Node's socket closes.
        for sig in [
            libc::SIGHUP,
            libc::SIGINT,
            libc::SIGQUIT,
            libc::SIGTERM,
            libc::SIGPIPE,
        ] {
            libc::signal(sig, libc::SIG_IGN);
        }
        // Nothing but our own descriptors.
        libc::syscall(libc::SYS_close_range, EVENT_FD + 1, u32::MAX, 0);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGCHLD);
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        libc::signalfd(-1, &set, libc::SFD_CLOEXEC | libc::SFD_NONBLOCK)
    };
    let mut h = Helper {
        roots: HashMap::new(),
        me: sys::getpid(),
    };
    loop {
        let mut polls = [
            libc::pollfd {
                fd: REQUEST_FD,
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: sigfd,
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: two valid pollfds.
        unsafe { libc::poll(polls.as_mut_ptr(), 2, -1) };
        if polls[1].revents != 0 {
            let mut info = [0u8; 128];
            // SAFETY: draining the signalfd into a buffer of one siginfo.
            while unsafe { libc::read(sigfd, info.as_mut_ptr() as *mut libc::c_void, 128) } > 0 {}
        }
        h.reap();
        if polls[0].revents != 0 {
            let mut fds = Vec::new();
            match read_request(&mut fds) {
                Ok(Some((SPAWN, body))) => {
                    let (answer, pidfd) = match SpawnRequest::decode(&body) {
                        Some(req) => h.spawn(req, fds),
                        None => ([0, libc::EINVAL, 1], None),
                    };
                    let attach: Vec<RawFd> = pidfd.iter().map(|f| f.as_raw_fd()).collect();
                    if sys::send_with_fds(REQUEST_FD, &ints(answer), &attach).is_err() {
                        h.shutdown();
                    }
                }
                Ok(Some((KILL, body))) => {
                    let answer = match <&[u8; 12]>::try_from(body.as_slice()) {
                        Ok(b) => {
                            let [pid, sig, tree] = from_ints(b);
                            h.kill(pid, sig, tree != 0)
                        }
                        Err(_) => [0, libc::EINVAL, 0],
                    };
                    if sys::send_with_fds(REQUEST_FD, &ints(answer), &[]).is_err() {
                        h.shutdown();
                    }
                }
                Ok(Some(_)) => {
                    let _ = sys::send_with_fds(REQUEST_FD, &ints([0, libc::EINVAL, 0]), &[]);
                }
                // End of stream or a broken socket: Node is gone.
                Ok(None) | Err(_) => h.shutdown(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_requests_round_trip() {
        let c = |s: &str| CString::new(s).unwrap();
        let req = SpawnRequest {
            candidates: vec![c("/bin/true")],
            argv: vec![c("true"), c("")],
            envp: vec![],
            cwd: Some(c("/tmp")),
            targets: vec![0, 1, 2, 3],
            uid: Some(0),
            gid: None,
            umask: Some(0o22),
        };
        let back = SpawnRequest::decode(&req.encode()).unwrap();
        assert_eq!(back.candidates, req.candidates);
        assert_eq!(back.argv, req.argv);
        assert!(back.envp.is_empty());
        assert_eq!(back.cwd, req.cwd);
        assert_eq!(back.targets, req.targets);
        assert_eq!(
            (back.uid, back.gid, back.umask),
            (Some(0), None, Some(0o22))
        );
        assert!(SpawnRequest::decode(&req.encode()[..10]).is_none());
        assert_eq!(from_ints(&ints([1, -1, 7])), [1, -1, 7]);
    }
}
