//! TLS-shaped faults (T1 to T4): the fault proxy's `tls-` faults between
//! a rustls client of this test (over a std `TcpStream`) and the TLS
//! example servers, each a separate process started with
//! `--tls-self-signed`. The proxy decrypts nothing: it places its faults by
//! the TLS record headers it sees on the wire (`tools/src/faultproxy/records.rs`).
//! What a server did is read from its log: the core's `closed: <reason>`
//! line at debug level; what the client saw, from its rustls session.
//!
//! Record numbers: in TLS 1.3 (what every peer here negotiates) every
//! encrypted record has the outer type 23, so the client's type-23 records
//! are its `Finished` (1), then its data (2, ...), then its `close_notify`.
//! A write of 40,000 bytes leaves as records of 16,384, 16,384 and 7,232
//! bytes of plaintext: records 2, 3 and 4.
//!
//! Synchronisation is by the processes' output lines and by blocking
//! sockets with timeouts; no sleeps.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::{ClientConnection, RootCertStore, StreamOwned};

use halfclose_tools::tls::{client_config, server_name};

use crate::certificate_line;
use crate::util::{
    assert_clean_exit, parse_close, pattern, read_to_end_or_error, Close, Server, DEADLINE, KIB,
};

const TRUNCATED: &str = "truncated: end of stream without close_notify";

/// A TLS example server with the fault proxy in front of it.
struct Rig {
    server: Server,
    proxy: Server,
    /// The server's certificate (PEM), for the client to trust.
    cert: String,
}

impl Rig {
    /// Start `example` (with `args`, then `--listen 127.0.0.1:0
    /// --tls-self-signed`) logging the core's closes and its own info
    /// lines, and the proxy toward it with `fault` (seed 1).
    fn start(example: &str, args: &[&str], fault: &str) -> Rig {
        let mut all = args.to_vec();
        all.extend(["--listen", "127.0.0.1:0", "--tls-self-signed"]);
        let filter = format!("halfclose=debug,{example}=info");
        let mut server = Server::start_logged(example, &all, &filter);
        let cert = certificate_line(&mut server);
        let upstream = server.addr.to_string();
        let proxy = Server::start_logged(
            "faultproxy",
            &[
                "--listen",
                "127.0.0.1:0",
                "--upstream",
                &upstream,
                "--fault",
                fault,
                "--seed",
                "1",
            ],
            "halfclose_tools=info",
        );
        Rig {
            server,
            proxy,
            cert,
        }
    }

    /// A rustls client through the proxy (the handshake starts with the
    /// first read or write).
    fn connect(&self) -> Tls {
        tls_connect(self.proxy.addr, &self.cert)
    }

    /// The server's next connection to close, within [`DEADLINE`].
    #[track_caller]
    fn server_close(&mut self) -> Close {
        next_close(&mut self.server)
    }

    /// Wait for a line of the proxy's log with `needle`; from it on.
    #[track_caller]
    fn proxy_said(&mut self, needle: &str) -> String {
        self.proxy.expect_log(needle)
    }

    /// Both processes drain on SIGTERM and exit 0.
    fn finish(self) {
        assert_clean_exit(self.proxy);
        assert_clean_exit(self.server);
    }
}

/// The next close line in `server`'s log, within [`DEADLINE`].
#[track_caller]
fn next_close(server: &mut Server) -> Close {
    loop {
        // The whole line is the last one seen (`expect_log` gives it from
        // the needle on).
        server.expect_log(" closed: ");
        let line = server.log.as_ref().unwrap().seen.last().unwrap();
        if let Some(c) = parse_close(line) {
            return c;
        }
    }
}

type Tls = StreamOwned<ClientConnection, TcpStream>;

