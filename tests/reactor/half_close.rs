//! Scenario group A of docs/scenarios.md: half-close. The peer's FIN reaches
//! `handle_readable_eof`, whose `Eof` says what it means; our own
//! `shutdown_write` closes only our direction.
//!
//! Every test here runs on TCP and on a Unix stream socket, from the one
//! definition each (the table below): a Unix socket's `shutdown` gives the
//! peer end of file as a TCP FIN does. Where the outcome differs (A11's
//! abort, A12's peer reset), the test says so through its `Transport`.
use std::cell::{Cell, RefCell};
use std::io;
use std::mem::MaybeUninit;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::util::*;
use halfclose::{Addr, Closed, Conn, ConnId, Eof, Error, Handler, Reactor, Reason};

crate::transports!(
    a1_half_close_keeps_sending,
    a2_no_opt_in_closes_losslessly,
    a3_eof_exactly_once_no_busy_loop,
    a4_all_data_then_eof_with_small_read_budget,
    a5_eof_held_while_paused,
    a5_eof_held_while_paused_in_read,
    a6_shutdown_write_keeps_reading,
    a7_write_after_shutdown_refused,
    a8_shutdown_write_twice,
    a9_chained_half_closes,
    a11_panic_in_eof_aborts_only_that_connection,
    a12_shutdown_after_peer_reset,
);

/// A slot a handler fills with its connection's id, so that the test can
/// reach the connection from outside any callback.
type IdSlot = Rc<Cell<Option<ConnId>>>;

fn id_slot() -> IdSlot {
    Rc::new(Cell::new(None))
}

/// The id of the accepted connection, once `handle_connect` ran.
#[track_caller]
fn accepted(r: &mut Reactor, slot: &IdSlot) -> ConnId {
    run_until(r, |_| slot.get().is_some());
    slot.get().unwrap()
}

/// `rec`, made to put its connection's id into `slot` on connect before it
/// runs `then`.
fn track_id(
    rec: Recorder,
    slot: &IdSlot,
    mut then: impl FnMut(&mut Conn<'_>) + 'static,
) -> Recorder {
    let slot = slot.clone();
    rec.on_connect(move |c| {
        slot.set(Some(c.id()));
        then(c);
    })
}

/// A reactor without timeouts listening on a fresh address of `t` whose
/// connections get the recorder `make` builds from the shared log and id
/// slot: (reactor, address, log, slot).
fn server(
    t: Transport,
    make: impl Fn(&Log, &IdSlot) -> Recorder + 'static,
) -> (Reactor, Addr, Log, IdSlot) {
    let log = log();
    let slot = id_slot();
    let mut r = reactor_with(no_timeouts);
    let (l2, s2) = (log.clone(), slot.clone());
    let addr = t.listen(&mut r, move || make(&l2, &s2));
    (r, addr, log, slot)
}

/// A1: the peer half-closes first and we keep sending. `Eof::HalfClose`
/// keeps our write half open: 100 bytes written from a timer after the EOF
/// arrive intact, the connection counts as half-closed-in while we hold it,
/// and the peer sees EOF only once we shut down. EOF is delivered once.
fn a1_half_close_keeps_sending(t: Transport) {
    let reply = pattern(100, 1);
    let reply2 = reply.clone();
    let (mut r, addr, log, slot) = server(t, move |log, slot| {
        let reply = reply2.clone();
        track_id(Recorder::new(log), slot, |_| {})
            .on_eof(|c| {
                c.set_timer(Duration::from_millis(10));
                Eof::HalfClose
            })
            .on_timer(move |c, _| c.write(&reply))
    });
    let mut c = Client::request(addr, b"request");
    let id = accepted(&mut r, &slot);

    run_until(&mut r, |_| count(&log, |e| *e == Ev::Eof) >= 1);
    assert_eq!(r.stats().half_closed_in, 1);
    {
        let conn = r.conn(id).expect("held open after HalfClose");
        assert!(conn.is_read_closed());
        assert!(conn.may_send());
    }

    run_until(&mut r, |_| c.pump().received.len() >= reply.len());
    assert_eq!(c.received, reply);
    // Our write half is still open: no EOF for the peer yet.
    turns(&mut r, 20, ms(1));
    assert_eq!(c.pump().end, End::Open);
    assert_eq!(r.stats().half_closed_in, 1);
    assert_eq!(r.stats().open, 1);

    r.conn(id).unwrap().shutdown_write();
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received, reply);
    run_until(&mut r, |_| closed(&log).is_some());

    assert_eq!(shape(&log), ["connect", "read", "eof", "timer", "close"]);
    assert_eq!(read_bytes(&log), b"request");
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::PeerClosed);
    assert_eq!((cl.bytes_in, cl.bytes_out, cl.dropped), (7, 100, 0));
    assert_eq!(r.stats().half_closed_in, 0);
    assert_eq!(r.stats().peak_half_closed_in, 1);
}

