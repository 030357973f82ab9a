//! The seed programs, run as a user would: the `tcp_deadlock` and
//! `shut_srv` examples as servers, driven by Python 3 ports of the seeds'
//! own clients (`tests/clients/`), by `socat` and by the examples' own
//! clients.
//!
//! `tcp_deadlock` speaks TCP and Unix stream sockets with the same close
//! semantics, so its tests run on both, from one definition each (the
//! table below); the Python client connects with `socket.AF_UNIX` there.
//! `shut_srv` listens on TCP only, and so do its tests.
//!
//! `python3` and `socat` are part of the CI image; a missing one fails
//! the tests rather than skipping them.

use std::process::Command;
use std::time::Instant;

use crate::util::{
    assert_clean_exit, example_bin, python, run, run_bounded, socat_exe, status_kib, text, Server,
    Transport, DEADLINE,
};
use halfclose::Addr;

// Not on TLS: the clients are the seed's (Python, socat, a raw std
// socket) and speak plain bytes; the TLS runs of `tcp_deadlock` are in
// `tests/tls.rs`.
crate::transports!(
    no_tls:
    tcp_deadlock_python_client_gets_every_byte_uppercased,
    tcp_deadlock_socat_client_half_closes_at_the_end_of_its_input,
    tcp_deadlock_client_that_reads_only_after_sending_deadlocks,
    tcp_deadlock_rust_client_reads_while_it_sends,
    tcp_deadlock_without_shutdown_hangs_until_the_timeout,
);

fn port(server: &Server) -> String {
    server.addr.port().to_string()
}

// ------------------------------------------------------------ tcp_deadlock

fn tcp_deadlock_server(t: Transport) -> Server {
    Server::start(
        "tcp_deadlock",
        &["server", "--listen", &t.fresh().to_string()],
    )
}

/// `tcp_deadlock_client.py` with `args` after the server's address:
/// `HOST PORT` for TCP, `PATH -` or `@name -` for a Unix socket.
fn python_client(server: &Server, args: &[&str]) -> Command {
    let at = match &server.at {
        Addr::Inet(a) => vec![a.ip().to_string(), a.port().to_string()],
        unix => vec![unix.to_string(), "-".to_string()],
    };
    let mut all: Vec<&str> = at.iter().map(String::as_str).collect();
    all.extend_from_slice(args);
    python("tcp_deadlock_client.py", &all)
}

/// The seed's Python client (sendall, `shutdown(SHUT_WR)`, recv to EOF)
/// against our server: the server reads until the client's FIN, then
/// flushes everything and closes, so the client gets every byte uppercased
/// and a clean EOF (the script checks the text and exits 0 only then).
/// Then SIGTERM: a graceful drain, exit 0.
///
/// The client sends everything before it reads, so the upload must fit in
/// what the buffers between it and the server hold (the next test shows
/// what happens otherwise): several MiB over TCP loopback, a few hundred
/// KiB over a Unix socket, whose default `SO_SNDBUF` (208 KiB here) alone
/// bounds each direction. 1 MiB over TCP, 128 KiB over a Unix socket.
fn tcp_deadlock_python_client_gets_every_byte_uppercased(t: Transport) {
    let bytes = if t == Transport::Unix {
        128 << 10
    } else {
        1 << 20
    };
    let server = tcp_deadlock_server(t);
    let out = run(&mut python_client(&server, &[&bytes.to_string()]));
    assert!(
        out.status.success(),
        "client failed: {out:?}\n{}",
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), format!("received {bytes} bytes\n"));
    assert_clean_exit(server);
}

/// `socat` as the client (`TCP:`, or `ABSTRACT-CONNECT:` for a Unix
/// socket), which half-closes when its input ends and keeps reading the
/// reply until the server's end of file: every byte comes back uppercased.
fn tcp_deadlock_socat_client_half_closes_at_the_end_of_its_input(t: Transport) {
    let server = tcp_deadlock_server(t);
    socat_gets_its_input_uppercased(&server);
    assert_clean_exit(server);
}

