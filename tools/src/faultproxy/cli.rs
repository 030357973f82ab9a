//! A fault-injecting TCP proxy on halfclose: it sits between clients and a
//! server and, per connection or at random under a seed, splits writes into
//! tiny segments, delays them, stalls a direction, resets the connection
//! at byte N, sends a FIN early, or never reads; with TLS passing through
//! it (it decrypts nothing), it places faults by the TLS records it sees;
//! and, as a client, it opens connections that go silent (slowloris).
//!
//! ```text
//! cargo run -p halfclose-tools --bin faultproxy -- --listen 127.0.0.1:0 --upstream 127.0.0.1:7000 --fault split:1
//! cargo run -p halfclose-tools --bin faultproxy -- --upstream 127.0.0.1:7000 --fault random --seed 7
//! cargo run -p halfclose-tools --bin faultproxy -- --upstream 127.0.0.1:8443 --fault tls-fin:c2s:2
//! cargo run -p halfclose-tools --bin faultproxy -- --slowloris 100 --upstream 127.0.0.1:8080 --hold 10s
//! ```
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
//! TLS-shaped faults read the 5-byte TLS record headers (content type,
//! version, length) as the bytes pass; nothing is decrypted. "Record N of
//! type 23" counts the records of outer content type 23 (application
//! data) from 1. In TLS 1.3 that type hides every encrypted record: the
//! client's first is its `Finished`, the server's first ones its encrypted
//! handshake (and later its session tickets), and the last record before
//! a clean FIN is the `close_notify` alert; in TLS 1.2 type 23 is
//! application data only.
//!
//! - `tls-fin:DIR:N`: FIN to DIR's receiver in the middle of the body of
//!   record N of type 23; the rest of DIR is discarded. The receiver holds
//!   a record it can never complete, and no `close_notify`: a truncation.
//! - `tls-fin:DIR:N:after`: the same FIN right after record N: whole
//!   records, then a FIN without `close_notify` (the classic truncation).
//! - `tls-stall:DIR:DUR[@N]`: once N records (any type; default 1) went
//!   through, forward nothing in DIR for DUR. `tls-stall:s2c:5s` passes the
//!   ServerHello and holds the rest of the server's handshake; the
//!   server's handshake timeout ends the connection first.
//! - `tls-replay:DIR`: at DIR's FIN, after its last record (the
//!   `close_notify` of a clean end), inject a copy of the record of type 23
//!   before it (its last data record), then the FIN: a record after
//!   `close_notify`, which the receiver must ignore (RFC 8446 §6.1) and
//!   never deliver.
//! - `tls-replay:DIR:N`: right after record N of type 23, a copy of it: a
//!   replayed record in the middle of the stream, which fails
//!   authentication (its sequence number is not the one the receiver
//!   expects), so the receiver must fail the connection.
//! - `tls-junk:DIR:N`: at DIR's FIN, after its last record, N bytes drawn
//!   from the seed, then the FIN: bytes that are not a record at all after
//!   the end.
//! - `tls-rst:DIR`: at DIR's FIN, once every byte DIR sent was handed to
//!   the kernel toward its receiver, reset both sides instead of passing
//!   the FIN on: `close_notify` arrives, then RST. (Bytes the receiver's
//!   window had not taken yet are lost with the reset, as in any RST.)
//!
//! A stream that does not parse as TLS records gets no record fault.
//! `random` never picks a TLS fault: the plans a seed draws are the same
//! as before they existed.
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

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::str::FromStr;
use std::time::Duration;

use clap::error::ErrorKind;
use clap::{CommandFactory, Parser};
use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, Reactor, Reason, TimerId};

use super::plan::{parse_duration, parse_spec, plan_for, Choice, Ranges};
use super::proxy::Shared;

const USAGE: &str =
    "faultproxy --upstream ADDR --fault SPEC [--listen ADDR] [--seed N] [--idle-timeout SECS]
       faultproxy --slowloris N --upstream ADDR [--send TEXT] [--hold DUR]
       faultproxy --print-plans N --fault SPEC [--seed N]";

const SPEC_HELP: &str = "\
SPEC     := PLAN[,PLAN...]     connection k (accept order) gets PLAN k mod count
PLAN     := none | random | FAULT[+FAULT...]
FAULT    := split:N[:DIR]        segments of N bytes, one per loop turn
          | split:random[:DIR]   segments of 1..1460 bytes drawn from the seed
          | delay:DUR[:DIR]      each write waits DUR after the previous one
          | stall:DIR:DUR[@N]    after N bytes (default 0) forward nothing for DUR
          | rst:DIR:N            after N bytes, reset both sides
          | fin:DIR:N            after N bytes, FIN to the receiver; discard the rest
          | noread:DIR[:DUR]     never read the sender; reset both after DUR (2s)
          | TLSFAULT
TLSFAULT := tls-fin:DIR:N        FIN in the middle of TLS record N of type 23
          | tls-fin:DIR:N:after  FIN right after TLS record N of type 23
          | tls-stall:DIR:DUR[@N]  after N TLS records (default 1), stall DUR
          | tls-replay:DIR       at DIR's FIN, after its last record (its
                                 close_notify), a copy of the type-23 record
                                 before it; then the FIN
          | tls-replay:DIR:N     right after TLS record N of type 23, a copy
          | tls-junk:DIR:N       at DIR's FIN, after its last record, N bytes
                                 drawn from the seed; then the FIN
          | tls-rst:DIR          at DIR's FIN, everything forwarded, then RST
                                 to both sides instead of the FIN
DIR      := c2s | s2c | both     (split and delay default to both)
DUR      := Nms | Ns

