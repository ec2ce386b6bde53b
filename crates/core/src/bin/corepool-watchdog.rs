//! The subreaper helper process of corepool's children (see `supervisor::subreaper`). Started by
//! the addon with its request socket on fd 3 and its event pipe on fd 4; not meant to be run by
//! hand.

#[cfg(target_os = "linux")]
fn main() {
    corepool_core::supervisor::subreaper::serve()
}

#[cfg(not(target_os = "linux"))]
fn main() {
    eprintln!("corepool-watchdog: Linux only");
    std::process::exit(1);
}
