//! How a connection we close ends: gracefully (scenario group B, close and
//! flushing), where every path delivers all queued output before our FIN
//! and never resets the peer; or abortively with our own `abort()` (C1 to
//! C4), which sends RST and counts what it drops. Resets that come from
//! the peer are in [`super::reset`].
//!
//! Every test here runs on TCP and on a Unix stream socket, from the one
//! definition each (the table below). A Unix socket has no RST: there
//! `abort()` is a plain close, so the peer reads end of file (or
//! `ECONNRESET` if its own bytes were left unread, as in C3), and nothing
//! already handed to the kernel is lost; the tests state that through
//! `Transport::peer_end_after_abort`. `SO_SNDBUF` bounds what a Unix
//! socket holds in flight as it bounds TCP's send queue, so the small
//! send buffers below work on both.

use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind};
use std::rc::Rc;
use std::time::Duration;

use crate::util::*;
use halfclose::{Closed, Conn, ConnId, Ctx, Eof, Error, Handler, Reason};

crate::transports!(
    b1_write_then_close_delivers_everything,
    b2_reason_is_local_when_our_fin_came_first,
    b5_close_with_unread_input_is_lossless,
    b7_default_eof_flushes_before_fin,
    b8_close_twice_and_abort_after_close,
    c1_abort_sends_rst,
    c2_abort_drops_and_counts_the_queue,
    c3_abort_inside_handle_read,
    c4_abort_with_full_send_buffer_is_immediate,
);

crate::transports!(
    b9_close_promptly_closes_before_the_peers_fin,
    b9_close_promptly_lingers_when_input_comes_anyway,
);

crate::transports!(
    b4_interleaved_writes_arrive_in_order,
    b2_large_write_then_shutdown_to_echo,
);

/// A small kernel send buffer for a server-side connection, so that a peer
/// that does not read makes our own queue fill deterministically.
fn small_send_buffer(conn: &Conn<'_>) {
    socket2::SockRef::from(conn)
        .set_send_buffer_size(64 * 1024)
        .expect("SO_SNDBUF");
}

/// The log's shape without `write` events: a queue that passed the
/// high-water mark may report draining even after `close()`, which these
/// tests do not pin.
fn shape_no_write(log: &Log) -> Vec<&'static str> {
    shape(log).into_iter().filter(|s| *s != "write").collect()
}

/// B1: `write` then `close` in the same callback. The close is lossless:
/// the peer receives every byte of the reply, then a clean EOF; our side
/// ends with `Reason::Local` and nothing dropped.
fn b1_write_then_close_delivers_everything(t: Transport) {
    let reply = Rc::new(pattern(2 * MIB, 1));
    let queued_at_close = Rc::new(Cell::new(0usize));
    let log = log();
    let mut r = reactor();
    let (l2, reply2, q2) = (log.clone(), reply.clone(), queued_at_close.clone());
    let addr = t.listen(&mut r, move || {
        let (reply, q) = (reply2.clone(), q2.clone());
        Recorder::new(&l2).on_read(move |c, _| {
            if c.may_send() {
                small_send_buffer(c);
                c.write(&reply);
                c.close();
                q.set(c.pending());
            }
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"request");
    run_until(&mut r, |_| c.done());
    assert!(
        queued_at_close.get() > 0,
        "the reply was not queued at close time"
    );
    c.assert_whole_reply(&reply);
    // The lingering close ends at our peer's FIN.
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape_no_write(&log), ["connect", "read", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local);
    assert_eq!((cl.bytes_out, cl.dropped), (reply.len() as u64, 0));
    assert_eq!(r.stats().open, 0);
}

/// Shared state of the B2 writer.
#[derive(Default)]
struct Writer {
    queued_at_shutdown: usize,
    received: usize,
    mismatch: Option<usize>,
    eof_at: Option<usize>,
    errors: Vec<io::ErrorKind>,
    closed: Option<Closed>,
}

/// Writes the whole buffer and shuts down at once, then checks the echo.
struct BulkWriter {
    data: Rc<Vec<u8>>,
    st: Rc<RefCell<Writer>>,
}

impl Handler for BulkWriter {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        conn.write(&self.data);
        conn.shutdown_write();
        self.st.borrow_mut().queued_at_shutdown = conn.pending();
    }
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        let mut st = self.st.borrow_mut();
        let at = st.received;
        if st.mismatch.is_none() && self.data.get(at..at + data.len()) != Some(data) {
            st.mismatch = Some(at);
        }
        st.received += data.len();
    }
    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        let mut st = self.st.borrow_mut();
        st.eof_at = Some(st.received);
        Eof::Close
    }
    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        self.st.borrow_mut().errors.push(err.kind());
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.st.borrow_mut().closed = Some(*closed);
    }
}

