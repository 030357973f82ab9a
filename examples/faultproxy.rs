//! A fault-injecting TCP proxy on halfclose: it sits between clients and a
//! server and, per connection or at random under a seed, splits writes into
//! tiny segments, delays them, stalls a direction, resets the connection
//! at byte N, sends a FIN early, or never reads; and, as a client, it opens
//! connections that go silent (slowloris).
//!
//! cargo run --example faultproxy -- --listen 127.0.0.1:0 --upstream 127.0.0.1:7000 --fault split:1
//! cargo run --example faultproxy -- --upstream 127.0.0.1:7000 --fault random --seed 7
//! cargo run --example faultproxy -- --slowloris 100 --upstream 127.0.0.1:8080 --hold 10s
//!
//! # Faults
//!
//! `--fault SPEC` is a comma-separated list of plans; client connection k
//! (in accept order, from 0) gets plan k modulo their count. A plan is
//! `none`, `random`, or faults joined by `+`:
//!
//! - `split:N[:DIR]`, `split:random[:DIR]`: forward in segments of N bytes
//!   (random: 1 to 1460, drawn from the seed), one per loop turn, with
//!   TCP_NODELAY so each leaves as its own packet.
//! - `delay:DUR[:DIR]`: a write waits DUR after the previous one (with
//!   `split`: each segment does).
//! - `stall:DIR:DUR[@N]`: after N bytes (default 0) forward nothing in DIR
//!   for DUR.
//! - `rst:DIR:N`: after N bytes in DIR, reset both sides.
//! - `fin:DIR:N`: after N bytes in DIR, FIN to DIR's receiver; the rest of
//!   DIR is read and discarded.
//! - `noread:DIR[:DUR]`: never read DIR's sender, so its buffers fill;
//!   after DUR (default 2 s) reset both sides.
//! - `random`: one of the above (or none), parameters drawn from the seed.
//!
//! DIR is `c2s` (client to server), `s2c` or `both`; DUR is `Nms` or `Ns`.
//! Every fault is bounded in time, and under one `--seed` connection k
//! always gets the same faults (`--print-plans N` lists them).
//!
//! Where no fault applies the proxy is faithful: each direction's FIN is
//! passed on separately (a half-closing client works through it), a slow
//! receiver pauses reading from the sender (backpressure: at most 64 KiB
//! per direction held here), and a reset on one side resets the other.
//!
//! # Slowloris
//!
//! `--slowloris N` opens N connections to `--upstream`, sends `--send TEXT`
//! on each (default nothing), then goes silent: no more bytes, no FIN. It
//! prints `slowloris: N connected` once all are established, keeps them
//! until the server closes them or `--hold` passes (default 10 s; then it
//! closes them itself), and prints a summary line:
//! `slowloris: N connections: E closed by server, R reset, H held, F failed`.
//!
//! The proxy prints `listening on IP:PORT` as its first line; SIGINT or
//! SIGTERM drains it gracefully (5 s deadline). `RUST_LOG=info` logs each
//! connection's plan and every fault injected.

#[path = "faultproxy/proxy.rs"]
#[allow(dead_code)]
mod proxy;

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, Reactor, Reason, TimerId};
use signal_hook::consts::{SIGINT, SIGTERM};

const USAGE: &str = "usage:
  faultproxy --upstream ADDR --fault SPEC [--listen ADDR] [--seed N] [--idle-timeout SECS]
  faultproxy --slowloris N --upstream ADDR [--send TEXT] [--hold DUR]
  faultproxy --print-plans N --fault SPEC [--seed N]";

const HELP: &str = "faultproxy: a TCP proxy that injects faults, on halfclose

Proxy mode forwards each client connection to --upstream (default listen
address 127.0.0.1:9000) and applies the plan that --fault gives it.