/// A protocol that does not override `handle_readable_eof`: the trait's
/// default must be used, not a recorder's.
struct DefaultEcho {
    reads: Rc<RefCell<Vec<u8>>>,
    closes: Rc<RefCell<Vec<Closed>>>,
}

impl Handler for DefaultEcho {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.reads.borrow_mut().extend_from_slice(data);
        conn.write(data);
    }
    fn handle_close(&mut self, _ctx: &mut halfclose::Ctx<'_>, closed: &Closed) {
        self.closes.borrow_mut().push(*closed);
    }
}

/// A2: a protocol that does not opt in to half-close. "hello" then the
/// peer's FIN: the data is delivered (and echoed), then the default
/// `Eof::Close` closes losslessly: the peer reads the echo and a clean EOF
/// (not ECONNRESET), nothing is dropped, and the connection never sits in
/// the half-closed-in state. Twisted and asyncio tell such a protocol
/// "connection lost"; here the default of `handle_readable_eof` is that.
fn a2_no_opt_in_closes_losslessly(t: Transport) {
    let reads = Rc::new(RefCell::new(Vec::new()));
    let closes = Rc::new(RefCell::new(Vec::new()));
    let mut r = reactor_with(no_timeouts);
    let (rd, cl) = (reads.clone(), closes.clone());
    let addr = t.listen(&mut r, move || DefaultEcho {
        reads: rd.clone(),
        closes: cl.clone(),
    });
    let mut c = Client::request(addr, b"hello");
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof, "a lossless close ends with FIN, not RST");
    assert_eq!(c.received, b"hello");
    run_until(&mut r, |_| !closes.borrow().is_empty());

    assert_eq!(*reads.borrow(), b"hello");
    let closes = closes.borrow();
    assert_eq!(closes.len(), 1);
    assert_eq!(closes[0].reason, Reason::PeerClosed);
    assert_eq!(
        (closes[0].bytes_in, closes[0].bytes_out, closes[0].dropped),
        (5, 5, 0)
    );
    let s = r.stats();
    assert_eq!((s.open, s.closed, s.resets, s.aborts), (0, 1, 0, 0));
    assert_eq!(
        s.peak_half_closed_in, 0,
        "Eof::Close must not hold the connection half-open"
    );
}

/// A3: EOF is delivered exactly once and the loop does not spin after it,
/// although the socket stays readable at the kernel level (V4: a read would
/// return 0 at once). With the connection held half-closed and no timer
/// armed, hundreds of zero-timeout iterations handle no event and call no
/// callback, and a bounded wait really waits (nothing re-queued). Netty
/// pins the same after its half-closure event (netty#7255).
fn a3_eof_exactly_once_no_busy_loop(t: Transport) {
    let (mut r, addr, log, slot) = server(t, |log, slot| {
        track_id(Recorder::new(log), slot, |_| {}).on_eof(|_| Eof::HalfClose)
    });
    let mut c = Client::request(addr, b"x");
    let id = accepted(&mut r, &slot);
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Eof) >= 1);
    assert_eq!(count(&log, |e| *e == Ev::Eof), 1);

    // V4: the descriptor is still readable: a peek returns EOF at once.
    {
        let conn = r.conn(id).unwrap();
        let mut buf = [MaybeUninit::<u8>::uninit(); 16];
        assert_eq!(socket2::SockRef::from(&*conn).peek(&mut buf).unwrap(), 0);
    }

    // Let a stray edge collected before the EOF was read come in.
    turns(&mut r, 3, ms(5));
    let before = log.borrow().len();
    let mut handled = 0;
    for _ in 0..300 {
        handled += r.run_once(Some(Duration::ZERO)).unwrap();
    }
    assert!(
        handled <= 1,
        "{handled} events handled after EOF: the reactor spins"
    );
    assert_eq!(
        log.borrow().len(),
        before,
        "callbacks after EOF: {:?}",
        shape(&log)
    );

    // Nothing is pending: a bounded wait blocks for its whole timeout
    // instead of returning at once (a re-queued connection would make the
    // loop poll with a zero timeout).
    let wait = Duration::from_millis(30);
    let t = Instant::now();
    let n = r.run_once(Some(wait)).unwrap();
    assert_eq!(n, 0);
    assert!(
        t.elapsed() >= wait - Duration::from_millis(2),
        "run_once returned after {:?}",
        t.elapsed()
    );

    assert_eq!(count(&log, |e| *e == Ev::Eof), 1);
    assert_eq!(r.stats().half_closed_in, 1);
    assert_eq!(c.pump().end, End::Open);

    r.conn(id).unwrap().shutdown_write();
    run_until(&mut r, |_| c.done() && closed(&log).is_some());
    assert_eq!(c.end, End::Eof);
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
}

