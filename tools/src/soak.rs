//! Soak: a million connection lifecycles through the fault proxy, with
//! random faults, every byte verified.
//!
//! ```text
//! cargo run --release -p halfclose-tools --bin soak -- --lifecycles 1000000 --seed 1 --timeout 1800
//! ```
//!
//! Three reactors run in this process, one per thread: an echo server that
//! checks every byte it receives, the fault proxy (the handlers of
//! [`crate::faultproxy`], as the `faultproxy` binary runs them), and the
//! clients. Lifecycle k connects to the proxy from its own loopback
//! address, 127.1.0.0 + k, and the proxy connects upstream from the same
//! address; so the proxy and the server both know k from the peer address,
//! and all three derive from `--seed` and k the same payload (size and
//! bytes), the same fault plan, and the same client behaviour. Nothing is
//! shared between the threads but their reactors' handles.
//!
//! A lifecycle: connect, send the payload (honouring backpressure),
//! half-close, read the echo to EOF, close. The proxy's plan may shape the
//! exchange (`split`, `delay`, `stall`: it must still be complete), reset
//! it at byte N, send a FIN early at byte N, or never read one direction;
//! a few clients abort after a prefix, or go silent until the server's idle
//! timeout closes them. Each side classifies its end by what the plan
//! predicts: every byte received must match the payload, a graceful end
//! must carry exactly the bytes the plan lets through, and an injected
//! failure must arrive as the reason it was injected as. Anything else is
//! counted as unexpected.
//!
//! At the end the proxy and the server are drained; every reactor must
//! report no open connection and the process must hold exactly the
//! descriptors it held before the first reactor was made. Exit status 0
//! only if no byte was lost or altered, no outcome was unexpected, nothing
//! leaked, and the run finished within `--timeout`.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use clap::Parser;
use halfclose::{Closed, Config, Conn, Ctx, Eof, Handle, Handler, Reactor, Reason, Stats, Timeout};

use crate::faultproxy::{self, Cut, Plan, Seg, C2S, S2C};
use crate::procfs;
use crate::rng::{item_seed, ByteStream, Rng};

/// The first lifecycle's client address; lifecycle k uses this + k.
const BASE_IP: u32 = 0x7F01_0000; // 127.1.0.0
/// Lifecycles stay below 127.255.255.255.
const MAX_LIFECYCLES: u64 = 0x7FFF_FFFF - 0x7F01_0000;

/// The server's idle timeout: what ends a silent client. Long enough that
/// a busy machine's scheduling hiccups do not pass for a silent peer (a
/// connection waiting for the proxy's first delayed segment has moved no
/// byte yet).
const SERVER_IDLE: Duration = Duration::from_secs(5);

// ------------------------------------------------------------------ lifecycles

/// How the client of a lifecycle behaves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum ClientPlan {
    /// Send the payload, half-close, read to EOF.
    Polite,
    /// Send this many bytes, then reset.
    Abort(usize),
    /// Send this many bytes, then nothing, no FIN: the server's idle
    /// timeout ends it.
    Silent(usize),
}

/// Everything seed and k decide about one lifecycle.
#[derive(Clone, Copy, Debug)]
struct Life {
    plan: Plan,
    size: usize,
    client: ClientPlan,
}

