//! Transports: TCP and Unix stream sockets behind one internal interface
//! that the connection core drives, and the public names of their
//! addresses ([`Addr`]), of where a listener listens ([`Bind`]) and of
//! where a connection goes ([`Connect`]).
//!
//! The core sees a [`Stream`]: read, write, flush a queue, shut the write
//! half, ask for a pending error or a connect's outcome, close with or
//! without a reset. Everything above it (the state machine, lossless and
//! lingering closes, timeouts, backpressure, drains, statistics) is the
//! same for every transport. Where a transport differs, it says so here
//! and in the method docs of [`Conn`](crate::Conn).
//!
//! | | TCP | Unix stream socket |
//! |---|---|---|
//! | our FIN (`shutdown_write`) | FIN | the peer reads end of file |
//! | close with unread input | RST: the peer reads what reached it, then `ECONNRESET` | the same: every byte we sent, then `ECONNRESET` |
//! | `abort` | RST (`SO_LINGER` 0) | no reset exists: closed at once, queued output dropped; the peer reads end of file, or `ECONNRESET` if bytes it sent were left unread |
//! | peer credentials | none | `SO_PEERCRED`: pid, uid, gid ([`Conn::peer_cred`](crate::Conn::peer_cred)) |
//! | `SO_REUSEPORT` groups | yes | no |

mod tcp;
mod unix;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use crate::config::Config;
use crate::outq::{Flush, OutQueue};

pub(crate) use unix::SocketFile;

/// The address of a socket, for either transport.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Addr {
    /// A TCP socket: an IPv4 or IPv6 address and a port.
    Inet(SocketAddr),
    /// A Unix stream socket bound to a filesystem path.
    Path(PathBuf),
    /// A Unix stream socket in Linux's abstract namespace (no file; the
    /// name without its leading NUL byte).
    Abstract(Vec<u8>),
    /// A Unix stream socket that is not bound to a name (a client that did
    /// not bind, or a socketpair).
    Unnamed,
}

impl Addr {
    /// The Internet address, if this is a TCP socket's.
    pub fn inet(&self) -> Option<SocketAddr> {
        match self {
            Addr::Inet(a) => Some(*a),
            _ => None,
        }
    }

    /// Whether this is a Unix socket's address.
    pub fn is_unix(&self) -> bool {
        !matches!(self, Addr::Inet(_))
    }

    fn from_unix(addr: &std::os::unix::net::SocketAddr) -> Addr {
        use std::os::linux::net::SocketAddrExt;
        if let Some(path) = addr.as_pathname() {
            Addr::Path(path.to_path_buf())
        } else if let Some(name) = addr.as_abstract_name() {
            Addr::Abstract(name.to_vec())
        } else {
            Addr::Unnamed
        }
    }
}

impl From<SocketAddr> for Addr {
    fn from(a: SocketAddr) -> Addr {
        Addr::Inet(a)
    }
}

impl fmt::Display for Addr {
    /// `127.0.0.1:80`, `/run/app.sock`, `@name` (abstract), `(unnamed)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Inet(a) => write!(f, "{a}"),
            Addr::Path(p) => write!(f, "{}", p.display()),
            Addr::Abstract(name) => write!(f, "@{}", String::from_utf8_lossy(name)),
            Addr::Unnamed => f.write_str("(unnamed)"),
        }
    }
}

impl std::str::FromStr for Addr {
    type Err = io::Error;

    /// `IP:PORT` (TCP), a path beginning with `/` or `.` (a Unix socket
    /// file), or `@name` (a Unix socket in the abstract namespace).
    fn from_str(s: &str) -> io::Result<Addr> {
        if let Some(name) = s.strip_prefix('@') {
            return Ok(Addr::Abstract(name.as_bytes().to_vec()));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Ok(Addr::Path(PathBuf::from(s)));
        }
        s.parse().map(Addr::Inet).map_err(|_| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{s:?} is not IP:PORT, a socket path (/... or ./...) or @name"),
            )
        })
    }
}

impl PartialEq<SocketAddr> for Addr {
    fn eq(&self, other: &SocketAddr) -> bool {
        self.inet() == Some(*other)
    }
}

/// The credentials of the process at the other end of a Unix socket, as
/// the kernel recorded them when the connection was made (`SO_PEERCRED`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct PeerCred {
    /// Its process id (of the process that connected, or that listened).
    pub pid: u32,
    /// Its effective user id.
    pub uid: u32,
    /// Its effective group id.
    pub gid: u32,
}

