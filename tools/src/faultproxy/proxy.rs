//! The two handlers of a proxied pair, and what they share.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use halfclose::{Closed, Conn, ConnId, Ctx, Eof, Handler, Reason, Timeout, TimerId};

use super::plan::{plan_for, Choice, Cut, DirPlan, FinAt, Plan, Ranges, Seg, DIR_NAMES};
use super::records::{Injected, TlsFlow};
use super::{C2S, RANDOM_SEG_MAX, S2C};
use crate::rng::Rng;

/// The most a flow buffers before its sender's reading is paused.
pub const BUF_CAP: usize = 64 * 1024;

/// How often `tls-rst` looks whether the receiver's queue reached the
/// kernel (an abort would drop what is still queued).
const RST_POLL: Duration = Duration::from_millis(1);

// ------------------------------------------------------------------ the proxy

/// Faults injected so far, over every connection of a proxy.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Client connections accepted.
    pub pairs: u64,
    /// Upstream connections that could not be started.
    pub connect_failures: u64,
    /// Segments written by shaped flows.
    pub segments: u64,
    /// Directions stalled by `stall`.
    pub stalls: u64,
    /// Pairs reset by `rst`.
    pub resets: u64,
    /// Directions ended by `fin`.
    pub fins: u64,
    /// Pairs reset when a `noread` ran out.
    pub noreads: u64,
    /// Bytes read and thrown away: after a `fin`, or with no receiver left.
    pub discarded: u64,
    /// Directions ended by `tls-fin`.
    pub tls_fins: u64,
    /// Directions stalled by `tls-stall`.
    pub tls_stalls: u64,
    /// Records replayed by `tls-replay`.
    pub replays: u64,
    /// Junk injected by `tls-junk`.
    pub junk: u64,
    /// FINs replaced by a reset of both sides (`tls-rst`).
    pub fin_resets: u64,
}

/// Picks the plan of connection `k` (accept order) from `peer`, its
/// client's address; returns the plan and the seed of its random draws.
pub type Chooser = Box<dyn FnMut(u64, Option<SocketAddr>) -> (Plan, u64)>;

/// What every pair of one proxy shares.
pub struct Shared {
    /// The server every client connection is forwarded to.
    pub upstream: SocketAddr,
    /// Connect upstream from the client's IP address (port chosen by the
    /// kernel): on 127.0.0.0/8 this spreads connections over many source
    /// addresses, and lets the server see which client a connection serves.
    pub from_client_ip: bool,
    chooser: RefCell<Chooser>,
    accepted: Cell<u64>,
    /// Faults injected so far.
    pub counts: RefCell<Counts>,
}

impl Shared {
    /// What the pairs of a proxy toward `upstream` share; `chooser` gives
    /// each connection its plan.
    pub fn new(upstream: SocketAddr, from_client_ip: bool, chooser: Chooser) -> Rc<Shared> {
        Rc::new(Shared {
            upstream,
            from_client_ip,
            chooser: RefCell::new(chooser),
            accepted: Cell::new(0),
            counts: RefCell::new(Counts::default()),
        })
    }

    /// The chooser of the command line: `--fault` entries round-robin by
    /// accept order, `random` entries drawn from `seed`.
    pub fn spec_chooser(choices: Vec<Choice>, seed: u64, ranges: Ranges) -> Chooser {
        Box::new(move |k, _peer| plan_for(&choices, seed, k, &ranges))
    }

    /// The handler of a newly accepted client connection.
    pub fn accept(self: &Rc<Self>) -> Side {
        Side {
            pair: Rc::new(RefCell::new(Pair::default())),
            me: C2S,
            shared: Rc::clone(self),
        }
    }
}

/// One direction of a pair: bytes read from its sender, not yet taken by
/// its receiver.
#[derive(Debug)]
struct Flow {
    plan: DirPlan,
    rng: Rng,
    buf: VecDeque<u8>,
    /// Bytes handed to the receiver.
    forwarded: u64,
    /// The sender's FIN arrived (or the sender is gone gracefully).
    eof: bool,
    /// Our FIN (or close) toward the receiver was requested.
    fin_sent: bool,
    /// Instead of a FIN, close the receiver (its sender side is gone).
    close_after: bool,
    /// `fin` fired, or the receiver is gone: the sender's bytes are discarded.
    cut: bool,
    stall_done: bool,
    /// The stall timer, while stalled.
    stalled: Option<TimerId>,
    /// The tick timer of a shaped flow.
    tick: Option<TimerId>,
    /// A shaped flow's tick fired: one segment may go.
    due: bool,
    /// The TLS faults of the direction, when it has some.
    tls: Option<TlsFlow>,
    /// `tls-rst` waits for the receiver's queue to reach the kernel.
    poll: Option<TimerId>,
}