/// Shared state of the B2 echo peer.
#[derive(Default)]
struct Echoed {
    received: usize,
    eof_at: Option<usize>,
    closed: Option<Closed>,
}

/// Echoes with backpressure: stops reading while its queue is over the
/// high-water mark, resumes when it drains.
struct Echo(Rc<RefCell<Echoed>>);

impl Handler for Echo {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.0.borrow_mut().received += data.len();
        conn.write(data);
        if conn.is_write_blocked() {
            conn.pause_reading();
        }
    }
    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        let mut st = self.0.borrow_mut();
        st.eof_at = Some(st.received);
        Eof::Close
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.0.borrow_mut().closed = Some(*closed);
    }
}

/// B2: a 64 MiB write followed at once by `shutdown_write`, to an echo peer
/// on the same reactor. The FIN waits for the queue: the echo sees all
/// 64 MiB before its EOF, and every byte comes back in order.
fn b2_large_write_then_shutdown_to_echo(t: Transport) {
    let len = 64 * MIB;
    let data = Rc::new(pattern(len, 2));
    let echoed = Rc::new(RefCell::new(Echoed::default()));
    let writer = Rc::new(RefCell::new(Writer::default()));
    let mut r = reactor();
    let e2 = echoed.clone();
    let addr = t.listen(&mut r, move || Echo(e2.clone()));
    r.connect(
        connect_to(&addr),
        BulkWriter {
            data: data.clone(),
            st: writer.clone(),
        },
    )
    .unwrap();
    run_until(&mut r, |_| {
        writer.borrow().closed.is_some() && echoed.borrow().closed.is_some()
    });

    let w = writer.borrow();
    assert!(
        w.queued_at_shutdown > 0,
        "nothing was queued when shutdown_write was called"
    );
    let e = echoed.borrow();
    assert_eq!(
        e.eof_at,
        Some(len),
        "the echo's EOF did not come after all {len} bytes"
    );
    assert_eq!(w.mismatch, None, "echo differs from what was sent");
    assert_eq!(w.received, len);
    assert_eq!(w.eof_at, Some(len));
    assert!(w.errors.is_empty(), "errors: {:?}", w.errors);
    // Our FIN came first.
    let wc = w.closed.unwrap();
    assert_eq!(wc.reason, Reason::Local);
    assert_eq!(
        (wc.bytes_out, wc.bytes_in, wc.dropped),
        (len as u64, len as u64, 0)
    );
    let ec = e.closed.unwrap();
    assert_eq!(ec.reason, Reason::PeerClosed);
    assert_eq!(
        (ec.bytes_in, ec.bytes_out, ec.dropped),
        (len as u64, len as u64, 0)
    );
    assert_eq!(r.stats().open, 0);
}

/// B2, the reason: a connection whose `shutdown_write` came before the
/// peer's FIN ends with `Reason::Local`, whatever `handle_readable_eof`
/// returns and whether or not our queue had drained when the peer's FIN
/// arrived (`Reason::Local`: "close or shutdown_write before the peer's
/// FIN").
fn b2_reason_is_local_when_our_fin_came_first(t: Transport) {
    for (eof, reply_len) in [
        (Eof::Close, 5),
        (Eof::HalfClose, 5),
        (Eof::Close, 4 * MIB),
        (Eof::HalfClose, 4 * MIB),
    ] {
        let reply = Rc::new(pattern(reply_len, 8));
        let log = log();
        let mut r = reactor();
        let (l2, reply2) = (log.clone(), reply.clone());
        let addr = t.listen(&mut r, move || {
            let reply = reply2.clone();
            Recorder::new(&l2)
                .on_read(move |c, _| {
                    if c.may_send() {
                        small_send_buffer(c);
                        c.write(&reply);
                        c.shutdown_write();
                    }
                })
                .on_eof(move |_| eof)
        });
        let mut c = Client::connect(addr);
        c.send(b"request");
        // Our shutdown_write is made; the client answers with its FIN
        // before reading anything (with a large reply, our queue is still
        // full when that FIN arrives).
        run_until(&mut r, |_| count(&log, |e| matches!(e, Ev::Read(_))) == 1);
        c.shutdown_write();
        run_until(&mut r, |_| c.done() && closed(&log).is_some());
        assert_eq!((c.received.len(), &c.end), (reply.len(), &End::Eof));
        let cl = closed(&log).unwrap();
        assert_eq!(
            (cl.reason, cl.dropped),
            (Reason::Local, 0),
            "{eof:?} with a {reply_len}-byte reply"
        );
    }
}

