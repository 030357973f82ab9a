//! The `proxy` example, run as a user would, between real clients (Node.js
//! with `allowHalfOpen`, the Python seed clients, std sockets) and real
//! upstreams (the `tcp_deadlock`, `shut_srv` and `echo` examples, or a std
//! listener the test controls): each direction's FIN is forwarded on its
//! own, large transfers arrive byte for byte under backpressure, and a
//! reset or a refused connect on one side resets the other.
//!
//! The proxy joins any two transports, so most tests run once per pair
//! (`tcp_to_unix`: clients connect over TCP, the upstream listens on a
//! Unix stream socket), from one definition each (the tables below). A
//! Unix socket has no reset: where the proxy resets a side to tell its
//! peer that the exchange failed, a Unix peer reads end of file instead
//! of `ECONNRESET` (`Transport::peer_end_after_abort`), which it cannot
//! tell from a complete reply; and a Unix peer "resets" the proxy by
//! closing with input unread ([`Stream::reset`]). The Node.js client stays
//! on TCP (its test varies the upstream's transport), and the `shut_srv`
//! test runs on TCP only: `shut_srv` listens on TCP only.
//!
//! `node` and `python3` are part of the CI image; a missing one fails the
//! tests rather than skipping them.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use crate::util::{
    assert_clean_exit, blocking_connect, example_bin, node, pattern, python, read_to_end_or_error,
    refusing_addr, run, status_kib, text, End, Listener, Server, Stream, TempDir, Transport,
    DEADLINE,
};
use halfclose::Addr;

// Not on TLS: Node.js's client here speaks plain TCP.
crate::transports!(no_tls: proxy_node_half_open_client_gets_the_whole_reply_after_its_fin);

// TCP and Unix pairs only, no TLS: the proxy's upstream side speaks plain
// bytes, and so do the Python clients here; its TLS side is tested in
// `tests/tls.rs` (`tls::the_proxy_turns_close_notify_into_fin_and_back`).
crate::transport_pairs!(
    proxy_forwards_each_fin_on_its_own,
    proxy_large_transfer_arrives_byte_for_byte,
    proxy_backpressure_stalls_a_client_until_the_upstream_reads,
    proxy_upstream_reset_resets_the_client,
    proxy_client_reset_resets_the_upstream,
    proxy_upstream_refused_resets_the_client,
);

/// The proxy, listening on a fresh address of `listen`, forwarding to
/// `upstream`.
fn proxy(listen: Transport, upstream: &Addr) -> Server {
    Server::start(
        "proxy",
        &[
            "--listen",
            &listen.fresh().to_string(),
            "--upstream",
            &upstream.to_string(),
        ],
    )
}

/// Accept one connection on `listener`, failing after [`DEADLINE`].
#[track_caller]
fn accept(listener: &Listener) -> Stream {
    let l = listener.try_clone().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(l.accept());
    });
    let s = rx
        .recv_timeout(DEADLINE)
        .expect("no upstream connection within the deadline")
        .expect("accept");
    s.set_timeouts(DEADLINE);
    s
}

/// A proxy from `from` to a std listener on `to` that the test controls,
/// a client connected through it that sent `request`, and the upstream end
/// of the pair once `request` arrived there: (proxy, client, upstream).
#[track_caller]
fn proxied(from: Transport, to: Transport, request: &[u8]) -> (Server, Stream, Stream) {
    let listener = Listener::bind(to);
    let proxy = proxy(from, &listener.local_addr());
    let mut client = blocking_connect(&proxy.at);
    client.write_all(request).unwrap();
    let mut up = accept(&listener);
    let mut got = vec![0u8; request.len()];
    up.read_exact(&mut got).unwrap();
    assert_eq!(got, request);
    (proxy, client, up)
}

fn fnv1a32(data: &[u8]) -> u32 {
    data.iter().fold(0x811c_9dc5u32, |h, &b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    })
}

/// Block `k` of an endless stream: 64 KiB of fixed pseudo-random bytes
/// with `k` in the first 8, so a lost, repeated or reordered block shows.
fn block(k: u64) -> Vec<u8> {
    let mut b = pattern(BLOCK, 11);
    b[..8].copy_from_slice(&k.to_le_bytes());
    b
}

const BLOCK: usize = 65536;