/// A4: all data, then EOF, with a per-wakeup read budget of one 1 KiB read
/// under edge triggering: 16 KiB and the FIN are in the receive queue before
/// the first event, so everything after the first read must come from the
/// re-queued connection, not from a new edge.
fn a4_all_data_then_eof_with_small_read_budget(t: Transport) {
    let log = log();
    let mut r = reactor_with(|c| {
        no_timeouts(c);
        c.read_budget = 1;
        c.read_buffer_size = 1024;
    });
    let reads = Rc::new(Cell::new(0usize));
    let largest = Rc::new(Cell::new(0usize));
    let (l2, rd, lg) = (log.clone(), reads.clone(), largest.clone());
    let addr = t.listen(&mut r, move || {
        let (rd, lg) = (rd.clone(), lg.clone());
        Recorder::new(&l2).on_read(move |_, d| {
            rd.set(rd.get() + 1);
            lg.set(lg.get().max(d.len()));
        })
    });
    let data = pattern(16 * 1024, 4);
    let mut c = Client::connect(addr);
    c.send(&data);
    assert_eq!(c.unsent(), 0, "16 KiB fit in the loopback buffers");
    c.shutdown_write();

    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    assert_eq!(read_bytes(&log), data);
    assert!(
        reads.get() >= 16,
        "only {} reads: the budget was not in force",
        reads.get()
    );
    assert!(largest.get() <= 1024);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::PeerClosed);
    assert_eq!((cl.bytes_in, cl.dropped), (16 * 1024, 0));
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
}

/// Markers in the order they happened, for A5.
type Order = Rc<RefCell<Vec<&'static str>>>;

/// A recorder that also writes its callbacks into `order`.
fn ordered(log: &Log, order: &Order) -> Recorder {
    let (o1, o2, o3) = (order.clone(), order.clone(), order.clone());
    Recorder::new(log)
        .on_read(move |_, _| o1.borrow_mut().push("read"))
        .on_eof(move |_| {
            o2.borrow_mut().push("eof");
            Eof::Close
        })
        .on_close(move |_, _| o3.borrow_mut().push("close"))
}

/// Drive the loop a bounded number of iterations and check that nothing
/// reached the handler beyond `expected`.
#[track_caller]
fn assert_nothing_delivered(r: &mut Reactor, log: &Log, expected: &[&str]) {
    turns(r, 30, ms(2));
    assert_eq!(
        shape(log),
        expected,
        "input delivered while reading was paused"
    );
}

/// A5: a FIN that arrives while reading is paused is held. Paused in
/// `handle_connect`, with data and FIN already queued: nothing is delivered
/// until `resume_reading`; then the data, then EOF, then close (Twisted's
/// test_connectionLostAfterPausedTransport).
fn a5_eof_held_while_paused(t: Transport) {
    let order: Order = Rc::new(RefCell::new(Vec::new()));
    let o2 = order.clone();
    let (mut r, addr, log, slot) = server(t, move |log, slot| {
        let o3 = o2.clone();
        track_id(ordered(log, &o2), slot, move |c| {
            c.pause_reading();
            o3.borrow_mut().push("paused");
        })
    });
    let mut c = Client::request(addr, b"data");
    let id = accepted(&mut r, &slot);
    assert_nothing_delivered(&mut r, &log, &["connect"]);
    {
        let conn = r.conn(id).unwrap();
        assert!(conn.is_reading_paused());
        assert!(!conn.is_read_closed());
    }
    assert_eq!(c.pump().end, End::Open);

    // A request from outside a callback is carried out at once, so the
    // order is noted first.
    order.borrow_mut().push("resumed");
    r.conn(id).unwrap().resume_reading();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(
        *order.borrow(),
        ["paused", "resumed", "read", "eof", "close"]
    );
    assert_eq!(read_bytes(&log), b"data");
    assert_eq!(closed(&log).unwrap().reason, Reason::PeerClosed);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
}

