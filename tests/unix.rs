//! Unix stream sockets: the Linux facts that make them need the same care
//! as TCP (a close with unread input ends in `ECONNRESET`; `shutdown` gives
//! the peer end of file), the lingering close that turns that reset into a
//! clean end of file, and what only Unix sockets have: paths, the abstract
//! namespace, stale socket files, the peer's credentials. Real peers:
//! Python's `socket.AF_UNIX` and `socat` over `UNIX-CONNECT`.

mod util;

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use halfclose::{Addr, Bind, Conn, Connect, Eof, Handler, Reactor, Reason};
use util::*;

/// A directory of its own for each test's socket files, removed at the end.
struct Dir(PathBuf);

impl Dir {
    fn new(test: &str) -> Dir {
        let dir = std::env::temp_dir().join(format!("halfclose-{}-{test}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Dir(dir)
    }

    fn sock(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn read_all(s: &mut UnixStream) -> (Vec<u8>, Result<(), io::ErrorKind>) {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, Ok(())),
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Err(e.kind())),
        }
    }
}

// ---------------------------------------------------------------- Linux facts

/// V1 on a Unix socket: closing with unread bytes in our receive queue
/// makes the peer's read fail with `ECONNRESET` once it has read every byte
/// we sent: a complete reply cannot be told from a crash.
#[test]
fn unix_close_with_unread_input_ends_in_econnreset() {
    let dir = Dir::new("v1");
    let path = dir.sock("s");
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
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

/// The same with the input read first: a clean end of file.
#[test]
fn unix_close_after_reading_everything_ends_in_eof() {
    let dir = Dir::new("v1eof");
    let path = dir.sock("s");
    let listener = UnixListener::bind(&path).unwrap();
    let mut client = UnixStream::connect(&path).unwrap();
    let (mut server, _) = listener.accept().unwrap();
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
    a.write_all(b"all of it").unwrap();
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_all(&mut b), (b"all of it".to_vec(), Ok(())));
    b.write_all(b"answer").unwrap();
    drop(b);
    assert_eq!(read_all(&mut a), (b"answer".to_vec(), Ok(())));
}

// ---------------------------------------------------------------- the reactor on a Unix socket

/// Replies to the first line with `reply`, then closes (lossless).
struct ReplyThenClose {
    reply: Vec<u8>,
    sent: bool,
}

impl Handler for ReplyThenClose {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if !self.sent && data.contains(&b'\n') {
            self.sent = true;
            conn.write(&self.reply);
            conn.close();
        }
    }
}

/// B5 on a Unix socket: the client keeps sending while the server closes
/// (its reply still being flushed), and again after the server's end of
/// file reached it. The lingering close reads and discards all of it up to
/// the client's own end of file: the reply ends with a clean end of file,
/// and the client's late writes do not fail. A plain close would have left
/// the late input unread: the client's reads would end in `ECONNRESET`, or
/// its writes in `EPIPE`.
#[test]
fn unix_lingering_close_turns_the_reset_into_a_clean_eof() {
    let dir = Dir::new("linger");
    let path = dir.sock("s");
    let mut r = reactor_with(no_timeouts);
    let reply = pattern(4 * MIB, 2);
    let rep = reply.clone();
    r.listen(Bind::unix(&path), move || ReplyThenClose {
        reply: rep.clone(),
        sent: false,
    })
    .unwrap();
    let client = std::thread::spawn(move || {
        let mut s = UnixStream::connect(&path).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        s.write_all(b"GO\n").unwrap();
        // Read a first part: the server is now flushing its reply, its
        // close already asked for. Then send late input it never reads.
        let mut first = vec![0u8; 64 * KIB];
        s.read_exact(&mut first).unwrap();
        s.write_all(&[b'x'; 32 * KIB]).unwrap();
        let (rest, end) = read_all(&mut s);
        first.extend_from_slice(&rest);
        // After the server's end of file: more input, twice.
        let late = (0..2)
            .map(|_| s.write_all(b"late input").map_err(|e| e.kind()))
            .collect::<Vec<_>>();
        s.shutdown(Shutdown::Write).unwrap();
        (first, end, late)
    });
    run_until(&mut r, |r| r.stats().closed == 1);
    let (got, end, late) = client.join().unwrap();
    assert_eq!(end, Ok(()), "a clean end of file, not a reset");
    assert_eq!(got.len(), reply.len());
    assert!(got == reply, "the reply arrived corrupted");
    assert_eq!(late, [Ok(()), Ok(())], "late input after our end of file");
    assert_eq!(r.stats().resets, 0);
}

