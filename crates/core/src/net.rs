//! A listening TCP socket with `SO_REUSEPORT`, so several processes (a supervised group of
//! servers) can accept on one port with the kernel balancing connections.

use std::net::{IpAddr, SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};

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
