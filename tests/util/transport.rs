//! The transport a test runs on: TCP over 127.0.0.1, a Unix stream
//! socket, or (feature `tls`) TLS over TCP; a std stream and listener of
//! each, fresh addresses, what a peer sees where the transports differ,
//! and the macros that run one test definition on each
//! ([`transports!`](crate::transports),
//! [`transport_pairs!`](crate::transport_pairs)).
//!
//! A test written once for every transport takes a [`Transport`] and
//! states every difference through it (`t.peer_end_after_abort(..)`,
//! `t.has_reset()`), never with a second copy. The differences, from the
//! table at the top of `src/transport/mod.rs`, and TLS's:
//!
//! | | TCP | Unix stream socket | TLS (over TCP) |
//! |---|---|---|---|
//! | our `abort()` | RST: the peer's read fails with `ECONNRESET` | a plain close: the peer reads end of file, or `ECONNRESET` if bytes it sent were left unread | RST, as TCP (no close_notify) |
//! | a peer's "reset" ([`Stream::reset`]) | RST (`SO_LINGER` 0) | a close with unread input, the only way to make the other end's reads fail with `ECONNRESET` | RST, no close_notify |
//! | a peer's `shutdown(Write)`, or its drop | FIN | end of file | close_notify, then FIN: `handle_readable_eof` (a bare FIN would be `handle_truncated_eof`) |
//! | the peer's end of file | our FIN | our `shutdown` | our close_notify (a FIN without it: `UnexpectedEof`) |
//! | socket buffers | `SO_RCVBUF` bounds the window | only the sender's `SO_SNDBUF` bounds what is in flight | as TCP, plus each end's rustls buffers |
//! | bytes on the wire ([`Transport::wire_len`]) | as written | as written | 22 more per record (TLS 1.3) |
//! | a close before the first byte is read ([`Transport::peer_ends_when_closed_at_accept`]) | FIN: end of file | end of file | RST if the ClientHello is in (a race), else a FIN in the handshake |
//! | `connect` to return `handle_connect` | the TCP connect | the connect | the TCP connect, then the handshake: a handler is made at the accept and hears `handle_connect` after it |
//!
//! The TLS peer ([`TlsStream`], `tests/util/tls.rs`) is a rustls session
//! over a std `TcpStream`; its listeners are on [`TLS_IP`] (127.0.0.44), so
//! that an address says which transport it is, and the process has one
//! self-signed certificate. Its `try_clone`s share the session; its `peek`
//! counts plaintext; its handshake runs on a thread of its own, so that a
//! test may write and shut down before the reactor (on the test's thread)
//! has answered. Test definitions that cannot run on TLS are listed with
//! `transports!(no_tls: ..)`, with a comment saying why.

use std::io::{self, Read, Write};
use std::mem::MaybeUninit;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self as unix, UnixListener, UnixStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use halfclose::{Addr, Bind, Connect, Handler, Reactor};

#[cfg(feature = "tls")]
use super::tls::*;
use super::{End, IntoAddr, DEADLINE};

/// The transport a test runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// TCP over 127.0.0.1.
    Tcp,
    /// A Unix stream socket, named in Linux's abstract namespace.
    Unix,
    /// TLS over TCP (feature `tls`), on [`TLS_IP`] with the process's
    /// self-signed certificate.
    #[cfg(feature = "tls")]
    Tls,
}

impl Transport {
    /// A fresh address to listen on: `127.0.0.1:0`, or an abstract name
    /// no other test of any process uses ([`unique_name`]).
    pub fn fresh(self) -> Addr {
        match self {
            Transport::Tcp => Addr::Inet(SocketAddr::from(([127, 0, 0, 1], 0))),
            Transport::Unix => Addr::Abstract(unique_name("sock").into_bytes()),
            #[cfg(feature = "tls")]
            Transport::Tls => Addr::Inet(SocketAddr::from((TLS_IP, 0))),
        }
    }

    /// Where the reactor listens: [`fresh`](Transport::fresh), and on TLS
    /// with the process's certificate.
    pub fn bind(self) -> Bind {
        match self {
            #[cfg(feature = "tls")]
            Transport::Tls => Bind::from(self.fresh()).tls(server_config()),
            _ => Bind::from(self.fresh()),
        }
    }

    /// The arguments that make an example server listen on this transport
    /// besides `--listen`: on TLS, the process's certificate
    /// (`--tls-cert`, `--tls-key`); none otherwise.
    pub fn server_args(self) -> Vec<String> {
        #[cfg(feature = "tls")]
        if self == Transport::Tls {
            let (cert, key) = pem_files();
            return vec![
                "--tls-cert".into(),
                cert.display().to_string(),
                "--tls-key".into(),
                key.display().to_string(),
            ];
        }
        Vec::new()
    }

