//! Handler faults (A11 for every callback): a panic in any callback of a
//! handler, or in a listener's handler factory, ends only the connection
//! it belongs to. The reactor logs it with `log::error!`, counts it in
//! `Stats::panics`, aborts that connection (reason `Panicked`) and goes on
//! serving the others. Also what a panic in a task posted with
//! `Handle::post` does to the reactor.
//!
//! Every row of the table runs on TCP and on a Unix stream socket, from the
//! one definition each (the list below). The abort that ends a panicking
//! connection is a RST on TCP; a Unix socket has no reset, so there the
//! client reads end of file (`Transport::peer_end_after_abort`). The
//! posted-task test runs on TCP only: a task never touches a socket.

use crate::util::*;

use std::cell::{Cell, RefCell};
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use halfclose::{Closed, Conn, Ctx, Eof, Handler, Reason, TimerId};

crate::transports!(
    a11_panic_in_handle_connect_aborts_only_that_connection,
    a11_panic_in_handle_read_aborts_only_that_connection,
    a11_panic_in_handle_readable_eof_aborts_only_that_connection,
    a11_panic_in_handle_write_aborts_only_that_connection,
    a11_panic_in_handle_error_aborts_only_that_connection,
    a11_panic_in_handle_timer_aborts_only_that_connection,
    a11_panic_in_handle_drain_aborts_only_that_connection,
    a11_panic_in_handle_close_is_logged_and_counted,
    a11_panic_in_the_handler_factory_closes_only_that_connection,
);

// ---------------------------------------------------------------------------
// A handler that panics in the callback it is told to
// ---------------------------------------------------------------------------

/// Where a panic is injected.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cb {
    Connect,
    Read,
    Eof,
    Write,
    Error,
    Timer,
    Drain,
    Close,
    /// The listener's factory, before any handler exists.
    Factory,
}

impl Cb {
    /// The panic message, unique per case and transport (the tests share
    /// one logger).
    fn message(self, t: Transport) -> String {
        format!("handler_faults: injected panic in {self:?} on {t:?}")
    }
}

/// What one handler saw: callback names in order, and its `Closed`.
#[derive(Default)]
struct Seen {
    calls: RefCell<Vec<&'static str>>,
    closed: Cell<Option<Closed>>,
    /// The write case: whether the queue passed the high-water mark.
    blocked: Cell<bool>,
}

impl Seen {
    fn push(&self, name: &'static str) {
        self.calls.borrow_mut().push(name);
    }
    fn closes(&self) -> usize {
        self.calls
            .borrow()
            .iter()
            .filter(|c| **c == "close")
            .count()
    }
}

/// Bytes the write case queues, far past the high-water mark.
const BULK: usize = 2 * 1024 * 1024;

/// Echoes input; panics in `fault`'s callback if it has one.
struct Faulty {
    fault: Option<Cb>,
    t: Transport,
    seen: Rc<Seen>,
}

impl Faulty {
    fn maybe_panic(&self, here: Cb) {
        if self.fault == Some(here) {
            panic!("{}", here.message(self.t));
        }
    }
}

impl Handler for Faulty {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        self.seen.push("connect");
        self.maybe_panic(Cb::Connect);
        match self.fault {
            Some(Cb::Timer) => {
                conn.set_timer(Duration::from_millis(10));
            }
            Some(Cb::Error) => {
                // Left unread by the client, whose close then resets the
                // connection on a Unix socket too (`Client::reset`).
                conn.write(b"greeting");
            }
            Some(Cb::Write) => {
                // A small send buffer, so that most of BULK is queued.
                socket2::SockRef::from(&*conn)
                    .set_send_buffer_size(8 * 1024)
                    .expect("SO_SNDBUF");
                conn.write(&pattern(BULK, 5));
                self.seen.blocked.set(conn.is_write_blocked());
            }
            _ => {}
        }
    }
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.seen.push("read");
        self.maybe_panic(Cb::Read);
        conn.write(data);
    }
    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        self.seen.push("eof");
        self.maybe_panic(Cb::Eof);
        Eof::Close
    }
    fn handle_write(&mut self, _conn: &mut Conn<'_>) {
        self.seen.push("write");
        self.maybe_panic(Cb::Write);
    }
    fn handle_error(&mut self, _conn: &mut Conn<'_>, _err: &io::Error) {
        self.seen.push("error");
        self.maybe_panic(Cb::Error);
    }
    fn handle_timer(&mut self, _conn: &mut Conn<'_>, _timer: TimerId) {
        self.seen.push("timer");
        self.maybe_panic(Cb::Timer);
    }
    fn handle_drain(&mut self, _conn: &mut Conn<'_>) {
        self.seen.push("drain");
        self.maybe_panic(Cb::Drain);
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.seen.push("close");
        self.seen.closed.set(Some(*closed));
        self.maybe_panic(Cb::Close);
    }
}

