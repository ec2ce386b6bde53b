//! A listening TCP socket with `SO_REUSEPORT`, so several processes (a supervised group of
//! servers) can accept on one port with the kernel balancing connections. Node 20 cannot ask
//! for it (`reusePort` arrived in Node 22.12/23.1), but it can `listen({ fd })` on our socket.

use std::net::{IpAddr, SocketAddr, TcpListener};

use napi::bindgen_prelude::Either;
use napi_derive::napi;
use socket2::{Domain, Protocol, Socket, Type};

use crate::error::{js_error, CodedError, ErrorCode, SystemFailure};

/// Opens a listening socket on `host:port` with SO_REUSEADDR and SO_REUSEPORT and returns its
/// file descriptor (close-on-exec, for `server.listen({ fd })`).
/// On failure, the error and the system call that failed.
pub fn reuse_port_listener(
    host: IpAddr,
    port: u16,
    backlog: i32,
) -> Result<TcpListener, (std::io::Error, &'static str)> {
    let addr = SocketAddr::new(host, port);
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .map_err(|e| (e, "socket"))?;
    socket
        .set_reuse_address(true)
        .map_err(|e| (e, "setsockopt"))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos"))))]
    socket.set_reuse_port(true).map_err(|e| (e, "setsockopt"))?;
    socket.set_nonblocking(true).map_err(|e| (e, "fcntl"))?;
    socket.bind(&addr.into()).map_err(|e| (e, "bind"))?;
    socket.listen(backlog).map_err(|e| (e, "listen"))?;
    Ok(socket.into())
}

/// Listens on `host:port` with SO_REUSEPORT; returns the fd for `server.listen({ fd })`.
#[allow(dead_code)] // registered with Node by #[napi]
#[napi(js_name = "listenReusePort")]
pub fn listen_reuse_port(
    host: String,
    port: u32,
) -> std::result::Result<Either<i32, SystemFailure>, CodedError> {
    let ip: IpAddr = host.parse().map_err(|_| {
        js_error(
            ErrorCode::InvalidArg,
            format!("host must be an IP address, got {host:?}"),
        )
    })?;
    let port = u16::try_from(port).map_err(|_| {
        js_error(
            ErrorCode::InvalidArg,
            format!("port must be 0 to 65535, got {port}"),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_listeners_share_one_port() {
        let a = reuse_port_listener("127.0.0.1".parse().unwrap(), 0, 16).unwrap();
        let port = a.local_addr().unwrap().port();
        let b = reuse_port_listener("127.0.0.1".parse().unwrap(), port, 16).unwrap();
        assert_eq!(b.local_addr().unwrap().port(), port);
    }
}
