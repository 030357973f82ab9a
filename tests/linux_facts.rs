//! The Linux TCP facts of DESIGN.md section 1 (V1-V7), pinned with raw
//! sockets (std, socket2, mio; no reactor), and, where the reactor exists
//! to protect against a fact, the reactor's behaviour next to it. At the
//! end, the same facts on Unix stream sockets: those that hold there too
//! (V1, V2, a close after end of file, `shutdown`), and those that differ
//! (V3, V6, `SO_LINGER` 0), which the tests that run on both transports
//! rely on.
//!
//! The TCP facts stay TCP-only: they are about TCP's segments, window and
//! states; the Unix section pins each one that has a Unix counterpart on
//! its own terms.
//!
//! Raw sockets are driven from one thread: on loopback a segment is
//! delivered to the peer socket during the sending syscall, and every wait
//! that could still be needed is a blocking call with a timeout or a
//! bounded poll loop, never a sleep.

mod util;

use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use halfclose::{Eof, Reason};
use mio::event::Event;
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, SockRef, Socket, Type};
use util::*;

/// `EMFILE` on Linux (std has no stable `ErrorKind` for it).
const EMFILE: i32 = 24;

/// A connected pair of blocking std sockets on loopback: (client, server).
/// Blocking reads give up after [`DEADLINE`].
fn pair() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (b, _) = l.accept().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    (a, b)
}

/// Wait until epoll reports an error condition (`EPOLLERR`) on `s`: the
/// peer's RST has arrived. epoll only looks at the socket; it does not
/// consume the pending error (`SO_ERROR` would), so the next syscall on
/// `s` still meets it.
fn wait_for_error_event(s: &TcpStream) {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    // A duplicate descriptor shares the socket; registering it does not
    // change the original's blocking mode.
    let mut dup = mio::net::TcpStream::from_std(s.try_clone().unwrap());
    poll.registry()
        .register(&mut dup, Token(0), Interest::READABLE | Interest::WRITABLE)
        .unwrap();
    poll_until(&mut poll, &mut events, "no error event", |e| e.is_error());
}

/// Poll, 100 ms at a time, until an event matches `pred`; fail with
/// `what` after [`DEADLINE`].
#[track_caller]
fn poll_until(poll: &mut Poll, events: &mut Events, what: &str, pred: impl Fn(&Event) -> bool) {
    let start = Instant::now();
    loop {
        assert!(start.elapsed() < DEADLINE, "{what} within {DEADLINE:?}");
        poll.poll(events, Some(ms(100))).unwrap();
        if events.iter().any(&pred) {
            return;
        }
    }
}

/// Block until at least `n` bytes sit in `s`'s receive queue (`MSG_PEEK`,
/// nothing consumed).
fn wait_queued(s: &TcpStream, n: usize) {
    let mut buf = vec![0u8; n];
    let start = Instant::now();
    while s.peek(&mut buf).unwrap() < n {
        assert!(start.elapsed() < DEADLINE, "{n} bytes never arrived");
    }
}

/// The request head the V1 closer reads, and how many bytes follow it that
/// the closer never reads.
const HEAD: &[u8] = b"REQ\n";
const UNREAD: usize = 1000;

/// A connected pair for V1, (client, server), with [`UNREAD`] bytes certainly
/// left in the server's receive queue. The client, whose receive buffer is
/// asked to be `client_rcvbuf` bytes before it connects (so the window scale
/// fits it), sends [`HEAD`] and [`UNREAD`] more bytes. The server first waits
/// with `MSG_PEEK` ([`wait_queued`], which consumes nothing) until all of
/// them are in its receive queue, and only then reads the head, exactly
/// `HEAD.len()` bytes: the rest is known to be queued, unread, with no
/// sleep and no race with its arrival. Blocking calls on either socket give
/// up after [`DEADLINE`].
fn unread_input_pair(client_rcvbuf: usize) -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let client = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    client.set_recv_buffer_size(client_rcvbuf).unwrap();
    client.connect(&l.local_addr().unwrap().into()).unwrap();
    let mut client: TcpStream = client.into();
    let (mut server, _) = l.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.set_write_timeout(Some(DEADLINE)).unwrap();
    }

    let mut request = HEAD.to_vec();
    request.extend_from_slice(&[b'x'; UNREAD]);
    client.write_all(&request).unwrap();
    wait_queued(&server, request.len());
    let mut head = [0u8; HEAD.len()];
    server.read_exact(&mut head).unwrap();
    assert_eq!(head, HEAD);
    (client, server)
}

