//! What the allocation benches share: a half-close echo server on a
//! [`Reactor`] driven by this thread, and a client of plain std
//! `TcpStream`s on a thread of its own, started once and told how many
//! connections to make through atomics (no channel), so that between two
//! checkpoints the client allocates nothing and whatever the global
//! allocator sees is the server's path from accept to close.
//!
//! The benches pick the global allocator (a counting one, or `dhat`'s
//! profiler); this module never names it.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use halfclose::{Config, Conn, Eof, Handler, Reactor, TimerId};

/// Connections run before counting starts, so that the slab, the timer
/// queue, the event and id vectors reach the capacity that the counted run
/// needs.
pub const WARMUP: usize = 1_000;
/// Connections counted.
pub const N: usize = 10_000;
/// The request each client sends before its FIN; the echo is checked.
pub const REQUEST: &[u8] = &[b'x'; 64];
/// How long `held` keeps a half-closed connection before it replies.
pub const HOLD: Duration = Duration::from_millis(20);

/// What the server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `examples/echo.rs`: echoes each read at once; the client's FIN
    /// closes it (`Eof::Close`, the default). 100 connections at a time.
    Echo,
    /// `tools/src/halfclosed/server.rs`'s `HoldEcho` with no hold: collects
    /// the request to the FIN, answers it, closes (`Eof::HalfClose`). 100
    /// at a time.
    HalfClose,
    /// The same in a reactor that keeps its handlers inline
    /// (`Reactor::with_inline_handlers`): no box per connection.
    HalfCloseInline,
    /// The same handler holding each connection half-closed for
    /// [`HOLD`] with a timer, then answering: 1,000 held at once.
    Held,
}

impl Shape {
    /// Every shape, in the order the benches print them.
    pub const ALL: [Shape; 4] = [
        Shape::Echo,
        Shape::HalfClose,
        Shape::HalfCloseInline,
        Shape::Held,
    ];

    /// Its name in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Shape::Echo => "echo (Eof::Close)",
            Shape::HalfClose => "half-close echo",
            Shape::HalfCloseInline => "half-close echo, inline handlers",
            Shape::Held => "held 20 ms, 1,000 at once",
        }
    }

    /// A short name, for file names.
    #[allow(dead_code)] // `alloc_sites` only
    pub fn slug(self) -> &'static str {
        match self {
            Shape::Echo => "echo",
            Shape::HalfClose => "halfclose",
            Shape::HalfCloseInline => "halfclose-inline",
            Shape::Held => "held",
        }
    }

    /// How many connections the client opens before it reads any reply.
    fn batch(self) -> usize {
        match self {
            Shape::Echo | Shape::HalfClose | Shape::HalfCloseInline => 100,
            Shape::Held => 1_000,
        }
    }
}

/// `examples/echo.rs`'s handler, unchanged.
struct Echo;

impl Handler for Echo {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if conn.try_write(data).is_ok() && conn.is_write_blocked() {
            conn.pause_reading();
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
}

/// The benchmark's `HoldEcho` without its gauges: the request is kept to
/// the client's FIN, then (after the hold, if any) written back.
struct HoldEcho {
    request: Vec<u8>,
    hold: Option<Duration>,
}

impl HoldEcho {
    fn reply(&mut self, conn: &mut Conn<'_>) {
        let request = std::mem::take(&mut self.request);
        conn.write(&request);
        conn.close();
    }
}

impl Handler for HoldEcho {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.request.extend_from_slice(data);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        match self.hold {
            None => self.reply(conn),
            Some(hold) => {
                conn.set_timer(hold);
            }
        }
        Eof::HalfClose
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        self.reply(conn);
    }
}

/// What the client thread and the server's thread share.
#[derive(Default)]
struct Shared {
    /// Connections the next job makes.
    count: AtomicUsize,
    /// Jobs handed out; `usize::MAX` tells the client to stop.
    jobs: AtomicUsize,
    /// Jobs finished.
    done: AtomicUsize,
    /// The client met an error or a wrong echo (it says which on stderr).
    failed: AtomicBool,
}

/// A server reactor, its client thread, and the job count.
pub struct Bench {
    shape: Shape,
    reactor: Reactor,
    shared: Arc<Shared>,
    client: Option<JoinHandle<()>>,
    jobs: usize,
}

