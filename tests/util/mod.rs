//! Helpers shared by the integration tests: a recording handler, a bounded
//! loop driver, and a non-blocking client of either transport that is
//! pumped from the same thread as the reactor (no sleeps, no second thread
//! needed); in submodules, the transports and the macros that run one test
//! definition on each ([`transport`]), child processes ([`process`]),
//! `/proc` readers ([`sys`]) and a capturing logger ([`logs`]), all
//! re-exported here.
//!
//! Every test binary (`reactor`, `examples`, `linux_facts`, `exhaustion`)
//! declares `mod util;` and uses a part of these helpers; what one binary
//! leaves unused must not warn there, hence the `allow`s below.
#![allow(dead_code)]

mod logs;
mod process;
mod sys;
#[cfg(feature = "tls")]
mod tls;
mod transport;

// A test binary that uses none of a submodule's items must not warn.
#[allow(unused_imports)]
pub use logs::*;
#[allow(unused_imports)]
pub use process::*;
#[allow(unused_imports)]
pub use sys::*;
#[cfg(feature = "tls")]
#[allow(unused_imports)]
pub use tls::*;
#[allow(unused_imports)]
pub use transport::*;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{Addr, Closed, Config, Conn, Ctx, Eof, Handler, Reactor, TimerId};

/// How long any bounded wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

pub const KIB: usize = 1024;
pub const MIB: usize = 1024 * KIB;

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// What a handler saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Connect,
    Read(Vec<u8>),
    Eof,
    Write,
    Error(io::ErrorKind),
    Timer,
    Close(Closed),
}

pub type Log = Rc<RefCell<Vec<Ev>>>;

pub fn log() -> Log {
    Rc::new(RefCell::new(Vec::new()))
}