/// A rustls client to `addr` trusting the certificates in `pem`, its
/// socket's reads and writes bounded by [`DEADLINE`].
fn tls_connect(addr: SocketAddr, pem: &str) -> Tls {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_file_iter(pem).expect("the server's certificate") {
        roots.add(der.unwrap()).unwrap();
    }
    let config = client_config(roots).unwrap();
    let session = ClientConnection::new(config, server_name("localhost").unwrap()).unwrap();
    let tcp = TcpStream::connect(addr).expect("connect to the proxy");
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    tcp.set_write_timeout(Some(DEADLINE)).unwrap();
    StreamOwned::new(session, tcp)
}

/// Our clean end: `close_notify`, then our FIN.
fn close_notify_then_fin(tls: &mut Tls) {
    tls.conn.send_close_notify();
    tls.flush().expect("send close_notify");
    tls.sock
        .shutdown(Shutdown::Write)
        .expect("shutdown(SHUT_WR)");
}

/// Read to the end: the plaintext, and how the stream ended (`Ok`: the
/// server's `close_notify`). Plaintext rustls decrypted before an error
/// (an alert in the same read) is included.
fn read_all(tls: &mut Tls) -> (Vec<u8>, io::Result<()>) {
    let (mut got, end) = read_to_end_or_error(tls);
    if end.is_err() {
        let mut rest = Vec::new();
        let _ = tls.conn.reader().read_to_end(&mut rest);
        got.extend(rest);
    }
    (got, end)
}

/// The kind of an ending that must be an error.
#[track_caller]
fn err_kind(end: &io::Result<()>) -> io::ErrorKind {
    match end {
        Err(e) => e.kind(),
        Ok(()) => panic!("a clean end (close_notify) where an error was due"),
    }
}

// ---------------------------------------------------------------- T1

/// `tls-fin:c2s:3`: the proxy sends the server a FIN in the middle of the
/// client's third type-23 record (its second data record, 16,384 bytes of
/// plaintext), and discards the rest. The server decrypted the first data
/// record and echoed it; the cut record never completes and no
/// `close_notify` came: the end is `truncated` (`handle_truncated_eof`'s
/// default, an error), never `closed by peer`. The client gets the echo of
/// that one record, then the server's close without `close_notify`:
/// `UnexpectedEof`.
#[test]
fn t1_fin_inside_a_record_is_truncated_never_a_clean_end() {
    let mut rig = Rig::start("echo", &[], "tls-fin:c2s:3");
    let mut tls = rig.connect();
    let payload = pattern(40_000, 31);
    tls.write_all(&payload).unwrap();
    tls.flush().unwrap();
    let (got, end) = read_all(&mut tls);
    rig.proxy_said("FIN c2s inside TLS record 3 of type 23");
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.dropped),
        (TRUNCATED, 16 * KIB as u64, 0),
        "{c:?}"
    );
    assert_eq!(err_kind(&end), io::ErrorKind::UnexpectedEof, "{end:?}");
    assert!(got == payload[..16 * KIB], "{} bytes echoed", got.len());
    drop(tls);
    rig.finish();
}

/// `tls-fin:c2s:3:after`: the classic truncation, a FIN right after a
/// whole record. The server decrypted two whole data records (32 KiB) and
/// nothing is broken on the wire: only the missing `close_notify` tells
/// that the stream may be cut, and the end is `truncated` all the same.
#[test]
fn t1_fin_after_a_whole_record_is_truncated_too() {
    let mut rig = Rig::start("echo", &[], "tls-fin:c2s:3:after");
    let mut tls = rig.connect();
    let payload = pattern(40_000, 32);
    tls.write_all(&payload).unwrap();
    tls.flush().unwrap();
    let (got, end) = read_all(&mut tls);
    rig.proxy_said("FIN c2s after TLS record 3 of type 23");
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in),
        (TRUNCATED, 32 * KIB as u64),
        "{c:?}"
    );
    assert_eq!(err_kind(&end), io::ErrorKind::UnexpectedEof, "{end:?}");
    assert!(got == payload[..32 * KIB], "{} bytes echoed", got.len());
    drop(tls);
    rig.finish();
}

// ---------------------------------------------------------------- T2