/// V1, the peer's side: a close with unread input sends RST instead of FIN,
/// yet the peer loses nothing that had reached it. The server writes a
/// 100,000-byte reply that fits in the client's receive buffer (1 MiB
/// asked; `SO_RCVBUF`, read back with `getsockopt`, is the kernel's doubled
/// figure, so the reply is cut to a quarter of it where the system caps
/// the buffer lower) and waits until all of it is in the client's receive
/// queue (peeked), then closes with [`UNREAD`] request bytes unread. Only
/// then does the client read: the whole reply, byte for byte, and then
/// `ECONNRESET` where a FIN would have given a clean EOF; after that, reads
/// return 0 (V2).
#[test]
fn v1_reply_that_reached_the_peer_is_read_whole_then_reset() {
    let (mut client, server) = unread_input_pair(MIB);
    let rcvbuf = SockRef::from(&client).recv_buffer_size().unwrap();
    let len = 100_000.min(rcvbuf / 4);
    assert!(len >= 10_000, "SO_RCVBUF is only {rcvbuf} bytes");
    let reply = pattern(len, 2);
    (&server).write_all(&reply).unwrap();
    wait_queued(&client, len);
    drop(server); // UNREAD request bytes unread: RST

    let (got, end) = read_to_end_or_error(&mut client);
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset),
        "a close with unread input must reset, not FIN"
    );
    assert_eq!(got.len(), len, "the reply had reached the peer's buffer");
    assert!(got == reply, "the reply differs from what was sent");
    let mut buf = [0u8; 16];
    assert_eq!(client.read(&mut buf).map_err(|e| e.kind()), Ok(0));
}

/// V1, the closing side's loss: the client asks for a small receive
/// buffer (64 KiB) and does not read until after the close, so of a 4 MiB
/// reply written without blocking the server's kernel accepts much more
/// than can reach the client: what fits the client's window sits in the
/// client's receive queue, the rest waits in the server's send queue. The
/// server then closes with [`UNREAD`] request bytes unread. The client
/// reads a prefix of the reply, byte-identical as far as it goes, at least
/// everything that was in its receive queue at the close but strictly less
/// than the server's kernel accepted, then `ECONNRESET`, not EOF.
///
/// Why the cut falls where the server's unsent data began: `close(2)` with
/// unread input makes the server's kernel send RST in place of FIN and
/// free the socket, its send queue with it, so the bytes it had not sent
/// yet are gone. The RST does not empty the client's receive queue: the
/// client reads all that had arrived (V2), then meets `ECONNRESET`. The
/// reply is lost from the first byte the closing side had not yet sent,
/// not from the first byte the peer had not yet read.
#[test]
fn v1_close_with_unread_input_sends_rst_and_truncates_the_reply() {
    const REPLY: usize = 4 * MIB;
    let (mut client, mut server) = unread_input_pair(64 * KIB);
    let reply = pattern(REPLY, 1);
    server.set_nonblocking(true).unwrap();
    let mut accepted = 0;
    while accepted < REPLY {
        match server.write(&reply[accepted..]) {
            Ok(n) => accepted += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => panic!("server write: {e}"),
        }
    }
    // What had reached the client when the server closed (a later segment
    // still on its way may add to it, never take from it).
    let queued = client.peek(&mut vec![0u8; accepted]).unwrap();
    assert!(queued > 0);
    drop(server); // UNREAD request bytes unread: RST

    let (got, end) = read_to_end_or_error(&mut client);
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset),
        "a close with unread input must reset, not FIN"
    );
    assert!(
        got.len() >= queued,
        "the peer lost bytes it had received: read {} of {queued} queued",
        got.len()
    );
    assert!(
        got.len() < accepted,
        "the reset should have discarded the unsent part of the reply: got {} of {accepted}",
        got.len()
    );
    assert!(
        got == reply[..got.len()],
        "what arrived is not a prefix of the reply"
    );
}

