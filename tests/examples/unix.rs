//! The examples on Unix socket files, named by path: `tcp_deadlock server
//! --unix PATH` and `client --unix PATH`, the Python seed client and
//! `socat` over `UNIX-CONNECT`, the proxy forwarding to `--upstream PATH`,
//! and a drained server removing its socket file.
//!
//! What the examples do the same on both transports runs from one
//! definition per transport in `seeds` and `proxy` (abstract names there);
//! this module keeps what only a socket file has.

use std::io::{Read, Write};
use std::net::Shutdown;
use std::process::Command;
use std::time::Instant;

use crate::util::{
    assert_clean_exit, blocking_connect, example_bin, pattern, python, run, text, Server, TempDir,
    DEADLINE, MIB,
};
use halfclose::Addr;

/// The `tcp_deadlock` server on a socket file (`--unix PATH`), driven by
/// the Python seed client over `socket.AF_UNIX` (send, `shutdown(SHUT_WR)`,
/// read to EOF), by `socat` over `UNIX-CONNECT`, which half-closes at the
/// end of its input, and by its own client (`--unix PATH`): each gets its
/// reply uppercased and whole. Drained by SIGTERM, the server removes its
/// socket file.
#[test]
fn tcp_deadlock_on_a_socket_file_serves_every_peer_and_removes_it_when_drained() {
    let dir = TempDir::new("peers");
    let path = dir.path("deadlock.sock");
    let p = path.to_str().unwrap();
    let server = Server::start("tcp_deadlock", &["server", "--unix", p]);
    assert_eq!(server.at, Addr::Path(path.clone()));

    let out = run(&mut python("tcp_deadlock_client.py", &[p, "-", "65536"]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "received 65536 bytes\n");

    super::seeds::socat_gets_its_input_uppercased(&server);

    let out =
        run(Command::new(example_bin("tcp_deadlock")).args(["client", "100000", "--unix", p]));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with("received 100000 bytes\n"),
        "{}",
        text(&out.stdout)
    );

    assert_clean_exit(server);
    assert!(!path.exists(), "the drained server removed its socket file");
}

/// The proxy example between transports, the upstream named by its path:
/// a TCP client, the proxy, and a `tcp_deadlock` server on a socket file.
/// The client's FIN crosses to the Unix side as end of file, the reply
/// comes back whole, then EOF.
#[test]
fn the_proxy_joins_tcp_to_a_socket_file_with_each_end_forwarded() {
    let dir = TempDir::new("proxy");
    let path = dir.path("up.sock");
    let p = path.to_str().unwrap();
    let upstream = Server::start("tcp_deadlock", &["server", "--unix", p]);
    let proxy = Server::start("proxy", &["--listen", "127.0.0.1:0", "--upstream", p]);
    let request = pattern(2 * MIB, 3);
    let mut s = blocking_connect(proxy.addr);
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
