//! The half-close echo benchmark: many concurrent half-closed connections,
//! what each one costs the server, and how fast they turn over.
//!
//! ```text
//! cargo run --release --example halfclosed          # the same as:
//! cargo run --release -p halfclose-tools --bin halfclosed
//! ```
//!
//! Each exchange: the client connects, sends B request bytes and
//! half-closes (`shutdown(SHUT_WR)`); the server reads to EOF, keeps the
//! half-closed connection for `--hold-ms` (0 by default), replies with the
//! request bytes and closes; the client reads the reply to EOF and checks it
//! byte for byte. A held connection whose client resets is released at
//! once, not at the end of its hold (`--reset-every` checks it).
//!
//! With no arguments a server reactor and a client reactor run on two
//! threads of this process over loopback, 10,000 exchanges, and a summary
//! is printed. The two sides also run alone, to measure the server in its
//! own process or to load another server:
//!
//! ```text
//! halfclosed --server-only --listen 127.0.0.1:7001 --json   # first line: listening on IP:PORT
//! halfclosed --client-only --connect 127.0.0.1:7001 --connections 50000 --json
//! ```
//!
//! Every mode runs over a Unix stream socket as well: `--listen` and
//! `--connect` take a socket path (`/...` or `./...`) or `@name` (Linux's
//! abstract namespace) wherever they take `IP:PORT`, and the exchange, the
//! client's work per connection and the server's figures are the same
//! code. A socket file left by a crashed server (no one listens on it) is
//! removed first; the server removes its own when it stops.
//!
//! ```text
//! halfclosed --listen /tmp/hc.sock                           # both sides in one process
//! halfclosed --server-only --listen /tmp/hc.sock --json      # first line: listening on /tmp/hc.sock
//! halfclosed --client-only --connect /tmp/hc.sock --json
//! ```
//!
//! A Unix stream socket has no `SO_REUSEPORT`, so `--threads` above 1
//! needs TCP, and no source address, so `--sources` does too; both are
//! refused with a Unix socket (exit status 2). A connect that finds the
//! listener's queue full fails at once on a Unix socket (`EAGAIN`, where
//! TCP would retransmit its SYN); the client tries that exchange again a
//! millisecond later and counts it (`connects retried`; not an error).
//!
//! Over TLS (feature `tls`: `cargo build --release -p halfclose-tools
//! --features tls`), TCP only, on rustls with the ring provider:
//!
//! ```text
//! halfclosed --tls                                   # both sides, a self-signed certificate made at start
//! halfclosed --server-only --tls-self-signed --json  # second line: certificate PATH (its PEM file)
//! halfclosed --server-only --tls-cert cert.pem --tls-key key.pem --json
//! halfclosed --client-only --connect 127.0.0.1:7001 --tls-ca cert.pem [--tls-name localhost]
//! ```
//!
//! The exchange is the same; the client's half-close is `close_notify`
//! then its FIN ([`halfclose::Conn::shutdown_write`]), and a reply must end
//! with the server's `close_notify`: a FIN without one is a truncation,
//! counted as an error. The client keeps no TLS sessions, so every
//! connection makes a full handshake. A build without the feature refuses
//! these options (exit status 2).
//!
//! The server serves until SIGINT or SIGTERM (or `--timeout`), then prints
//! its figures: peak half-closed connections, CPU time per connection of
//! its reactor threads, peak RSS and RSS per connection above the idle
//! baseline. `--threads N` runs N reactors on N threads sharing the port
//! through `SO_REUSEPORT`. `--sources 127.0.0.1-127.0.0.8` spreads the
//! client's source addresses past the ephemeral-port limit of one address
//! (about 28,000 connections open at once); each socket is bound before it
//! connects (`Connect::from`), so each address's ports are taken
//! at bind time: use it to hold more than that many, not for churn, where
//! a plain connect reuses loopback TIME_WAIT ports.
//! CPU time comes from `/proc/thread-self/schedstat` (total, nanoseconds)
//! and `/proc/thread-self/stat` (user/system split, clock ticks); memory
//! from `/proc/self/status` ([`crate::procfs`]). The soft descriptor limit
//! is raised to the hard one ([`crate::fdlimit::raise`]).
//!
//! Exit status: 0 when every exchange completed, 1 when any failed, 2 for
//! bad arguments.
mod client;
mod server;
mod tls;

use std::fmt::Write as _;
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use clap::{CommandFactory, Parser};
use halfclose::Addr;
use serde::Serialize;

use crate::fdlimit::{self, Limit};
use crate::procfs;
use crate::support::{ConnectTls, ServeTls};
use client::{run_client, ClientJson};
use server::{ServerJson, ServerSummary, Servers, Storage, EPOCH};

