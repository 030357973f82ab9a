//! The half-close echo benchmark: many concurrent half-closed connections,
//! what each one costs the server, and how fast they turn over.
//!
//! cargo run --release --example halfclosed
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
//! from `/proc/self/status`. The soft descriptor limit is raised to the hard
//! one with `prlimit(1)`, as std exposes no `setrlimit`.
//!
//! Exit status: 0 when every exchange completed, 1 when any failed, 2 for
//! bad arguments.

use std::cell::{Cell, RefCell};
use std::fmt::{self, Write as _};
use std::io::{self, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, ExitCode, Stdio};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use halfclose::{
    Closed, Config, Conn, Ctx, Eof, Handle, Handler, ProtocolError, Reactor, Reason, Stats, TimerId,
};

/// The longest request the server buffers; a longer one is refused.
const MAX_REQUEST: usize = 16 << 20;
/// How long the server lets connections finish once told to stop.
const DRAIN_GRACE: Duration = Duration::from_secs(2);
/// When a `--reset-every` client resets its connection, after connecting.
const RESET_AFTER: Duration = Duration::from_millis(50);

const USAGE: &str = "\
halfclosed: the half-close echo benchmark of the halfclose reactor

usage: halfclosed [options]
  (no mode)               server and client in this process, over loopback
  --server-only           serve; print `listening on IP:PORT` first; stop on SIGINT/SIGTERM
  --client-only           load the server at --connect
  --listen ADDR           server address (default 127.0.0.1:0)
  --connect ADDR          server to load with --client-only
  --connections N         exchanges in all (default 10000)
  --concurrency C         exchanges in flight at once (default 200)
  --request-bytes B       request size, echoed back (default 64)
  --hold-ms H             server keeps each half-closed connection H ms before replying (default 0);
                          a --client-only run takes it to stretch its own timeouts
  --threads N             server reactors, one per thread, sharing the port (default 1)
  --sources A[-B]         client source addresses, used round-robin (IPv4 range)
  --reset-every K         client resets every K-th connection 50 ms after connecting (checks release)
  --timeout SECS          overall deadline, --server-only included (default 120)
  --json                  machine-readable output on stdout
  -h, --help              this text";

// ---------------------------------------------------------------------------
// Options

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Both,
    Server,
    Client,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Both => "both",
            Mode::Server => "server",
            Mode::Client => "client",
        }
    }
}

#[derive(Clone, Debug)]
struct Opts {
    mode: Mode,
    listen: SocketAddr,
    connect: Option<SocketAddr>,
    connections: u64,
    concurrency: usize,
    request_bytes: usize,
    hold: Duration,
    threads: usize,
    sources: Vec<IpAddr>,
    reset_every: u64,
    timeout: Duration,
    json: bool,
}

fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Opts, String> {
    let mut o = Opts {
        mode: Mode::Both,
        listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        connect: None,
        connections: 10_000,
        concurrency: 200,
        request_bytes: 64,
        hold: Duration::ZERO,
        threads: 1,
        sources: Vec::new(),
        reset_every: 0,
        timeout: Duration::from_secs(120),
        json: false,
    };
    let mut args = args.into_iter();
    let mut server_only = false;
    let mut client_only = false;
    while let Some(arg) = args.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = |name: &str| -> Result<String, String> {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{name} needs a value"))
        };
        fn num<T: std::str::FromStr>(flag: &str, v: &str) -> Result<T, String> {
            v.parse().map_err(|_| format!("{flag}: not a number: {v}"))
        }
        fn addr(flag: &str, v: &str) -> Result<SocketAddr, String> {
            v.parse()
                .map_err(|_| format!("{flag}: not an IP:PORT address: {v}"))
        }
        match flag.as_str() {
            "--server-only" => server_only = true,
            "--client-only" => client_only = true,
            "--json" => o.json = true,
            "--listen" => o.listen = addr(&flag, &value(&flag)?)?,
            "--connect" => o.connect = Some(addr(&flag, &value(&flag)?)?),
            "--connections" => o.connections = num(&flag, &value(&flag)?)?,
            "--concurrency" => o.concurrency = num(&flag, &value(&flag)?)?,
            "--request-bytes" => o.request_bytes = num(&flag, &value(&flag)?)?,
            "--hold-ms" => o.hold = Duration::from_millis(num(&flag, &value(&flag)?)?),
            "--threads" => o.threads = num(&flag, &value(&flag)?)?,
            "--sources" => o.sources = parse_sources(&value(&flag)?)?,
            "--reset-every" => o.reset_every = num(&flag, &value(&flag)?)?,
            "--timeout" => o.timeout = Duration::from_secs(num(&flag, &value(&flag)?)?),
            "-h" | "--help" => return Err(String::new()),
            _ => return Err(format!("unknown argument: {arg}")),
        }
    }
    o.mode = match (server_only, client_only) {
        (true, true) => return Err("--server-only and --client-only exclude each other".into()),
        (true, false) => Mode::Server,
        (false, true) => Mode::Client,
        (false, false) => Mode::Both,
    };
    if o.mode == Mode::Client && o.connect.is_none() {
        return Err("--client-only needs --connect ADDR".into());
    }
    if o.mode != Mode::Client && o.connect.is_some() {
        return Err("--connect goes with --client-only".into());
    }
    if !(1..=100_000_000).contains(&o.connections) {
        return Err("--connections must be between 1 and 100000000".into());
    }
    if o.concurrency == 0 {
        return Err("--concurrency must be at least 1".into());
    }
    if !(1..=MAX_REQUEST).contains(&o.request_bytes) {
        return Err(format!(
            "--request-bytes must be between 1 and {MAX_REQUEST}"
        ));
    }
    if !(1..=256).contains(&o.threads) {
        return Err("--threads must be between 1 and 256".into());
    }
    if o.timeout.is_zero() {
        return Err("--timeout must be at least 1 second".into());
    }
    Ok(o)
}

