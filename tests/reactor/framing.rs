//! E. Framing over real sockets: the `framing` layer's `Framed` adapter in a
//! reactor (close when done, oversized and unfinished frames, the `Eof`
//! terminator), and the `chat` example end to end. The framer itself is
//! unit-tested without sockets in `src/framing/framer.rs`.
//!
//! Every test here runs on TCP and on a Unix stream socket, from the one
//! definition each (the table below); framing does not know the
//! transport, and the outcomes are the same on both.

use std::cell::{Cell, RefCell};
use std::rc::Rc;

use crate::util::*;
use halfclose::framing::{FrameHandler, Framed, Terminator};
use halfclose::{Closed, Conn, Ctx, Eof, ProtocolError, Reason};

crate::transports!(
    e3_eof_terminator_frame_arrives_at_the_fin,
    e5_close_when_done_flushes_everything_before_the_fin,
    e6_frame_too_large_closes_with_its_reason_after_the_error_reply,
    e6_partial_frame_at_eof_is_reported_incomplete,
);

// Not on TLS: the `chat` example has no TLS listener (no certificate
// option).
crate::transports!(no_tls: e6_chat_example_broadcasts_and_refuses_long_lines);

/// What a frame handler saw, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Fev {
    Frame(Vec<u8>),
    TooLarge(usize),
    Incomplete(Vec<u8>),
    Eof,
    Close(Closed),
}