/// A Node.js client with `allowHalfOpen: true` writes 1 MiB through the
/// proxy to the `tcp_deadlock` server (listening on `t`) and calls `end()`.
/// The server replies as it reads but closes only on the client's FIN, so
/// the client's 'end' comes only if the proxy forwarded that FIN upstream
/// while keeping the reply direction open, then forwarded the server's FIN
/// back. Every byte arrives, uppercased (checked by length and FNV-1a).
fn proxy_node_half_open_client_gets_the_whole_reply_after_its_fin(t: Transport) {
    let upstream = Server::start(
        "tcp_deadlock",
        &["server", "--listen", &t.fresh().to_string()],
    );
    let proxy = proxy(Transport::Tcp, &upstream.at);
    let port = proxy.addr.port().to_string();
    for (bytes, total) in [("33", 48usize), ("1048576", 1 << 20)] {
        let out = run(&mut node("node_halfopen.js", &["127.0.0.1", &port, bytes]));
        assert!(out.status.success(), "{}", text(&out.stderr));
        let reply: Vec<u8> = b"CAPITALIZE THIS!"
            .iter()
            .copied()
            .cycle()
            .take(total)
            .collect();
        assert_eq!(
            text(&out.stdout),
            format!("received {total} bytes fnv1a32 {:08x}\n", fnv1a32(&reply))
        );
    }
    assert_clean_exit(proxy);
    assert_clean_exit(upstream);
}

/// Each direction's FIN crosses the proxy on its own: the client's FIN
/// reaches the upstream as end of file while the reply direction stays
/// open; the upstream answers after it, then sends its own FIN, and the
/// client reads the whole answer, then a clean end of file.
fn proxy_forwards_each_fin_on_its_own(from: Transport, to: Transport) {
    let (proxy, mut client, mut up) = proxied(from, to, b"request");
    client.shutdown(Shutdown::Write).unwrap();
    let (rest, end) = read_to_end_or_error(&mut up);
    assert!(rest.is_empty());
    end.expect("the client's FIN reaches the upstream as end of file");
    up.write_all(b"answer after your FIN").unwrap();
    up.shutdown(Shutdown::Write).unwrap();
    let (got, end) = read_to_end_or_error(&mut client);
    end.expect("the upstream's FIN reaches the client as end of file");
    assert_eq!(got, b"answer after your FIN");
    drop((client, up));
    assert_clean_exit(proxy);
}

/// The shut_srv recipe through the proxy. With mismatched markers the
/// server answers "ERROR:no end!" only after it reads the client's FIN,
/// and only over the still-open reply direction: the proxy forwarded the
/// half-close instead of closing both ways. Matching markers get the data
/// twice.
#[test]
fn proxy_forwards_the_half_close_so_the_server_still_answers() {
    let upstream = Server::start("shut_srv", &["server", "--listen", "127.0.0.1:0"]);
    let proxy = proxy(Transport::Tcp, &upstream.at);
    let port = proxy.addr.port().to_string();
    for (marker, want) in [
        ("CLIENT WRONG MARKER", "ERROR:no end!"),
        ("END", "a1234a1234"),
    ] {
        let out = run(&mut python(
            "shut_send_data.py",
            &["127.0.0.1", &port, "a1234", marker],
        ));
        assert!(out.status.success(), "{}", text(&out.stderr));
        assert_eq!(text(&out.stdout), want);
    }
    assert_clean_exit(proxy);
    assert_clean_exit(upstream);
}

/// 8 MiB through the proxy to the `echo` example and back, written by one
/// thread and read by another: every byte comes back in order, then a
/// clean EOF after the client's FIN went all the way round.
fn proxy_large_transfer_arrives_byte_for_byte(from: Transport, to: Transport) {
    let upstream = Server::start("echo", &["--listen", &to.fresh().to_string()]);
    let proxy = proxy(from, &upstream.at);
    let data = pattern(8 << 20, 7);
    let mut client = blocking_connect(&proxy.at);
    let mut writer = client.try_clone().unwrap();
    let sent = data.clone();
    let writing = std::thread::spawn(move || {
        for chunk in sent.chunks(100_003) {
            writer.write_all(chunk).expect("write");
        }
        writer.shutdown(Shutdown::Write).expect("shutdown");
    });
    let (got, end) = read_to_end_or_error(&mut client);
    writing.join().unwrap();
    end.expect("clean EOF after the echo");
    assert_eq!(got.len(), data.len());
    assert!(got == data, "the echo differs from what was sent");
    assert_clean_exit(proxy);
    assert_clean_exit(upstream);
}

