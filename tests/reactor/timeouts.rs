//! Scenario group F: timeouts, backpressure and user timers.
//!
//! Timers and timeouts have millisecond resolution: the reactor reads its
//! clock in whole milliseconds, so a deadline can be met up to one
//! millisecond before the same duration measured with `Instant`. The
//! "not early" assertions allow for that one tick ([`TICK`]) and measure
//! from an instant taken before the connection existed.
//!
//! The scenario tests (F1 to F5) run on TCP and on a Unix stream socket,
//! from the one definition each (the table below), with the same outcome.
//! The user-timer tests at the end run on TCP only: a timer never touches
//! the socket, so a second transport would test nothing more.

use std::cell::{Cell, RefCell};
use std::io::{self, Read};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::*;
use halfclose::{Addr, Closed, Conn, ConnId, Eof, Reactor, Reason, Timeout, TimerId};
use socket2::{Domain, Socket, Type};

crate::transports!(
    f1_idle_timeout_closes_gracefully,
    f1_idle_close_lingers_for_the_peer_fin,
    f2_idle_timer_is_reset_by_inbound_progress,
    f3_pause_and_resume_reading,
    f4_backpressure_bounds_memory_and_resumes,
    f5_peer_eof_timeout,
    f5_linger_timeout_after_shutdown_write,
    f5_linger_timeout_after_close_despite_input,
    f2_idle_timer_is_reset_by_outbound_progress,
);

/// The reactor's clock resolution.
const TICK: Duration = Duration::from_millis(1);

/// Assert that `elapsed` is not shorter than `timeout` (within one tick).
#[track_caller]
fn assert_not_early(elapsed: Duration, timeout: Duration) {
    assert!(
        elapsed + TICK >= timeout,
        "fired after {elapsed:?}, before its timeout of {timeout:?}"
    );
}

/// A non-blocking std client whose progress the sender follows. On TCP
/// its receive buffer is set before the connect, so that the advertised
/// window stays small. A Unix socket has no window (`SO_RCVBUF` means
/// nothing there): what the sender may have in flight is bounded by its
/// own `SO_SNDBUF` alone, which the servers of these tests set small.
fn small_window_client(at: &Addr, rcvbuf: usize) -> Stream {
    let sock = match at {
        Addr::Inet(addr) => {
            let sock = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
            sock.set_recv_buffer_size(rcvbuf).expect("SO_RCVBUF");
            sock.connect(&(*addr).into()).expect("connect");
            Stream::over_tcp(sock.into()).expect("a stream")
        }
        unix => Stream::connect(unix).expect("connect"),
    };
    sock.set_nonblocking(true).expect("non-blocking");
    sock
}

/// What one bounded read of a non-blocking socket found.
#[derive(Debug, PartialEq, Eq)]
enum Got {
    Data(usize),
    Eof,
    Nothing,
}

/// Read at most `max` bytes into `into`.
fn read_step(sock: &mut Stream, max: usize, into: &mut Vec<u8>) -> Got {
    let mut buf = vec![0u8; max];
    loop {
        match sock.read(&mut buf) {
            Ok(0) => return Got::Eof,
            Ok(n) => {
                into.extend_from_slice(&buf[..n]);
                return Got::Data(n);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Got::Nothing,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => panic!("client read failed: {e}"),
        }
    }
}

/// A shared slot for the server connection's id.
type IdCell = Rc<Cell<Option<ConnId>>>;

/// F1: a connection on which nothing moves is closed by the idle timeout,
/// gracefully: the client reads a clean EOF (FIN, not a reset), and
/// `Closed` says `TimedOut(Idle)` with nothing dropped. It does not fire
/// before the configured timeout.
fn f1_idle_timeout_closes_gracefully(t: Transport) {
    const IDLE: Duration = Duration::from_millis(300);
    let log = log();
    let mut r = reactor_with(|c| c.idle_timeout = Some(IDLE));
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || Recorder::new(&l2));
    let start = Instant::now();
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| c.done());
    let fired = start.elapsed();
    assert_eq!(
        c.end,
        End::Eof,
        "the idle timeout must end with our FIN, not a reset"
    );
    assert!(c.received.is_empty());
    assert_not_early(fired, IDLE);
    // The close is a lingering one: it completes with the client's FIN.
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::TimedOut(Timeout::Idle));
    assert_eq!(cl.bytes_in, 0);
    assert_eq!((cl.bytes_out, cl.dropped), (0, 0));
    assert_eq!(r.stats().timeouts, 1);
}

