//! Scenario group D of docs/scenarios.md (connect and accept), and the
//! listener's configuration: backlog, `SO_REUSEPORT`, `max_connections`.
//!
//! TCP only. Most of it is TCP by nature: a connect in progress (D2, D4: a
//! Unix connect completes or fails at once), a connect refused by RST
//! (D3), `EMFILE` at a TCP listener (D1), clients that reset with
//! `SO_LINGER` 0 (D6: a Unix socket has no reset), the SYN backlog and
//! `SO_REUSEPORT` (none for Unix sockets). D5 (ids and slot reuse) and D7
//! (accept batches) do not depend on the transport, and run on TCP. What
//! is Unix's own (a refused connect to a socket file, names, stale files)
//! is in [`super::unix`].

use crate::util::*;

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{Closed, ConnId, Reactor, Reason};

/// The far end of an outbound connection: a std listener on port 0 that
/// accepts one connection and reads it, pumped from the test thread.
struct Peer {
    listener: TcpListener,
    stream: Option<TcpStream>,
    accepted: bool,
    received: Vec<u8>,
    eof: bool,
}

impl Peer {
    fn new() -> Peer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).unwrap();
        Peer {
            listener,
            stream: None,
            accepted: false,
            received: Vec::new(),
            eof: false,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap()
    }

    /// Accept the one connection if it is there, and read what arrived.
    fn pump(&mut self) -> &mut Self {
        if !self.accepted {
            match self.listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(true).unwrap();
                    self.stream = Some(s);
                    self.accepted = true;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => panic!("peer accept: {e}"),
            }
        }
        let mut buf = [0u8; 65536];
        while let (Some(s), false) = (&mut self.stream, self.eof) {
            match s.read(&mut buf) {
                Ok(0) => self.eof = true,
                Ok(n) => self.received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("peer read: {e}"),
            }
        }
        self
    }

    fn write(&mut self, data: &[u8]) {
        self.stream
            .as_mut()
            .expect("accepted")
            .write_all(data)
            .expect("peer write");
    }

    /// Close our end: FIN (everything sent to us was read).
    fn close(&mut self) {
        self.stream = None;
    }
}

/// A loopback address nothing listens on: a port the kernel just handed
/// out, released again.
fn refused_addr() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().unwrap()
}

/// The outcome callbacks in a log: (connects, errors, closes).
fn outcomes(log: &Log) -> (usize, usize, usize) {
    (
        count(log, |e| *e == Ev::Connect),
        count(log, |e| matches!(e, Ev::Error(_))),
        count(log, |e| matches!(e, Ev::Close(_))),
    )
}

/// A reactor with one outbound connection to `addr`, recorded in the
/// returned log.
fn connecting(addr: SocketAddr) -> (Reactor, Log, ConnId) {
    let log = log();
    let mut r = reactor();
    let id = r.connect(addr, Recorder::new(&log)).expect("connect");
    (r, log, id)
}

/// Drive `r` until the connection recorded in `log` closed, then a few
/// more turns, for anything that would wrongly follow the close to show.
#[track_caller]
fn run_until_closed(r: &mut Reactor, log: &Log) -> Closed {
    run_until(r, |_| closed(log).is_some());
    turns(r, 5, ms(1));
    closed(log).unwrap()
}

/// The refused connect recorded in `log` was reported once, as
/// `handle_error(ConnectionRefused)`, never as a connect, and then closed
/// with that error as its reason.
#[track_caller]
fn assert_refused_once(log: &Log) -> Closed {
    assert_eq!(shape(log), ["error", "close"], "{:?}", log.borrow());
    assert_eq!(log.borrow()[0], Ev::Error(io::ErrorKind::ConnectionRefused));
    let c = closed(log).unwrap();
    assert_eq!(c.reason, Reason::Error(io::ErrorKind::ConnectionRefused));
    c
}

