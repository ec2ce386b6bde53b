//! The few system calls the child machinery needs, each in a small function. The only long unsafe
//! piece is the code that runs in the cloned child between `clone` and `execve`.

use std::ffi::{c_int, c_void, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};

fn cvt(r: c_int) -> io::Result<c_int> {
    if r == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// A pipe whose both ends are close-on-exec: `(read, write)`.
pub fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A connected pair of close-on-exec Unix stream sockets (Node's IPC channel transport).
pub fn socketpair() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as c_int; 2];
    // SAFETY: `fds` is a valid array of two ints for the kernel to fill.
    cvt(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nobody else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Sets O_NONBLOCK on a descriptor.
pub fn set_nonblocking(fd: &OwnedFd) -> io::Result<()> {
    // SAFETY: fcntl on a descriptor we own, with integer arguments.
    let flags = cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_GETFL) })?;
    // SAFETY: as above.
    cvt(unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) }).map(drop)
}

/// Opens a file close-on-exec.
pub fn open(path: &str, flags: c_int) -> io::Result<OwnedFd> {
    let c = CString::new(path).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
    // SAFETY: `c` is a NUL-terminated path that outlives the call.
    let fd = cvt(unsafe { libc::open(c.as_ptr(), flags | libc::O_CLOEXEC, 0o666) })?;
    // SAFETY: the descriptor was just created.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pidfd_open(2)`; `None` when the kernel lacks it (before Linux 5.3).
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain system call with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the descriptor was just created.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Sends `sig` through a pidfd: cannot hit a recycled pid.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    // SAFETY: plain system call; the siginfo pointer may be null.
    let r = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            sig,
            std::ptr::null::<c_void>(),
            0,
        )
    };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// This process's umask, read from /proc (setting it to read it would race with other threads).
pub fn umask() -> Option<u32> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("Umask:"))?;
    u32::from_str_radix(line.trim(), 8).ok()
}

/// Whether the read end of the pipe whose write end is `fd` is closed everywhere (`poll` reports
/// POLLERR on the write end then).
pub fn write_end_orphaned(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    };
    // SAFETY: one valid pollfd, zero timeout.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    n == 1 && p.revents & (libc::POLLERR | libc::POLLNVAL) != 0
}