/// V1 (reactor): the same exchange with `Conn::close()`, the lingering
/// close. The handler writes the 4 MiB reply and closes inside
/// `handle_read`; the client then sends 1000 more bytes the protocol never
/// reads, and only after that starts reading. The reactor flushes the
/// reply, sends FIN, reads and discards the extra bytes until the client's
/// FIN: the client gets all 4 MiB and a clean EOF.
#[test]
fn v1_lingering_close_delivers_the_whole_reply() {
    const REPLY: usize = 4 * MIB;
    let reply = std::rc::Rc::new(pattern(REPLY, 1));
    let log = log();
    let mut r = reactor();
    let (l2, r2) = (log.clone(), reply.clone());
    let addr = listen(&mut r, move || {
        let reply = r2.clone();
        Recorder::new(&l2).on_read(move |c, data| {
            if data.starts_with(b"REQ\n") && c.may_send() {
                c.write(&reply);
                c.close();
            }
        })
    });
    let mut c = Client::connect(addr);
    c.send(b"REQ\n");
    run_until(&mut r, |r| r.stats().lingering == 1);
    c.send(&[b'x'; 1000]);
    assert_eq!(c.unsent(), 0);
    // The extra bytes reach the server and are read and discarded.
    run_until(&mut r, |r| r.stats().bytes_in == 1004);
    assert_eq!(
        read_bytes(&log),
        b"REQ\n",
        "input after close must not be delivered"
    );

    run_until(&mut r, |_| c.done());
    c.assert_whole_reply(&reply);
    drop(c);
    run_until(&mut r, |_| closed(&log).is_some());
    let cl = closed(&log).unwrap();
    assert_eq!(
        (cl.reason, cl.bytes_in, cl.bytes_out, cl.dropped),
        (Reason::Local, 1004, REPLY as u64, 0)
    );
}

/// After the data a reset left readable: one read fails with
/// `ECONNRESET`, and every read after it returns 0.
#[track_caller]
fn assert_one_reset_then_zero(b: &mut impl Read) {
    let mut buf = [0u8; 1000];
    assert_eq!(
        b.read(&mut buf).map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset)
    );
    for _ in 0..3 {
        assert_eq!(b.read(&mut buf).map_err(|e| e.kind()), Ok(0));
    }
}

/// V2: data that arrived before the peer's RST can still be read; then one
/// read fails with `ECONNRESET`; after that reads return 0.
#[test]
fn v2_data_before_rst_is_readable_then_one_reset_then_zero() {
    let (a, mut b) = pair();
    (&a).write_all(&[7u8; 100]).unwrap();
    wait_queued(&b, 100);
    reset(a);
    wait_for_error_event(&b);
    let mut buf = [0u8; 1000];
    let mut got = 0;
    while got < 100 {
        match b.read(&mut buf) {
            Ok(n) => {
                assert!(n > 0, "EOF before the data");
                assert!(buf[..n].iter().all(|&x| x == 7));
                got += n;
            }
            Err(e) => panic!("read failed after {got} bytes: {e}"),
        }
    }
    assert_eq!(got, 100);
    assert_one_reset_then_zero(&mut b);
}

