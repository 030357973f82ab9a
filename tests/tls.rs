//! TLS over TCP (feature `tls`): `close_notify` is TLS's FIN, a TCP FIN
//! without it is a possible truncation the handler hears about, and the
//! handlers written for TCP run unchanged. Real peers: Python's `ssl`,
//! `openssl s_client`, `curl`, Node.js `tls`.
#![cfg(feature = "tls")]

mod util;

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::Command;
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{
    Bind, Closed, Config, Conn, Connect, Ctx, Eof, Handler, Reactor, Reason, Timeout, Truncated,
};
use halfclose_tools::tls::{server_name, Identity};
use util::*;

/// What a TLS test handler saw.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Seen {
    Connect,
    Read(usize),
    Eof,
    Truncated,
    Error(io::ErrorKind),
    Close(Reason),
}

type Trace = Rc<RefCell<Vec<Seen>>>;

fn trace() -> Trace {
    Rc::new(RefCell::new(Vec::new()))
}

fn closed_reason(t: &Trace) -> Option<Reason> {
    t.borrow().iter().find_map(|s| match s {
        Seen::Close(r) => Some(*r),
        _ => None,
    })
}

/// Collects the request to the peer's end, then replies with it
/// uppercased and closes; what the end means is `on_truncated`'s to say.
struct Upper {
    trace: Trace,
    request: Vec<u8>,
    on_truncated: Truncated,
    /// Echo each piece at once instead of waiting for the end.
    echo: bool,
}

impl Upper {
    fn new(trace: &Trace) -> Upper {
        Upper {
            trace: trace.clone(),
            request: Vec::new(),
            on_truncated: Truncated::Fail,
            echo: false,
        }
    }
}

impl Handler for Upper {
    fn handle_connect(&mut self, _conn: &mut Conn<'_>) {
        self.trace.borrow_mut().push(Seen::Connect);
    }
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.trace.borrow_mut().push(Seen::Read(data.len()));
        if self.echo {
            conn.write(&data.to_ascii_uppercase());
        } else {
            self.request.extend_from_slice(data);
        }
    }
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        self.trace.borrow_mut().push(Seen::Eof);
        conn.write(&self.request.to_ascii_uppercase());
        Eof::Close
    }
    fn handle_truncated_eof(&mut self, conn: &mut Conn<'_>) -> Truncated {
        self.trace.borrow_mut().push(Seen::Truncated);
        if let Truncated::Accept(_) = self.on_truncated {
            conn.write(&self.request.to_ascii_uppercase());
        }
        self.on_truncated
    }
    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        self.trace.borrow_mut().push(Seen::Error(err.kind()));
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.trace.borrow_mut().push(Seen::Close(closed.reason));
    }
}

/// A certificate for localhost, and a PEM file of it for the peers to
/// trust, removed at the end.
struct Cert {
    id: Identity,
    pem: std::path::PathBuf,
}

impl Cert {
    fn new(test: &str) -> Cert {
        let id = Identity::self_signed(&["localhost", "127.0.0.1"]).unwrap();
        let pem = std::env::temp_dir().join(format!("halfclose-{}-{test}.pem", std::process::id()));
        std::fs::write(&pem, &id.cert_pem).unwrap();
        Cert { id, pem }
    }

    fn pem(&self) -> &str {
        self.pem.to_str().unwrap()
    }
}

impl Drop for Cert {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.pem);
    }
}

/// A reactor serving `factory` over TLS on 127.0.0.1.
fn tls_server<H: Handler + 'static>(
    cert: &Cert,
    config: Config,
    factory: impl FnMut() -> H + 'static,
) -> (Reactor, SocketAddr) {
    let mut r = Reactor::with_config(config).unwrap();
    let bind = Bind::tcp("127.0.0.1:0".parse().unwrap()).tls(cert.id.server_config(&[]).unwrap());
    let l = r.listen(bind, factory).unwrap();
    let addr = r.local_addr(l).and_then(|a| a.inet()).unwrap();
    (r, addr)
}

/// Run a Python 3 program with arguments on its own thread (the reactor
/// runs on this one); its stdout, or its stderr if it failed.
fn python_thread(
    program: &'static str,
    args: Vec<String>,
) -> std::thread::JoinHandle<Result<String, String>> {
    let exe = python_exe();
    std::thread::spawn(move || {
        let out = run_bounded(
            Command::new(exe).arg("-c").arg(program).args(&args),
            b"",
            DEADLINE,
        );
        if out.status.success() {
            Ok(text(&out.stdout).trim().to_string())
        } else {
            Err(text(&out.stderr))
        }
    })
}