/// `A` or `A-B`, IPv4, inclusive.
fn parse_sources(s: &str) -> Result<Vec<IpAddr>, String> {
    let bad = || format!("--sources: expected A or A-B (IPv4), got {s}");
    let (a, b) = s.split_once('-').unwrap_or((s, s));
    let a: Ipv4Addr = a.trim().parse().map_err(|_| bad())?;
    let b: Ipv4Addr = b.trim().parse().map_err(|_| bad())?;
    let (a, b) = (u32::from(a), u32::from(b));
    if b < a || b - a >= 65_536 {
        return Err(format!(
            "--sources: {s} is empty or wider than 65536 addresses"
        ));
    }
    Ok((a..=b).map(|ip| IpAddr::V4(Ipv4Addr::from(ip))).collect())
}

// ---------------------------------------------------------------------------
// What /proc says about this process

mod procfs {
    use std::time::Duration;

    /// Linux reports `utime`/`stime` in units of `USER_HZ`, 100 on every
    /// architecture's ABI.
    const TICK: Duration = Duration::from_millis(10);

    /// CPU time: total (nanosecond precision where available) and the
    /// user/system split (clock-tick precision).
    #[derive(Clone, Copy, Default, Debug)]
    pub struct Cpu {
        pub total: Duration,
        pub user: Duration,
        pub sys: Duration,
    }

    impl Cpu {
        pub fn since(self, earlier: Cpu) -> Cpu {
            Cpu {
                total: self.total.saturating_sub(earlier.total),
                user: self.user.saturating_sub(earlier.user),
                sys: self.sys.saturating_sub(earlier.sys),
            }
        }

        pub fn add(self, other: Cpu) -> Cpu {
            Cpu {
                total: self.total + other.total,
                user: self.user + other.user,
                sys: self.sys + other.sys,
            }
        }
    }

    /// `utime` and `stime` of a `stat` file.
    fn stat_times(path: &str) -> Option<(Duration, Duration)> {
        let s = std::fs::read_to_string(path).ok()?;
        // The command name may hold spaces and parentheses: fields are
        // counted after the last ')'. utime and stime are fields 14 and 15;
        // the first after ')' is field 3.
        let rest = &s[s.rfind(')')? + 1..];
        let mut fields = rest.split_whitespace().skip(11);
        let utime: u32 = fields.next()?.parse().ok()?;
        let stime: u32 = fields.next()?.parse().ok()?;
        Some((TICK * utime, TICK * stime))
    }

    fn cpu(stat: &str, schedstat: Option<&str>) -> Cpu {
        let (user, sys) = stat_times(stat).unwrap_or_default();
        let precise = schedstat
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
            .map(Duration::from_nanos);
        Cpu {
            total: precise.unwrap_or(user + sys),
            user,
            sys,
        }
    }

    /// CPU time of the calling thread.
    pub fn thread_cpu() -> Cpu {
        cpu(
            "/proc/thread-self/stat",
            Some("/proc/thread-self/schedstat"),
        )
    }

    /// CPU time of the whole process (every thread).
    pub fn process_cpu() -> Cpu {
        cpu("/proc/self/stat", None)
    }

    /// (VmRSS, VmHWM) in bytes.
    pub fn rss() -> (u64, u64) {
        let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let field = |name: &str| {
            s.lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kb| kb * 1024)
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// (soft, hard) limit on open files; `None` for unlimited.
    pub fn nofile() -> Option<(Option<u64>, Option<u64>)> {
        let s = std::fs::read_to_string("/proc/self/limits").ok()?;
        let line = s.lines().find_map(|l| l.strip_prefix("Max open files"))?;
        let mut f = line.split_whitespace();
        let mut limit = || match f.next()? {
            "unlimited" => Some(None),
            v => v.parse().ok().map(Some),
        };
        Some((limit()?, limit()?))
    }
}

use procfs::Cpu;

/// What became of the descriptor limit.
#[derive(Clone, Copy, Default, Debug)]
struct FdLimit {
    before: Option<u64>,
    soft: Option<u64>,
    hard: Option<u64>,
}

impl fmt::Display for FdLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_string(), |v| v.to_string());
        write!(f, "soft {}, hard {}", show(self.soft), show(self.hard))?;
        if self.before != self.soft {
            write!(f, " (raised from {})", show(self.before))?;
        } else if self.soft != self.hard {
            f.write_str(" (could not raise it)")?;
        }
        Ok(())
    }
}

/// Raise the soft limit on open files to the hard one. std has no
/// `setrlimit` and this crate uses no `unsafe`, so `prlimit(1)` does it for
/// us, on our pid; the result is read back from `/proc/self/limits`.
fn raise_fd_limit() -> FdLimit {
    let Some((soft, hard)) = procfs::nofile() else {
        return FdLimit::default();
    };
    let mut lim = FdLimit {
        before: soft,
        soft,
        hard,
    };
    if soft == hard {
        return lim;
    }
    let hard_s = hard.map_or_else(|| "unlimited".to_string(), |h| h.to_string());
    let child = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg(format!("--nofile={hard_s}:{hard_s}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => {
            let deadline = Instant::now() + Duration::from_secs(5);
            loop {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) if Instant::now() >= deadline => {
                        let _ = child.kill();
                        let _ = child.wait();
                        break;
                    }
                    Ok(None) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }
        Err(e) => log::warn!("cannot run prlimit to raise the descriptor limit: {e}"),
    }
    if let Some((soft, _)) = procfs::nofile() {
        lim.soft = soft;
    }
    lim
}