impl Default for Flow {
    fn default() -> Self {
        Flow {
            plan: DirPlan::default(),
            rng: Rng::new(0),
            buf: VecDeque::new(),
            forwarded: 0,
            eof: false,
            fin_sent: false,
            close_after: false,
            cut: false,
            stall_done: false,
            stalled: None,
            tick: None,
            due: false,
            tls: None,
            poll: None,
        }
    }
}

impl Flow {
    /// The next cut not made yet, the earlier of the plan's `rst` or `fin`
    /// at a byte and `tls-fin` (once its record was seen); whether it is
    /// the TLS one.
    fn cut_point(&self) -> Option<(Cut, u64, bool)> {
        if self.cut {
            return None;
        }
        let bytes = self.plan.cut.map(|(c, at)| (c, at, false));
        let tls = self.tls.as_ref().and_then(TlsFlow::fin_at);
        [bytes, tls.map(|at| (Cut::Fin, at, true))]
            .into_iter()
            .flatten()
            .min_by_key(|c| c.1)
    }

    /// The next stall not made yet, the earlier of `stall` and
    /// `tls-stall` (once its record was seen); whether it is the TLS one.
    fn stall_point(&self) -> Option<(u64, Duration, bool)> {
        let bytes = self.plan.stall.filter(|_| !self.stall_done);
        let tls = self.tls.as_ref().and_then(TlsFlow::stall);
        [
            bytes.map(|(at, dur)| (at, dur, false)),
            tls.map(|(at, dur)| (at, dur, true)),
        ]
        .into_iter()
        .flatten()
        .min_by_key(|s| s.0)
    }

    /// The stream offset of the next injection, while the flow runs.
    fn inject_at(&self) -> Option<u64> {
        if self.cut {
            return None;
        }
        self.tls.as_ref().and_then(TlsFlow::inject_at)
    }

    /// The sender's end: its FIN arrived, or its side closed gracefully.
    /// What the TLS faults put after its last record is queued now.
    fn end_of_input(&mut self) {
        self.eof = true;
        let total = self.forwarded + self.buf.len() as u64;
        if let Some(tls) = &mut self.tls {
            tls.end(total);
        }
    }
}

/// The two sides of one proxied connection: the client side ([`C2S`]) and
/// the server side ([`S2C`]).
#[derive(Debug, Default)]
pub struct Pair {
    /// Accept order of the client connection.
    k: u64,
    ids: [Option<ConnId>; 2],
    /// Indexed by sender: `flows[C2S]` carries the client's bytes.
    flows: [Flow; 2],
    upstream_ready: bool,
    /// The `noread` deadline, a timer of the client side.
    deadline: Option<TimerId>,
}

/// What the sender of a flow should do after a pump.
enum Pump {
    /// Read on (`true`) or pause reading (`false`).
    Read(bool),
    /// Both sides are being reset.
    Reset,
}