/// V3: after the peer fully closed (its FIN read, its socket gone), our
/// first `send` succeeds: the bytes are queued and sent, and the peer's
/// kernel answers them with RST. Once that RST is in (seen as `EPOLLERR`,
/// without consuming the error), the next `send` fails with `EPIPE`, and
/// so does every later one.
#[test]
fn v3_send_after_peer_closed_succeeds_once_then_epipe() {
    let (mut a, b) = pair();
    drop(b);
    let mut buf = [0u8; 16];
    assert_eq!(a.read(&mut buf).unwrap(), 0, "the peer's FIN");
    assert_eq!(a.write(b"first").unwrap(), 5, "the first send succeeds");
    wait_for_error_event(&a);
    for _ in 0..3 {
        assert_eq!(
            a.write(b"later").map_err(|e| e.kind()),
            Err(io::ErrorKind::BrokenPipe)
        );
    }
}

/// V4: after EOF the socket stays readable forever: every read returns 0
/// at once (never `WouldBlock`), and epoll reports it readable each time
/// it is asked again (`EPOLL_CTL_MOD` re-checks readiness, as a
/// level-triggered poller does on every wait).
#[test]
fn v4_after_eof_the_socket_stays_readable() {
    let (a, b) = pair();
    b.shutdown(Shutdown::Write).unwrap();
    let mut buf = [0u8; 16];
    assert_eq!((&a).read(&mut buf).unwrap(), 0);
    a.set_nonblocking(true).unwrap();
    for _ in 0..1000 {
        assert_eq!((&a).read(&mut buf).map_err(|e| e.kind()), Ok(0));
    }
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let mut a = mio::net::TcpStream::from_std(a);
    poll.registry()
        .register(&mut a, Token(1), Interest::READABLE)
        .unwrap();
    for round in 0..5 {
        poll.poll(&mut events, Some(Duration::ZERO)).unwrap();
        let ev = events
            .iter()
            .next()
            .unwrap_or_else(|| panic!("round {round}: no event"));
        assert!(
            ev.is_readable() && ev.is_read_closed(),
            "round {round}: {ev:?}"
        );
        poll.registry()
            .reregister(&mut a, Token(1), Interest::READABLE)
            .unwrap();
    }
    drop(b);
}

/// V4 (reactor): a handler that keeps the connection half-open after EOF
/// (`Eof::HalfClose`) gets EOF once, and the loop then waits instead of
/// spinning: each `run_once` blocks for its timeout and handles no event.
#[test]
fn v4_reactor_does_not_spin_after_eof() {
    let log = log();
    let mut r = reactor();
    let l2 = log.clone();
    let addr = listen(&mut r, move || {
        Recorder::new(&l2).on_eof(|_| Eof::HalfClose)
    });
    let mut c = Client::request(addr, b"bye");
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Eof) == 1);
    r.run_once(Some(Duration::ZERO)).unwrap();
    let start = Instant::now();
    for _ in 0..5 {
        assert_eq!(r.run_once(Some(ms(20))).unwrap(), 0, "events after EOF");
    }
    assert!(
        start.elapsed() >= ms(95),
        "run_once returned early: {:?}",
        start.elapsed()
    );
    assert_eq!(shape(&log), ["connect", "read", "eof"]);
    assert_eq!(r.stats().half_closed_in, 1);
    assert!(!c.done());
}

/// V5: with edge-triggered epoll (mio), a partial read produces no further
/// event: two chunks arrive, one event is reported, one byte is read, and
/// no event comes although the rest is still readable. Only new data
/// brings a new edge.
#[test]
fn v5_edge_triggered_partial_read_gets_no_new_event() {
    let (a, b) = pair();
    (&a).write_all(b"first chunk").unwrap();
    (&a).write_all(b"second chunk").unwrap();
    wait_queued(&b, 23);
    b.set_nonblocking(true).unwrap();
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let mut b = mio::net::TcpStream::from_std(b);
    poll.registry()
        .register(&mut b, Token(1), Interest::READABLE)
        .unwrap();
    poll.poll(&mut events, Some(DEADLINE)).unwrap();
    assert_eq!(events.iter().filter(|e| e.is_readable()).count(), 1);

    let mut one = [0u8; 1];
    assert_eq!(b.read(&mut one).unwrap(), 1);
    poll.poll(&mut events, Some(ms(50))).unwrap();
    assert!(
        events.is_empty(),
        "edge-triggered epoll reported a partial read again"
    );

    let mut rest = [0u8; 64];
    assert_eq!(
        b.read(&mut rest).unwrap(),
        22,
        "the rest was readable all along"
    );
    assert_eq!(&rest[..22], b"irst chunksecond chunk");
    (&a).write_all(b"new").unwrap();
    poll.poll(&mut events, Some(DEADLINE)).unwrap();
    assert!(
        events.iter().any(|e| e.is_readable()),
        "new data brings a new edge"
    );
}