// ---------------------------------------------------------------------------
// The server

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Milliseconds since the program started.
fn now_ms() -> u32 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    u32::try_from(epoch.elapsed().as_millis()).unwrap_or(u32::MAX)
}

thread_local! {
    /// Held connections reset by their client: how many, and the longest
    /// any of them was held before it was released.
    static RESET_WHILE_HELD: Cell<(u64, u32)> = const { Cell::new((0, 0)) };
}

/// The server side of one exchange: collects the request to the client's
/// FIN, holds the half-closed connection, replies, closes.
struct HoldEcho {
    request: Vec<u8>,
    hold_ms: u32,
    /// When the FIN arrived (ms since start), while held; 0 otherwise.
    held_since: u32,
}

impl HoldEcho {
    fn reply(&mut self, conn: &mut Conn<'_>) {
        let request = std::mem::take(&mut self.request);
        // A write refused here means the connection already failed; its
        // handle_error and handle_close follow.
        conn.write(&request);
        conn.close();
    }
}

impl Handler for HoldEcho {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if self.request.len() + data.len() > MAX_REQUEST {
            conn.close_with(ProtocolError::FrameTooLarge);
            return;
        }
        self.request.extend_from_slice(data);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        if self.hold_ms == 0 {
            self.reply(conn);
        } else {
            self.held_since = now_ms().max(1);
            conn.set_timer(Duration::from_millis(u64::from(self.hold_ms)));
        }
        // Our write half stays open: the reply goes out after the hold.
        Eof::HalfClose
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        self.held_since = 0;
        self.reply(conn);
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        if self.held_since != 0 && closed.reason == Reason::Reset {
            let held = now_ms().saturating_sub(self.held_since);
            RESET_WHILE_HELD.with(|c| {
                let (n, max) = c.get();
                c.set((n + 1, max.max(held)));
            });
        }
    }
}

/// Gauges one server thread publishes for the progress line.
#[derive(Default, Debug)]
struct Gauges {
    accepted: AtomicU64,
    open: AtomicU64,
    half_closed_in: AtomicU64,
    peak_half_closed_in: AtomicU64,
}

impl Gauges {
    fn publish(&self, s: &Stats) {
        self.accepted.store(s.accepted, Ordering::Relaxed);
        self.open.store(s.open as u64, Ordering::Relaxed);
        self.half_closed_in
            .store(s.half_closed_in as u64, Ordering::Relaxed);
        self.peak_half_closed_in
            .store(s.peak_half_closed_in as u64, Ordering::Relaxed);
    }
}

/// What one server thread did.
#[derive(Debug)]
struct ThreadReport {
    stats: Stats,
    cpu: Cpu,
    reset_while_held: u64,
    reset_held_max_ms: u32,
}

/// The server reactors, one per thread.
struct Servers {
    addr: SocketAddr,
    handles: Vec<Handle>,
    joins: Vec<JoinHandle<io::Result<ThreadReport>>>,
    gauges: Arc<Vec<Gauges>>,
}

impl Servers {
    /// Start `threads` reactors on `listen`; the first picks the port and
    /// the others share it through `SO_REUSEPORT`.
    fn start(
        listen: SocketAddr,
        threads: usize,
        hold: Duration,
        deadline: Instant,
    ) -> io::Result<Servers> {
        let gauges: Arc<Vec<Gauges>> = Arc::new((0..threads).map(|_| Gauges::default()).collect());
        let mut s = Servers {
            addr: listen,
            handles: Vec::new(),
            joins: Vec::new(),
            gauges: Arc::clone(&gauges),
        };
        for i in 0..threads {
            let (tx, rx) = mpsc::channel();
            let addr = s.addr;
            let gauges = Arc::clone(&gauges);
            let join = std::thread::Builder::new()
                .name(format!("server-{i}"))
                .spawn(move || serve(addr, threads > 1, hold, deadline, &gauges[i], tx))?;
            let started = rx
                .recv_timeout(Duration::from_secs(10))
                .map_err(|_| io::Error::other(format!("server thread {i} did not start")));
            match started {
                Ok(Ok((addr, handle))) => {
                    s.addr = addr;
                    s.handles.push(handle);
                    s.joins.push(join);
                }
                Ok(Err(e)) | Err(e) => {
                    s.stop();
                    let _ = s.join();
                    return Err(e);
                }
            }
        }
        Ok(s)
    }

    /// Tell every reactor to drain.
    fn stop(&self) {
        for h in &self.handles {
            let _ = h.drain(DRAIN_GRACE);
        }
    }

    fn join(self) -> io::Result<Vec<ThreadReport>> {
        let mut reports = Vec::new();
        for j in self.joins {
            let r = j
                .join()
                .map_err(|_| io::Error::other("server thread panicked"))??;
            reports.push(r);
        }
        Ok(reports)
    }

    fn gauge_sum(&self, f: impl Fn(&Gauges) -> &AtomicU64) -> u64 {
        self.gauges
            .iter()
            .map(|g| f(g).load(Ordering::Relaxed))
            .sum()
    }
}