/// `payload` to the echo server in one write, then `close_notify` and our
/// FIN at once, then the echo to the end.
fn echo_then_close_notify(rig: &Rig, payload: &[u8]) -> (Vec<u8>, io::Result<()>) {
    let mut tls = rig.connect();
    tls.write_all(payload).unwrap();
    close_notify_then_fin(&mut tls);
    read_all(&mut tls)
}

/// What the client of a T2 test saw after its `close_notify`: a prefix of
/// its payload, never more (so never the injected copy). Either the whole
/// echo and the server's `close_notify`, or a reset: the server, done
/// after our `close_notify`, closes its socket without reading the bytes
/// that followed it, and `close(2)` with unread input sends RST (V1),
/// which can take its unsent echo and `close_notify` with it. Which one
/// depends on whether those bytes reached the server before its last read.
#[track_caller]
fn assert_clean_or_reset_by_unread_input(got: &[u8], end: &io::Result<()>, payload: &[u8]) {
    assert!(
        got.len() <= payload.len() && got == &payload[..got.len()],
        "{} bytes echoed, not a prefix of the {} sent",
        got.len(),
        payload.len()
    );
    match end {
        Ok(()) => assert_eq!(got.len(), payload.len(), "a clean end, a short echo"),
        Err(e) => assert_eq!(e.kind(), io::ErrorKind::ConnectionReset, "{e}"),
    }
}

/// `tls-replay:c2s`: after the client's last record (its `close_notify`)
/// and before its FIN, the proxy injects a copy of the record before it,
/// the client's one data record (3,000 bytes of plaintext, 3,022 on the
/// wire). A record after `close_notify` must be ignored (RFC 8446 §6.1),
/// and rustls ignores it: the server never delivers it (3,000 bytes in,
/// not 6,000), raises no error, and ends cleanly, `closed by peer`.
#[test]
fn t2_a_record_replayed_after_close_notify_is_never_delivered() {
    ignored_after_close_notify(
        "tls-replay:c2s",
        33,
        "replaying a TLS record of 3022 bytes c2s",
    );
}

/// `tls-junk:c2s:64`: 64 bytes drawn from the seed after the client's
/// `close_notify`, before its FIN: not a record at all (parsed, they would
/// be a bad header or a failed decryption). Ignored as well: a clean end,
/// nothing delivered but the payload.
#[test]
fn t2_junk_after_close_notify_is_ignored() {
    ignored_after_close_notify("tls-junk:c2s:64", 34, "64 bytes of junk c2s");
}

/// 3,000 bytes (pattern `seed`) echoed through the proxy with `fault`,
/// which it reports with `said`, then `close_notify`: the server delivers
/// the payload alone and ends cleanly, `closed by peer`.
#[track_caller]
fn ignored_after_close_notify(fault: &str, seed: u64, said: &str) {
    let mut rig = Rig::start("echo", &[], fault);
    let payload = pattern(3000, seed);
    let (got, end) = echo_then_close_notify(&rig, &payload);
    rig.proxy_said(said);
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("closed by peer", 3000, 3000),
        "{c:?}"
    );
    assert_clean_or_reset_by_unread_input(&got, &end, &payload);
    rig.finish();
}

/// The control of the two above, `tls-replay:c2s:2`: the same copy right
/// after the record it copies, in the middle of the stream (the client
/// sends its payload and reads, no `close_notify`). Now it is read as the
/// next record and fails authentication (its sequence number is not the
/// one the server expects): rustls sends the `bad_record_mac` alert, and
/// the server ends with an error, `invalid data`, having delivered the
/// original once. So the clean ends above come from where the copy fell,
/// after `close_notify`, not from a copy the server could not notice.
#[test]
fn t2_a_record_replayed_before_close_notify_fails_the_connection() {
    let mut rig = Rig::start("echo", &[], "tls-replay:c2s:2");
    let payload = pattern(3000, 35);
    let mut tls = rig.connect();
    tls.write_all(&payload).unwrap();
    tls.flush().unwrap();
    let (got, end) = read_all(&mut tls);
    rig.proxy_said("replaying a TLS record of 3022 bytes c2s");
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in),
        ("error: invalid data", 3000),
        "{c:?}"
    );
    assert_eq!(err_kind(&end), io::ErrorKind::InvalidData, "{end:?}");
    let alert = end.unwrap_err().to_string();
    assert!(alert.contains("BadRecordMac"), "{alert}");
    assert!(got == payload, "{} bytes echoed", got.len());
    drop(tls);
    rig.finish();
}

