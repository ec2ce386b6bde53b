//! The reaper thread: waits on the pidfds of running children with epoll and reaps each one as
//! soon as it exits. Kernels without pidfd get a blocking `waitpid` thread per child instead.
//!
//! Also keeps the watchdog's list honest: a child's process group is forgotten only once it is
//! empty (grandchildren may outlive the leader), checked again every second.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use super::child::{ChildHandle, ChildSink, Exit};
use super::sys;
use super::watchdog;
use crate::sync::lock;

struct Watched {
    pidfd: OwnedFd,
    pgid: i32,
    handle: Arc<ChildHandle>,
    sink: Arc<dyn ChildSink>,
    started: Instant,
}

struct Reaper {
    epoll: RawFd,
    watched: Mutex<HashMap<RawFd, Watched>>,
}

fn reaper() -> Option<&'static Reaper> {
    static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
    REAPER
        .get_or_init(|| {
            // SAFETY: plain system call.
            let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
            if epoll < 0 {
                return None;
            }
            std::thread::Builder::new()
                .name("corepool-reaper".into())
                .spawn(move || {
                    sys::block_all_signals();
                    run(epoll)
                })
                .ok()?;
            Some(Reaper {
                epoll,
                watched: Mutex::new(HashMap::new()),
            })
        })
        .as_ref()
}

/// Starts observing a freshly spawned child.
pub fn watch(
    pid: i32,
    pidfd: Option<OwnedFd>,
    handle: Arc<ChildHandle>,
    sink: Arc<dyn ChildSink>,
    started: Instant,
) {
    if let (Some(pidfd), Some(r)) = (pidfd, reaper()) {
        let fd = pidfd.as_raw_fd();
        lock(&r.watched).insert(
            fd,
            Watched {
                pidfd,
                pgid: pid,
                handle,
                sink,
                started,
            },
        );
        let mut ev = libc::epoll_event {
            events: libc::EPOLLIN as u32,
            u64: fd as u64,
        };
        // SAFETY: `fd` is a live pidfd owned by the map entry inserted above.
        if unsafe { libc::epoll_ctl(r.epoll, libc::EPOLL_CTL_ADD, fd, &mut ev) } == 0 {
            return;
        }
        let w = lock(&r.watched).remove(&fd);
        if let Some(w) = w {
            fallback(pid, w.handle, w.sink, started);
        }
        return;
    }
    fallback(pid, handle, sink, started);
}

/// Without pidfd: one thread blocks in waitpid for this child.
fn fallback(pid: i32, handle: Arc<ChildHandle>, sink: Arc<dyn ChildSink>, started: Instant) {
    let spawned = std::thread::Builder::new()
        .name("corepool-wait".into())
        .spawn({
            let handle = Arc::clone(&handle);
            let sink = Arc::clone(&sink);
            move || {
                sys::block_all_signals();
                if let Some(status) = handle.reap(true) {
                    finish(pid, status, &sink, started);
                }
            }
        });
    if spawned.is_err() {
        if let Some(status) = handle.reap(true) {
            finish(pid, status, &sink, started);
        }
    }
}

fn finish(pgid: i32, status: sys::WaitStatus, sink: &Arc<dyn ChildSink>, started: Instant) {
    sink.exited(Exit {
        status,
        duration_ms: started.elapsed().as_secs_f64() * 1000.0,
    });
    lingering_groups(Some(pgid));
}

/// Forgets process groups that have no member left; `add` is a group whose leader just exited.
fn lingering_groups(add: Option<i32>) {
    static LINGERING: Mutex<Vec<i32>> = Mutex::new(Vec::new());
    let mut groups = lock(&LINGERING);
    groups.extend(add);
    groups.retain(|&pgid| {
        let alive = !matches!(sys::kill(-pgid, 0), Err(e) if e.raw_os_error() == Some(libc::ESRCH));
        if !alive {
            watchdog::unregister(pgid);
        }
        alive
    });
}

fn run(epoll: RawFd) {
    let mut events = [libc::epoll_event { events: 0, u64: 0 }; 64];
    loop {
        // SAFETY: `events` is a valid buffer of 64 entries.
        let n = unsafe { libc::epoll_wait(epoll, events.as_mut_ptr(), 64, 1000) };
        if n < 0 {
            continue;
        }
        let Some(r) = reaper() else { return };
        for ev in &events[..n as usize] {
            let fd = ev.u64 as RawFd;
            let reaped = {
                let map = lock(&r.watched);
                map.get(&fd).and_then(|w| w.handle.reap(false))
            };
            if let Some(status) = reaped {
                let w = lock(&r.watched).remove(&fd);
                if let Some(w) = w {
                    // SAFETY: `fd` is still open (owned by `w`) while we remove it from epoll.
                    unsafe {
                        libc::epoll_ctl(epoll, libc::EPOLL_CTL_DEL, fd, std::ptr::null_mut())
                    };
                    finish(w.pgid, status, &w.sink, w.started);
                    drop(w.pidfd);
                }
            }
        }
        lingering_groups(None);
    }
}