type OnRead = Box<dyn FnMut(&mut Conn<'_>, &[u8])>;
type OnConn = Box<dyn FnMut(&mut Conn<'_>)>;
type OnEof = Box<dyn FnMut(&mut Conn<'_>) -> Eof>;
type OnTimer = Box<dyn FnMut(&mut Conn<'_>, TimerId)>;
type OnClose = Box<dyn FnMut(&mut Ctx<'_>, &Closed)>;

/// A handler that records every callback into a [`Log`] and then runs the
/// optional behaviour the test gave it. Reads are recorded merged: adjacent
/// `Read` events are coalesced so that assertions do not depend on how the
/// kernel split the stream.
pub struct Recorder {
    pub log: Log,
    pub on_connect: Option<OnConn>,
    pub on_read: Option<OnRead>,
    pub on_eof: Option<OnEof>,
    pub on_write: Option<OnConn>,
    pub on_timer: Option<OnTimer>,
    pub on_close: Option<OnClose>,
}

impl Recorder {
    pub fn new(log: &Log) -> Self {
        Recorder {
            log: log.clone(),
            on_connect: None,
            on_read: None,
            on_eof: None,
            on_write: None,
            on_timer: None,
            on_close: None,
        }
    }
    pub fn on_connect(mut self, f: impl FnMut(&mut Conn<'_>) + 'static) -> Self {
        self.on_connect = Some(Box::new(f));
        self
    }
    pub fn on_read(mut self, f: impl FnMut(&mut Conn<'_>, &[u8]) + 'static) -> Self {
        self.on_read = Some(Box::new(f));
        self
    }
    pub fn on_eof(mut self, f: impl FnMut(&mut Conn<'_>) -> Eof + 'static) -> Self {
        self.on_eof = Some(Box::new(f));
        self
    }
    pub fn on_write(mut self, f: impl FnMut(&mut Conn<'_>) + 'static) -> Self {
        self.on_write = Some(Box::new(f));
        self
    }
    pub fn on_timer(mut self, f: impl FnMut(&mut Conn<'_>, TimerId) + 'static) -> Self {
        self.on_timer = Some(Box::new(f));
        self
    }
    pub fn on_close(mut self, f: impl FnMut(&mut Ctx<'_>, &Closed) + 'static) -> Self {
        self.on_close = Some(Box::new(f));
        self
    }
    fn push(&self, ev: Ev) {
        let mut log = self.log.borrow_mut();
        if let (Ev::Read(new), Some(Ev::Read(last))) = (&ev, log.last_mut()) {
            last.extend_from_slice(new);
            return;
        }
        log.push(ev);
    }
}

impl Handler for Recorder {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        self.push(Ev::Connect);
        if let Some(f) = &mut self.on_connect {
            f(conn);
        }
    }
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.push(Ev::Read(data.to_vec()));
        if let Some(f) = &mut self.on_read {
            f(conn, data);
        }
    }
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        self.push(Ev::Eof);
        match &mut self.on_eof {
            Some(f) => f(conn),
            None => Eof::Close,
        }
    }
    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        self.push(Ev::Write);
        if let Some(f) = &mut self.on_write {
            f(conn);
        }
    }
    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        self.push(Ev::Error(err.kind()));
    }
    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        self.push(Ev::Timer);
        if let Some(f) = &mut self.on_timer {
            f(conn, timer);
        }
    }
    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        self.push(Ev::Close(*closed));
        if let Some(f) = &mut self.on_close {
            f(ctx, closed);
        }
    }
}

/// The `Closed` recorded in `log`, if the connection closed.
pub fn closed(log: &Log) -> Option<Closed> {
    log.borrow().iter().find_map(|e| match e {
        Ev::Close(c) => Some(*c),
        _ => None,
    })
}

/// Every byte recorded as read, concatenated.
pub fn read_bytes(log: &Log) -> Vec<u8> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Ev::Read(d) => Some(d.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// How many events of the kind `pred` selects.
pub fn count(log: &Log, pred: impl Fn(&Ev) -> bool) -> usize {
    log.borrow().iter().filter(|e| pred(e)).count()
}

/// The log with reads elided, for order assertions.
pub fn shape(log: &Log) -> Vec<&'static str> {
    log.borrow()
        .iter()
        .map(|e| match e {
            Ev::Connect => "connect",
            Ev::Read(_) => "read",
            Ev::Eof => "eof",
            Ev::Write => "write",
            Ev::Error(_) => "error",
            Ev::Timer => "timer",
            Ev::Close(_) => "close",
        })
        .collect()
}

pub fn reactor() -> Reactor {
    Reactor::new().expect("reactor")
}

pub fn reactor_with(f: impl FnOnce(&mut Config)) -> Reactor {
    let mut config = Config::default();
    f(&mut config);
    Reactor::with_config(config).expect("reactor")
}

/// No timeout may fire during a test: the loop is idle unless the test or
/// the peer does something. For [`reactor_with`].
pub fn no_timeouts(c: &mut Config) {
    c.idle_timeout = None;
    c.peer_eof_timeout = None;
    c.linger_timeout = None;
}

/// Echoes every byte back.
pub struct Echo;

impl Handler for Echo {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        conn.write(data);
    }
}

/// Listen on 127.0.0.1, port 0 (for tests that run on TCP only; see
/// [`Transport::listen`] for the others).
pub fn listen<H: Handler + 'static>(
    reactor: &mut Reactor,
    factory: impl FnMut() -> H + 'static,
) -> SocketAddr {
    let id = reactor.listen("127.0.0.1:0", factory).expect("listen");
    reactor.local_addr(id).and_then(|a| a.inet()).unwrap()
}

/// An [`Echo`] factory for [`listen`] that counts in `made` the handlers
/// it made.
pub fn counted_echo(made: &Rc<Cell<usize>>) -> impl FnMut() -> Echo + 'static {
    let made = made.clone();
    move || {
        made.set(made.get() + 1);
        Echo
    }
}

/// Drive the reactor until `cond` holds; fail after [`DEADLINE`]. Returns
/// the number of iterations it took.
#[track_caller]
pub fn run_until(reactor: &mut Reactor, mut cond: impl FnMut(&mut Reactor) -> bool) -> usize {
    let start = Instant::now();
    let mut iters = 0;
    while !cond(reactor) {
        assert!(
            start.elapsed() < DEADLINE,
            "condition not reached within {DEADLINE:?}"
        );
        reactor
            .run_once(Some(Duration::from_millis(5)))
            .expect("run_once");
        iters += 1;
    }
    iters
}

/// Drive the reactor `n` more iterations, each waiting at most `wait`: time
/// for anything that must not happen to show.
pub fn turns(reactor: &mut Reactor, n: usize, wait: Duration) {
    for _ in 0..n {
        reactor.run_once(Some(wait)).expect("run_once");
    }
}

/// What a client read ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Open,
    Eof,
    Error(io::ErrorKind),
}

impl End {
    /// How a read to the end ended ([`read_to_end_or_error`]).
    pub fn of(end: &io::Result<()>) -> End {
        match end {
            Ok(()) => End::Eof,
            Err(e) => End::Error(e.kind()),
        }
    }
}

/// An address to connect to: an [`Addr`] or a TCP [`SocketAddr`].
pub trait IntoAddr {
    fn into_addr(self) -> Addr;
}

impl IntoAddr for Addr {
    fn into_addr(self) -> Addr {
        self
    }
}

impl IntoAddr for &Addr {
    fn into_addr(self) -> Addr {
        self.clone()
    }
}

impl IntoAddr for SocketAddr {
    fn into_addr(self) -> Addr {
        Addr::Inet(self)
    }
}

/// A non-blocking std client of either transport, pumped by the test
/// between reactor iterations.
pub struct Client {
    pub sock: Stream,
    pub received: Vec<u8>,
    pub end: End,
    out: Vec<u8>,
}

impl Client {
    pub fn connect(at: impl IntoAddr) -> Client {
        Client::over(Stream::connect(&at.into_addr()).expect("connect"))
    }

    /// A client on a stream the test connected itself.
    pub fn over(sock: Stream) -> Client {
        sock.set_nonblocking(true).unwrap();
        Client {
            sock,
            received: Vec::new(),
            end: End::Open,
            out: Vec::new(),
        }
    }

