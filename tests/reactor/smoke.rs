//! The shortest checks that the reactor works at all: an echo closed by
//! the peer's FIN, and a half-close answered late. Each scenario they
//! touch is pinned in detail in its own module, on both transports; these
//! run on TCP only.

use halfclose::{Eof, Reason};

use crate::util::*;

#[test]
fn echo_then_peer_fin_closes_losslessly() {
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = listen(&mut r, move || {
        Recorder::new(&l2).on_read(|c, d| {
            c.write(d);
        })
    });
    let mut c = Client::request(addr, b"hello");
    run_until(&mut r, |_| c.done());
    assert_eq!(c.received, b"hello");
    assert_eq!(c.end, End::Eof);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape(&log), ["connect", "read", "eof", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::PeerClosed);
    assert_eq!((cl.bytes_in, cl.bytes_out, cl.dropped), (5, 5, 0));
}

#[test]
fn half_close_keeps_writing() {
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = listen(&mut r, move || {
        Recorder::new(&l2).on_eof(|c| {
            c.write(b"late reply");
            c.shutdown_write();
            Eof::HalfClose
        })
    });
    let mut c = Client::request(addr, b"req");
    run_until(&mut r, |_| c.done());
    assert_eq!(c.received, b"late reply");
    assert_eq!(c.end, End::Eof);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(closed(&log).unwrap().reason, Reason::PeerClosed);
}