/// `socat` against the `tcp_deadlock` `server` (`TCP:`, `ABSTRACT-CONNECT:`
/// or `UNIX-CONNECT:`, as it listens): it sends its input, half-closes, and
/// reads every byte back uppercased, then the server's end of file.
#[track_caller]
pub(super) fn socat_gets_its_input_uppercased(server: &Server) {
    let target = match &server.at {
        Addr::Inet(a) => format!("TCP:{a}"),
        Addr::Abstract(name) => format!("ABSTRACT-CONNECT:{}", String::from_utf8_lossy(name)),
        Addr::Path(p) => format!("UNIX-CONNECT:{}", p.display()),
        other => panic!("cannot connect to {other}"),
    };
    let input = b"half-closed by socat at the end of its input\n".repeat(1000);
    let out = run_bounded(
        Command::new(socat_exe()).args(["-t", "5", "-", &target]),
        &input,
        DEADLINE,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        out.stdout == input.to_ascii_uppercase(),
        "socat got {} bytes",
        out.stdout.len()
    );
}

/// The seed's own deadlock: a client that sends everything before it reads
/// anything, with more data (128 MiB) than the socket buffers between it
/// and the server hold. The server honours backpressure (stops reading
/// while its reply queue is past the high-water mark), so the client's
/// sendall stalls: the script gives up after 1 s without progress (exit 3,
/// "deadlock"). The server's memory stays bounded (it did not buffer the
/// upload), and it goes on serving other clients.
fn tcp_deadlock_client_that_reads_only_after_sending_deadlocks(t: Transport) {
    let server = tcp_deadlock_server(t);
    let out = run(&mut python_client(&server, &["134217728", "1"]));
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("deadlock: sendall made no progress"),
        "{}",
        text(&out.stderr)
    );
    let hwm = status_kib(server.child.id(), "VmHWM");
    assert!(
        hwm < 48 * 1024,
        "server peak memory {hwm} KiB: backpressure should keep the 128 MiB upload in the kernel"
    );
    // The stalled connection is gone (the client closed it); others work.
    let out = run(&mut python_client(&server, &["4096"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_clean_exit(server);
}

/// Our own client (on `Reactor::connect`) reads while it sends, so any size
/// works, well past the ~7 MiB (TCP) or ~400 KiB (Unix socket) at which
/// the Python client deadlocks here: 16 MiB + 1 byte, rounded up to a
/// multiple of 16 as the seed does.
fn tcp_deadlock_rust_client_reads_while_it_sends(t: Transport) {
    let server = tcp_deadlock_server(t);
    let out = run(Command::new(example_bin("tcp_deadlock")).args([
        "client",
        "16777217",
        "--connect",
        &server.at.to_string(),
    ]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stdout),
        "sending 16777232 bytes: \"capitalize this!\" repeated\nreceived 16777232 bytes\n"
    );
    assert_clean_exit(server);
}

/// Without `shutdown(SHUT_WR)` the server never sees EOF: it has sent back
/// every byte but waits for more, and the client waits for its close. The
/// client gives up after `--timeout 1`, says why on stderr, exits 3.
fn tcp_deadlock_without_shutdown_hangs_until_the_timeout(t: Transport) {
    let server = tcp_deadlock_server(t);
    let started = Instant::now();
    let out = run(Command::new(example_bin("tcp_deadlock")).args([
        "client",
        "1000",
        "--connect",
        &server.at.to_string(),
        "--no-shutdown",
        "--timeout",
        "1",
    ]));
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(
        err.contains("received 1008 of 1008 bytes but no end-of-file"),
        "{err}"
    );
    assert!(
        err.contains("Without shutdown(SHUT_WR) the server never sees end-of-file"),
        "{err}"
    );
    assert!(
        took.as_millis() >= 1000,
        "gave up after {took:?}, before its timeout"
    );
    assert!(!text(&out.stdout).contains("received"));
    assert_clean_exit(server);
}

/// Both programs answer `--help` with their usage and exit 0.
#[test]
fn seeds_print_help() {
    for name in ["tcp_deadlock", "shut_srv"] {
        let out = run(Command::new(example_bin(name)).arg("--help"));
        assert!(out.status.success());
        let help = text(&out.stdout);
        assert!(
            help.contains("Usage:") && help.contains(&format!("{name} server")),
            "{help}"
        );
    }
}

// ---------------------------------------------------------------- shut_srv

fn shut_srv(args: &[&str]) -> Server {
    let mut all = vec!["server", "--listen", "127.0.0.1:0"];
    all.extend_from_slice(args);
    Server::start("shut_srv", &all)
}

/// The recipe's `send_data`: sendall(data + marker), shutdown(1), recv(2)
/// until EOF. Returns the reply; asserts the script exited 0 (it raises,
/// and exits 1, on a reset).
#[track_caller]
fn send_data(server: &Server, data: &str, marker: &str) -> String {
    let out = run(&mut python(
        "shut_send_data.py",
        &["127.0.0.1", &port(server), data, marker],
    ));
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// Markers agree: the reply is the data before the marker, twice, then a
/// clean EOF; for each of the recipe's five requests.
#[test]
fn shut_srv_matching_marker_replies_with_the_data_twice() {
    let server = shut_srv(&[]);
    for d in ["a1234", "b1234", "c1234", "d1234", "e1234"] {
        assert_eq!(send_data(&server, d, "END"), format!("{d}{d}"));
    }
    assert_clean_exit(server);
}

/// The server reads 2 bytes at a time, as the recipe's does: an odd-length
/// request puts the marker across two reads, and it is still found.
#[test]
fn shut_srv_finds_a_marker_split_across_reads() {
    let server = shut_srv(&["--recv-size", "2", "--marker", "QQQ"]);
    assert_eq!(
        send_data(&server, "a123456789", "QQQ"),
        "a123456789a123456789"
    );
    assert_eq!(send_data(&server, "ab", "QQQ"), "abab");
    assert_eq!(send_data(&server, "", "QQQ"), "");
    assert_clean_exit(server);
}

/// Markers disagree, `--on-eof half-close` (the recipe): the client's FIN
/// only closed its sending half, so the server can still tell it
/// "ERROR:no end!" before its own FIN.
#[test]
fn shut_srv_half_close_tells_the_client_no_end() {
    let server = shut_srv(&["--on-eof", "half-close", "--marker", "SERVER WRONG MARKER"]);
    for d in ["a1234", "b1234"] {
        assert_eq!(
            send_data(&server, d, "CLIENT WRONG MARKER"),
            "ERROR:no end!"
        );
    }
    assert_clean_exit(server);
}

/// Markers disagree, `--on-eof close` (asyncore: "readable with no data" is
/// a disconnect): the server closes without a word, and the client reads a
/// clean EOF and an empty reply, not a reset (the script exits 0).
#[test]
fn shut_srv_asyncore_close_gives_the_client_nothing() {
    let server = shut_srv(&["--on-eof", "close"]);
    assert_eq!(send_data(&server, "a1234", "CLIENT WRONG MARKER"), "");
    // Matching markers still get their reply.
    assert_eq!(send_data(&server, "a1234", "END"), "a1234a1234");
    assert_clean_exit(server);
}

/// A request that grows past `--max-len` without a marker is answered with
/// "ERROR:too long!" and closed; the lingering close reads the rest of the
/// upload, so the client gets the reply and a clean EOF, not a reset.
#[test]
fn shut_srv_request_without_marker_is_bounded() {
    let server = shut_srv(&["--max-len", "1000"]);
    let long = "x".repeat(5000);
    assert_eq!(
        send_data(&server, &long, "NOT THE MARKER"),
        "ERROR:too long!"
    );
    assert_eq!(send_data(&server, "short", "END"), "shortshort");
    assert_clean_exit(server);
}

/// `shut_srv client` against the server: prints the reply exactly, no
/// newline added; a wrong marker gets "ERROR:no end!".
#[test]
fn shut_srv_rust_client_prints_the_reply_exactly() {
    let server = shut_srv(&[]);
    let addr = server.addr.to_string();
    let bin = example_bin("shut_srv");
    let out = run(Command::new(&bin).args(["client", "c1234", "--connect", &addr]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"c1234c1234");
    let out =
        run(Command::new(&bin).args(["client", "c1234", "--connect", &addr, "--marker", "XX"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"ERROR:no end!");
    assert_clean_exit(server);
}
