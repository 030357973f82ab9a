//! Timer churn through the public API: `Conn::set_timer` and
//! `Conn::cancel_timer` on an open connection, and timers expiring through
//! `Reactor::run_once` to `Handler::handle_timer`.
//!
//! cargo bench --bench timer
//!
//! The timer queue itself is private to the crate (its unit tests live in
//! `src/timer.rs`); what is measured here is what a handler pays: the
//! queue, the id checks, and for expiry the loop's dispatch to the
//! handler. Loopback only, port 0.

use std::cell::Cell;
use std::net::TcpListener;
use std::rc::Rc;
use std::time::{Duration, Instant};

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use halfclose::{Conn, ConnId, Handler, Reactor, TimerId};

/// Counts its timers; ignores input.
struct Ticks(Rc<Cell<u64>>);

impl Handler for Ticks {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, _data: &[u8]) {}

    fn handle_timer(&mut self, _conn: &mut Conn<'_>, _timer: TimerId) {
        self.0.set(self.0.get() + 1);
    }
}

/// A reactor with one established outbound connection, its id, the fired
/// timer count, and the peer socket (kept open).
fn setup() -> (Reactor, ConnId, Rc<Cell<u64>>, std::net::TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    let mut reactor = Reactor::new().expect("reactor");
    let fired = Rc::new(Cell::new(0));
    let id = reactor
        .connect(listener.local_addr().unwrap(), Ticks(Rc::clone(&fired)))
        .expect("connect");
    let (peer, _) = listener.accept().expect("accept");
    let deadline = Instant::now() + Duration::from_secs(5);
    while reactor.stats().connected == 0 {
        assert!(Instant::now() < deadline, "connect did not complete");
        reactor
            .run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
    }
    (reactor, id, fired, peer)
}

fn timers(c: &mut Criterion) {
    let (mut reactor, id, fired, _peer) = setup();
    let mut g = c.benchmark_group("timer");

    g.bench_function("set_then_cancel", |b| {
        b.iter(|| {
            let mut conn = reactor.conn(id).expect("open");
            let t = conn.set_timer(black_box(Duration::from_secs(60)));
            black_box(conn.cancel_timer(t))
        })
    });

    // The same with 10,000 other timers pending, deadlines spread over an
    // hour: the heap is deep, as on a server holding that many connections.
    {
        let pending: Vec<TimerId> = {
            let mut conn = reactor.conn(id).expect("open");
            (0..10_000u64)
                .map(|i| conn.set_timer(Duration::from_millis(60_000 + (i * 7919) % 3_600_000)))
                .collect()
        };
        g.bench_function("set_then_cancel_10k_pending", |b| {
            b.iter(|| {
                let mut conn = reactor.conn(id).expect("open");
                let t = conn.set_timer(black_box(Duration::from_secs(90)));
                black_box(conn.cancel_timer(t))
            })
        });
        let mut conn = reactor.conn(id).expect("open");
        for t in pending {
            assert!(conn.cancel_timer(t));
        }
    }

    // 1,000 timers set to expire at once, then fired through run_once to
    // handle_timer: set, pop, dispatch.
    g.throughput(Throughput::Elements(1_000));
    g.bench_function("set_and_fire_1000", |b| {
        b.iter(|| {
            let start = fired.get();
            {
                let mut conn = reactor.conn(id).expect("open");
                for _ in 0..1_000 {
                    conn.set_timer(Duration::ZERO);
                }
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while fired.get() - start < 1_000 {
                assert!(Instant::now() < deadline, "timers did not fire");
                reactor.run_once(Some(Duration::ZERO)).expect("run_once");
            }
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = timers
}
criterion_main!(benches);