/// B4: many writes of mixed sizes, made while the peer reads, while it does
/// not (so that writes are partial and the rest queues behind earlier
/// output), and again after the queue drained (write-through resumes):
/// the peer receives them in order, byte for byte.
fn b4_interleaved_writes_arrive_in_order(t: Transport) {
    const SIZES: [usize; 12] = [
        1, 3, 17, 512, 4096, 65_537, 300_000, 2, 1_000_000, 9, 16_385, 131_072,
    ];
    let total: usize = SIZES.iter().sum::<usize>() * 6;
    let stream = pattern(total, 4);
    let server: Rc<Cell<Option<ConnId>>> = Rc::default();
    let log = log();
    let mut r = reactor();
    let (l2, s2) = (log.clone(), server.clone());
    let addr = t.listen(&mut r, move || {
        let s = s2.clone();
        Recorder::new(&l2).on_connect(move |c| {
            small_send_buffer(c);
            s.set(Some(c.id()));
        })
    });
    let mut c = Client::connect(addr);
    run_until(&mut r, |_| server.get().is_some());
    let id = server.get().unwrap();

    let mut offset = 0;
    let mut partial_writes = 0; // a write that found nothing queued, yet queued
    let mut queued_writes = 0; // a write appended behind queued output
    for round in 0..6 {
        for &n in &SIZES {
            let (before, after) = {
                let mut conn = r.conn(id).expect("server connection");
                let before = conn.pending();
                conn.write(&stream[offset..offset + n]);
                (before, conn.pending())
            };
            if before == 0 && after > 0 {
                partial_writes += 1;
            }
            if before > 0 {
                queued_writes += 1;
            }
            offset += n;
            // Let the loop flush between writes; in even rounds the client
            // does not read, so the queue grows.
            r.run_once(Some(std::time::Duration::ZERO)).unwrap();
            if round % 2 == 1 {
                c.pump();
            }
        }
        if round % 2 == 1 {
            run_until(&mut r, |r| {
                c.pump();
                r.conn(id).unwrap().pending() == 0
            });
        }
    }
    assert_eq!(offset, total);
    assert!(partial_writes >= 2, "only {partial_writes} partial writes");
    assert!(
        queued_writes >= 10,
        "only {queued_writes} writes queued behind others"
    );
    r.conn(id).unwrap().close();
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    assert_eq!(c.received.len(), total);
    if let Some(at) = c.received.iter().zip(&stream).position(|(a, b)| a != b) {
        panic!("stream differs at byte {at}");
    }
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local);
    assert_eq!((cl.bytes_out, cl.dropped), (total as u64, 0));
}

/// B5 (V1): `close()` while the peer is still sending data we never read.
/// A plain `close(2)` with unread input would send RST and the peer would
/// lose the tail of our reply; the lingering close flushes the 4 MiB reply,
/// sends FIN, and discards input until the peer's FIN. The peer gets the
/// whole reply and a clean EOF, and input it sends after our FIN (late
/// input: after a plain close the kernel would answer it with RST on TCP,
/// and fail the peer's write with `EPIPE` on a Unix socket) is still read
/// and discarded.
fn b5_close_with_unread_input_is_lossless(t: Transport) {
    let reply = Rc::new(pattern(4 * MIB, 5));
    let upload = pattern(4 * MIB, 6);
    let log = log();
    let mut r = reactor();
    let (l2, reply2) = (log.clone(), reply.clone());
    let addr = t.listen(&mut r, move || {
        let reply = reply2.clone();
        Recorder::new(&l2).on_read(move |c, _| {
            if c.may_send() {
                small_send_buffer(c);
                c.write(&reply);
                c.close();
            }
        })
    });
    let mut c = Client::connect(addr);
    // Fill the kernel buffers before the server reads its first chunk: at
    // its close() most of the upload is unread or still to come.
    c.send(&upload);
    assert!(c.unsent() > 0, "the upload fit in the kernel buffers");
    // Keep sending, without reading, until the whole upload is out.
    run_until(&mut r, |_| {
        c.send(&[]);
        c.unsent() == 0
    });
    assert_eq!(c.end, End::Open, "sending failed");
    run_until(&mut r, |_| c.done());
    c.assert_whole_reply(&reply);
    // Our FIN is out and the peer has not sent its own: the close lingers.
    assert!(closed(&log).is_none(), "closed before the peer's FIN");
    assert_eq!(r.stats().lingering, 1);
    let late = b"late input after the server's FIN";
    for _ in 0..2 {
        c.send(late);
        turns(&mut r, 3, std::time::Duration::from_millis(5));
    }
    assert_eq!(c.unsent(), 0);
    assert_eq!(c.end, End::Eof, "late input was answered with a reset");
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(shape_no_write(&log), ["connect", "read", "close"]);
    assert!(read_bytes(&log).len() < upload.len());
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local);
    assert_eq!(cl.dropped, 0);
    assert_eq!(cl.bytes_out, reply.len() as u64);
    // The discarded input is counted: we read to the peer's FIN.
    let read = (upload.len() + 2 * late.len()) as u64;
    assert_eq!(cl.bytes_in, read);
}

