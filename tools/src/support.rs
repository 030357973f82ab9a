//! What the example servers and clients share: a server announces its
//! address, drains on SIGINT/SIGTERM, runs and reports ([`serve`]); a
//! client sends a request, half-closes and reads the reply to EOF
//! ([`exchange`]); a `main` prints its error and exits ([`exit_code`]);
//! the embedding examples serve [`Deferred`] and announce themselves with
//! [`announce`].

use std::cell::RefCell;
use std::io::{self, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, ListenerId, Reactor, TimerId};

/// How long a graceful drain may take before what is left is aborted.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Print `listening on ADDR` (`IP:PORT`, or a Unix socket's path),
/// flushed: scripts and tests read it.
pub fn announce(addr: impl std::fmt::Display) -> io::Result<()> {
    println!("listening on {addr}");
    std::io::stdout().flush()
}

/// A half-close protocol with a timer, for the embedding examples: collect
/// the request until the client's FIN, wait `delay` (a [`Conn::set_timer`]
/// timer), then reply with the request uppercased and close.
#[derive(Debug)]
pub struct Deferred {
    delay: Duration,
    request: Vec<u8>,
}

impl Deferred {
    /// A handler that answers `delay` after the client's FIN.
    pub fn new(delay: Duration) -> Deferred {
        Deferred {
            delay,
            request: Vec::new(),
        }
    }
}

impl Handler for Deferred {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.request.extend_from_slice(data);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        conn.set_timer(self.delay);
        // Our write half stays open until the timer answers.
        Eof::HalfClose
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        conn.write(&self.request.to_ascii_uppercase());
        conn.close();
    }
}

/// The command line of the embedding examples, and the reactor it makes.
#[derive(clap::Args, Debug)]
pub struct Embedded {
    /// Address to listen on: IP:PORT, a Unix socket path or @name
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    pub listen: halfclose::Addr,
    /// How long after the client's FIN the answer comes
    #[arg(long, value_name = "MS", default_value_t = 200)]
    pub delay_ms: u64,
    /// Close connections silent for this long
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    pub idle_timeout_ms: u64,
}

impl Embedded {
    /// A reactor serving [`Deferred`] as asked, draining on SIGINT and
    /// SIGTERM, its `listening on ADDR` line printed.
    pub fn reactor(&self) -> io::Result<Reactor> {
        let mut config = Config::default();
        config.idle_timeout = Some(Duration::from_millis(self.idle_timeout_ms));
        let mut reactor = Reactor::with_config(config)?;
        let delay = Duration::from_millis(self.delay_ms);
        let listener = reactor.listen(bind(&self.listen, None), move || Deferred::new(delay))?;
        crate::signals::drain_on_stop(&reactor, DRAIN_DEADLINE)?;
        announce(reactor.local_addr(listener).expect("listener is open"))?;
        Ok(reactor)
    }
}

/// Log a reactor's gauges: what the embedding examples' own timers do, to
/// show that the host loop's sources and the reactor share it.
pub fn log_gauges(reactor: &Reactor) {
    let s = reactor.stats();
    log::info!(
        "open {}, half-closed in {}, accepted {}",
        s.open,
        s.half_closed_in,
        s.accepted
    );
}

/// Print `listening on IP:PORT` (flushed: scripts and tests read it), drain
/// on SIGINT/SIGTERM, and run until the drain ends.
pub fn serve(
    reactor: &mut Reactor,
    listener: ListenerId,
) -> Result<(), Box<dyn std::error::Error>> {
    serve_noting(reactor, listener, None)
}

/// [`serve`], printing `note` as the second line (a TLS certificate's
/// path, for instance), flushed.
pub fn serve_noting(
    reactor: &mut Reactor,
    listener: ListenerId,
    note: Option<String>,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr = reactor.local_addr(listener).expect("listener is open");
    // Installed first: a signal sent as soon as the line is read finds it.
    drain_on_signals(reactor)?;
    announce(addr)?;
    if let Some(note) = note {
        println!("{note}");
        std::io::stdout().flush()?;
    }
    reactor.run()?;
    let stats = reactor.stats();
    log::info!(
        "stopped: {} accepted, {} closed, {} aborted",
        stats.accepted,
        stats.closed,
        stats.aborts
    );
    Ok(())
}

/// Start a graceful drain of `reactor` (bounded by [`DRAIN_DEADLINE`]) on
/// the first SIGINT or SIGTERM.
pub fn drain_on_signals(reactor: &Reactor) -> std::io::Result<()> {
    crate::signals::drain_on_stop(reactor, DRAIN_DEADLINE)
}