/// Forward what flow `d` holds to its receiver `to`, as the plan allows.
fn pump(p: &mut Pair, d: usize, to: &mut Conn<'_>, counts: &mut Counts) -> Pump {
    let k = p.k;
    let f = &mut p.flows[d];
    let dir = DIR_NAMES[d];
    loop {
        let inject_due = f.inject_at().is_some_and(|at| at <= f.forwarded);
        if (f.buf.is_empty() && !inject_due) || f.stalled.is_some() || to.is_write_blocked() {
            break;
        }
        if let Some((at, dur, tls)) = f.stall_point() {
            if f.forwarded >= at {
                if let (true, Some(t)) = (tls, f.tls.as_mut()) {
                    let n = f.plan.tls.stall.map_or(0, |s| s.0);
                    log::info!(
                        "pair {k}: stalling {dir} for {dur:?} after {n} TLS record(s) ({} bytes)",
                        f.forwarded
                    );
                    t.stall_done = true;
                    counts.tls_stalls += 1;
                } else {
                    log::info!(
                        "pair {k}: stalling {dir} for {dur:?} after {} bytes",
                        f.forwarded
                    );
                    f.stall_done = true;
                    counts.stalls += 1;
                }
                f.stalled = Some(to.set_timer(dur));
                break;
            }
        }
        if let Some((cut, at, tls)) = f.cut_point() {
            if f.forwarded >= at {
                match cut {
                    Cut::Rst => {
                        log::info!(
                            "pair {k}: resetting both sides after {} bytes {dir}",
                            f.forwarded
                        );
                        counts.resets += 1;
                        counts.discarded += f.buf.len() as u64;
                        f.buf.clear();
                        to.abort();
                        return Pump::Reset;
                    }
                    Cut::Fin => {
                        if tls {
                            let (n, where_) = match f.plan.tls.fin {
                                Some((n, FinAt::After)) => (n, "after"),
                                Some((n, FinAt::Middle)) => (n, "inside"),
                                None => (0, "at"),
                            };
                            log::info!(
                                "pair {k}: FIN {dir} {where_} TLS record {n} of type 23, after {} bytes; discarding the rest",
                                f.forwarded
                            );
                            counts.tls_fins += 1;
                        } else {
                            log::info!(
                                "pair {k}: FIN {dir} after {} bytes; discarding the rest",
                                f.forwarded
                            );
                            counts.fins += 1;
                        }
                        counts.discarded += f.buf.len() as u64;
                        f.buf.clear();
                        f.cut = true;
                        f.fin_sent = true;
                        to.shutdown_write();
                        break;
                    }
                }
            }
        }
        if inject_due {
            let (bytes, what) = f
                .tls
                .as_mut()
                .and_then(TlsFlow::take_inject)
                .expect("an injection is due");
            match what {
                Injected::Replay(n) => {
                    log::info!(
                        "pair {k}: replaying a TLS record of {n} bytes {dir} after {} bytes",
                        f.forwarded
                    );
                    counts.replays += 1;
                }
                Injected::Junk(n) => {
                    log::info!(
                        "pair {k}: {n} bytes of junk {dir} after {} bytes",
                        f.forwarded
                    );
                    counts.junk += 1;
                }
            }
            if let Err(e) = to.try_write(&bytes) {
                log::debug!("pair {k}: {dir}: cannot inject: {e}");
                counts.discarded += f.buf.len() as u64;
                f.buf.clear();
                f.cut = true;
                break;
            }
            continue;
        }
        let shaped = f.plan.shaped();
        if shaped && !f.due {
            if f.tick.is_none() {
                f.tick = Some(to.set_timer(f.plan.delay));
            }
            break;
        }
        let mut n = match f.plan.seg {
            Seg::Whole => f.buf.len(),
            Seg::Fixed(n) => n,
            Seg::Random => f.rng.range(1, RANDOM_SEG_MAX as u64) as usize,
        };
        // Stop exactly at a stall, cut or injection point.
        let next = [
            f.stall_point().map(|s| s.0),
            f.cut_point().map(|c| c.1),
            f.inject_at(),
        ];
        if let Some(at) = next.into_iter().flatten().min() {
            n = n.min((at - f.forwarded) as usize);
        }
        let front = f.buf.as_slices().0;
        let n = n.min(front.len());
        if let Err(e) = to.try_write(&front[..n]) {
            // The receiver is failing or closing; its handle_close ends the pair.
            log::debug!("pair {k}: {dir}: cannot forward: {e}");
            counts.discarded += f.buf.len() as u64;
            f.buf.clear();
            f.cut = true;
            break;
        }
        f.buf.drain(..n);
        f.forwarded += n as u64;
        if shaped {
            f.due = false;
            counts.segments += 1;
        }
    }
    // The sender's FIN follows its last byte (and what is injected after
    // it).
    if f.eof && !f.fin_sent && f.buf.is_empty() && f.stalled.is_none() && f.inject_at().is_none() {
        if f.plan.tls.rst_at_fin {
            if to.pending() > 0 {
                // Everything to the kernel first: an abort drops the queue.
                if f.poll.is_none() {
                    f.poll = Some(to.set_timer(RST_POLL));
                }
            } else {
                log::info!(
                    "pair {k}: RST instead of FIN {dir}, after all {} bytes; resetting both sides",
                    f.forwarded
                );
                counts.fin_resets += 1;
                f.fin_sent = true;
                to.abort();
                return Pump::Reset;
            }
        } else if f.close_after {
            f.fin_sent = true;
            log::debug!("pair {k}: {dir} done, closing the receiver");
            to.close();
        } else {
            f.fin_sent = true;
            log::debug!("pair {k}: {dir} FIN forwarded after {} bytes", f.forwarded);
            to.shutdown_write();
        }
    }
    Pump::Read(f.plan.noread.is_none() && f.buf.len() < BUF_CAP && !to.is_write_blocked())
}

