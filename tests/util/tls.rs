//! The TLS peer of the scenario table (feature `tls`): a blocking or
//! non-blocking std TCP socket that speaks TLS with a rustls session, and
//! the process's one self-signed certificate.
//!
//! A TLS address says what it is: every TLS listener of the tests, the
//! reactor's and the std peer's, listens on [`TLS_IP`] (127.0.0.44), TCP
//! ones on 127.0.0.1, so that `Stream::connect(&addr)` and the reactor's
//! [`connect_to`](super::connect_to) know which transport to speak from the
//! address alone.
//!
//! The handshake needs both ends to run, and in most tests the reactor
//! runs on the test's own thread, between the peer's calls. So a peer's
//! handshake runs on a thread of its own, started with the connection and
//! ended with the handshake: until then the peer's writes wait in the
//! rustls session (up to its 64 KiB buffer), its reads wait (blocking) or
//! would block, and a `shutdown(Write)` or a drop is carried out when the
//! handshake is done. After it, every call does its own I/O on the caller's
//! thread.
//!
//! Clones made with `try_clone` share the session (a reader thread and a
//! writer thread, as with a TCP socket): reads and writes take their own
//! locks, and neither holds the session's lock while it waits on the
//! socket.

use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use halfclose_tools::tls::{server_name, Identity};
use rustls::{ClientConfig, ClientConnection, Connection, ServerConfig, ServerConnection};

use super::{ms, DEADLINE};

/// Where every TLS listener of the tests listens.
pub const TLS_IP: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 44);

/// The name the certificate carries and the clients ask for.
pub const TLS_NAME: &str = "localhost";

/// Whether `addr` is a TLS listener's ([`TLS_IP`]).
pub fn is_tls_addr(addr: &SocketAddr) -> bool {
    addr.ip() == IpAddr::V4(TLS_IP)
}

struct Certs {
    id: Identity,
    server: Arc<ServerConfig>,
    client: Arc<ClientConfig>,
}

/// The process's certificate and both configurations, made once.
fn certs() -> &'static Certs {
    static CERTS: OnceLock<Certs> = OnceLock::new();
    CERTS.get_or_init(|| {
        let id = Identity::self_signed(&[TLS_NAME, "127.0.0.44"]).expect("a certificate");
        let mut server = (*id.server_config(&[]).expect("a server configuration")).clone();
        // No TLS 1.3 session tickets after the handshake: they would be
        // input that a peer which never reads leaves unread, and its close
        // would be a reset where TCP's is a FIN.
        server.send_tls13_tickets = 0;
        Certs {
            server: Arc::new(server),
            client: id.client_config(&[]).expect("a client configuration"),
            id,
        }
    })
}

/// The reactor's (and the std peer's) server configuration.
pub fn server_config() -> Arc<ServerConfig> {
    certs().server.clone()
}

/// A client configuration that trusts [`server_config`]'s certificate.
pub fn client_config() -> Arc<ClientConfig> {
    certs().client.clone()
}

/// The process's certificate and private key as PEM files, for the
/// example servers (`--tls-cert`, `--tls-key`); written once, in the
/// temporary directory, left for the system to clean (other tests of the
/// process may still start servers with them).
pub fn pem_files() -> &'static (PathBuf, PathBuf) {
    static FILES: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    FILES.get_or_init(|| {
        let id = &certs().id;
        let dir = std::env::temp_dir();
        let stem = format!("halfclose-test-{}-tls", std::process::id());
        let cert = dir.join(format!("{stem}-cert.pem"));
        let key = dir.join(format!("{stem}-key.pem"));
        std::fs::write(&cert, &id.cert_pem).expect("write the certificate");
        let key_pem = pem("PRIVATE KEY", id.key.secret_der());
        std::fs::write(&key, key_pem).expect("write the key");
        (cert, key)
    })
}

