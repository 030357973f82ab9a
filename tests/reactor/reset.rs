//! Resets from the peer (scenario group C, C6 to C9): data then RST, a
//! peer that closed while we write, a reset noticed while reading is
//! paused or while we hold the connection half-open. Our own `abort()`
//! (C1 to C4) is in [`super::close_modes`].
//!
//! Every test here runs on TCP and on a Unix stream socket, from the one
//! definition each (the table below). A Unix socket has no RST: the
//! peer's "reset" there is a close with input left unread (our greeting,
//! which C6 and C9 write for that reason; [`Client::reset`]), after which
//! the kernel fails our reads with `ECONNRESET` and our writes with
//! `EPIPE`, as after a TCP RST. A peer that closed with nothing unread
//! fails our next write with `EPIPE` at once on a Unix socket, where TCP
//! lets the first one through (V3); C7 and C8 accept either.

use std::cell::Cell;
use std::io::ErrorKind;
use std::rc::Rc;
use std::time::Duration;

use crate::util::*;
use halfclose::{Conn, Eof, Reason, TimerId};

crate::transports!(
    c6_data_then_peer_rst,
    c7_writing_to_a_closed_peer_fails_once,
    c8_write_error_noticed_while_reading_paused,
    c9_rst_after_fin_while_half_open,
);

fn is_reset_kind(kind: ErrorKind) -> bool {
    matches!(kind, ErrorKind::ConnectionReset | ErrorKind::BrokenPipe)
}

/// Timer writes C7 and C8 make at most, one every 2 ms.
const MAX_TICKS: usize = 50;

/// A timer callback that writes 1000 bytes of `byte` (`wrote` adds up what
/// was accepted) and re-arms itself, [`MAX_TICKS`] times at most.
fn write_on_timer(byte: u8, wrote: Rc<Cell<usize>>) -> impl FnMut(&mut Conn<'_>, TimerId) {
    let mut ticks = 0;
    move |c, _| {
        if c.try_write(&[byte; 1000]).is_ok() {
            wrote.set(wrote.get() + 1000);
        }
        ticks += 1;
        if ticks < MAX_TICKS {
            c.set_timer(Duration::from_millis(2));
        }
    }
}

/// After its peer went away, the connection recorded in `log` noticed
/// within [`MAX_TICKS`] timer writes that they fail: one error, a reset,
/// and the close says `Reason::Reset`.
#[track_caller]
fn assert_write_failure_noticed_once(log: &Log) {
    let ticks = count(log, |e| *e == Ev::Timer);
    assert!(
        ticks < MAX_TICKS,
        "the failure was not noticed in {ticks} writes"
    );
    let errs = errors(log);
    assert_eq!(errs.len(), 1, "errors: {errs:?}");
    assert!(is_reset_kind(errs[0]), "error: {:?}", errs[0]);
    assert_eq!(closed(log).unwrap().reason, Reason::Reset);
}

fn errors(log: &Log) -> Vec<ErrorKind> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Ev::Error(k) => Some(*k),
            _ => None,
        })
        .collect()
}

/// C6 (V2): the peer sends 100 bytes, then RST, before we read anything:
/// the 100 bytes are delivered, then one `handle_error(ConnectionReset)`,
/// then `handle_close` with `Reason::Reset`; never `handle_readable_eof`.
/// (On a Unix socket the "RST" is the peer's close with our greeting
/// unread.)
fn c6_data_then_peer_rst(t: Transport) {
    let data = pattern(100, 6);
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2).on_connect(|c| c.write(b"greeting"))
    });
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Connect) == 1);
    c.send(&data);
    assert_eq!(c.unsent(), 0);
    c.reset();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "error", "close"]);
    assert_eq!(read_bytes(&log), data);
    assert_eq!(errors(&log), [ErrorKind::ConnectionReset]);
    let cl = closed(&log).unwrap();
    assert_eq!((cl.reason, cl.bytes_in), (Reason::Reset, 100));
    let stats = r.stats();
    assert_eq!((stats.resets, stats.open), (1, 0));
}