/// Apply a pump's verdict to the sender.
fn steer(sender: &mut Conn<'_>, verdict: Pump) {
    match verdict {
        Pump::Read(true) => sender.resume_reading(),
        Pump::Read(false) => sender.pause_reading(),
        Pump::Reset => sender.abort(),
    }
}

/// Whether a side that ended this way ends the other gracefully (else it
/// resets it).
fn graceful(reason: Reason) -> bool {
    matches!(
        reason,
        Reason::Local
            | Reason::PeerClosed
            | Reason::TimedOut(Timeout::Idle | Timeout::PeerEof | Timeout::Linger)
    )
}

/// One side of a proxied pair: `me` is [`C2S`] for the client side, [`S2C`]
/// for the server side (the index of the flow it sends into).
pub struct Side {
    pair: Rc<RefCell<Pair>>,
    me: usize,
    shared: Rc<Shared>,
}

impl Side {
    fn name(&self) -> &'static str {
        if self.me == C2S {
            "client side"
        } else {
            "server side"
        }
    }

    /// This side is the sender of its flow: pump it toward the other side.
    fn push(&self, conn: &mut Conn<'_>, p: &mut Pair) {
        let d = self.me;
        let r = 1 - d;
        if r == S2C && !p.upstream_ready {
            // The upstream connect completes first; bytes wait in the flow.
            if p.flows[d].buf.len() >= BUF_CAP {
                conn.pause_reading();
            }
            return;
        }
        let verdict = match p.ids[r].and_then(|id| conn.other(id)) {
            Some(mut to) => pump(p, d, &mut to, &mut self.shared.counts.borrow_mut()),
            None => return,
        };
        steer(conn, verdict);
    }

    /// This side is the receiver of the other's flow: pump it into `conn`.
    fn pull(&self, conn: &mut Conn<'_>, p: &mut Pair) {
        let d = 1 - self.me;
        // On a reset, pump already aborted `conn`; steer aborts the sender.
        let verdict = pump(p, d, conn, &mut self.shared.counts.borrow_mut());
        if let Some(mut sender) = p.ids[d].and_then(|id| conn.other(id)) {
            steer(&mut sender, verdict);
        }
    }

    fn setup_client(&self, conn: &mut Conn<'_>) {
        let shared = &self.shared;
        let k = shared.accepted.get();
        shared.accepted.set(k + 1);
        shared.counts.borrow_mut().pairs += 1;
        let peer = conn.peer_addr().ok().and_then(|a| a.inet());
        let (plan, seed) = (shared.chooser.borrow_mut())(k, peer);
        let mut rng = Rng::new(seed);
        let id = conn.id();
        let mut p = self.pair.borrow_mut();
        p.k = k;
        p.ids[C2S] = Some(id);
        for (flow, dir) in p.flows.iter_mut().zip(plan.dirs) {
            flow.plan = dir;
            flow.rng = rng.fork();
        }
        // Drawn after the flows' own, which stay as they were.
        for (flow, dir) in p.flows.iter_mut().zip(plan.dirs) {
            if dir.tls.any() {
                flow.tls = Some(TlsFlow::new(dir.tls, rng.fork()));
            }
        }
        log::info!("pair {k}: client {id} from {peer:?}: fault {plan}");
        let _ = conn.set_nodelay(true);
        let up = Side {
            pair: Rc::clone(&self.pair),
            me: S2C,
            shared: Rc::clone(shared),
        };
        let started = match (shared.from_client_ip, peer) {
            (true, Some(peer)) => conn.ctx().connect(
                halfclose::Connect::to(shared.upstream).from(SocketAddr::new(peer.ip(), 0)),
                up,
            ),
            _ => conn.ctx().connect(shared.upstream, up),
        };
        match started {
            Ok(up) => p.ids[S2C] = Some(up),
            Err(e) => {
                log::warn!("pair {k}: cannot connect to {}: {e}", shared.upstream);
                shared.counts.borrow_mut().connect_failures += 1;
                conn.abort();
                return;
            }
        }
        if plan.dirs[C2S].noread.is_some() {
            conn.pause_reading();
        }
        let noread = plan.dirs.iter().filter_map(|d| d.noread).min();
        if let Some(after) = noread {
            p.deadline = Some(conn.set_timer(after));
        }
    }
}

