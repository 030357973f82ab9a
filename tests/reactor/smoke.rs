//! The shortest checks that the reactor works at all: an echo closed by
//! the peer's FIN, and a half-close answered late. Each scenario they
//! touch is pinned in detail in its own module, on every transport; these
//! run on TCP only. One more check runs on every transport of the table:
//! that a run is on the transport it names (TLS or not, both ways).

use std::cell::RefCell;
use std::io::{Read, Write};
use std::rc::Rc;

use halfclose::{Eof, Reason};

use crate::util::*;

crate::transports!(the_transport_is_what_it_says);

/// A run is on the transport it names: the reactor's connections, accepted
/// and made, report TLS (`conn.tls()`, TLS 1.3 after a handshake) exactly
/// on the `tls` run, and so do the std peers, which exchange bytes with
/// them.
fn the_transport_is_what_it_says(t: Transport) {
    let seen: Rc<RefCell<Vec<bool>>> = Rc::default();
    let mut r = reactor_with(no_timeouts);
    let s2 = seen.clone();
    let addr = t.listen(&mut r, move || {
        let s = s2.clone();
        Recorder::new(&log())
            .on_connect(move |c| s.borrow_mut().push(tls_1_3(c)))
            .on_read(|c, d| c.write(d))
    });
    let mut c = Client::connect(&addr);
    assert_eq!(c.sock.is_tls(), t.is_tls());
    echo_round_trip(&mut r, &mut c, b"accepted");

    // The other way: the reactor connects to a std listener.
    let listener = Listener::bind(t);
    let s3 = seen.clone();
    r.connect(
        connect_to(listener.local_addr()),
        Recorder::new(&log()).on_connect(move |c| {
            s3.borrow_mut().push(tls_1_3(c));
            c.write(b"made");
        }),
    )
    .unwrap();
    let peer = listener.accept().unwrap();
    peer.set_nonblocking(true).unwrap();
    assert_eq!(peer.is_tls(), t.is_tls());
    let mut got = Vec::new();
    run_until(&mut r, |_| {
        let mut buf = [0u8; 16];
        if let Ok(n) = (&peer).read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        got.len() >= 4
    });
    assert_eq!(got, b"made");
    (&peer).write_all(b"!").ok();
    assert_eq!(*seen.borrow(), [t.is_tls(), t.is_tls()]);
}

/// Whether the connection speaks TLS 1.3 (`false`: no TLS).
fn tls_1_3(c: &halfclose::Conn<'_>) -> bool {
    #[cfg(feature = "tls")]
    if let Some(info) = c.tls() {
        assert_eq!(info.version, Some(rustls::ProtocolVersion::TLSv1_3));
        return true;
    }
    let _ = c;
    false
}

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