/// Write `chunks` on connection `id` while its connect is pending: every
/// byte is queued, none can have gone out yet. Returns how many.
#[track_caller]
fn write_while_connecting(r: &mut Reactor, id: ConnId, chunks: &[Vec<u8>]) -> usize {
    let mut c = r.conn(id).expect("open");
    for chunk in chunks {
        c.write(chunk);
    }
    let total = chunks.iter().map(Vec::len).sum();
    assert_eq!(c.pending(), total);
    total
}

// ---------------------------------------------------------------------------
// D1: EMFILE on accept
// ---------------------------------------------------------------------------

/// Set in the environment of the child process that runs
/// `d1_child_under_emfile`; its value is the descriptor limit.
const D1_CHILD_ENV: &str = "HALFCLOSE_D1_CHILD";
/// RLIMIT_NOFILE of the child.
const D1_NOFILE: usize = 64;
/// Connections left in the accept queue when the reactor runs out.
const D1_PENDING: usize = 30;

/// D1 (libuv test-emfile, Twisted's EMFILE reservation, V7): when `accept`
/// fails with `EMFILE` the listener stays readable. Pins that the reactor
/// then neither spins (CPU time and loop iterations stay small for a
/// second of exhaustion), that it counts the exhaustion, that pending
/// clients get an answer (shed with EOF/RST through the reserve
/// descriptor, or served once descriptors are free again), that a
/// connection established before keeps working, and that the listener
/// serves new clients afterwards.
///
/// The descriptor limit is lowered in a child process (this test binary,
/// re-executed under `prlimit`), so that this process keeps its own.
#[test]
fn d1_emfile_no_spin_sheds_and_recovers() {
    // The child bounds its own waits; the limit only guards against a hang.
    let out = run_child(
        "reactor::connect_accept::d1_child_under_emfile",
        D1_CHILD_ENV,
        &D1_NOFILE.to_string(),
        Some(D1_NOFILE),
        DEADLINE * 3,
    );
    tagged_lines(&out, "D1 OK");
}