/// Python's `ssl`: a request, the reply, then `unwrap()`, which sends
/// `close_notify` and waits for ours.
const PY_UNWRAP: &str = "import socket,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
s=ctx.wrap_socket(socket.create_connection(('127.0.0.1',int(sys.argv[1]))),server_hostname='localhost')
s.sendall(b'hello tls')
got=b''
while len(got)<9:
    got+=s.recv(100)
print(got.decode(), s.version())
s.unwrap().close()
";

/// The same, but a plain `close()`: a TCP FIN without `close_notify`.
const PY_PLAIN_CLOSE: &str = "import socket,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
s=ctx.wrap_socket(socket.create_connection(('127.0.0.1',int(sys.argv[1]))),server_hostname='localhost')
s.sendall(b'hello tls')
got=b''
while len(got)<9:
    got+=s.recv(100)
print(got.decode())
s.close()
";

/// Serve one Python `ssl` client (`program`, given the port and the
/// certificate's path) with an echoing [`Upper`] whose truncated ends mean
/// `on_truncated`; what the handler saw, and what Python printed.
fn serve_python(test: &str, program: &'static str, on_truncated: Truncated) -> (Vec<Seen>, String) {
    let cert = Cert::new(test);
    let t = trace();
    let t2 = t.clone();
    let (mut r, addr) = tls_server(&cert, Config::default(), move || Upper {
        echo: true,
        on_truncated,
        ..Upper::new(&t2)
    });
    let py = python_thread(
        program,
        vec![addr.port().to_string(), cert.pem().to_string()],
    );
    run_until(&mut r, |_| closed_reason(&t).is_some());
    let printed = py.join().unwrap().expect("python");
    let seen = t.borrow().clone();
    (seen, printed)
}

/// Python's `unwrap()` sends `close_notify`: the handler hears an
/// authenticated end through `handle_readable_eof`, and the connection
/// ends as closed by the peer.
#[test]
fn close_notify_is_a_clean_end() {
    let (seen, printed) = serve_python("notify", PY_UNWRAP, Truncated::Fail);
    assert_eq!(printed, "HELLO TLS TLSv1.3");
    let ends: Vec<_> = seen
        .iter()
        .filter(|s| matches!(s, Seen::Eof | Seen::Truncated))
        .collect();
    assert_eq!(ends, [&Seen::Eof], "{seen:?}");
    assert_eq!(
        seen[0],
        Seen::Connect,
        "handle_connect after the handshake, first"
    );
    assert_eq!(seen.last(), Some(&Seen::Close(Reason::PeerClosed)));
}

/// A plain `close()` ends the stream with a TCP FIN and no `close_notify`:
/// by default that is an error the handler sees (`UnexpectedEof`, reason
/// truncated), never a clean end.
#[test]
fn a_fin_without_close_notify_is_reported_as_truncated() {
    let (seen, printed) = serve_python("truncated", PY_PLAIN_CLOSE, Truncated::Fail);
    assert_eq!(printed, "HELLO TLS");
    assert!(
        !seen.contains(&Seen::Eof),
        "reported as a clean end: {seen:?}"
    );
    assert!(seen.contains(&Seen::Truncated), "{seen:?}");
    assert!(
        seen.contains(&Seen::Error(io::ErrorKind::UnexpectedEof)),
        "{seen:?}"
    );
    assert_eq!(seen.last(), Some(&Seen::Close(Reason::Truncated)));
}

/// A protocol that can tell a complete message by itself may accept the
/// truncated end: then it goes on as after a FIN. The client here sends
/// its request, then a bare TCP FIN (`shutdown(SHUT_WR)` under TLS, no
/// `close_notify`), and reads the reply to the server's `close_notify`.
#[test]
fn a_handler_may_accept_a_truncated_end() {
    let cert = Cert::new("accept");
    let t = trace();
    let t2 = t.clone();
    let (mut r, addr) = tls_server(&cert, Config::default(), move || Upper {
        on_truncated: Truncated::Accept(Eof::Close),
        ..Upper::new(&t2)
    });
    let config = cert.id.client_config(&[]).unwrap();
    let client = std::thread::spawn(move || {
        let session =
            rustls::ClientConnection::new(config, server_name("localhost").unwrap()).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut tls = rustls::StreamOwned::new(session, tcp);
        tls.write_all(b"accept me").unwrap();
        tls.flush().unwrap();
        tls.sock.shutdown(Shutdown::Write).unwrap();
        let mut reply = Vec::new();
        tls.read_to_end(&mut reply)
            .map(|_| reply)
            .map_err(|e| e.kind())
    });
    run_until(&mut r, |_| closed_reason(&t).is_some());
    assert_eq!(client.join().unwrap(), Ok(b"ACCEPT ME".to_vec()));
    let seen = t.borrow().clone();
    assert!(seen.contains(&Seen::Truncated), "{seen:?}");
    assert!(
        !seen.iter().any(|s| matches!(s, Seen::Error(_))),
        "{seen:?}"
    );
    assert_eq!(closed_reason(&t), Some(Reason::PeerClosed));
}

