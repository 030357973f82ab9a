//! Unix stream sockets: a filesystem path or a name in Linux's abstract
//! namespace, the socket file left by a crashed server, and the peer's
//! credentials.

use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use mio::net::{UnixListener, UnixStream};
use socket2::{Domain, SockAddr, Socket, Type};

use super::{Addr, Listening, PeerCred, Stream};
use crate::config::Config;

/// The socket address of a path or an abstract name.
fn sockaddr(addr: &Addr) -> io::Result<SockAddr> {
    match addr {
        Addr::Path(p) => SockAddr::unix(p),
        Addr::Abstract(name) => {
            // socket2 takes an abstract name as a path beginning with NUL.
            let mut bytes = vec![0u8];
            bytes.extend_from_slice(name);
            SockAddr::unix(<std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&bytes))
        }
        Addr::Unnamed | Addr::Inet(_) => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a Unix socket name",
        )),
    }
}

fn socket() -> io::Result<Socket> {
    Socket::new(Domain::UNIX, Type::STREAM.nonblocking().cloexec(), None)
}

/// The socket file a listener created, so that closing the listener
/// removes it, but only while it is still that file (another server may
/// have replaced it since). Node.js removes it the same way; Python's
/// asyncio leaves it unless asked.
#[derive(Debug)]
pub(crate) struct SocketFile {
    path: PathBuf,
    dev: u64,
    ino: u64,
}

impl Drop for SocketFile {
    fn drop(&mut self) {
        if let Ok(m) = std::fs::symlink_metadata(&self.path) {
            if (m.dev(), m.ino()) == (self.dev, self.ino) {
                if let Err(e) = std::fs::remove_file(&self.path) {
                    log::warn!("cannot remove {}: {e}", self.path.display());
                }
            }
        }
    }
}

pub(super) fn listen(addr: &Addr, remove_stale: bool, config: &Config) -> io::Result<Listening> {
    let sa = sockaddr(addr)?;
    let socket = socket()?;
    if let Err(e) = socket.bind(&sa) {
        let Addr::Path(path) = addr else {
            return Err(e);
        };
        if e.kind() != io::ErrorKind::AddrInUse {
            return Err(e);
        }
        if !remove_stale || !is_stale(path)? {
            return Err(in_use(path, remove_stale));
        }
        log::info!("removing the stale socket file {}", path.display());
        std::fs::remove_file(path)?;
        socket.bind(&sa)?;
    }
    socket.listen(config.backlog)?;
    let file = match addr {
        Addr::Path(path) => {
            let m = std::fs::symlink_metadata(path)?;
            Some(SocketFile {
                path: path.clone(),
                dev: m.dev(),
                ino: m.ino(),
            })
        }
        _ => None,
    };
    let listener = std::os::unix::net::UnixListener::from(socket);
    Ok(Listening::Unix {
        listener: UnixListener::from_std(listener),
        _file: file,
    })
}

/// Whether `path` is a socket file no one listens on: connecting to it is
/// refused.
fn is_stale(path: &Path) -> io::Result<bool> {
    let m = std::fs::symlink_metadata(path)?;
    if !m.file_type().is_socket() {
        return Ok(false);
    }
    let probe = Socket::new(Domain::UNIX, Type::STREAM.cloexec(), None)?;
    match probe.connect(&SockAddr::unix(path)?) {
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Ok(true),
        // Someone accepts there, or its queue is full: in use.
        _ => Ok(false),
    }
}

fn in_use(path: &Path, asked_to_remove: bool) -> io::Error {
    let why = if asked_to_remove {
        "another process listens there, or it is not a socket"
    } else {
        "another process listens there, or a crashed server left its socket file \
         (Bind::remove_stale removes a file no one listens on)"
    };
    io::Error::new(
        io::ErrorKind::AddrInUse,
        format!("{} is in use: {why}", path.display()),
    )
}

/// A non-blocking connect. On a Unix socket it completes at once, or fails
/// at once: `EAGAIN` means the listener's queue is full, and is reported
/// as `WouldBlock` (nothing is in flight to wait for).
pub(super) fn connect(addr: &Addr) -> io::Result<(Stream, Option<io::Error>)> {
    let sa = sockaddr(addr)?;
    let socket = socket()?;
    let early = match socket.connect(&sa) {
        Ok(()) => None,
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => None,
        Err(e) => Some(e),
    };
    let stream = std::os::unix::net::UnixStream::from(socket);
    Ok((Stream::Unix(UnixStream::from_std(stream)), early))
}

pub(super) fn peer_cred(s: &UnixStream) -> io::Result<PeerCred> {
    let c = rustix::net::sockopt::socket_peercred(s)?;
    Ok(PeerCred {
        pid: c.pid.as_raw_nonzero().get() as u32,
        uid: c.uid.as_raw(),
        gid: c.gid.as_raw(),
    })
}
