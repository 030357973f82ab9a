//! What only Unix stream sockets have, at the reactor level: socket files
//! (created by `listen`, refused when in use, removed when stale only if
//! asked, never when not a socket, removed with the listener), names in
//! Linux's abstract namespace, the peer's credentials (`SO_PEERCRED`), a
//! refused connect to a file no one listens on; and the lingering close
//! against a client that keeps writing after our end of file.
//!
//! The behaviours both transports share are not here: the scenario tests
//! of `half_close`, `close_modes`, `reset`, `framing` and `timeouts` run
//! on TCP and on Unix stream sockets from one definition each. These tests
//! bind socket files in a directory of their own per test (`TempDir`),
//! removed at the end.

use std::cell::{Cell, RefCell};
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::MetadataExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::rc::Rc;

use crate::util::*;
use halfclose::{Addr, Bind, Conn, Connect, Handler, Reason};

/// Read to the end, every read bounded by [`DEADLINE`]; what was read and
/// how it ended.
fn read_all(s: &mut UnixStream) -> (Vec<u8>, Result<(), io::ErrorKind>) {
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let (got, end) = read_to_end_or_error(s);
    (got, end.map_err(|e| e.kind()))
}

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

/// The lingering close on a Unix socket (B5 with a blocking client on a
/// thread of its own): the client keeps sending while the server closes
/// (its reply still being flushed), and again after the server's end of
/// file reached it. The lingering close reads and discards all of it up to
/// the client's own end of file: the reply ends with a clean end of file,
/// and the client's late writes do not fail. A plain close would have left
/// the late input unread: the client's reads would end in `ECONNRESET`, or
/// its writes in `EPIPE`.
#[test]
fn unix_lingering_close_turns_the_reset_into_a_clean_eof() {
    let dir = TempDir::new("linger");
    let path = dir.path("s");
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

#[test]
fn the_peer_credentials_are_those_of_the_connecting_process() {
    let dir = TempDir::new("cred");
    let path = dir.path("s");
    let seen = Rc::new(RefCell::new(None));
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
    let seen = Rc::new(Cell::new(None));
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
    let name = unique_name("abstract");
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
    let dir = TempDir::new("inuse");
    let path = dir.path("s");
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
    let dir = TempDir::new("stale");
    let path = dir.path("s");
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
    let dir = TempDir::new("notsock");
    let path = dir.path("s");
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
    let dir = TempDir::new("unlink");
    let path = dir.path("s");
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
    let dir = TempDir::new("refused");
    let path = dir.path("s");
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
    let log = crate::util::log();
    r.connect(Connect::unix(dir.path("missing")), Recorder::new(&log))
        .unwrap();
    run_until(&mut r, |_| closed(&log).is_some());
    assert_eq!(count(&log, |e| *e == Ev::Error(io::ErrorKind::NotFound)), 1);
}