// ---------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------

/// What the panicking connection's client reads.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum PeerSees {
    /// The end of an abort (ECONNRESET on TCP, end of file on a Unix
    /// socket), with nothing read before.
    Reset,
    /// The end of an abort after a prefix of what the handler wrote.
    ResetAfterPrefix,
    /// A clean EOF, nothing read.
    Eof,
    /// What a peer reads when its connection is closed at the accept
    /// (`Transport::peer_ends_when_closed_at_accept`), nothing read.
    ClosedAtAccept,
    /// Nothing to see: the client itself reset the connection first.
    Gone,
}

/// One row: where the panic is, and what must follow.
struct Case {
    cb: Cb,
    /// The panicking handler's callbacks, in order (empty: no handler).
    calls: &'static [&'static str],
    /// `Closed::reason` of the panicking connection (`None`: no handler).
    reason: Option<Reason>,
    /// `Closed::dropped`, where it is determined.
    dropped: Option<u64>,
    peer: PeerSees,
}

const CASES: &[Case] = &[
    Case {
        cb: Cb::Connect,
        calls: &["connect", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Reset,
    },
    Case {
        cb: Cb::Read,
        calls: &["connect", "read", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Reset,
    },
    Case {
        cb: Cb::Eof,
        calls: &["connect", "eof", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Reset,
    },
    Case {
        cb: Cb::Write,
        calls: &["connect", "write", "close"],
        reason: Some(Reason::Panicked),
        // Whatever was still queued at the low-water mark.
        dropped: None,
        peer: PeerSees::ResetAfterPrefix,
    },
    Case {
        // The client's RST reaches handle_error, which panics: the reason
        // says the handler panicked, not that the peer reset.
        cb: Cb::Error,
        calls: &["connect", "error", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Gone,
    },
    Case {
        cb: Cb::Timer,
        calls: &["connect", "timer", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Reset,
    },
    Case {
        cb: Cb::Drain,
        calls: &["connect", "drain", "close"],
        reason: Some(Reason::Panicked),
        dropped: Some(0),
        peer: PeerSees::Reset,
    },
    Case {
        // The connection is already closed (lossless, by our FIN) when
        // handle_close runs: the panic is logged and counted, nothing else.
        cb: Cb::Close,
        calls: &["connect", "eof", "close"],
        reason: Some(Reason::PeerClosed),
        dropped: Some(0),
        peer: PeerSees::Eof,
    },
    Case {
        // No handler: the accepted socket is closed at once, FIN (its
        // receive queue is empty; on TLS, RST if the ClientHello is in it).
        cb: Cb::Factory,
        calls: &[],
        reason: None,
        dropped: None,
        peer: PeerSees::ClosedAtAccept,
    },
];

fn case(cb: Cb) -> &'static Case {
    CASES
        .iter()
        .find(|c| c.cb == cb)
        .expect("a row for every callback")
}

/// Run one row on `t`: a good connection served before and after; a
/// second connection whose handler (or factory call) panics in `cb`.
fn run_case(t: Transport, cb: Cb) {
    capture_errors();
    let row = case(cb);
    let msg = cb.message(t);
    let mut r = reactor_with(no_timeouts);

    // Handler 0 is the good connection, handler 1 (or factory call 1) the
    // faulty one, the rest good.
    let seen: Rc<RefCell<Vec<Rc<Seen>>>> = Rc::default();
    let factory_calls = Rc::new(Cell::new(0usize));
    let (seen2, calls2) = (seen.clone(), factory_calls.clone());
    let addr = t.listen(&mut r, move || {
        let i = calls2.get();
        calls2.set(i + 1);
        if i == 1 && cb == Cb::Factory {
            panic!("{}", Cb::Factory.message(t));
        }
        let s = Rc::new(Seen::default());
        seen2.borrow_mut().push(s.clone());
        Faulty {
            fault: (i == 1).then_some(cb),
            t,
            seen: s,
        }
    });

    let mut good = Client::connect(&addr);
    echo_round_trip(&mut r, &mut good, b"before");
    assert_eq!(r.stats().panics, 0);

    let mut bad = Some(Client::connect(&addr));
    run_until(&mut r, |_| factory_calls.get() == 2);
    let bad_seen = seen.borrow().get(1).cloned();
    if cb == Cb::Factory {
        assert!(
            bad_seen.is_none(),
            "a handler was made although the factory panicked"
        );
    }
    if let Some(s) = &bad_seen {
        // Made at the accept; connected after TLS's handshake, at once
        // otherwise.
        run_until(&mut r, |_| !s.calls.borrow().is_empty());
    }
    match cb {
        Cb::Read => bad.as_mut().unwrap().send(b"boom"),
        Cb::Eof | Cb::Close => bad.as_mut().unwrap().shutdown_write(),
        Cb::Drain => r.drain(Duration::from_secs(30)),
        Cb::Error => bad.take().unwrap().reset(),
        Cb::Connect | Cb::Write | Cb::Timer | Cb::Factory => {}
    }

    // The panicking connection ends, and its client sees how.
    if let Some(bad) = bad.as_mut() {
        run_until(&mut r, |_| bad.done());
    }
    match (row.peer, bad.as_ref()) {
        (PeerSees::Reset, Some(bad)) => {
            assert_eq!(bad.end, t.peer_end_after_abort(false), "{cb:?}");
            assert!(
                bad.received.is_empty(),
                "{cb:?}: client read {:?}",
                bad.received
            );
        }
        (PeerSees::ResetAfterPrefix, Some(bad)) => {
            assert_eq!(bad.end, t.peer_end_after_abort(false), "{cb:?}");
            let all = pattern(BULK, 5);
            assert!(
                bad.received.len() <= BULK && bad.received[..] == all[..bad.received.len()],
                "{cb:?}: the client read something other than a prefix of the output"
            );
        }
        (PeerSees::ClosedAtAccept, Some(bad)) => {
            let ends = t.peer_ends_when_closed_at_accept();
            assert!(ends.contains(&bad.end), "{cb:?}: {:?}", bad.end);
            assert!(bad.received.is_empty(), "{cb:?}");
        }
        (PeerSees::Eof, Some(bad)) => {
            assert_eq!(bad.end, End::Eof, "{cb:?}");
            assert!(
                bad.received.is_empty(),
                "{cb:?}: client read {:?}",
                bad.received
            );
        }
        (PeerSees::Gone, None) => {}
        (peer, _) => panic!("{cb:?}: table says {peer:?}"),
    }
    if let Some(s) = &bad_seen {
        run_until(&mut r, |_| s.closed.get().is_some());
    } else {
        run_until(&mut r, |r| r.stats().panics >= 1);
    }
    // A few more turns: nothing may follow the close.
    turns(&mut r, 5, ms(1));

    // The panicking handler: its callbacks, handle_close exactly once.
    match &bad_seen {
        Some(s) => {
            assert_eq!(&s.calls.borrow()[..], row.calls, "{cb:?}: callbacks");
            assert_eq!(
                s.closes(),
                1,
                "{cb:?}: handle_close not called exactly once"
            );
            let closed = s.closed.get().unwrap();
            assert_eq!(Some(closed.reason), row.reason, "{cb:?}: reason");
            if let Some(d) = row.dropped {
                assert_eq!(closed.dropped, d, "{cb:?}: dropped");
            }
            if cb == Cb::Write {
                assert!(
                    s.blocked.get(),
                    "the bulk write never passed the high-water mark"
                );
            }
        }
        None => assert!(row.calls.is_empty() && row.reason.is_none()),
    }

    // Logged once with log::error!, counted once.
    let logged = errors_mentioning(&msg);
    assert_eq!(
        logged.len(),
        1,
        "{cb:?}: panic not logged exactly once: {logged:?}"
    );
    let s = r.stats();
    assert_eq!(s.panics, 1, "{cb:?}: {s:?}");
    assert_eq!(s.open, 1, "{cb:?}: only the good connection is left: {s:?}");
    if cb == Cb::Factory {
        assert_eq!((s.accepted, s.closed), (1, 0), "{cb:?}: {s:?}");
    } else {
        assert_eq!((s.accepted, s.closed), (2, 1), "{cb:?}: {s:?}");
    }
    if cb == Cb::Error {
        assert_eq!(
            s.resets, 0,
            "a panicked connection counts as panicked only: {s:?}"
        );
    }

    // The good connection was not touched and is still served.
    echo_round_trip(&mut r, &mut good, b"after");
    let good_calls = seen.borrow()[0].calls.borrow().clone();
    assert!(
        good_calls
            .iter()
            .all(|c| matches!(*c, "connect" | "read" | "drain")),
        "{cb:?}: the good connection saw {good_calls:?}"
    );
    assert!(good_calls.iter().filter(|c| **c == "connect").count() == 1);

    // And the listener serves new connections (a drain closed it).
    if cb != Cb::Drain {
        let mut fresh = Client::connect(&addr);
        echo_round_trip(&mut r, &mut fresh, b"fresh");
        assert_eq!(r.stats().panics, 1);
    }
}

/// A11 for `handle_connect`: the peer reads ECONNRESET (end of file on a
/// Unix socket), reason `Panicked`.
fn a11_panic_in_handle_connect_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Connect);
}

/// A11 for `handle_read`: the peer reads ECONNRESET (end of file on a Unix
/// socket), reason `Panicked`;
/// no callback but `handle_close` follows.
fn a11_panic_in_handle_read_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Read);
}