/// A5, paused from inside `handle_read` when the same wakeup also carried
/// the FIN: the EOF is held until `resume_reading`, not delivered right
/// after the read that paused.
fn a5_eof_held_while_paused_in_read(t: Transport) {
    let order: Order = Rc::new(RefCell::new(Vec::new()));
    let o2 = order.clone();
    let (mut r, addr, log, slot) = server(t, move |log, slot| {
        let o3 = o2.clone();
        let first = Rc::new(Cell::new(true));
        let mut rec = track_id(ordered(log, &o2), slot, |_| {});
        let mut inner = rec.on_read.take().unwrap();
        rec.on_read(move |c, d| {
            inner(c, d);
            if first.replace(false) {
                c.pause_reading();
                o3.borrow_mut().push("paused");
            }
        })
    });
    let _c = Client::request(addr, b"data");
    let id = accepted(&mut r, &slot);
    run_until(&mut r, |_| !order.borrow().is_empty());
    assert_nothing_delivered(&mut r, &log, &["connect", "read"]);
    assert!(!r.conn(id).unwrap().is_read_closed());

    // A request from outside a callback is carried out at once, so the
    // order is noted first.
    order.borrow_mut().push("resumed");
    r.conn(id).unwrap().resume_reading();
    run_until(&mut r, |_| closed(&log).is_some());
    // The FIN usually comes with the data, in one read; if it came later
    // there is a second read before the EOF.
    let order = order.borrow();
    assert_eq!(order[..3], ["read", "paused", "resumed"]);
    assert_eq!(order[order.len() - 2..], ["eof", "close"]);
    assert_eq!(read_bytes(&log), b"data");
    assert_eq!(count(&log, |e| *e == Ev::Eof), 1);
}

/// A6: our `shutdown_write` while the peer still sends. The peer reads our
/// bytes then EOF, can still send afterwards, and we read it; when the peer
/// finally closes, the connection ends with `Reason::Local` (our FIN came
/// first).
fn a6_shutdown_write_keeps_reading(t: Transport) {
    let greeting = pattern(4096, 6);
    let g2 = greeting.clone();
    let (mut r, addr, log, slot) = server(t, move |log, slot| {
        let g3 = g2.clone();
        track_id(Recorder::new(log), slot, move |c| {
            c.write(&g3);
            c.shutdown_write();
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"one");
    let id = accepted(&mut r, &slot);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received, greeting);
    assert_eq!(r.stats().half_closed_out, 1);
    {
        let conn = r.conn(id).unwrap();
        assert!(!conn.may_send());
        assert!(conn.may_recv());
    }

    // After our EOF the peer still sends, and we still read.
    c.send(b" two");
    run_until(&mut r, |_| read_bytes(&log).len() == 7);
    assert_eq!(read_bytes(&log), b"one two");
    assert!(closed(&log).is_none());

    drop(c); // the peer closes
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local, "our FIN came first");
    assert_eq!((cl.bytes_in, cl.bytes_out, cl.dropped), (7, 4096, 0));
    assert_eq!(r.stats().open, 0);
}

/// A7: writing after our own `shutdown_write` is refused with
/// `Error::WriteAfterShutdown`, in the same callback (FIN still queued) and
/// later (FIN sent), and nothing reaches the wire: the peer reads only the
/// bytes written before, then EOF.
fn a7_write_after_shutdown_refused(t: Transport) {
    let results: Rc<RefCell<Vec<halfclose::Result<()>>>> = Rc::new(RefCell::new(Vec::new()));
    let res2 = results.clone();
    let (mut r, addr, log, slot) = server(t, move |log, slot| {
        let (res3, res4) = (res2.clone(), res2.clone());
        track_id(Recorder::new(log), slot, move |c| {
            c.write(b"before");
            c.shutdown_write();
            res3.borrow_mut().push(c.try_write(b"after"));
        })
        .on_read(move |c, _| res4.borrow_mut().push(c.try_write(b"in read")))
    });
    let mut c = Client::connect(addr);
    let id = accepted(&mut r, &slot);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received, b"before", "refused bytes reached the wire");

    // Our FIN is out; a write from outside any callback is refused too.
    {
        let mut conn = r.conn(id).unwrap();
        assert!(matches!(
            conn.try_write(b"outside"),
            Err(Error::WriteAfterShutdown)
        ));
        assert_eq!(conn.pending(), 0);
    }
    c.send(b"ping");
    run_until(&mut r, |_| results.borrow().len() == 2);
    for res in results.borrow().iter() {
        assert!(matches!(res, Err(Error::WriteAfterShutdown)), "{res:?}");
    }
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!((cl.bytes_out, cl.dropped), (6, 0));
    assert_eq!(count(&log, |e| matches!(e, Ev::Error(_))), 0);
}

