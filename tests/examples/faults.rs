//! Faults injected from outside the process: the fault proxy (the
//! `faultproxy` binary of `halfclose-tools`) between real std-socket
//! clients and the example servers, each a separate process.
//!
//! For every fault, either every byte the well-behaved peer sent arrives
//! and is verified, or the failure reaches the server as a named reason
//! (the core's `... closed: <reason>` line at debug level on its stderr)
//! and nothing else is affected: a clean connection to the same server,
//! opened before the fault and finished after it, completes. After each
//! test the server (and the proxy) hold exactly the descriptors they held
//! before, none of their sockets is left in CLOSE_WAIT or FIN_WAIT_2, the
//! server's memory is back near its baseline, and both exit cleanly on
//! SIGTERM.
//!
//! Synchronisation is by the processes' own output lines (read with a
//! deadline) and by blocking sockets with timeouts; there are no sleeps.
//!
//! TCP only: the fault proxy speaks TCP, and its faults (a RST at byte N)
//! are TCP's.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::util::{
    example_bin, half_closed_sockets, parse_close, pattern, process_fds, status_kib, Close, Lines,
    Server, Watchdog, DEADLINE,
};

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

// ---------------------------------------------------------------- processes

/// A running example server with `RUST_LOG=debug`, the core's close lines
/// read from its stderr.
struct Proc {
    server: Server,
    addr: SocketAddr,
    /// The close lines among the stderr lines read so far.
    closes: Vec<Close>,
    /// How many stderr lines `closes` accounts for.
    parsed: usize,
}

impl Proc {
    /// Start example `name` and read its first line, `listening on IP:PORT`.
    fn start(name: &str, args: &[&str]) -> Proc {
        let server = Server::start_logged(name, args, "debug");
        Proc {
            addr: server.addr,
            server,
            closes: Vec::new(),
            parsed: 0,
        }
    }

    fn name(&self) -> &str {
        &self.server.name
    }

    fn log(&mut self) -> &mut Lines {
        self.server.log.as_mut().expect("stderr captured")
    }

    /// Wait until `n` connections have closed since the start, within
    /// [`DEADLINE`]; all their close lines.
    #[track_caller]
    fn wait_closes(&mut self, n: usize) -> Vec<Close> {
        let deadline = Instant::now() + DEADLINE;
        loop {
            let seen = &self.server.log.as_ref().expect("stderr captured").seen;
            self.closes
                .extend(seen[self.parsed..].iter().filter_map(|l| parse_close(l)));
            self.parsed = seen.len();
            if self.closes.len() >= n {
                return self.closes.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if self.log().find(" closed: ", left).is_none() {
                let name = self.name().to_string();
                let lines = self.log().received();
                let tail = &lines[lines.len().saturating_sub(40)..];
                panic!(
                    "{}: waiting for {n} closed connections: timed out; last stderr lines:\n{}",
                    name,
                    tail.join("\n")
                );
            }
        }
    }

    fn fds(&self) -> usize {
        process_fds(self.server.child.id())
    }

    /// A `/proc/PID/status` field in KiB (`VmRSS`, `VmHWM`).
    fn vm_kib(&self, field: &str) -> u64 {
        status_kib(self.server.child.id(), field)
    }

    /// SIGTERM, then the exit status (bounded): every example drains and
    /// exits 0. Its whole stderr.
    #[track_caller]
    fn terminate(self) -> Vec<String> {
        let name = self.name().to_string();
        self.server.signal("-TERM");
        let (status, log) = self.server.exit();
        assert!(status.success(), "{name} exited with {status}");
        log
    }
}

/// The fault proxy as a slowloris client against `args`' upstream: its
/// stdout lines, its exit.
struct Slowloris {
    child: Child,
    out: Lines,
}

impl Slowloris {
    fn start(args: &[&str]) -> Slowloris {
        let mut child = Command::new(example_bin("faultproxy"))
            .arg("--slowloris")
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn faultproxy");
        let out = Lines::new("faultproxy", child.stdout.take().unwrap());
        Slowloris { child, out }
    }

    /// The next stdout line, within [`DEADLINE`].
    #[track_caller]
    fn out_line(&mut self) -> String {
        self.out.next_line(DEADLINE).unwrap_or_else(|| {
            panic!(
                "slowloris: no stdout line within {DEADLINE:?}; so far: {:?}",
                self.out.seen
            )
        })
    }