/// Lifecycle k under `seed`: the same in all three threads.
fn life(seed: u64, k: u64) -> Life {
    let mut rng = Rng::new(item_seed(seed, k));
    let mut plan = Plan::default();
    let dir = rng.range(0, 1) as usize;
    // Percent of lifecycles per fault, and the largest payload each gets
    // (1-byte segments are expensive: 2 writes and 2 reads per byte).
    let pick = rng.range(0, 99);
    let max_size = match pick {
        0..=29 => 256 * 1024, // none
        30..=34 => {
            plan.dirs.iter_mut().for_each(|d| d.seg = Seg::Fixed(1));
            256
        }
        35..=44 => {
            plan.dirs.iter_mut().for_each(|d| d.seg = Seg::Random);
            16 * 1024
        }
        45..=49 => {
            let delay = Duration::from_millis(rng.range(0, 2));
            plan.dirs.iter_mut().for_each(|d| {
                d.seg = Seg::Random;
                d.delay = delay;
            });
            16 * 1024
        }
        50..=59 => {
            plan.dirs[dir].stall = Some((0, Duration::from_millis(rng.range(1, 20))));
            64 * 1024
        }
        60..=74 => {
            plan.dirs[dir].cut = Some((Cut::Rst, 0));
            64 * 1024
        }
        75..=89 => {
            plan.dirs[dir].cut = Some((Cut::Fin, 0));
            64 * 1024
        }
        _ => {
            plan.dirs[dir].noread = Some(Duration::from_millis(rng.range(5, 30)));
            16 * 1024
        }
    };
    let size = match rng.range(0, 99) {
        0..=69 => rng.range(0, 2048),
        70..=94 => rng.range(0, 32 * 1024),
        _ => rng.range(0, 256 * 1024),
    }
    .min(max_size) as usize;
    // Fault positions up to a quarter past the end: some never fire.
    let max_at = (size + size / 4 + 1) as u64;
    for d in &mut plan.dirs {
        if let Some((at, _)) = &mut d.stall {
            *at = rng.range(0, max_at);
        }
        if let Some((_, at)) = &mut d.cut {
            *at = rng.range(0, max_at);
        }
    }
    let client = if plan == Plan::default() {
        match rng.range(0, 99) {
            0..=9 => ClientPlan::Abort(rng.range(0, size as u64) as usize),
            10..=14 => ClientPlan::Silent(rng.range(0, size.min(2048) as u64) as usize),
            _ => ClientPlan::Polite,
        }
    } else {
        ClientPlan::Polite
    };
    Life { plan, size, client }
}

fn ip_of(k: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(BASE_IP + k as u32))
}

fn k_of(addr: SocketAddr) -> Option<u64> {
    match addr.ip() {
        IpAddr::V4(ip) => u32::from(ip).checked_sub(BASE_IP).map(u64::from),
        IpAddr::V6(_) => None,
    }
}

/// The payload of lifecycle k: an endless [`ByteStream`], so that sender
/// and checker each walk it without holding it.
fn payload(seed: u64, k: u64) -> ByteStream {
    ByteStream::new(item_seed(seed ^ 0x5EED, k))
}

/// What the plan predicts for the exchange as a whole.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Expect {
    /// Every byte there and back, graceful ends.
    Clean,
    /// `rst` at byte N fires.
    Reset { dir: usize, at: usize },
    /// `fin` at byte N fires.
    FinEarly { dir: usize, at: usize },
    /// `noread` on this direction.
    NoRead { dir: usize },
    /// The client resets after this many bytes.
    ClientAbort(usize),
    /// The client goes silent after this many bytes.
    Silent(usize),
}

fn expect(l: &Life) -> Expect {
    match l.client {
        ClientPlan::Abort(p) => return Expect::ClientAbort(p),
        ClientPlan::Silent(p) => return Expect::Silent(p),
        ClientPlan::Polite => {}
    }
    for dir in [C2S, S2C] {
        let d = l.plan.dirs[dir];
        if d.noread.is_some() {
            return Expect::NoRead { dir };
        }
        // A cut at byte N fires only if byte N+1 exists (the echo is as
        // long as the payload).
        match d.cut {
            Some((Cut::Rst, at)) if (at as usize) < l.size => {
                return Expect::Reset {
                    dir,
                    at: at as usize,
                }
            }
            Some((Cut::Fin, at)) if (at as usize) < l.size => {
                return Expect::FinEarly {
                    dir,
                    at: at as usize,
                }
            }
            _ => {}
        }
    }
    Expect::Clean
}

/// An outcome's name in the report.
fn outcome_name(e: Expect) -> &'static str {
    match e {
        Expect::Clean => "clean (all bytes verified)",
        Expect::Reset { .. } => "reset-as-injected",
        Expect::FinEarly { .. } => "fin-early-as-injected",
        Expect::NoRead { .. } => "noread-reset-as-injected",
        Expect::ClientAbort(_) => "client-abort-as-injected",
        Expect::Silent(_) => "timed-out-as-injected",
    }
}