SPEC     := PLAN[,PLAN...]     connection k (accept order) gets PLAN k mod count
PLAN     := none | random | FAULT[+FAULT...]
FAULT    := split:N[:DIR]        segments of N bytes, one per loop turn
          | split:random[:DIR]   segments of 1..1460 bytes drawn from the seed
          | delay:DUR[:DIR]      each write waits DUR after the previous one
          | stall:DIR:DUR[@N]    after N bytes (default 0) forward nothing for DUR
          | rst:DIR:N            after N bytes, reset both sides
          | fin:DIR:N            after N bytes, FIN to the receiver; discard the rest
          | noread:DIR[:DUR]     never read the sender; reset both after DUR (2s)
DIR      := c2s | s2c | both     (split and delay default to both)
DUR      := Nms | Ns

random picks one fault (or none) per connection with parameters drawn from
--seed (default 1): stall 50-500ms, delay 1-20ms, noread 100-1000ms, byte
positions 0-4096. Without a fault the proxy passes each FIN on separately
and applies backpressure. Examples: split:1   split:random+delay:5ms
stall:c2s:500ms@100   rst:s2c:1000   fin:c2s:10,none   noread:s2c:1s

--slowloris N  open N connections to --upstream, send --send TEXT (default
               nothing), go silent; print 'slowloris: N connected', then a
               summary once the server closed them all or --hold (10s) passed.
--print-plans N  print the plans of connections 0..N under --fault and --seed.
--idle-timeout SECS  close a proxied side idle this long (default 60).";

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn main() -> ExitCode {
    env_logger::init();
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("faultproxy: {e}");
            ExitCode::FAILURE
        }
    }
}

#[derive(Default)]
struct Args {
    listen: Option<SocketAddr>,
    upstream: Option<SocketAddr>,
    fault: Option<String>,
    seed: u64,
    idle: u64,
    slowloris: Option<usize>,
    send: String,
    hold: Option<Duration>,
    print_plans: Option<u64>,
}

fn parse_args() -> Result<Option<Args>, String> {
    let mut a = Args {
        seed: 1,
        idle: 60,
        ..Args::default()
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--listen" => a.listen = Some(value()?.parse().map_err(|e| format!("--listen: {e}"))?),
            "--upstream" => {
                a.upstream = Some(value()?.parse().map_err(|e| format!("--upstream: {e}"))?)
            }
            "--fault" => a.fault = Some(value()?),
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--idle-timeout" => {
                a.idle = value()?
                    .parse()
                    .map_err(|e| format!("--idle-timeout: {e}"))?
            }
            "--slowloris" => {
                a.slowloris = Some(value()?.parse().map_err(|e| format!("--slowloris: {e}"))?)
            }
            "--send" => a.send = value()?,
            "--hold" => a.hold = Some(proxy::parse_duration(&value()?)?),
            "--print-plans" => {
                a.print_plans = Some(
                    value()?
                        .parse()
                        .map_err(|e| format!("--print-plans: {e}"))?,
                )
            }
            "-h" | "--help" => return Ok(None),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(a))
}