/// The body of D1, run only in the child process that
/// `d1_emfile_no_spin_sheds_and_recovers` starts under a low descriptor
/// limit; a no-op in a normal run.
#[test]
fn d1_child_under_emfile() {
    let Some(limit) = child_value(D1_CHILD_ENV) else {
        return;
    };
    let limit: usize = limit.parse().expect("descriptor limit");
    assert_eq!(
        nofile_limits().0,
        limit,
        "the child does not run under the expected limit"
    );
    // Opened now: under exhaustion no file can be opened.
    let mut stat = ProcFile::open("/proc/self/stat");

    let backoff = Duration::from_millis(100);
    let mut r = reactor_with(|c| {
        // Few connections per wakeup, so that shedding takes a while and
        // the exhaustion lasts through the measurement.
        c.accept_batch = 2;
        c.accept_backoff = backoff;
    });
    let addr = listen(&mut r, || Echo);

    let mut veteran = Client::connect(addr);
    run_until(&mut r, |r| r.stats().accepted == 1);
    echo_round_trip(&mut r, &mut veteran, b"before exhaustion");

    // Each client takes a descriptor here and, once accepted, one in the
    // reactor: with `free` left, the reactor accepts `free - k` of `k`
    // clients and the rest wait in the accept queue.
    let used = open_fds();
    let free = limit - used;
    assert!(
        free >= D1_PENDING + 10,
        "only {free} descriptors free of {limit}"
    );
    let k = (free + D1_PENDING) / 2;
    let mut clients: Vec<Option<Client>> = (0..k).map(|_| Some(Client::connect(addr))).collect();

    run_until(&mut r, |r| r.stats().fd_exhausted > 0);
    let first = r.stats();
    assert!(
        first.accepted < 1 + k as u64,
        "every client was accepted: no exhaustion"
    );

    // One second of exhaustion, the loop driven as an embedder would.
    let cpu_before = stat.cpu_ticks();
    let start = Instant::now();
    let (mut iters, mut busy) = (0u32, 0u32);
    while start.elapsed() < Duration::from_secs(1) {
        if r.run_once(Some(Duration::from_millis(10)))
            .expect("run_once")
            > 0
        {
            busy += 1;
        }
        iters += 1;
    }
    let wall = start.elapsed();
    let cpu = stat.cpu_ticks() - cpu_before;
    let at_window_end = r.stats();
    let wall_ticks = wall.as_millis() as u64 * USER_HZ / 1000;
    assert!(
        cpu * 4 < wall_ticks,
        "spinning: {cpu} CPU ticks in {wall:?} ({iters} iterations, {busy} busy)"
    );
    // About one iteration per 10 ms poll timeout, and one busy iteration
    // per back-off; a spinning loop makes thousands.
    assert!(iters <= 300, "{iters} loop iterations in {wall:?}");
    assert!(busy <= 60, "{busy} busy loop iterations in {wall:?}");
    assert!(at_window_end.fd_exhausted >= 1);
    assert!(
        at_window_end.refused >= 1,
        "no pending connection was shed: {at_window_end:?}"
    );

    // The connection from before the exhaustion still works, descriptors
    // still exhausted.
    echo_round_trip(&mut r, &mut veteran, b"during exhaustion");

    // Every client gets an answer: shed (EOF, or RST if our probe was
    // unread) or served (its probe echoed). Shed clients are dropped,
    // which frees descriptors, so the clients still queued are served.
    for c in clients.iter_mut().flatten() {
        c.send(b"probe");
    }
    let mut settled = vec![false; k];
    let (mut shed, mut served) = (0usize, 0usize);
    let start = Instant::now();
    while settled.iter().any(|s| !s) {
        assert!(
            start.elapsed() < DEADLINE,
            "pending clients got no answer: shed {shed}, served {served} of {k}; {:?}",
            r.stats()
        );
        r.run_once(Some(Duration::from_millis(10)))
            .expect("run_once");
        for (i, slot) in clients.iter_mut().enumerate() {
            if settled[i] {
                continue;
            }
            let c = slot.as_mut().unwrap();
            c.pump();
            match &c.end {
                End::Open if c.received == b"probe" => {
                    served += 1;
                    settled[i] = true;
                }
                End::Open => {}
                End::Eof | End::Error(io::ErrorKind::ConnectionReset) => {
                    assert!(
                        c.received.is_empty(),
                        "a shed client received {:?}",
                        c.received
                    );
                    shed += 1;
                    settled[i] = true;
                    *slot = None;
                }
                other => panic!("client {i} ended with {other:?}"),
            }
        }
    }
    let settled_stats = r.stats();
    assert_eq!(shed + served, k);
    assert_eq!(settled_stats.refused, shed as u64, "{settled_stats:?}");
    assert_eq!(
        settled_stats.accepted,
        1 + served as u64,
        "{settled_stats:?}"
    );
    let served_after_recovery = settled_stats.accepted - at_window_end.accepted;
    assert!(
        served_after_recovery >= 1,
        "no queued client was served once descriptors were free: {settled_stats:?}"
    );

    // The listener is back in service.
    let mut fresh = Client::connect(addr);
    echo_round_trip(&mut r, &mut fresh, b"after recovery");
    echo_round_trip(&mut r, &mut veteran, b"still here");
    println!(
        "D1 OK clients={k} free_fds={free} shed={shed} served={served} \
         served_after_recovery={served_after_recovery} fd_exhausted={} \
         cpu_ticks={cpu} wall={wall:?} iterations={iters} busy={busy}",
        r.stats().fd_exhausted
    );
}

// ---------------------------------------------------------------------------
// D2..D5: outbound connects and slot reuse
// ---------------------------------------------------------------------------