/// C7 (V3): the peer closed its socket entirely (its FIN looks like a
/// half-close, so we hold the connection with `Eof::HalfClose`) and we keep
/// writing from a timer. On TCP the first write succeeds and the peer
/// answers RST; on a Unix socket the first write already fails (`EPIPE`).
/// The failure (`ECONNRESET` or `EPIPE`) is reported once, the connection
/// closes with `Reason::Reset`, and every byte we wrote is either handed to
/// the kernel or counted as dropped.
fn c7_writing_to_a_closed_peer_fails_once(t: Transport) {
    let written = Rc::new(Cell::new(0usize));
    let log = log();
    let mut r = reactor();
    let (l2, w2) = (log.clone(), written.clone());
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2)
            .on_eof(|c| {
                c.set_timer(Duration::from_millis(2));
                Eof::HalfClose
            })
            .on_timer(write_on_timer(0x33, w2.clone()))
    });
    let c = Client::connect(addr);
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Connect) == 1);
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_write_failure_noticed_once(&log);
    let cl = closed(&log).unwrap();
    assert!(written.get() > 0);
    assert_eq!(cl.bytes_out + cl.dropped, written.get() as u64);
    let s = shape(&log);
    assert_eq!(s[..2], ["connect", "eof"]);
    assert_eq!(s[s.len() - 2..], ["error", "close"]);
    assert_eq!(r.stats().open, 0);
}

/// C8: reading is paused (so no read will ever meet the reset), the peer
/// goes away, and we only write: the write error is still noticed, once,
/// and the connection closes with `Reason::Reset`. Neither the peer's data
/// nor its FIN is delivered while paused.
fn c8_write_error_noticed_while_reading_paused(t: Transport) {
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2)
            .on_connect(|c| {
                c.pause_reading();
                c.set_timer(Duration::from_millis(2));
            })
            .on_timer(write_on_timer(0x44, Rc::default()))
    });
    let mut c = Client::connect(addr);
    c.send(b"never read");
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Connect) == 1);
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_write_failure_noticed_once(&log);
    assert_eq!(count(&log, |e| matches!(e, Ev::Read(_) | Ev::Eof)), 0);
    assert_eq!(r.stats().open, 0);
}

/// C9 (libuv#3449): the peer sends FIN, we hold the connection half-open
/// (`Eof::HalfClose`, writing nothing after our greeting), then the peer
/// sends RST. Although read interest ended at EOF, the reset is noticed:
/// one error, close with `Reason::Reset`, and no socket is left in
/// CLOSE_WAIT. (In CLOSE_WAIT Linux reports the RST as `EPIPE`, not
/// `ECONNRESET`.) CLOSE_WAIT is a TCP state, checked in `/proc/net/tcp`
/// where there is one; a Unix socket has no such state to check, only the
/// reactor's gauges.
fn c9_rst_after_fin_while_half_open(t: Transport) {
    let log = log();
    let mut r = reactor_with(|c| c.peer_eof_timeout = None);
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&l2)
            .on_connect(|c| c.write(b"greeting"))
            .on_eof(|_| Eof::HalfClose)
    });
    let port = addr.inet().map(|a| a.port());
    let c = Client::request(addr, b"bye");
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Eof) == 1);
    // Settle, then check the connection really is half-open.
    turns(&mut r, 3, Duration::ZERO);
    assert!(closed(&log).is_none());
    assert_eq!(r.stats().half_closed_in, 1);
    if let Some(port) = port {
        assert!(
            tcp_states(port).iter().any(|s| s == "08"),
            "server socket not in CLOSE_WAIT: {:?}",
            tcp_states(port)
        );
    }
    c.reset();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "eof", "error", "close"]);
    let errs = errors(&log);
    assert!(is_reset_kind(errs[0]), "error: {:?}", errs[0]);
    assert_eq!(closed(&log).unwrap().reason, Reason::Reset);
    let stats = r.stats();
    assert_eq!((stats.open, stats.half_closed_in, stats.resets), (0, 0, 1));
    if let Some(port) = port {
        let states = tcp_states(port);
        assert!(
            !states.iter().any(|s| s == "08"),
            "left in CLOSE_WAIT: {states:?}"
        );
    }
}
