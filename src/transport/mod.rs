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
#[cfg(feature = "tls")]
mod tls;
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
use crate::state::Io;

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

/// What a TLS handshake settled, for [`Conn::tls`](crate::Conn::tls)
/// (feature `tls`).
#[cfg(feature = "tls")]
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The protocol version (`TLSv1_3`, `TLSv1_2`).
    pub version: Option<rustls::ProtocolVersion>,
    /// The protocol ALPN settled on, if any (`h2`, `http/1.1`).
    pub alpn_protocol: Option<Vec<u8>>,
    /// On the server side, the name the client asked for (SNI).
    pub server_name: Option<String>,
    /// The peer's certificate chain, DER-encoded, end entity first; empty
    /// when it sent none (a client without a certificate).
    pub peer_certificates: Vec<Vec<u8>>,
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
#[derive(Clone, Debug)]
pub struct Bind {
    pub(crate) addr: Addr,
    pub(crate) remove_stale: bool,
    /// A string that did not parse (see `From<&str>`): `listen` reports it.
    pub(crate) invalid: Option<String>,
    /// Serve TLS with this configuration.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
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
            #[cfg(feature = "tls")]
            tls: None,
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

    /// Serve TLS over this TCP listener (feature `tls`): each accepted
    /// connection makes its handshake with `config` before
    /// [`Handler::handle_connect`](crate::Handler::handle_connect), under
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout).
    /// Listening fails with `InvalidInput` on a Unix socket.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: std::sync::Arc<rustls::ServerConfig>) -> Bind {
        self.tls = Some(config);
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
#[derive(Clone, Debug)]
pub struct Connect {
    pub(crate) addr: Addr,
    pub(crate) from: Option<SocketAddr>,
    /// Speak TLS to the server.
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<TlsClient>,
}

/// A TLS client's configuration and the name it asks the server for.
#[cfg(feature = "tls")]
#[derive(Clone, Debug)]
pub(crate) struct TlsClient {
    pub(crate) config: std::sync::Arc<rustls::ClientConfig>,
    pub(crate) name: rustls::pki_types::ServerName<'static>,
}

impl Connect {
    /// Connect over TCP to `addr`, from an address the kernel picks.
    pub fn to(addr: SocketAddr) -> Connect {
        Connect::at(Addr::Inet(addr))
    }

    /// Connect to the Unix stream socket at `path`.
    pub fn unix(path: impl AsRef<Path>) -> Connect {
        Connect::at(Addr::Path(path.as_ref().to_path_buf()))
    }

    /// Connect to the Unix stream socket named `name` in Linux's abstract
    /// namespace.
    pub fn unix_abstract(name: impl AsRef<[u8]>) -> Connect {
        Connect::at(Addr::Abstract(name.as_ref().to_vec()))
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

    /// Speak TLS to the server (feature `tls`), asking for `server_name`
    /// (SNI, and the name its certificate must carry). The handshake runs
    /// after the TCP connect, under
    /// [`Config::handshake_timeout`](crate::Config::handshake_timeout);
    /// [`Handler::handle_connect`](crate::Handler::handle_connect) comes
    /// after it. Writes made before are queued.
    #[cfg(feature = "tls")]
    pub fn tls(
        mut self,
        config: std::sync::Arc<rustls::ClientConfig>,
        server_name: rustls::pki_types::ServerName<'static>,
    ) -> Connect {
        self.tls = Some(TlsClient {
            config,
            name: server_name,
        });
        self
    }

    fn at(addr: Addr) -> Connect {
        Connect {
            addr,
            from: None,
            #[cfg(feature = "tls")]
            tls: None,
        }
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
        Connect::at(addr)
    }
}

impl From<&str> for Connect {
    /// As [`Addr`]'s `FromStr`; a string that is none of its forms makes
    /// [`Ctx::connect`](crate::Ctx::connect) return `InvalidInput`.
    fn from(s: &str) -> Connect {
        // An unnamed address cannot be connected to: the connect fails.
        Connect::at(s.parse().unwrap_or(Addr::Unnamed))
    }
}

// ------------------------------------------------------------------ streams

/// What one read gave.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Input {
    /// `n` bytes; `drained`: the read proves the socket's receive queue is
    /// now empty (a short read of a plain socket).
    Data(usize, bool),
    /// The peer's end: a FIN, or TLS's `close_notify`.
    Fin,
    /// TLS only: a TCP FIN without `close_notify` (a possible truncation).
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Truncated,
    /// Nothing to read now.
    WouldBlock,
}

/// How far a connection's handshake got (TLS; plain sockets have none).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Handshake {
    Done,
    /// Waiting for the peer; `write_blocked`: our messages are not all out.
    #[cfg_attr(not(feature = "tls"), allow(dead_code))]
    Pending {
        write_blocked: bool,
    },
}

/// A connected socket of any transport: what the core reads, writes,
/// shuts and closes.
#[derive(Debug)]
pub(crate) enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(Box<tls::TlsStream>),
}