/// V5 (reactor): with a 1 KiB read buffer and a budget of two reads per
/// wakeup, 64 KiB sent in one burst (one edge, then silence: no FIN) all
/// reach `handle_read`: the reactor keeps its own "still readable" state
/// and re-queues the connection instead of waiting for an edge that never
/// comes.
#[test]
fn v5_reactor_reads_to_would_block_without_new_edges() {
    let data = pattern(64 * KIB, 9);
    let log = log();
    let mut r = reactor_with(|c| {
        c.read_buffer_size = KIB;
        c.read_budget = 2;
    });
    let l2 = log.clone();
    let addr = listen(&mut r, move || Recorder::new(&l2));
    let mut c = Client::connect(addr);
    run_until(&mut r, |r| r.stats().accepted == 1);
    c.send(&data);
    run_until(&mut r, |_| c.pump().unsent() == 0);
    run_until(&mut r, |_| read_bytes(&log).len() == data.len());
    assert_eq!(read_bytes(&log), data);
    assert_eq!(closed(&log), None);
}

/// V6: `shutdown(Write)` after the peer's RST fails with `ENOTCONN`.
#[test]
fn v6_shutdown_after_peer_rst_is_enotconn() {
    let (a, b) = pair();
    reset(b);
    wait_for_error_event(&a);
    assert_eq!(
        a.shutdown(Shutdown::Write).map_err(|e| e.kind()),
        Err(io::ErrorKind::NotConnected)
    );
}

/// After reading to EOF with an empty receive queue, `close(2)` alone
/// sends FIN: the peer reads our reply and a clean EOF, no reset, although
/// we never called `shutdown`. (Contrast V1: the same close with unread
/// input resets.)
#[test]
fn close_after_eof_with_empty_queue_sends_fin() {
    let (mut a, mut b) = pair();
    b.write_all(b"request").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end_or_error(&mut a);
    assert_eq!(
        (got.as_slice(), end.map_err(|e| e.kind())),
        (&b"request"[..], Ok(()))
    );
    a.write_all(b"reply").unwrap();
    drop(a); // no shutdown
    let (got, end) = read_to_end_or_error(&mut b);
    assert_eq!(got, b"reply");
    assert_eq!(end.map_err(|e| e.kind()), Ok(()), "expected a clean EOF");
    let mut buf = [0u8; 8];
    assert_eq!(b.read(&mut buf).map_err(|e| e.kind()), Ok(0));
}

const V7_ENV: &str = "HALFCLOSE_V7_CHILD";
const V7_CHILD: &str = "v7_child_under_fd_limit";

/// V7: when `accept` fails with `EMFILE` the listener stays readable, so a
/// loop that only logs the error spins. Needs a low descriptor limit, so
/// the check runs in a child process of this test binary started under
/// `prlimit --nofile=64:64` (util-linux) by [`run_child`]; see
/// [`v7_child_under_fd_limit`].
#[test]
fn v7_emfile_leaves_the_listener_readable() {
    run_child(V7_CHILD, V7_ENV, "1", Some(64), DEADLINE);
}