    /// Connect, send `data`, and half-close (`shutdown(SHUT_WR)`): a
    /// client that has said all it will.
    pub fn request(at: impl IntoAddr, data: &[u8]) -> Client {
        let mut c = Client::connect(at);
        c.send(data);
        c.shutdown_write();
        c
    }

    /// Queue bytes to send; [`pump`](Client::pump) sends them.
    pub fn send(&mut self, data: &[u8]) {
        self.out.extend_from_slice(data);
        self.pump_out();
    }

    pub fn unsent(&self) -> usize {
        self.out.len()
    }

    fn pump_out(&mut self) {
        while !self.out.is_empty() {
            match (&self.sock).write(&self.out) {
                Ok(n) => {
                    self.out.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.end = End::Error(e.kind());
                    return;
                }
            }
        }
    }

    /// Send what is queued and read what has arrived; returns self for
    /// chaining in conditions.
    pub fn pump(&mut self) -> &mut Self {
        self.pump_out();
        let mut buf = [0u8; 65536];
        while self.end == End::Open {
            match (&self.sock).read(&mut buf) {
                Ok(0) => self.end = End::Eof,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => self.end = End::Error(e.kind()),
            }
        }
        self
    }

    /// Whether the read side ended (EOF or error).
    pub fn done(&mut self) -> bool {
        self.pump().end != End::Open
    }

    /// What was read is all of `reply`, byte for byte, and the read side
    /// ended with a clean EOF (FIN), not a reset.
    #[track_caller]
    pub fn assert_whole_reply(&self, reply: &[u8]) {
        assert_eq!(
            self.end,
            End::Eof,
            "the reply did not end with a clean EOF (FIN, not RST)"
        );
        assert_eq!(self.received.len(), reply.len());
        assert!(self.received == reply, "the reply arrived corrupted");
    }

    pub fn shutdown_write(&mut self) {
        self.sock.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Close so that the reactor's reads fail with `ECONNRESET`: RST on
    /// TCP, a close with unread input on a Unix socket (see
    /// [`Stream::reset`]: the server must have sent something first).
    #[track_caller]
    pub fn reset(self) {
        self.sock.reset();
    }
}

/// Deterministic pseudo-random bytes, so failures reproduce: the tools'
/// one seeded generator ([`halfclose_tools::rng::bytes`]).
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    halfclose_tools::rng::bytes(len, seed)
}

/// Send `data` on `client` and drive the reactor until it comes back.
#[track_caller]
pub fn echo_round_trip(r: &mut Reactor, client: &mut Client, data: &[u8]) {
    let want = client.received.len() + data.len();
    client.send(data);
    run_until(r, |_| {
        client.pump().received.len() >= want || client.end != End::Open
    });
    assert_eq!(
        client.end,
        End::Open,
        "connection ended during an echo round trip"
    );
    assert_eq!(&client.received[want - data.len()..], data);
}

/// A blocking std connection to `at` whose reads and writes fail after
/// [`DEADLINE`] instead of hanging the test.
pub fn blocking_connect(at: impl IntoAddr) -> Stream {
    let s = Stream::connect(&at.into_addr()).expect("connect");
    s.set_timeouts(DEADLINE);
    s
}

/// A blocking client of a line-based protocol (the chat, HTTP/1.1); every
/// read is bounded by [`DEADLINE`].
pub struct LineClient {
    pub reader: io::BufReader<Stream>,
    pub writer: Stream,
}

impl LineClient {
    pub fn connect(at: impl IntoAddr) -> LineClient {
        let writer = Stream::connect(&at.into_addr()).expect("connect");
        writer.set_read_timeout(Some(DEADLINE)).unwrap();
        writer.set_nodelay(true).unwrap();
        LineClient {
            reader: io::BufReader::new(writer.try_clone().unwrap()),
            writer,
        }
    }

    pub fn send(&mut self, data: impl AsRef<[u8]>) {
        self.writer.write_all(data.as_ref()).expect("send");
    }

    /// The next line, with its line end; EOF fails.
    #[track_caller]
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        let n = io::BufRead::read_line(&mut self.reader, &mut line).expect("read a line");
        assert!(n > 0, "EOF where a line was expected");
        line
    }

    /// The next line must be `want` (without its `\n`).
    #[track_caller]
    pub fn expect(&mut self, want: &str) {
        let line = self.line();
        assert_eq!(line.strip_suffix('\n').unwrap_or(&line), want);
    }

    /// The server closed: a clean EOF, not a reset, and nothing before it.
    #[track_caller]
    pub fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        self.reader
            .read_to_end(&mut rest)
            .expect("a clean EOF, not an error");
        assert!(
            rest.is_empty(),
            "unexpected bytes before EOF: {:?}",
            String::from_utf8_lossy(&rest)
        );
    }
}

/// Read until EOF or an error; returns what was read and how it ended.
pub fn read_to_end_or_error(s: &mut impl Read) -> (Vec<u8>, io::Result<()>) {
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * KIB];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e)),
        }
    }
}