/// D2 (libuv test-tcp-close-while-connecting), to a listening address:
/// `close()` right after `connect`, before the connect completed. The
/// connect's outcome is reported exactly once (here `handle_connect`: the
/// close is a lossless close and waits for the connect, where libuv
/// cancels with `ECANCELED`), then one `handle_close`, last; the peer sees
/// a clean EOF and no bytes.
#[test]
fn d2_close_while_connecting_reports_the_outcome_once() {
    let mut peer = Peer::new();
    let (mut r, log, id) = connecting(peer.addr());
    assert_eq!(r.stats().connecting, 1);
    r.conn(id).expect("open").close();

    run_until(&mut r, |_| peer.pump().eof);
    assert!(peer.received.is_empty());
    peer.close();
    let c = run_until_closed(&mut r, &log);
    let (connects, errors, closes) = outcomes(&log);
    assert_eq!(
        connects + errors,
        1,
        "outcome not reported exactly once: {:?}",
        log.borrow()
    );
    assert_eq!(closes, 1);
    assert_eq!(shape(&log).last(), Some(&"close"));
    assert_eq!(shape(&log), ["connect", "close"]);
    assert_eq!(c.reason, Reason::Local);
    assert_eq!((c.bytes_out, c.dropped), (0, 0));
    assert!(r.conn(id).is_none());
    let s = r.stats();
    assert_eq!((s.open, s.connecting, s.connected, s.closed), (0, 0, 1, 1));
}

/// D2, to an address that refuses: `close()` right after `connect`. The
/// refusal is reported once (`handle_error(ConnectionRefused)`), never a
/// connect, then one `handle_close` with the error as its reason.
#[test]
fn d2_close_while_connecting_to_a_refusing_address_reports_the_error_once() {
    let (mut r, log, id) = connecting(refused_addr());
    r.conn(id).expect("open").close();
    run_until_closed(&mut r, &log);
    assert_eq!(outcomes(&log), (0, 1, 1), "{:?}", log.borrow());
    assert_refused_once(&log);
    assert_eq!(r.stats().open, 0);
}

/// D3 (libuv test-connection-fail, mio connect_error): a refused connect
/// reaches `handle_error(ConnectionRefused)` exactly once, then
/// `handle_close` with `Reason::Error(ConnectionRefused)`; never
/// `handle_connect`.
#[test]
fn d3_connect_refused_is_one_error_then_close() {
    let (mut r, log, id) = connecting(refused_addr());
    let c = run_until_closed(&mut r, &log);
    assert_eq!(
        *log.borrow(),
        [Ev::Error(io::ErrorKind::ConnectionRefused), Ev::Close(c)]
    );
    assert_refused_once(&log);
    assert_eq!(c.id, id);
    assert_eq!((c.bytes_in, c.bytes_out, c.dropped), (0, 0, 0));
    assert!(r.conn(id).is_none());
    let s = r.stats();
    assert_eq!((s.open, s.connected, s.errors, s.closed), (0, 0, 1, 1));
}

/// D4 (libuv test-tcp-connect-error-after-write), success: writes made
/// before the connect completes are queued and go out after it, in order,
/// byte for byte, followed by the FIN of a `shutdown_write` also made
/// before the connect completed. The queue passed the high-water mark, but
/// writes are refused after `shutdown_write`, so no `handle_write` follows.
#[test]
fn d4_writes_before_connect_are_sent_in_order() {
    let mut peer = Peer::new();
    let (mut r, log, id) = connecting(peer.addr());
    let chunks = [
        b"first ".to_vec(),
        pattern(300_000, 4),
        b" middle ".to_vec(),
        pattern(7, 5),
    ];
    let expected: Vec<u8> = chunks.concat();
    write_while_connecting(&mut r, id, &chunks);
    r.conn(id).expect("open").shutdown_write();
    assert_eq!(r.stats().connecting, 1);

    run_until(&mut r, |_| peer.pump().eof);
    assert_eq!(peer.received.len(), expected.len());
    assert!(
        peer.received == expected,
        "bytes arrived out of order or altered"
    );
    peer.close();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "eof", "close"]);
    let c = closed(&log).unwrap();
    assert!(c.reason.is_graceful(), "{:?}", c.reason);
    assert_eq!((c.bytes_out, c.dropped), (expected.len() as u64, 0));
}