/// A8: `shutdown_write` twice in one callback, and once more after the FIN
/// is out: no error, the peer sees our bytes and one EOF, the connection
/// stays open for reading, and it ends normally, once (libuv and tokio pin
/// the same).
fn a8_shutdown_write_twice(t: Transport) {
    let (mut r, addr, log, slot) = server(t, |log, slot| {
        track_id(Recorder::new(log), slot, |c| {
            c.write(b"bye");
            c.shutdown_write();
            c.shutdown_write();
        })
    });
    let mut c = Client::connect(addr);
    let id = accepted(&mut r, &slot);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received, b"bye");
    assert_eq!(r.stats().half_closed_out, 1);

    r.conn(id).unwrap().shutdown_write();
    turns(&mut r, 10, ms(1));
    assert!(
        r.conn(id).is_some(),
        "a repeated shutdown must not close the connection"
    );
    assert_eq!(r.stats().half_closed_out, 1);
    // The peer can still send to us.
    c.send(b"late");
    run_until(&mut r, |_| read_bytes(&log) == b"late");

    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    // Our FIN came first.
    assert_eq!(closed(&log).unwrap().reason, Reason::Local);
    let s = r.stats();
    assert_eq!((s.open, s.closed, s.errors, s.resets), (0, 1, 0, 0));
}

/// A9: chained half-closes. The peer's FIN, then our reply and
/// `shutdown_write` from `handle_readable_eof` (returning `HalfClose`):
/// both sides see EOF, the connection closes fully (no `shutdown` left
/// pending, no gauge left counting it), with one `handle_close`.
fn a9_chained_half_closes(t: Transport) {
    let log = log();
    let mut r = reactor_with(no_timeouts);
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2).on_eof(|c| {
            c.write(b"response");
            c.shutdown_write();
            Eof::HalfClose
        })
    });
    let mut c = Client::request(addr, b"request");
    run_until(&mut r, |_| c.done() && closed(&log).is_some());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received, b"response");

    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    assert_eq!(count(&log, |e| matches!(e, Ev::Close(_))), 1);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::PeerClosed);
    assert_eq!((cl.bytes_in, cl.bytes_out, cl.dropped), (7, 8, 0));
    let s = r.stats();
    assert_eq!(
        (
            s.open,
            s.established,
            s.half_closed_in,
            s.half_closed_out,
            s.lingering
        ),
        (0, 0, 0, 0, 0)
    );
    assert_eq!(s.closed, 1);
    turns(&mut r, 10, ms(1));
    assert_eq!(count(&log, |e| matches!(e, Ev::Close(_))), 1);
}