/// The longest request the server buffers; a longer one is refused.
const MAX_REQUEST: usize = 16 << 20;
/// How long the server lets connections finish once told to stop.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// When a `--reset-every` client resets its connection, after connecting.
const RESET_AFTER: Duration = Duration::from_millis(50);

// ---------------------------------------------------------------------------
// Options

/// halfclosed: the half-close echo benchmark of the halfclose reactor
///
/// With no mode, a server and a client run in this process over loopback
/// and a summary is printed. ADDR is IP:PORT, a Unix socket path (/... or
/// ./...) or @name (abstract Unix socket). Exit status: 0 when every
/// exchange completed, 1 when any failed, 2 for bad arguments.
#[derive(Parser, Clone, Debug)]
#[command(name = "halfclosed", verbatim_doc_comment)]
pub struct Args {
    /// Serve; print `listening on ADDR` first; stop on SIGINT/SIGTERM
    #[arg(long = "server-only", conflicts_with = "client_only")]
    pub server_only: bool,
    /// Load the server at --connect
    #[arg(long = "client-only", requires = "connect")]
    pub client_only: bool,
    /// Server address: IP:PORT, a Unix socket path, or @name
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: Addr,
    /// Server to load with --client-only: IP:PORT, a Unix socket path, or @name
    #[arg(long, value_name = "ADDR", requires = "client_only")]
    pub connect: Option<Addr>,
    /// Exchanges in all
    #[arg(long, value_name = "N", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub connections: u64,
    /// Exchanges in flight at once
    #[arg(long, value_name = "C", default_value_t = 200,
          value_parser = clap::value_parser!(u64).range(1..=u64::from(u32::MAX)))]
    pub concurrency: u64,
    /// Request size, echoed back
    #[arg(long = "request-bytes", value_name = "B", default_value_t = 64,
          value_parser = clap::value_parser!(u64).range(1..=MAX_REQUEST as u64))]
    pub request_bytes: u64,
    /// Server keeps each half-closed connection H ms before replying;
    /// a --client-only run takes it to stretch its own timeouts
    #[arg(
        long = "hold-ms",
        value_name = "H",
        default_value_t = 0,
        verbatim_doc_comment
    )]
    pub hold_ms: u64,
    /// Server reactors, one per thread, sharing the port (TCP only)
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=256))]
    pub threads: u64,
    /// Server: keep each handler in its own box (the library's default
    /// storage) rather than inline in the reactor's table
    #[arg(long = "boxed-handlers")]
    pub boxed_handlers: bool,
    /// Client source addresses, used round-robin (A or A-B, IPv4; TCP only)
    #[arg(long, value_name = "A[-B]", value_parser = parse_sources)]
    pub sources: Option<Sources>,
    /// Client resets every K-th connection 50 ms after connecting (checks release)
    #[arg(long = "reset-every", value_name = "K", default_value_t = 0)]
    pub reset_every: u64,
    /// Overall deadline, --server-only included
    #[arg(long, value_name = "SECS", default_value_t = 120,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// Machine-readable output on stdout
    #[arg(long)]
    pub json: bool,
    /// Both sides in this process speak TLS (a self-signed certificate
    /// made at start); --server-only takes --tls-self-signed or
    /// --tls-cert/--tls-key, --client-only --tls-ca (feature `tls`)
    #[arg(
        long,
        conflicts_with_all = ["server_only", "client_only"],
        verbatim_doc_comment
    )]
    pub tls: bool,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub serve_tls: ServeTls,
    #[allow(missing_docs)]
    #[command(flatten)]
    pub connect_tls: ConnectTls,
}

/// Source addresses of `--sources`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sources(pub Vec<IpAddr>);