/// D4, failure: writes queued before a connect that is refused are
/// reported as dropped (`Closed::dropped` is every byte written), after
/// one `handle_error(ConnectionRefused)`.
#[test]
fn d4_writes_before_a_failed_connect_are_counted_as_dropped() {
    let (mut r, log, id) = connecting(refused_addr());
    let chunks = [b"one".to_vec(), pattern(100_000, 6), b"three".to_vec()];
    let total = write_while_connecting(&mut r, id, &chunks);
    run_until(&mut r, |_| closed(&log).is_some());
    let c = assert_refused_once(&log);
    assert_eq!((c.bytes_out, c.dropped), (0, total as u64));
}

/// The slot part of a `ConnId`'s debug form `ConnId(<slot>v<generation>)`.
fn slot_of(id: ConnId) -> String {
    let s = format!("{id:?}");
    let inner = s
        .strip_prefix("ConnId(")
        .and_then(|s| s.strip_suffix(')'))
        .unwrap_or_else(|| panic!("unexpected ConnId debug form {s}"));
    inner.split('v').next().unwrap().to_string()
}

/// D5 (libuv test-tcp-close-accept): one poll returns events for two
/// server connections S1 and S2, in that order. S1's `handle_read` aborts
/// S2; S2's `handle_close` opens a connection N, which takes S2's freed
/// slot; then S2's event (the peer's FIN) is dispatched. It must not reach
/// N: N's log holds only its own connect and data, no EOF (the stale FIN
/// would make N report EOF after its first short read), and S2's id is
/// stale while N's is live.
#[test]
fn d5_stale_event_never_reaches_the_connection_reusing_the_slot() {
    let ids: Rc<RefCell<Vec<ConnId>>> = Rc::default();
    let logs: Rc<RefCell<Vec<Log>>> = Rc::default();
    let n_log = log();
    let n_id: Rc<Cell<Option<ConnId>>> = Rc::default();
    let mut far = Peer::new();
    let far_addr = far.addr();

    let mut r = reactor();
    let (ids2, logs2, n_log2, n_id2) = (ids.clone(), logs.clone(), n_log.clone(), n_id.clone());
    let addr = listen(&mut r, move || {
        let log = log();
        let index = logs2.borrow().len();
        logs2.borrow_mut().push(log.clone());
        let ids = ids2.clone();
        let rec = Recorder::new(&log).on_connect(move |c| ids.borrow_mut().push(c.id()));
        match index {
            // S1: on "go", abort S2.
            0 => {
                let ids = ids2.clone();
                rec.on_read(move |c, data| {
                    if data == b"go" {
                        let s2 = ids.borrow()[1];
                        c.other(s2).expect("S2 still open").abort();
                    }
                })
            }
            // S2: once closed, open N (it takes S2's slot).
            1 => {
                let (n_log, n_id) = (n_log2.clone(), n_id2.clone());
                rec.on_close(move |ctx, _| {
                    let id = ctx
                        .connect(far_addr, Recorder::new(&n_log))
                        .expect("connect N");
                    n_id.set(Some(id));
                })
            }
            _ => rec,
        }
    });

    let mut c1 = Client::connect(addr);
    run_until(&mut r, |_| ids.borrow().len() == 1);
    let mut c2 = Client::connect(addr);
    run_until(&mut r, |_| ids.borrow().len() == 2);
    // Collect every event already pending, so that the next poll returns
    // exactly the two below, S1's first.
    let mut quiet = false;
    for _ in 0..100 {
        if r.run_once(Some(Duration::ZERO)).unwrap() == 0 {
            quiet = true;
            break;
        }
    }
    assert!(quiet, "the reactor did not go quiet");
    let (s1, s2) = (ids.borrow()[0], ids.borrow()[1]);

    c1.send(b"go");
    c2.shutdown_write();
    let handled = r.run_once(Some(Duration::from_secs(5))).unwrap();
    assert!(
        handled >= 2,
        "the two events did not arrive in one poll ({handled})"
    );
    let s2_log = logs.borrow()[1].clone();
    assert_eq!(
        shape(&s2_log),
        ["connect", "close"],
        "S2 saw its own FIN: {:?}",
        s2_log.borrow()
    );
    assert_eq!(closed(&s2_log).unwrap().reason, Reason::Aborted);
    let n = n_id.get().expect("N was opened in S2's handle_close");
    assert_eq!(
        slot_of(n),
        slot_of(s2),
        "N did not reuse S2's slot: {n:?} vs {s2:?}"
    );
    assert_ne!(n, s2);
    assert!(
        r.conn(s2).is_none(),
        "the old id still reaches a connection"
    );
    assert!(r.ctx().conn(s2).is_none());
    assert!(r.conn(n).is_some());
    assert!(r.conn(s1).is_some());

    // N's peer sends a little, short of N's read buffer.
    let mut wrote = false;
    run_until(&mut r, |_| {
        far.pump();
        if far.stream.is_some() && !wrote {
            far.write(b"hello N");
            wrote = true;
        }
        read_bytes(&n_log) == b"hello N"
    });
    turns(&mut r, 5, ms(1));
    assert_eq!(
        shape(&n_log),
        ["connect", "read"],
        "N got events not its own: {:?}",
        n_log.borrow()
    );
    assert!(r.conn(n).is_some());
    assert!(r.conn(s2).is_none());

    // N's real EOF is delivered once, when its own peer closes.
    far.close();
    run_until(&mut r, |_| closed(&n_log).is_some());
    assert_eq!(shape(&n_log), ["connect", "read", "eof", "close"]);
    assert_eq!(closed(&n_log).unwrap().id, n);
    c2.pump();
    assert_eq!(c2.end, End::Error(io::ErrorKind::ConnectionReset));
}