/// A plain socket's read as an [`Input`].
fn plain_input(read: io::Result<usize>, capacity: usize) -> io::Result<Input> {
    match read {
        Ok(0) => Ok(Input::Fin),
        Ok(n) => Ok(Input::Data(n, n < capacity)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(Input::WouldBlock),
        Err(e) => Err(e),
    }
}

impl Stream {
    /// The TCP socket under a TCP or TLS stream.
    fn tcp(&self) -> Option<&TcpStream> {
        match self {
            Stream::Tcp(s) => Some(s),
            Stream::Unix(_) => None,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => Some(&t.tcp),
        }
    }

    /// One read: application bytes to deliver, or, if not `deliver`, bytes
    /// to throw away (a lingering close; TLS decrypts them, so that they
    /// count as plaintext, until the peer's end).
    pub(crate) fn read(&mut self, buf: &mut [u8], deliver: bool) -> io::Result<Input> {
        use std::io::Read;
        let capacity = buf.len();
        #[cfg(not(feature = "tls"))]
        let _ = deliver; // plain sockets read the same either way
        match self {
            Stream::Tcp(s) => plain_input((&*s).read(buf), capacity),
            Stream::Unix(s) => plain_input((&*s).read(buf), capacity),
            #[cfg(feature = "tls")]
            Stream::Tls(t) if deliver => t.read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.discard(buf),
        }
    }

    pub(crate) fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        use std::io::Write;
        match self {
            Stream::Tcp(s) => (&*s).write(data),
            Stream::Unix(s) => (&*s).write(data),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.write(data),
        }
    }

    /// [`write`](Stream::write), telling TCP that our FIN or more bytes
    /// follow (`MSG_MORE`): a segment that is not full waits for them and
    /// leaves with them. Other transports write as usual.
    pub(crate) fn write_more(&mut self, data: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => {
                rustix::net::send(&*s, data, rustix::net::SendFlags::MORE).map_err(io::Error::from)
            }
            other => other.write(data),
        }
    }

    /// Send a segment that [`write_more`](Stream::write_more) left waiting
    /// (clearing `TCP_CORK` pushes it, under the usual Nagle rule).
    pub(crate) fn push(&mut self) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => {
                rustix::net::sockopt::set_tcp_cork(&*s, false).map_err(io::Error::from)
            }
            _ => Ok(()),
        }
    }

    /// Write queued output (and, for TLS, the ciphertext it holds) until it
    /// drains or the socket would block.
    pub(crate) fn flush(&mut self, q: &mut OutQueue) -> (usize, io::Result<Flush>) {
        match self {
            Stream::Tcp(s) => q.flush_to(&*s),
            Stream::Unix(s) => q.flush_to(&*s),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.flush(q),
        }
    }

    /// Write the output the stream holds of its own (TLS: ciphertext the
    /// socket did not take) until it drains or the socket would block.
    pub(crate) fn flush_own(&mut self) -> io::Result<Flush> {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => Ok(Flush::Drained),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.send_held(),
        }
    }

    /// What the state machine must know about this transport.
    pub(crate) fn io(&self) -> Io {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => Io::PLAIN,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => Io {
                holds_output: t.holds_output(),
                close_sends_fin: false,
            },
        }
    }

    /// Our FIN: `shutdown(SHUT_WR)`; for TLS, `close_notify` first.
    /// `Ok(false)`: not out yet (TLS's alert waits for the socket).
    pub(crate) fn shutdown_write(&mut self) -> io::Result<bool> {
        match self {
            Stream::Tcp(s) => s.shutdown(std::net::Shutdown::Write).map(|()| true),
            Stream::Unix(s) => s.shutdown(std::net::Shutdown::Write).map(|()| true),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.shutdown_write(),
        }
    }

    /// Whether a handshake follows the connection (TLS).
    pub(crate) fn handshakes(&self) -> bool {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => false,
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.is_handshaking(),
        }
    }

    /// Drive the handshake (TLS; a plain socket has none).
    pub(crate) fn handshake(&mut self) -> io::Result<Handshake> {
        match self {
            Stream::Tcp(_) | Stream::Unix(_) => Ok(Handshake::Done),
            #[cfg(feature = "tls")]
            Stream::Tls(t) => t.handshake(),
        }
    }

    /// `SO_ERROR`.
    pub(crate) fn take_error(&self) -> io::Result<Option<io::Error>> {
        match self {
            Stream::Unix(s) => s.take_error(),
            other => other.tcp().expect("a TCP socket").take_error(),
        }
    }

    /// Whether a non-blocking connect completed (`Ok(true)`), is still in
    /// flight (`Ok(false)`), or failed.
    pub(crate) fn connect_outcome(&self) -> io::Result<bool> {
        if let Some(e) = self.take_error()? {
            return Err(e);
        }
        match self.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Make the coming `close(2)` send RST (TCP: `SO_LINGER` 0). A Unix
    /// socket has no reset; it just closes.
    pub(crate) fn reset_on_close(&self) -> io::Result<()> {
        match self.tcp() {
            Some(s) => socket2::SockRef::from(s).set_linger(Some(std::time::Duration::ZERO)),
            None => Ok(()),
        }
    }

    pub(crate) fn peer_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Unix(s) => s.peer_addr().map(|a| Addr::from_unix(&a)),
            other => other
                .tcp()
                .expect("a TCP socket")
                .peer_addr()
                .map(Addr::Inet),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Stream::Unix(s) => s.local_addr().map(|a| Addr::from_unix(&a)),
            other => other
                .tcp()
                .expect("a TCP socket")
                .local_addr()
                .map(Addr::Inet),
        }
    }

    pub(crate) fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        match self.tcp() {
            Some(s) => s.set_nodelay(nodelay),
            None => Ok(()), // nothing to delay: no Nagle on Unix sockets
        }
    }

    pub(crate) fn peer_cred(&self) -> io::Result<PeerCred> {
        match self {
            Stream::Unix(s) => unix::peer_cred(s),
            _ => Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "peer credentials are known for Unix sockets only",
            )),
        }
    }

    /// What the TLS handshake settled, for a TLS stream past it.
    #[cfg(feature = "tls")]
    pub(crate) fn tls(&self) -> Option<TlsInfo> {
        match self {
            Stream::Tls(t) if !t.is_handshaking() => Some(TlsInfo {
                version: t.protocol_version(),
                alpn_protocol: t.alpn_protocol(),
                server_name: t.server_name(),
                peer_certificates: t.peer_certificates().unwrap_or_default(),
            }),
            _ => None,
        }
    }

    /// Connect to `to` without blocking; the outcome comes with the first
    /// writability (or error) event.
    pub(crate) fn connect(to: &Connect) -> io::Result<(Stream, Option<io::Error>)> {
        let (stream, early) = match &to.addr {
            Addr::Inet(addr) => tcp::connect(*addr, to.from)?,
            addr => unix::connect(addr)?,
        };
        #[cfg(feature = "tls")]
        if let Some(client) = &to.tls {
            let Stream::Tcp(tcp) = stream else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS runs over TCP only",
                ));
            };
            let t = tls::TlsStream::client(tcp, client.config.clone(), client.name.clone())?;
            return Ok((Stream::Tls(Box::new(t)), early));
        }
        Ok((stream, early))
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Unix(s) => s.as_fd(),
            other => other.tcp().expect("a TCP socket").as_fd(),
        }
    }
}