/// What a program's `run` returns: its exit code, or an error to print.
pub type ModeResult = Result<std::process::ExitCode, Box<dyn std::error::Error>>;

/// The exit code of `result`: its own, or, for an error, the error printed
/// as `PROG: ERROR` and exit status 1.
pub fn exit_code(prog: &str, result: ModeResult) -> std::process::ExitCode {
    result.unwrap_or_else(|e| {
        eprintln!("{prog}: {e}");
        std::process::ExitCode::FAILURE
    })
}

// ---------------------------------------------------------------- a half-closing client

/// What [`exchange`] sends.
pub struct Request {
    /// The bytes, repeated up to `total` (cut short if `total` is less).
    pub pattern: Vec<u8>,
    /// How many bytes to send in all.
    pub total: u64,
    /// Half-close (`shutdown(SHUT_WR)`) once everything is sent.
    pub half_close: bool,
    /// Give up (abort) after this long without progress either way.
    pub timeout: Option<Duration>,
}

/// How an [`exchange`] ended.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes of the reply.
    pub received: u64,
    /// The reply ended with the server's FIN.
    pub eof: bool,
    /// No progress for the request's timeout: the client gave up.
    pub timed_out: bool,
    /// The error the connection failed with, if it did.
    pub error: Option<io::Error>,
}

/// What [`exchange`] does with each piece of the reply.
type OnReply = Box<dyn FnMut(&[u8])>;

/// The client side of an [`exchange`].
struct Sender {
    request: Request,
    sent: u64,
    last_progress: Instant,
    on_reply: OnReply,
    out: Rc<RefCell<Outcome>>,
}

impl Sender {
    /// Send until everything is out or the queue is write-blocked; then
    /// half-close, unless told not to.
    fn pump(&mut self, conn: &mut Conn<'_>) {
        let (pattern, total) = (&self.request.pattern, self.request.total);
        while self.sent < total && !conn.is_write_blocked() {
            let at = (self.sent % pattern.len() as u64) as usize;
            let n = (total - self.sent).min((pattern.len() - at) as u64) as usize;
            if conn.try_write(&pattern[at..at + n]).is_err() {
                return;
            }
            self.sent += n as u64;
            self.last_progress = Instant::now();
        }
        if self.sent == total && self.request.half_close && conn.may_send() {
            log::info!("{} bytes sent; shutdown(SHUT_WR)", self.sent);
            conn.shutdown_write();
        }
    }
}

impl Handler for Sender {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        log::info!("connected to {:?}", conn.peer_addr().ok());
        self.last_progress = Instant::now();
        if let Some(timeout) = self.request.timeout {
            conn.set_timer(timeout);
        }
        self.pump(conn);
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        let received = {
            let mut out = self.out.borrow_mut();
            out.received += data.len() as u64;
            out.received
        };
        log::debug!("{received} bytes received");
        self.last_progress = Instant::now();
        (self.on_reply)(data);
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        self.pump(conn);
    }

    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        log::info!("end of reply");
        self.out.borrow_mut().eof = true;
        Eof::Close
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        let Some(timeout) = self.request.timeout else {
            return;
        };
        let quiet = self.last_progress.elapsed();
        if quiet < timeout {
            conn.set_timer(timeout - quiet);
            return;
        }
        log::info!("no progress for {quiet:?}: giving up");
        self.out.borrow_mut().timed_out = true;
        conn.abort();
    }

    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        self.out.borrow_mut().error = Some(io::Error::new(err.kind(), err.to_string()));
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        log::info!(
            "connection closed: {} (out {}, in {})",
            closed.reason,
            closed.bytes_out,
            closed.bytes_in
        );
    }
}

/// The TLS options of an example server (feature `tls`; without it they
/// are refused with a clear error).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ServeTls {
    /// Serve TLS with a self-signed certificate for localhost and
    /// 127.0.0.1; its PEM file's path is printed as the second line
    /// (`certificate PATH`)
    #[arg(long = "tls-self-signed", conflicts_with = "cert")]
    pub self_signed: bool,
    /// Serve TLS with this certificate chain (PEM)
    #[arg(long = "tls-cert", value_name = "PEM", requires = "key")]
    pub cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long = "tls-key", value_name = "PEM", requires = "cert")]
    pub key: Option<std::path::PathBuf>,
}

impl ServeTls {
    /// Whether TLS was asked for.
    pub fn wanted(&self) -> bool {
        self.self_signed || self.cert.is_some()
    }

