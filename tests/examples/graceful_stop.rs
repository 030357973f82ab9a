//! Graceful stop of every example server: on SIGTERM (and SIGINT), an
//! exchange in flight when the signal arrives still completes, byte for
//! byte; new connections are refused from the moment the drain starts;
//! the process exits with status 0 within the drain deadline, without
//! aborting anything when nothing was left unfinished; and a connection
//! that does not finish by the deadline is reset at the deadline, after
//! which the process still exits 0.
//!
//! Each server runs as its own process with `RUST_LOG=info,halfclose=debug`
//! and stderr captured: the `signal N: draining` line tells the test which
//! signal started the drain, and the reactor's `closed: reactor stopped`
//! line tells whether the deadline aborted a connection. When a server shows
//! the drain on a connection (the HTTP server closes idle keep-alive
//! connections, the chat says goodbye), that is the proof the listener is
//! closed and a single connect must be refused; otherwise connects are
//! retried, bounded, until one is refused (a connect racing the drain's
//! start may still be accepted; it is closed at once).
//!
//! Every case runs with the server on TCP and on a Unix stream socket (an
//! abstract name), from one definition each (the table below), except
//! `shut_srv`'s: it listens on TCP only. One outcome differs: the
//! connection the drain deadline cuts is reset on TCP, and on a Unix
//! socket, which has no reset, just closed (its client reads end of
//! file).

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::util::{
    blocking_connect, pattern, End, LineClient, Server, Stream, Transport, DEADLINE, KIB, MIB,
};
use halfclose::Addr;
use halfclose_tools::support::DRAIN_DEADLINE;

crate::transports!(
    echo_sigterm_finishes_stream_in_flight,
    echo_sigint_finishes_stream_in_flight,
    tcp_deadlock_sigterm_finishes_stream_in_flight,
    http_server_sigterm_finishes_requests_in_progress_closes_idle,
    http_server_sigint_finishes_requests_in_progress_closes_idle,
    drain_deadline_aborts_unfinished_connection_and_exits_0,
);

// Not on TLS: `chat` has no TLS listener; the proxy's upstream
// (`tcp_deadlock`, which the test also reaches directly) would need TLS
// on the proxy's outbound side too.
crate::transports!(
    no_tls:
    proxy_sigterm_finishes_stream_in_flight,
    chat_sigterm_delivers_backlog_then_goodbye,
    chat_sigint_delivers_backlog_then_goodbye,
);

/// What the reactor logs (at debug) when the drain deadline aborts a
/// connection: `Reason::Stopped`.
const ABORTED_AT_DEADLINE: &str = " closed: reactor stopped";

/// How long connects may keep succeeding after the server logged that it
/// is draining (the drain is posted to the reactor right after the log).
const REFUSED_WITHIN: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug)]
enum Sig {
    Term,
    Int,
}

impl Sig {
    fn kill_flag(self) -> &'static str {
        match self {
            Sig::Term => "-TERM",
            Sig::Int => "-INT",
        }
    }

    fn number(self) -> i32 {
        match self {
            Sig::Term => 15,
            Sig::Int => 2,
        }
    }
}

// ---------------------------------------------------------------- the server process

/// Start example `name` with `args` and `--listen` on a fresh address of
/// `t`, with its stderr captured line by line, and read its `listening on
/// ADDR` line.
fn start(name: &str, t: Transport, args: &[&str]) -> Server {
    let listen = t.fresh().to_string();
    let tls = t.server_args();
    let mut all = args.to_vec();
    all.extend_from_slice(&["--listen", &listen]);
    all.extend(tls.iter().map(String::as_str));
    Server::start_logged(name, &all, "info,halfclose=debug")
}

/// Send `sig` to `server`; returns when it was sent.
fn signal(server: &Server, sig: Sig) -> Instant {
    let at = Instant::now();
    assert!(server.signal(sig.kill_flag()), "kill {sig:?} failed");
    at
}

/// Wait (bounded) for the server to exit, which must be with status 0;
/// how long after the signal sent at `signalled` it did, and its stderr.
#[track_caller]
fn assert_exit_0(server: Server, signalled: Instant) -> (Duration, String) {
    let name = server.name.clone();
    let (status, log) = server.exit();
    let took = signalled.elapsed();
    let log = log.join("\n");
    assert!(
        status.success(),
        "{name}: exit status {status}; stderr:\n{log}"
    );
    (took, log)
}