    /// Whether this is TLS (the reactor's connections report
    /// `conn.tls()`).
    pub fn is_tls(self) -> bool {
        #[cfg(feature = "tls")]
        if self == Transport::Tls {
            return true;
        }
        false
    }

    /// Listen on a fresh address of this transport; where it listens.
    pub fn listen<H: Handler + 'static>(
        self,
        reactor: &mut Reactor,
        factory: impl FnMut() -> H + 'static,
    ) -> Addr {
        let id = reactor.listen(self.bind(), factory).expect("listen");
        reactor.local_addr(id).expect("a listener's address")
    }

    /// Whether the transport has a reset (RST): TCP and TLS (over TCP)
    /// do, a Unix socket does not.
    pub fn has_reset(self) -> bool {
        self != Transport::Unix
    }

    /// How the peer's reads may end when the reactor closes a connection
    /// it accepted before reading anything from it (a factory that
    /// panicked): end of file on TCP and a Unix socket, whose peer sent
    /// nothing yet. On TLS the peer sends its ClientHello at once: if it
    /// was in our receive queue, the close is a reset (`ECONNRESET`), if
    /// not yet, a FIN in the middle of the handshake (`UnexpectedEof`);
    /// which one is a race.
    pub fn peer_ends_when_closed_at_accept(self) -> Vec<End> {
        if self.is_tls() {
            vec![
                End::Error(io::ErrorKind::ConnectionReset),
                End::Error(io::ErrorKind::UnexpectedEof),
            ]
        } else {
            vec![End::Eof]
        }
    }

    /// The bytes `plaintext` bytes sent in `writes` writes of at most
    /// 16 KiB each take on the wire: as many on TCP and a Unix socket; on
    /// TLS 1.3, 22 more per write (each write of the peer [`Stream`] is one
    /// record: a 5-byte header, the content type, a 16-byte tag).
    pub fn wire_len(self, plaintext: usize, writes: usize) -> usize {
        if self.is_tls() {
            plaintext + 22 * writes
        } else {
            plaintext
        }
    }

    /// How the peer's reads end when we `abort()` a connection:
    /// `ECONNRESET` on TCP (the RST). A Unix socket has no reset, so the
    /// abort is a plain close: the peer reads end of file, unless
    /// `input_left_unread` (bytes the peer sent were still unread in our
    /// receive queue), when its reads fail with `ECONNRESET` too.
    pub fn peer_end_after_abort(self, input_left_unread: bool) -> End {
        if self.has_reset() || input_left_unread {
            End::Error(io::ErrorKind::ConnectionReset)
        } else {
            End::Eof
        }
    }
}

/// How the reactor connects to `at`: TLS if `at` is a TLS listener's
/// ([`TLS_IP`]), else the plain transport of the address.
pub fn connect_to(at: impl IntoAddr) -> Connect {
    let at = at.into_addr();
    #[cfg(feature = "tls")]
    if let Addr::Inet(a) = &at {
        if is_tls_addr(a) {
            return Connect::to(*a).tls(
                client_config(),
                halfclose_tools::tls::server_name(TLS_NAME).expect("a server name"),
            );
        }
    }
    <Connect as From<Addr>>::from(at)
}

/// A name no other call in any process returns:
/// `halfclose-test-<pid>-<n>-<tag>`.
pub fn unique_name(tag: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("halfclose-test-{}-{n}-{tag}", std::process::id())
}

/// A directory of its own for a test's socket files, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let dir = std::env::temp_dir().join(unique_name(tag));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }

    /// The path of `name` in it.
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn unix_addr(addr: &Addr) -> io::Result<unix::SocketAddr> {
    match addr {
        Addr::Path(p) => unix::SocketAddr::from_pathname(p),
        Addr::Abstract(name) => unix::SocketAddr::from_abstract_name(name),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("not a Unix socket address: {other}"),
        )),
    }
}

fn from_unix(addr: &unix::SocketAddr) -> Addr {
    if let Some(p) = addr.as_pathname() {
        Addr::Path(p.to_path_buf())
    } else if let Some(name) = addr.as_abstract_name() {
        Addr::Abstract(name.to_vec())
    } else {
        Addr::Unnamed
    }
}

/// A connected std socket of either transport (blocking unless told
/// otherwise).
#[derive(Debug)]
pub enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
    #[cfg(feature = "tls")]
    Tls(TlsStream),
}

impl Stream {
    /// Connect to `at` (blocking).
    pub fn connect(at: &Addr) -> io::Result<Stream> {
        match at {
            Addr::Inet(a) => TcpStream::connect(a).and_then(|tcp| Stream::to(tcp, a)),
            other => UnixStream::connect_addr(&unix_addr(other)?).map(Stream::Unix),
        }
    }