/// The body of V7, run by [`v7_emfile_leaves_the_listener_readable`] with
/// `HALFCLOSE_V7_CHILD` set; returns at once otherwise.
///
/// Every descriptor is taken but one, a client connects with it (the
/// kernel completes the handshake and queues the connection), then
/// `accept` fails with `EMFILE`, three times over, and after each failure
/// epoll reports the listener readable again when asked (`EPOLL_CTL_MOD`
/// re-checks readiness, as a level-triggered poller does on every wait):
/// the queued connection keeps it readable. Under edge triggering without
/// that re-arm no new event comes at all, so an edge-triggered loop that
/// gives up on `EMFILE` strands the client until another connects. Once a
/// descriptor is free, `accept` returns that same queued connection.
#[test]
#[ignore = "run in a child process by v7_emfile_leaves_the_listener_readable"]
fn v7_child_under_fd_limit() {
    if !is_child(V7_ENV) {
        return;
    }
    const LISTENER: Token = Token(7);
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(4);
    let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let mut listener = mio::net::TcpListener::bind(addr).unwrap();
    let addr = listener.local_addr().unwrap();
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .unwrap();

    let mut hogs = Vec::new();
    loop {
        assert!(hogs.len() < 100_000, "the descriptor limit is not in force");
        match File::open("/dev/null") {
            Ok(f) => hogs.push(f),
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(EMFILE), "{e}");
                break;
            }
        }
    }
    hogs.pop();
    let client = TcpStream::connect(addr).unwrap();
    assert_eq!(
        File::open("/dev/null")
            .map(drop)
            .map_err(|e| e.raw_os_error()),
        Err(Some(EMFILE)),
        "every descriptor should be taken again"
    );

    for round in 0..3 {
        poll_until(
            &mut poll,
            &mut events,
            &format!("round {round}: listener not readable"),
            |e| e.token() == LISTENER && e.is_readable(),
        );
        let err = listener.accept().map(drop).unwrap_err();
        assert_eq!(err.raw_os_error(), Some(EMFILE), "round {round}: {err}");
        if round == 0 {
            // Edge triggered and not re-armed: silence, the client waits.
            poll.poll(&mut events, Some(ms(50))).unwrap();
            assert!(events.is_empty(), "a new edge without a new connection");
        }
        poll.registry()
            .reregister(&mut listener, LISTENER, Interest::READABLE)
            .unwrap();
    }

    hogs.pop();
    let (_accepted, peer) = listener.accept().expect("accept once a descriptor is free");
    assert_eq!(peer, client.local_addr().unwrap(), "the queued connection");
    drop(hogs);
}

// ---------------------------------------------------------------- Unix stream sockets

/// A connected pair of blocking Unix stream sockets: (client, server),
/// through a listener on a socket file in `dir`. Blocking reads give up
/// after [`DEADLINE`].
fn unix_pair(dir: &TempDir) -> (UnixStream, UnixStream) {
    let path = dir.path("s");
    let listener = UnixListener::bind(&path).unwrap();
    let client = UnixStream::connect(&path).unwrap();
    let (server, _) = listener.accept().unwrap();
    for s in [&client, &server] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    (client, server)
}

/// Read to the end; what was read and how it ended.
fn read_all(s: &mut UnixStream) -> (Vec<u8>, Result<(), io::ErrorKind>) {
    let (got, end) = read_to_end_or_error(s);
    (got, end.map_err(|e| e.kind()))
}

/// V1 on a Unix socket: closing with unread bytes in our receive queue
/// makes the peer's read fail with `ECONNRESET` once it has read every byte
/// we sent: a complete reply cannot be told from a crash. (Unlike TCP,
/// nothing we sent is lost: a Unix socket's bytes are in the peer's
/// receive queue as soon as `write` returns.)
#[test]
fn v1_unix_close_with_unread_input_ends_in_econnreset() {
    let dir = TempDir::new("v1");
    let (mut client, mut server) = unix_pair(&dir);
    client.write_all(b"request the server never reads").unwrap();
    let reply = pattern(10_000, 1);
    server.write_all(&reply).unwrap();
    drop(server); // the request is still unread
    let (got, end) = read_all(&mut client);
    assert_eq!(got, reply, "every byte sent before the close arrives");
    assert_eq!(
        end,
        Err(io::ErrorKind::ConnectionReset),
        "then a reset, not EOF"
    );
}