TLS faults read the 5-byte record headers as bytes pass (nothing is
decrypted); records count from 1. In TLS 1.3 every encrypted record has type
23: the client's first is its Finished, the server's first ones carry its
handshake, and the last before a clean FIN is close_notify.

random picks one fault (or none) per connection with parameters drawn from
--seed (default 1): stall 50-500ms, delay 1-20ms, noread 100-1000ms, byte
positions 0-4096; it never picks a TLS fault. Without a fault the proxy
passes each FIN on separately and applies backpressure. Examples: split:1
split:random+delay:5ms   stall:c2s:500ms@100   rst:s2c:1000   fin:c2s:10,none
noread:s2c:1s   tls-fin:c2s:2   tls-stall:c2s:2s@1   tls-replay:c2s+tls-junk:c2s:64";

/// A `--fault` list, parsed.
#[derive(Clone, Debug)]
pub struct Spec {
    /// As given.
    pub text: String,
    /// Its entries: connection k gets entry k modulo their count.
    pub choices: Vec<Choice>,
}

impl FromStr for Spec {
    type Err = String;

    fn from_str(s: &str) -> Result<Spec, String> {
        Ok(Spec {
            text: s.to_string(),
            choices: parse_spec(s)?,
        })
    }
}

/// faultproxy: a TCP proxy that injects faults, on halfclose
///
/// Proxy mode forwards each client connection to --upstream and applies the
/// plan that --fault gives it. SIGINT or SIGTERM drains it (5 s deadline).
#[derive(Parser, Debug)]
#[command(
    name = "faultproxy",
    override_usage = USAGE,
    after_help = SPEC_HELP,
    verbatim_doc_comment
)]
pub struct Args {
    /// Address to listen on (proxy mode)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9000")]
    pub listen: SocketAddr,
    /// The server to forward to, or to open silent connections to
    #[arg(long, value_name = "ADDR")]
    pub upstream: Option<SocketAddr>,
    /// The faults: PLAN[,PLAN...], see below
    #[arg(long, value_name = "SPEC")]
    pub fault: Option<Spec>,
    /// Seed of every random draw: connection k always gets the same faults
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Close a proxied side idle this long; 0 never
    #[arg(long = "idle-timeout", value_name = "SECS", default_value_t = 60)]
    pub idle_timeout: u64,
    /// Open N connections to --upstream, send --send TEXT, go silent; print
    /// 'slowloris: N connected', then a summary once the server closed them
    /// all or --hold passed
    #[arg(long, value_name = "N", verbatim_doc_comment)]
    pub slowloris: Option<usize>,
    /// What each slowloris connection sends before it goes silent
    #[arg(long, value_name = "TEXT", default_value = "")]
    pub send: String,
    /// How long slowloris keeps its connections (then closes them itself)
    #[arg(long, value_name = "DUR", default_value = "10s", value_parser = parse_duration)]
    pub hold: Duration,
    /// Print the plans of connections 0..N under --fault and --seed, and exit
    #[arg(long = "print-plans", value_name = "N")]
    pub print_plans: Option<u64>,
}

/// A usage error: the message and the usage on stderr, exit status 2.
fn usage_error(msg: &str) -> ! {
    Args::command()
        .error(ErrorKind::MissingRequiredArgument, msg)
        .exit()
}

/// The `main` of `faultproxy`.
pub fn main() -> ExitCode {
    env_logger::init();
    let args = Args::parse();
    crate::support::exit_code("faultproxy", run(args))
}

/// Run the mode `args` ask for.
pub fn run(args: Args) -> crate::support::ModeResult {
    if let Some(n) = args.slowloris {
        let Some(target) = args.upstream else {
            usage_error("--slowloris needs --upstream ADDR")
        };
        return slowloris(target, n, args.send.as_bytes(), args.hold);
    }
    let Some(spec) = args.fault else {
        usage_error("--fault SPEC is required (or --slowloris N)")
    };
    if let Some(n) = args.print_plans {
        let ranges = Ranges::default();
        for k in 0..n {
            let (plan, _) = plan_for(&spec.choices, args.seed, k, &ranges);
            println!("{k}: {plan}");
        }
        return Ok(ExitCode::SUCCESS);
    }
    let Some(upstream) = args.upstream else {
        usage_error("--upstream ADDR is required")
    };

    let mut config = Config::default();
    config.idle_timeout = (args.idle_timeout > 0).then(|| Duration::from_secs(args.idle_timeout));
    let mut reactor = Reactor::with_config(config)?;
    let chooser = Shared::spec_chooser(spec.choices, args.seed, Ranges::default());
    let shared = Shared::new(upstream, false, chooser);
    let factory = Rc::clone(&shared);
    let listener = reactor.listen(args.listen, move || factory.accept())?;
    let addr = reactor.local_addr(listener).expect("listener is open");
    // Every descriptor the proxy keeps (the signal pipe too) exists before
    // the first line, so a test can take its descriptor count as baseline.
    crate::signals::drain_on_stop(&reactor, Duration::from_secs(5))?;
    println!("listening on {addr}");
    io::stdout().flush()?;
    log::info!(
        "forwarding to {upstream} with faults {:?}, seed {}",
        spec.text,
        args.seed
    );
    reactor.run()?;
    let c = *shared.counts.borrow();
    log::info!(
        "stopped: {} pairs, {} segments, {} stalls, {} resets, {} early FINs, {} noreads, {} bytes discarded; TLS: {} record FINs, {} record stalls, {} replays, {} junk, {} RSTs for FINs",
        c.pairs,
        c.segments,
        c.stalls,
        c.resets,
        c.fins,
        c.noreads,
        c.discarded,
        c.tls_fins,
        c.tls_stalls,
        c.replays,
        c.junk,
        c.fin_resets
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
