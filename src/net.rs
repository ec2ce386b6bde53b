//! A listening TCP socket with `SO_REUSEPORT`, so several processes (a supervised group of
//! servers) can accept on one port with the kernel balancing connections. Node 20 cannot ask
//! for it (`reusePort` arrived in Node 22.12/23.1), but it can `listen({ fd })` on our socket.

use std::net::IpAddr;

use corepool_core::net::reuse_port_listener;
use napi::bindgen_prelude::Either;
use napi_derive::napi;

use crate::error::{js_error, CodedError, ErrorCode, SystemFailure};

/// Listens on `host:port` with SO_REUSEPORT; returns the fd for `server.listen({ fd })`.
#[napi(js_name = "listenReusePort")]
pub fn listen_reuse_port(
    host: String,
    port: u16,
) -> std::result::Result<Either<i32, SystemFailure>, CodedError> {
    let ip: IpAddr = host.parse().map_err(|_| {
        js_error(
            ErrorCode::InvalidArg,
            format!("host must be an IP address, got {host:?}"),
        )
    })?;
    let listener = match reuse_port_listener(ip, port, 511) {
        Ok(listener) => listener,
        Err((e, syscall)) => {
            return Ok(Either::B(SystemFailure {
                errno: e.raw_os_error().unwrap_or(libc::EIO),
                syscall: syscall.to_string(),
            }))
        }
    };
    #[cfg(unix)]
    {
        use std::os::fd::IntoRawFd;
        Ok(Either::A(listener.into_raw_fd()))
    }
    #[cfg(not(unix))]
    {
        drop(listener);
        Err(js_error(
            ErrorCode::InvalidArg,
            "listenReusePort needs a Unix system",
        ))
    }
}