    /// Wait for the process to exit, bounded by [`DEADLINE`].
    #[track_caller]
    fn wait_exit(&mut self) -> ExitStatus {
        let dog = Watchdog::new(self.child.id(), DEADLINE);
        let status = self.child.wait().expect("wait");
        assert!(!dog.disarm(), "slowloris did not exit within {DEADLINE:?}");
        status
    }
}

impl Drop for Slowloris {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a server process holds when idle, taken after a first exchange (so
/// that everything it sets up after its first line exists).
#[derive(Clone, Copy, Debug)]
struct Baseline {
    fds: usize,
    rss_kib: u64,
    hwm_kib: u64,
}

fn baseline(p: &Proc) -> Baseline {
    Baseline {
        fds: p.fds(),
        rss_kib: p.vm_kib("VmRSS"),
        hwm_kib: p.vm_kib("VmHWM"),
    }
}

/// After every connection closed: no descriptor leaked, no socket stuck
/// half-closed, memory back near the baseline.
#[track_caller]
fn assert_settled(p: &Proc, base: Baseline) {
    assert_eq!(p.fds(), base.fds, "{}: descriptors leaked", p.name());
    let stuck = half_closed_sockets(p.addr);
    assert!(
        stuck.is_empty(),
        "{}: sockets in CLOSE_WAIT/FIN_WAIT_2:\n{}",
        p.name(),
        stuck.join("\n")
    );
    let rss = p.vm_kib("VmRSS");
    assert!(
        rss <= base.rss_kib + 4 * 1024,
        "{}: VmRSS {rss} KiB, baseline {} KiB",
        p.name(),
        base.rss_kib
    );
}

// ---------------------------------------------------------------- clients

/// How a client's read side ended.
#[derive(Clone, Debug, PartialEq, Eq)]
enum End {
    Eof,
    Err(io::ErrorKind),
}

/// What one client exchange saw.
#[derive(Debug)]
struct Exchange {
    received: Vec<u8>,
    end: End,
    /// Bytes the kernel accepted.
    sent: usize,
    write_error: Option<io::ErrorKind>,
    elapsed: Duration,
}

impl Exchange {
    /// Whether the connection was reset. A socket reports `ECONNRESET`
    /// once, to whichever call asks first (V2): when the writer gets it,
    /// the reader then sees a plain end of stream.
    fn was_reset(&self) -> bool {
        self.end == End::Err(io::ErrorKind::ConnectionReset)
            || self.write_error == Some(io::ErrorKind::ConnectionReset)
    }

    /// A clean end: EOF, and every write accepted.
    fn clean_eof(&self) -> bool {
        self.end == End::Eof && self.write_error.is_none()
    }

    fn ending(&self) -> (End, Option<io::ErrorKind>) {
        (self.end.clone(), self.write_error)
    }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    s.set_write_timeout(Some(DEADLINE)).unwrap();
    s
}

/// Send `payload` (then FIN if `half_close`) while reading until EOF or an
/// error; a writer thread keeps the two directions independent.
fn exchange_on(sock: TcpStream, payload: &[u8], half_close: bool) -> Exchange {
    let start = Instant::now();
    let mut writer = sock.try_clone().unwrap();
    std::thread::scope(|s| {
        let w = s.spawn(move || {
            let mut sent = 0;
            for chunk in payload.chunks(64 * KIB) {
                match writer.write_all(chunk) {
                    Ok(()) => sent += chunk.len(),
                    Err(e) => return (sent, Some(e.kind())),
                }
            }
            if half_close {
                if let Err(e) = writer.shutdown(Shutdown::Write) {
                    return (sent, Some(e.kind()));
                }
            }
            (sent, None)
        });
        let mut reader = sock;
        let mut received = Vec::new();
        let mut buf = vec![0u8; 64 * KIB];
        let end = loop {
            match reader.read(&mut buf) {
                Ok(0) => break End::Eof,
                Ok(n) => received.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break End::Err(e.kind()),
            }
        };
        if end != End::Eof {
            // Unblock a writer stuck on a full window.
            let _ = reader.shutdown(Shutdown::Both);
        }
        let (sent, write_error) = w.join().unwrap();
        Exchange {
            received,
            end,
            sent,
            write_error,
            elapsed: start.elapsed(),
        }
    })
}

fn exchange(addr: SocketAddr, payload: &[u8], half_close: bool) -> Exchange {
    exchange_on(connect(addr), payload, half_close)
}

/// A clean connection opened before a fault and finished after it: it must
/// not notice.
struct Clean {
    sock: TcpStream,
    rest: Vec<u8>,
    expected: Vec<u8>,
}

impl Clean {
    fn start(addr: SocketAddr, first: &[u8], rest: &[u8], expected: &[u8]) -> Clean {
        let mut sock = connect(addr);
        sock.write_all(first).unwrap();
        Clean {
            sock,
            rest: rest.to_vec(),
            expected: expected.to_vec(),
        }
    }

    /// Echo: the payload in two halves, expecting it back.
    fn echo(addr: SocketAddr, seed: u64) -> Clean {
        let p = pattern(64 * KIB, seed);
        Clean::start(addr, &p[..8 * KIB], &p[8 * KIB..], &p)
    }

    #[track_caller]
    fn finish(self) {
        let x = exchange_on(self.sock, &self.rest, true);
        assert!(
            x.clean_eof(),
            "the clean connection ended badly: {:?}",
            x.ending()
        );
        assert!(
            x.received == self.expected,
            "the clean connection got {} bytes, not the {} expected",
            x.received.len(),
            self.expected.len()
        );
    }
}

/// Whether `got` is a prefix of `of`.
fn is_prefix(got: &[u8], of: &[u8]) -> bool {
    got.len() <= of.len() && got == &of[..got.len()]
}

// ---------------------------------------------------------------- rigs

/// An echo server with a fault proxy in front of it.
struct Rig {
    server: Proc,
    proxy: Proc,
    server_base: Baseline,
    proxy_fds: usize,
    /// Connections the server closed before the proxy's first.
    warm: usize,
}

/// Start `server` (args after `--listen 127.0.0.1:0`), run `warm_up`
/// against it directly, then start the fault proxy with `fault` under
/// `seed`.
fn rig(
    server: &str,
    server_args: &[&str],
    fault: &str,
    seed: &str,
    warm_up: impl FnOnce(SocketAddr),
) -> Rig {
    let mut args = server_args.to_vec();
    args.extend(["--listen", "127.0.0.1:0"]);
    let mut s = Proc::start(server, &args);
    warm_up(s.addr);
    s.wait_closes(1);
    let server_base = baseline(&s);
    let up = s.addr.to_string();
    let proxy = Proc::start(
        "faultproxy",
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &up,
            "--fault",
            fault,
            "--seed",
            seed,
        ],
    );
    let proxy_fds = proxy.fds();
    Rig {
        server: s,
        proxy,
        server_base,
        proxy_fds,
        warm: 1,
    }
}

fn echo_warm_up(addr: SocketAddr) {
    let p = pattern(4 * KIB, 99);
    let x = exchange(addr, &p, true);
    assert_eq!(
        (x.end, x.received == p),
        (End::Eof, true),
        "warm-up exchange"
    );
}

fn echo_rig(fault: &str) -> Rig {
    rig("echo", &[], fault, "1", echo_warm_up)
}

impl Rig {
    /// Wait for `n` server closes after the warm-up; their lines.
    #[track_caller]
    fn server_closes(&mut self, n: usize) -> Vec<Close> {
        let all = self.server.wait_closes(self.warm + n);
        all[self.warm..].to_vec()
    }