/// F1, the linger phase after an idle close: our FIN is out, and the
/// connection waits for the peer's under the linger timeout alone. A peer
/// that still sends meanwhile is read and discarded (no RST, its writes
/// succeed), and its FIN completes the close with the idle reason.
fn f1_idle_close_lingers_for_the_peer_fin(t: Transport) {
    const IDLE: Duration = Duration::from_millis(200);
    let log = log();
    let mut r = reactor_with(|c| {
        c.idle_timeout = Some(IDLE);
        c.linger_timeout = Some(Duration::from_secs(10));
    });
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || Recorder::new(&l2));
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    // Several idle periods pass while the peer keeps sending after our FIN.
    let lingering_since = Instant::now();
    let mut sent = 0;
    run_until(&mut r, |r| {
        if sent < 10 {
            c.send(b"still here");
            sent += 1;
        }
        c.unsent() == 0
            && sent == 10
            && lingering_since.elapsed() >= 3 * IDLE
            && r.stats().lingering == 1
    });
    assert!(
        closed(&log).is_none(),
        "closed before the peer's FIN: {:?}",
        closed(&log)
    );
    assert_eq!(
        count(&log, |e| matches!(e, Ev::Read(_))),
        0,
        "input after close() is discarded"
    );
    c.shutdown_write();
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::TimedOut(Timeout::Idle));
    assert_eq!(cl.bytes_in, 100);
    assert_eq!(cl.dropped, 0);
    assert_eq!(r.stats().aborts, 0);
}

/// F2 (outbound progress): a slow reader downloads 2 MiB a few KiB at a
/// time, for several idle timeouts in all; every byte the server hands to
/// the kernel restarts the idle timer, so the download is never cut and
/// ends with the server's own close (`Reason::Local`). Small socket
/// buffers on both sides make the server's progress follow the reader.
fn f2_idle_timer_is_reset_by_outbound_progress(t: Transport) {
    const IDLE: Duration = Duration::from_millis(250);
    const TOTAL: usize = 2 * MIB;
    const WRITE: usize = 16 * KIB;
    const STEP_BYTES: usize = 8 * KIB;
    const STEP_EVERY: Duration = Duration::from_millis(3);
    let feed = Rc::new(Feed::new(pattern(TOTAL, 2), WRITE));
    let log = log();
    let mut r = reactor_with(|c| c.idle_timeout = Some(IDLE));
    let (l2, f2) = (log.clone(), feed.clone());
    let addr = t.listen(&mut r, move || feeder(&l2, &f2));
    let mut sock = small_window_client(&addr, 32 * KIB);
    let start = Instant::now();
    let mut last_step = start;
    let mut received = Vec::with_capacity(TOTAL);
    loop {
        assert!(start.elapsed() < DEADLINE, "download did not finish");
        assert_eq!(
            closed(&log),
            None,
            "the server closed before the download ended"
        );
        r.run_once(Some(ms(1))).unwrap();
        if last_step.elapsed() < STEP_EVERY {
            continue;
        }
        last_step = Instant::now();
        if read_step(&mut sock, STEP_BYTES, &mut received) == Got::Eof {
            break;
        }
    }
    let took = start.elapsed();
    assert_eq!(received.len(), TOTAL);
    assert!(received == feed.data, "the download arrived corrupted");
    assert!(
        took > 2 * IDLE,
        "the download took {took:?}: too fast to show the idle timer being reset"
    );
    drop(sock);
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local, "{cl:?}");
    assert_eq!((cl.bytes_out, cl.dropped), (TOTAL as u64, 0));
    assert_eq!(r.stats().timeouts, 0);
}