/// Backpressure: the upstream accepts but does not read. The proxy stops
/// reading from the client once its queue toward the upstream passes the
/// high-water mark, so the client's writes stall after what the kernel
/// buffers hold (without backpressure the proxy would take all 256 MiB into
/// memory). The proxy's memory stays bounded. Then the upstream reads:
/// every byte the client wrote arrives in order, followed by the client's
/// FIN; and the upstream's FIN reaches the client as a clean EOF.
fn proxy_backpressure_stalls_a_client_until_the_upstream_reads(from: Transport, to: Transport) {
    let listener = Listener::bind(to);
    let proxy = proxy(from, &listener.local_addr());
    let mut client = blocking_connect(&proxy.at);
    client
        .set_write_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    const CAP: u64 = 256 << 20;
    let (mut k, mut off, mut cur) = (0u64, 0usize, block(0));
    let mut written: u64 = 0;
    loop {
        assert!(
            written < CAP,
            "wrote {written} bytes without a stall: no backpressure"
        );
        match client.write(&cur[off..]) {
            Ok(n) => {
                written += n as u64;
                off += n;
                if off == BLOCK {
                    k += 1;
                    (off, cur) = (0, block(k));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break
            }
            Err(e) => panic!("write: {e}"),
        }
    }
    let hwm = status_kib(proxy.child.id(), "VmHWM");
    assert!(
        hwm < 48 * 1024,
        "proxy peak memory {hwm} KiB after the client stalled at {written} bytes"
    );
    client.shutdown(Shutdown::Write).unwrap();

    let mut up = accept(&listener);
    let (got, end) = read_to_end_or_error(&mut up);
    end.expect("the client's FIN, forwarded");
    assert_eq!(got.len() as u64, written);
    for (k, got) in got.chunks(BLOCK).enumerate() {
        assert!(
            got == &block(k as u64)[..got.len()],
            "block {k} differs (of {written} bytes)"
        );
    }
    drop(up); // our FIN, after the client's: the pair ends
    let (rest, end) = read_to_end_or_error(&mut client);
    assert!(rest.is_empty());
    end.expect("the upstream's FIN reaches the client as a clean EOF");
    assert_clean_exit(proxy);
}

/// The upstream resets after reading the request and sending part of a
/// reply (`SO_LINGER` 0 and close on TCP; on a Unix socket, a close with
/// the client's further input unread): the proxy aborts the client side.
/// A TCP client reads ECONNRESET (after none, some or all of the partial
/// reply: an abort drops what the proxy still held) instead of a clean EOF
/// that would pass for a complete reply. A Unix client reads end of file:
/// with no reset on its transport, the proxy cannot tell it the exchange
/// failed.
fn proxy_upstream_reset_resets_the_client(from: Transport, to: Transport) {
    let (proxy, mut client, up) = proxied(from, to, b"hello");
    // Input the upstream leaves unread: a Unix socket's reset needs it.
    client.write_all(b", more").unwrap();
    (&up).write_all(b"partial reply").unwrap();
    up.reset();
    let (got, end) = read_to_end_or_error(&mut client);
    assert_eq!(End::of(&end), from.peer_end_after_abort(false));
    assert!(b"partial reply".starts_with(&got), "{got:?}");
    assert_clean_exit(proxy);
}

/// The other way round: the client resets (on a Unix socket: closes with
/// the upstream's greeting unread), and the proxy aborts the upstream
/// side: a TCP upstream's read fails with ECONNRESET, a Unix upstream
/// reads end of file.
fn proxy_client_reset_resets_the_upstream(from: Transport, to: Transport) {
    let (proxy, client, mut up) = proxied(from, to, b"hi");
    // Input the client leaves unread: a Unix socket's reset needs it.
    up.write_all(b"greeting").unwrap();
    client.reset();
    let (got, end) = read_to_end_or_error(&mut up);
    assert!(got.is_empty());
    assert_eq!(End::of(&end), to.peer_end_after_abort(false));
    assert_clean_exit(proxy);
}

/// Nothing listens upstream: the connect is refused and the proxy resets
/// the client side (on TCP a reset, not an EOF: the client can tell a
/// failed exchange from an empty reply; a Unix client, which cannot be
/// reset, reads end of file). The proxy goes on serving.
fn proxy_upstream_refused_resets_the_client(from: Transport, to: Transport) {
    let dir = TempDir::new("refused");
    let proxy = proxy(from, &refusing_addr(to, &dir));
    for _ in 0..2 {
        let mut client = blocking_connect(&proxy.at);
        let (got, end) = read_to_end_or_error(&mut client);
        assert!(got.is_empty());
        assert_eq!(End::of(&end), from.peer_end_after_abort(false));
    }
    assert_clean_exit(proxy);
}

/// `--help` prints the usage and exits 0; a missing `--upstream` is a
/// usage error (exit 2).
#[test]
fn proxy_help_and_usage() {
    let bin = example_bin("proxy");
    let out = run(Command::new(&bin).arg("--help"));
    assert!(out.status.success());
    assert!(text(&out.stdout).contains("Usage: proxy --upstream ADDR"));
    let out = run(Command::new(&bin).args(["--listen", "127.0.0.1:0"]));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--upstream <ADDR>"));
    assert!(text(&out.stderr).contains("Usage:"));
}