/// Sends `data` on a Unix socket with `fds` attached (SCM_RIGHTS); all of `data` is sent.
pub fn send_with_fds(sock: RawFd, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut sent = 0;
    let mut attach = fds;
    while sent < data.len() {
        let mut iov = libc::iovec {
            iov_base: data[sent..].as_ptr() as *mut c_void,
            iov_len: data.len() - sent,
        };
        // SAFETY: CMSG_SPACE is a pure computation.
        let space = unsafe { libc::CMSG_SPACE(std::mem::size_of_val(attach) as u32) } as usize;
        let mut control = vec![0u8; if attach.is_empty() { 0 } else { space }];
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        if !attach.is_empty() {
            msg.msg_control = control.as_mut_ptr() as *mut c_void;
            msg.msg_controllen = space as _;
            // SAFETY: `control` has room for one header and `attach.len()` descriptors.
            unsafe {
                let cmsg = libc::CMSG_FIRSTHDR(&msg);
                (*cmsg).cmsg_level = libc::SOL_SOCKET;
                (*cmsg).cmsg_type = libc::SCM_RIGHTS;
                (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of_val(attach) as u32) as _;
                std::ptr::copy_nonoverlapping(
                    attach.as_ptr(),
                    libc::CMSG_DATA(cmsg) as *mut RawFd,
                    attach.len(),
                );
            }
        }
        // SAFETY: `msg` points to live buffers.
        let n = unsafe { libc::sendmsg(sock, &msg, libc::MSG_NOSIGNAL) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
        attach = &[];
    }
    Ok(())
}

/// Receives exactly `buf.len()` bytes from a Unix socket, with the descriptors attached to them
/// (close-on-exec). `Ok(false)`: end of stream before the first byte.
pub fn recv_with_fds(sock: RawFd, buf: &mut [u8], fds: &mut Vec<OwnedFd>) -> io::Result<bool> {
    let mut got = 0;
    while got < buf.len() {
        let mut iov = libc::iovec {
            iov_base: buf[got..].as_mut_ptr() as *mut c_void,
            iov_len: buf.len() - got,
        };
        let mut control = [0u8; 512];
        // SAFETY: an all-zero msghdr is valid; the pointers set below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr() as *mut c_void;
        msg.msg_controllen = control.len() as _;
        // SAFETY: `msg` points to live buffers.
        let n = unsafe { libc::recvmsg(sock, &mut msg, libc::MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        // SAFETY: walking the control messages the kernel wrote into `control`.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let bytes = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    let data = libc::CMSG_DATA(cmsg) as *const RawFd;
                    for i in 0..bytes / std::mem::size_of::<RawFd>() {
                        fds.push(OwnedFd::from_raw_fd(std::ptr::read_unaligned(data.add(i))));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        if n == 0 {
            if got == 0 {
                return Ok(false);
            }
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        got += n as usize;
    }
    Ok(true)
}

/// The start time of a process (clock ticks since boot), to tell a pid from a recycled one.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the comm: state is field 3, starttime field 22.
    rest.split_ascii_whitespace().nth(19)?.parse().ok()
}

/// `kill(2)`; a negative `pid` addresses a process group.
pub fn kill(pid: i32, sig: i32) -> io::Result<()> {
    // SAFETY: plain system call with integer arguments.
    cvt(unsafe { libc::kill(pid, sig) }).map(drop)
}

/// How a process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WaitStatus {
    /// Exit code, when it exited normally.
    pub code: Option<i32>,
    /// Signal number, when a signal ended it.
    pub signal: Option<i32>,
}

/// Reaps `pid`; `block` waits for it, otherwise `Ok(None)` means "still running".
pub fn waitpid(pid: i32, block: bool) -> io::Result<Option<WaitStatus>> {
    let mut status: c_int = 0;
    loop {
        let flags = if block { 0 } else { libc::WNOHANG };
        // SAFETY: `status` is a valid out-pointer; we only wait for a pid we started.
        let r = unsafe { libc::waitpid(pid, &mut status, flags) };
        if r == -1 {
            let e = io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return Err(e);
        }
        if r == 0 {
            return Ok(None);
        }
        break;
    }
    Ok(Some(decode_status(status)))
}

/// A `waitpid` status as exit code or signal.
pub fn decode_status(status: c_int) -> WaitStatus {
    if libc::WIFEXITED(status) {
        WaitStatus {
            code: Some(libc::WEXITSTATUS(status)),
            signal: None,
        }
    } else {
        WaitStatus {
            code: None,
            signal: Some(libc::WTERMSIG(status)),
        }
    }
}

pub fn getpid() -> i32 {
    // SAFETY: always succeeds.
    unsafe { libc::getpid() }
}

/// Blocks every signal on the calling thread, so no handler can run on it — and so none runs in a
/// child cloned from it before that child resets its signal state.
pub fn block_all_signals() {
    // SAFETY: `set` is initialised by sigfillset before use; null old-set pointer is allowed.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigfillset(&mut set);
        libc::pthread_sigmask(libc::SIG_SETMASK, &set, std::ptr::null_mut());
    }
}

/// Everything the cloned child needs, prepared by the parent so the child never allocates.
pub struct Plan {
    /// Candidate paths for execve, tried in order (execvp semantics).
    pub candidates: Vec<CString>,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
    pub cwd: Option<CString>,
    /// `(source fd, target fd)`: the source is duplicated onto the target in the child.
    pub fds: Vec<(RawFd, RawFd)>,
    /// Descriptors the child inherits as they are (same number): their close-on-exec flag is
    /// cleared in the child, as libuv does (Node marks its own 0–2 close-on-exec at start-up).
    pub inherit: Vec<RawFd>,
    /// The child's umask (`None`: the one it inherits).
    pub umask: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    /// `PR_SET_PDEATHSIG` signal (0: none).
    pub death_signal: i32,
    pub parent_pid: i32,
    /// `setsid()` instead of `setpgid(0, 0)`.
    pub new_session: bool,
    /// The watchdog's pipe: the child writes `+<its pid>\n` there before exec.
    pub register_fd: Option<RawFd>,
}

impl Plan {
    /// A helper process of ours (the watchdogs): no death signal — it must outlive us to clean
    /// up after us — working directory `/`, and `fds` as `(source, target)`.
    pub fn helper(
        program: CString,
        argv: Vec<CString>,
        envp: Vec<CString>,
        fds: Vec<(RawFd, RawFd)>,
    ) -> Plan {
        Plan {
            candidates: vec![program],
            argv,
            envp,
            cwd: CString::new("/").ok(),
            fds,
            inherit: Vec::new(),
            umask: None,
            uid: None,
            gid: None,
            death_signal: 0,
            parent_pid: getpid(),
            new_session: false,
            register_fd: None,
        }
    }
}

/// Where the child failed before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Exec = 1,
    Chdir = 2,
    Setgid = 3,
    Setuid = 4,
    Dup = 5,
    Setpgid = 6,
    Prctl = 7,
    ParentGone = 8,
}

impl Stage {
    pub fn from_i32(v: i32) -> Stage {
        match v {
            2 => Stage::Chdir,
            3 => Stage::Setgid,
            4 => Stage::Setuid,
            5 => Stage::Dup,
            6 => Stage::Setpgid,
            7 => Stage::Prctl,
            8 => Stage::ParentGone,
            _ => Stage::Exec,
        }
    }
}

/// The raw view of a [`Plan`] that the cloned child reads.
struct RawPlan {
    candidates: Vec<*const libc::c_char>,
    argv: Vec<*const libc::c_char>,
    envp: Vec<*const libc::c_char>,
    cwd: *const libc::c_char,
    fds: Vec<(RawFd, RawFd)>,
    inherit: Vec<RawFd>,
    umask: Option<u32>,
    uid: Option<u32>,
    gid: Option<u32>,
    death_signal: i32,
    parent_pid: i32,
    new_session: bool,
    register_fd: RawFd,
    min_high_fd: RawFd,
    empty_mask: libc::sigset_t,
    errno: AtomicI32,
    stage: AtomicI32,
}

fn null_terminated(v: &[CString]) -> Vec<*const libc::c_char> {
    v.iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

const CHILD_STACK: usize = 256 * 1024;

/// Starts a child with `clone(CLONE_VM | CLONE_VFORK)`: no page tables are copied (so a huge
/// heap costs nothing) and the calling thread sleeps only until the child has exec'd or failed.
/// Returns the pid, or the errno and stage of the failure (the failed child is reaped here).
pub fn spawn(plan: &Plan) -> Result<i32, (io::Error, Stage)> {
    let max_target = plan.fds.iter().map(|&(_, t)| t).max().unwrap_or(2);
    let raw = RawPlan {
        candidates: plan.candidates.iter().map(|c| c.as_ptr()).collect(),
        argv: null_terminated(&plan.argv),
        envp: null_terminated(&plan.envp),
        cwd: plan.cwd.as_ref().map_or(std::ptr::null(), |c| c.as_ptr()),
        fds: plan.fds.clone(),
        inherit: plan.inherit.clone(),
        umask: plan.umask,
        uid: plan.uid,
        gid: plan.gid,
        death_signal: plan.death_signal,
        parent_pid: plan.parent_pid,
        new_session: plan.new_session,
        register_fd: plan.register_fd.unwrap_or(-1),
        min_high_fd: max_target + 1,
        // SAFETY: sigemptyset initialises the zeroed set.
        empty_mask: unsafe {
            let mut s: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut s);
            s
        },
        errno: AtomicI32::new(0),
        stage: AtomicI32::new(0),
    };
    let mut stack = vec![0u8; CHILD_STACK];
    // SAFETY: the stack grows down on every Linux target we build for, so we pass its top (16-byte
    // aligned). CLONE_VFORK suspends this thread until the child execs or exits, so `raw` and
    // `stack` outlive every access the child makes; the child only makes async-signal-safe
    // system calls and never allocates or unwinds (see `child_main`).
    let pid = unsafe {
        let top = stack.as_mut_ptr().add(CHILD_STACK) as usize & !15;
        libc::clone(
            child_main,
            top as *mut c_void,
            libc::CLONE_VM | libc::CLONE_VFORK | libc::SIGCHLD,
            &raw as *const RawPlan as *mut c_void,
        )
    };
    drop(stack);
    if pid == -1 {
        return Err((io::Error::last_os_error(), Stage::Exec));
    }
    let errno = raw.errno.load(Ordering::SeqCst);
    if errno != 0 {
        let _ = waitpid(pid, true);
        return Err((
            io::Error::from_raw_os_error(errno),
            Stage::from_i32(raw.stage.load(Ordering::SeqCst)),
        ));
    }
    Ok(pid)
}

/// Runs in the cloned child, sharing memory with the (suspended) spawner thread. Only raw,
/// async-signal-safe system calls; no allocation, no panics, no unwinding.
extern "C" fn child_main(arg: *mut c_void) -> c_int {
    // SAFETY: `arg` points to the `RawPlan` owned by `spawn`, alive while the parent is suspended.
    let plan = unsafe { &*(arg as *const RawPlan) };
    // SAFETY: every call below is a plain system call on values prepared by the parent.
    unsafe {
        let fail = |stage: Stage| -> c_int {
            plan.errno
                .store(*libc::__errno_location(), Ordering::SeqCst);
            plan.stage.store(stage as i32, Ordering::SeqCst);
            libc::_exit(127)
        };
        // Signal handlers belong to the parent's runtime: reset every disposition (ignored ones
        // too, so SIGPIPE behaves normally in the child), then unblock everything.
        for sig in 1..libc::SIGRTMAX() {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        let grouped = if plan.new_session {
            libc::setsid()
        } else {
            libc::setpgid(0, 0)
        };
        if grouped == -1 {
            return fail(Stage::Setpgid);
        }
        if plan.register_fd >= 0 {
            // "+<pid>\n" formatted on the stack: no allocation here. A full pipe loses the entry.
            let mut buf = [0u8; 24];
            let mut end = buf.len();
            let mut n = libc::getpid() as u32;
            end -= 1;
            buf[end] = b'\n';
            loop {
                end -= 1;
                buf[end] = b'0' + (n % 10) as u8;
                n /= 10;
                if n == 0 {
                    break;
                }
            }
            end -= 1;
            buf[end] = b'+';
            libc::write(
                plan.register_fd,
                buf[end..].as_ptr() as *const c_void,
                buf.len() - end,
            );
            // A dead watchdog makes that write raise SIGPIPE, kept pending while signals are
            // blocked; it would kill the child as soon as it unblocks them. Ignoring SIGPIPE
            // discards a pending one.
            libc::signal(libc::SIGPIPE, libc::SIG_IGN);
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
        // Move every source above all targets first, so a target never clobbers a later source.
        let mut moved = [(-1 as RawFd, -1 as RawFd); 16];
        for (slot, &(src, target)) in moved.iter_mut().zip(plan.fds.iter()) {
            let high = libc::fcntl(src, libc::F_DUPFD_CLOEXEC, plan.min_high_fd);
            if high == -1 {
                return fail(Stage::Dup);
            }
            *slot = (high, target);
        }
        for &(high, target) in moved.iter() {
            if high >= 0 && libc::dup2(high, target) == -1 {
                return fail(Stage::Dup);
            }
        }
        // An inherited descriptor that is close-on-exec in the parent would be closed by execve.
        // One that is not open at all stays closed (as with libuv).
        for &fd in plan.inherit.iter() {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            if flags >= 0
                && flags & libc::FD_CLOEXEC != 0
                && libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC) == -1
            {
                return fail(Stage::Dup);
            }
        }
        if let Some(mask) = plan.umask {
            libc::umask(mask as libc::mode_t);
        }
        if !plan.cwd.is_null() && libc::chdir(plan.cwd) == -1 {
            return fail(Stage::Chdir);
        }
        if let Some(gid) = plan.gid {
            libc::setgroups(0, std::ptr::null());
            if libc::setgid(gid) == -1 {
                return fail(Stage::Setgid);
            }
        }
        if let Some(uid) = plan.uid {
            if libc::setuid(uid) == -1 {
                return fail(Stage::Setuid);
            }
        }
        // After setuid/setgid: the kernel clears the death signal when credentials change.
        if plan.death_signal != 0 {
            if libc::prctl(
                libc::PR_SET_PDEATHSIG,
                plan.death_signal as libc::c_ulong,
                0,
                0,
                0,
            ) == -1
            {
                return fail(Stage::Prctl);
            }
            // The parent may have died between clone and prctl: then no signal will come.
            if libc::getppid() != plan.parent_pid {
                *libc::__errno_location() = libc::ESRCH;
                return fail(Stage::ParentGone);
            }
        }
        libc::pthread_sigmask(libc::SIG_SETMASK, &plan.empty_mask, std::ptr::null_mut());
        let mut saw_eacces = false;
        for &path in plan.candidates.iter() {
            libc::execve(path, plan.argv.as_ptr(), plan.envp.as_ptr());
            match *libc::__errno_location() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => saw_eacces = true,
                _ => return fail(Stage::Exec),
            }
        }
        if saw_eacces {
            *libc::__errno_location() = libc::EACCES;
        }
        fail(Stage::Exec)
    }
}

/// Every descendant of `root` (breadth first). Walks the kernel's per-thread child lists
/// (`/proc/<pid>/task/<tid>/children`), which only touches the tree itself; kernels without them
/// get a scan of all of /proc. Processes that re-parented away (double fork) cannot be found
/// either way; the process group catches those.
pub fn descendants(root: i32) -> Vec<i32> {
    match children_of(root) {
        Some(first) => {
            let mut out = Vec::new();
            let mut frontier = first;
            while let Some(p) = frontier.pop() {
                if out.contains(&p) {
                    continue;
                }
                out.push(p);
                frontier.extend(children_of(p).unwrap_or_default());
            }
            out
        }
        None => descendants_by_scan(root),
    }
}

/// Direct children of every thread of `pid`; `None` when the kernel has no child lists.
pub fn children_of(pid: i32) -> Option<Vec<i32>> {
    let tasks = match std::fs::read_dir(format!("/proc/{pid}/task")) {
        Ok(t) => t,
        // The process is gone: no children to find.
        Err(_) => return Some(Vec::new()),
    };
    let mut out = Vec::new();
    for task in tasks.flatten() {
        let mut path = task.path();
        path.push("children");
        match std::fs::read_to_string(&path) {
            Ok(list) => out.extend(
                list.split_ascii_whitespace()
                    .filter_map(|s| s.parse::<i32>().ok()),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !path.parent()?.exists() => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(_) => {}
        }
    }
    Some(out)
}

fn descendants_by_scan(root: i32) -> Vec<i32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut pairs: Vec<(i32, i32)> = Vec::new();
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) {
            if let Some(ppid) = parse_ppid(&stat) {
                pairs.push((pid, ppid));
            }
        }
    }
    let mut out = Vec::new();
    let mut frontier = vec![root];
    while let Some(p) = frontier.pop() {
        for &(pid, ppid) in &pairs {
            if ppid == p && !out.contains(&pid) {
                out.push(pid);
                frontier.push(pid);
            }
        }
    }
    out
}

/// The ppid field of /proc/<pid>/stat: the comm field may contain spaces and parentheses, so
/// parse after the last ')'.
fn parse_ppid(stat: &str) -> Option<i32> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    fields.next()?; // state
    fields.next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ppid_with_odd_comm() {
        assert_eq!(parse_ppid("123 (a) b) (c) S 45 123 123 0"), Some(45));
        assert_eq!(parse_ppid("garbage"), None);
    }

    #[test]
    fn finds_own_children() {
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let d = descendants(getpid());
        assert!(d.contains(&(c.id() as i32)));
        c.kill().unwrap();
        c.wait().unwrap();
    }
}