/// A producer of `data` that honours backpressure, shared between the
/// test and its handler.
struct Feed {
    data: Vec<u8>,
    /// Bytes per write.
    chunk: usize,
    /// Bytes handed to `Conn::write` so far.
    sent: Cell<usize>,
    /// The most output ever queued right after a write.
    max_pending: Cell<usize>,
    /// Whether the producer ever stopped at the high-water mark.
    saw_blocked: Cell<bool>,
}

impl Feed {
    fn new(data: Vec<u8>, chunk: usize) -> Feed {
        Feed {
            data,
            chunk,
            sent: Cell::new(0),
            max_pending: Cell::new(0),
            saw_blocked: Cell::new(false),
        }
    }

    /// Write `chunk`-sized pieces while the connection is not write
    /// blocked; close once everything is written.
    fn step(&self, c: &mut Conn<'_>) {
        while self.sent.get() < self.data.len() && !c.is_write_blocked() {
            let from = self.sent.get();
            let to = (from + self.chunk).min(self.data.len());
            c.write(&self.data[from..to]);
            self.sent.set(to);
            self.max_pending
                .set(self.max_pending.get().max(c.pending()));
        }
        if c.is_write_blocked() {
            self.saw_blocked.set(true);
        }
        if self.sent.get() == self.data.len() && c.may_send() {
            c.close();
        }
    }
}

/// A server handler that sends `feed` with small socket buffers (32 KiB
/// asked, doubled by Linux), so that its progress follows the reader.
fn feeder(log: &Log, feed: &Rc<Feed>) -> Recorder {
    let (f1, f2) = (feed.clone(), feed.clone());
    Recorder::new(log)
        .on_connect(move |c| {
            socket2::SockRef::from(&*c)
                .set_send_buffer_size(32 * KIB)
                .unwrap();
            f1.step(c);
        })
        .on_write(move |c| f2.step(c))
}

/// F2 (inbound progress): a client that trickles a few bytes at a time to
/// a server that only reads is never timed out, although the upload lasts
/// several idle timeouts: every byte received restarts the timer.
fn f2_idle_timer_is_reset_by_inbound_progress(t: Transport) {
    const IDLE: Duration = Duration::from_millis(150);
    const EVERY: Duration = Duration::from_millis(30);
    const STEPS: usize = 20;
    let log = log();
    let mut r = reactor_with(|c| c.idle_timeout = Some(IDLE));
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || Recorder::new(&l2));
    let mut c = Client::connect(addr);
    let data = pattern(STEPS * 10, 3);
    let start = Instant::now();
    let mut last = start;
    let mut steps = 0;
    while steps < STEPS {
        assert!(start.elapsed() < DEADLINE);
        r.run_once(Some(ms(5))).unwrap();
        assert_eq!(closed(&log), None, "timed out although bytes kept arriving");
        if last.elapsed() >= EVERY {
            last = Instant::now();
            c.send(&data[steps * 10..(steps + 1) * 10]);
            steps += 1;
        }
    }
    run_until(&mut r, |_| read_bytes(&log).len() == data.len());
    let took = start.elapsed();
    assert!(took > 3 * IDLE, "the upload took only {took:?}");
    assert_eq!(read_bytes(&log), data);
    assert!(!c.done(), "the server must still be open");
    c.shutdown_write();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(closed(&log).unwrap().reason, Reason::PeerClosed);
    assert_eq!(r.stats().timeouts, 0);
}