/// A TLS 1.3 half-close: our client sends its request, then
/// `shutdown_write` (`close_notify`, then `SHUT_WR`), and keeps reading;
/// the server answers after the end it was told of, 1 MiB, then closes.
/// The client gets the whole reply and an authenticated end.
#[test]
fn a_tls13_half_close_still_gets_the_whole_response() {
    let cert = Cert::new("halfclose");
    let st = trace();
    let st2 = st.clone();
    let (mut r, addr) = tls_server(&cert, Config::default(), move || Upper::new(&st2));
    let request = pattern(MIB, 1);
    let reply = Rc::new(RefCell::new(Vec::new()));
    let ct = trace();
    let (ct2, rep2, req2) = (ct.clone(), reply.clone(), request.clone());
    let client = Client13 {
        trace: ct2,
        request: req2,
        reply: rep2,
    };
    let to = Connect::to(addr).tls(
        cert.id.client_config(&[]).unwrap(),
        server_name("localhost").unwrap(),
    );
    r.connect(to, client).unwrap();
    run_until(&mut r, |_| {
        closed_reason(&ct).is_some() && closed_reason(&st).is_some()
    });
    assert!(
        *reply.borrow() == request.to_ascii_uppercase(),
        "{} bytes",
        reply.borrow().len()
    );
    assert!(ct.borrow().contains(&Seen::Eof), "{:?}", ct.borrow());
    assert_eq!(
        closed_reason(&ct),
        Some(Reason::Local),
        "our close_notify came first"
    );
    assert_eq!(closed_reason(&st), Some(Reason::PeerClosed));
}

struct Client13 {
    trace: Trace,
    request: Vec<u8>,
    reply: Rc<RefCell<Vec<u8>>>,
}

impl Handler for Client13 {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let info = conn.tls().expect("a TLS connection past its handshake");
        assert_eq!(info.version, Some(rustls::ProtocolVersion::TLSv1_3));
        conn.write(&self.request);
        conn.shutdown_write();
    }
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.reply.borrow_mut().extend_from_slice(data);
    }
    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        self.trace.borrow_mut().push(Seen::Eof);
        Eof::Close
    }
    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        self.trace.borrow_mut().push(Seen::Error(err.kind()));
    }
    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        self.trace.borrow_mut().push(Seen::Close(closed.reason));
    }
}

/// A client that connects and never sends its hello: the handshake
/// timeout ends it, and its handler never hears `handle_connect`.
#[test]
fn a_stalled_handshake_times_out() {
    let cert = Cert::new("stall");
    let t = trace();
    let t2 = t.clone();
    let mut config = Config::default();
    config.handshake_timeout = Some(Duration::from_millis(200));
    let (mut r, addr) = tls_server(&cert, config, move || Upper::new(&t2));
    let _silent = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    run_until(&mut r, |_| closed_reason(&t).is_some());
    assert!(start.elapsed() >= Duration::from_millis(190));
    assert_eq!(
        closed_reason(&t),
        Some(Reason::TimedOut(Timeout::Handshake))
    );
    assert!(!t.borrow().contains(&Seen::Connect), "{:?}", t.borrow());
}