fn run() -> Result<ExitCode, Box<dyn std::error::Error>> {
    let args = match parse_args() {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{HELP}\n\n{USAGE}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => {
            eprintln!("faultproxy: {e}");
            usage();
        }
    };
    if let Some(n) = args.slowloris {
        let Some(target) = args.upstream else { usage() };
        return slowloris(
            target,
            n,
            args.send.as_bytes(),
            args.hold.unwrap_or(Duration::from_secs(10)),
        );
    }
    let Some(spec) = &args.fault else { usage() };
    let choices = proxy::parse_spec(spec).map_err(|e| format!("--fault: {e}"))?;
    if let Some(n) = args.print_plans {
        let ranges = proxy::Ranges::default();
        for k in 0..n {
            let (plan, _) = proxy::plan_for(&choices, args.seed, k, &ranges);
            println!("{k}: {plan}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(upstream) = args.upstream else {
        usage()
    };
    let listen = args
        .listen
        .unwrap_or_else(|| "127.0.0.1:9000".parse().expect("address"));

    let mut config = Config::default();
    config.idle_timeout = (args.idle > 0).then(|| Duration::from_secs(args.idle));
    let mut reactor = Reactor::with_config(config)?;
    let chooser = proxy::Shared::spec_chooser(choices, args.seed, proxy::Ranges::default());
    let shared = proxy::Shared::new(upstream, false, chooser);
    let factory = Rc::clone(&shared);
    let listener = reactor.listen(listen, move || factory.accept())?;
    let addr = reactor.local_addr(listener).expect("listener is open");
    // Every descriptor the proxy keeps (the signal pipe too) exists before
    // the first line, so a test can take its descriptor count as baseline.
    let handle = reactor.handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    println!("listening on {addr}");
    io::stdout().flush()?;
    log::info!(
        "forwarding to {upstream} with faults {spec:?}, seed {}",
        args.seed
    );
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info!("signal {sig}: draining");
            let _ = handle.drain(Duration::from_secs(5));
        }
    });
    reactor.run()?;
    let c = *shared.counts.borrow();
    log::info!(
        "stopped: {} pairs, {} segments, {} stalls, {} resets, {} early FINs, {} noreads, {} bytes discarded",
        c.pairs,
        c.segments,
        c.stalls,
        c.resets,
        c.fins,
        c.noreads,
        c.discarded
    );
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- slowloris

/// How the slowloris connections ended.
#[derive(Default, Debug)]
struct Tally {
    n: usize,
    connected: usize,
    closed: usize,
    by_server: usize,
    reset: usize,
    held: usize,
    failed: usize,
}

/// One silent connection.
struct Silent {
    tally: Rc<RefCell<Tally>>,
    send: Rc<[u8]>,
    hold: Duration,
    hold_timer: Option<TimerId>,
}

impl Handler for Silent {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        conn.write(&self.send);
        self.hold_timer = Some(conn.set_timer(self.hold));
        let mut t = self.tally.borrow_mut();
        t.connected += 1;
        if t.connected == t.n {
            println!("slowloris: {} connected", t.n);
            let _ = io::stdout().flush();
        }
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, _data: &[u8]) {}

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        log::debug!("{}: closed by the server", conn.id());
        Eof::Close
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        if self.hold_timer == Some(timer) {
            conn.close();
        }
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        let mut t = self.tally.borrow_mut();
        t.closed += 1;
        match closed.reason {
            Reason::PeerClosed => t.by_server += 1,
            Reason::Reset => t.reset += 1,
            Reason::Local => t.held += 1,
            other => {
                log::info!("{}: {other}", closed.id);
                t.failed += 1;
            }
        }
        if t.closed == t.n {
            ctx.stop();
        }
    }
}

fn slowloris(
    target: SocketAddr,
    n: usize,
    send: &[u8],
    hold: Duration,
) -> Result<ExitCode, Box<dyn std::error::Error>> {
    let mut config = Config::default();
    // Silence is the point: no idle timeout of our own.
    config.idle_timeout = None;
    config.linger_timeout = Some(Duration::from_secs(2));
    config.connect_timeout = Some(Duration::from_secs(5));
    let mut reactor = Reactor::with_config(config)?;
    let tally = Rc::new(RefCell::new(Tally {
        n,
        ..Tally::default()
    }));
    let send: Rc<[u8]> = send.into();
    for _ in 0..n {
        let silent = Silent {
            tally: Rc::clone(&tally),
            send: Rc::clone(&send),
            hold,
            hold_timer: None,
        };
        if let Err(e) = reactor.connect(target, silent) {
            log::warn!("connect to {target}: {e}");
            let mut t = tally.borrow_mut();
            t.failed += 1;
            t.closed += 1;
        }
    }
    if tally.borrow().closed < n {
        reactor.run()?;
    }
    let t = tally.borrow();
    println!(
        "slowloris: {} connections: {} closed by server, {} reset, {} held, {} failed",
        t.n, t.by_server, t.reset, t.held, t.failed
    );
    Ok(ExitCode::SUCCESS)
}