impl Bench {
    /// A server listening on 127.0.0.1, port 0, and its idle client.
    pub fn start(shape: Shape) -> Bench {
        let mut config = Config::default();
        config.backlog = 4096;
        let mut reactor = match shape {
            Shape::HalfCloseInline => Reactor::with_inline_handlers::<HoldEcho>(config),
            _ => Reactor::with_config(config),
        }
        .expect("server reactor");
        let id = match shape {
            Shape::Echo => reactor.listen("127.0.0.1:0", || Echo),
            Shape::HalfClose | Shape::HalfCloseInline | Shape::Held => {
                let hold = (shape == Shape::Held).then_some(HOLD);
                reactor.listen("127.0.0.1:0", move || HoldEcho {
                    request: Vec::new(),
                    hold,
                })
            }
        }
        .expect("listen");
        let addr = reactor.local_addr(id).and_then(|a| a.inet()).unwrap();
        let shared = Arc::new(Shared::default());
        let s = Arc::clone(&shared);
        let batch = shape.batch();
        let client = std::thread::Builder::new()
            .name("alloc-client".into())
            .spawn(move || client(addr, batch, &s))
            .expect("client thread");
        Bench {
            shape,
            reactor,
            shared,
            client: Some(client),
            jobs: 0,
        }
    }

    /// Run `count` connections from connect to close on both sides: the
    /// client has read every echo to EOF and the server has no connection
    /// open. Allocates nothing of its own.
    pub fn run(&mut self, count: usize) {
        assert_eq!(count % self.shape.batch(), 0, "whole batches");
        let closed0 = self.reactor.stats().closed;
        self.shared.count.store(count, Ordering::SeqCst);
        self.jobs += 1;
        self.shared.jobs.store(self.jobs, Ordering::SeqCst);
        self.client.as_ref().expect("client").thread().unpark();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let stats = self.reactor.stats();
            if self.shared.done.load(Ordering::SeqCst) == self.jobs
                && stats.open == 0
                && stats.closed - closed0 == count as u64
            {
                break;
            }
            assert!(
                !self.shared.failed.load(Ordering::SeqCst),
                "the client failed"
            );
            assert!(
                Instant::now() < deadline,
                "{count} connections: not done in 120 s"
            );
            self.reactor
                .run_once(Some(Duration::from_millis(5)))
                .expect("server run_once");
        }
        let s = self.reactor.stats();
        assert_eq!(
            (s.resets, s.timeouts, s.errors, s.aborts, s.panics),
            (0, 0, 0, 0, 0),
            "every connection closed cleanly"
        );
    }

    /// The server's figures so far.
    pub fn stats(&self) -> halfclose::Stats {
        self.reactor.stats()
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        self.shared.jobs.store(usize::MAX, Ordering::SeqCst);
        if let Some(client) = self.client.take() {
            client.thread().unpark();
            let _ = client.join();
        }
    }
}

/// The client thread: for each job, `count` connections in batches of
/// `batch`: connect them all, send each its request and FIN, then read each
/// echo to EOF and drop them. Its vector is allocated once, here.
fn client(addr: SocketAddr, batch: usize, shared: &Shared) {
    let mut conns: Vec<TcpStream> = Vec::with_capacity(batch);
    let mut buf = [0u8; 256];
    let mut seen = 0;
    loop {
        let jobs = shared.jobs.load(Ordering::SeqCst);
        if jobs == usize::MAX {
            return;
        }
        if jobs == seen {
            std::thread::park();
            continue;
        }
        seen = jobs;
        let count = shared.count.load(Ordering::SeqCst);
        if let Err(e) = run_job(addr, count, &mut conns, &mut buf) {
            eprintln!("alloc client: {e}");
            shared.failed.store(true, Ordering::SeqCst);
            return;
        }
        conns.clear();
        shared.done.store(seen, Ordering::SeqCst);
    }
}

fn run_job(
    addr: SocketAddr,
    count: usize,
    conns: &mut Vec<TcpStream>,
    buf: &mut [u8; 256],
) -> std::io::Result<()> {
    let batch = conns.capacity();
    for _ in 0..count / batch {
        for _ in 0..batch {
            conns.push(TcpStream::connect(addr)?);
        }
        for c in conns.iter_mut() {
            c.write_all(REQUEST)?;
            c.shutdown(Shutdown::Write)?;
        }
        for c in conns.iter_mut() {
            let mut got = 0;
            loop {
                let n = c.read(&mut buf[got..])?;
                if n == 0 {
                    break;
                }
                got += n;
            }
            if &buf[..got] != REQUEST {
                return Err(std::io::Error::other("the echo differs from the request"));
            }
        }
        conns.clear();
    }
    Ok(())
}