/// B9: `close_promptly` after the request, with a reply larger than the
/// socket buffer (most of it queued at the close): the peer gets the whole
/// reply and a clean EOF, and the connection is closed (reason `Local`,
/// nothing dropped) before the peer sends its FIN, with no lingering read.
/// Input the peer sends after that is refused: our kernel answers it with
/// RST on TCP, and on a Unix socket the peer's write fails with `EPIPE`.
/// Over TLS, `close_notify` goes first and the close lingers as `close`
/// does, until the peer's FIN.
fn b9_close_promptly_closes_before_the_peers_fin(t: Transport) {
    let reply = Rc::new(pattern(2 * MIB, 9));
    let log = log();
    let mut r = reactor_with(no_timeouts);
    let (l2, reply2) = (log.clone(), reply.clone());
    let addr = t.listen(&mut r, move || {
        let reply = reply2.clone();
        Recorder::new(&l2).on_read(move |c, _| {
            small_send_buffer(c);
            c.write_last(&reply).expect("write_last");
            c.close_promptly();
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"the whole request");
    run_until(&mut r, |_| c.done());
    c.assert_whole_reply(&reply);
    if t.is_tls() {
        turns(&mut r, 3, Duration::from_millis(5));
        assert!(closed(&log).is_none(), "TLS closed before the peer's FIN");
        c.shutdown_write();
    }
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Local);
    assert_eq!((cl.dropped, cl.bytes_out), (0, reply.len() as u64));
    if t.is_tls() {
        return;
    }
    // Nothing is left on our side to read the peer's input.
    run_until(&mut r, |_| {
        c.send(b"late");
        c.end != End::Eof
    });
    assert!(
        matches!(
            c.end,
            End::Error(ErrorKind::BrokenPipe | ErrorKind::ConnectionReset)
        ),
        "late input after a prompt close: {:?}",
        c.end
    );
}

/// B9: the peer sends more although it was expected not to, and the bytes
/// are unread when the handler closes promptly: the first read takes only
/// 8 bytes of them (an 8-byte read buffer), so the reactor knows more is
/// waiting. Closing the descriptor then would reset, so the close lingers
/// as `close` does: the peer gets the whole reply and a clean EOF, not
/// `ECONNRESET`, and the connection ends at the peer's FIN, its input
/// counted.
fn b9_close_promptly_lingers_when_input_comes_anyway(t: Transport) {
    let reply = pattern(64 * KIB, 10);
    let log = log();
    let mut r = reactor_with(|c| {
        no_timeouts(c);
        c.read_buffer_size = 8;
    });
    let (l2, reply2) = (log.clone(), reply.clone());
    let addr = t.listen(&mut r, move || {
        let reply = reply2.clone();
        Recorder::new(&l2).on_read(move |c, _| {
            if c.may_send() {
                c.write_last(&reply).expect("write_last");
                c.close_promptly();
            }
        })
    });
    let mut c = Client::connect(addr);
    let sent = b"request, and more than was promised";
    c.send(sent);
    run_until(&mut r, |_| c.done());
    c.assert_whole_reply(&reply);
    turns(&mut r, 3, Duration::from_millis(5));
    assert!(closed(&log).is_none(), "closed before the peer's FIN");
    assert_eq!(r.stats().lingering, 1);
    c.shutdown_write();
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!((cl.reason, cl.dropped), (Reason::Local, 0));
    assert_eq!(cl.bytes_in, sent.len() as u64);
    assert_eq!(count(&log, |e| matches!(e, Ev::Read(_))), 1);
}

/// B10: `write_last` then `close` sends the reply's last bytes and our FIN
/// in one TCP segment (`MSG_MORE` until the FIN): the peer's socket counts
/// one segment less than after `write` then `close` (`ss -ti`'s
/// `segs_in`), and reads the same bytes and a clean EOF. Without a FIN
/// after it, the held segment is sent when the callback returns (not
/// after the kernel's 200 ms cork ceiling).
#[test]
fn b10_write_last_sends_the_fin_in_the_reply_segment() {
    let reply = pattern(1000, 11);
    let mut r = reactor_with(no_timeouts);
    let reply2 = reply.clone();
    let addr = Transport::Tcp.listen(&mut r, move || {
        let reply = reply2.clone();
        Recorder::new(&log()).on_read(move |c, data| match data {
            b"write" => {
                c.write(&reply);
                c.close();
            }
            b"write_last" => {
                c.write_last(&reply).expect("write_last");
                c.close();
            }
            // No FIN follows: the reply must go out all the same.
            _ => c.write_last(&reply).expect("write_last"),
        })
    });
    let mut segments = Vec::new();
    for how in ["write", "write_last", "write_last, no close"] {
        let mut c = Client::connect(&addr);
        c.send(how.as_bytes());
        if how.ends_with("no close") {
            // Held by the kernel, it would wait for the cork's 200 ms
            // ceiling: 40 iterations of up to 5 ms.
            let n = run_until(&mut r, |_| c.pump().received.len() == reply.len());
            assert!(n < 20, "the reply waited {n} iterations");
            assert!(c.received == reply);
            continue;
        }
        run_until(&mut r, |_| c.done());
        c.assert_whole_reply(&reply);
        segments.push(segs_in(&c));
        c.shutdown_write();
        run_until(&mut r, |r| r.stats().open == 0);
    }
    assert_eq!(segments[1] + 1, segments[0], "segments in: {segments:?}");
}

/// The segments a client's TCP socket received, from `ss -ti`.
#[track_caller]
fn segs_in(c: &Client) -> u64 {
    let Stream::Tcp(sock) = &c.sock else {
        panic!("a TCP client")
    };
    let local = sock.local_addr().expect("local address");
    let out = std::process::Command::new("ss")
        .args(["-tinH", "src", &local.to_string()])
        .output()
        .expect("ss (iproute2)");
    let text = String::from_utf8_lossy(&out.stdout);
    let n = text
        .split_whitespace()
        .find_map(|w| w.strip_prefix("segs_in:"))
        .unwrap_or_else(|| panic!("no segs_in for {local} in {text:?}"));
    n.parse().expect("a count")
}

/// Replies once with a large body; leaves `handle_readable_eof` to the
/// trait's default.
struct Replier {
    reply: Rc<Vec<u8>>,
    id: Rc<Cell<Option<ConnId>>>,
    closed: Rc<Cell<Option<Closed>>>,
}

impl Handler for Replier {
    fn handle_read(&mut self, conn: &mut Conn<'_>, _data: &[u8]) {
        if self.id.get().is_none() {
            self.id.set(Some(conn.id()));
            small_send_buffer(conn);
            conn.write(&self.reply);
        }
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.closed.set(Some(*closed));
    }
}

/// B7: the default policy (`Eof::Close`, the trait's default) when the peer
/// half-closes after we queued a large reply: the queue is flushed and only
/// then our FIN goes out; the peer gets all 8 MiB, then EOF. Node.js with
/// `allowHalfOpen: false` ends the socket at once (after pending writes);
/// here the same holds without the handler doing anything.
fn b7_default_eof_flushes_before_fin(t: Transport) {
    let reply = Rc::new(pattern(8 * MIB, 7));
    let id: Rc<Cell<Option<ConnId>>> = Rc::default();
    let closed_cell: Rc<Cell<Option<Closed>>> = Rc::default();
    let mut r = reactor();
    let (reply2, id2, c2) = (reply.clone(), id.clone(), closed_cell.clone());
    let addr = t.listen(&mut r, move || Replier {
        reply: reply2.clone(),
        id: id2.clone(),
        closed: c2.clone(),
    });
    let mut c = Client::connect(addr);
    c.send(b"GET");
    run_until(&mut r, |r| {
        id.get()
            .and_then(|id| r.conn(id))
            .is_some_and(|c| c.pending() > 0)
    });
    let sid = id.get().unwrap();
    c.shutdown_write();
    run_until(&mut r, |r| r.conn(sid).map_or(true, |c| c.is_read_closed()));
    let pending = r
        .conn(sid)
        .expect("closed before the reply was sent")
        .pending();
    assert!(
        pending > 0,
        "the reply was not queued when the peer's FIN was read"
    );
    run_until(&mut r, |_| c.done());
    c.assert_whole_reply(&reply);
    run_until(&mut r, |_| closed_cell.get().is_some());
    let cl = closed_cell.get().unwrap();
    assert_eq!(cl.reason, Reason::PeerClosed);
    assert_eq!((cl.bytes_out, cl.dropped), (reply.len() as u64, 0));
}

/// B8: `close()` twice, and `abort()` after `close()`: one `handle_close`,
/// never `handle_error`. A second close is a no-op (asyncio, Twisted); an
/// abort overrides a close still in progress and ends it with
/// `Reason::Aborted`.
fn b8_close_twice_and_abort_after_close(t: Transport) {
    // Close twice in one callback, again from a timer while lingering.
    let log_a = log();
    let mut r = reactor();
    let la = log_a.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&la)
            .on_read(|c, _| {
                c.write(b"bye");
                c.close();
                c.close();
                c.set_timer(std::time::Duration::from_millis(1));
            })
            .on_timer(|c, _| c.close())
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| {
        c.done() && count(&log_a, |e| *e == Ev::Timer) == 1
    });
    assert_eq!((c.received.as_slice(), &c.end), (&b"bye"[..], &End::Eof));
    drop(c);
    run_until(&mut r, |_| closed(&log_a).is_some());
    assert_eq!(shape(&log_a), ["connect", "read", "timer", "close"]);
    let cl = closed(&log_a).unwrap();
    assert_eq!((cl.reason, cl.dropped), (Reason::Local, 0));

    // Close then abort in one callback: the abort wins.
    let log_b = log();
    let mut r = reactor();
    let lb = log_b.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&lb).on_read(|c, _| {
            c.close();
            c.abort();
            c.close();
            c.abort();
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| c.done() && closed(&log_b).is_some());
    assert_eq!(c.end, t.peer_end_after_abort(false));
    assert_eq!(shape(&log_b), ["connect", "read", "close"]);
    assert_eq!(closed(&log_b).unwrap().reason, Reason::Aborted);

    // Close, then abort from a timer while lingering (our FIN is out, the
    // peer has not answered): one close.
    let log_c = log();
    let mut r = reactor();
    let lc = log_c.clone();
    let addr = t.listen(&mut r, move || {
        Recorder::new(&lc)
            .on_read(|c, _| {
                c.close();
                c.set_timer(std::time::Duration::from_millis(1));
            })
            .on_timer(|c, _| {
                c.abort();
                c.close();
            })
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| closed(&log_c).is_some());
    assert_eq!(shape(&log_c), ["connect", "read", "timer", "close"]);
    assert_eq!(closed(&log_c).unwrap().reason, Reason::Aborted);
    // Our FIN came before the RST: the client reads EOF, or the reset (on
    // TCP; a Unix socket has no reset).
    run_until(&mut r, |_| c.done());
    assert_ne!(c.end, End::Open);
    turns(&mut r, 5, std::time::Duration::ZERO);
    assert_eq!(count(&log_c, |e| matches!(e, Ev::Close(_))), 1);
    assert_eq!(r.stats().open, 0);
}

// ---------------------------------------------------------------------------
// C1 to C4: our own abort
// ---------------------------------------------------------------------------

/// C1: `abort()` sends RST: the peer's read fails with `ECONNRESET`, and
/// `Closed` says `Aborted` with nothing dropped (nothing was queued). No
/// `handle_error`: the reset is ours. On a Unix socket, which has no RST,
/// the peer (whose byte we had read) reads end of file instead.
fn c1_abort_sends_rst(t: Transport) {
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = t.listen(&mut r, move || Recorder::new(&l2).on_read(|c, _| c.abort()));
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| c.done() && closed(&log).is_some());
    assert_eq!(c.end, t.peer_end_after_abort(false));
    assert!(c.received.is_empty());
    assert_eq!(shape(&log), ["connect", "read", "close"]);
    let cl = closed(&log).unwrap();
    assert_eq!(
        (cl.reason, cl.bytes_in, cl.bytes_out, cl.dropped),
        (Reason::Aborted, 1, 0, 0)
    );
    let stats = r.stats();
    assert_eq!((stats.aborts, stats.resets, stats.open), (1, 0, 0));
}