/// Counts by outcome, and the first few failures described.
#[derive(Default, Debug)]
struct Tally {
    by_outcome: BTreeMap<&'static str, u64>,
    failures: u64,
    /// Failures by what was expected and what happened instead.
    failed_by: BTreeMap<String, u64>,
    examples: Vec<String>,
    bytes_verified: u64,
}

impl Tally {
    fn ok(&mut self, what: &'static str) {
        *self.by_outcome.entry(what).or_default() += 1;
    }

    /// Count `e`'s outcome as met when `ok`, else as a failure described
    /// by `detail` (only built for the examples kept).
    fn judge(&mut self, ok: bool, e: Expect, reason: Reason, detail: impl FnOnce() -> String) {
        if ok {
            self.ok(outcome_name(e));
        } else {
            let detail = detail();
            self.fail(
                format!("expected {}, got {reason}", outcome_name(e)),
                detail,
            );
        }
    }

    fn fail(&mut self, kind: String, msg: String) {
        self.failures += 1;
        *self.failed_by.entry(kind).or_default() += 1;
        if self.examples.len() < 20 {
            self.examples.push(msg);
        }
    }

    fn merge_into(&self, title: &str) -> String {
        let mut s = format!("{title}:\n");
        for (k, v) in &self.by_outcome {
            s += &format!("  {k:<34} {v:>9}\n");
        }
        s += &format!("  {:<34} {:>9}\n", "UNEXPECTED", self.failures);
        for (k, v) in &self.failed_by {
            s += &format!("    {k}: {v}\n");
        }
        s
    }
}

// ------------------------------------------------------------------ the server

/// Echo, checking every byte against lifecycle k's payload.
struct Echo {
    seed: u64,
    tally: Rc<RefCell<Tally>>,
    k: Option<u64>,
    stream: ByteStream,
    intact: bool,
}

impl Handler for Echo {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        // Echoed pieces go out at once, not behind the previous one's ACK.
        let _ = conn.set_nodelay(true);
        // A connection reset before it was accepted has no peer address.
        self.k = conn.peer_addr().ok().and_then(|a| a.inet()).and_then(k_of);
        if let Some(k) = self.k {
            self.stream = payload(self.seed, k);
        }
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if self.k.is_none() || !self.stream.check(data) {
            self.intact = false;
        }
        if conn.try_write(data).is_ok() && conn.is_write_blocked() {
            conn.pause_reading();
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, c: &Closed) {
        let mut t = self.tally.borrow_mut();
        let Some(k) = self.k else {
            // The proxy can connect, send and reset before this thread
            // accepts: `getpeername` then fails, so k (and the bytes) cannot
            // be checked; the reset must still arrive as one.
            return if c.reason == Reason::Reset {
                t.ok("reset before accept (peer unknown)");
            } else {
                t.fail(
                    format!("unknown peer, {}", c.reason),
                    format!("server: unknown peer, {} (in {})", c.reason, c.bytes_in),
                );
            };
        };
        let l = life(self.seed, k);
        let e = expect(&l);
        let n = c.bytes_in as usize;
        if !self.intact {
            return t.fail(
                format!("{}: bytes altered", outcome_name(e)),
                format!("server: lifecycle {k}: bytes altered ({e:?}, {l:?})"),
            );
        }
        t.bytes_verified += c.bytes_in;
        let size = l.size;
        let ok = match (e, c.reason) {
            (Expect::Clean, Reason::PeerClosed) => n == size,
            (Expect::Reset { dir: C2S, at }, Reason::Reset) => n <= at,
            // The server may finish before the proxy resets the echo.
            (Expect::Reset { .. }, Reason::Reset) => n <= size,
            (Expect::Reset { dir: S2C, .. }, Reason::PeerClosed) => n <= size,
            (Expect::FinEarly { dir: C2S, at }, Reason::PeerClosed) => n == at,
            // The client stops sending when the early FIN reaches it.
            (Expect::FinEarly { .. }, Reason::PeerClosed) => n <= size,
            (Expect::NoRead { dir: C2S }, Reason::Reset) => n == 0,
            (Expect::NoRead { .. }, Reason::Reset) => n <= size,
            (Expect::NoRead { dir: S2C }, Reason::PeerClosed) => n == size,
            (Expect::ClientAbort(p), Reason::Reset) => n <= p,
            (Expect::Silent(p), Reason::TimedOut(Timeout::Idle)) => n == p,
            _ => false,
        };
        t.judge(ok, e, c.reason, || {
            format!(
                "server: lifecycle {k}: {} with {n} of {size} bytes in; expected {e:?} ({l:?})",
                c.reason
            )
        });
    }
}

