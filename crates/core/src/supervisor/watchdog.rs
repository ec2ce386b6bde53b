//! The no-orphans watchdog for grandchildren.
//!
//! `PR_SET_PDEATHSIG` only reaches direct children. Grandchildren stay in their parent's process
//! group, so a small `/bin/sh` process, started once, keeps the list of our children's process
//! groups (read from a pipe whose only write end we hold). When this process dies — however it
//! dies, SIGKILL included — the pipe reaches end-of-file and the watchdog kills every group still
//! listed, then exits. It lives in its own process group and ignores terminal signals, so it
//! outlives us long enough to do that.
//!
//! A child lists its own group, from inside `clone` before `execve` (see `sys::child_main`), so no
//! code of the new program runs before it is protected.

use std::io::Write;
use std::os::fd::{AsRawFd, RawFd};
use std::sync::Mutex;

use super::sys;
use crate::sync::lock;

const SCRIPT: &str = r#"trap '' HUP INT QUIT TERM PIPE
g=' '
while IFS= read -r l; do
  case $l in
    +*) g="$g${l#+} " ;;
    -*) p=" ${l#-} "; case $g in *"$p"*) g="${g%%"$p"*} ${g#*"$p"}" ;; esac ;;
  esac
done
for p in $g; do kill -KILL -"$p" 2>/dev/null; done
"#;

enum State {
    NotStarted,
    Running { pipe: std::fs::File, pid: i32 },
    Unavailable,
}

static WATCHDOG: Mutex<State> = Mutex::new(State::NotStarted);
/// The groups listed with the watchdog (so a replacement watchdog gets the whole list).
static GROUPS: Mutex<Vec<i32>> = Mutex::new(Vec::new());

fn start() -> Option<(std::fs::File, i32)> {
    let (read, write) = sys::pipe().ok()?;
    let null = sys::open("/dev/null", libc::O_RDWR).ok()?;
    let c = |s: &str| std::ffi::CString::new(s).ok();
    let plan = sys::Plan::helper(
        c("/bin/sh")?,
        vec![c("sh")?, c("-c")?, c(SCRIPT)?],
        vec![c("PATH=/usr/local/bin:/usr/bin:/bin")?],
        vec![
            (read.as_raw_fd(), 0),
            (null.as_raw_fd(), 1),
            (null.as_raw_fd(), 2),
        ],
    );
    let pid = sys::spawn(&plan).ok()?;
    // Never block a spawn on a stalled watchdog: a full pipe drops the entry instead.
    sys::set_nonblocking(&write).ok()?;
    let mut pipe = std::fs::File::from(write);
    // A replacement (the previous watchdog was killed) takes over the groups still listed.
    let listed: String = lock(&GROUPS).iter().map(|g| format!("+{g}\n")).collect();
    let _ = pipe.write(listed.as_bytes());
    Some((pipe, pid))
}

/// Makes sure a live watchdog runs (started, or restarted when it died: its pipe has no reader
/// left, which `poll` reports as POLLERR on our end).
fn ensure(state: &mut State) {
    if let State::Running { pipe, pid } = state {
        if sys::write_end_orphaned(pipe.as_raw_fd()) {
            // It is our child: reap it, so it does not stay a zombie.
            let _ = sys::waitpid(*pid, false);
            *state = State::NotStarted;
        }
    }
    if let State::NotStarted = state {
        *state = match start() {
            Some((pipe, pid)) => State::Running { pipe, pid },
            None => State::Unavailable,
        };
    }
}

fn send(line: &str) {
    let mut state = lock(&WATCHDOG);
    ensure(&mut state);
    if let State::Running { pipe, .. } = &mut *state {
        match pipe.write(line.as_bytes()) {
            Ok(n) if n == line.len() => {}
            // Full pipe (the watchdog is stopped or starved): this entry is lost, nothing blocks.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            // The watchdog died meanwhile: the next use starts a fresh one with the whole list.
            _ => {}
        }
    }
}

/// Runs `f` with the watchdog's pipe (started or restarted if needed; `None` if it cannot run).
/// The lock is held meanwhile, so the descriptor stays open while a child being cloned writes
/// to it.
pub fn with_fd<T>(f: impl FnOnce(Option<RawFd>) -> T) -> T {
    let mut state = lock(&WATCHDOG);
    ensure(&mut state);
    match &*state {
        State::Running { pipe, .. } => f(Some(pipe.as_raw_fd())),
        _ => f(None),
    }
}

/// Records a group that a child listed itself (from inside `clone`).
pub fn listed(pgid: i32) {
    lock(&GROUPS).push(pgid);
}

/// Forgets a process group that has no member left.
pub fn unregister(pgid: i32) {
    lock(&GROUPS).retain(|&g| g != pgid);
    let started = !matches!(*lock(&WATCHDOG), State::NotStarted);
    if started {
        send(&format!("-{pgid}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::SCRIPT;
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    fn sleeper() -> std::process::Child {
        Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    fn dies(child: &mut std::process::Child) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn script_kills_listed_groups_at_end_of_input_and_forgets_removed_ones() {
        let mut listed = sleeper();
        let mut removed = sleeper();
        let mut wd = Command::new("/bin/sh")
            .args(["-c", SCRIPT])
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = wd.stdin.take().unwrap();
        write!(
            input,
            "+{}\n+{}\n-{}\n",
            listed.id(),
            removed.id(),
            removed.id()
        )
        .unwrap();
        drop(input);
        wd.wait().unwrap();
        assert!(dies(&mut listed), "a listed group survived");
        assert!(
            removed.try_wait().unwrap().is_none(),
            "a removed group was killed"
        );
        removed.kill().unwrap();
        removed.wait().unwrap();
    }
}
