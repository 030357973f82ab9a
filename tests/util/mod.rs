//! Helpers shared by the integration tests: a recording handler, a bounded
//! loop driver, and a non-blocking client that is pumped from the same
//! thread as the reactor (no sleeps, no second thread needed).
#![allow(dead_code)]

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, Reactor, TimerId};

/// How long any bounded wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

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

/// Listen on 127.0.0.1, port 0.
pub fn listen<H: Handler + 'static>(
    reactor: &mut Reactor,
    factory: impl FnMut() -> H + 'static,
) -> SocketAddr {
    let id = reactor
        .listen("127.0.0.1:0".parse().unwrap(), factory)
        .expect("listen");
    reactor.local_addr(id).unwrap()
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

/// What a client read ended with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum End {
    Open,
    Eof,
    Error(io::ErrorKind),
}

/// A non-blocking std client pumped by the test between reactor iterations.
pub struct Client {
    pub sock: TcpStream,
    pub received: Vec<u8>,
    pub end: End,
    out: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let sock = TcpStream::connect(addr).expect("connect");
        sock.set_nonblocking(true).unwrap();
        Client {
            sock,
            received: Vec::new(),
            end: End::Open,
            out: Vec::new(),
        }
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
            match self.sock.write(&self.out) {
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
            match self.sock.read(&mut buf) {
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

    pub fn shutdown_write(&mut self) {
        self.sock.shutdown(Shutdown::Write).expect("shutdown");
    }

    /// Close with RST: `SO_LINGER` 0 then close.
    pub fn reset(self) {
        socket2::SockRef::from(&self.sock)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(self.sock);
    }
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// The path of an example binary, built on first use (`cargo test` builds
/// examples too; the explicit build makes a single `--test` run work).
pub fn example_bin(name: &str) -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> -> target/<profile>/examples/<name>
    let dir = exe
        .parent()
        .and_then(|d| d.parent())
        .expect("target dir")
        .join("examples");
    let path = dir.join(name);
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built.iter().any(|b| b == name) {
        return path;
    }
    let status = std::process::Command::new(env!("CARGO"))
        .args(["build", "--quiet", "--example", name])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build");
    assert!(status.success(), "cargo build --example {name} failed");
    assert!(path.exists(), "{} not found", path.display());
    built.push(name.to_string());
    path
}

/// A running example server; killed on drop if still running.
pub struct Server {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Server {
    /// Start example `name` with `args` (which should include `--listen
    /// 127.0.0.1:0`) and read its first stdout line, `listening on IP:PORT`.
    pub fn start(name: &str, args: &[&str]) -> Server {
        use std::io::BufRead;
        let mut child = std::process::Command::new(example_bin(name))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::inherit())
            .spawn()
            .expect("spawn example");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read first line");
        let addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"))
            .parse()
            .expect("address");
        Server {
            child,
            addr,
            stdout,
        }
    }

    /// Send SIGTERM (via `kill`) and wait for the exit status, bounded by
    /// [`DEADLINE`].
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        self.wait_exit()
    }

    /// Wait for the process to exit, bounded by [`DEADLINE`] (then kill it
    /// and fail).
    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let pid = self.child.id();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let watchdog = std::thread::spawn(move || {
            if rx.recv_timeout(DEADLINE).is_err() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                return true;
            }
            false
        });
        let status = self.child.wait().expect("wait");
        let _ = tx.send(());
        let killed = watchdog.join().unwrap();
        assert!(!killed, "process did not exit within {DEADLINE:?}");
        status
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