/// F3: after `pause_reading` no `handle_read` runs although bytes are
/// waiting in the kernel; `resume_reading` delivers them, in order.
fn f3_pause_and_resume_reading(t: Transport) {
    let log = log();
    let id: IdCell = Rc::default();
    let mut r = reactor();
    let (l2, id2) = (log.clone(), id.clone());
    let addr = t.listen(&mut r, move || {
        let id3 = id2.clone();
        let mut first = true;
        Recorder::new(&l2)
            .on_connect(move |c| id3.set(Some(c.id())))
            .on_read(move |c, _| {
                if std::mem::take(&mut first) {
                    c.pause_reading();
                    assert!(c.is_reading_paused());
                }
            })
    });
    let mut c = Client::connect(addr);
    c.send(b"a");
    run_until(&mut r, |_| read_bytes(&log) == b"a");
    let id = id.get().unwrap();
    assert!(r.conn(id).unwrap().is_reading_paused());

    // Several sends while paused; wait until all of it sits in the server's
    // receive queue (MSG_PEEK does not consume).
    let rest = pattern(48 * KIB, 4);
    for part in rest.chunks(5000) {
        c.send(part);
    }
    let wire = t.wire_len(rest.len(), rest.chunks(5000).count());
    run_until(&mut r, |r| {
        c.pump();
        queued_in_kernel(r, id, wire + 1) == wire
    });
    turns(&mut r, 10, ms(10));
    assert_eq!(read_bytes(&log), b"a", "handle_read ran while paused");
    assert_eq!(count(&log, |e| matches!(e, Ev::Read(_))), 1);

    r.conn(id).unwrap().resume_reading();
    assert!(!r.conn(id).unwrap().is_reading_paused());
    run_until(&mut r, |_| read_bytes(&log).len() == 1 + rest.len());
    assert_eq!(
        &read_bytes(&log)[1..],
        &rest[..],
        "bytes held while paused arrived out of order"
    );
    assert_eq!(closed(&log), None);
}

/// Bytes waiting in the receive queue of connection `id`, up to `max`.
fn queued_in_kernel(r: &mut Reactor, id: ConnId, max: usize) -> usize {
    let conn = r.conn(id).expect("connection open");
    let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); max];
    match socket2::SockRef::from(&conn).peek(&mut buf) {
        Ok(n) => n,
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => 0,
        Err(e) => panic!("peek: {e}"),
    }
}

/// F4: the peer does not read. The handler writes while
/// `is_write_blocked()` is false: the queue passes the high-water mark,
/// the handler stops, and the queue never holds more than the high-water
/// mark plus one write (memory bounded). Nothing moves while the peer
/// stays silent. Once the peer reads, `handle_write` fires at the
/// low-water mark, the handler finishes, and every byte arrives intact.
fn f4_backpressure_bounds_memory_and_resumes(t: Transport) {
    const TOTAL: usize = 4 * MIB;
    const WRITE: usize = 64 * KIB;
    let feed = Rc::new(Feed::new(pattern(TOTAL, 5), WRITE));
    let log = log();
    let mut r = reactor();
    let high = r.config().write_high_water;
    let (l2, f2) = (log.clone(), feed.clone());
    let addr = t.listen(&mut r, move || feeder(&l2, &f2));
    let mut sock = small_window_client(&addr, 32 * KIB);
    run_until(&mut r, |_| feed.saw_blocked.get());
    let stalled_at = feed.sent.get();
    assert!(
        stalled_at < TOTAL,
        "the kernel took everything; nothing to push back"
    );
    turns(&mut r, 10, ms(10));
    assert_eq!(
        feed.sent.get(),
        stalled_at,
        "the handler kept writing while blocked"
    );
    assert_eq!(
        count(&log, |e| *e == Ev::Write),
        0,
        "handle_write before the peer read"
    );

    let start = Instant::now();
    let mut received = Vec::with_capacity(TOTAL);
    loop {
        assert!(start.elapsed() < DEADLINE, "transfer did not finish");
        r.run_once(Some(ms(1))).unwrap();
        match read_step(&mut sock, 256 * KIB, &mut received) {
            Got::Eof => break,
            Got::Data(_) | Got::Nothing => {}
        }
    }
    assert_eq!(received.len(), TOTAL);
    assert!(received == feed.data, "the transfer arrived corrupted");
    assert!(
        count(&log, |e| *e == Ev::Write) >= 1,
        "handle_write never fired"
    );
    assert!(
        feed.max_pending.get() <= high + WRITE,
        "queued {} bytes: more than high-water {high} + one write {WRITE}",
        feed.max_pending.get()
    );
    assert!(
        feed.max_pending.get() > high,
        "the queue never reached the high-water mark"
    );
    drop(sock);
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(
        (cl.reason, cl.bytes_out, cl.dropped),
        (Reason::Local, TOTAL as u64, 0)
    );
}