/// Where a listener listens; see [`Reactor::listen`](crate::Reactor::listen).
/// A [`SocketAddr`] converts into one (TCP).
///
/// # Examples
///
/// ```
/// use halfclose::Bind;
/// let tcp: Bind = "127.0.0.1:0".parse::<std::net::SocketAddr>()?.into();
/// let file = Bind::unix("/run/app/app.sock").remove_stale();
/// let named = Bind::unix_abstract("app");
/// # let _ = (tcp, file, named);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Bind {
    pub(crate) addr: Addr,
    pub(crate) remove_stale: bool,
    /// A string that did not parse (see `From<&str>`): `listen` reports it.
    pub(crate) invalid: Option<String>,
}

impl Bind {
    /// Listen on TCP `addr`; port 0 lets the kernel pick one.
    pub fn tcp(addr: SocketAddr) -> Bind {
        Bind::at(Addr::Inet(addr))
    }

    fn at(addr: Addr) -> Bind {
        Bind {
            addr,
            remove_stale: false,
            invalid: None,
        }
    }

    /// Listen on a Unix stream socket at `path`. The socket file is
    /// created there, and removed when the listener closes (if it is still
    /// ours). If the path exists, listening fails with `AddrInUse`, unless
    /// [`remove_stale`](Bind::remove_stale) was asked for.
    pub fn unix(path: impl AsRef<Path>) -> Bind {
        Bind::at(Addr::Path(path.as_ref().to_path_buf()))
    }

    /// Listen on a Unix stream socket named `name` in Linux's abstract
    /// namespace: no file, the name goes away with the socket.
    pub fn unix_abstract(name: impl AsRef<[u8]>) -> Bind {
        Bind::at(Addr::Abstract(name.as_ref().to_vec()))
    }

    /// The address to listen on, or why the string given was not one.
    pub(crate) fn addr(&self) -> io::Result<&Addr> {
        match &self.invalid {
            None => Ok(&self.addr),
            Some(why) => Err(io::Error::new(io::ErrorKind::InvalidInput, why.clone())),
        }
    }

    /// For a Unix socket path: if a socket file is already there but no one
    /// listens on it (connecting is refused: the file a crashed server left
    /// behind), remove it first. A path where someone listens, or that is
    /// not a socket, is never removed.
    pub fn remove_stale(mut self) -> Bind {
        self.remove_stale = true;
        self
    }
}

impl From<SocketAddr> for Bind {
    fn from(addr: SocketAddr) -> Bind {
        Bind::tcp(addr)
    }
}

impl From<Addr> for Bind {
    fn from(addr: Addr) -> Bind {
        Bind::at(addr)
    }
}

impl From<&str> for Bind {
    /// As [`Addr`]'s `FromStr`: `"127.0.0.1:0"`, `"/run/app.sock"`,
    /// `"@app"`. A string that is none of these makes
    /// [`Reactor::listen`](crate::Reactor::listen) fail with
    /// `InvalidInput`.
    fn from(s: &str) -> Bind {
        match s.parse() {
            Ok(addr) => Bind::at(addr),
            Err(e) => Bind {
                invalid: Some(e.to_string()),
                ..Bind::at(Addr::Unnamed)
            },
        }
    }
}

/// Where and how to make an outbound connection; see
/// [`Ctx::connect`](crate::Ctx::connect). A [`SocketAddr`] converts into
/// one (TCP).
///
/// # Examples
///
/// ```
/// use halfclose::Connect;
/// let plain: Connect = "127.0.0.1:7000".parse::<std::net::SocketAddr>()?.into();
/// let from = Connect::to("127.0.0.1:7000".parse()?).from("127.0.0.2:0".parse()?);
/// let local = Connect::unix("/run/app/app.sock");
/// # let _ = (plain, from, local);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Connect {
    pub(crate) addr: Addr,
    pub(crate) from: Option<SocketAddr>,
}

impl Connect {
    /// Connect over TCP to `addr`, from an address the kernel picks.
    pub fn to(addr: SocketAddr) -> Connect {
        Connect {
            addr: Addr::Inet(addr),
            from: None,
        }
    }

    /// Connect to the Unix stream socket at `path`.
    pub fn unix(path: impl AsRef<Path>) -> Connect {
        Connect {
            addr: Addr::Path(path.as_ref().to_path_buf()),
            from: None,
        }
    }

    /// Connect to the Unix stream socket named `name` in Linux's abstract
    /// namespace.
    pub fn unix_abstract(name: impl AsRef<[u8]>) -> Connect {
        Connect {
            addr: Addr::Abstract(name.as_ref().to_vec()),
            from: None,
        }
    }

    /// Over TCP, bind to `local` first (port 0 lets the kernel pick the
    /// port): spreading source addresses over 127.0.0.0/8 gets a load
    /// generator past the ephemeral-port limit of one source address.
    /// Ignored for a Unix socket.
    ///
    /// # Notes
    ///
    /// Binding to port 0 reserves the port at `bind` time, before the
    /// destination is known, so Linux cannot reuse it toward another
    /// destination (`IP_BIND_ADDRESS_NO_PORT` would lift that, but no
    /// dependency of this crate exposes it): under heavy churn a single
    /// source address runs out of ports sooner than a plain connect, with
    /// `AddrInUse`. Use several sources.
    pub fn from(mut self, local: SocketAddr) -> Connect {
        self.from = Some(local);
        self
    }
}