/// A11 itself (`handle_readable_eof`), as one row of the table.
fn a11_panic_in_handle_readable_eof_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Eof);
}

/// A11 for `handle_write`: the queue passed the high-water mark, the
/// client read, `handle_write` panicked at the low-water mark; the client
/// read a prefix of the output, then ECONNRESET (end of file on a Unix
/// socket).
fn a11_panic_in_handle_write_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Write);
}

/// A11 for `handle_error`: the peer's reset reaches `handle_error`, which
/// panics; the connection ends with reason `Panicked` (not `Reset`), and
/// is counted as a panic, not as a reset.
fn a11_panic_in_handle_error_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Error);
}

/// A11 for `handle_timer`: the peer reads ECONNRESET (end of file on a Unix
/// socket), reason `Panicked`.
fn a11_panic_in_handle_timer_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Timer);
}

/// A11 for `handle_drain`: during a drain, the panicking connection is
/// aborted at once (ECONNRESET, or end of file on a Unix socket; reason
/// `Panicked`) while the other one,
/// told of the same drain, is still served.
fn a11_panic_in_handle_drain_aborts_only_that_connection(t: Transport) {
    run_case(t, Cb::Drain);
}

/// A11 for `handle_close`: the connection is already closed, lossless
/// (the peer read a clean EOF), when `handle_close` panics; the panic is
/// logged and counted, `handle_close` is not called again, and the
/// reactor goes on.
fn a11_panic_in_handle_close_is_logged_and_counted(t: Transport) {
    run_case(t, Cb::Close);
}