/// The process exits 0 within the drain deadline of the signal sent at
/// `signalled`, and the deadline aborted nothing.
#[track_caller]
fn assert_graceful_exit(server: Server, signalled: Instant) {
    let name = server.name.clone();
    let (took, log) = assert_exit_0(server, signalled);
    assert!(
        took < DRAIN_DEADLINE,
        "{name}: exited {took:?} after the signal, past the {DRAIN_DEADLINE:?} drain deadline; stderr:\n{log}"
    );
    assert!(
        !log.contains(ABORTED_AT_DEADLINE),
        "{name}: the drain deadline aborted a connection; stderr:\n{log}"
    );
}

/// After the server logged that it drains: connects are refused
/// (`ECONNREFUSED`) within [`REFUSED_WITHIN`], and stay refused. A connect
/// that races the start of the drain is closed at once.
#[track_caller]
fn expect_refused_soon(at: &Addr) {
    let start = Instant::now();
    let mut accepted = 0;
    loop {
        match Stream::connect(at) {
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => break,
            // A connect that raced the listener's close: it was still in
            // the accept queue, and closing a listener resets those.
            Err(e) if e.kind() == io::ErrorKind::ConnectionReset => accepted += 1,
            Err(e) => panic!("connect to a draining server: {e}"),
            Ok(s) => {
                accepted += 1;
                drop(s);
            }
        }
        assert!(
            start.elapsed() < REFUSED_WITHIN && accepted < 10_000,
            "{accepted} connects still accepted {:?} after the drain began",
            start.elapsed()
        );
    }
    expect_refused(at);
}

/// A connect is refused now.
#[track_caller]
fn expect_refused(at: &Addr) {
    match Stream::connect(at) {
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused, "{e}"),
        Ok(_) => panic!("a new connection was accepted during the drain"),
    }
}

/// `got` is `want`; on a mismatch, say where without printing megabytes.
#[track_caller]
fn assert_same(what: &str, got: &[u8], want: &[u8]) {
    if got != want {
        let at = got.iter().zip(want).position(|(a, b)| a != b);
        panic!(
            "{what}: got {} bytes, want {}; first difference at {at:?}",
            got.len(),
            want.len()
        );
    }
}

// ---------------------------------------------------------------- a client mid-exchange

/// A client in the middle of an exchange: a writer thread sends `first` at
/// once, and `rest` followed by a FIN only when released; a reader thread
/// reads the reply to its end meanwhile.
struct Exchange {
    release: Option<Sender<()>>,
    progress: Receiver<usize>,
    writer: JoinHandle<io::Result<()>>,
    reader: JoinHandle<(Vec<u8>, io::Result<()>)>,
}

impl Exchange {
    fn start(at: &Addr, first: Vec<u8>, rest: Vec<u8>) -> Exchange {
        let sock = blocking_connect(at);
        let mut w = sock.try_clone().expect("clone socket");
        let (release, go) = mpsc::channel::<()>();
        let writer = thread::spawn(move || {
            w.write_all(&first)?;
            // Never released (the sender dropped): leave the connection
            // open, unfinished.
            if go.recv_timeout(DEADLINE).is_ok() {
                w.write_all(&rest)?;
                w.shutdown(Shutdown::Write)?;
            }
            Ok(())
        });
        let (tx, progress) = mpsc::channel();
        let mut r = sock;
        let reader = thread::spawn(move || {
            let mut got = Vec::new();
            let mut buf = vec![0; 64 * KIB];
            let end = loop {
                match r.read(&mut buf) {
                    Ok(0) => break Ok(()),
                    Ok(n) => {
                        got.extend_from_slice(&buf[..n]);
                        let _ = tx.send(got.len());
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => break Err(e),
                }
            };
            (got, end)
        });
        Exchange {
            release: Some(release),
            progress,
            writer,
            reader,
        }
    }

    /// Wait (bounded) until at least `n` reply bytes arrived.
    #[track_caller]
    fn wait_received(&self, n: usize) {
        let start = Instant::now();
        loop {
            let left = DEADLINE.saturating_sub(start.elapsed());
            match self.progress.recv_timeout(left) {
                Ok(got) if got >= n => return,
                Ok(_) => {}
                Err(RecvTimeoutError::Timeout) => panic!("no {n} reply bytes within {DEADLINE:?}"),
                Err(RecvTimeoutError::Disconnected) => panic!("the reply ended before {n} bytes"),
            }
        }
    }

    /// Send the rest of the request and the FIN.
    fn release(&mut self) {
        self.release
            .take()
            .expect("released once")
            .send(())
            .expect("writer waiting");
    }

    /// The whole reply and how it ended. An exchange never released stays
    /// unfinished (no FIN) until the server ends it.
    fn finish(mut self) -> (Vec<u8>, io::Result<()>) {
        drop(self.release.take());
        self.writer
            .join()
            .expect("writer thread")
            .expect("sending the request");
        self.reader.join().expect("reader thread")
    }
}

// ---------------------------------------------------------------- byte-stream servers

/// Lowercase text (no `END` in it, so `shut_srv` sees no marker).
fn text(len: usize, seed: u64) -> Vec<u8> {
    pattern(len, seed)
        .into_iter()
        .map(|b| match b % 32 {
            26..=31 => b' ',
            n => b'a' + n,
        })
        .collect()
}

fn uppercase(data: &[u8]) -> Vec<u8> {
    data.to_ascii_uppercase()
}

fn identity(data: &[u8]) -> Vec<u8> {
    data.to_vec()
}

/// A server that answers a stream with a transformed stream and closes
/// after the client's FIN.
struct StreamCase<'a> {
    example: &'a str,
    /// The transport it listens on (`--listen`, added to `args`).
    t: Transport,
    args: &'a [&'a str],
    sig: Sig,
    payload: Vec<u8>,
    /// Bytes sent before the signal; the rest is sent during the drain.
    before: usize,
    reply: fn(&[u8]) -> Vec<u8>,
}