    /// Every connection done: wait for the proxy's `pairs` pairs (two
    /// closes each), check both processes settled, stop them with SIGTERM,
    /// and return the proxy's summary line.
    #[track_caller]
    fn finish(mut self, pairs: usize) -> String {
        self.proxy.wait_closes(2 * pairs);
        assert_settled(&self.server, self.server_base);
        assert_eq!(
            self.proxy.fds(),
            self.proxy_fds,
            "faultproxy: descriptors leaked"
        );
        let stuck = half_closed_sockets(self.proxy.addr);
        assert!(
            stuck.is_empty(),
            "faultproxy: stuck sockets:\n{}",
            stuck.join("\n")
        );
        let summary = self
            .proxy
            .terminate()
            .into_iter()
            .find(|l| l.contains("stopped:"))
            .unwrap_or_default();
        self.server.terminate();
        summary
    }
}

/// An echo rig with `fault`, a clean connection (`clean_seed`) opened
/// beside it, and one exchange of `payload` through the proxy.
fn echo_through(
    fault: &str,
    clean_seed: u64,
    payload: &[u8],
    half_close: bool,
) -> (Rig, Clean, Exchange) {
    let rig = echo_rig(fault);
    let clean = Clean::echo(rig.server.addr, clean_seed);
    let x = exchange(rig.proxy.addr, payload, half_close);
    (rig, clean, x)
}

/// A clean end, and exactly `expected` received.
#[track_caller]
fn assert_echoed(x: &Exchange, expected: &[u8]) {
    assert!(x.clean_eof(), "{:?}", x.ending());
    assert!(
        x.received == expected,
        "{} bytes received, {} expected",
        x.received.len(),
        expected.len()
    );
}

#[track_caller]
fn assert_all_closed_by_peer(closes: &[Close]) {
    assert!(
        closes.iter().all(|c| c.reason == "closed by peer"),
        "{closes:?}"
    );
}

/// The faulty connection done: finish the clean one, wait for both server
/// closes and the proxy's pair, and settle ([`Rig::finish`]).
#[track_caller]
fn finish_one(mut rig: Rig, clean: Clean) -> String {
    clean.finish();
    rig.server_closes(2);
    rig.finish(1)
}

/// The number in `line` just before `word` ("... 12 segments ...").
fn count_before(line: &str, word: &str) -> u64 {
    let words: Vec<&str> = line.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    words
        .windows(2)
        .find(|w| w[1] == word)
        .and_then(|w| w[0].parse().ok())
        .unwrap_or_else(|| panic!("no count of {word} in {line:?}"))
}

// ---------------------------------------------------------------- the proxy itself

/// Plans depend on the seed and the connection's accept order only: the
/// same seed lists the same plans, another seed others; `random` covers
/// every kind of fault; the text form parses back to itself; a bad spec is
/// refused with a message.
#[test]
fn r0_fault_plans_are_deterministic_under_a_seed() {
    let plans = |spec: &str, seed: &str| -> String {
        let out = Command::new(example_bin("faultproxy"))
            .args(["--print-plans", "64", "--fault", spec, "--seed", seed])
            .output()
            .expect("run faultproxy");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let a = plans("random", "7");
    assert_eq!(a, plans("random", "7"), "same seed, same plans");
    assert_ne!(a, plans("random", "8"), "another seed, other plans");
    for kind in [
        "none",
        "split:1",
        "split:random",
        "delay:",
        "stall:",
        "rst:",
        "fin:",
        "noread:",
    ] {
        assert!(a.contains(kind), "64 random plans include no {kind}:\n{a}");
    }
    // Round-robin over a list, each entry printed in canonical form.
    let spec = "split:1+delay:5ms,stall:c2s:500ms@100+noread:s2c:1s,rst:both:5+stall:s2c:1s,split:7:c2s+split:random:s2c";
    let listed = plans(spec, "1");
    let first: Vec<&str> = listed
        .lines()
        .take(4)
        .map(|l| l.split_once(": ").unwrap().1)
        .collect();
    assert_eq!(
        first,
        [
            "split:1+delay:5ms",
            "stall:c2s:500ms@100+noread:s2c:1000ms",
            "stall:s2c:1000ms@0+rst:both:5",
            "split:7:c2s+split:random:s2c"
        ]
    );
    assert_eq!(listed.lines().nth(4).unwrap(), "4: split:1+delay:5ms");
    let reparsed = plans(&first.join(","), "1");
    assert_eq!(
        reparsed.lines().take(4).collect::<Vec<_>>(),
        listed.lines().take(4).collect::<Vec<_>>()
    );
    let bad = Command::new(example_bin("faultproxy"))
        .args(["--print-plans", "1", "--fault", "rst:sideways:10"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown direction"));
}

// ---------------------------------------------------------------- echo

/// No fault: the proxy passes 4 MiB each way and each FIN separately (the
/// client half-closes, the server sees EOF after every byte, answers in
/// full and closes, and the client reads a clean EOF). Without the FIN
/// passed on, the server would wait for more input forever.
#[test]
fn r1_clean_proxy_passes_every_byte_and_each_fin() {
    let p = pattern(4 * MIB, 11);
    let (mut rig, clean, x) = echo_through("none", 1, &p, true);
    assert!(x.clean_eof(), "{:?}", x.ending());
    assert!(
        x.received == p,
        "echo through the proxy: {} of {} bytes",
        x.received.len(),
        p.len()
    );
    clean.finish();
    let closes = rig.server_closes(2);
    let c = closes
        .iter()
        .find(|c| c.bytes_in == p.len() as u64)
        .expect("the proxied connection");
    assert_eq!(
        (c.reason.as_str(), c.bytes_out, c.dropped),
        ("closed by peer", p.len() as u64, 0)
    );
    rig.finish(1);
}

/// `split:1`: every write is cut into 1-byte segments, one per loop turn,
/// both ways (the proxy counts them); the echo is still complete.
#[test]
fn r2_one_byte_segments_lose_nothing() {
    let p = pattern(1500, 12);
    let (mut rig, clean, x) = echo_through("split:1", 2, &p, true);
    assert_echoed(&x, &p);
    clean.finish();
    let closes = rig.server_closes(2);
    assert_all_closed_by_peer(&closes);
    let summary = rig.finish(1);
    assert_eq!(
        count_before(&summary, "segments"),
        2 * p.len() as u64,
        "{summary}"
    );
}

/// `split:random+delay:2ms`: random segments paced 2 ms apart; the echo is
/// complete, and pacing made it take at least one delay per segment.
#[test]
fn r2_random_segments_with_delay_lose_nothing() {
    let p = pattern(24 * KIB, 13);
    let (rig, clean, x) = echo_through("split:random+delay:2ms", 3, &p, true);
    assert_echoed(&x, &p);
    let summary = finish_one(rig, clean);
    let segments = count_before(&summary, "segments");
    assert!(segments >= 2 * (p.len() / 1460) as u64, "{summary}");
    assert!(
        x.elapsed >= Duration::from_millis(2) * (segments as u32 / 2),
        "{:?} for {segments} segments",
        x.elapsed
    );
}

/// `stall:c2s:400ms@1000`: after 1000 bytes nothing moves toward the
/// server for 400 ms (the clean connection is served meanwhile); then the
/// rest arrives and the echo is complete.
#[test]
fn r3_stalled_direction_resumes_intact() {
    let p = pattern(16 * KIB, 14);
    let (mut rig, clean, x) = echo_through("stall:c2s:400ms@1000", 4, &p, true);
    assert_echoed(&x, &p);
    assert!(
        x.elapsed >= Duration::from_millis(400),
        "no stall: {:?}",
        x.elapsed
    );
    clean.finish();
    let closes = rig.server_closes(2);
    assert_all_closed_by_peer(&closes);
    let summary = rig.finish(1);
    assert_eq!(count_before(&summary, "stalls"), 1);
}

/// `rst:c2s:1000`: a RST after 1000 bytes toward the server. The server
/// ends the connection as `reset by peer` having read at most those 1000
/// bytes; the client reads a prefix of its echo and `ECONNRESET`, never a
/// clean EOF that would pass a cut stream for a whole one.
#[test]
fn r4_reset_toward_the_server_is_named() {
    let p = pattern(64 * KIB, 15);
    let (mut rig, clean, x) = echo_through("rst:c2s:1000", 5, &p, true);
    assert!(x.was_reset(), "{:?}", x.ending());
    assert!(x.received.len() <= 1000 && is_prefix(&x.received, &p));
    let closes = rig.server_closes(1);
    assert_eq!(closes[0].reason, "reset by peer", "{closes:?}");
    assert!(closes[0].bytes_in <= 1000, "{closes:?}");
    finish_one(rig, clean);
}

/// `rst:s2c:1000`: a RST after 1000 echoed bytes toward the client, while
/// the client is still sending (no FIN yet): the client reads exactly a
/// prefix of at most 1000 bytes and `ECONNRESET`; the server, still
/// waiting for input, ends as `reset by peer`.
#[test]
fn r4_reset_toward_the_client_is_named() {
    let p = pattern(8 * KIB, 16);
    let (mut rig, clean, x) = echo_through("rst:s2c:1000", 6, &p, false);
    assert!(x.was_reset(), "{:?}", x.ending());
    assert!(x.received.len() <= 1000 && is_prefix(&x.received, &p));
    let closes = rig.server_closes(1);
    assert_eq!(closes[0].reason, "reset by peer", "{closes:?}");
    finish_one(rig, clean);
}

/// `fin:c2s:1000`: the server gets a FIN after exactly 1000 bytes (the
/// client's other bytes are discarded by the proxy): it echoes those 1000
/// bytes and closes (`closed by peer`, in 1000, out 1000), and the client
/// reads exactly them and a clean EOF.
#[test]
fn r5_early_fin_toward_the_server() {
    let p = pattern(8 * KIB, 17);
    let (mut rig, clean, x) = echo_through("fin:c2s:1000", 7, &p, true);
    assert_echoed(&x, &p[..1000]);
    let closes = rig.server_closes(1);
    let c = &closes[0];
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("closed by peer", 1000, 1000)
    );
    let summary = finish_one(rig, clean);
    assert_eq!(count_before(&summary, "early"), 1, "{summary}");
}

/// `fin:s2c:1000`: the client gets EOF after exactly 1000 echoed bytes;
/// the server is not disturbed: it reads everything and closes after the
/// client's FIN (`closed by peer`, in and out the whole payload).
#[test]
fn r5_early_fin_toward_the_client() {
    let p = pattern(8 * KIB, 18);
    let (mut rig, clean, x) = echo_through("fin:s2c:1000", 8, &p, true);
    assert_echoed(&x, &p[..1000]);
    let closes = rig.server_closes(1);
    let n = p.len() as u64;
    let c = &closes[0];
    assert_eq!(
        (c.reason.as_str(), c.bytes_in, c.bytes_out),
        ("closed by peer", n, n)
    );
    finish_one(rig, clean);
}

/// `noread:s2c:1500ms`: the proxy never reads the server's echo while the
/// client pushes 64 MiB. Backpressure holds all the way: the server stops
/// reading once its queue passes the high-water mark (it read far less
/// than was sent), its peak memory stays within a few MiB of its baseline,
/// and so does the proxy's. When the fault runs out the proxy resets both
/// sides: the server ends as `reset by peer` with its queued echo counted
/// as dropped, and the client's write fails.
#[test]
fn r6_never_reading_the_server_keeps_memory_bounded() {
    let mut rig = echo_rig("noread:s2c:1500ms");
    let clean = Clean::echo(rig.server.addr, 9);
    let proxy_hwm0 = rig.proxy.vm_kib("VmHWM").max(rig.proxy.vm_kib("VmRSS"));
    let p = vec![0x5a; 64 * MIB];
    let x = exchange(rig.proxy.addr, &p, false);
    assert!(x.was_reset(), "{:?}", x.ending());
    assert!(x.received.is_empty());
    assert!(
        x.write_error.is_some() && x.sent < p.len(),
        "the client was never held back"
    );
    let closes = rig.server_closes(1);
    let c = &closes[0];
    assert_eq!(c.reason, "reset by peer", "{closes:?}");
    assert!(
        c.bytes_in < x.sent as u64 && c.bytes_in < 32 * MIB as u64,
        "the server read {} bytes",
        c.bytes_in
    );
    assert!(
        c.dropped > 0,
        "the server's queue was not holding the echo: {c:?}"
    );
    let hwm = rig.server.vm_kib("VmHWM");
    assert!(
        hwm < rig.server_base.hwm_kib.max(rig.server_base.rss_kib) + 8 * 1024,
        "server VmHWM {hwm} KiB, base {:?}",
        rig.server_base
    );
    let phwm = rig.proxy.vm_kib("VmHWM");
    assert!(
        phwm < proxy_hwm0 + 8 * 1024,
        "proxy VmHWM {phwm} KiB, base {proxy_hwm0} KiB"
    );
    let summary = finish_one(rig, clean);
    assert_eq!(count_before(&summary, "noreads"), 1, "{summary}");
}

/// `noread:c2s:500ms`: the proxy never reads what the client sends; the
/// server sees a connection with no input at all, then `reset by peer`.
#[test]
fn r6_never_reading_the_client_reaches_the_server_as_reset() {
    let mut rig = echo_rig("noread:c2s:500ms");
    let clean = Clean::echo(rig.server.addr, 10);
    let p = vec![0xa5; 16 * MIB];
    let x = exchange(rig.proxy.addr, &p, true);
    assert!(x.was_reset(), "{:?}", x.ending());
    assert!(x.received.is_empty());
    assert!(x.sent < p.len(), "the client was never held back");
    let closes = rig.server_closes(1);
    assert_eq!(
        (closes[0].reason.as_str(), closes[0].bytes_in),
        ("reset by peer", 0),
        "{closes:?}"
    );
    finish_one(rig, clean);
}

/// Slowloris against echo, which has no idle timeout of its own: 30
/// connections open and go silent; a clean connection is served while they
/// hang; when the slowloris client lets go after 300 ms they all close
/// gracefully and the server is back to its baseline descriptors.
#[test]
fn r7_silent_connections_do_not_block_echo_and_are_released() {
    let mut server = Proc::start("echo", &["--listen", "127.0.0.1:0"]);
    echo_warm_up(server.addr);
    server.wait_closes(1);
    let base = baseline(&server);
    let target = server.addr.to_string();
    let mut slow = Slowloris::start(&["30", "--upstream", &target, "--hold", "300ms"]);
    assert_eq!(slow.out_line(), "slowloris: 30 connected");
    let clean = Clean::echo(server.addr, 11);
    clean.finish();
    assert_eq!(
        slow.out_line(),
        "slowloris: 30 connections: 0 closed by server, 0 reset, 30 held, 0 failed"
    );
    assert!(slow.wait_exit().success());
    let closes = server.wait_closes(1 + 31);
    assert!(
        closes[1..].iter().all(|c| c.reason == "closed by peer"),
        "{closes:?}"
    );
    assert_settled(&server, base);
    server.terminate();
}

// ---------------------------------------------------------------- http_server

fn http_get(close: bool) -> Vec<u8> {
    let connection = if close { "Connection: close\r\n" } else { "" };
    format!("GET / HTTP/1.1\r\nHost: test\r\n{connection}\r\n").into_bytes()
}

/// A whole `GET /` exchange with `Connection: close`: status line, the
/// hello body, EOF.
#[track_caller]
fn assert_hello(x: &Exchange) {
    let text = String::from_utf8_lossy(&x.received);
    assert!(x.clean_eof(), "{:?}: {text}", x.ending());
    assert!(
        text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("\r\n\r\nhello from halfclose\n"),
        "{text:?}"
    );
}

fn http_warm_up(addr: SocketAddr) {
    assert_hello(&exchange(addr, &http_get(true), false));
}

/// Slowloris against the HTTP server (idle timeout 1 s): 20 connections
/// send half a request line and go silent. A legitimate request is answered
/// while they hang; the server closes every silent one by its idle timeout
/// (`timed out (idle timeout)`, gracefully: the slowloris client sees the server's
/// FIN, not a reset) and is back to its baseline descriptors.
#[test]
fn r7_slowloris_is_closed_by_the_http_idle_timeout() {
    let mut server = Proc::start(
        "http_server",
        &["--listen", "127.0.0.1:0", "--idle-timeout", "1"],
    );
    http_warm_up(server.addr);
    server.wait_closes(1);
    let base = baseline(&server);
    let target = server.addr.to_string();
    let mut slow = Slowloris::start(&[
        "20",
        "--upstream",
        &target,
        "--send",
        "GET / HTTP/1.1\r\n",
        "--hold",
        "15s",
    ]);
    assert_eq!(slow.out_line(), "slowloris: 20 connected");
    let served = Instant::now();
    assert_hello(&exchange(server.addr, &http_get(true), false));
    assert!(
        served.elapsed() < Duration::from_secs(1),
        "the legitimate client waited"
    );
    let summary = slow.out_line();
    assert!(slow.wait_exit().success());
    let closes = server.wait_closes(1 + 21);
    let idle = closes
        .iter()
        .filter(|c| c.reason == "timed out (idle timeout)")
        .count();
    assert_eq!(idle, 20, "{closes:?}");
    assert_eq!(
        summary,
        "slowloris: 20 connections: 20 closed by server, 0 reset, 0 held, 0 failed"
    );
    assert_settled(&server, base);
    server.terminate();
}

/// `split:1` then `rst:c2s:20` against the HTTP server: a request dribbled
/// one byte at a time is parsed and answered in full; a request cut by a
/// RST after 20 bytes ends on the server as `reset by peer`, and the client
/// sees `ECONNRESET`.
#[test]
fn r8_http_server_under_split_and_reset() {
    let mut rig = rig("http_server", &[], "split:1,rst:c2s:20", "1", http_warm_up);
    let clean = Clean::start(
        rig.server.addr,
        b"GET / HTTP/1.1\r\nHost: x\r\n",
        b"Connection: close\r\n\r\n",
        b"",
    );
    let x = exchange(rig.proxy.addr, &http_get(true), false);
    assert_hello(&x);
    let x = exchange(rig.proxy.addr, &http_get(true), false);
    assert!(x.was_reset(), "{:?}", x.ending());
    let closes = rig.server_closes(2);
    let reset = closes
        .iter()
        .find(|c| c.reason == "reset by peer")
        .expect("a reset connection");
    assert!(reset.bytes_in <= 20, "{reset:?}");
    // The clean request, finished after both.
    let x = exchange_on(clean.sock, &clean.rest, false);
    assert_hello(&x);
    rig.server_closes(3);
    rig.finish(2);
}

// ---------------------------------------------------------------- tcp_deadlock, shut_srv

/// `tcp_deadlock` (the uppercasing server that answers after the client's
/// FIN) through `split:random`, then `fin:c2s:1000`: the whole reply
/// arrives uppercased; then an early FIN makes the server answer exactly
/// the 1000 bytes it got and close.
#[test]
fn r9_tcp_deadlock_server_under_split_and_early_fin() {
    let text: Vec<u8> = b"capitalize this!".repeat(4096);
    let upper = text.to_ascii_uppercase();
    let mut rig = rig(
        "tcp_deadlock",
        &["server"],
        "split:random,fin:c2s:1000",
        "1",
        |addr| {
            let x = exchange(addr, b"warm up", true);
            assert_eq!(x.received, b"WARM UP");
        },
    );
    let clean = Clean::start(rig.server.addr, &text[..100], &text[100..], &upper);
    let x = exchange(rig.proxy.addr, &text, true);
    assert!(x.clean_eof(), "{:?}", x.ending());
    assert!(
        x.received == upper,
        "{} of {} bytes",
        x.received.len(),
        upper.len()
    );
    let x = exchange(rig.proxy.addr, &text[..8 * KIB], true);
    assert!(x.clean_eof(), "{:?}", x.ending());
    assert!(x.received == upper[..1000]);
    let closes = rig.server_closes(2);
    assert!(closes.iter().any(|c| (c.reason.as_str(), c.bytes_in, c.bytes_out) == ("closed by peer", 1000, 1000)), "{closes:?}");
    clean.finish();
    rig.server_closes(3);
    rig.finish(2);
}

/// `shut_srv` (a request ends with `END`; a FIN before it is answered
/// `ERROR:no end!` on the still-open direction) through `split:1`, then
/// `fin:c2s:5`: the marker is found across 1-byte segments; then the proxy
/// cuts the request before the marker with a FIN, and the half-close
/// travels through the proxy both ways: the server still replies on its
/// open direction and the client reads the error and a clean EOF.
#[test]
fn r9_shut_srv_marker_split_and_half_close_through_the_proxy() {
    let mut rig = rig("shut_srv", &["server"], "split:1,fin:c2s:5", "1", |addr| {
        let x = exchange(addr, b"wEND", true);
        assert_eq!(x.received, b"ww");
    });
    let clean = Clean::start(
        rig.server.addr,
        b"hello",
        b"worldEND",
        b"helloworldhelloworld",
    );
    let x = exchange(rig.proxy.addr, b"a1234END", true);
    assert_eq!(
        (x.end.clone(), x.received.as_slice()),
        (End::Eof, &b"a1234a1234"[..])
    );
    let x = exchange(rig.proxy.addr, b"a1234END", true);
    assert_eq!(
        (x.end.clone(), x.received.as_slice()),
        (End::Eof, &b"ERROR:no end!"[..])
    );
    let closes = rig.server_closes(2);
    assert!(
        closes
            .iter()
            .all(|c| c.reason == "closed by peer" || c.reason == "closed locally"),
        "{closes:?}"
    );
    // The cut request: 5 bytes in, the 13-byte error out, after our FIN
    // came second (the client's, passed on early, came first).
    assert!(
        closes
            .iter()
            .any(|c| (c.reason.as_str(), c.bytes_in, c.bytes_out) == ("closed by peer", 5, 13)),
        "{closes:?}"
    );
    clean.finish();
    rig.server_closes(3);
    rig.finish(2);
}

// ---------------------------------------------------------------- proxy example

/// Faults through a second proxy: client -> faultproxy -> `proxy` example
/// -> echo. A split stream arrives whole; an early FIN crosses the proxy
/// as a half-close (echo reads exactly 1000 bytes and EOF, the client gets
/// them back and EOF); a RST makes the proxy example reset its upstream, so
/// echo ends as `reset by peer`. The proxy example leaks nothing either.
#[test]
fn r9_proxy_example_carries_faults_faithfully() {
    let mut echo = Proc::start("echo", &["--listen", "127.0.0.1:0"]);
    let up = echo.addr.to_string();
    let mut middle = Proc::start("proxy", &["--listen", "127.0.0.1:0", "--upstream", &up]);
    echo_warm_up(middle.addr);
    middle.wait_closes(2);
    echo.wait_closes(1);
    let middle_base = baseline(&middle);
    let echo_base = baseline(&echo);
    let mid = middle.addr.to_string();
    let mut fp = Proc::start(
        "faultproxy",
        &[
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &mid,
            "--fault",
            "split:random,fin:c2s:1000,rst:c2s:1000",
        ],
    );
    let fp_fds = fp.fds();
    let clean = Clean::echo(middle.addr, 12);

    let p = pattern(64 * KIB, 19);
    let x = exchange(fp.addr, &p, true);
    assert_echoed(&x, &p);
    let x = exchange(fp.addr, &p, true);
    assert_echoed(&x, &p[..1000]);
    let closes = echo.wait_closes(3);
    assert_eq!(
        (closes[2].reason.as_str(), closes[2].bytes_in),
        ("closed by peer", 1000),
        "{closes:?}"
    );
    let x = exchange(fp.addr, &p, true);
    assert!(x.was_reset(), "{:?}", x.ending());
    let closes = echo.wait_closes(4);
    assert_eq!(closes[3].reason, "reset by peer", "{closes:?}");
    assert!(closes[3].bytes_in <= 1000);
    clean.finish();

    echo.wait_closes(5);
    middle.wait_closes(2 + 2 * 4);
    fp.wait_closes(2 * 3);
    assert_settled(&echo, echo_base);
    assert_settled(&middle, middle_base);
    assert_eq!(fp.fds(), fp_fds, "faultproxy: descriptors leaked");
    fp.terminate();
    middle.terminate();
    echo.terminate();
}

// ---------------------------------------------------------------- random

/// `random` under a seed: 12 connections, each with the fault the seed
/// gives its accept order (listed by `--print-plans`; seed 2345 gives every
/// kind of fault in both directions), run at the same time. Each ends as
/// its plan says: complete and verified, or cut at the planned byte with a
/// clean EOF (`fin`), or `ECONNRESET` with a verified prefix (`rst`,
/// `noread`). The server's reasons add up the same way: a reset for every
/// fault that cuts the client's direction, at most one for every reset.
#[test]
fn r10_random_faults_each_connection_as_planned() {
    const N: usize = 12;
    let out = Command::new(example_bin("faultproxy"))
        .args([
            "--print-plans",
            &N.to_string(),
            "--fault",
            "random",
            "--seed",
            "2345",
        ])
        .output()
        .unwrap();
    let listing = String::from_utf8(out.stdout).unwrap();
    let plans: Vec<String> = listing
        .lines()
        .map(|l| l.split_once(": ").unwrap().1.to_string())
        .collect();
    let mut rig = rig("echo", &[], "random", "2345", echo_warm_up);
    let clean = Clean::echo(rig.server.addr, 13);
    let payloads: Vec<Vec<u8>> = (0..N).map(|k| pattern(6 * KIB, 100 + k as u64)).collect();
    // Connected one after the other, so accept order is k.
    let socks: Vec<TcpStream> = (0..N).map(|_| connect(rig.proxy.addr)).collect();
    let results: Vec<Exchange> = std::thread::scope(|s| {
        let handles: Vec<_> = socks
            .into_iter()
            .zip(&payloads)
            .map(|(sock, p)| s.spawn(move || exchange_on(sock, p, true)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    // Resets the client sees, and those that cut the client's direction.
    let (mut resets, mut c2s_resets) = (0, 0);
    for (k, (x, p)) in results.iter().zip(&payloads).enumerate() {
        let plan = &plans[k];
        let at = |kind: &str| -> Option<(String, usize)> {
            plan.split('+').find_map(|f| {
                let parts: Vec<&str> = f.split(':').collect();
                (parts[0] == kind).then(|| (parts[1].to_string(), parts[2].parse().unwrap()))
            })
        };
        assert!(
            is_prefix(&x.received, p),
            "connection {k} ({plan}): bytes altered"
        );
        if plan.starts_with("noread") {
            assert!(
                x.was_reset() && x.received.is_empty(),
                "connection {k} ({plan}): {:?}",
                x.ending()
            );
            resets += 1;
            c2s_resets += usize::from(plan.starts_with("noread:c2s"));
        } else if let Some((dir, n)) = at("rst").filter(|(_, n)| *n < p.len()) {
            assert!(
                x.was_reset() && x.received.len() <= n,
                "connection {k} ({plan}): {:?}",
                x.ending()
            );
            resets += 1;
            c2s_resets += usize::from(dir == "c2s");
        } else if let Some((_, n)) = at("fin").filter(|(_, n)| *n < p.len()) {
            assert!(
                x.clean_eof() && x.received.len() == n,
                "connection {k} ({plan}): {:?} after {} bytes",
                x.ending(),
                x.received.len()
            );
        } else {
            assert!(
                x.clean_eof() && x.received.len() == p.len(),
                "connection {k} ({plan}): {:?} after {} bytes",
                x.ending(),
                x.received.len()
            );
        }
    }
    clean.finish();
    let closes = rig.server_closes(N + 1);
    let server_resets = closes
        .iter()
        .filter(|c| c.reason == "reset by peer")
        .count();
    assert!(
        c2s_resets > 0 && resets > c2s_resets,
        "seed 2345 lost its variety: {plans:?}"
    );
    assert!(
        (c2s_resets..=resets).contains(&server_resets),
        "{server_resets} resets: {closes:?}"
    );
    assert!(
        closes
            .iter()
            .all(|c| c.reason == "reset by peer" || c.reason == "closed by peer"),
        "{closes:?}"
    );
    rig.finish(N);
}