impl From<SocketAddr> for Connect {
    fn from(addr: SocketAddr) -> Connect {
        Connect::to(addr)
    }
}

impl fmt::Display for Connect {
    /// The destination, and the source when one was chosen.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.addr)?;
        if let Some(from) = self.from {
            write!(f, " (from {from})")?;
        }
        Ok(())
    }
}

impl From<Addr> for Connect {
    fn from(addr: Addr) -> Connect {
        Connect { addr, from: None }
    }
}

// ------------------------------------------------------------------ streams

/// A connected socket of either transport: what the core reads, writes,
/// shuts and closes.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Stream {
    pub(crate) fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
        }
    }

    pub(crate) fn write(&self, data: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Stream::Tcp(s) => (&*s).write(data),
            Stream::Unix(s) => (&*s).write(data),
        }
    }

    /// Write queued output until it drains or the socket would block.
    pub(crate) fn flush(&self, q: &mut OutQueue) -> (usize, io::Result<Flush>) {
        match self {
            Stream::Tcp(s) => q.flush_to(s),
            Stream::Unix(s) => q.flush_to(s),
        }
    }

    /// `shutdown(SHUT_WR)`: our FIN, or end of file for a Unix peer.
    pub(crate) fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write),
        }
    }

    /// `SO_ERROR`.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Tcp(s) => s.take_error(),
            Stream::Unix(s) => s.take_error(),
        }
    }

    /// Whether a non-blocking connect completed (`Ok(true)`), is still in
    /// flight (`Ok(false)`), or failed.
    pub(crate) fn connect_outcome(&self) -> io::Result<bool> {
        if let Some(e) = self.take_error()? {
            return Err(e);
        }
        let connected = match self {
            Stream::Tcp(s) => s.peer_addr().map(drop),
            Stream::Unix(s) => s.peer_addr().map(drop),
        };
        match connected {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Make the coming `close(2)` send RST (TCP: `SO_LINGER` 0). A Unix
    /// socket has no reset; it just closes.
    pub(crate) fn reset_on_close(&self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO)),
            Stream::Unix(_) => Ok(()),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.peer_addr().map(Addr::Inet),
            Stream::Unix(s) => s.peer_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Tcp(s) => s.local_addr().map(Addr::Inet),
            Stream::Unix(s) => s.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(nodelay),
            Stream::Unix(_) => Ok(()), // nothing to delay: no Nagle on Unix sockets
        }
    }

    pub(crate) fn peer_cred(&self) -> io::Result<PeerCred> {
        match self {
            Stream::Tcp(_) => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "peer credentials are known for Unix sockets only",
            )),
            Stream::Unix(s) => unix::peer_cred(s),
        }
    }

    /// Connect to `to` without blocking; the outcome comes with the first
    /// writability (or error) event.
    pub(crate) fn connect(to: &Connect) -> io::Result<(Stream, Option<io::Error>)> {
        match &to.addr {
            Addr::Inet(addr) => tcp::connect(*addr, to.from),
            addr => unix::connect(addr),
        }
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
        }
    }
}

// ------------------------------------------------------------------ listening sockets

/// A listening socket of either transport.
#[derive(Debug)]
pub(crate) enum Listening {
    Tcp(TcpListener),
    Unix {
        listener: UnixListener,
        /// The socket file it created, removed when it closes.
        _file: Option<SocketFile>,
    },
}

impl Listening {
    /// A listening socket with the configured backlog (and, for TCP,
    /// `SO_REUSEADDR` and `SO_REUSEPORT` if configured).
    pub(crate) fn bind(bind: &Bind, config: &Config) -> io::Result<Listening> {
        match bind.addr()? {
            Addr::Inet(addr) => tcp::listen(*addr, config).map(Listening::Tcp),
            addr => unix::listen(addr, bind.remove_stale, config),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listening::Tcp(l) => l.local_addr().map(Addr::Inet),
            Listening::Unix { listener: l, .. } => l.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    /// Accept one connection.
    pub(crate) fn accept(&self) -> io::Result<(Stream, Addr)> {
        match self {
            Listening::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Addr::Inet(a))),
            Listening::Unix { listener: l, .. } => l
                .accept()
                .map(|(s, a)| (Stream::Unix(s), Addr::from_unix(&a))),
        }
    }
}

impl Source for Listening {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.register(r, t, i),
            Listening::Unix { listener: l, .. } => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.reregister(r, t, i),
            Listening::Unix { listener: l, .. } => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.deregister(r),
            Listening::Unix { listener: l, .. } => l.deregister(r),
        }
    }
}