/// `der` in PEM form, labelled `label`.
fn pem(label: &str, der: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut b64 = String::new();
    for chunk in der.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                b64.push(ABC[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                b64.push('=');
            }
        }
    }
    let mut out = format!("-----BEGIN {label}-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// What the connection's threads share.
struct Shared {
    tcp: TcpStream,
    st: Mutex<State>,
    /// Signalled when the handshake ends (done or failed).
    handshake: Condvar,
    /// Ciphertext made and not yet sent; its lock orders the senders.
    out: Mutex<Vec<u8>>,
    /// Orders the readers.
    rd: Mutex<()>,
    /// The connection is being reset: background threads give up.
    stop: AtomicBool,
}

struct State {
    session: Connection,
    /// Ciphertext read and not yet taken by the session.
    inbox: Vec<u8>,
    /// Plaintext [`TlsStream::peek`] took from the session.
    peeked: Vec<u8>,
    handshaken: bool,
    /// Why the handshake failed.
    failed: Option<io::ErrorKind>,
    /// `shutdown(Write)`, or a drop, asked for: close_notify, then FIN.
    shut: bool,
    /// Our close_notify is made.
    notified: bool,
    /// The FIN is out.
    shut_done: bool,
    nonblocking: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn tls_error(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

/// Wait until `tcp` is ready for `interest`, at most `timeout`; whether it
/// is.
fn wait_ready(tcp: &TcpStream, interest: mio::Interest, timeout: Duration) -> io::Result<bool> {
    let mut poll = mio::Poll::new()?;
    let fd = tcp.as_raw_fd();
    poll.registry()
        .register(&mut mio::unix::SourceFd(&fd), mio::Token(0), interest)?;
    let mut events = mio::Events::with_capacity(1);
    match poll.poll(&mut events, Some(timeout)) {
        Ok(()) => Ok(!events.is_empty()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(false),
        Err(e) => Err(e),
    }
}

impl Shared {
    /// Feed the ciphertext read so far into the session.
    fn feed(st: &mut State) -> io::Result<()> {
        while !st.inbox.is_empty() {
            let mut rest = &st.inbox[..];
            let Ok(n) = st.session.read_tls(&mut rest) else {
                // Its plaintext buffer is full: the reader takes some first.
                return Ok(());
            };
            st.inbox.drain(..n);
            st.session.process_new_packets().map_err(tls_error)?;
            if n == 0 {
                break;
            }
        }
        Ok(())
    }

    /// The socket's end of file, told to the session: its reader says
    /// whether close_notify came first.
    fn feed_eof(st: &mut State) {
        let _ = st.session.read_tls(&mut &[][..]);
        let _ = st.session.process_new_packets();
    }

    /// The ciphertext the session holds, into `out`.
    fn take_tls(st: &mut State, out: &mut Vec<u8>) {
        while st.session.wants_write() {
            if st.session.write_tls(out).is_err() {
                break;
            }
        }
    }

    /// Send from `out` without waiting; whether it is all out.
    fn try_send(&self, out: &mut Vec<u8>) -> io::Result<bool> {
        while !out.is_empty() {
            match socket2::SockRef::from(&self.tcp).send_with_flags(out, libc::MSG_DONTWAIT) {
                Ok(n) => {
                    out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Send all of `out`, waiting for the socket (at most `limit`, and not
    /// after a reset began).
    fn send_all(&self, out: &mut Vec<u8>, limit: Option<Duration>) -> io::Result<()> {
        let start = Instant::now();
        let limit = limit.unwrap_or(DEADLINE);
        while !self.try_send(out)? {
            if self.stop.load(Ordering::Relaxed) {
                return Err(io::ErrorKind::ConnectionAborted.into());
            }
            if start.elapsed() >= limit {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            wait_ready(&self.tcp, mio::Interest::WRITABLE, ms(20))?;
        }
        Ok(())
    }

    /// Our FIN, if asked for and not yet made: close_notify, everything
    /// out, then `shutdown(SHUT_WR)`. With `wait`, waits for the socket;
    /// without, whether it is done.
    fn finish_shutdown(&self, out: &mut Vec<u8>, wait: bool) -> io::Result<bool> {
        {
            let mut st = lock(&self.st);
            if !st.shut || st.shut_done || !st.handshaken {
                return Ok(true);
            }
            if !st.notified {
                st.notified = true;
                st.session.send_close_notify();
                Shared::take_tls(&mut st, out);
            }
        }
        if wait {
            self.send_all(out, None)?;
        } else if !self.try_send(out)? {
            return Ok(false);
        }
        let mut st = lock(&self.st);
        if !st.shut_done {
            st.shut_done = true;
            let _ = self.tcp.shutdown(Shutdown::Write);
        }
        Ok(true)
    }

    /// Ask for our FIN and start it: the handshake's thread makes it if the
    /// handshake is not done, else here, or on a thread if the socket does
    /// not take it now.
    fn begin_close(self: &Arc<Shared>) {
        {
            let mut st = lock(&self.st);
            if st.shut {
                return;
            }
            st.shut = true;
            if !st.handshaken {
                // The handshake's thread makes it at its end.
                return;
            }
        }
        let mut out = lock(&self.out);
        let done = self.try_send(&mut out).unwrap_or(true)
            && self.finish_shutdown(&mut out, false).unwrap_or(true);
        drop(out);
        if !done {
            let s2 = self.clone();
            std::thread::spawn(move || {
                let mut out = lock(&s2.out);
                let _ = s2
                    .send_all(&mut out, None)
                    .and_then(|()| s2.finish_shutdown(&mut out, true));
            });
        }
    }

    /// Drive the handshake to its end; then send what waited for it, and
    /// the FIN if one was asked for meanwhile.
    fn handshake(self: &Arc<Shared>) {
        let start = Instant::now();
        let mut buf = vec![0u8; 64 * 1024];
        let result: io::Result<()> = (|| loop {
            let mut out = Vec::new();
            let handshaking = {
                let mut st = lock(&self.st);
                Shared::take_tls(&mut st, &mut out);
                st.session.is_handshaking()
            };
            self.send_all(&mut out, None)?;
            if !handshaking {
                return Ok(());
            }
            loop {
                if self.stop.load(Ordering::Relaxed) {
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
                if start.elapsed() >= DEADLINE {
                    return Err(io::ErrorKind::TimedOut.into());
                }
                if wait_ready(&self.tcp, mio::Interest::READABLE, ms(20))? {
                    break;
                }
            }
            let n = match (&self.tcp).read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let mut st = lock(&self.st);
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the reactor closed during the TLS handshake",
                ));
            }
            st.inbox.extend_from_slice(&buf[..n]);
            Shared::feed(&mut st)?;
        })();
        let mut out = lock(&self.out);
        {
            let mut st = lock(&self.st);
            match &result {
                Ok(()) => {
                    st.handshaken = true;
                    // What the peer wrote meanwhile, now encrypted.
                    Shared::take_tls(&mut st, &mut out);
                }
                Err(e) => st.failed = Some(e.kind()),
            }
            self.handshake.notify_all();
        }
        if result.is_ok() {
            let _ = self
                .send_all(&mut out, None)
                .and_then(|()| self.finish_shutdown(&mut out, true));
        }
    }
}

/// A std TCP socket speaking TLS: a client of the reactor's listener, or
/// one the std [`Listener`](super::Listener) accepted from the reactor.
pub struct TlsStream {
    owner: Arc<Owner>,
}

/// The connection while some clone of it is alive; its drop is the peer's
/// close.
struct Owner {
    shared: Arc<Shared>,
    handshake: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for TlsStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsStream")
            .field("tcp", &self.owner.shared.tcp)
            .finish()
    }
}

impl TlsStream {
    /// A client over `tcp`, connected to a TLS listener.
    pub fn client(tcp: TcpStream) -> io::Result<TlsStream> {
        let session =
            ClientConnection::new(client_config(), server_name(TLS_NAME)?).map_err(tls_error)?;
        TlsStream::start(tcp, session.into())
    }

    /// The server end of `tcp`, accepted from a TLS client.
    pub fn server(tcp: TcpStream) -> io::Result<TlsStream> {
        let session = ServerConnection::new(server_config()).map_err(tls_error)?;
        TlsStream::start(tcp, session.into())
    }

    fn start(tcp: TcpStream, session: Connection) -> io::Result<TlsStream> {
        let shared = Arc::new(Shared {
            tcp,
            st: Mutex::new(State {
                session,
                inbox: Vec::new(),
                peeked: Vec::new(),
                handshaken: false,
                failed: None,
                shut: false,
                notified: false,
                shut_done: false,
                nonblocking: false,
                read_timeout: None,
                write_timeout: None,
            }),
            handshake: Condvar::new(),
            out: Mutex::new(Vec::new()),
            rd: Mutex::new(()),
            stop: AtomicBool::new(false),
        });
        let s2 = shared.clone();
        let handle = std::thread::Builder::new()
            .name("tls-peer-handshake".into())
            .spawn(move || s2.handshake())?;
        Ok(TlsStream {
            owner: Arc::new(Owner {
                shared,
                handshake: Mutex::new(Some(handle)),
            }),
        })
    }

    fn shared(&self) -> &Shared {
        &self.owner.shared
    }

    pub fn tcp(&self) -> &TcpStream {
        &self.shared().tcp
    }

    /// Wait for the handshake (as a read or write would: not at all when
    /// non-blocking, at most `timeout`).
    fn handshaken<'a>(
        &'a self,
        mut st: MutexGuard<'a, State>,
        timeout: Option<Duration>,
    ) -> io::Result<MutexGuard<'a, State>> {
        let start = Instant::now();
        let limit = timeout.unwrap_or(DEADLINE);
        while !st.handshaken {
            if let Some(kind) = st.failed {
                return Err(io::Error::new(kind, "the TLS handshake failed"));
            }
            if st.nonblocking {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let left = limit.saturating_sub(start.elapsed());
            if left.is_zero() {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            st = self
                .shared()
                .handshake
                .wait_timeout(st, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        Ok(st)
    }

    pub fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        self.tcp().set_nonblocking(on)?;
        lock(&self.shared().st).nonblocking = on;
        Ok(())
    }

    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_read_timeout(t)?;
        lock(&self.shared().st).read_timeout = t;
        Ok(())
    }

    pub fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        self.tcp().set_write_timeout(t)?;
        lock(&self.shared().st).write_timeout = t;
        Ok(())
    }

    /// `Write`: close_notify, then FIN (`SHUT_WR`), once what was written
    /// before is out; at once if the socket takes it, else on a thread of
    /// its own (as the kernel sends a FIN after queued bytes). `Read` and
    /// `Both` shut the socket's read side too (no close_notify is awaited).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        if how != Shutdown::Write {
            self.tcp().shutdown(Shutdown::Read)?;
        }
        if how == Shutdown::Read {
            return Ok(());
        }
        self.owner.shared.begin_close();
        Ok(())
    }

    pub fn try_clone(&self) -> io::Result<TlsStream> {
        Ok(TlsStream {
            owner: self.owner.clone(),
        })
    }

    /// Plaintext waiting to be read, up to `max` (none consumed; blocks
    /// like a read).
    pub fn peek(&self, max: usize) -> io::Result<usize> {
        {
            let st = lock(&self.shared().st);
            if !st.peeked.is_empty() {
                return Ok(st.peeked.len().min(max));
            }
        }
        let mut buf = vec![0u8; max];
        let n = self.read_session(&mut buf)?;
        lock(&self.shared().st).peeked = buf[..n].to_vec();
        Ok(n)
    }

    /// Close with RST: no close_notify, `SO_LINGER` 0, `close(2)`.
    pub fn reset(self) {
        let shared = &self.owner.shared;
        shared.stop.store(true, Ordering::Relaxed);
        if let Some(h) = lock(&self.owner.handshake).take() {
            let _ = h.join();
        }
        {
            let mut st = lock(&shared.st);
            st.shut = true;
            st.shut_done = true;
        }
        socket2::SockRef::from(&shared.tcp)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
    }

    /// Read plaintext (after what `peek` holds).
    fn read_session(&self, buf: &mut [u8]) -> io::Result<usize> {
        let shared = self.shared();
        let _rd = lock(&shared.rd);
        let mut tmp = vec![0u8; (buf.len() + 64).clamp(4096, 64 * 1024)];
        loop {
            {
                let timeout = lock(&shared.st).read_timeout;
                let mut st = self.handshaken(lock(&shared.st), timeout)?;
                if !st.peeked.is_empty() {
                    let n = st.peeked.len().min(buf.len());
                    buf[..n].copy_from_slice(&st.peeked[..n]);
                    st.peeked.drain(..n);
                    return Ok(n);
                }
                match st.session.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                if !st.inbox.is_empty() {
                    let before = st.inbox.len();
                    Shared::feed(&mut st)?;
                    if st.inbox.len() < before {
                        continue;
                    }
                }
            }
            // What waits to be sent goes on its way (a shutdown, too).
            if let Ok(mut out) = shared.out.try_lock() {
                if shared.try_send(&mut out).unwrap_or(false) {
                    let _ = shared.finish_shutdown(&mut out, false);
                }
            }
            let n = (&shared.tcp).read(&mut tmp)?;
            let mut st = lock(&shared.st);
            if n == 0 {
                Shared::feed_eof(&mut st);
                // The reader now says how the stream ended.
                match st.session.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
                    other => return other,
                }
            }
            st.inbox.extend_from_slice(&tmp[..n]);
            Shared::feed(&mut st)?;
        }
    }

    fn write_session(&self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let shared = self.shared();
        let (nonblocking, timeout) = {
            let mut st = lock(&shared.st);
            if st.shut {
                return Err(io::ErrorKind::BrokenPipe.into());
            }
            if !st.handshaken && st.failed.is_none() {
                // Before the handshake's end the session keeps it (up to
                // its buffer's limit).
                let n = st.session.writer().write(buf)?;
                if n > 0 {
                    return Ok(n);
                }
            }
            (st.nonblocking, st.write_timeout)
        };
        let st = self.handshaken(lock(&shared.st), timeout)?;
        drop(st);
        let mut out = if nonblocking {
            match shared.out.try_lock() {
                Ok(g) => g,
                Err(_) => return Err(io::ErrorKind::WouldBlock.into()),
            }
        } else {
            lock(&shared.out)
        };
        if nonblocking {
            if !shared.try_send(&mut out)? {
                return Err(io::ErrorKind::WouldBlock.into());
            }
        } else {
            shared.send_all(&mut out, timeout)?;
        }
        let n = {
            let mut st = lock(&shared.st);
            let n = st
                .session
                .writer()
                .write(&buf[..buf.len().min(16 * 1024)])?;
            Shared::take_tls(&mut st, &mut out);
            n
        };
        if nonblocking {
            shared.try_send(&mut out)?;
        } else {
            shared.send_all(&mut out, timeout)?;
        }
        Ok(n)
    }
}

impl Drop for Owner {
    /// The peer's close: close_notify, then FIN, as a shutdown would
    /// (after the handshake, if it is still going on); none after a reset.
    fn drop(&mut self) {
        self.shared.begin_close();
    }
}

impl Read for &TlsStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_session(buf)
    }
}

impl Write for &TlsStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.write_session(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