type Fl = Rc<RefCell<Vec<Fev>>>;
type OnFrame = Box<dyn FnMut(&mut Conn<'_>, &[u8], &mut Terminator)>;

/// A frame handler that records its callbacks and runs `on_frame`; the
/// hooks reply with fixed error lines.
struct Probe {
    log: Fl,
    on_frame: OnFrame,
}

fn probe(log: &Fl, on_frame: impl FnMut(&mut Conn<'_>, &[u8], &mut Terminator) + 'static) -> Probe {
    Probe {
        log: log.clone(),
        on_frame: Box::new(on_frame),
    }
}

impl FrameHandler for Probe {
    fn found_frame(&mut self, conn: &mut Conn<'_>, frame: &[u8], terminator: &mut Terminator) {
        self.log.borrow_mut().push(Fev::Frame(frame.to_vec()));
        (self.on_frame)(conn, frame, terminator);
    }
    fn frame_too_large(&mut self, conn: &mut Conn<'_>, limit: usize) {
        self.log.borrow_mut().push(Fev::TooLarge(limit));
        conn.write(b"ERROR: frame too large\n");
    }
    fn incomplete_frame(&mut self, conn: &mut Conn<'_>, partial: &[u8]) {
        self.log
            .borrow_mut()
            .push(Fev::Incomplete(partial.to_vec()));
        // The "ERROR:no end!" server: the client only half-closed, so it
        // can still be told its request was cut short.
        conn.write(b"ERROR: no end!\n");
    }
    fn handle_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        self.log.borrow_mut().push(Fev::Eof);
        Eof::Close
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.log.borrow_mut().push(Fev::Close(*closed));
    }
}

fn flog() -> Fl {
    Rc::new(RefCell::new(Vec::new()))
}

fn fclosed(log: &Fl) -> Option<Closed> {
    log.borrow().iter().find_map(|e| match e {
        Fev::Close(c) => Some(*c),
        _ => None,
    })
}

fn fframes(log: &Fl) -> Vec<Vec<u8>> {
    log.borrow()
        .iter()
        .filter_map(|e| match e {
            Fev::Frame(f) => Some(f.clone()),
            _ => None,
        })
        .collect()
}

/// E5: asynchat's "close when done": a reply far larger than the socket
/// buffers is written and `close()` called in the same callback, with more
/// input from the client already read. The client receives every byte of
/// the reply and then a clean EOF (no reset); nothing is dropped; frames
/// after the close are not delivered.
fn e5_close_when_done_flushes_everything_before_the_fin(t: Transport) {
    let payload = Rc::new(pattern(8 << 20, 5));
    let pending_at_close = Rc::new(Cell::new(0usize));
    let log = flog();
    let mut r = reactor();
    let (l2, p2, c2) = (log.clone(), payload.clone(), pending_at_close.clone());
    let addr = t.listen(&mut r, move || {
        let (p, c) = (p2.clone(), c2.clone());
        let h = probe(&l2, move |conn, frame, _| {
            if frame == b"get" {
                conn.write(&p);
                c.set(conn.pending());
                conn.close();
            }
        });
        Framed::new(h, Terminator::LF, 64)
    });
    let mut c = Client::connect(addr);
    c.send(b"get\nmore\n");
    run_until(&mut r, |_| c.done());
    assert!(
        pending_at_close.get() > 0,
        "the reply must still be queued at close() for this test to mean anything"
    );
    c.assert_whole_reply(&payload);
    drop(c);
    run_until(&mut r, |_| fclosed(&log).is_some());
    let closed = fclosed(&log).unwrap();
    assert_eq!(closed.reason, Reason::Local);
    assert_eq!(closed.dropped, 0);
    assert_eq!(closed.bytes_out, payload.len() as u64);
    assert_eq!(fframes(&log), [b"get".to_vec()], "no frame after close()");
}

/// E6: a client that never sends the terminator. At exactly `max_frame`
/// bytes nothing happens; one byte more and the handler's error line is
/// queued, the connection closes lossless with
/// `Reason::Protocol(ProtocolError::FrameTooLarge)`: the client reads the
/// error line, then EOF (not a reset). Another connection on the same
/// reactor goes on untouched. (asynchat has no limit and would buffer
/// forever.)
fn e6_frame_too_large_closes_with_its_reason_after_the_error_reply(t: Transport) {
    const MAX: usize = 1024;
    let (bad_log, good_log) = (flog(), flog());
    let mut r = reactor();
    let logs = Rc::new(RefCell::new(vec![good_log.clone(), bad_log.clone()]));
    let addr = t.listen(&mut r, move || {
        let log = logs.borrow_mut().remove(0);
        let h = probe(&log, |conn, frame, _| {
            conn.write(frame);
            conn.write(b"\n");
        });
        Framed::new(h, Terminator::LF, MAX)
    });
    let mut good = Client::connect(&addr);
    good.send(b"hi\n");
    run_until(&mut r, |_| good.pump().received == b"hi\n");
    let mut bad = Client::connect(addr);
    bad.send(&[b'x'; MAX]);
    run_until(&mut r, |r| r.stats().bytes_in == (3 + MAX) as u64);
    r.run_once(Some(std::time::Duration::ZERO)).unwrap();
    assert!(!bad.done(), "a frame of exactly max_frame bytes is allowed");
    assert!(bad.received.is_empty());
    assert!(fclosed(&bad_log).is_none());

    bad.send(b"x");
    run_until(&mut r, |_| bad.done());
    assert_eq!(bad.received, b"ERROR: frame too large\n");
    assert_eq!(bad.end, End::Eof);
    drop(bad);
    run_until(&mut r, |_| fclosed(&bad_log).is_some());
    let closed = fclosed(&bad_log).unwrap();
    assert_eq!(
        closed.reason,
        Reason::Protocol(ProtocolError::FrameTooLarge)
    );
    assert_eq!(closed.dropped, 0);
    assert_eq!(
        &bad_log.borrow()[..1],
        [Fev::TooLarge(MAX)],
        "no frame, then the hook, then the close"
    );

    good.send(b"again\n");
    run_until(&mut r, |_| good.pump().received == b"hi\nagain\n");
    assert!(
        fclosed(&good_log).is_none(),
        "the other connection is untouched"
    );
    assert_eq!(fframes(&good_log), [b"hi".to_vec(), b"again".to_vec()]);
}

/// E6: the peer's FIN in the middle of a frame is reported as incomplete:
/// the hook gets the partial bytes and queues an error reply, which the
/// half-closed client still receives before our FIN; the reason is
/// `Protocol(IncompleteFrame)` and `handle_eof` is not called.
fn e6_partial_frame_at_eof_is_reported_incomplete(t: Transport) {
    let log = flog();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        Framed::new(probe(&l2, |_, _, _| {}), Terminator::CRLF, 64)
    });
    let mut c = Client::request(addr, b"HELLO\r\nGET /\r");
    run_until(&mut r, |_| c.done());
    assert_eq!(c.received, b"ERROR: no end!\n");
    assert_eq!(c.end, End::Eof);
    run_until(&mut r, |_| fclosed(&log).is_some());
    let closed = fclosed(&log).unwrap();
    assert_eq!(
        closed.reason,
        Reason::Protocol(ProtocolError::IncompleteFrame)
    );
    assert_eq!(closed.dropped, 0);
    assert_eq!(
        &log.borrow()[..2],
        [
            Fev::Frame(b"HELLO".to_vec()),
            Fev::Incomplete(b"GET /\r".to_vec())
        ]
    );
    assert!(!log.borrow().contains(&Fev::Eof));
}

