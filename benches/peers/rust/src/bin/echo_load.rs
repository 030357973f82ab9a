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
//! Exit status 0 when every message came back intact.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};

const USAGE: &str =
    "usage: echo_load --connect ADDR [--connections N] [--messages M] [--message-bytes B] \
[--timeout SECS] [--server-pid PID] [--json]";

struct Opts {
    connect: SocketAddr,
    connections: usize,
    messages: u64,
    message_bytes: usize,
    timeout: Duration,
    server_pid: Option<u32>,
    json: bool,
}

fn parse() -> Result<Opts, String> {
    let mut o = Opts {
        connect: SocketAddr::from(([127, 0, 0, 1], 7000)),
        connections: 1000,
        messages: 200_000,
        message_bytes: 64,
        timeout: Duration::from_secs(120),
        server_pid: None,
        json: false,
    };
    let mut connect = None;
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        fn num<T: std::str::FromStr>(v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("not a number: {v}"))
        }
        match arg.as_str() {
            "--connect" => connect = Some(value()?.parse().map_err(|e| format!("--connect: {e}"))?),
            "--connections" => o.connections = num(value()?)?,
            "--messages" => o.messages = num(value()?)?,
            "--message-bytes" => o.message_bytes = num(value()?)?,
            "--timeout" => o.timeout = Duration::from_secs(num(value()?)?),
            "--server-pid" => o.server_pid = Some(num(value()?)?),
            "--json" => o.json = true,
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    o.connect = connect.ok_or("--connect ADDR is required")?;
    if o.connections == 0 || o.message_bytes == 0 || o.messages == 0 {
        return Err("--connections, --messages and --message-bytes must be at least 1".into());
    }
    Ok(o)
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
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
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

fn main() -> std::process::ExitCode {
    let o = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("echo_load: {e}\n{USAGE}");
            return std::process::ExitCode::from(2);
        }
    };
    let out = match run(&o) {
        Ok(out) => out,
        Err(e) => {
            eprintln!("echo_load: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let q = |p: f64| -> String {
        if out.latencies.is_empty() {
            return "null".into();
        }
        let n = out.latencies.len();
        let rank = ((p * n as f64).ceil() as usize).clamp(1, n);
        out.latencies[rank - 1].to_string()
    };
    let rate = out.completed as f64 / out.wall.as_secs_f64().max(1e-9);
    let cpu = out.server_cpu.map_or("null".into(), |s| format!("{s:.3}"));
    let per_msg = out.server_cpu.map_or("null".into(), |s| {
        format!("{:.3}", s * 1e6 / out.completed.max(1) as f64)
    });
    if o.json {
        println!(
            "{{\"connections\":{},\"messages\":{},\"completed\":{},\"errors\":{},\"wall_s\":{:.3},\"msg_per_s\":{:.1},\
\"latency_us_p50\":{},\"latency_us_p99\":{},\"latency_us_p999\":{},\"latency_us_max\":{},\"server_cpu_s\":{},\"server_cpu_us_per_msg\":{}}}",
            o.connections,
            o.messages,
            out.completed,
            out.errors,
            out.wall.as_secs_f64(),
            rate,
            q(0.5),
            q(0.99),
            q(0.999),
            q(1.0),
            cpu,
            per_msg
        );
    } else {
        println!(
            "echo_load: {} of {} messages over {} connections in {:.3} s ({rate:.0}/s), {} errors; \
latency p50/p99/p999/max {}/{}/{}/{} µs; server CPU {cpu} s, {per_msg} µs per message",
            out.completed,
            o.messages,
            o.connections,
            out.wall.as_secs_f64(),
            out.errors,
            q(0.5),
            q(0.99),
            q(0.999),
            q(1.0)
        );
    }
    if out.errors == 0 && out.completed == o.messages {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}