/// On a Unix socket as on TCP, a close after the input was read to its end
/// gives the peer a clean end of file.
#[test]
fn unix_close_after_reading_everything_ends_in_eof() {
    let dir = TempDir::new("v1eof");
    let (mut client, mut server) = unix_pair(&dir);
    client.write_all(b"request").unwrap();
    client.shutdown(Shutdown::Write).unwrap();
    let (req, end) = read_all(&mut server);
    assert_eq!((req.as_slice(), end), (&b"request"[..], Ok(())));
    server.write_all(b"reply").unwrap();
    drop(server);
    assert_eq!(read_all(&mut client), (b"reply".to_vec(), Ok(())));
}

/// `shutdown(SHUT_WR)` on a Unix socket: the peer reads end of file, and
/// can still send to us.
#[test]
fn unix_shutdown_write_gives_eof_and_keeps_the_other_direction() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    for s in [&a, &b] {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
    }
    a.write_all(b"all of it").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut b), (b"all of it".to_vec(), Ok(())));
    b.write_all(b"answer").unwrap();
    drop(b);
    assert_eq!(read_all(&mut a), (b"answer".to_vec(), Ok(())));
}

/// V2 on a Unix socket, whose only "reset" is a close with unread input:
/// the data that came before it can still be read; then one read fails
/// with `ECONNRESET`; after that reads return 0, as after a TCP RST.
#[test]
fn v2_unix_data_before_the_reset_is_readable_then_one_reset_then_zero() {
    let (mut a, mut b) = UnixStream::pair().unwrap();
    b.set_read_timeout(Some(DEADLINE)).unwrap();
    b.write_all(b"left unread").unwrap();
    a.write_all(&[7u8; 100]).unwrap();
    drop(a); // "left unread" is: a reset
    let mut buf = [0u8; 1000];
    assert_eq!(b.read(&mut buf).unwrap(), 100);
    assert!(buf[..100].iter().all(|&x| x == 7));
    assert_one_reset_then_zero(&mut b);
}

/// V3 differs on a Unix socket: once the peer has closed, the very first
/// `send` fails with `EPIPE` (TCP lets one through and fails the next,
/// after the peer's RST); a Unix socket knows at once that no one will
/// read.
#[test]
fn v3_unix_send_after_the_peer_closed_fails_at_once() {
    let (mut a, b) = UnixStream::pair().unwrap();
    drop(b);
    let mut buf = [0u8; 16];
    assert_eq!(a.read(&mut buf).unwrap(), 0, "the peer's end of file");
    for _ in 0..3 {
        assert_eq!(
            a.write(b"later").map_err(|e| e.kind()),
            Err(io::ErrorKind::BrokenPipe)
        );
    }
}

/// V6 differs on a Unix socket: `shutdown(Write)` after the peer's
/// "reset" (its close with our bytes unread) succeeds, where TCP fails
/// with `ENOTCONN`; the reset is still pending, and the next read meets
/// `ECONNRESET`.
#[test]
fn v6_unix_shutdown_after_the_peer_reset_succeeds() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.write_all(b"never read").unwrap();
    drop(b);
    assert_eq!(a.shutdown(Shutdown::Write).map_err(|e| e.kind()), Ok(()));
    let mut buf = [0u8; 16];
    assert_eq!(
        a.read(&mut buf).map_err(|e| e.kind()),
        Err(io::ErrorKind::ConnectionReset)
    );
}

/// `SO_LINGER` 0, TCP's way to reset, does nothing on a Unix socket: a
/// close with it and nothing unread gives the peer every byte and a clean
/// end of file.
#[test]
fn unix_so_linger_zero_does_not_reset() {
    let (mut a, b) = UnixStream::pair().unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    SockRef::from(&b).set_linger(Some(Duration::ZERO)).unwrap();
    (&b).write_all(b"bye").unwrap();
    drop(b);
    assert_eq!(read_all(&mut a), (b"bye".to_vec(), Ok(())));
}