/// Large transfers both ways through rustls's buffers and a small socket
/// buffer: every byte arrives, in order, and the ends are clean.
#[test]
fn eight_mib_each_way_through_small_buffers() {
    let cert = Cert::new("bulk");
    let t = trace();
    let t2 = t.clone();
    let (mut r, addr) = tls_server(&cert, Config::default(), move || Upper {
        echo: true,
        ..Upper::new(&t2)
    });
    let data = pattern(8 * MIB, 2);
    let reply = Rc::new(RefCell::new(Vec::new()));
    let ct = trace();
    let to = Connect::to(addr).tls(
        cert.id.client_config(&[]).unwrap(),
        server_name("localhost").unwrap(),
    );
    r.connect(
        to,
        Client13 {
            trace: ct.clone(),
            request: data.clone(),
            reply: reply.clone(),
        },
    )
    .unwrap();
    run_until(&mut r, |_| {
        closed_reason(&ct).is_some() && closed_reason(&t).is_some()
    });
    assert!(
        *reply.borrow() == data.to_ascii_uppercase(),
        "{} of {} bytes",
        reply.borrow().len(),
        data.len()
    );
    assert_eq!(closed_reason(&t), Some(Reason::PeerClosed));
}

/// `openssl s_client` against the HTTPS example: a request with
/// `Connection: close`; the server answers and ends with `close_notify`,
/// which `s_client` (waiting for the server, `-ign_eof`) reads as a clean
/// end, and exits.
#[test]
fn openssl_s_client_gets_a_reply_and_close_notify() {
    let (server, cert) = self_signed("http_server", &[]);
    let out = run_bounded(
        Command::new("openssl").args([
            "s_client",
            "-connect",
            &server.addr.to_string(),
            "-CAfile",
            &cert,
            "-servername",
            "localhost",
            "-verify_return_error",
            "-quiet",
            "-ign_eof",
        ]),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let reply = text(&out.stdout);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("hello from halfclose"), "{reply}");
    assert_clean_exit(server);
}

/// The echo example over TLS with Python's `ssl`: the echo comes back,
/// and `unwrap()`'s close_notify is answered with ours.
#[test]
fn the_echo_example_over_tls() {
    let (server, cert) = self_signed("echo", &[]);
    let py = python_thread(PY_UNWRAP, vec![server.addr.port().to_string(), cert]);
    assert_eq!(py.join().unwrap().expect("python"), "hello tls TLSv1.3");
    assert_clean_exit(server);
}

/// The second line a server started with `--tls-self-signed` prints: the
/// path of its certificate.
/// Start `example` with `args`, then `--listen 127.0.0.1:0
/// --tls-self-signed`; the server and the path of its certificate.
fn self_signed(example: &str, args: &[&str]) -> (Server, String) {
    let mut all = args.to_vec();
    all.extend(["--listen", "127.0.0.1:0", "--tls-self-signed"]);
    let mut server = Server::start(example, &all);
    let cert = certificate_line(&mut server);
    (server, cert)
}

fn certificate_line(server: &mut Server) -> String {
    let mut line = String::new();
    std::io::BufRead::read_line(&mut server.stdout, &mut line).unwrap();
    line.trim()
        .strip_prefix("certificate ")
        .unwrap_or_else(|| panic!("{}: no certificate line: {line:?}", server.name))
        .to_string()
}

/// The HTTPS example answers curl (verifying its certificate) and Python's
/// `http.client`, three requests on one kept-alive connection.
#[test]
fn the_https_example_answers_curl_and_python_with_keep_alive() {
    let (server, cert) = self_signed("http_server", &[]);
    let url = format!("https://localhost:{}/", server.addr.port());
    let out = run_bounded(
        Command::new("curl").args([
            "-sS",
            "--cacert",
            &cert,
            &url,
            &url,
            "-w",
            "%{http_code} %{num_connects}\n",
        ]),
        b"",
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let body = text(&out.stdout);
    assert_eq!(body.matches("hello from halfclose").count(), 2, "{body}");
    assert!(
        body.contains("200 1\n") && body.contains("200 0\n"),
        "one connection, kept alive: {body}"
    );
    let program = "import http.client,ssl,sys
ctx=ssl.create_default_context(cafile=sys.argv[2])
c=http.client.HTTPSConnection('localhost',int(sys.argv[1]),context=ctx)
for i in range(3):
    c.request('GET','/')
    r=c.getresponse()
    print(r.status, r.read().decode().strip())
c.close()
";
    let out = run_bounded(
        Command::new(python_exe()).args(["-c", program, &server.addr.port().to_string(), &cert]),
        b"",
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout)
            .lines()
            .filter(|l| *l == "200 hello from halfclose")
            .count(),
        3
    );
    assert_clean_exit(server);
}