/// F5 (peer-EOF timeout, the CLOSE_WAIT guard): the handler answers the
/// peer's FIN with `Eof::HalfClose` and never finishes; after the
/// peer-EOF timeout the connection is closed (our FIN, no reset) with
/// `TimedOut(PeerEof)`.
fn f5_peer_eof_timeout(t: Transport) {
    const PEER_EOF: Duration = Duration::from_millis(200);
    let log = log();
    let mut r = reactor_with(|c| {
        c.idle_timeout = None;
        c.peer_eof_timeout = Some(PEER_EOF);
    });
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2).on_eof(|_| Eof::HalfClose)
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    let start = Instant::now();
    c.shutdown_write();
    run_until(&mut r, |r| r.stats().half_closed_in == 1);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_not_early(start.elapsed(), PEER_EOF);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(
        (cl.reason, cl.dropped),
        (Reason::TimedOut(Timeout::PeerEof), 0)
    );
    assert_eq!(r.stats().half_closed_in, 0);
    assert_eq!(r.stats().timeouts, 1);
}

/// The linger timeout of the F5 linger tests.
const LINGER: Duration = Duration::from_millis(200);

/// A reactor whose only timeout is a [`LINGER`] linger timeout, listening
/// on `t` with a recorder that writes "bye" on connect, then ends with
/// `end` (`shutdown_write` or `close`): (reactor, address, log).
fn bye_then(t: Transport, end: fn(&mut Conn<'_>)) -> (Reactor, Addr, Log) {
    let log = log();
    let mut r = reactor_with(|c| {
        c.idle_timeout = None;
        c.linger_timeout = Some(LINGER);
    });
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2).on_connect(move |c| {
            c.write(b"bye");
            end(c);
        })
    });
    (r, addr, log)
}

/// The connection recorded in `log` was closed by the linger timeout,
/// with "bye" sent and nothing dropped; its `Closed`.
#[track_caller]
fn assert_linger_timed_out(log: &Log) -> Closed {
    let cl = closed(log).unwrap();
    assert_eq!(
        (cl.reason, cl.bytes_out, cl.dropped),
        (Reason::TimedOut(Timeout::Linger), 3, 0)
    );
    cl
}

/// F5 (linger timeout after `shutdown_write`, the FIN_WAIT_2 guard): our
/// FIN is out and the peer never sends its own; after the linger timeout
/// the connection closes with `TimedOut(Linger)`. The peer got our bytes
/// and a clean EOF.
fn f5_linger_timeout_after_shutdown_write(t: Transport) {
    let (mut r, addr, log) = bye_then(t, |c| c.shutdown_write());
    let start = Instant::now();
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| c.done());
    assert_eq!((c.received.as_slice(), &c.end), (&b"bye"[..], &End::Eof));
    assert_eq!(r.stats().half_closed_out, 1);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_not_early(start.elapsed(), LINGER);
    assert_eq!(shape(&log), ["connect", "close"]);
    assert_linger_timed_out(&log);
    assert_eq!(r.stats().half_closed_out, 0);
    drop(c);
}

/// F5 (linger timeout after `close`): the lingering close reads and
/// discards the peer's bytes while it waits for its FIN, and the linger
/// timeout runs from our FIN: a peer that keeps sending but never closes
/// does not hold the connection open past it (nginx's `lingering_time`).
/// Nothing the peer sent after our close reaches `handle_read`.
fn f5_linger_timeout_after_close_despite_input(t: Transport) {
    let (mut r, addr, log) = bye_then(t, |c| c.close());
    let start = Instant::now();
    let mut c = Client::connect(addr);
    let mut saw_eof = false;
    let mut last_send = start;
    while closed(&log).is_none() {
        assert!(start.elapsed() < DEADLINE, "the linger timeout never fired");
        r.run_once(Some(ms(5))).unwrap();
        if c.pump().end == End::Eof {
            saw_eof = true;
        }
        if last_send.elapsed() >= ms(20) {
            last_send = Instant::now();
            c.send(b"more");
        }
    }
    assert_not_early(start.elapsed(), LINGER);
    assert!(saw_eof, "the client never saw our FIN");
    assert_eq!(c.received, b"bye");
    assert_eq!(
        shape(&log),
        ["connect", "close"],
        "input reached handle_read after close"
    );
    let cl = assert_linger_timed_out(&log);
    assert!(
        cl.bytes_in > 0,
        "the lingering close should have read the peer's bytes"
    );
}