/// A client has sent part of its stream and is reading the reply when the
/// signal arrives; once new connections are refused it sends the rest and
/// its FIN, and gets the whole reply and a clean EOF. The server exits 0
/// before the deadline.
fn stream_case(case: StreamCase<'_>) {
    let mut p = start(case.example, case.t, case.args);
    let want = (case.reply)(&case.payload);
    let (first, rest) = case.payload.split_at(case.before);
    let mut ex = Exchange::start(&p.at, first.to_vec(), rest.to_vec());
    // The server has accepted the connection and is answering.
    ex.wait_received(1);
    let signalled = signal(&p, case.sig);
    p.expect_log(&format!("signal {}: draining", case.sig.number()));
    expect_refused_soon(&p.at);
    ex.release();
    let (got, end) = ex.finish();
    if let Err(e) = end {
        panic!(
            "{}: the in-flight reply ended with {e} after {} of {} bytes",
            case.example,
            got.len(),
            want.len()
        );
    }
    assert_same(case.example, &got, &want);
    assert_graceful_exit(p, signalled);
}

/// `echo`, SIGTERM: a 4 MiB echo, 1 MiB sent before the signal and 3 MiB
/// after it, comes back whole; then EOF, and exit 0. `echo` has no
/// `handle_drain`: the exchange ends by itself at the client's FIN.
fn echo_sigterm_finishes_stream_in_flight(t: Transport) {
    stream_case(StreamCase {
        example: "echo",
        t,
        args: &[],
        sig: Sig::Term,
        payload: pattern(4 * MIB, 71),
        before: MIB,
        reply: identity,
    });
}

/// `echo`, SIGINT: the same as SIGTERM.
fn echo_sigint_finishes_stream_in_flight(t: Transport) {
    stream_case(StreamCase {
        example: "echo",
        t,
        args: &[],
        sig: Sig::Int,
        payload: pattern(2 * MIB, 72),
        before: 512 * KIB,
        reply: identity,
    });
}

/// `tcp_deadlock server`, SIGTERM: 4 MiB of text, 1 MiB sent before the
/// signal, comes back uppercased in full, then EOF; exit 0.
fn tcp_deadlock_sigterm_finishes_stream_in_flight(t: Transport) {
    stream_case(StreamCase {
        example: "tcp_deadlock",
        t,
        args: &["server"],
        sig: Sig::Term,
        payload: text(4 * MIB, 73),
        before: MIB,
        reply: uppercase,
    });
}

/// `proxy` in front of `tcp_deadlock server`, SIGTERM to the proxy: the
/// stream in flight through it (1 of 4 MiB sent before the signal) still
/// reaches the upstream, its uppercased reply comes back whole, and each
/// FIN is forwarded; the proxy exits 0 and the upstream, never signalled
/// by the proxy's drain, is still serving (then drains on its own SIGTERM).
fn proxy_sigterm_finishes_stream_in_flight(t: Transport) {
    let upstream = Server::start(
        "tcp_deadlock",
        &["server", "--listen", &t.fresh().to_string()],
    );
    let up = upstream.at.to_string();
    stream_case(StreamCase {
        example: "proxy",
        t,
        args: &["--upstream", &up],
        sig: Sig::Term,
        payload: text(4 * MIB, 74),
        before: MIB,
        reply: uppercase,
    });
    let mut direct = Exchange::start(&upstream.at, b"still here".to_vec(), Vec::new());
    direct.release();
    let (got, end) = direct.finish();
    end.expect("upstream reply");
    assert_eq!(got, b"STILL HERE");
    let status = upstream.terminate();
    assert!(status.success(), "upstream exit status {status}");
}