    /// A connected TCP socket as a stream of its transport: TLS if it is
    /// connected to a TLS listener ([`TLS_IP`]).
    pub fn over_tcp(tcp: TcpStream) -> io::Result<Stream> {
        match tcp.peer_addr() {
            Ok(peer) => Stream::to(tcp, &peer),
            // Already reset: no TLS to speak.
            Err(_) => Ok(Stream::Tcp(tcp)),
        }
    }

    /// `tcp`, connected to `peer`, as a stream of `peer`'s transport.
    fn to(tcp: TcpStream, peer: &SocketAddr) -> io::Result<Stream> {
        #[cfg(feature = "tls")]
        if is_tls_addr(peer) {
            return TlsStream::client(tcp).map(Stream::Tls);
        }
        let _ = peer;
        Ok(Stream::Tcp(tcp))
    }

    /// Whether this speaks TLS.
    pub fn is_tls(&self) -> bool {
        #[cfg(feature = "tls")]
        if let Stream::Tls(_) = self {
            return true;
        }
        false
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(on),
            Stream::Unix(s) => s.set_nonblocking(on),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.set_nonblocking(on),
        }
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.set_read_timeout(t),
        }
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_write_timeout(t),
            Stream::Unix(s) => s.set_write_timeout(t),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.set_write_timeout(t),
        }
    }

    /// Both timeouts at once: no blocking call waits longer than `t`.
    pub fn set_timeouts(&self, t: Duration) {
        self.set_read_timeout(Some(t)).unwrap();
        self.set_write_timeout(Some(t)).unwrap();
    }

    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.shutdown(how),
            Stream::Unix(s) => s.shutdown(how),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.shutdown(how),
        }
    }

    pub fn try_clone(&self) -> io::Result<Stream> {
        match self {
            Stream::Tcp(s) => s.try_clone().map(Stream::Tcp),
            Stream::Unix(s) => s.try_clone().map(Stream::Unix),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.try_clone().map(Stream::Tls),
        }
    }

    /// `TCP_NODELAY` on TCP; a Unix socket has no delay to turn off.
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nodelay(on),
            Stream::Unix(_) => Ok(()),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().set_nodelay(on),
        }
    }

    /// Bytes waiting in the receive queue, up to `max` (`MSG_PEEK`: none
    /// consumed; blocks like a read).
    pub fn peek(&self, max: usize) -> io::Result<usize> {
        #[cfg(feature = "tls")]
        if let Stream::Tls(s) = self {
            return s.peek(max);
        }
        let mut buf = vec![MaybeUninit::<u8>::uninit(); max];
        socket2::SockRef::from(self).peek(&mut buf)
    }

    /// Close so that the other end's reads fail with `ECONNRESET`.
    ///
    /// TCP: RST (`SO_LINGER` 0, then `close(2)`). A Unix socket has no
    /// reset; the closest thing, and what the kernel reports as
    /// `ECONNRESET`, is a close with unread input: this waits (blocking,
    /// bounded by [`DEADLINE`]) until the peer has sent something, leaves
    /// it unread and closes. A test that resets a Unix peer must make the
    /// other end send first; if it never does, this fails.
    #[track_caller]
    pub fn reset(self) {
        match self {
            Stream::Tcp(s) => reset(s),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.reset(),
            Stream::Unix(s) => {
                let s = Stream::Unix(s);
                s.set_nonblocking(false).unwrap();
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                let queued = s.peek(1).unwrap_or_else(|e| {
                    panic!("a Unix socket resets only with unread input, and none came: {e}")
                });
                assert_eq!(
                    queued, 1,
                    "a Unix socket resets only with unread input: the peer closed first"
                );
                drop(s);
            }
        }
    }
}

/// Close a std TCP socket with RST: `SO_LINGER` 0, then `close(2)`.
pub fn reset(s: TcpStream) {
    socket2::SockRef::from(&s)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(s);
}

impl Read for &Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).read(buf),
            Stream::Unix(s) => (&*s).read(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => (&*s).read(buf),
        }
    }
}

impl Write for &Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => (&*s).write(buf),
            Stream::Unix(s) => (&*s).write(buf),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => (&*s).write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsFd for Stream {
    fn as_fd(&self) -> BorrowedFd<'_> {
        match self {
            Stream::Tcp(s) => s.as_fd(),
            Stream::Unix(s) => s.as_fd(),
            #[cfg(feature = "tls")]
            Stream::Tls(s) => s.tcp().as_fd(),
        }
    }
}

/// A std listener of either transport.
#[derive(Debug)]
pub enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
    /// A TCP listener on [`TLS_IP`] whose connections speak TLS (the std
    /// end is the TLS server).
    #[cfg(feature = "tls")]
    Tls(TcpListener),
}