/// C2: `abort()` with queued output: the queue is dropped and counted
/// exactly, and writes after the abort are refused with `Error::Closed`.
/// The peer reads part of the output, then `ECONNRESET` (TCP: the RST
/// also discards what our kernel had not sent yet) or end of file (a Unix
/// socket: every byte handed to the kernel arrives).
fn c2_abort_drops_and_counts_the_queue(t: Transport) {
    let len = 8 * MIB;
    let pending_at_abort = Rc::new(Cell::new(0usize));
    let refused = Rc::new(Cell::new(false));
    let log = log();
    let mut r = reactor();
    let (l2, p2, rf2) = (log.clone(), pending_at_abort.clone(), refused.clone());
    let addr = t.listen(&mut r, move || {
        let (p, rf) = (p2.clone(), rf2.clone());
        Recorder::new(&l2).on_read(move |c, _| {
            socket2::SockRef::from(&*c)
                .set_send_buffer_size(64 * 1024)
                .unwrap();
            c.write(&vec![0x5a; len]);
            p.set(c.pending());
            c.abort();
            rf.set(matches!(c.try_write(b"more"), Err(Error::Closed)));
            assert!(!c.may_send());
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| closed(&log).is_some());
    assert!(
        refused.get(),
        "a write after abort() was not refused with Error::Closed"
    );
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Aborted);
    assert!(pending_at_abort.get() > 0, "nothing was queued");
    assert_eq!(cl.dropped, pending_at_abort.get() as u64);
    assert_eq!(cl.bytes_out + cl.dropped, len as u64);
    assert_eq!(shape(&log), ["connect", "read", "close"]);
    assert!(r.conn(cl.id).is_none());
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, t.peer_end_after_abort(false));
    assert!(c.received.len() < len);
    assert!(c.received.len() as u64 <= cl.bytes_out);
    if !t.has_reset() {
        assert_eq!(
            c.received.len() as u64,
            cl.bytes_out,
            "without a reset, every byte handed to the kernel arrives"
        );
    }
}

/// C3: `abort()` inside `handle_read` takes effect after the callback
/// returns: the callback finishes (more writes are refused, nothing is
/// closed yet), then `handle_close` runs exactly once, with no read or other
/// callback in between, although more input was waiting. That unread
/// input makes the peer's read fail with `ECONNRESET` on a Unix socket
/// too.
fn c3_abort_inside_handle_read(t: Transport) {
    let reads = Rc::new(Cell::new(0));
    let closed_inside = Rc::new(Cell::new(false));
    let log = log();
    // A tiny read buffer: the 64 bytes sent take four reads, so a read loop
    // that went on after the abort would show.
    let mut r = reactor_with(|c| c.read_buffer_size = 16);
    let (l2, n2, ci2) = (log.clone(), reads.clone(), closed_inside.clone());
    let addr = t.listen(&mut r, move || {
        let (l3, n, ci) = (l2.clone(), n2.clone(), ci2.clone());
        Recorder::new(&l2).on_read(move |c, _| {
            n.set(n.get() + 1);
            c.abort();
            ci.set(closed(&l3).is_some());
        })
    });
    let mut c = Client::connect(addr);
    c.send(&pattern(64, 3));
    run_until(&mut r, |_| closed(&log).is_some());
    turns(&mut r, 5, Duration::ZERO);
    assert!(!closed_inside.get(), "handle_close ran inside handle_read");
    assert_eq!(reads.get(), 1);
    assert_eq!(shape(&log), ["connect", "read", "close"]);
    assert_eq!(read_bytes(&log), pattern(16, 3));
    assert_eq!(closed(&log).unwrap().reason, Reason::Aborted);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, t.peer_end_after_abort(true));
    assert_eq!(c.end, End::Error(ErrorKind::ConnectionReset));
}