/// The half-close protocol of `tcp_deadlock` over a Unix socket, from the
/// handler's side: EOF once, our reply after it, reason peer-closed, and
/// the gauges say half-closed in while we hold it.
#[test]
fn unix_half_close_is_held_and_answered() {
    let dir = Dir::new("half");
    let path = dir.sock("s");
    let log = log();
    let l2 = log.clone();
    let mut r = reactor_with(no_timeouts);
    r.listen(Bind::unix(&path), move || {
        Recorder::new(&l2)
            .on_eof(|c| {
                c.set_timer(ms(50));
                Eof::HalfClose
            })
            .on_timer(|c, _| {
                c.write(b"late answer");
                c.shutdown_write();
            })
    })
    .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"question").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    run_until(&mut r, |r| r.stats().half_closed_in == 1);
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(read_all(&mut s), (b"late answer".to_vec(), Ok(())));
    assert_eq!(read_bytes(&log), b"question");
    assert_eq!(count(&log, |e| *e == Ev::Eof), 1);
    let c = closed(&log).unwrap();
    assert_eq!((c.reason, c.dropped), (Reason::PeerClosed, 0));
}

/// `abort()` on a Unix socket: there is no reset to send; the connection is
/// closed at once and its queued output dropped and counted. The peer,
/// whose bytes we had all read, sees end of file.
#[test]
fn unix_abort_drops_the_queue_and_the_peer_sees_eof() {
    let dir = Dir::new("abort");
    let path = dir.sock("s");
    let log = log();
    let l2 = log.clone();
    let mut r = reactor_with(no_timeouts);
    r.listen(Bind::unix(&path), move || {
        Recorder::new(&l2).on_read(|c, _| {
            // More than the socket buffers hold: most of it stays queued.
            c.write(&vec![7u8; 8 * MIB]);
            c.abort();
        })
    })
    .unwrap();
    let mut s = UnixStream::connect(&path).unwrap();
    s.write_all(b"go").unwrap();
    run_until(&mut r, |_| closed(&log).is_some());
    let c = closed(&log).unwrap();
    assert_eq!(c.reason, Reason::Aborted);
    assert!(c.dropped > 0, "queued output is counted as dropped");
    assert_eq!(c.bytes_out + c.dropped, 8 * MIB as u64);
    let (got, end) = read_all(&mut s);
    assert_eq!(got.len() as u64, c.bytes_out);
    assert_eq!(end, Ok(()));
}

#[test]
fn the_peer_credentials_are_those_of_the_connecting_process() {
    let dir = Dir::new("cred");
    let path = dir.sock("s");
    let seen = std::rc::Rc::new(std::cell::RefCell::new(None));
    let s2 = seen.clone();
    let log = log();
    let l2 = log.clone();
    let mut r = reactor_with(no_timeouts);
    r.listen(Bind::unix(&path), move || {
        let s3 = s2.clone();
        Recorder::new(&l2).on_connect(move |c| {
            *s3.borrow_mut() = Some((c.peer_cred().map_err(|e| e.kind()), c.peer_addr().ok()));
        })
    })
    .unwrap();
    let _s = UnixStream::connect(&path).unwrap();
    run_until(&mut r, |_| seen.borrow().is_some());
    let (cred, peer) = seen.borrow_mut().take().unwrap();
    let cred = cred.expect("SO_PEERCRED");
    let me = std::fs::metadata("/proc/self").unwrap();
    assert_eq!(cred.pid, std::process::id());
    assert_eq!((cred.uid, cred.gid), (me.uid(), me.gid()));
    assert_eq!(peer, Some(Addr::Unnamed), "a client that did not bind");
}