// ------------------------------------------------------------------ the clients

/// What the client side keeps of the whole run.
#[derive(Default)]
struct Run {
    tally: Tally,
    started: u64,
    done: u64,
    in_flight: u64,
    silent_in_flight: u64,
    bytes_sent: u64,
}

struct Client {
    k: u64,
    life: Life,
    run: Rc<RefCell<Run>>,
    /// Bytes to send: the payload, or the prefix before an abort or silence.
    target: usize,
    sent: usize,
    out: ByteStream,
    check: ByteStream,
    received: usize,
    intact: bool,
    eof: bool,
}

impl Client {
    fn new(seed: u64, k: u64, run: &Rc<RefCell<Run>>) -> Client {
        let life = life(seed, k);
        let target = match life.client {
            ClientPlan::Polite => life.size,
            ClientPlan::Abort(p) | ClientPlan::Silent(p) => p,
        };
        Client {
            k,
            life,
            run: Rc::clone(run),
            target,
            sent: 0,
            out: payload(seed, k),
            check: payload(seed, k),
            received: 0,
            intact: true,
            eof: false,
        }
    }

    /// Send until the payload is out or the queue is write-blocked; then
    /// do what the client plan says.
    fn send_more(&mut self, conn: &mut Conn<'_>) {
        let mut chunk = [0u8; 16 * 1024];
        while self.sent < self.target && !conn.is_write_blocked() {
            let n = (self.target - self.sent).min(chunk.len());
            self.out.fill(&mut chunk[..n]);
            if conn.try_write(&chunk[..n]).is_err() {
                return; // closing (an early FIN) or failed: handle_close says
            }
            self.sent += n;
        }
        if self.sent == self.target {
            match self.life.client {
                ClientPlan::Polite => conn.shutdown_write(),
                ClientPlan::Abort(_) => conn.abort(),
                ClientPlan::Silent(_) => {}
            }
        }
    }
}

impl Handler for Client {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let _ = conn.set_nodelay(true);
        self.send_more(conn);
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        if !self.check.check(data) {
            self.intact = false;
        }
        self.received += data.len();
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        self.send_more(conn);
    }

    fn handle_readable_eof(&mut self, _conn: &mut Conn<'_>) -> Eof {
        self.eof = true;
        Eof::Close
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, c: &Closed) {
        let mut run = self.run.borrow_mut();
        run.done += 1;
        run.in_flight -= 1;
        if let ClientPlan::Silent(_) = self.life.client {
            run.silent_in_flight -= 1;
        }
        run.bytes_sent += self.sent as u64;
        let (k, l, n) = (self.k, self.life, self.received);
        let e = expect(&l);
        let t = &mut run.tally;
        if !self.intact {
            return t.fail(
                format!("{}: echo altered", outcome_name(e)),
                format!("client: lifecycle {k}: echo altered ({e:?}, {l:?})"),
            );
        }
        t.bytes_verified += n as u64;
        let graceful = c.reason.is_graceful() && self.eof;
        let ok = match e {
            Expect::Clean => graceful && n == l.size,
            Expect::Reset { at, .. } => c.reason == Reason::Reset && n <= at,
            Expect::FinEarly { at, .. } => graceful && n == at,
            Expect::NoRead { .. } => c.reason == Reason::Reset && n == 0,
            Expect::ClientAbort(_) => c.reason == Reason::Aborted,
            Expect::Silent(p) => c.reason == Reason::PeerClosed && self.eof && n == p,
        };
        t.judge(ok, e, c.reason, || {
            format!(
                "client: lifecycle {k}: {} (eof {}) with {n} of {} bytes echoed; expected {e:?} ({l:?})",
                c.reason, self.eof, l.size
            )
        });
    }
}