/// C4: `abort()` while the peer does not read and 32 MiB are queued behind
/// a full send buffer: the connection is gone within the next loop
/// iteration, not after a flush that would never end; the queue is counted
/// as dropped. The peer then reads `ECONNRESET` (TCP) or, after what
/// reached it, end of file (a Unix socket).
fn c4_abort_with_full_send_buffer_is_immediate(t: Transport) {
    let len = 32 * MIB;
    let id: Rc<Cell<Option<ConnId>>> = Rc::default();
    let log = log();
    let mut r = reactor();
    let (l2, id2) = (log.clone(), id.clone());
    let addr = t.listen(&mut r, move || {
        let id = id2.clone();
        Recorder::new(&l2).on_read(move |c, _| {
            id.set(Some(c.id()));
            c.write(&vec![0xa5; len]);
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| id.get().is_some());
    let sid = id.get().unwrap();
    // Let the kernel buffers fill: a few iterations with no progress.
    let mut last = usize::MAX;
    let mut stable = 0;
    run_until(&mut r, |r| {
        let p = r.conn(sid).unwrap().pending();
        stable = if p == last { stable + 1 } else { 0 };
        last = p;
        stable >= 3
    });
    assert!(last > 0, "nothing queued");
    r.conn(sid).unwrap().abort();
    let iters = run_until(&mut r, |_| closed(&log).is_some());
    assert!(iters <= 2, "abort took {iters} iterations");
    let cl = closed(&log).unwrap();
    assert_eq!(cl.reason, Reason::Aborted);
    assert_eq!(cl.dropped, last as u64);
    assert_eq!(cl.bytes_out + cl.dropped, len as u64);
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, t.peer_end_after_abort(false));
}

// ---------------------------------------------------------------------------
// TLS only: what the TLS transport does on the paths above
// ---------------------------------------------------------------------------

/// After our `close()`, input is read and discarded until the peer's end;
/// on TLS it is decrypted, so that `Closed::bytes_in` counts plaintext as
/// before the close (not the 22-byte record overhead per record, nor the
/// peer's 24-byte close_notify). The peer sends 1 byte, then 4 late bytes
/// after our FIN: `bytes_in` is 5.
#[cfg(feature = "tls")]
#[test]
fn b5_tls_bytes_in_counts_plaintext_discarded_after_close() {
    let log = log();
    let mut r = reactor_with(no_timeouts);
    let l2 = log.clone();
    let addr = Transport::Tls.listen(&mut r, move || Recorder::new(&l2).on_read(|c, _| c.close()));
    let mut c = Client::connect(addr);
    c.send(b"x");
    run_until(&mut r, |_| c.done());
    assert_eq!(c.end, End::Eof);
    c.send(b"late");
    c.shutdown_write();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(closed(&log).unwrap().bytes_in, 5);
}

/// On TLS, a write that rustls takes whole but the socket only in part
/// leaves the connection's own queue empty while the stream holds
/// ciphertext: the flush must send the stream's own output (once, a flush
/// that found no queue looped in `Core::advance`, and `run_once` never
/// returned). Here: a 32 KiB write in `handle_connect` through a 4 KiB
/// send buffer to a peer whose receive buffer is small; the reactor runs
/// on a thread of its own; each `run_once` must return within 5 s, and all
/// 32 KiB must arrive.
#[cfg(feature = "tls")]
#[test]
fn b2_tls_ciphertext_left_in_the_session_does_not_spin_the_loop() {
    use std::sync::mpsc;
    const LEN: usize = 32 * KIB;
    let (addr_tx, addr_rx) = mpsc::channel();
    let (turn_tx, turn_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut r = reactor_with(no_timeouts);
        let addr = Transport::Tls.listen(&mut r, || {
            Recorder::new(&log()).on_connect(|c| {
                socket2::SockRef::from(&*c)
                    .set_send_buffer_size(4 * KIB)
                    .expect("SO_SNDBUF");
                c.write(&pattern(LEN, 9));
            })
        });
        addr_tx.send(addr).unwrap();
        loop {
            r.run_once(Some(ms(5))).unwrap();
            if turn_tx.send(()).is_err() {
                return;
            }
        }
    });
    let at = addr_rx.recv().unwrap().inet().unwrap();
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_recv_buffer_size(4 * KIB).unwrap();
    sock.connect(&at.into()).unwrap();
    let mut c = Client::over(Stream::over_tcp(sock.into()).unwrap());
    let start = std::time::Instant::now();
    while c.pump().received.len() < LEN {
        assert_eq!(c.end, End::Open);
        assert!(
            start.elapsed() < DEADLINE,
            "the reactor stopped sending after {} of {LEN} bytes",
            c.received.len()
        );
        turn_rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("run_once did not return within 5 s");
    }
    assert!(c.received == pattern(LEN, 9));
}