impl Handler for Side {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        if self.me == C2S {
            return self.setup_client(conn);
        }
        let _ = conn.set_nodelay(true);
        let mut p = self.pair.borrow_mut();
        log::debug!("pair {}: upstream {} connected", p.k, conn.id());
        p.upstream_ready = true;
        if p.flows[S2C].plan.noread.is_some() {
            conn.pause_reading();
        }
        // What the client sent meanwhile, and its FIN.
        self.pull(conn, &mut p);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let mut p = self.pair.borrow_mut();
        let receiver_gone = p.ids[1 - self.me].is_none();
        let f = &mut p.flows[self.me];
        if f.cut || receiver_gone {
            self.shared.counts.borrow_mut().discarded += data.len() as u64;
            return;
        }
        f.buf.extend(data);
        if let Some(tls) = &mut f.tls {
            tls.read(data);
        }
        self.push(conn, &mut p);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let mut p = self.pair.borrow_mut();
        if p.ids[1 - self.me].is_none() {
            return Eof::Close;
        }
        log::debug!("pair {}: FIN from the {}", p.k, self.name());
        p.flows[self.me].end_of_input();
        self.push(conn, &mut p);
        Eof::HalfClose
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        let mut p = self.pair.borrow_mut();
        self.pull(conn, &mut p);
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        let mut p = self.pair.borrow_mut();
        if p.deadline == Some(timer) {
            log::info!("pair {}: noread ran out; resetting both sides", p.k);
            self.shared.counts.borrow_mut().noreads += 1;
            if let Some(mut other) = p.ids[S2C].and_then(|id| conn.other(id)) {
                other.abort();
            }
            conn.abort();
            return;
        }
        let f = &mut p.flows[1 - self.me];
        if f.tick == Some(timer) {
            f.tick = None;
            f.due = true;
        } else if f.stalled == Some(timer) {
            f.stalled = None;
        } else if f.poll == Some(timer) {
            f.poll = None;
        } else {
            return;
        }
        self.pull(conn, &mut p);
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        log::debug!(
            "pair {}: {} {}: {err}",
            self.pair.borrow().k,
            self.name(),
            conn.id()
        );
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        let x = self.me;
        let y = 1 - x;
        let mut p = self.pair.borrow_mut();
        p.ids[x] = None;
        log::info!(
            "pair {}: {} {} closed: {} (in {}, out {}, dropped {})",
            p.k,
            self.name(),
            closed.id,
            closed.reason,
            closed.bytes_in,
            closed.bytes_out,
            closed.dropped
        );
        let Some(mut other) = p.ids[y].and_then(|id| ctx.conn(id)) else {
            return;
        };
        let mut counts = self.shared.counts.borrow_mut();
        if !graceful(closed.reason) {
            log::debug!("pair {}: resetting the other side", p.k);
            other.abort();
            return;
        }
        // This side sends nothing more: the other gets what is in flight,
        // then its end; what the other still sends has nowhere to go.
        let back = &mut p.flows[y];
        back.cut = true;
        counts.discarded += back.buf.len() as u64;
        back.buf.clear();
        let f = &mut p.flows[x];
        f.end_of_input();
        f.close_after = true;
        if f.fin_sent {
            other.close();
        } else if y == C2S || p.upstream_ready {
            if let Pump::Reset = pump(&mut p, x, &mut other, &mut counts) {
                other.abort();
            }
        }
    }
}
