//! The client side of the benchmark: exchanges started up to the
//! concurrency, each reply checked byte for byte; and what it measured.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use halfclose::{Addr, Closed, Config, Conn, Connect, Ctx, Eof, Handler, Reactor, Reason, TimerId};
use serde::Serialize;

use super::tls::ClientTls;
use super::{r3, Opts, RESET_AFTER};

/// How long an exchange whose connect found the listener's queue full
/// waits before it tries again (a Unix socket refuses such a connect at
/// once with `EAGAIN`; TCP's SYN would be retransmitted after a second).
const RETRY_AFTER: Duration = Duration::from_millis(1);
use crate::procfs::{self, Cpu};

/// State shared by every exchange of the client reactor.
pub(super) struct Load {
    pub(super) target: Addr,
    /// Speak TLS to the server.
    pub(super) tls: Option<ClientTls>,
    pub(super) sources: Vec<IpAddr>,
    pub(super) next_source: usize,
    /// Request bytes: exchange `i` sends `B` bytes from offset `i % 251`, so
    /// neighbouring exchanges send different bytes and a server that mixes
    /// them up is caught.
    pub(super) pattern: Rc<[u8]>,
    pub(super) request_bytes: usize,
    pub(super) total: u64,
    pub(super) concurrency: u64,
    pub(super) reset_every: u64,
    /// Exchanges begun (each counted once, however often it connects).
    pub(super) started: u64,
    pub(super) finished: u64,
    /// Exchanges whose connect found the listener's queue full, to be
    /// connected again; started, not finished, not in flight.
    pub(super) retry: Vec<u64>,
    /// When they connect again: [`RETRY_AFTER`] after the last refusal.
    pub(super) retry_at: Instant,
    pub(super) connect_retries: u64,
    pub(super) completed: u64,
    pub(super) resets_sent: u64,
    /// Latency of each completed exchange, µs, connect to EOF; allocated
    /// and touched before the run.
    pub(super) latencies: Vec<u32>,
    pub(super) errors: Vec<(String, u64)>,
    /// Stop starting exchanges (deadline).
    pub(super) stopping: bool,
}

impl Load {
    pub(super) fn error(&mut self, what: String) {
        match self.errors.iter_mut().find(|(w, _)| *w == what) {
            Some((_, n)) => *n += 1,
            None => self.errors.push((what, 1)),
        }
    }

    pub(super) fn error_count(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum()
    }

    pub(super) fn in_flight(&self) -> u64 {
        self.started - self.finished - self.retry.len() as u64
    }

    pub(super) fn request(&self, idx: u64) -> &[u8] {
        let off = (idx % 251) as usize;
        &self.pattern[off..off + self.request_bytes]
    }
}

type Shared = Rc<RefCell<Load>>;