impl Source for Stream {
    fn register(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.register(r, t, i),
            Stream::Unix(s) => s.register(r, t, i),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.reregister(r, t, i),
            Stream::Unix(s) => s.reregister(r, t, i),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.deregister(r),
            Stream::Unix(s) => s.deregister(r),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp.deregister(r),
        }
    }
}

// ------------------------------------------------------------------ listening sockets

/// A listening socket of either transport.
#[derive(Debug)]
pub(crate) enum Listening {
    Tcp(TcpListener),
    /// TLS over TCP: each accepted connection handshakes with the config.
    #[cfg(feature = "tls")]
    Tls(TcpListener, std::sync::Arc<rustls::ServerConfig>),
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
        #[cfg(feature = "tls")]
        if let Some(server) = &bind.tls {
            let Addr::Inet(addr) = bind.addr()? else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "TLS runs over TCP only",
                ));
            };
            return tcp::listen(*addr, config).map(|l| Listening::Tls(l, server.clone()));
        }
        match bind.addr()? {
            Addr::Inet(addr) => tcp::listen(*addr, config).map(Listening::Tcp),
            addr => unix::listen(addr, bind.remove_stale, config),
        }
    }

    pub(crate) fn local_addr(&self) -> io::Result<Addr> {
        match self {
            Listening::Tcp(l) => l.local_addr().map(Addr::Inet),
            #[cfg(feature = "tls")]
            Listening::Tls(l, _) => l.local_addr().map(Addr::Inet),
            Listening::Unix { listener: l, .. } => l.local_addr().map(|a| Addr::from_unix(&a)),
        }
    }

    /// Accept one connection.
    pub(crate) fn accept(&self) -> io::Result<(Stream, Addr)> {
        match self {
            Listening::Tcp(l) => l.accept().map(|(s, a)| (Stream::Tcp(s), Addr::Inet(a))),
            #[cfg(feature = "tls")]
            Listening::Tls(l, config) => {
                let (s, a) = l.accept()?;
                let t = tls::TlsStream::server(s, config.clone())?;
                Ok((Stream::Tls(Box::new(t)), Addr::Inet(a)))
            }
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
            #[cfg(feature = "tls")]
            Listening::Tls(l, _) => l.register(r, t, i),
            Listening::Unix { listener: l, .. } => l.register(r, t, i),
        }
    }
    fn reregister(&mut self, r: &Registry, t: Token, i: Interest) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.reregister(r, t, i),
            #[cfg(feature = "tls")]
            Listening::Tls(l, _) => l.reregister(r, t, i),
            Listening::Unix { listener: l, .. } => l.reregister(r, t, i),
        }
    }
    fn deregister(&mut self, r: &Registry) -> io::Result<()> {
        match self {
            Listening::Tcp(l) => l.deregister(r),
            #[cfg(feature = "tls")]
            Listening::Tls(l, _) => l.deregister(r),
            Listening::Unix { listener: l, .. } => l.deregister(r),
        }
    }
}