/// `A` or `A-B`, IPv4, inclusive.
fn parse_sources(s: &str) -> Result<Sources, String> {
    let bad = || format!("expected A or A-B (IPv4), got {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    let (a, b) = (u32::from(a), u32::from(b));
    if b < a || b - a >= 65_536 {
        return Err(format!("{s} is empty or wider than 65536 addresses"));
    }
    Ok(Sources(
        (a..=b).map(|ip| IpAddr::V4(Ipv4Addr::from(ip))).collect(),
    ))
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
#[serde(rename_all = "lowercase")]
enum Mode {
    Both,
    Server,
    Client,
}

/// The options as the modes use them.
#[derive(Clone, Debug)]
struct Opts {
    mode: Mode,
    listen: Addr,
    connect: Option<Addr>,
    connections: u64,
    concurrency: usize,
    request_bytes: usize,
    hold: Duration,
    threads: usize,
    storage: Storage,
    sources: Vec<IpAddr>,
    reset_every: u64,
    timeout: Duration,
    json: bool,
    /// `--tls`: TLS on both sides in one process.
    tls_both: bool,
    serve_tls: ServeTls,
    connect_tls: ConnectTls,
}

impl Opts {
    /// The options `a` asks for, or why they do not go together (what the
    /// parser alone cannot see: the transport of an address).
    fn new(a: Args) -> Result<Opts, clap::Error> {
        // The ranges are checked by the parser.
        let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        let o = Opts {
            mode: match (a.server_only, a.client_only) {
                (true, _) => Mode::Server,
                (_, true) => Mode::Client,
                _ => Mode::Both,
            },
            listen: a.listen,
            connect: a.connect,
            connections: a.connections,
            concurrency: size(a.concurrency),
            request_bytes: size(a.request_bytes),
            hold: Duration::from_millis(a.hold_ms),
            threads: size(a.threads),
            storage: if a.boxed_handlers {
                Storage::Boxed
            } else {
                Storage::Inline
            },
            sources: a.sources.map(|s| s.0).unwrap_or_default(),
            reset_every: a.reset_every,
            timeout: Duration::from_secs(a.timeout),
            json: a.json,
            tls_both: a.tls,
            serve_tls: a.serve_tls,
            connect_tls: a.connect_tls,
        };
        let conflict =
            |msg: String| Args::command().error(clap::error::ErrorKind::ArgumentConflict, msg);
        if o.mode != Mode::Client && o.listen.is_unix() && o.threads > 1 {
            return Err(conflict(format!(
                "--threads {} needs a TCP --listen address: the reactors share one port \
                 through SO_REUSEPORT, which a Unix socket ({}) does not have",
                o.threads, o.listen
            )));
        }
        if !o.sources.is_empty() && o.mode != Mode::Server && o.target().is_unix() {
            return Err(conflict(format!(
                "--sources chooses TCP source addresses; a connection to the Unix socket {} \
                 has none",
                o.target()
            )));
        }
        if o.serve_tls.wanted() && o.mode != Mode::Server {
            return Err(conflict(
                "--tls-self-signed and --tls-cert/--tls-key are for --server-only; \
                 with both sides in one process, --tls"
                    .into(),
            ));
        }
        if o.connect_tls.ca.is_some() && o.mode != Mode::Client {
            return Err(conflict(
                "--tls-ca is for --client-only; with both sides in one process, --tls".into(),
            ));
        }
        if o.tls() && !tls::BUILT_IN {
            return Err(conflict(
                "built without TLS: build with --features tls \
                 (cargo build --release -p halfclose-tools --features tls)"
                    .into(),
            ));
        }
        if o.tls() && o.target().is_unix() {
            return Err(conflict(format!(
                "TLS runs over TCP only, not over the Unix socket {}",
                o.target()
            )));
        }
        Ok(o)
    }

    /// Whether either side speaks TLS.
    fn tls(&self) -> bool {
        self.tls_both || self.serve_tls.wanted() || self.connect_tls.ca.is_some()
    }

    /// Where the client connects: `--connect`, or in one process the
    /// server's `--listen` (before its port is known).
    fn target(&self) -> &Addr {
        match (self.mode, &self.connect) {
            (Mode::Client, Some(to)) => to,
            _ => &self.listen,
        }
    }
}

// ---------------------------------------------------------------------------
// Output

/// Seconds and rates in `--json`: three decimals (NaN stays NaN, written
/// as `null`).
fn r3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// The options in `--json`, the first keys of every report; those of a
/// side that does not run are left out.
#[derive(Serialize, Debug)]
struct OptsJson {
    mode: Mode,
    #[serde(skip_serializing_if = "Option::is_none")]
    connections: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    concurrency: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_bytes: Option<usize>,
    hold_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    threads: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sources: Option<usize>,
    /// Left out when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    tls: bool,
    /// `--boxed-handlers`; left out when false.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    boxed_handlers: bool,
}

impl OptsJson {
    fn new(o: &Opts) -> OptsJson {
        let client = o.mode != Mode::Server;
        OptsJson {
            mode: o.mode,
            connections: client.then_some(o.connections),
            concurrency: client.then_some(o.concurrency),
            request_bytes: client.then_some(o.request_bytes),
            hold_ms: o.hold.as_millis(),
            threads: (o.mode != Mode::Client).then_some(o.threads),
            sources: client.then_some(o.sources.len()),
            tls: o.tls(),
            boxed_handlers: o.mode != Mode::Client && o.storage == Storage::Boxed,
        }
    }
}

/// What became of the descriptor limit, in `--json`.
#[derive(Serialize, Debug)]
struct FdJson {
    soft_before: Option<u64>,
    soft: Option<u64>,
    hard: Option<u64>,
}

impl From<&Limit> for FdJson {
    fn from(l: &Limit) -> FdJson {
        FdJson {
            soft_before: l.before,
            soft: l.soft,
            hard: l.hard,
        }
    }
}

/// The one line `--json` prints (`benches/compare.py` reads it): the
/// options, then what the mode measured.
#[derive(Serialize, Debug)]
struct Report {
    #[serde(flatten)]
    opts: OptsJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    target: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client: Option<ClientJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    server: Option<ServerJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    process_cpu_s: Option<f64>,
    fd_limit: FdJson,
    #[serde(skip_serializing_if = "Option::is_none")]
    ok: Option<bool>,
}

impl Report {
    fn new(o: &Opts, fd: &Limit) -> Report {
        Report {
            opts: OptsJson::new(o),
            stopped_by: None,
            target: None,
            client: None,
            server: None,
            process_cpu_s: None,
            fd_limit: fd.into(),
            ok: None,
        }
    }

    fn print(&self) -> io::Result<()> {
        println!("{}", serde_json::to_string(self).map_err(io::Error::other)?);
        Ok(())
    }
}

fn print_rows(title: &str, rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{title}");
    for (k, v) in rows {
        let _ = writeln!(out, "  {k:<width$}  {v}");
    }
    print!("{out}");
}

fn setup_rows(o: &Opts, fd: &Limit) -> Vec<(String, String)> {
    let mut rows = Vec::new();
    if o.mode != Mode::Server {
        rows.push((
            "load".into(),
            format!(
                "{} exchanges, {} at once, {} request bytes",
                o.connections, o.concurrency, o.request_bytes
            ),
        ));
    }
    rows.push(("hold".into(), format!("{} ms", o.hold.as_millis())));
    if o.tls() {
        let how = match o.mode {
            Mode::Server => "rustls (ring)",
            _ => "rustls (ring); a full handshake per connection (no resumption)",
        };
        rows.push(("TLS".into(), how.into()));
    }
    if o.mode != Mode::Client {
        rows.push(("server threads".into(), o.threads.to_string()));
    }
    if !o.sources.is_empty() {
        rows.push(("source addresses".into(), o.sources.len().to_string()));
    }
    rows.push(("descriptor limit".into(), fd.to_string()));
    rows
}

// ---------------------------------------------------------------------------
// The three modes

/// Server and client in this process.
fn run_both(o: &Opts, fd: &Limit) -> io::Result<bool> {
    let tls = tls::setup(o)?;
    let deadline = Instant::now() + o.timeout;
    let servers = Servers::start(
        &o.listen, o.threads, o.storage, o.hold, deadline, tls.server,
    )?;
    let target = servers.addr.clone();
    if !o.json {
        eprintln!(
            "server on {target}, {} thread(s); client starting",
            o.threads
        );
    }
    let mut last_done = 0;
    let client = run_client(o, &target, tls.client, |l, elapsed| {
        eprintln!(
            "[{:>4}s] {}/{} done, {} in flight, {} errors, {}/s; server: {} open, {} half-closed",
            elapsed.as_secs(),
            l.completed,
            l.total,
            l.in_flight(),
            l.error_count(),
            l.completed - last_done,
            servers.gauge_sum(|g| &g.open),
            servers.gauge_sum(|g| &g.half_closed_in),
        );
        last_done = l.completed;
    });
    let reports = servers.finish()?;
    let client = client?;
    let rss_peak = memory().hwm;
    let server = ServerSummary::new(&reports, client.rss_ready, rss_peak);
    let ok = client.errors() == 0 && client.completed + client.resets_sent == client.total;
    if o.json {
        Report {
            client: Some(client.json()),
            server: Some(server.json()),
            ok: Some(ok),
            ..Report::new(o, fd)
        }
        .print()?;
    } else {
        let mut rows = setup_rows(o, fd);
        client.rows(&mut rows);
        server.rows(&mut rows, " (server and client)");
        let over = match target {
            Addr::Inet(_) if o.tls() => "TLS on loopback".to_string(),
            Addr::Inet(_) => "loopback".to_string(),
            unix => format!("the Unix socket {unix}"),
        };
        print_rows(
            &format!(
                "halfclosed: half-close echo over {over}, server and client reactors in one process"
            ),
            &rows,
        );
    }
    Ok(ok)
}

fn run_server(o: &Opts, fd: &Limit) -> io::Result<bool> {
    // Registered before `listening on` is printed, so a signal sent as soon
    // as the line is read already finds its handler.
    let stop = crate::signals::stop_flag()?;
    let tls = tls::setup(o)?;
    let t0 = Instant::now();
    let deadline = t0 + o.timeout;
    let servers = Servers::start(
        &o.listen, o.threads, o.storage, o.hold, deadline, tls.server,
    )?;
    let rss_baseline = memory().rss;
    println!("listening on {}", servers.addr);
    // Second, after the line scripts wait for: where the self-signed
    // certificate is.
    if let Some(note) = tls.note {
        println!("{note}");
    }
    io::stdout().flush()?;
    let mut next_tick = t0 + Duration::from_secs(1);
    let mut last = (u64::MAX, u64::MAX);
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
        let now = Instant::now();
        if now >= next_tick {
            next_tick += Duration::from_secs(1);
            let accepted = servers.gauge_sum(|g| &g.accepted);
            let open = servers.gauge_sum(|g| &g.open);
            if (accepted, open) != last {
                last = (accepted, open);
                eprintln!(
                    "[{:>4}s] accepted {accepted}, open {open}, half-closed {} (peak {})",
                    (now - t0).as_secs(),
                    servers.gauge_sum(|g| &g.half_closed_in),
                    servers.gauge_sum(|g| &g.peak_half_closed_in),
                );
            }
        }
    }
    let why = if stop.load(Ordering::Relaxed) {
        "signal"
    } else {
        "deadline"
    };
    let reports = servers.finish()?;
    let rss_peak = memory().hwm;
    let server = ServerSummary::new(&reports, rss_baseline, rss_peak);
    let process_cpu = procfs::process_cpu(std::process::id()).unwrap_or_default();
    if o.json {
        Report {
            stopped_by: Some(why),
            server: Some(server.json()),
            process_cpu_s: Some(r3((process_cpu.user + process_cpu.sys).as_secs_f64())),
            ..Report::new(o, fd)
        }
        .print()?;
    } else {
        let mut rows = setup_rows(o, fd);
        rows.push(("stopped by".into(), why.into()));
        server.rows(&mut rows, "");
        print_rows("halfclosed server", &rows);
    }
    Ok(server.errors + server.panics == 0)
}

fn run_client_only(o: &Opts, fd: &Limit) -> io::Result<bool> {
    let target = o.target();
    let tls = tls::setup(o)?;
    let mut last_done = 0;
    let client = run_client(o, target, tls.client, |l, elapsed| {
        eprintln!(
            "[{:>4}s] {}/{} done, {} in flight, {} errors, {}/s",
            elapsed.as_secs(),
            l.completed,
            l.total,
            l.in_flight(),
            l.error_count(),
            l.completed - last_done
        );
        last_done = l.completed;
    })?;
    let ok = client.errors() == 0 && client.completed + client.resets_sent == client.total;
    if o.json {
        Report {
            target: Some(target.to_string()),
            client: Some(client.json()),
            ok: Some(ok),
            ..Report::new(o, fd)
        }
        .print()?;
    } else {
        let mut rows = setup_rows(o, fd);
        rows.insert(0, ("server".into(), target.to_string()));
        client.rows(&mut rows);
        print_rows("halfclosed client", &rows);
    }
    Ok(ok)
}

/// This process's resident memory (zero if `/proc` cannot say).
fn memory() -> procfs::Memory {
    procfs::memory(std::process::id()).unwrap_or_default()
}

/// The `main` of `halfclosed`.
pub fn main() -> ExitCode {
    env_logger::init();
    let _ = EPOCH.set(Instant::now());
    run(Args::parse())
}

/// Run the benchmark `args` describe; its exit code.
pub fn run(args: Args) -> ExitCode {
    let o = match Opts::new(args) {
        Ok(o) => o,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(2));
        }
    };
    let fd = fdlimit::raise();
    let per_conn = match o.mode {
        Mode::Both => 2,
        _ => 1,
    };
    let needed = (o.concurrency as u64).saturating_mul(per_conn) + 64;
    if o.mode != Mode::Server && fd.soft.is_some_and(|s| s < needed) {
        eprintln!(
            "halfclosed: warning: {} exchanges at once need about {needed} descriptors; the limit is {}",
            o.concurrency, fd
        );
    }
    let result = match o.mode {
        Mode::Both => run_both(&o, &fd),
        Mode::Server => run_server(&o, &fd),
        Mode::Client => run_client_only(&o, &fd),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("halfclosed: {e}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Result<Opts, clap::Error> {
        let argv = std::iter::once("halfclosed").chain(s.split_whitespace());
        Args::try_parse_from(argv).and_then(Opts::new)
    }

    #[test]
    fn defaults_and_modes() {
        let o = args("").unwrap();
        assert_eq!(
            (o.mode, o.connections, o.concurrency, o.request_bytes),
            (Mode::Both, 10_000, 200, 64)
        );
        assert_eq!(
            (o.threads, o.timeout, o.hold, o.listen.to_string().as_str()),
            (1, Duration::from_secs(120), Duration::ZERO, "127.0.0.1:0")
        );
        assert_eq!(
            args("--server-only --listen 127.0.0.1:7001").unwrap().mode,
            Mode::Server
        );
        assert!(args("--client-only").is_err());
        assert_eq!(
            args("--client-only --connect=127.0.0.1:7001 --hold-ms 5")
                .unwrap()
                .hold,
            Duration::from_millis(5)
        );
        assert!(args("--server-only --client-only").is_err());
        assert!(args("--connect 127.0.0.1:7001").is_err());
        assert!(args("--threads 0").is_err());
        assert!(args("--connections 0").is_err());
        assert!(args("--request-bytes 16777217").is_err());
        assert!(args("--timeout 0").is_err());
        assert_eq!(
            args("--nope").unwrap_err().exit_code(),
            2,
            "bad arguments exit 2"
        );
    }

    #[test]
    fn sources_range() {
        let s = parse_sources("127.0.0.1-127.0.0.8").unwrap().0;
        assert_eq!(s.len(), 8);
        assert_eq!(s[7], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)));
        assert_eq!(parse_sources("127.0.0.2").unwrap().0.len(), 1);
        assert!(parse_sources("127.0.0.8-127.0.0.1").is_err());
        assert_eq!(
            args("--sources 127.0.0.1-127.0.0.3").unwrap().sources.len(),
            3
        );
    }

    #[test]
    fn unix_addresses() {
        let o = args("--listen /tmp/hc.sock").unwrap();
        assert_eq!(o.listen, Addr::Path("/tmp/hc.sock".into()));
        assert_eq!(o.target(), &o.listen);
        assert_eq!(
            args("--server-only --listen @hc").unwrap().listen,
            Addr::Abstract(b"hc".to_vec())
        );
        let o = args("--client-only --connect ./hc.sock").unwrap();
        assert_eq!(o.target(), &Addr::Path("./hc.sock".into()));
        assert_eq!(
            args("--listen hc.sock").unwrap_err().exit_code(),
            2,
            "a bare name is neither a path nor IP:PORT"
        );
    }

    /// What a Unix socket cannot do is refused with exit status 2, in the
    /// modes where it applies only.
    #[test]
    fn unix_refuses_threads_and_sources() {
        for bad in [
            "--listen /tmp/hc.sock --threads 2",
            "--server-only --listen @hc --threads 2",
            "--listen /tmp/hc.sock --sources 127.0.0.2",
            "--client-only --connect @hc --sources 127.0.0.2-127.0.0.3",
        ] {
            let e = args(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
            assert!(
                e.to_string().contains("Unix socket"),
                "{bad}: the error names the reason: {e}"
            );
        }
        for good in [
            "--listen 127.0.0.1:0 --threads 2 --sources 127.0.0.2",
            // The side that does not run ignores the option.
            "--client-only --connect 127.0.0.1:7001 --listen /tmp/hc.sock --threads 2",
            "--server-only --listen /tmp/hc.sock --sources 127.0.0.2",
        ] {
            assert!(args(good).is_ok(), "{good}");
        }
    }

    /// A directory for socket files, removed with what is in it.
    struct SockDir(std::path::PathBuf);

    impl SockDir {
        fn new(tag: &str) -> SockDir {
            let dir = std::env::temp_dir().join(format!("halfclosed-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            SockDir(dir)
        }
    }

    impl Drop for SockDir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// The benchmark's server and client over a Unix socket file: every
    /// exchange completes, the server's figures count them, and the socket
    /// file goes away with the server.
    #[test]
    fn server_and_client_over_a_unix_socket() {
        let dir = SockDir::new("both");
        let path = dir.0.join("hc.sock");
        let listen = Addr::Path(path.clone());
        let o = args(&format!(
            "--listen {} --connections 300 --concurrency 50 --timeout 30",
            path.display()
        ))
        .unwrap();
        let deadline = Instant::now() + o.timeout;
        let servers =
            Servers::start(&listen, 1, Storage::Inline, Duration::ZERO, deadline, None).unwrap();
        assert_eq!(servers.addr, listen);
        assert!(path.exists());
        let client = run_client(&o, &servers.addr, None, |_, _| {}).unwrap();
        let reports = servers.finish().unwrap();
        assert_eq!((client.completed, client.errors()), (300, 0));
        let server = ServerSummary::new(&reports, 0, 0);
        assert_eq!(
            (server.accepted, server.closed, server.errors),
            (300, 300, 0)
        );
        assert!(!path.exists(), "the listener removed its socket file");
        // One reactor only: no SO_REUSEPORT for a Unix socket.
        let e = Servers::start(&listen, 2, Storage::Inline, Duration::ZERO, deadline, None)
            .err()
            .unwrap();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    /// A connect that finds a Unix listener's queue full fails at once
    /// (`EAGAIN`); the client connects that exchange again later instead
    /// of counting an error. The server here listens with a queue of one
    /// and accepts nothing until the client has been refused (seen at its
    /// first progress tick), then serves everything.
    #[test]
    fn a_full_listen_queue_is_connected_again() {
        use halfclose::{Conn, Eof, Handler, Reactor};

        struct Echo(Vec<u8>);
        impl Handler for Echo {
            fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
                self.0.extend_from_slice(data);
            }
            fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
                conn.write(&std::mem::take(&mut self.0));
                conn.close();
                Eof::HalfClose
            }
        }

        const N: u64 = 8;
        let dir = SockDir::new("retry");
        let path = dir.0.join("full.sock");
        let (listening_tx, listening_rx) = std::sync::mpsc::channel();
        let (go_tx, go_rx) = std::sync::mpsc::channel::<()>();
        let server_path = path.clone();
        let server = std::thread::spawn(move || {
            let mut config = halfclose::Config::default();
            config.backlog = 1;
            let mut reactor = Reactor::with_config(config).unwrap();
            reactor
                .listen(halfclose::Bind::unix(&server_path), || Echo(Vec::new()))
                .unwrap();
            listening_tx.send(()).unwrap();
            go_rx
                .recv_timeout(Duration::from_secs(20))
                .expect("the client was refused");
            let deadline = Instant::now() + Duration::from_secs(20);
            while reactor.stats().closed < N && Instant::now() < deadline {
                reactor.run_once(Some(Duration::from_millis(100))).unwrap();
            }
            reactor.stats()
        });
        listening_rx.recv().unwrap();
        let o = args(&format!(
            "--client-only --connect {} --connections {N} --concurrency {N} --timeout 30",
            path.display()
        ))
        .unwrap();
        let mut go = Some(go_tx);
        let client = run_client(&o, o.target(), None, |l, _| {
            if l.connect_retries > 0 {
                if let Some(go) = go.take() {
                    go.send(()).unwrap();
                }
            }
        })
        .unwrap();
        let stats = server.join().unwrap();
        assert_eq!(
            (client.completed, client.errors()),
            (N, 0),
            "{:?}",
            client.errors
        );
        assert!(
            client.connect_retries >= N - 2,
            "at most two fit a queue of one: {} retries",
            client.connect_retries
        );
        assert_eq!(stats.accepted, N);
    }

    /// The TLS options: `--tls` in one process, the server's with
    /// --server-only, the client's with --client-only; TCP only; refused
    /// with exit status 2 and the reason otherwise, and by a build without
    /// the feature.
    #[test]
    fn tls_options_by_mode() {
        for bad in [
            "--tls --server-only",
            "--tls --client-only --connect 127.0.0.1:7001",
            "--tls-self-signed",
            "--client-only --connect 127.0.0.1:7001 --tls-self-signed",
            "--tls-ca ca.pem",
            "--server-only --tls-ca ca.pem",
            "--server-only --tls-cert c.pem",
            "--server-only --tls-self-signed --tls-cert c.pem --tls-key k.pem",
        ] {
            let e = args(bad).expect_err(bad);
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
        for unix in [
            "--tls --listen /tmp/hc.sock",
            "--server-only --tls-self-signed --listen @hc",
            "--client-only --connect /tmp/hc.sock --tls-ca ca.pem",
        ] {
            let e = args(unix).expect_err(unix);
            assert_eq!(e.exit_code(), 2, "{unix}");
            if tls::BUILT_IN {
                assert!(e.to_string().contains("TCP only"), "{unix}: {e}");
            }
        }
        for good in [
            "--tls",
            "--server-only --tls-self-signed",
            "--server-only --tls-cert c.pem --tls-key k.pem",
            "--client-only --connect 127.0.0.1:7001 --tls-ca ca.pem --tls-name example.test",
        ] {
            match (args(good), tls::BUILT_IN) {
                (Ok(o), true) => assert!(o.tls(), "{good}"),
                (Err(e), false) => {
                    assert_eq!(e.exit_code(), 2, "{good}");
                    assert!(e.to_string().contains("--features tls"), "{good}: {e}");
                }
                (Ok(_), false) => panic!("{good}: accepted without the feature"),
                (Err(e), true) => panic!("{good}: {e}"),
            }
        }
        assert!(!args("--server-only").unwrap().tls());
    }

    /// Serve with `server` (options after `--server-only`), then run the
    /// client with `client` (options after `--client-only --connect ADDR`),
    /// both over TLS; the client's summary, the server's, and the note of
    /// the server's setup.
    #[cfg(feature = "tls")]
    fn tls_run(
        server: &str,
        client: &str,
    ) -> (client::ClientSummary, ServerSummary, Option<String>) {
        let server_opts = args(&format!("--server-only {server} --timeout 30")).unwrap();
        let setup = tls::setup(&server_opts).unwrap();
        let deadline = Instant::now() + server_opts.timeout;
        let servers = Servers::start(
            &server_opts.listen,
            1,
            Storage::Inline,
            Duration::ZERO,
            deadline,
            setup.server,
        )
        .unwrap();
        let client_opts = args(&format!(
            "--client-only --connect {} {client} --timeout 30",
            servers.addr
        ))
        .unwrap();
        let client_tls = tls::setup(&client_opts).unwrap().client;
        let summary =
            run_client(&client_opts, client_opts.target(), client_tls, |_, _| {}).unwrap();
        let reports = servers.finish().unwrap();
        (summary, ServerSummary::new(&reports, 0, 0), setup.note)
    }

    /// The benchmark's server and client over TLS, each on its own: the
    /// server reads its certificate from PEM files, the client trusts it
    /// from `--tls-ca`; every exchange completes (a reply that ended
    /// without the server's close_notify would count as an error), with a
    /// full handshake each.
    #[cfg(feature = "tls")]
    #[test]
    fn server_and_client_over_tls() {
        let dir = SockDir::new("tls");
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let (client, server, note) = tls_run(
            &format!("--tls-cert {} --tls-key {}", cert.display(), key.display()),
            &format!(
                "--tls-ca {} --connections 200 --concurrency 20",
                cert.display()
            ),
        );
        assert!(note.is_none(), "no certificate to announce");
        assert_eq!(
            (client.completed, client.errors()),
            (200, 0),
            "{:?}",
            client.errors
        );
        assert_eq!(
            (server.accepted, server.closed, server.errors),
            (200, 200, 0)
        );
    }

    /// A client that does not trust the server's certificate: every
    /// exchange fails, and the error says why.
    #[cfg(feature = "tls")]
    #[test]
    fn a_certificate_not_trusted_is_an_error_that_says_so() {
        let dir = SockDir::new("tls-untrusted");
        let other = crate::tls::Identity::self_signed(&["localhost"]).unwrap();
        let ca = dir.0.join("other.pem");
        std::fs::write(&ca, &other.cert_pem).unwrap();
        let (client, _, note) = tls_run(
            "--tls-self-signed",
            &format!("--tls-ca {} --connections 5 --concurrency 5", ca.display()),
        );
        let note = note.expect("where the certificate is");
        let path = note.strip_prefix("certificate ").expect(&note);
        assert!(std::fs::read_to_string(path)
            .unwrap()
            .starts_with("-----BEGIN CERTIFICATE-----"));
        let _ = std::fs::remove_file(path);
        assert_eq!((client.completed, client.errors()), (0, 5));
        let (what, n) = &client.errors[0];
        assert_eq!(*n, 5, "{:?}", client.errors);
        assert!(what.contains("certificate"), "{what}");
    }

    /// The keys `benches/compare.py` reads, in the order they were written
    /// before `serde_json`, with a NaN as `null` and seconds rounded.
    #[test]
    fn json_keys_by_mode() {
        let fd = Limit {
            before: Some(1024),
            soft: Some(4096),
            hard: None,
        };
        let server = Report {
            stopped_by: Some("signal"),
            process_cpu_s: Some(r3(1.23456)),
            ..Report::new(&args("--server-only --threads 2").unwrap(), &fd)
        };
        assert_eq!(
            serde_json::to_string(&server).unwrap(),
            r#"{"mode":"server","hold_ms":0,"threads":2,"stopped_by":"signal","process_cpu_s":1.235,"fd_limit":{"soft_before":1024,"soft":4096,"hard":null}}"#
        );
        let client = Report {
            target: Some("127.0.0.1:7001".into()),
            ok: Some(true),
            ..Report::new(
                &args("--client-only --connect 127.0.0.1:7001 --hold-ms 5").unwrap(),
                &fd,
            )
        };
        assert_eq!(
            serde_json::to_string(&client).unwrap(),
            r#"{"mode":"client","connections":10000,"concurrency":200,"request_bytes":64,"hold_ms":5,"sources":0,"target":"127.0.0.1:7001","fd_limit":{"soft_before":1024,"soft":4096,"hard":null},"ok":true}"#
        );
        assert_eq!(serde_json::to_string(&r3(f64::NAN)).unwrap(), "null");
    }
}