// ---------------------------------------------------------------------------
// D6, D7: hostile and bursty clients
// ---------------------------------------------------------------------------

/// D6 (CPython asyncore test_quick_connect): clients that connect with
/// `SO_LINGER` 0 and close at once, some before the reactor accepted them,
/// some just after. The reactor survives, accounts for each (one close,
/// reason reset; open back to 0), and goes on serving.
#[test]
fn d6_quick_connect_with_linger_zero_is_survived() {
    const EACH: usize = 10;
    let logs: Rc<RefCell<Vec<Log>>> = Rc::default();
    let mut r = reactor();
    let logs2 = logs.clone();
    let addr = listen(&mut r, move || {
        let log = log();
        logs2.borrow_mut().push(log.clone());
        Recorder::new(&log).on_read(|c, d| c.write(d))
    });

    // Reset while still in the accept queue.
    for _ in 0..EACH {
        Client::connect(addr).reset();
    }
    run_until(&mut r, |r| r.stats().closed == EACH as u64);
    // Reset right after the accept.
    let early: Vec<Client> = (0..EACH).map(|_| Client::connect(addr)).collect();
    run_until(&mut r, |r| r.stats().accepted == 2 * EACH as u64);
    for c in early {
        c.reset();
    }
    run_until(&mut r, |r| r.stats().closed == 2 * EACH as u64);

    let s = r.stats();
    assert_eq!(
        (s.accepted, s.closed, s.resets, s.open),
        (20, 20, 20, 0),
        "{s:?}"
    );
    for log in logs.borrow().iter() {
        assert_eq!(
            shape(log),
            ["connect", "error", "close"],
            "{:?}",
            log.borrow()
        );
        assert_eq!(log.borrow()[1], Ev::Error(io::ErrorKind::ConnectionReset));
        assert_eq!(closed(log).unwrap().reason, Reason::Reset);
    }

    let mut ok = Client::connect(addr);
    echo_round_trip(&mut r, &mut ok, b"still serving");
    assert_eq!(r.stats().open, 1);
}

/// A reactor listening with `accept_batch` and a 4096 backlog (no SYN
/// dropped), an echo client `v` it already serves, and `n` connects
/// completed in the kernel's accept queue, none accepted yet.
fn burst_setup(n: u64, batch: usize) -> (Reactor, Client, Vec<mio::net::TcpStream>) {
    let mut r = reactor_with(|c| {
        c.accept_batch = batch;
        c.backlog = 4096;
    });
    let addr = listen(&mut r, || Echo);
    let mut v = Client::connect(addr);
    run_until(&mut r, |r| r.stats().accepted == 1);
    echo_round_trip(&mut r, &mut v, b"warm up");
    let burst = (0..n)
        .map(|_| mio::net::TcpStream::connect(addr).expect("connect"))
        .collect();
    (r, v, burst)
}