impl Listener {
    /// Listen on a fresh address of `t` ([`Transport::fresh`]).
    pub fn bind(t: Transport) -> Listener {
        Listener::bind_at(&t.fresh()).expect("bind")
    }

    pub fn bind_at(at: &Addr) -> io::Result<Listener> {
        match at {
            #[cfg(feature = "tls")]
            Addr::Inet(a) if is_tls_addr(a) => TcpListener::bind(a).map(Listener::Tls),
            Addr::Inet(a) => TcpListener::bind(a).map(Listener::Tcp),
            other => UnixListener::bind_addr(&unix_addr(other)?).map(Listener::Unix),
        }
    }

    pub fn local_addr(&self) -> Addr {
        match self {
            Listener::Tcp(l) => Addr::Inet(l.local_addr().unwrap()),
            Listener::Unix(l) => from_unix(&l.local_addr().unwrap()),
            #[cfg(feature = "tls")]
            Listener::Tls(l) => Addr::Inet(l.local_addr().unwrap()),
        }
    }

    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
            Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            #[cfg(feature = "tls")]
            Listener::Tls(l) => l
                .accept()
                .and_then(|(s, _)| TlsStream::server(s).map(Stream::Tls)),
        }
    }

    pub fn try_clone(&self) -> io::Result<Listener> {
        match self {
            Listener::Tcp(l) => l.try_clone().map(Listener::Tcp),
            Listener::Unix(l) => l.try_clone().map(Listener::Unix),
            #[cfg(feature = "tls")]
            Listener::Tls(l) => l.try_clone().map(Listener::Tls),
        }
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(on),
            Listener::Unix(l) => l.set_nonblocking(on),
            #[cfg(feature = "tls")]
            Listener::Tls(l) => l.set_nonblocking(on),
        }
    }
}

/// An address of `t` that refuses connections: a TCP port that was bound
/// and released, or a Unix socket file in `dir` whose listener is gone
/// (connecting fails with `ECONNREFUSED` on both).
pub fn refusing_addr(t: Transport, dir: &TempDir) -> Addr {
    match t {
        Transport::Tcp => Listener::bind(t).local_addr(),
        #[cfg(feature = "tls")]
        Transport::Tls => Listener::bind(t).local_addr(),
        Transport::Unix => {
            let path = dir.path("refusing");
            drop(UnixListener::bind(&path).expect("bind"));
            Addr::Path(path)
        }
    }
}

/// Run one test definition on every transport: for each function named,
/// which takes a [`Transport`], a module of the same name with the tests
/// `tcp`, `unix` and (built with the feature `tls`) `tls` that call it
/// with [`Transport::Tcp`], [`Transport::Unix`] and `Transport::Tls`. A
/// function and a module may share a name (they live in different
/// namespaces), so the tests print as `<module path>::<function>::tcp`,
/// `::unix` and `::tls`.
///
/// `no_tls:` before the names leaves the `tls` run out (say why in a
/// comment).
///
/// ```ignore
/// fn a1_half_close_keeps_sending(t: Transport) { ... }
/// transports!(a1_half_close_keeps_sending);
/// transports!(no_tls: e6_chat_example_broadcasts_and_refuses_long_lines);
/// ```
#[macro_export]
macro_rules! transports {
    (no_tls: $($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn tcp() {
                super::$name($crate::util::Transport::Tcp)
            }
            #[test]
            fn unix() {
                super::$name($crate::util::Transport::Unix)
            }
        }
    )*};
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn tcp() {
                super::$name($crate::util::Transport::Tcp)
            }
            #[test]
            fn unix() {
                super::$name($crate::util::Transport::Unix)
            }
            #[cfg(feature = "tls")]
            #[test]
            fn tls() {
                super::$name($crate::util::Transport::Tls)
            }
        }
    )*};
}

/// Run one test definition for each pair of transports (for a program
/// that joins two, like a proxy): for each function named, which takes
/// `(from, to)`, a module of the same name with the tests `tcp_to_tcp`,
/// `tcp_to_unix`, `unix_to_tcp` and `unix_to_unix`.
#[macro_export]
macro_rules! transport_pairs {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use $crate::util::Transport::{Tcp, Unix};
            #[test]
            fn tcp_to_tcp() {
                super::$name(Tcp, Tcp)
            }
            #[test]
            fn tcp_to_unix() {
                super::$name(Tcp, Unix)
            }
            #[test]
            fn unix_to_tcp() {
                super::$name(Unix, Tcp)
            }
            #[test]
            fn unix_to_unix() {
                super::$name(Unix, Unix)
            }
        }
    )*};
}