type Started = io::Result<(SocketAddr, Handle)>;

/// One server thread: its own reactor on the shared port, driven until it
/// drained or the deadline passed.
fn serve(
    addr: SocketAddr,
    reuse_port: bool,
    hold: Duration,
    deadline: Instant,
    gauges: &Gauges,
    started: mpsc::Sender<Started>,
) -> io::Result<ThreadReport> {
    let cpu0 = procfs::thread_cpu();
    let mut config = Config::default();
    config.backlog = 65_535; // the kernel caps it at net.core.somaxconn
    config.reuse_port = reuse_port;
    config.peer_eof_timeout = Some((hold + Duration::from_secs(30)).max(Duration::from_secs(60)));
    config.idle_timeout = Some((hold + Duration::from_secs(60)).max(Duration::from_secs(300)));
    let hold_ms = u32::try_from(hold.as_millis()).unwrap_or(u32::MAX);
    let setup = Reactor::with_config(config).and_then(|mut r| {
        let id = r.listen(addr, move || HoldEcho {
            request: Vec::new(),
            hold_ms,
            held_since: 0,
        })?;
        let local = r.local_addr(id).expect("listener is open");
        Ok((r, local))
    });
    let mut reactor = match setup {
        Ok((r, local)) => {
            let _ = started.send(Ok((local, r.handle())));
            r
        }
        Err(e) => {
            let copy = io::Error::new(e.kind(), e.to_string());
            let _ = started.send(Err(e));
            return Err(copy);
        }
    };
    let hard_deadline = deadline + DRAIN_GRACE + Duration::from_secs(1);
    loop {
        reactor.run_once(Some(Duration::from_millis(100)))?;
        let stats = reactor.stats();
        gauges.publish(&stats);
        if reactor.is_draining() && stats.open == 0 {
            break;
        }
        let now = Instant::now();
        if now >= deadline && !reactor.is_draining() {
            reactor.drain(DRAIN_GRACE);
        }
        if now >= hard_deadline {
            log::warn!(
                "server thread: {} connections still open at the deadline",
                stats.open
            );
            break;
        }
    }
    let stats = reactor.stats();
    drop(reactor);
    let (reset_while_held, reset_held_max_ms) = RESET_WHILE_HELD.with(Cell::get);
    Ok(ThreadReport {
        stats,
        cpu: procfs::thread_cpu().since(cpu0),
        reset_while_held,
        reset_held_max_ms,
    })
}

/// The servers' figures, added up over threads.
#[derive(Debug, Default)]
struct ServerSummary {
    threads: usize,
    accepted: u64,
    accepted_per_thread: Vec<u64>,
    closed: u64,
    peak_open: u64,
    peak_half_closed: u64,
    resets: u64,
    timeouts: u64,
    aborts: u64,
    errors: u64,
    panics: u64,
    cpu: Cpu,
    reset_while_held: u64,
    reset_held_max_ms: u32,
    rss_baseline: u64,
    rss_peak: u64,
}

impl ServerSummary {
    fn new(reports: &[ThreadReport], rss_baseline: u64, rss_peak: u64) -> Self {
        let mut s = ServerSummary {
            threads: reports.len(),
            rss_baseline,
            rss_peak,
            ..Default::default()
        };
        for r in reports {
            let st = &r.stats;
            s.accepted += st.accepted;
            s.accepted_per_thread.push(st.accepted);
            s.closed += st.closed;
            // With several threads: the sum of per-thread peaks, an upper
            // bound of the process's concurrent peak.
            s.peak_open += st.peak_open as u64;
            s.peak_half_closed += st.peak_half_closed_in as u64;
            s.resets += st.resets;
            s.timeouts += st.timeouts;
            s.aborts += st.aborts;
            s.errors += st.errors;
            s.panics += st.panics;
            s.cpu = s.cpu.add(r.cpu);
            s.reset_while_held += r.reset_while_held;
            s.reset_held_max_ms = s.reset_held_max_ms.max(r.reset_held_max_ms);
        }
        s
    }

    fn per_conn(&self, d: Duration) -> f64 {
        if self.accepted == 0 {
            return f64::NAN;
        }
        d.as_secs_f64() * 1e6 / self.accepted as f64
    }

    /// Resident memory above the baseline per connection open at the peak.
    fn rss_per_conn(&self) -> f64 {
        if self.peak_open == 0 {
            return f64::NAN;
        }
        self.rss_peak.saturating_sub(self.rss_baseline) as f64 / self.peak_open as f64
    }

    fn json(&self) -> Json {
        Json::obj([
            ("threads", Json::from(self.threads as u64)),
            ("accepted", self.accepted.into()),
            (
                "accepted_per_thread",
                Json::Arr(self.accepted_per_thread.iter().map(|&n| n.into()).collect()),
            ),
            ("closed", self.closed.into()),
            ("peak_open", self.peak_open.into()),
            ("peak_half_closed", self.peak_half_closed.into()),
            ("resets", self.resets.into()),
            ("timeouts", self.timeouts.into()),
            ("aborts", self.aborts.into()),
            ("errors", self.errors.into()),
            ("panics", self.panics.into()),
            ("cpu_s", self.cpu.total.as_secs_f64().into()),
            ("cpu_user_s", self.cpu.user.as_secs_f64().into()),
            ("cpu_sys_s", self.cpu.sys.as_secs_f64().into()),
            ("cpu_us_per_conn", self.per_conn(self.cpu.total).into()),
            ("rss_baseline_bytes", self.rss_baseline.into()),
            ("rss_peak_bytes", self.rss_peak.into()),
            ("rss_per_conn_bytes", self.rss_per_conn().into()),
            ("reset_while_held", self.reset_while_held.into()),
            (
                "reset_held_max_ms",
                u64::from(self.reset_held_max_ms).into(),
            ),
        ])
    }