/// Drive `r`, 10 ms a turn, until it has accepted `total` connections in
/// all (failing after [`DEADLINE`]); after each turn, `turn(newly, all)`
/// with the connections accepted in that turn and in all.
#[track_caller]
fn accept_until(r: &mut Reactor, total: u64, mut turn: impl FnMut(u64, u64)) {
    let mut accepted = r.stats().accepted;
    let start = Instant::now();
    while accepted < total {
        assert!(
            start.elapsed() < DEADLINE,
            "burst not accepted: {:?}",
            r.stats()
        );
        r.run_once(Some(ms(10))).expect("run_once");
        let now = r.stats().accepted;
        turn(now - accepted, now);
        accepted = now;
    }
}

/// D7: a burst of 2,000 connects, all in the accept queue at once, is
/// accepted over many loop iterations while an existing connection keeps
/// getting served between the batches: echo round trips complete all
/// through the burst. Accepting the whole queue in one go would let none.
#[test]
fn d7_accept_burst_is_spread_while_others_are_served() {
    const BURST: u64 = 2000;
    const BATCH: usize = 16;
    let (mut r, mut v, burst) = burst_setup(BURST, BATCH);

    let mut want = v.received.len() + 4;
    v.send(b"ping");
    let (mut round_trips, mut iters, mut accepting_iters) = (0u32, 0u32, 0u32);
    accept_until(&mut r, BURST + 1, |newly, accepted| {
        iters += 1;
        if newly > 0 {
            accepting_iters += 1;
        }
        if v.pump().received.len() >= want && accepted < BURST + 1 {
            round_trips += 1;
            want += 4;
            v.send(b"ping");
        }
    });
    assert_eq!(v.end, End::Open);
    assert!(
        accepting_iters >= 50,
        "the burst was accepted in {accepting_iters} iterations (batch {BATCH})"
    );
    assert!(
        round_trips >= 20,
        "only {round_trips} echo round trips during the burst ({iters} iterations)"
    );
    let s = r.stats();
    assert_eq!(
        (s.accepted, s.open, s.refused),
        (BURST + 1, BURST as usize + 1, 0)
    );
    drop(r);
    drop(burst);
}

/// D7: `Config::accept_batch` bounds the connections accepted per listener
/// per wakeup (one `run_once`), as its documentation says.
#[test]
fn d7_accept_batch_bounds_each_wakeup() {
    const BURST: u64 = 200;
    const BATCH: usize = 16;
    let (mut r, _v, burst) = burst_setup(BURST, BATCH);
    let mut batches = Vec::new();
    accept_until(&mut r, BURST + 1, |newly, _| batches.push(newly));
    assert!(
        batches.iter().all(|&b| b <= BATCH as u64),
        "accepted per run_once: {batches:?} (batch {BATCH})"
    );
    drop(r);
    drop(burst);
}

// ---------------------------------------------------------------------------
// Listener configuration
// ---------------------------------------------------------------------------