/// Start exchanges until `concurrency` are in flight or all have started.
/// While some wait to connect again (the listener's queue was full),
/// nothing starts before their time, and then they go first.
fn launch(ctx: &mut Ctx<'_>, load: &Shared) {
    loop {
        let (idx, target, from) = {
            let mut l = load.borrow_mut();
            if l.stopping || l.in_flight() >= l.concurrency {
                return;
            }
            let idx = if !l.retry.is_empty() {
                if Instant::now() < l.retry_at {
                    return;
                }
                l.retry.pop().expect("not empty")
            } else if l.started < l.total {
                l.started += 1;
                l.started - 1
            } else {
                return;
            };
            let from = if l.sources.is_empty() {
                None
            } else {
                let ip = l.sources[l.next_source % l.sources.len()];
                l.next_source = l.next_source.wrapping_add(1);
                Some(SocketAddr::new(ip, 0))
            };
            (idx, l.target.clone(), from)
        };
        let ex = Exchange {
            load: Rc::clone(load),
            idx,
            t0: Instant::now(),
            got: 0,
            state: ExState::Running,
            tls_error: None,
        };
        let mut to: Connect = target.into();
        if let Some(from) = from {
            to = to.from(from);
        }
        if let Some(tls) = &load.borrow().tls {
            to = tls.connect(to);
        }
        let result = ctx.connect(to, ex);
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
    /// What a TLS failure said (a certificate refused, an alert): the
    /// error's kind alone, `invalid data`, does not tell.
    tls_error: Option<String>,
}

impl Handler for Exchange {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let reset = {
            let l = self.load.borrow();
            // The bytes go straight to the kernel (over TLS, as one
            // record); nothing is queued.
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

    fn handle_error(&mut self, _conn: &mut Conn<'_>, err: &io::Error) {
        if err.kind() == io::ErrorKind::InvalidData {
            self.tls_error = Some(err.to_string());
        }
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        {
            let mut l = self.load.borrow_mut();
            if self.state == ExState::Running
                && closed.reason == Reason::Error(io::ErrorKind::WouldBlock)
                && closed.bytes_out == 0
            {
                // The connect found the listener's queue full: connect
                // again shortly (the loop in `run_client`), not now, when
                // it would find the queue as full.
                l.retry.push(self.idx);
                l.retry_at = Instant::now() + RETRY_AFTER;
                l.connect_retries += 1;
                return;
            }
            l.finished += 1;
            match self.state {
                ExState::Done => {}
                ExState::ResetSent if closed.reason == Reason::Aborted => l.resets_sent += 1,
                ExState::Corrupt => l.error("reply differs from the request".into()),
                _ if self.got < l.request_bytes && closed.reason.is_graceful() => {
                    let what = format!("short reply ({} of {} bytes)", self.got, l.request_bytes);
                    l.error(what)
                }
                _ => match &self.tls_error {
                    Some(tls) => l.error(format!("{} ({tls})", closed.reason)),
                    None => l.error(closed.reason.to_string()),
                },
            }
        }
        launch(ctx, &self.load);
    }
}

/// [`ClientSummary`] in `--json` (`benches/compare.py` reads it).
#[derive(Serialize, Debug)]
pub(super) struct ClientJson {
    connections: u64,
    completed: u64,
    errors: u64,
    /// What went wrong, and how often, in the order first seen.
    #[serde(serialize_with = "in_order")]
    error_kinds: Vec<(String, u64)>,
    resets_sent: u64,
    wall_s: f64,
    conn_per_s: f64,
    latency_us_p50: Option<u32>,
    latency_us_p99: Option<u32>,
    latency_us_p999: Option<u32>,
    latency_us_max: Option<u32>,
    cpu_s: f64,
    cpu_us_per_conn: f64,
}

/// Pairs as a JSON object, keys in their order.
fn in_order<S: serde::Serializer>(pairs: &[(String, u64)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(pairs.iter().map(|(k, v)| (k, v)))
}

/// What the client measured.
#[derive(Debug)]
pub(super) struct ClientSummary {
    pub(super) total: u64,
    pub(super) completed: u64,
    pub(super) errors: Vec<(String, u64)>,
    pub(super) not_started: u64,
    pub(super) resets_sent: u64,
    /// Connects tried again after finding the listener's queue full.
    pub(super) connect_retries: u64,
    pub(super) wall: Duration,
    /// Sorted, µs.
    pub(super) latencies: Vec<u32>,
    pub(super) cpu: Cpu,
    /// Resident memory when everything was set up, before the first connect.
    pub(super) rss_ready: u64,
}

impl ClientSummary {
    pub(super) fn errors(&self) -> u64 {
        self.errors.iter().map(|(_, n)| n).sum::<u64>() + self.not_started
    }

    pub(super) fn rate(&self) -> f64 {
        self.completed as f64 / self.wall.as_secs_f64().max(1e-9)
    }

    /// The latency at quantile `q`, µs (nearest rank).
    pub(super) fn quantile(&self, q: f64) -> Option<u32> {
        let n = self.latencies.len();
        if n == 0 {
            return None;
        }
        let rank = ((q * n as f64).ceil() as usize).clamp(1, n);
        Some(self.latencies[rank - 1])
    }

    pub(super) fn json(&self) -> ClientJson {
        let mut error_kinds = self.errors.clone();
        if self.not_started > 0 {
            error_kinds.push(("not started before the deadline".into(), self.not_started));
        }
        ClientJson {
            connections: self.total,
            completed: self.completed,
            errors: self.errors(),
            error_kinds,
            resets_sent: self.resets_sent,
            wall_s: r3(self.wall.as_secs_f64()),
            conn_per_s: r3(self.rate()),
            latency_us_p50: self.quantile(0.5),
            latency_us_p99: self.quantile(0.99),
            latency_us_p999: self.quantile(0.999),
            latency_us_max: self.latencies.last().copied(),
            cpu_s: r3(self.cpu.total.as_secs_f64()),
            cpu_us_per_conn: r3(self.cpu_per_conn()),
        }
    }

    /// Client CPU time per completed exchange, µs.
    pub(super) fn cpu_per_conn(&self) -> f64 {
        self.cpu.total.as_secs_f64() * 1e6 / self.completed.max(1) as f64
    }

    pub(super) fn rows(&self, rows: &mut Vec<(String, String)>) {
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
        if self.connect_retries > 0 {
            rows.push((
                "connects retried (listener's queue full)".into(),
                self.connect_retries.to_string(),
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
            format!("{:.1} µs", self.cpu_per_conn()),
        ));
    }
}

/// Run the load against `target` on this thread, over TLS with `tls`.
/// `on_tick` runs once per second with the client's progress, for the
/// progress line.
pub(super) fn run_client(
    o: &Opts,
    target: &Addr,
    tls: Option<ClientTls>,
    mut on_tick: impl FnMut(&Load, Duration),
) -> io::Result<ClientSummary> {
    let mut config = Config::default();
    // Our FIN goes first; the reply may come only after the server's hold.
    config.linger_timeout = Some(o.hold + Duration::from_secs(30));
    config.idle_timeout = Some((o.hold + Duration::from_secs(60)).max(Duration::from_secs(300)));
    let mut reactor = Reactor::with_config(config)?;
    let pattern = crate::rng::bytes(o.request_bytes + 251, 1);
    let load = Rc::new(RefCell::new(Load {
        target: target.clone(),
        tls,
        sources: o.sources.clone(),
        next_source: 0,
        pattern: pattern.into(),
        request_bytes: o.request_bytes,
        total: o.connections,
        concurrency: o.concurrency as u64,
        reset_every: o.reset_every,
        started: 0,
        finished: 0,
        retry: Vec::new(),
        retry_at: Instant::now(),
        connect_retries: 0,
        completed: 0,
        resets_sent: 0,
        // Not zeros: a zeroed allocation stays untouched, and would grow
        // the RSS during the run rather than before the baseline.
        latencies: vec![u32::MAX; o.connections as usize],
        errors: Vec::new(),
        stopping: false,
    }));
    let rss_ready = procfs::memory(std::process::id()).unwrap_or_default().rss;
    let cpu0 = procfs::thread_cpu().unwrap_or_default();
    let t0 = Instant::now();
    let deadline = t0 + o.timeout;
    let mut next_tick = t0 + Duration::from_secs(1);
    launch(&mut reactor.ctx(), &load);
    loop {
        if load.borrow().finished >= o.connections {
            break;
        }
        let retry_at = {
            let l = load.borrow();
            (!l.retry.is_empty()).then_some(l.retry_at)
        };
        let wait = retry_at.map_or(Duration::from_millis(100), |at| {
            at.saturating_duration_since(Instant::now())
                .min(Duration::from_millis(100))
        });
        reactor.run_once(Some(wait))?;
        if retry_at.is_some() {
            launch(&mut reactor.ctx(), &load);
        }
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
    let cpu = procfs::thread_cpu().unwrap_or_default().since(cpu0);
    let mut l = load.borrow_mut();
    let n = l.completed as usize;
    let mut latencies = std::mem::take(&mut l.latencies);
    latencies.truncate(n);
    latencies.sort_unstable();
    Ok(ClientSummary {
        total: l.total,
        completed: l.completed,
        errors: std::mem::take(&mut l.errors),
        not_started: l.total - l.started + l.retry.len() as u64,
        resets_sent: l.resets_sent,
        connect_retries: l.connect_retries,
        wall,
        latencies,
        cpu,
        rss_ready,
    })
}