    fn rows(&self, rows: &mut Vec<(String, String)>, rss_note: &str) {
        let plural = if self.threads > 1 {
            " (sum over threads)"
        } else {
            ""
        };
        let mut accepted = self.accepted.to_string();
        if self.threads > 1 {
            let per: Vec<String> = self
                .accepted_per_thread
                .iter()
                .map(u64::to_string)
                .collect();
            let _ = write!(accepted, " ({} per thread)", per.join(" + "));
        }
        rows.push(("server accepted".into(), accepted));
        rows.push((
            format!("server peak open{plural}"),
            self.peak_open.to_string(),
        ));
        rows.push((
            format!("server peak half-closed{plural}"),
            self.peak_half_closed.to_string(),
        ));
        rows.push((
            "server resets / timeouts / errors".into(),
            format!(
                "{} / {} / {}",
                self.resets,
                self.timeouts,
                self.errors + self.panics
            ),
        ));
        if self.reset_while_held > 0 {
            rows.push((
                "held connections reset".into(),
                format!(
                    "{}, released at most {} ms after their FIN",
                    self.reset_while_held, self.reset_held_max_ms
                ),
            ));
        }
        rows.push((
            format!("server CPU{plural}"),
            format!(
                "{:.3} s (user {:.2}, sys {:.2})",
                self.cpu.total.as_secs_f64(),
                self.cpu.user.as_secs_f64(),
                self.cpu.sys.as_secs_f64()
            ),
        ));
        rows.push((
            "server CPU per connection".into(),
            format!(
                "{:.1} µs (user {:.1}, sys {:.1})",
                self.per_conn(self.cpu.total),
                self.per_conn(self.cpu.user),
                self.per_conn(self.cpu.sys)
            ),
        ));
        rows.push((
            format!("peak RSS{rss_note}"),
            format!(
                "{} (baseline {})",
                mib(self.rss_peak),
                mib(self.rss_baseline)
            ),
        ));
        rows.push((
            "RSS per connection at peak".into(),
            if self.peak_open >= 1000 {
                format!("{:.0} B above baseline", self.rss_per_conn())
            } else {
                // Fixed costs (each reactor's 64 KiB read buffer is touched
                // on first use) dominate a small peak.
                "- (hold 1000 or more: --hold-ms 2000 --concurrency 5000)".into()
            },
        ));
    }
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

// ---------------------------------------------------------------------------
// The client

/// State shared by every exchange of the client reactor.
struct Load {
    target: SocketAddr,
    sources: Vec<IpAddr>,
    next_source: usize,
    /// Request bytes: exchange `i` sends `B` bytes from offset `i % 251`, so
    /// neighbouring exchanges send different bytes and a server that mixes
    /// them up is caught.
    pattern: Rc<[u8]>,
    request_bytes: usize,
    total: u64,
    concurrency: u64,
    reset_every: u64,
    started: u64,
    finished: u64,
    completed: u64,
    resets_sent: u64,
    /// Latency of each completed exchange, µs, connect to EOF; allocated
    /// and touched before the run.
    latencies: Vec<u32>,
    errors: Vec<(String, u64)>,
    /// Stop starting exchanges (deadline).
    stopping: bool,
}

impl Load {
    fn error(&mut self, what: String) {
        match self.errors.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((what, 1)),
        }
    }

    fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    fn in_flight(&self) -> u64 {
        self.started - self.finished
    }

    fn request(&self, idx: u64) -> &[u8] {
        let off = (idx % 251) as usize;
        &self.pattern[off..off + self.request_bytes]
    }
}

type Shared = Rc<RefCell<Load>>;