#[test]
fn peer_credentials_over_tcp_are_unsupported() {
    let seen = std::rc::Rc::new(std::cell::Cell::new(None));
    let s2 = seen.clone();
    let log = log();
    let l2 = log.clone();
    let mut r = reactor_with(no_timeouts);
    let addr = listen(&mut r, move || {
        let s3 = s2.clone();
        Recorder::new(&l2).on_connect(move |c| s3.set(Some(c.peer_cred().map_err(|e| e.kind()))))
    });
    let _s = std::net::TcpStream::connect(addr).unwrap();
    run_until(&mut r, |_| seen.get().is_some());
    assert_eq!(seen.get().unwrap(), Err(io::ErrorKind::Unsupported));
}

// ---------------------------------------------------------------- names and files

#[test]
fn an_abstract_name_needs_no_file() {
    let name = format!("halfclose-test-{}-abstract", std::process::id());
    let mut r = reactor_with(no_timeouts);
    let l = r
        .listen(Bind::unix_abstract(&name), || ReplyThenClose {
            reply: b"hi".to_vec(),
            sent: false,
        })
        .unwrap();
    let addr = r.local_addr(l).unwrap();
    assert_eq!(addr, Addr::Abstract(name.clone().into_bytes()));
    assert_eq!(addr.to_string(), format!("@{name}"));
    let log = log();
    let l2 = log.clone();
    r.connect(
        Connect::unix_abstract(&name),
        Recorder::new(&l2).on_connect(|c| c.write(b"hello\n")),
    )
    .unwrap();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(read_bytes(&log), b"hi");
    assert_eq!(closed(&log).unwrap().reason, Reason::PeerClosed);
}

#[test]
fn a_path_in_use_is_refused_with_a_clear_error_and_kept() {
    let dir = Dir::new("inuse");
    let path = dir.sock("s");
    let mut first = reactor();
    first.listen(Bind::unix(&path), || Echo).unwrap();
    let mut second = reactor();
    for bind in [Bind::unix(&path), Bind::unix(&path).remove_stale()] {
        let err = second
            .listen(bind, || Echo)
            .expect_err("the path is in use");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
        assert!(err.to_string().contains("is in use"), "{err}");
    }
    // The first listener still works.
    UnixStream::connect(&path).expect("still listening");
}

