//! Echo load (scenario C of `benches/compare.sh`): small messages echoed
//! over many persistent connections, one message in flight per connection.
//!
//! cargo run --release --manifest-path benches/peers/rust/Cargo.toml --bin echo_load -- \
//!     --connect 127.0.0.1:7000 --connections 1000 --messages 200000 --json
//!
//! All connections are opened first; then each sends a message of
//! `--message-bytes`, waits for its echo, checks it byte for byte, and sends
//! the next, until `--messages` have been echoed in all. Then every
//! connection half-closes and waits for the server's FIN. With
//! `--server-pid`, the server's CPU time (utime + stime of
//! `/proc/PID/stat`) is read at the start and the end of the message phase.
//! Exit status 0 when every message came back intact, 2 for bad arguments.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use clap::Parser;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use serde::Serialize;

/// echo_load: small messages echoed over many persistent connections
#[derive(Parser)]
#[command(name = "echo_load")]
struct Opts {
    /// The server
    #[arg(long, value_name = "ADDR")]
    connect: SocketAddr,
    /// Connections, all opened first
    #[arg(long, value_name = "N", default_value_t = 1000, value_parser = at_least_one)]
    connections: usize,
    /// Messages echoed in all
    #[arg(long, value_name = "M", default_value_t = 200_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    messages: u64,
    /// Bytes per message
    #[arg(long = "message-bytes", value_name = "B", default_value_t = 64, value_parser = at_least_one)]
    message_bytes: usize,
    /// Give up after this long
    #[arg(long, value_name = "SECS", default_value = "120", value_parser = seconds)]
    timeout: Duration,
    /// Read this process's CPU time at the start and the end of the message phase
    #[arg(long = "server-pid", value_name = "PID")]
    server_pid: Option<u32>,
    /// Print one JSON object
    #[arg(long)]
    json: bool,
}

fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse() {
        Ok(0) | Err(_) => Err(format!("not a number of at least 1: {s}")),
        Ok(n) => Ok(n),
    }
}

fn seconds(s: &str) -> Result<Duration, std::num::ParseIntError> {
    s.parse().map(Duration::from_secs)
}

enum Phase {
    Connecting,
    Ready,
    /// A message is out; `got` bytes of its echo are in, sent at `since`.
    Waiting {
        got: usize,
        since: Instant,
    },
    /// Half-closed; waiting for the server's FIN.
    Closing,
    Done,
}

struct Client {
    stream: TcpStream,
    phase: Phase,
    seq: u64,
}

/// The message number `seq` of a connection: distinct bytes per message.
fn fill(msg: &mut [u8], conn: usize, seq: u64) {
    for (i, b) in msg.iter_mut().enumerate() {
        *b = (conn as u64)
            .wrapping_mul(31)
            .wrapping_add(seq.wrapping_mul(7))
            .wrapping_add(i as u64) as u8;
    }
}

/// utime + stime of a process, seconds.
fn cpu_of(pid: u32) -> Option<f64> {
    let cpu = halfclose_tools::procfs::process_cpu(pid).ok()?;
    Some((cpu.user + cpu.sys).as_secs_f64())
}

struct Outcome {
    completed: u64,
    errors: u64,
    wall: Duration,
    latencies: Vec<u32>,
    server_cpu: Option<f64>,
}