/// Start exchanges until `concurrency` are in flight or all have started.
fn launch(ctx: &mut Ctx<'_>, load: &Shared) {
    loop {
        let (idx, target, from) = {
            let mut l = load.borrow_mut();
            if l.stopping || l.started >= l.total || l.in_flight() >= l.concurrency {
                return;
            }
            let idx = l.started;
            l.started += 1;
            let from = if l.sources.is_empty() {
                None
            } else {
                let ip = l.sources[l.next_source % l.sources.len()];
                l.next_source = l.next_source.wrapping_add(1);
                Some(SocketAddr::new(ip, 0))
            };
            (idx, l.target, from)
        };
        let ex = Exchange {
            load: Rc::clone(load),
            idx,
            t0: Instant::now(),
            got: 0,
            state: ExState::Running,
        };
        let result = match from {
            Some(from) => ctx.connect(halfclose::Connect::to(target).from(from), ex),
            None => ctx.connect(target, ex),
        };
        if let Err(e) = result {
            let mut l = load.borrow_mut();
            l.finished += 1;
            l.error(format!("connect: {e}"));
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ExState {
    Running,
    /// The reply was longer than the request or differed from it.
    Corrupt,
    /// We reset the connection on purpose (`--reset-every`).
    ResetSent,
    /// The whole reply arrived, then EOF.
    Done,
}

/// The client side of one exchange.
struct Exchange {
    load: Shared,
    idx: u64,
    t0: Instant,
    got: usize,
    state: ExState,
}

impl Handler for Exchange {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let reset = {
            let l = self.load.borrow();
            // The bytes go straight to the kernel; nothing is queued.
            conn.write(l.request(self.idx));
            l.reset_every > 0 && self.idx % l.reset_every == l.reset_every - 1
        };
        conn.shutdown_write();
        if reset {
            conn.set_timer(RESET_AFTER);
        }
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        if self.state != ExState::Running {
            return;
        }
        let l = self.load.borrow();
        let want = l.request(self.idx);
        let end = self.got + data.len();
        if end > want.len() || want[self.got..end] != *data {
            self.state = ExState::Corrupt;
        }
        self.got = end;
    }

    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        if self.state == ExState::Running && self.got == self.load.borrow().request_bytes {
            self.state = ExState::Done;
            let us = u32::try_from(self.t0.elapsed().as_micros()).unwrap_or(u32::MAX);
            let mut l = self.load.borrow_mut();
            let i = l.completed as usize;
            l.latencies[i] = us;
            l.completed += 1;
        }
        // Our FIN is out and the peer's has come: the exchange is over.
        Eof::Close
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, _timer: TimerId) {
        if self.state == ExState::Running {
            self.state = ExState::ResetSent;
            conn.abort();
        }
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        {
            let mut l = self.load.borrow_mut();
            l.finished += 1;
            match self.state {
                ExState::Done => {}
                ExState::ResetSent if closed.reason == Reason::Aborted => l.resets_sent += 1,
                ExState::Corrupt => l.error("reply differs from the request".into()),
                _ if self.got < l.request_bytes && closed.reason.is_graceful() => {
                    let what = format!("short reply ({} of {} bytes)", self.got, l.request_bytes);
                    l.error(what)
                }
                _ => l.error(closed.reason.to_string()),
            }
        }
        launch(ctx, &self.load);
    }
}

/// What the client measured.
#[derive(Debug)]
struct ClientSummary {
    total: u64,
    completed: u64,
    errors: Vec<(String, u64)>,
    not_started: u64,
    resets_sent: u64,
    wall: Duration,
    /// Sorted, µs.
    latencies: Vec<u32>,
    cpu: Cpu,
    /// Resident memory when everything was set up, before the first connect.
    rss_ready: u64,
}

impl ClientSummary {
    fn errors(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum::<u64>() + self.not_started
    }

    fn rate(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q`, µs (nearest rank).
    fn quantile(&self, q: f64) -> Option<u32> {
        let n = self.latencies.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.latencies[rank - 1])
    }

    fn json(&self) -> Json {
        let lat = |q: f64| {
            self.quantile(q)
                .map_or(Json::Null, |v| Json::from(u64::from(v)))
        };
        let mut errors: Vec<(String, Json)> = self
            .errors
            .iter()
            .map(|(w, n)| (w.clone(), Json::from(*n)))
            .collect();
        if self.not_started > 0 {
            errors.push((
                "not started before the deadline".into(),
                self.not_started.into(),
            ));
        }
        Json::obj([
            ("connections", Json::from(self.total)),
            ("completed", self.completed.into()),
            ("errors", self.errors().into()),
            ("error_kinds", Json::Obj(errors)),
            ("resets_sent", self.resets_sent.into()),
            ("wall_s", self.wall.as_secs_f64().into()),
            ("conn_per_s", self.rate().into()),
            ("latency_us_p50", lat(0.5)),
            ("latency_us_p99", lat(0.99)),
            ("latency_us_p999", lat(0.999)),
            (
                "latency_us_max",
                self.latencies
                    .last()
                    .map_or(Json::Null, |v| u64::from(*v).into()),
            ),
            ("cpu_s", self.cpu.total.as_secs_f64().into()),
            (
                "cpu_us_per_conn",
                (self.cpu.total.as_secs_f64() * 1e6 / self.completed.max(1) as f64).into(),
            ),
        ])
    }

    fn rows(&self, rows: &mut Vec<(String, String)>) {
        let ms = |v: Option<u32>| {
            v.map_or_else(|| "-".into(), |us| format!("{:.2}", f64::from(us) / 1000.0))
        };
        rows.push((
            "completed".into(),
            format!("{} of {}", self.completed, self.total),
        ));
        rows.push(("errors".into(), self.errors().to_string()));
        for (what, n) in &self.errors {
            rows.push(("  error".into(), format!("{n} × {what}")));
        }
        if self.not_started > 0 {
            rows.push((
                "  error".into(),
                format!("{} × not started before the deadline", self.not_started),
            ));
        }
        if self.resets_sent > 0 {
            rows.push((
                "resets sent on purpose".into(),
                self.resets_sent.to_string(),
            ));
        }
        rows.push((
            "wall time".into(),
            format!("{:.3} s", self.wall.as_secs_f64()),
        ));
        rows.push((
            "connections per second".into(),
            format!("{:.0}", self.rate()),
        ));
        rows.push((
            "latency p50 / p99 / p99.9 / max".into(),
            format!(
                "{} / {} / {} / {} ms",
                ms(self.quantile(0.5)),
                ms(self.quantile(0.99)),
                ms(self.quantile(0.999)),
                ms(self.latencies.last().copied())
            ),
        ));
        rows.push((
            "client CPU per connection".into(),
            format!(
                "{:.1} µs",
                self.cpu.total.as_secs_f64() * 1e6 / self.completed.max(1) as f64
            ),
        ));
    }
}

/// Run the load against `target` on this thread. `on_tick` runs once per
/// second with the client's progress, for the progress line.
fn run_client(
    o: &Opts,
    target: SocketAddr,
    mut on_tick: impl FnMut(&Load, Duration),
) -> io::Result<ClientSummary> {
    let mut config = Config::default();
    // Our FIN goes first; the reply may come only after the server's hold.
    config.linger_timeout = Some(o.hold + Duration::from_secs(30));
    config.idle_timeout = Some((o.hold + Duration::from_secs(60)).max(Duration::from_secs(300)));
    let mut reactor = Reactor::with_config(config)?;
    let mut pattern = Vec::with_capacity(o.request_bytes + 251);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for _ in 0..o.request_bytes + 251 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        pattern.push((x >> 56) as u8);
    }
    let load = Rc::new(RefCell::new(Load {
        target,
        sources: o.sources.clone(),
        next_source: 0,
        pattern: pattern.into(),
        request_bytes: o.request_bytes,
        total: o.connections,
        concurrency: o.concurrency as u64,
        reset_every: o.reset_every,
        started: 0,
        finished: 0,
        completed: 0,
        resets_sent: 0,
        // Not zeros: a zeroed allocation stays untouched, and would grow
        // the RSS during the run rather than before the baseline.
        latencies: vec![u32::MAX; o.connections as usize],
        errors: Vec::new(),
        stopping: false,
    }));
    let (rss_ready, _) = procfs::rss();
    let cpu0 = procfs::thread_cpu();
    let t0 = Instant::now();
    let deadline = t0 + o.timeout;
    let mut next_tick = t0 + Duration::from_secs(1);
    launch(&mut reactor.ctx(), &load);
    loop {
        if load.borrow().finished >= o.connections {
            break;
        }
        reactor.run_once(Some(Duration::from_millis(100)))?;
        let now = Instant::now();
        if now >= next_tick {
            next_tick += Duration::from_secs(1);
            on_tick(&load.borrow(), now - t0);
        }
        if now >= deadline {
            let mut l = load.borrow_mut();
            l.stopping = true;
            log::warn!("deadline: {} exchanges still in flight", l.in_flight());
            break;
        }
    }
    let wall = t0.elapsed();
    // Whatever is still open is reset and counted as an error (reason:
    // reactor stopped).
    drop(reactor);
    let cpu = procfs::thread_cpu().since(cpu0);
    let mut l = load.borrow_mut();
    let n = l.completed as usize;
    let mut latencies = std::mem::take(&mut l.latencies);
    latencies.truncate(n);
    latencies.sort_unstable();
    Ok(ClientSummary {
        total: l.total,
        completed: l.completed,
        errors: std::mem::take(&mut l.errors),
        not_started: l.total - l.started,
        resets_sent: l.resets_sent,
        wall,
        latencies,
        cpu,
        rss_ready,
    })
}

// ---------------------------------------------------------------------------
// Output

/// Just enough JSON.
#[derive(Debug)]
enum Json {
    Null,
    Bool(bool),
    Int(u64),
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn obj<const N: usize>(fields: [(&str, Json); N]) -> Json {
        Json::Obj(
            fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect(),
        )
    }
}

impl From<u64> for Json {
    fn from(v: u64) -> Json {
        Json::Int(v)
    }
}

impl From<f64> for Json {
    fn from(v: f64) -> Json {
        Json::Num(v)
    }
}

impl From<&str> for Json {
    fn from(v: &str) -> Json {
        Json::Str(v.to_string())
    }
}

impl From<Option<u64>> for Json {
    fn from(v: Option<u64>) -> Json {
        v.map_or(Json::Null, Json::Int)
    }
}

fn json_str(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c if (c as u32) < 0x20 => write!(f, "\\u{:04x}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('"')
}

impl fmt::Display for Json {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Json::Null => f.write_str("null"),
            Json::Bool(b) => write!(f, "{b}"),
            Json::Int(v) => write!(f, "{v}"),
            Json::Num(v) if v.is_finite() => write!(f, "{}", (v * 1000.0).round() / 1000.0),
            Json::Num(_) => f.write_str("null"),
            Json::Str(s) => json_str(f, s),
            Json::Arr(items) => {
                f.write_char('[')?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_char(']')
            }
            Json::Obj(fields) => {
                f.write_char('{')?;
                for (i, (k, v)) in fields.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    json_str(f, k)?;
                    write!(f, ":{v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

fn fd_json(l: &FdLimit) -> Json {
    Json::obj([
        ("soft_before", l.before.into()),
        ("soft", l.soft.into()),
        ("hard", l.hard.into()),
    ])
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

fn setup_rows(o: &Opts, fd: &FdLimit) -> Vec<(String, String)> {
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
    if o.mode != Mode::Client {
        rows.push(("server threads".into(), o.threads.to_string()));
    }
    if !o.sources.is_empty() {
        rows.push(("source addresses".into(), o.sources.len().to_string()));
    }
    rows.push(("descriptor limit".into(), fd.to_string()));
    rows
}

fn opts_json(o: &Opts) -> Vec<(String, Json)> {
    let mut v = vec![
        ("mode".to_string(), Json::from(o.mode.name())),
        ("connections".into(), o.connections.into()),
        ("concurrency".into(), (o.concurrency as u64).into()),
        ("request_bytes".into(), (o.request_bytes as u64).into()),
        ("hold_ms".into(), (o.hold.as_millis() as u64).into()),
        ("threads".into(), (o.threads as u64).into()),
        ("sources".into(), (o.sources.len() as u64).into()),
    ];
    match o.mode {
        Mode::Server => v.retain(|(k, _)| {
            !matches!(
                k.as_str(),
                "connections" | "concurrency" | "request_bytes" | "sources"
            )
        }),
        Mode::Client => v.retain(|(k, _)| k != "threads"),
        Mode::Both => {}
    }
    v
}

// ---------------------------------------------------------------------------
// The three modes

/// Server and client in this process.
fn run_both(o: &Opts, fd: &FdLimit) -> io::Result<bool> {
    let deadline = Instant::now() + o.timeout;
    let servers = Servers::start(o.listen, o.threads, o.hold, deadline)?;
    let target = servers.addr;
    if !o.json {
        eprintln!(
            "server on {target}, {} thread(s); client starting",
            o.threads
        );
    }
    let mut last_done = 0;
    let client = run_client(o, target, |l, elapsed| {
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
    servers.stop();
    let reports = servers.join()?;
    let client = client?;
    let (_, rss_peak) = procfs::rss();
    let server = ServerSummary::new(&reports, client.rss_ready, rss_peak);
    let ok = client.errors() == 0 && client.completed + client.resets_sent == client.total;
    if o.json {
        let mut fields = opts_json(o);
        fields.push(("client".into(), client.json()));
        fields.push(("server".into(), server.json()));
        fields.push(("fd_limit".into(), fd_json(fd)));
        fields.push(("ok".into(), Json::Bool(ok)));
        println!("{}", Json::Obj(fields));
    } else {
        let mut rows = setup_rows(o, fd);
        client.rows(&mut rows);
        server.rows(&mut rows, " (server and client)");
        print_rows(
            "halfclosed: half-close echo over loopback, server and client reactors in one process",
            &rows,
        );
    }
    Ok(ok)
}

fn run_server(o: &Opts, fd: &FdLimit) -> io::Result<bool> {
    let stop = Arc::new(AtomicBool::new(false));
    // Registered before `listening on` is printed, so a signal sent as soon
    // as the line is read already finds its handler.
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    let t0 = Instant::now();
    let deadline = t0 + o.timeout;
    let servers = Servers::start(o.listen, o.threads, o.hold, deadline)?;
    let (rss_baseline, _) = procfs::rss();
    println!("listening on {}", servers.addr);
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
    servers.stop();
    let reports = servers.join()?;
    let (_, rss_peak) = procfs::rss();
    let server = ServerSummary::new(&reports, rss_baseline, rss_peak);
    let process_cpu = procfs::process_cpu();
    if o.json {
        let mut fields = opts_json(o);
        fields.push(("stopped_by".into(), why.into()));
        fields.push(("server".into(), server.json()));
        fields.push((
            "process_cpu_s".into(),
            (process_cpu.user + process_cpu.sys).as_secs_f64().into(),
        ));
        fields.push(("fd_limit".into(), fd_json(fd)));
        println!("{}", Json::Obj(fields));
    } else {
        let mut rows = setup_rows(o, fd);
        rows.push(("stopped by".into(), why.into()));
        server.rows(&mut rows, "");
        print_rows("halfclosed server", &rows);
    }
    Ok(server.errors + server.panics == 0)
}

fn run_client_only(o: &Opts, fd: &FdLimit) -> io::Result<bool> {
    let target = o.connect.expect("checked by parse_args");
    let mut last_done = 0;
    let client = run_client(o, target, |l, elapsed| {
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
        let mut fields = opts_json(o);
        fields.push(("target".into(), target.to_string().as_str().into()));
        fields.push(("client".into(), client.json()));
        fields.push(("fd_limit".into(), fd_json(fd)));
        fields.push(("ok".into(), Json::Bool(ok)));
        println!("{}", Json::Obj(fields));
    } else {
        let mut rows = setup_rows(o, fd);
        rows.insert(0, ("server".into(), target.to_string()));
        client.rows(&mut rows);
        print_rows("halfclosed client", &rows);
    }
    Ok(ok)
}

fn main() -> ExitCode {
    env_logger::init();
    let _ = EPOCH.set(Instant::now());
    let o = match parse_args(std::env::args().skip(1)) {
        Ok(o) => o,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("halfclosed: {msg}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let fd = raise_fd_limit();
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

    fn args(s: &str) -> Result<Opts, String> {
        parse_args(s.split_whitespace().map(String::from))
    }

    #[test]
    fn defaults_and_modes() {
        let o = args("").unwrap();
        assert_eq!(
            (o.mode, o.connections, o.concurrency, o.request_bytes),
            (Mode::Both, 10_000, 200, 64)
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
    }

    #[test]
    fn sources_range() {
        let s = parse_sources("127.0.0.1-127.0.0.8").unwrap();
        assert_eq!(s.len(), 8);
        assert_eq!(s[7], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 8)));
        assert_eq!(parse_sources("127.0.0.2").unwrap().len(), 1);
        assert!(parse_sources("127.0.0.8-127.0.0.1").is_err());
    }

    #[test]
    fn json_is_escaped_and_finite() {
        let j = Json::obj([
            ("a\"b", Json::Num(f64::NAN)),
            ("n", 3u64.into()),
            ("x", 1.23456.into()),
        ]);
        assert_eq!(j.to_string(), r#"{"a\"b":null,"n":3,"x":1.235}"#);
    }
}