/// `Config::backlog` reaches `listen(2)`: with backlog 4096, 1,200
/// connects (more than mio's fixed 128 and the default 1024) all complete
/// their handshake while the reactor accepts none of them. With a smaller
/// accept queue the kernel drops the SYNs past it and those connects
/// never complete.
#[test]
fn listener_backlog_is_honoured() {
    const N: usize = 1200;
    let mut r = reactor_with(|c| c.backlog = 4096);
    let addr = listen(&mut r, || Echo);

    let mut poll = mio::Poll::new().unwrap();
    let mut events = mio::Events::with_capacity(1024);
    let mut socks: Vec<mio::net::TcpStream> = Vec::with_capacity(N);
    for i in 0..N {
        let mut s = mio::net::TcpStream::connect(addr).expect("connect");
        poll.registry()
            .register(&mut s, mio::Token(i), mio::Interest::WRITABLE)
            .unwrap();
        socks.push(s);
    }
    let mut writable = vec![false; N];
    let start = Instant::now();
    while writable.iter().any(|w| !w) {
        let left = writable.iter().filter(|w| !**w).count();
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{left} of {N} connects did not complete"
        );
        poll.poll(&mut events, Some(Duration::from_millis(50)))
            .unwrap();
        for e in events.iter() {
            writable[e.token().0] = true;
        }
    }
    for s in &socks {
        assert!(s.take_error().unwrap().is_none());
        assert_eq!(s.peer_addr().expect("connected"), addr);
    }
    assert_eq!(r.stats().accepted, 0);
    drop(socks);
    drop(r);
}

/// `Config::reuse_port` sets `SO_REUSEPORT`: two reactors listen on one
/// port and the kernel spreads connections over both, each served by its
/// own reactor. Without it the second `listen` fails with `AddrInUse`.
#[test]
fn listener_reuse_port_lets_two_reactors_share_a_port() {
    const N: usize = 32;
    let mut r1 = reactor_with(|c| c.reuse_port = true);
    let mut r2 = reactor_with(|c| c.reuse_port = true);
    let l1 = r1.listen("127.0.0.1:0", || Echo).expect("listen 1");
    let addr = r1.local_addr(l1).and_then(|a| a.inet()).unwrap();
    let l2 = r2
        .listen(addr, || Echo)
        .expect("second listener on the same port");
    assert_eq!(r2.local_addr(l2), Some(addr.into()));

    let mut plain = reactor();
    let err = plain
        .listen(addr, || Echo)
        .expect_err("listen without SO_REUSEPORT");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);

    let mut clients: Vec<Client> = (0..N).map(|_| Client::connect(addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        c.send(format!("client {i}").as_bytes());
    }
    let start = Instant::now();
    loop {
        let done = clients.iter_mut().enumerate().all(|(i, c)| {
            c.pump();
            assert_eq!(c.end, End::Open);
            c.received == format!("client {i}").as_bytes()
        });
        if done {
            break;
        }
        assert!(start.elapsed() < DEADLINE, "not every client was served");
        r1.run_once(Some(Duration::ZERO)).unwrap();
        r2.run_once(Some(Duration::from_millis(2))).unwrap();
    }
    let (a1, a2) = (r1.stats().accepted, r2.stats().accepted);
    assert_eq!(a1 + a2, N as u64);
    assert!(a1 > 0 && a2 > 0, "connections not spread: {a1} and {a2}");
}

/// `Config::max_connections`: with two connections open, a third is
/// accepted and closed at once (its client sees EOF or a reset, no handler
/// is made for it, `refused` counts it) while the two go on untouched.
#[test]
fn listener_max_connections_refuses_the_excess() {
    let made = Rc::new(Cell::new(0));
    let mut r = reactor_with(|c| c.max_connections = Some(2));
    let addr = listen(&mut r, counted_echo(&made));
    let mut a = Client::connect(addr);
    let mut b = Client::connect(addr);
    run_until(&mut r, |r| r.stats().accepted == 2);
    echo_round_trip(&mut r, &mut a, b"a1");

    let mut c = Client::connect(addr);
    run_until(&mut r, |_| c.done());
    assert!(
        matches!(c.end, End::Eof | End::Error(io::ErrorKind::ConnectionReset)),
        "{:?}",
        c.end
    );
    assert!(c.received.is_empty());
    let s = r.stats();
    assert_eq!(
        (s.refused, s.accepted, s.open, s.closed),
        (1, 2, 2, 0),
        "{s:?}"
    );
    assert_eq!(made.get(), 2);

    echo_round_trip(&mut r, &mut a, b"a2");
    echo_round_trip(&mut r, &mut b, b"b1");
    assert_eq!(r.stats().open, 2);
}