/// A timer set with `set_timer` fires `handle_timer` once, not before its
/// duration, with the id `set_timer` returned; the connection stays open.
#[test]
fn timer_fires_once_after_its_duration() {
    const AFTER: Duration = Duration::from_millis(150);
    let log = log();
    let set: Rc<Cell<Option<TimerId>>> = Rc::default();
    let fired: Rc<RefCell<Vec<(TimerId, Instant)>>> = Rc::default();
    let mut r = reactor();
    let (l2, s2, f2) = (log.clone(), set.clone(), fired.clone());
    let addr = listen(&mut r, move || {
        let s3 = s2.clone();
        let f3 = f2.clone();
        Recorder::new(&l2)
            .on_connect(move |c| s3.set(Some(c.set_timer(AFTER))))
            .on_timer(move |_, t| f3.borrow_mut().push((t, Instant::now())))
    });
    let start = Instant::now();
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| !fired.borrow().is_empty());
    let (t, at) = fired.borrow()[0];
    assert_eq!(Some(t), set.get());
    assert_not_early(at - start, AFTER);
    while start.elapsed() < 3 * AFTER {
        r.run_once(Some(ms(10))).unwrap();
    }
    assert_eq!(fired.borrow().len(), 1, "a timer fires once");
    assert_eq!(shape(&log), ["connect", "timer"]);
    assert!(!c.done(), "a user timer must not close the connection");
}

/// `cancel_timer` prevents a timer from firing and returns true once;
/// cancelling a timer that already fired returns false.
#[test]
fn cancelled_timer_never_fires() {
    let log = log();
    let ids: Rc<RefCell<Vec<TimerId>>> = Rc::default();
    let fired: Rc<RefCell<Vec<(TimerId, bool)>>> = Rc::default();
    let mut r = reactor();
    let (l2, i2, f2) = (log.clone(), ids.clone(), fired.clone());
    let addr = listen(&mut r, move || {
        let i3 = i2.clone();
        let f3 = f2.clone();
        Recorder::new(&l2)
            .on_connect(move |c| {
                let early = c.set_timer(ms(30));
                let late = c.set_timer(ms(150));
                assert!(c.cancel_timer(early), "first cancel");
                assert!(!c.cancel_timer(early), "second cancel of the same timer");
                i3.borrow_mut().extend([early, late]);
            })
            .on_timer(move |c, t| {
                let again = c.cancel_timer(t);
                f3.borrow_mut().push((t, again));
            })
    });
    let _c = Client::connect(addr);
    run_until(&mut r, |_| !fired.borrow().is_empty());
    let start = Instant::now();
    while start.elapsed() < ms(100) {
        r.run_once(Some(ms(10))).unwrap();
    }
    let late = ids.borrow()[1];
    assert_eq!(
        *fired.borrow(),
        [(late, false)],
        "only the uncancelled timer fires"
    );
    assert_eq!(count(&log, |e| *e == Ev::Timer), 1);
}

/// Timers die with their connection: a timer set by a connection that then
/// closes never fires, neither into the closed connection nor into the one
/// that reuses its slot.
#[test]
fn timers_die_with_the_connection() {
    let logs: Rc<RefCell<Vec<Log>>> = Rc::default();
    let mut r = reactor();
    let l2 = logs.clone();
    let addr = listen(&mut r, move || {
        let log = log();
        let first = l2.borrow().is_empty();
        l2.borrow_mut().push(log.clone());
        let rec = Recorder::new(&log);
        if first {
            rec.on_connect(|c| {
                c.set_timer(ms(250));
                c.close();
            })
        } else {
            rec
        }
    });
    let start = Instant::now();
    let mut c1 = Client::connect(addr);
    run_until(&mut r, |_| c1.done());
    assert_eq!(c1.end, End::Eof);
    drop(c1);
    run_until(&mut r, |_| {
        logs.borrow().first().is_some_and(|l| closed(l).is_some())
    });
    assert!(
        start.elapsed() < ms(250),
        "too slow to close before the timer was due"
    );
    let _c2 = Client::connect(addr);
    run_until(&mut r, |_| logs.borrow().len() == 2);
    while start.elapsed() < ms(450) {
        r.run_once(Some(ms(10))).unwrap();
    }
    let logs = logs.borrow();
    assert_eq!(shape(&logs[0]), ["connect", "close"]);
    assert_eq!(closed(&logs[0]).unwrap().reason, Reason::Local);
    assert_eq!(
        shape(&logs[1]),
        ["connect"],
        "the old connection's timer reached the new one"
    );
}