#[test]
fn a_stale_socket_file_is_removed_only_when_asked() {
    let dir = Dir::new("stale");
    let path = dir.sock("s");
    // A server that crashed: its socket file stays, no one listens.
    drop(UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let mut r = reactor();
    let err = r.listen(Bind::unix(&path), || Echo).expect_err("not asked");
    assert!(err.to_string().contains("remove_stale"), "{err}");
    let l = r.listen(Bind::unix(&path).remove_stale(), || Echo).unwrap();
    assert_eq!(r.local_addr(l), Some(Addr::Path(path.clone())));
    UnixStream::connect(&path).expect("listening on the reclaimed path");
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = Dir::new("notsock");
    let path = dir.sock("s");
    std::fs::write(&path, b"precious").unwrap();
    let mut r = reactor();
    let err = r
        .listen(Bind::unix(&path).remove_stale(), || Echo)
        .expect_err("not a socket");
    assert_eq!(err.kind(), io::ErrorKind::AddrInUse);
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
}

#[test]
fn closing_the_listener_removes_its_socket_file() {
    let dir = Dir::new("unlink");
    let path = dir.sock("s");
    let mut r = reactor();
    let l = r.listen(Bind::unix(&path), || Echo).unwrap();
    assert!(path.exists());
    r.close_listener(l);
    assert!(!path.exists(), "the socket file went with the listener");
    // But not a file that another server put there since.
    let l = r.listen(Bind::unix(&path), || Echo).unwrap();
    std::fs::remove_file(&path).unwrap();
    let other = UnixListener::bind(&path).unwrap();
    r.close_listener(l);
    assert!(path.exists(), "another server's socket file is left alone");
    drop(other);
}

#[test]
fn connecting_to_a_path_no_one_listens_on_is_refused_once() {
    let dir = Dir::new("refused");
    let path = dir.sock("s");
    drop(UnixListener::bind(&path).unwrap());
    let mut r = reactor();
    let log = log();
    r.connect(Connect::unix(&path), Recorder::new(&log))
        .unwrap();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(
        shape(&log),
        ["error", "close"],
        "never handle_connect: {:?}",
        log.borrow()
    );
    assert_eq!(
        count(&log, |e| *e == Ev::Error(io::ErrorKind::ConnectionRefused)),
        1
    );
    let mut r = reactor();
    let log2 = util::log();
    let log = log2;
    r.connect(Connect::unix(dir.sock("missing")), Recorder::new(&log))
        .unwrap();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(count(&log, |e| *e == Ev::Error(io::ErrorKind::NotFound)), 1);
}

// ---------------------------------------------------------------- real peers and examples

/// The `tcp_deadlock` server on a Unix socket, driven by Python's
/// `socket.AF_UNIX` client (send, `shutdown(SHUT_WR)`, read to EOF) and by
/// `socat` over `UNIX-CONNECT`, which half-closes at the end of its input.
#[test]
fn python_and_socat_peers_get_their_reply_over_a_unix_socket() {
    let dir = Dir::new("peers");
    let path = dir.sock("deadlock.sock");
    let p = path.to_str().unwrap();
    let server = Server::start("tcp_deadlock", &["server", "--unix", p]);
    assert_eq!(server.at, Addr::Path(path.clone()));

    let script = "import socket,sys\n\
        s=socket.socket(socket.AF_UNIX)\n\
        s.connect(sys.argv[1])\n\
        s.sendall(b'capitalize this!'*4096)\n\
        s.shutdown(socket.SHUT_WR)\n\
        got=b''\n\
        while True:\n\
        \x20   d=s.recv(65536)\n\
        \x20   if not d: break\n\
        \x20   got+=d\n\
        print(len(got), got==b'CAPITALIZE THIS!'*4096)\n";
    let out = run_bounded(
        Command::new(python_path()).args(["-c", script, p]),
        b"",
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "65536 True");

    let socat = which_socat();
    let input = b"half-closed by socat at the end of its input\n".repeat(1000);
    let out = run_bounded(
        Command::new(socat).args(["-t", "5", "-", &format!("UNIX-CONNECT:{p}")]),
        &input,
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout == input.to_ascii_uppercase(),
        "socat got {} bytes",
        out.stdout.len()
    );
    assert_clean_exit(server);
    assert!(!path.exists(), "the drained server removed its socket file");
}

/// The proxy example between transports: a TCP client, the proxy, and a
/// `tcp_deadlock` server on a Unix socket. The client's FIN crosses to the
/// Unix side as end of file, the reply comes back whole, then EOF.
#[test]
fn the_proxy_joins_tcp_to_a_unix_socket_with_each_end_forwarded() {
    let dir = Dir::new("proxy");
    let path = dir.sock("up.sock");
    let p = path.to_str().unwrap();
    let upstream = Server::start("tcp_deadlock", &["server", "--unix", p]);
    let proxy = Server::start("proxy", &["--listen", "127.0.0.1:0", "--upstream", p]);
    let request = pattern(2 * MIB, 3);
    let mut s = std::net::TcpStream::connect(proxy.addr).unwrap();
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let started = Instant::now();
    let writer = {
        let mut w = s.try_clone().unwrap();
        let request = request.clone();
        std::thread::spawn(move || {
            w.write_all(&request).unwrap();
            w.shutdown(Shutdown::Write).unwrap();
        })
    };
    let mut got = Vec::new();
    s.read_to_end(&mut got).expect("a clean EOF");
    writer.join().unwrap();
    assert!(
        got == request.to_ascii_uppercase(),
        "{} of {} bytes",
        got.len(),
        request.len()
    );
    assert!(started.elapsed() < DEADLINE);
    assert_clean_exit(proxy);
    assert_clean_exit(upstream);
}

fn python_path() -> &'static str {
    python_exe()
}

fn which_socat() -> &'static str {
    assert!(
        Command::new("socat")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "socat is required (apt-get install socat; .ci/run installs it)"
    );
    "socat"
}

#[allow(dead_code)]
fn _unused(_: &Path, _: &Reactor) {}