// ------------------------------------------------------------------ the run

/// soak: connection lifecycles through the fault proxy, every byte verified
///
/// Exit status 0 only if no byte was lost or altered, no outcome was
/// unexpected, nothing leaked, and the run finished within --timeout.
#[derive(Parser, Debug)]
#[command(name = "soak", verbatim_doc_comment)]
pub struct Args {
    /// Connection lifecycles to run
    #[arg(long, value_name = "N", default_value_t = 1_000_000)]
    pub lifecycles: u64,
    /// Number the lifecycles from K (to replay one: --start K --lifecycles 1)
    #[arg(long, value_name = "K", default_value_t = 0)]
    pub start: u64,
    /// Seed of every payload, fault and client behaviour
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub seed: u64,
    /// Give up (and fail) after this long
    #[arg(long, value_name = "SECS", default_value_t = 1800)]
    pub timeout: u64,
    /// Lifecycles in flight at once (silent clients extra)
    #[arg(long, value_name = "N", default_value_t = 256,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub concurrency: u64,
}

/// `field` of this process's `status`, in KiB (0 if unreadable).
fn vm_kib(field: &str) -> u64 {
    procfs::status_kib(std::process::id(), field).unwrap_or(0)
}

/// What a server or proxy thread hands back when its reactor returns.
struct Report {
    stats: Stats,
    tally: Tally,
    counts: Option<faultproxy::Counts>,
}

/// Run a reactor on its own thread; `setup` listens and returns what the
/// thread reports at the end.
fn spawn_reactor<F>(
    name: &str,
    config: Config,
    setup: F,
) -> (SocketAddr, Handle, std::thread::JoinHandle<Report>)
where
    F: FnOnce(&mut Reactor) -> (SocketAddr, Box<dyn FnOnce(&Reactor) -> Report>) + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let mut reactor = Reactor::with_config(config).expect("reactor");
            let (addr, finish) = setup(&mut reactor);
            tx.send((addr, reactor.handle())).expect("send address");
            if let Err(e) = reactor.run() {
                eprintln!("soak: reactor failed: {e}");
            }
            finish(&reactor)
        })
        .expect("spawn thread");
    let (addr, handle) = rx.recv().expect("reactor thread started");
    (addr, handle, thread)
}

/// The `main` of `soak`.
pub fn main() -> ExitCode {
    env_logger::init();
    let o = Args::parse();
    if o.start.saturating_add(o.lifecycles) > MAX_LIFECYCLES {
        use clap::CommandFactory;
        Args::command()
            .error(
                clap::error::ErrorKind::ValueValidation,
                format!("at most {MAX_LIFECYCLES} lifecycles (one loopback address each)"),
            )
            .exit();
    }
    run(&o)
}