// ---------------------------------------------------------------- T3

/// `tls-rst:c2s`: the client sends `close_notify` and its FIN; the proxy
/// forwards the `close_notify`, then resets both sides instead of passing
/// the FIN on. The server (`tcp_deadlock`, which answers as it reads) is
/// stopped (SIGSTOP) from after the exchange until the proxy has sent its
/// RST, so both wait in the server's receive queue, the `close_notify`
/// first: the order a fast peer produces, made certain.
///
/// The server reads the `close_notify` first (data before the RST, V2):
/// an authenticated end, `handle_readable_eof` ("end of input after 5
/// bytes"), never `handle_truncated_eof`. Its answer to it is its own
/// `close_notify`, and that write meets the RST: the connection ends
/// `reset by peer`, not `closed by peer`. Right, because `closed by peer`
/// says the close completed both ways with nothing lost (the peer's end
/// came first and we finished in response), and here our `close_notify`
/// never reached the peer; the reset is what the server can tell (as C9
/// and A12 for a plain FIN then RST). Had the server finished its close
/// before the RST arrived, it would have ended `closed by peer`, and
/// rightly: nothing of its own was lost then.
#[test]
fn t3_rst_right_after_close_notify_is_a_reset_after_a_clean_end() {
    let mut rig = Rig::start("tcp_deadlock", &["server"], "tls-rst:c2s");
    let mut tls = rig.connect();
    tls.write_all(b"hello").unwrap();
    tls.flush().unwrap();
    let mut reply = [0u8; 5];
    tls.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"HELLO");
    assert!(rig.server.signal("-STOP"), "SIGSTOP the server");
    close_notify_then_fin(&mut tls);
    rig.proxy_said("RST instead of FIN c2s");
    rig.proxy_said("server side");
    // The proxy reset our side too.
    let (got, end) = read_all(&mut tls);
    assert_eq!(
        (got.len(), err_kind(&end)),
        (0, io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert!(rig.server.signal("-CONT"), "SIGCONT the server");
    let eof = rig.server.expect_log(": end of input after");
    assert!(
        eof.ends_with("after 5 bytes; flushing and closing"),
        "{eof}"
    );
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("reset by peer", 5, 5),
        "{c:?}"
    );
    drop(tls);
    rig.finish();
}

/// `tls-rst:s2c`, the other way: the HTTPS server answers a request with
/// `Connection: close`, then sends its `close_notify` and FIN; the proxy
/// forwards the reply and the `close_notify`, then resets both sides. The
/// client reads the whole reply and a clean end: once `close_notify` is
/// read, a TLS client reads no further, so the RST behind it cannot take
/// back what it authenticated.
#[test]
fn t3_rst_right_after_the_servers_close_notify() {
    let mut rig = Rig::start("http_server", &[], "tls-rst:s2c");
    let mut tls = rig.connect();
    tls.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    tls.flush().unwrap();
    let (got, end) = read_all(&mut tls);
    rig.proxy_said("RST instead of FIN s2c");
    let c = rig.server_close();
    assert!(end.is_ok(), "the server's close_notify: {end:?}");
    let reply = String::from_utf8_lossy(&got);
    assert!(
        reply.starts_with("HTTP/1.1 200 OK\r\n")
            && reply.ends_with("\r\n\r\nhello from halfclose\n"),
        "{reply}"
    );
    // Its close was first (`closed locally` while it lingered for the
    // client's end), but a reset came instead of that end: all the server
    // can tell.
    assert_eq!(
        (c.reason.as_str(), c.bytes_out),
        ("reset by peer", got.len() as u64),
        "{c:?}"
    );
    drop(tls);
    rig.finish();
}