/// Handler timers fire in deadline order even when the loop comes late
/// and all of them are due at once: the first timer of a connection is
/// kept in the reactor's lanes, the next ones in its heap, and the two are
/// read as one queue. Here the first is also the earliest (20 ms), then
/// 60 and 40 ms; the loop does not run until all are due.
#[test]
fn handler_timers_fire_in_deadline_order_when_the_loop_is_late() {
    let ids: Rc<RefCell<Vec<(TimerId, u64)>>> = Rc::default();
    let fired: Rc<RefCell<Vec<TimerId>>> = Rc::default();
    let mut r = reactor();
    let (i2, f2) = (ids.clone(), fired.clone());
    let addr = listen(&mut r, move || {
        let (i3, f3) = (i2.clone(), f2.clone());
        Recorder::new(&log())
            .on_connect(move |c| {
                for after in [20, 60, 40] {
                    i3.borrow_mut().push((c.set_timer(ms(after)), after));
                }
            })
            .on_timer(move |_, t| f3.borrow_mut().push(t))
    });
    let _c = Client::connect(addr);
    run_until(&mut r, |_| ids.borrow().len() == 3);
    // A long iteration elsewhere in the program: every timer comes due.
    let start = Instant::now();
    while start.elapsed() < ms(80) {
        std::hint::spin_loop();
    }
    run_until(&mut r, |_| fired.borrow().len() == 3);
    let by_deadline: Vec<u64> = fired
        .borrow()
        .iter()
        .map(|t| ids.borrow().iter().find(|(id, _)| id == t).unwrap().1)
        .collect();
    assert_eq!(by_deadline, [20, 40, 60]);
}

/// Timeouts of many lengths at once: twelve connections, each with its own
/// idle timeout (set in `handle_connect`, the longest first), more lengths
/// than the reactor keeps a FIFO for, so some go to the lanes' overflow
/// heap. Every connection times out, none early, in the order of its
/// deadline.
#[test]
fn idle_timeouts_of_many_lengths_close_in_deadline_order() {
    const N: u64 = 12;
    let order: Rc<RefCell<Vec<u64>>> = Rc::default();
    let mut r = reactor();
    let next = Rc::new(Cell::new(0u64));
    let (o2, n2) = (order.clone(), next.clone());
    let addr = listen(&mut r, move || {
        let i = n2.get();
        n2.set(i + 1);
        // The first connection gets the longest timeout.
        let idle = ms(100 + 25 * (N - 1 - i));
        let o3 = o2.clone();
        Recorder::new(&log())
            .on_connect(move |c| c.set_idle_timeout(Some(idle)))
            .on_close(move |_, closed| {
                assert_eq!(closed.reason, Reason::TimedOut(Timeout::Idle));
                o3.borrow_mut().push(i);
            })
    });
    let start = Instant::now();
    let mut clients: Vec<Option<Client>> = Vec::new();
    for _ in 0..N {
        clients.push(Some(Client::connect(addr)));
        run_until(&mut r, |_| next.get() == clients.len() as u64);
    }
    // Each client closes once it read our FIN, which completes our
    // lingering close.
    run_until(&mut r, |_| {
        for c in clients.iter_mut() {
            if c.as_mut().is_some_and(|c| c.done()) {
                assert_eq!(c.take().unwrap().end, End::Eof);
            }
        }
        order.borrow().len() == N as usize
    });
    assert_not_early(start.elapsed(), ms(100 + 25 * (N - 1)));
    let want: Vec<u64> = (0..N).rev().collect();
    assert_eq!(*order.borrow(), want, "closed out of deadline order");
}