/// `tests/clients/node_tls_halfopen.js` against `server` (trusting `cert`):
/// it sends `bytes`, half-closes (`close_notify`, FIN) and must read the
/// whole reply, then the server's end.
#[track_caller]
fn node_half_open(server: &Server, cert: &str, bytes: usize) {
    let out = run_bounded(
        &mut node(
            "node_tls_halfopen.js",
            &[&server.addr.port().to_string(), cert, &bytes.to_string()],
        ),
        b"",
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), format!("{bytes} whole end"));
}

/// Node.js `tls` with `allowHalfOpen`: `end()` sends `close_notify` and a
/// FIN after the request; the `tcp_deadlock` server answers after that end
/// and the client reads the whole reply, then its end.
#[test]
fn a_node_client_half_closes_over_tls_and_gets_the_whole_reply() {
    let (server, cert) = self_signed("tcp_deadlock", &["server"]);
    node_half_open(&server, &cert, 1000000);
    assert_clean_exit(server);
}

/// The `tcp_deadlock` client and server over TLS: the client half-closes
/// (close_notify, then FIN) after its 1 MiB and reads the reply to the
/// server's close_notify.
#[test]
fn tcp_deadlock_client_and_server_over_tls() {
    let (server, cert) = self_signed("tcp_deadlock", &["server"]);
    let out = run_bounded(
        Command::new(example_bin("tcp_deadlock")).args([
            "client",
            "1048576",
            "--connect",
            &server.addr.to_string(),
            "--tls-ca",
            &cert,
        ]),
        b"",
        DEADLINE,
    );
    assert!(
        out.status.success(),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert!(
        text(&out.stdout).contains("received 1048576 bytes"),
        "{}",
        text(&out.stdout)
    );
    assert_clean_exit(server);
}

/// The proxy terminating TLS toward its clients, plain TCP toward the
/// upstream: the client's close_notify reaches the upstream as a FIN, the
/// upstream's FIN comes back as close_notify, and the reply is whole.
#[test]
fn the_proxy_turns_close_notify_into_fin_and_back() {
    let upstream = Server::start("tcp_deadlock", &["server", "--listen", "127.0.0.1:0"]);
    let proxy = Server::start(
        "proxy",
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.addr.to_string(),
            "--tls-self-signed",
        ],
    );
    let mut proxy = proxy;
    let cert = certificate_line(&mut proxy);
    node_half_open(&proxy, &cert, 300000);
    assert_clean_exit(proxy);
    assert_clean_exit(upstream);
}

/// HTTP/1.1 frames its messages itself, so the HTTPS example accepts an
/// end without `close_notify` between requests: closed by the peer, not
/// truncated (and our `close_notify` still goes out). In the middle of a
/// request the same end is a truncation: that request gets no answer.
#[test]
fn https_accepts_an_unauthenticated_end_between_requests_only() {
    let mut server = Server::start_logged(
        "http_server",
        &["--listen", "127.0.0.1:0", "--tls-self-signed"],
        "halfclose=debug",
    );
    let cert = certificate_line(&mut server);
    let roots = {
        let mut roots = rustls::RootCertStore::empty();
        let pem = std::fs::read(&cert).unwrap();
        for c in rustls::pki_types::CertificateDer::pem_slice_iter(&pem) {
            roots.add(c.unwrap()).unwrap();
        }
        roots
    };
    use rustls::pki_types::pem::PemObject;
    let config = halfclose_tools::tls::client_config(roots).unwrap();
    let addr = server.addr;
    let connect = |config| {
        let session =
            rustls::ClientConnection::new(config, server_name("localhost").unwrap()).unwrap();
        let tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(DEADLINE)).unwrap();
        rustls::StreamOwned::new(session, tcp)
    };

    // A whole request and its whole reply, then a bare TCP FIN.
    let mut tls = connect(config.clone());
    tls.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.ends_with(b"hello from halfclose\n") {
        let n = tls.read(&mut buf).unwrap();
        assert!(n > 0, "the reply ended early");
        reply.extend_from_slice(&buf[..n]);
    }
    tls.sock.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    assert_eq!(
        tls.read_to_end(&mut rest).map_err(|e| e.kind()),
        Ok(0),
        "our close_notify"
    );
    let line = server.expect_log(" closed: ");
    assert!(line.contains("closed by peer"), "between requests: {line}");

    // Half a request, then a bare TCP FIN.
    let mut tls = connect(config);
    tls.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly part")
        .unwrap();
    tls.flush().unwrap();
    tls.sock.shutdown(Shutdown::Write).unwrap();
    let mut rest = Vec::new();
    let _ = tls.read_to_end(&mut rest);
    assert!(
        rest.is_empty(),
        "no answer to a truncated request: {rest:?}"
    );
    let line = server.expect_log(" closed: ");
    assert!(line.contains("truncated"), "inside a request: {line}");
    assert_clean_exit(server);
}