/// E3: with `Terminator::Eof` the whole upload is one frame, delivered at
/// the client's FIN; the reply written there is flushed before our FIN
/// (the default `Eof::Close` is lossless), and the reason is `PeerClosed`.
fn e3_eof_terminator_frame_arrives_at_the_fin(t: Transport) {
    let upload = pattern(300_000, 9);
    let log = flog();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || {
        let h = probe(&l2, |conn, frame, _| {
            conn.write(format!("{} bytes\n", frame.len()).as_bytes());
        });
        Framed::new(h, Terminator::Eof, 1 << 20)
    });
    let mut c = Client::connect(addr);
    c.send(&upload);
    run_until(&mut r, |_| {
        c.pump();
        c.unsent() == 0
    });
    run_until(&mut r, |r| r.stats().bytes_in == upload.len() as u64);
    assert!(log.borrow().is_empty(), "no frame before EOF");
    c.shutdown_write();
    run_until(&mut r, |_| c.done());
    assert_eq!(c.received, b"300000 bytes\n");
    assert_eq!(c.end, End::Eof);
    run_until(&mut r, |_| fclosed(&log).is_some());
    assert_eq!(fframes(&log), [upload]);
    assert_eq!(fclosed(&log).unwrap().reason, Reason::PeerClosed);
}

/// E6 and E5 in the `chat` example: nicks, a broadcast reaching the other
/// member but not the sender, a line over `--max-line` answered with
/// `ERROR: line too long` then EOF (the others told), and a graceful drain
/// on SIGTERM: a goodbye line, EOF, and a clean exit.
fn e6_chat_example_broadcasts_and_refuses_long_lines(t: Transport) {
    let listen = t.fresh().to_string();
    let mut server = Server::start("chat", &["--listen", &listen, "--max-line", "64"]);
    let welcome = "* welcome; who are you? (send a nick, or /nick NAME)";
    let mut alice = LineClient::connect(&server.at);
    alice.expect(welcome);
    alice.send("/nick alice\n");
    alice.expect("* you are alice; 1 here");
    let mut bob = LineClient::connect(&server.at);
    bob.expect(welcome);
    bob.send("bob\r\n");
    bob.expect("* you are bob; 2 here");
    alice.expect("* bob joined");

    bob.send("hello everyone\r\n");
    alice.expect("[bob] hello everyone");
    alice.send("/who\n");
    alice.expect("* here: alice bob");
    alice.send("hi bob\n");
    // The next line proves bob got no echo of his own message.
    bob.expect("[alice] hi bob");

    bob.send("x".repeat(100));
    bob.expect("ERROR: line too long (max 64 bytes)");
    bob.expect_eof();
    alice.expect("* bob left (line too long)");
    drop(bob);

    assert!(server.signal("-TERM"), "kill -TERM failed");
    alice.expect("* server shutting down, goodbye");
    alice.expect_eof();
    drop(alice);
    let status = server.wait_exit();
    assert!(status.success(), "chat exited with {status}");
}
