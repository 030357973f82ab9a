//! The server side of the benchmark: reactors on threads sharing the port
//! (or one reactor on a Unix socket), each connection held half-closed,
//! then answered; and the figures they add up to.

use std::cell::Cell;
use std::fmt::Write as _;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use halfclose::{
    Addr, Closed, Config, Conn, Ctx, Eof, Group, Handle, Handler, ProtocolError, Reactor, Reason,
    Stats, TimerId,
};
use serde::Serialize;

use super::tls::ServerTls;
use super::{r3, DRAIN_GRACE, MAX_REQUEST};
use crate::procfs::{self, Cpu};

pub(super) static EPOCH: OnceLock<Instant> = OnceLock::new();

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
pub(super) struct Gauges {
    pub(super) accepted: AtomicU64,
    pub(super) open: AtomicU64,
    pub(super) half_closed_in: AtomicU64,
    pub(super) peak_half_closed_in: AtomicU64,
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
pub(super) struct ThreadReport {
    pub(super) stats: Stats,
    pub(super) cpu: Cpu,
    pub(super) reset_while_held: u64,
    pub(super) reset_held_max_ms: u32,
}

/// Where a server reactor keeps its handlers.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Storage {
    /// In a table of `HoldEcho`s ([`Reactor::with_inline_handlers`]): no
    /// allocation per connection for the handler.
    Inline,
    /// Each in its own box ([`Reactor::with_config`], the library's
    /// default), for `--boxed-handlers`.
    Boxed,
}

impl Storage {
    /// The constructor of a reactor of this storage.
    fn build(self) -> fn(Config) -> io::Result<Reactor> {
        match self {
            Storage::Inline => Reactor::with_inline_handlers::<HoldEcho>,
            Storage::Boxed => Reactor::with_config,
        }
    }
}

/// The server reactors, each on its thread, and their gauges.
pub(super) struct Servers {
    /// Where they listen (with the port the kernel picked).
    pub(super) addr: Addr,
    reactors: Reactors,
    gauges: Arc<Vec<Gauges>>,
}

/// TCP: a [`Group`] of reactors sharing the port, each thread reporting
/// what it did. A Unix socket: one reactor on one thread (no
/// `SO_REUSEPORT`).
enum Reactors {
    Group(Group<ThreadReport>),
    One(One),
}

/// The one server reactor of a Unix socket, on its thread. Dropped
/// without [`finish`](One::finish), it is drained with no grace and
/// waited for, as a [`Group`] is.
struct One {
    handle: Handle,
    thread: Option<JoinHandle<io::Result<ThreadReport>>>,
}

impl One {
    /// On a thread: a reactor with `config` listening on `bind` with
    /// `factory`, served until it drains; its address once it listens.
    fn spawn<H: Handler + 'static>(
        build: fn(Config) -> io::Result<Reactor>,
        config: Config,
        bind: halfclose::Bind,
        factory: impl FnMut() -> H + Send + 'static,
        serve: impl FnOnce(Reactor) -> io::Result<ThreadReport> + Send + 'static,
    ) -> io::Result<(One, Addr)> {
        let (tx, rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("halfclose-0".into())
            .spawn(move || {
                let started = build(config).and_then(|mut reactor| {
                    let id = reactor.listen(bind, factory)?;
                    let addr = reactor.local_addr(id).expect("listener is open");
                    Ok((reactor, addr))
                });
                match started {
                    Ok((reactor, addr)) => {
                        let _ = tx.send(Ok((reactor.handle(), addr)));
                        serve(reactor)
                    }
                    Err(e) => {
                        let kind = e.kind();
                        let _ = tx.send(Err(e));
                        Err(io::Error::new(kind, "the server reactor did not start"))
                    }
                }
            })?;
        match rx.recv() {
            Ok(Ok((handle, addr))) => Ok((
                One {
                    handle,
                    thread: Some(thread),
                },
                addr,
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(io::Error::other("the server thread ended while starting")),
        }
    }

    fn finish(mut self) -> io::Result<Vec<ThreadReport>> {
        // A reactor that already ended needs no drain.
        let _ = self.handle.drain(DRAIN_GRACE);
        let thread = self.thread.take().expect("joined once");
        match thread.join() {
            Ok(report) => Ok(vec![report?]),
            Err(_) => Err(io::Error::other("the server thread panicked")),
        }
    }
}

impl Drop for One {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = self.handle.drain(Duration::ZERO);
            let _ = thread.join();
        }
    }
}