    /// `bind` with TLS if asked for (offering `alpn`), and the line to
    /// print after the listening line: where the self-signed certificate
    /// is.
    pub fn apply(
        &self,
        bind: halfclose::Bind,
        alpn: &[&[u8]],
    ) -> io::Result<(halfclose::Bind, Option<String>)> {
        if !self.wanted() {
            return Ok((bind, None));
        }
        #[cfg(feature = "tls")]
        {
            let (id, note) = if self.self_signed {
                let id = crate::tls::Identity::self_signed(&["localhost", "127.0.0.1"])?;
                let path =
                    std::env::temp_dir().join(format!("halfclose-{}.pem", std::process::id()));
                std::fs::write(&path, &id.cert_pem)?;
                (id, Some(format!("certificate {}", path.display())))
            } else {
                let (cert, key) = (self.cert.as_deref(), self.key.as_deref());
                let id = crate::tls::Identity::from_pem_files(
                    cert.expect("clap requires both"),
                    key.expect("clap requires both"),
                )?;
                (id, None)
            };
            Ok((bind.tls(id.server_config(alpn)?), note))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (bind, alpn);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "built without TLS: add --features tls",
            ))
        }
    }
}

/// The TLS options of an example client (feature `tls`).
#[derive(clap::Args, Debug, Default, Clone)]
pub struct ConnectTls {
    /// Speak TLS, trusting the certificates in this PEM file
    #[arg(long = "tls-ca", value_name = "PEM")]
    pub ca: Option<std::path::PathBuf>,
    /// The server name to ask for and check (SNI)
    #[arg(long = "tls-name", value_name = "NAME", default_value = "localhost")]
    pub name: String,
}

impl ConnectTls {
    /// `to` with TLS if asked for.
    pub fn apply(&self, to: halfclose::Connect) -> io::Result<halfclose::Connect> {
        let Some(ca) = &self.ca else {
            return Ok(to);
        };
        #[cfg(feature = "tls")]
        {
            let mut roots = rustls::RootCertStore::empty();
            use rustls::pki_types::pem::PemObject;
            for cert in rustls::pki_types::CertificateDer::pem_file_iter(ca)
                .map_err(|e| io::Error::other(e.to_string()))?
            {
                roots
                    .add(cert.map_err(|e| io::Error::other(e.to_string()))?)
                    .map_err(|e| io::Error::other(e.to_string()))?;
            }
            let config = crate::tls::client_config(roots)?;
            Ok(to.tls(config, crate::tls::server_name(&self.name)?))
        }
        #[cfg(not(feature = "tls"))]
        {
            let _ = (to, ca);
            Err(io::Error::new(
                io::ErrorKind::Unsupported,
                "built without TLS: add --features tls",
            ))
        }
    }
}

/// Where an example listens: `addr`, or the Unix socket `unix` when given.
/// A Unix socket file that a crashed earlier run left behind (no one
/// listens on it) is removed first; one in use is not.
pub fn bind(addr: &halfclose::Addr, unix: Option<&std::path::Path>) -> halfclose::Bind {
    match (unix, addr) {
        (Some(path), _) => halfclose::Bind::unix(path).remove_stale(),
        (None, halfclose::Addr::Path(path)) => halfclose::Bind::unix(path).remove_stale(),
        (None, addr) => addr.clone().into(),
    }
}

/// Where an example connects: `addr`, or the Unix socket `unix` when given.
pub fn target(addr: &halfclose::Addr, unix: Option<&std::path::Path>) -> halfclose::Connect {
    match unix {
        Some(path) => halfclose::Connect::unix(path),
        None => addr.clone().into(),
    }
}

/// Connect to `to` (a reactor with `config`), send `request`, half-close
/// after it unless told not to, and read the reply to EOF, handing each
/// piece to `on_reply` as it arrives; say how it ended. The client writes
/// only while the connection is not write-blocked and resumes in
/// `handle_write`, so it reads while it sends and any size works.
pub fn exchange(
    to: impl Into<halfclose::Connect>,
    config: Config,
    request: Request,
    on_reply: impl FnMut(&[u8]) + 'static,
) -> Result<Outcome, Box<dyn std::error::Error>> {
    assert!(
        !request.pattern.is_empty() || request.total == 0,
        "nothing to repeat"
    );
    let mut reactor = Reactor::with_config(config)?;
    let out = Rc::new(RefCell::new(Outcome::default()));
    reactor.connect(
        to,
        Sender {
            request,
            sent: 0,
            last_progress: Instant::now(),
            on_reply: Box::new(on_reply),
            out: out.clone(),
        },
    )?;
    reactor.run()?;
    Ok(out.take())
}