/// The framing layer over TLS: a frame that runs to the end of the stream
/// (`Terminator::Eof`) is complete only if the end is authenticated. A
/// bare TCP FIN makes it incomplete (reason `Protocol(IncompleteFrame)`),
/// never a frame; with `close_notify` it is delivered.
#[test]
fn an_end_of_stream_frame_needs_close_notify() {
    use halfclose::framing::{FrameHandler, Framed, Terminator};
    use halfclose::ProtocolError;

    struct Body {
        frames: Rc<RefCell<Vec<Vec<u8>>>>,
        incomplete: Rc<RefCell<Option<usize>>>,
    }
    impl FrameHandler for Body {
        fn found_frame(&mut self, _c: &mut Conn<'_>, frame: &[u8], _t: &mut Terminator) {
            self.frames.borrow_mut().push(frame.to_vec());
        }
        fn incomplete_frame(&mut self, _c: &mut Conn<'_>, partial: &[u8]) {
            *self.incomplete.borrow_mut() = Some(partial.len());
        }
    }

    let cert = Cert::new("framing");
    for authenticated in [false, true] {
        let frames = Rc::new(RefCell::new(Vec::new()));
        let incomplete = Rc::new(RefCell::new(None));
        let reason = Rc::new(RefCell::new(None));
        let (f2, i2, r2) = (frames.clone(), incomplete.clone(), reason.clone());
        struct Tell<H> {
            inner: H,
            reason: Rc<RefCell<Option<Reason>>>,
        }
        impl<H: Handler> Handler for Tell<H> {
            fn handle_read(&mut self, c: &mut Conn<'_>, d: &[u8]) {
                self.inner.handle_read(c, d)
            }
            fn handle_readable_eof(&mut self, c: &mut Conn<'_>) -> Eof {
                self.inner.handle_readable_eof(c)
            }
            fn handle_truncated_eof(&mut self, c: &mut Conn<'_>) -> Truncated {
                self.inner.handle_truncated_eof(c)
            }
            fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
                *self.reason.borrow_mut() = Some(closed.reason);
                self.inner.handle_close(ctx, closed)
            }
        }
        let (mut r, addr) = tls_server(&cert, Config::default(), move || Tell {
            inner: Framed::new(
                Body {
                    frames: f2.clone(),
                    incomplete: i2.clone(),
                },
                Terminator::Eof,
                1 << 20,
            ),
            reason: r2.clone(),
        });
        let config = cert.id.client_config(&[]).unwrap();
        let client = std::thread::spawn(move || {
            let session =
                rustls::ClientConnection::new(config, server_name("localhost").unwrap()).unwrap();
            let tcp = TcpStream::connect(addr).unwrap();
            tcp.set_read_timeout(Some(DEADLINE)).unwrap();
            let mut tls = rustls::StreamOwned::new(session, tcp);
            tls.write_all(b"the whole body?").unwrap();
            if authenticated {
                tls.conn.send_close_notify();
            }
            tls.flush().unwrap();
            tls.sock.shutdown(Shutdown::Write).unwrap();
            let mut rest = Vec::new();
            let _ = tls.read_to_end(&mut rest);
        });
        run_until(&mut r, |_| reason.borrow().is_some());
        client.join().unwrap();
        if authenticated {
            assert_eq!(*frames.borrow(), [b"the whole body?".to_vec()]);
            assert_eq!(*reason.borrow(), Some(Reason::PeerClosed));
        } else {
            assert!(
                frames.borrow().is_empty(),
                "a truncated body delivered as a frame"
            );
            assert_eq!(*incomplete.borrow(), Some(15));
            assert_eq!(
                *reason.borrow(),
                Some(Reason::Protocol(ProtocolError::IncompleteFrame))
            );
        }
    }
}

// ---------------------------------------------------------------------------
// TLS faults through the fault proxy (T1 to T4)
// ---------------------------------------------------------------------------

/// The fault proxy's TLS-shaped faults against the TLS example servers, in
/// `tests/tls/faults.rs` (test names `tls::faults::<test>`); under an
/// inline module so that cargo does not take that file for a test target.
mod tls {
    mod faults;
}