fn run(o: &Opts) -> io::Result<Outcome> {
    let deadline = Instant::now() + o.timeout;
    let mut poll = Poll::new()?;
    let mut events = Events::with_capacity(1024);
    let mut clients = Vec::with_capacity(o.connections);
    for i in 0..o.connections {
        let mut stream = TcpStream::connect(o.connect)?;
        poll.registry().register(
            &mut stream,
            Token(i),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        clients.push(Client {
            stream,
            phase: Phase::Connecting,
            seq: 0,
        });
    }
    let mut errors = 0u64;
    let mut connecting = o.connections;
    while connecting > 0 {
        if Instant::now() >= deadline {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "connect phase timed out",
            ));
        }
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            let c = &mut clients[ev.token().0];
            if !matches!(c.phase, Phase::Connecting) || !ev.is_writable() {
                continue;
            }
            connecting -= 1;
            match c.stream.take_error() {
                Ok(None) if c.stream.peer_addr().is_ok() => {
                    let _ = c.stream.set_nodelay(true);
                    c.phase = Phase::Ready;
                }
                _ => {
                    errors += 1;
                    c.phase = Phase::Done;
                }
            }
        }
    }

    let mut msg = vec![0u8; o.message_bytes];
    let mut want = vec![0u8; o.message_bytes];
    let mut buf = vec![0u8; 64 * 1024];
    let mut latencies = Vec::with_capacity(o.messages.min(10_000_000) as usize);
    let mut started = 0u64;
    let mut completed = 0u64;
    let cpu0 = o.server_pid.and_then(cpu_of);
    let t0 = Instant::now();

    // Sends the next message on connection `i`, or half-closes it when all
    // messages are out.
    let next = |i: usize, c: &mut Client, started: &mut u64, errors: &mut u64, msg: &mut [u8]| {
        if *started >= o.messages {
            let _ = c.stream.shutdown(Shutdown::Write);
            c.phase = Phase::Closing;
            return;
        }
        *started += 1;
        c.seq += 1;
        fill(msg, i, c.seq);
        // A message this small fits in an empty socket buffer.
        match c.stream.write(msg) {
            Ok(n) if n == msg.len() => {
                c.phase = Phase::Waiting {
                    got: 0,
                    since: Instant::now(),
                }
            }
            _ => {
                *errors += 1;
                c.phase = Phase::Done;
            }
        }
    };
    for (i, c) in clients.iter_mut().enumerate() {
        if matches!(c.phase, Phase::Ready) {
            next(i, c, &mut started, &mut errors, &mut msg);
        }
    }
    let mut open = clients
        .iter()
        .filter(|c| !matches!(c.phase, Phase::Done))
        .count();
    let mut server_cpu = None;
    while open > 0 && Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(100)))?;
        for ev in events.iter() {
            let i = ev.token().0;
            let c = &mut clients[i];
            // `Some(error)`: the client is done, with or without an error.
            let finished = loop {
                match c.phase {
                    Phase::Waiting { got, since } => {
                        let room = o.message_bytes - got;
                        match c.stream.read(&mut buf[..room]) {
                            Ok(0) => break Some(true),
                            Ok(n) => {
                                fill(&mut want, i, c.seq);
                                if buf[..n] != want[got..got + n] {
                                    break Some(true);
                                }
                                if got + n < o.message_bytes {
                                    c.phase = Phase::Waiting {
                                        got: got + n,
                                        since,
                                    };
                                    continue;
                                }
                                completed += 1;
                                latencies
                                    .push(since.elapsed().as_micros().min(u32::MAX as u128) as u32);
                                if completed == o.messages {
                                    server_cpu =
                                        o.server_pid.and_then(cpu_of).zip(cpu0).map(|(b, a)| b - a);
                                }
                                next(i, c, &mut started, &mut errors, &mut msg);
                                if matches!(c.phase, Phase::Done) {
                                    open -= 1;
                                }
                                // One message in flight: nothing more to read until
                                // the next edge.
                                break None;
                            }
                            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                            Err(_) => break Some(true),
                        }
                    }
                    Phase::Closing => match c.stream.read(&mut buf) {
                        // EOF is the clean end; any byte after the last reply is an error.
                        Ok(n) => break Some(n > 0),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break None,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break Some(true),
                    },
                    _ => break None,
                }
            };
            if let Some(error) = finished {
                errors += u64::from(error);
                c.phase = Phase::Done;
                open -= 1;
            }
        }
    }
    let wall = t0.elapsed();
    errors += open as u64; // still open at the deadline
    latencies.sort_unstable();
    Ok(Outcome {
        completed,
        errors,
        wall,
        latencies,
        server_cpu,
    })
}

/// The `--json` line (`benches/compare.py` reads it).
#[derive(Serialize)]
struct Report {
    connections: usize,
    messages: u64,
    completed: u64,
    errors: u64,
    wall_s: f64,
    msg_per_s: f64,
    latency_us_p50: Option<u32>,
    latency_us_p99: Option<u32>,
    latency_us_p999: Option<u32>,
    latency_us_max: Option<u32>,
    server_cpu_s: Option<f64>,
    server_cpu_us_per_msg: Option<f64>,
}

/// `v` rounded to `digits` decimals.
fn round(v: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (v * scale).round() / scale
}

fn main() -> std::process::ExitCode {
    let o = Opts::parse();
    let out = match run(&o) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("echo_load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let q = |p: f64| -> Option<u32> {
        let n = out.latencies.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n.max(1));
        out.latencies.get(rank - 1).copied()
    };
    let rate = out.completed as f64 / out.wall.as_secs_f64().max(1e-9);
    let per_msg = out
        .server_cpu
        .map(|s| s * 1e6 / out.completed.max(1) as f64);
    if o.json {
        let report = Report {
            connections: o.connections,
            messages: o.messages,
            completed: out.completed,
            errors: out.errors,
            wall_s: round(out.wall.as_secs_f64(), 3),
            msg_per_s: round(rate, 1),
            latency_us_p50: q(0.5),
            latency_us_p99: q(0.99),
            latency_us_p999: q(0.999),
            latency_us_max: q(1.0),
            server_cpu_s: out.server_cpu.map(|s| round(s, 3)),
            server_cpu_us_per_msg: per_msg.map(|v| round(v, 3)),
        };
        println!("{}", serde_json::to_string(&report).expect("JSON"));
    } else {
        let show = |v: Option<u32>| v.map_or_else(|| "-".to_string(), |v| v.to_string());
        let show_f = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |v| format!("{v:.3}"));
        println!(
            "echo_load: {} of {} messages over {} connections in {:.3} s ({rate:.0}/s), {} errors; \
latency p50/p99/p999/max {}/{}/{}/{} µs; server CPU {} s, {} µs per message",
            out.completed,
            o.messages,
            o.connections,
            out.wall.as_secs_f64(),
            out.errors,
            show(q(0.5)),
            show(q(0.99)),
            show(q(0.999)),
            show(q(1.0)),
            show_f(out.server_cpu),
            show_f(per_msg)
        );
    }
    if out.errors == 0 && out.completed == o.messages {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
