//! The in-process lifecycle of 1,000 half-closed connections: a server
//! reactor and a client reactor in one thread, driven alternately with
//! `run_once`, over loopback (port 0).
//!
//! cargo bench --bench lifecycle
//!
//! Each connection: connect, 64 request bytes, the client's FIN, the
//! server's `Eof::HalfClose`, the reply, the server's close, the client's
//! EOF. Two shapes: `echo_1000` replies as soon as the FIN is read (1,000
//! connections, at most 1,000 at once); `hold_all_1000` keeps all 1,000
//! half-closed at once before it releases them with a timer each. One
//! iteration is 1,000 lifecycles, both sides' work included; the server
//! alone is measured by `halfclosed` (`cargo run --release --example halfclosed`).
//!
//! Needs about 2,000 descriptors (raise `ulimit -n` if the soft limit is
//! 1,024).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use halfclose::{Config, Conn, ConnId, Eof, Handler, Reactor, TimerId};

const N: usize = 1_000;
const REQUEST: &[u8] = &[b'x'; 64];

/// The server side: collects the request; at the client's FIN either
/// replies and closes, or (holding) records its id and waits for a timer.
struct Server {
    request: Vec<u8>,
    held: Option<Rc<RefCell<Vec<ConnId>>>>,
}

impl Server {
    fn reply(&mut self, conn: &mut Conn<'_>) {
        conn.write(&self.request);
        conn.close();
    }
}

impl Handler for Server {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.request.extend_from_slice(data);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        match &self.held {
            Some(held) => held.borrow_mut().push(conn.id()),
            None => self.reply(conn),
        }
        Eof::HalfClose
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        self.reply(conn);
    }
}

/// The client side: request, FIN, reply to EOF.
struct Client {
    got: usize,
    done: Rc<Cell<usize>>,
}

impl Handler for Client {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        conn.write(REQUEST);
        conn.shutdown_write();
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.got += data.len();
    }

    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        assert_eq!(self.got, REQUEST.len(), "whole reply before EOF");
        self.done.set(self.done.get() + 1);
        Eof::Close
    }
}

struct Pair {
    server: Reactor,
    client: Reactor,
    addr: SocketAddr,
    held: Rc<RefCell<Vec<ConnId>>>,
    done: Rc<Cell<usize>>,
}

impl Pair {
    fn new(hold: bool) -> Pair {
        let mut config = Config::default();
        config.backlog = 4096;
        let mut server = Reactor::with_config(config).expect("server reactor");
        let held = Rc::new(RefCell::new(Vec::new()));
        let h = Rc::clone(&held);
        let id = server
            .listen("127.0.0.1:0", move || Server {
                request: Vec::new(),
                held: hold.then(|| Rc::clone(&h)),
            })
            .expect("listen");
        let addr = server.local_addr(id).and_then(|a| a.inet()).unwrap();
        Pair {
            server,
            client: Reactor::new().expect("client reactor"),
            addr,
            held,
            done: Rc::new(Cell::new(0)),
        }
    }

    /// Turn both loops until `cond`, bounded in time.
    fn drive(&mut self, what: &str, mut cond: impl FnMut(&Pair) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !cond(self) {
            assert!(Instant::now() < deadline, "{what}: not done in 20 s");
            self.server
                .run_once(Some(Duration::ZERO))
                .expect("server run_once");
            self.client
                .run_once(Some(Duration::ZERO))
                .expect("client run_once");
        }
    }

    fn connect_all(&mut self) {
        for _ in 0..N {
            let done = Rc::clone(&self.done);
            self.client
                .connect(self.addr, Client { got: 0, done })
                .expect("connect");
        }
    }

    /// 1,000 exchanges answered at the client's FIN.
    fn echo(&mut self) {
        self.done.set(0);
        self.connect_all();
        self.drive("echo", |p| {
            p.done.get() == N && p.server.stats().open == 0 && p.client.stats().open == 0
        });
    }

    /// 1,000 connections all half-closed at once, then released.
    fn hold_all(&mut self) {
        self.done.set(0);
        self.connect_all();
        self.drive("hold", |p| p.held.borrow().len() == N);
        assert_eq!(self.server.stats().half_closed_in, N);
        for id in self.held.borrow_mut().drain(..) {
            self.server
                .conn(id)
                .expect("held connection")
                .set_timer(Duration::ZERO);
        }
        self.drive("release", |p| {
            p.done.get() == N && p.server.stats().open == 0 && p.client.stats().open == 0
        });
    }
}

fn lifecycle(c: &mut Criterion) {
    let soft = halfclose_tools::fdlimit::nofile().map_or(None, |(soft, _)| soft);
    if soft.is_some_and(|n| n < 2 * N as u64 + 64) {
        eprintln!(
            "lifecycle: skipped: needs about {} descriptors; raise ulimit -n",
            2 * N + 64
        );
        return;
    }
    let mut g = c.benchmark_group("lifecycle");
    g.throughput(Throughput::Elements(N as u64));
    let mut pair = Pair::new(false);
    g.bench_function("echo_1000", |b| b.iter(|| pair.echo()));
    let mut pair = Pair::new(true);
    g.bench_function("hold_all_1000", |b| b.iter(|| pair.hold_all()));
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    targets = lifecycle
}
criterion_main!(benches);