/// A11: a handler that panics in `handle_readable_eof`. The panic is logged
/// once, that connection alone is aborted (reason `Panicked`, one
/// `handle_close`, no `handle_error`; the peer reads ECONNRESET on TCP, end
/// of file on a Unix socket, which has no reset), and another connection
/// of the same reactor is served before and after.
fn a11_panic_in_eof_aborts_only_that_connection(t: Transport) {
    capture_errors();

    let logs: Rc<RefCell<Vec<Log>>> = Rc::new(RefCell::new(Vec::new()));
    let mut r = reactor_with(no_timeouts);
    let l2 = logs.clone();
    let addr = t.listen(&mut r, move || {
        let log = log();
        l2.borrow_mut().push(log.clone());
        Recorder::new(&log)
            .on_read(|c, d| c.write(d))
            .on_eof(move |_| panic!("a11 on {t:?}: buggy handle_readable_eof"))
    });

    let mut good = Client::connect(&addr);
    good.send(b"ping1");
    run_until(&mut r, |_| good.pump().received == b"ping1");
    assert_eq!(logs.borrow().len(), 1);

    let mut bad = Client::connect(addr);
    bad.shutdown_write();
    run_until(&mut r, |_| bad.done());
    assert_eq!(bad.end, t.peer_end_after_abort(false));
    let bad_log = logs.borrow()[1].clone();
    run_until(&mut r, |_| closed(&bad_log).is_some());
    assert_eq!(shape(&bad_log), ["connect", "eof", "close"]);
    let cl = closed(&bad_log).unwrap();
    assert_eq!(cl.reason, Reason::Panicked);
    assert_eq!(cl.dropped, 0);
    let s = r.stats();
    assert_eq!((s.panics, s.open, s.closed), (1, 1, 1));
    let panics = errors_mentioning(&format!("a11 on {t:?}: buggy handle_readable_eof"));
    assert_eq!(panics.len(), 1, "logged once: {panics:?}");

    good.send(b"ping2");
    run_until(&mut r, |_| good.pump().received == b"ping1ping2");
    assert_eq!(good.end, End::Open);
    assert_eq!(shape(&logs.borrow()[0]), ["connect", "read"]);
    assert_eq!(r.stats().panics, 1);
}

/// A12: `shutdown_write` on a connection the peer already reset (the reset
/// is in the kernel, the loop has not seen it yet). On TCP `shutdown(2)`
/// fails with ENOTCONN (V6); on a Unix socket, where the peer's "reset" is
/// a close with our greeting left unread, it succeeds and the pending
/// `ECONNRESET` comes next. Either way it is reported as the reset it is:
/// no panic, one `handle_error(ConnectionReset)`, one `handle_close` with
/// `Reason::Reset`, never an EOF.
fn a12_shutdown_after_peer_reset(t: Transport) {
    let (mut r, addr, log, slot) = server(t, |log, slot| {
        track_id(Recorder::new(log), slot, |c| c.write(b"greeting"))
    });
    let c = Client::connect(addr);
    let id = accepted(&mut r, &slot);
    c.reset();
    r.conn(id).unwrap().shutdown_write();
    run_until(&mut r, |_| closed(&log).is_some());
    turns(&mut r, 10, ms(1));

    assert_eq!(
        shape(&log),
        ["connect", "error", "close"],
        "one error report, one close: {:?}",
        log.borrow()
    );
    assert_eq!(
        count(&log, |e| *e == Ev::Error(io::ErrorKind::ConnectionReset)),
        1
    );
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Reset);
    assert_eq!(cl.dropped, 0);
    let s = r.stats();
    assert_eq!((s.panics, s.resets, s.closed, s.open), (0, 1, 1, 0));
}

/// The peer half-closes first; the handler answers with `Eof::HalfClose`
/// and then `shutdown_write`. The peer's end came first, so the close's
/// reason is `PeerClosed`, as on TCP and a Unix socket
/// (`reactor::smoke::half_close_keeps_writing`), although TLS, which must
/// send `close_notify` before its FIN, takes another way there: TCP's
/// state machine finalizes at once (`close(2)` sends the FIN), TLS shuts
/// its write half first (`ConnState::shut_write` records who came first).
#[cfg(feature = "tls")]
#[test]
fn a1_tls_reason_after_half_close_then_shutdown_is_peer_closed() {
    let (mut r, addr, log, _) = server(Transport::Tls, |log, _| {
        Recorder::new(log).on_eof(|c| {
            c.write(b"late reply");
            c.shutdown_write();
            Eof::HalfClose
        })
    });
    let mut c = Client::request(addr, b"req");
    run_until(&mut r, |_| c.done() && closed(&log).is_some());
    assert_eq!(c.received, b"late reply");
    assert_eq!(c.end, End::Eof);
    assert_eq!(closed(&log).unwrap().reason, Reason::PeerClosed);
}