// ---------------------------------------------------------------- T4

/// Drive the client's handshake until it completes or fails; how it ended
/// and when.
fn handshake(tls: &mut Tls) -> (io::Result<()>, Duration) {
    let start = Instant::now();
    while tls.conn.is_handshaking() {
        if let Err(e) = tls.conn.complete_io(&mut tls.sock) {
            return (Err(e), start.elapsed());
        }
    }
    (Ok(()), start.elapsed())
}

/// `tls-stall:s2c:1s@1`: the proxy passes the server's first record (its
/// ServerHello) and holds the rest of its handshake (the encrypted flight
/// that ends with its `Finished`) for a second. The HTTPS server, started
/// with `--handshake-timeout 200`, never hears the client's `Finished`:
/// `timed out (handshake timeout)` after 200 ms, well before the stall
/// ends, nothing read or written in plaintext. The client's handshake can
/// only go on once the stall ends; by then the server has closed, and the
/// client gets no byte of data and no `close_notify`.
#[test]
fn t4_a_handshake_stalled_after_the_server_hello_times_out() {
    let mut rig = Rig::start(
        "http_server",
        &["--handshake-timeout", "200"],
        "tls-stall:s2c:1s@1",
    );
    let mut tls = rig.connect();
    let start = Instant::now();
    let client = std::thread::spawn(move || {
        let (hs, took) = handshake(&mut tls);
        let (got, end) = read_all(&mut tls);
        (hs, took, got, end)
    });
    let c = rig.server_close();
    let closed_after = start.elapsed();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("timed out (handshake timeout)", 0, 0),
        "{c:?}"
    );
    assert!(
        closed_after >= Duration::from_millis(190) && closed_after < Duration::from_secs(1),
        "closed after {closed_after:?}"
    );
    rig.proxy_said("stalling s2c for 1s after 1 TLS record(s)");
    let (hs, took, got, end) = client.join().unwrap();
    assert!(
        took >= Duration::from_secs(1),
        "handshake in {took:?}: {hs:?}"
    );
    assert!(got.is_empty(), "{} bytes", got.len());
    assert_eq!(err_kind(&end), io::ErrorKind::UnexpectedEof, "{end:?}");
    rig.finish();
}

/// `tls-stall:c2s:1s@1`: the client's first record (its ClientHello) goes
/// through, the rest is held: its change cipher spec and `Finished`. The
/// client's side of a TLS 1.3 handshake is complete once it has sent its
/// `Finished`, the server's is not until it has read it: the server times
/// out after 200 ms (`timed out (handshake timeout)`), and the client,
/// which believes the handshake done, reads the server's close without
/// `close_notify`.
#[test]
fn t4_a_handshake_stalled_before_the_clients_finished_times_out() {
    let mut rig = Rig::start(
        "http_server",
        &["--handshake-timeout", "200"],
        "tls-stall:c2s:1s@1",
    );
    let mut tls = rig.connect();
    let start = Instant::now();
    let (hs, _) = handshake(&mut tls);
    assert!(hs.is_ok(), "the client's side of the handshake: {hs:?}");
    let (got, end) = read_all(&mut tls);
    let ended_after = start.elapsed();
    assert!(got.is_empty(), "{} bytes", got.len());
    assert_eq!(err_kind(&end), io::ErrorKind::UnexpectedEof, "{end:?}");
    assert!(
        ended_after >= Duration::from_millis(190) && ended_after < Duration::from_secs(1),
        "ended after {ended_after:?}"
    );
    let c = rig.server_close();
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("timed out (handshake timeout)", 0, 0),
        "{c:?}"
    );
    rig.proxy_said("stalling c2s for 1s after 1 TLS record(s)");
    drop(tls);
    rig.finish();
}