impl Servers {
    /// Start `threads` reactors on `listen`. TCP: the first picks the port
    /// and the others share it through `SO_REUSEPORT`. A Unix socket: one
    /// reactor (`threads` must be 1); a socket file no one listens on is
    /// removed first, and the listener removes its own when it closes.
    /// With `tls`, each serves TLS (TCP only).
    pub(super) fn start(
        listen: &Addr,
        threads: usize,
        storage: Storage,
        hold: Duration,
        deadline: Instant,
        tls: Option<ServerTls>,
    ) -> io::Result<Servers> {
        let gauges: Arc<Vec<Gauges>> = Arc::new((0..threads).map(|_| Gauges::default()).collect());
        let mut config = Config::default();
        config.backlog = 65_535; // the kernel caps it at net.core.somaxconn
        config.peer_eof_timeout =
            Some((hold + Duration::from_secs(30)).max(Duration::from_secs(60)));
        config.idle_timeout = Some((hold + Duration::from_secs(60)).max(Duration::from_secs(300)));
        let hold_ms = u32::try_from(hold.as_millis()).unwrap_or(u32::MAX);
        let factory = move || {
            move || HoldEcho {
                request: Vec::new(),
                hold_ms,
                held_since: 0,
            }
        };
        let g = Arc::clone(&gauges);
        let (reactors, addr) = match listen {
            Addr::Inet(listen) => {
                let group = Group::spawn_with(
                    threads,
                    config,
                    *listen,
                    storage.build(),
                    move |_, reactor, addr| {
                        let bind = halfclose::Bind::tcp(addr);
                        let bind = match &tls {
                            Some(tls) => tls.bind(bind),
                            None => bind,
                        };
                        let id = reactor.listen(bind, factory())?;
                        let local = reactor.local_addr(id).expect("listener is open");
                        Ok(local.inet().expect("a TCP listener"))
                    },
                    move |i, reactor| serve(reactor, deadline, &g[i]),
                )?;
                let addr = Addr::Inet(group.local_addr());
                (Reactors::Group(group), addr)
            }
            unix => {
                if threads != 1 {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "several reactors share a TCP port only (SO_REUSEPORT); \
                         a Unix socket has one",
                    ));
                }
                if tls.is_some() {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidInput,
                        "TLS runs over TCP only",
                    ));
                }
                let bind = crate::support::bind(unix, None);
                let (one, addr) =
                    One::spawn(storage.build(), config, bind, factory(), move |reactor| {
                        serve(reactor, deadline, &g[0])
                    })?;
                (Reactors::One(one), addr)
            }
        };
        Ok(Servers {
            addr,
            reactors,
            gauges,
        })
    }

    /// Drain every reactor and wait for their reports.
    pub(super) fn finish(self) -> io::Result<Vec<ThreadReport>> {
        match self.reactors {
            Reactors::Group(group) => group.drain_each(DRAIN_GRACE),
            Reactors::One(one) => one.finish(),
        }
    }

    pub(super) fn gauge_sum(&self, f: impl Fn(&Gauges) -> &AtomicU64) -> u64 {
        self.gauges
            .iter()
            .map(|g| f(g).load(Ordering::Relaxed))
            .sum()
    }
}

/// One server thread: drive its reactor until it drained or the deadline
/// passed, publishing its gauges; then report its figures and CPU time.
fn serve(mut reactor: Reactor, deadline: Instant, gauges: &Gauges) -> io::Result<ThreadReport> {
    let cpu0 = procfs::thread_cpu().unwrap_or_default();
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
        cpu: procfs::thread_cpu().unwrap_or_default().since(cpu0),
        reset_while_held,
        reset_held_max_ms,
    })
}

/// [`ServerSummary`] in `--json` (`benches/compare.py` reads it).
#[derive(Serialize, Debug)]
pub(super) struct ServerJson {
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
    cpu_s: f64,
    cpu_user_s: f64,
    cpu_sys_s: f64,
    cpu_us_per_conn: f64,
    rss_baseline_bytes: u64,
    rss_peak_bytes: u64,
    rss_per_conn_bytes: f64,
    reset_while_held: u64,
    reset_held_max_ms: u32,
}

/// The servers' figures, added up over threads.
#[derive(Debug, Default)]
pub(super) struct ServerSummary {
    pub(super) threads: usize,
    pub(super) accepted: u64,
    pub(super) accepted_per_thread: Vec<u64>,
    pub(super) closed: u64,
    pub(super) peak_open: u64,
    pub(super) peak_half_closed: u64,
    pub(super) resets: u64,
    pub(super) timeouts: u64,
    pub(super) aborts: u64,
    pub(super) errors: u64,
    pub(super) panics: u64,
    pub(super) cpu: Cpu,
    pub(super) reset_while_held: u64,
    pub(super) reset_held_max_ms: u32,
    pub(super) rss_baseline: u64,
    pub(super) rss_peak: u64,
}

impl ServerSummary {
    pub(super) fn new(reports: &[ThreadReport], rss_baseline: u64, rss_peak: u64) -> Self {
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
            s.cpu = s.cpu + r.cpu;
            s.reset_while_held += r.reset_while_held;
            s.reset_held_max_ms = s.reset_held_max_ms.max(r.reset_held_max_ms);
        }
        s
    }

    pub(super) fn per_conn(&self, d: Duration) -> f64 {
        if self.accepted == 0 {
            return f64::NAN;
        }
        d.as_secs_f64() * 1e6 / self.accepted as f64
    }

    /// Resident memory above the baseline per connection open at the peak.
    pub(super) fn rss_per_conn(&self) -> f64 {
        if self.peak_open == 0 {
            return f64::NAN;
        }
        self.rss_peak.saturating_sub(self.rss_baseline) as f64 / self.peak_open as f64
    }

    pub(super) fn json(&self) -> ServerJson {
        ServerJson {
            threads: self.threads,
            accepted: self.accepted,
            accepted_per_thread: self.accepted_per_thread.clone(),
            closed: self.closed,
            peak_open: self.peak_open,
            peak_half_closed: self.peak_half_closed,
            resets: self.resets,
            timeouts: self.timeouts,
            aborts: self.aborts,
            errors: self.errors,
            panics: self.panics,
            cpu_s: r3(self.cpu.total.as_secs_f64()),
            cpu_user_s: r3(self.cpu.user.as_secs_f64()),
            cpu_sys_s: r3(self.cpu.sys.as_secs_f64()),
            cpu_us_per_conn: r3(self.per_conn(self.cpu.total)),
            rss_baseline_bytes: self.rss_baseline,
            rss_peak_bytes: self.rss_peak,
            rss_per_conn_bytes: r3(self.rss_per_conn()),
            reset_while_held: self.reset_while_held,
            reset_held_max_ms: self.reset_held_max_ms,
        }
    }

    pub(super) fn rows(&self, rows: &mut Vec<(String, String)>, rss_note: &str) {
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