/// Run the soak `o` describes; its exit code.
pub fn run(o: &Args) -> ExitCode {
    let seed = o.seed;
    let timeout = Duration::from_secs(o.timeout);
    let fds_before = procfs::open_fds().unwrap_or(0);
    let started = Instant::now();

    // The server: echo with checks; its idle timeout ends silent clients.
    let mut config = Config::default();
    config.idle_timeout = Some(SERVER_IDLE);
    config.linger_timeout = Some(Duration::from_secs(5));
    config.peer_eof_timeout = Some(Duration::from_secs(5));
    config.backlog = 4096;
    let (server_addr, server, server_thread) = spawn_reactor("server", config, move |r| {
        let tally = Rc::new(RefCell::new(Tally::default()));
        let t = Rc::clone(&tally);
        let id = r
            .listen("127.0.0.1:0", move || Echo {
                seed,
                tally: Rc::clone(&t),
                k: None,
                stream: ByteStream::new(0),
                intact: true,
            })
            .expect("listen");
        let addr = r.local_addr(id).and_then(|a| a.inet()).unwrap();
        (
            addr,
            Box::new(move |r: &Reactor| Report {
                stats: r.stats(),
                tally: tally.take(),
                counts: None,
            }),
        )
    });

    // The fault proxy: the plan of lifecycle k, k from the client's address.
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_secs(10));
    config.linger_timeout = Some(Duration::from_secs(10));
    config.peer_eof_timeout = Some(Duration::from_secs(10));
    config.backlog = 4096;
    let (proxy_addr, proxy, proxy_thread) = spawn_reactor("proxy", config, move |r| {
        let chooser: faultproxy::Chooser = Box::new(move |_, peer| match peer.and_then(k_of) {
            Some(k) => (life(seed, k).plan, item_seed(seed ^ 0xFA17, k)),
            None => (Plan::default(), 0),
        });
        let shared = faultproxy::Shared::new(server_addr, true, chooser);
        let s = Rc::clone(&shared);
        let id = r.listen("127.0.0.1:0", move || s.accept()).expect("listen");
        let addr = r.local_addr(id).and_then(|a| a.inet()).unwrap();
        (
            addr,
            Box::new(move |r: &Reactor| Report {
                stats: r.stats(),
                tally: Tally::default(),
                counts: Some(*shared.counts.borrow()),
            }),
        )
    });

    // The clients, on this thread.
    let mut config = Config::default();
    config.idle_timeout = None;
    config.linger_timeout = Some(Duration::from_secs(10));
    config.peer_eof_timeout = Some(Duration::from_secs(10));
    let mut clients = Reactor::with_config(config).expect("reactor");
    let run = Rc::new(RefCell::new(Run::default()));
    let mut timed_out = false;
    let mut next_report = Instant::now() + Duration::from_secs(10);
    let mut connect_errors = 0u64;
    let mut rss_early = 0;
    while run.borrow().done < o.lifecycles {
        if started.elapsed() > timeout {
            timed_out = true;
            break;
        }
        loop {
            let mut r = run.borrow_mut();
            let busy = r.in_flight - r.silent_in_flight;
            if r.started >= o.lifecycles || busy >= o.concurrency {
                break;
            }
            let k = o.start + r.started;
            r.started += 1;
            r.in_flight += 1;
            drop(r);
            let client = Client::new(seed, k, &run);
            if let ClientPlan::Silent(_) = client.life.client {
                run.borrow_mut().silent_in_flight += 1;
            }
            let from = SocketAddr::new(ip_of(k), 0);
            if let Err(e) = clients.connect(halfclose::Connect::to(proxy_addr).from(from), client) {
                connect_errors += 1;
                let mut r = run.borrow_mut();
                r.tally.fail(
                    "connect failed".into(),
                    format!("client: lifecycle {k}: connect failed: {e}"),
                );
                r.done += 1;
                r.in_flight -= 1;
            }
        }
        if let Err(e) = clients.run_once(Some(Duration::from_millis(100))) {
            eprintln!("soak: client reactor failed: {e}");
            break;
        }
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(10);
            let r = run.borrow();
            if rss_early == 0 {
                rss_early = vm_kib("VmRSS");
            }
            eprintln!(
                "soak: {:>7.1} s  {} of {} done, {} in flight, {} unexpected",
                started.elapsed().as_secs_f64(),
                r.done,
                o.lifecycles,
                r.in_flight,
                r.tally.failures
            );
        }
    }
    let client_elapsed = started.elapsed();

    // Let the proxy and the server finish what is in flight; what a drain
    // deadline aborts ends as `Stopped`, an unexpected outcome.
    let drain = if timed_out {
        Duration::from_millis(100)
    } else {
        Duration::from_secs(15)
    };
    let _ = proxy.drain(drain);
    let proxy_report = proxy_thread.join().expect("proxy thread");
    let _ = server.drain(drain);
    let server_report = server_thread.join().expect("server thread");
    drop((proxy, server));
    clients.drain(drain);
    let _ = clients.run();
    let client_stats = clients.stats();
    drop(clients);
    let rss_end = vm_kib("VmRSS");
    let hwm = vm_kib("VmHWM");
    let fds_after = procfs::open_fds().unwrap_or(0);
    let elapsed = started.elapsed();

    let run = run.take();
    let c = proxy_report.counts.unwrap_or_default();
    let (ss, ps, cs) = (server_report.stats, proxy_report.stats, client_stats);
    let mut problems: Vec<String> = Vec::new();
    if timed_out {
        problems.push(format!("timed out after {timeout:?}"));
    }
    if run.done != o.lifecycles {
        problems.push(format!(
            "{} of {} lifecycles finished",
            run.done, o.lifecycles
        ));
    }
    if run.tally.failures + server_report.tally.failures > 0 {
        problems.push(format!(
            "{} unexpected outcomes ({} client side, {} server side)",
            run.tally.failures + server_report.tally.failures,
            run.tally.failures,
            server_report.tally.failures
        ));
    }
    for (who, s) in [("server", ss), ("proxy", ps), ("clients", cs)] {
        if s.open != 0 {
            problems.push(format!("{who}: {} connections still open", s.open));
        }
        if s.panics != 0 {
            problems.push(format!("{who}: {} handler panics", s.panics));
        }
    }
    if cs.closed != o.lifecycles {
        problems.push(format!("clients: {} closed of {}", cs.closed, o.lifecycles));
    }
    if ss.accepted != ss.closed || ps.accepted + ps.connected > ps.closed {
        problems.push("accepted and closed connections do not balance".into());
    }
    if fds_after != fds_before {
        problems.push(format!(
            "descriptors: {fds_before} before, {fds_after} after"
        ));
    }

    println!(
        "soak: {} lifecycles, seed {seed}, concurrency {}, {:.1} s ({:.0} lifecycles/s; clients done at {:.1} s)",
        run.done,
        o.concurrency,
        elapsed.as_secs_f64(),
        run.done as f64 / client_elapsed.as_secs_f64(),
        client_elapsed.as_secs_f64()
    );
    print!("{}", run.tally.merge_into("client outcomes"));
    print!("{}", server_report.tally.merge_into("server outcomes"));
    println!(
        "faults injected by the proxy: {} pairs, {} shaped segments, {} stalls, {} resets, {} early FINs, {} noread resets, {} bytes discarded",
        c.pairs, c.segments, c.stalls, c.resets, c.fins, c.noreads, c.discarded
    );
    println!(
        "bytes: clients sent {}, echo verified by clients {}, verified by the server {}",
        run.bytes_sent, run.tally.bytes_verified, server_report.tally.bytes_verified
    );
    println!(
        "connections: server accepted {} closed {} (resets {}, timeouts {}); proxy accepted {} connected {} closed {} (aborts {}); clients closed {} (connect errors {connect_errors})",
        ss.accepted, ss.closed, ss.resets, ss.timeouts, ps.accepted, ps.connected, ps.closed, ps.aborts, cs.closed
    );
    println!(
        "open at end: server {}, proxy {}, clients {}; peak open: server {}, proxy {}, clients {}",
        ss.open, ps.open, cs.open, ss.peak_open, ps.peak_open, cs.peak_open
    );
    println!(
        "descriptors: {fds_before} before, {fds_after} after; memory: VmRSS {rss_early} KiB at 10 s, {rss_end} KiB at the end, peak {hwm} KiB"
    );
    for e in run
        .tally
        .examples
        .iter()
        .chain(&server_report.tally.examples)
    {
        println!("  {e}");
    }
    if problems.is_empty() {
        println!("result: OK");
        ExitCode::SUCCESS
    } else {
        for p in &problems {
            println!("FAILED: {p}");
        }
        ExitCode::FAILURE
    }
}
