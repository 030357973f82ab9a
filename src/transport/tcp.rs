//! TCP sockets, made with socket2 so that the backlog, `SO_REUSEPORT` and a
//! source address are ours to choose (mio's `bind` fixes the backlog at
//! 128).

use std::io;
use std::net::SocketAddr;

use mio::net::{TcpListener, TcpStream};
use socket2::{Domain, Protocol, Socket, Type};

use super::Stream;
use crate::config::Config;

pub(super) fn listen(addr: SocketAddr, config: &Config) -> io::Result<TcpListener> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    if config.reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    socket.listen(config.backlog)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A non-blocking connect: the socket, and the error if it failed at once.
pub(super) fn connect(
    addr: SocketAddr,
    from: Option<SocketAddr>,
) -> io::Result<(Stream, Option<io::Error>)> {
    let socket = Socket::new(
        Domain::for_address(addr),
        Type::STREAM.nonblocking().cloexec(),
        Some(Protocol::TCP),
    )?;
    if let Some(local) = from {
        socket.bind(&local.into())?;
    }
    let early = match socket.connect(&addr.into()) {
        Ok(()) => None,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
        Err(e) => Some(e),
    };
    Ok((Stream::Tcp(TcpStream::from_std(socket.into())), early))
}