/// `shut_srv server`, SIGTERM: a request whose first 256 KiB arrived
/// before the signal and whose rest and `END` marker arrive during the
/// drain is answered in full (the request twice, 1 MiB), then EOF; exit 0.
#[test]
fn shut_srv_sigterm_answers_request_in_progress() {
    let mut p = start("shut_srv", Transport::Tcp, &["server"]);
    let data = text(512 * KIB, 75);
    let mut rest = data[256 * KIB..].to_vec();
    rest.extend_from_slice(b"END");
    let mut ex = Exchange::start(&p.at, data[..256 * KIB].to_vec(), rest);
    // No reply before the marker: the server's log says it accepted us.
    p.expect_log("connected from");
    let signalled = signal(&p, Sig::Term);
    p.expect_log("signal 15: draining");
    expect_refused_soon(&p.at);
    ex.release();
    let (got, end) = ex.finish();
    end.expect("the reply ends with a clean EOF");
    assert_same("shut_srv reply", &got, &[&data[..], &data[..]].concat());
    assert_graceful_exit(p, signalled);
}

// ---------------------------------------------------------------- http_server

struct Response {
    status: u16,
    close: bool,
    body: Vec<u8>,
}

/// The next HTTP response on `c`.
#[track_caller]
fn response(c: &mut LineClient) -> Response {
    let status_line = c.line().trim_end().to_string();
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let (mut len, mut close) = (0, false);
    loop {
        let line = c.line();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("header");
        let value = value.trim();
        match name.to_ascii_lowercase().as_str() {
            "content-length" => len = value.parse().expect("Content-Length"),
            "connection" => close = value.eq_ignore_ascii_case("close"),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    c.reader.read_exact(&mut body).expect("read body");
    Response {
        status,
        close,
        body,
    }
}

/// `http_server`: at the signal, one connection is idle between requests
/// (keep-alive), one has sent a complete request and half of the next
/// request's head, one is uploading a 256 KiB body (`Expect: 100-continue`
/// answered, half the body sent). The idle one is closed at once (clean
/// EOF: the proof the drain started, so a connect is refused right then);
/// the other two finish their requests during the drain and each gets its
/// response with `Connection: close`, then EOF; exit 0.
fn http_case(t: Transport, sig: Sig) {
    let mut p = start("http_server", t, &[]);
    let get = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n";

    let mut idle = LineClient::connect(&p.at);
    idle.send(get);
    let r = response(&mut idle);
    assert_eq!((r.status, r.close), (200, false));

    // One write, one segment on loopback: the server reads the first
    // request and the half head together, so the half head is in its
    // parser (not in a socket buffer) when the drain starts.
    let mut head = LineClient::connect(&p.at);
    head.send([&get[..], b"GET / HTTP/1.1\r\nHost: te"].concat());
    let r = response(&mut head);
    assert_eq!((r.status, r.close), (200, false));

    const BODY: usize = 256 * KIB;
    let body = pattern(BODY, 76);
    let mut upload = LineClient::connect(&p.at);
    upload.send(
        format!(
            "PUT /upload HTTP/1.1\r\nHost: test\r\nExpect: 100-continue\r\nContent-Length: {BODY}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert_eq!(response(&mut upload).status, 100);
    upload.send(&body[..BODY / 2]);

    let signalled = signal(&p, sig);
    p.expect_log(&format!("signal {}: draining", sig.number()));
    idle.expect_eof();
    expect_refused(&p.at);

    head.send(b"st\r\n\r\n");
    let r = response(&mut head);
    assert_eq!((r.status, r.close), (200, true));
    assert_eq!(r.body, b"hello from halfclose\n");
    head.expect_eof();

    upload.send(&body[BODY / 2..]);
    let r = response(&mut upload);
    assert_eq!((r.status, r.close), (200, true));
    assert_eq!(r.body, format!("received {BODY} bytes\n").as_bytes());
    upload.expect_eof();

    drop((idle, head, upload));
    assert_graceful_exit(p, signalled);
}

/// `http_server`, SIGTERM: see [`http_case`].
fn http_server_sigterm_finishes_requests_in_progress_closes_idle(t: Transport) {
    http_case(t, Sig::Term);
}

/// `http_server`, SIGINT: the same.
fn http_server_sigint_finishes_requests_in_progress_closes_idle(t: Transport) {
    http_case(t, Sig::Int);
}

// ---------------------------------------------------------------- chat

/// A chat member `nick`, joined as the `here`th one present.
#[track_caller]
fn join(at: &Addr, nick: &str, here: usize) -> LineClient {
    let mut m = LineClient::connect(at);
    assert!(m.line().starts_with("* welcome"));
    m.send(format!("{nick}\n").as_bytes());
    assert_eq!(m.line(), format!("* you are {nick}; {here} here\n"));
    m
}

const GOODBYE: &str = "* server shutting down, goodbye\n";

/// `chat`: `bob` has not read the 1,000 lines (about 40 KiB) `alice` sent
/// before the signal (her `/who` answered after them proves the server
/// handled them all). At the signal each member gets the goodbye line and
/// EOF (alice's goodbye is the proof the drain started, so a connect is
/// refused right then); bob still gets every line, in order, before his
/// goodbye. Exit 0 once both closed.
fn chat_case(t: Transport, sig: Sig) {
    let mut p = start("chat", t, &[]);
    let mut alice = join(&p.at, "alice", 1);
    let mut bob = join(&p.at, "bob", 2);
    assert_eq!(alice.line(), "* bob joined\n");

    const LINES: usize = 1000;
    let said: Vec<String> = (0..LINES)
        .map(|i| format!("message {i:04} from alice to bob\n"))
        .collect();
    alice.send(said.concat().as_bytes());
    alice.send(b"/who\n");
    assert_eq!(alice.line(), "* here: alice bob\n");

    let signalled = signal(&p, sig);
    p.expect_log(&format!("signal {}: draining", sig.number()));
    assert_eq!(alice.line(), GOODBYE);
    alice.expect_eof();
    expect_refused(&p.at);

    for (i, line) in said.iter().enumerate() {
        assert_eq!(bob.line(), format!("[alice] {line}"), "line {i} to bob");
    }
    assert_eq!(bob.line(), GOODBYE);
    bob.expect_eof();

    drop((alice, bob));
    assert_graceful_exit(p, signalled);
}

/// `chat`, SIGTERM: see [`chat_case`].
fn chat_sigterm_delivers_backlog_then_goodbye(t: Transport) {
    chat_case(t, Sig::Term);
}

/// `chat`, SIGINT: the same.
fn chat_sigint_delivers_backlog_then_goodbye(t: Transport) {
    chat_case(t, Sig::Int);
}

// ---------------------------------------------------------------- the deadline

/// `echo`, SIGTERM, with two connections in flight: one finishes during
/// the drain (its whole echo, clean EOF); the other never sends its FIN.
/// The server waits for it until the drain deadline, then resets it (the
/// client reads `ECONNRESET` after everything echoed before; end of file on
/// a Unix socket, which has no reset), and exits 0
/// right after the deadline, not before and not much later. Only that one
/// connection was aborted.
fn drain_deadline_aborts_unfinished_connection_and_exits_0(t: Transport) {
    let mut p = start("echo", t, &[]);
    let payload = pattern(2 * MIB, 77);
    let mut done = Exchange::start(&p.at, payload[..MIB].to_vec(), payload[MIB..].to_vec());
    let sent = pattern(256 * KIB, 78);
    let stalled = Exchange::start(&p.at, sent.clone(), Vec::new());
    done.wait_received(1);
    stalled.wait_received(sent.len());

    let signalled = signal(&p, Sig::Term);
    p.expect_log("signal 15: draining");
    expect_refused_soon(&p.at);

    done.release();
    let (got, end) = done.finish();
    end.expect("the finished exchange ends with a clean EOF");
    assert_same("echo", &got, &payload);

    let (got, end) = stalled.finish();
    let reset_after = signalled.elapsed();
    assert_eq!(
        End::of(&end),
        t.peer_end_after_abort(false),
        "the unfinished connection is reset at the deadline (closed, on a Unix socket)"
    );
    assert_same("echo before the reset", &got, &sent);

    let (took, log) = assert_exit_0(p, signalled);
    // The deadline's clock starts after the signal; it counts whole
    // milliseconds.
    let earliest = DRAIN_DEADLINE - Duration::from_millis(20);
    assert!(
        reset_after >= earliest && took >= earliest,
        "reset after {reset_after:?}, exit after {took:?}: before the {DRAIN_DEADLINE:?} deadline"
    );
    assert!(
        took < DRAIN_DEADLINE + Duration::from_secs(2),
        "exit {took:?} after the signal; deadline {DRAIN_DEADLINE:?}"
    );
    assert_eq!(
        log.matches(ABORTED_AT_DEADLINE).count(),
        1,
        "exactly the unfinished connection is aborted at the deadline; stderr:\n{log}"
    );
}