/// A11 for the listener's handler factory: no handler exists, so no
/// callback runs; the accepted socket is closed at once (the client reads
/// a clean EOF), the panic is logged and counted, the connection is not
/// counted as accepted, and the listener keeps serving.
fn a11_panic_in_the_handler_factory_closes_only_that_connection(t: Transport) {
    run_case(t, Cb::Factory);
}

/// The table covers every callback of `Handler`, and the factory.
#[test]
fn a11_table_covers_every_callback() {
    let all = [
        Cb::Connect,
        Cb::Read,
        Cb::Eof,
        Cb::Write,
        Cb::Error,
        Cb::Timer,
        Cb::Drain,
        Cb::Close,
        Cb::Factory,
    ];
    assert_eq!(CASES.len(), all.len());
    for cb in all {
        case(cb);
    }
}

// ---------------------------------------------------------------------------
// Tasks posted with Handle::post
// ---------------------------------------------------------------------------

/// A panic inside a task posted with `Handle::post` is caught like a
/// handler's: logged, counted in `stats().panics`, and it neither reaches
/// the caller of `run_once` nor drops the tasks posted after it in the
/// same batch. There is no connection to abort: existing ones are served.
#[test]
fn posted_task_panic_is_caught_and_later_tasks_run() {
    let mut r = crate::util::reactor();
    let addr = listen(&mut r, || Faulty {
        fault: None,
        t: Transport::Tcp,
        seen: Rc::default(),
    });
    let mut good = Client::connect(addr);
    echo_round_trip(&mut r, &mut good, b"before");

    let handle = r.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let ran2 = ran.clone();
    handle
        .post(|_| panic!("handler_faults: posted task panicked on purpose"))
        .expect("post");
    handle
        .post(move |_| {
            ran2.fetch_add(1, Ordering::SeqCst);
        })
        .expect("post");
    // The same batch: the second task runs although the first panicked.
    let escaped = catch_unwind(AssertUnwindSafe(|| {
        run_until(&mut r, |_| ran.load(Ordering::SeqCst) == 1)
    }));
    assert!(escaped.is_ok(), "the panic reached run_once's caller");
    assert_eq!(r.stats().panics, 1);
    echo_round_trip(&mut r, &mut good, b"after");
    assert_eq!(r.stats().open, 1);
}
