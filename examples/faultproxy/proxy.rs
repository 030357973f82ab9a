//! The fault-injecting proxy: fault plans, their text syntax, and the two
//! handlers of a proxied pair. Shared by `examples/faultproxy.rs` (the
//! command-line proxy) and `examples/soak.rs` (the same logic in-process),
//! which include it with `#[path = "faultproxy/proxy.rs"] mod proxy;`.
//!
//! # Plans
//!
//! A [`Plan`] says what happens to each direction of one proxied
//! connection: client to server (`c2s`) and server to client (`s2c`).
//! Its text form (`--fault`) is a `+`-joined list of faults:
//!
//! | fault | effect |
//! |---|---|
//! | `none` | a faithful proxy: bytes, each FIN and backpressure passed on |
//! | `split:N[:DIR]` | forward in segments of N bytes, one per tick (one loop turn, or `delay`) |
//! | `split:random[:DIR]` | segments of 1 to 1460 bytes, sizes drawn from the seed |
//! | `delay:DUR[:DIR]` | a tick is DUR: each write waits DUR after the previous one |
//! | `stall:DIR:DUR[@N]` | after N bytes (default 0), forward nothing in DIR for DUR |
//! | `rst:DIR:N` | after N bytes forwarded in DIR, reset both sides (RST) |
//! | `fin:DIR:N` | after N bytes forwarded in DIR, send FIN to DIR's receiver and discard the rest of DIR |
//! | `noread:DIR[:DUR]` | never read DIR's sender (its buffers fill up); after DUR (default 2 s) reset both sides |
//! | `random` | one of the above, parameters drawn from the seed |
//!
//! DIR is `c2s`, `s2c` or `both` (`split` and `delay` default to `both`);
//! DUR is `Nms` or `Ns`. A fault at byte N leaves an exchange of N bytes or
//! fewer untouched. `rst` and `fin` fire when byte N+1 would be forwarded,
//! so the receiver gets exactly N bytes before the RST is sent (a reset
//! also discards what the kernel still held, so a prefix of N) or before the
//! FIN.
//!
//! # Handlers
//!
//! Each accepted client connection gets a [`Side`] handler; in
//! `handle_connect` it picks the connection's plan and connects upstream
//! with another `Side`. The two sides share a [`Pair`] (two [`Flow`]s, one
//! per direction, and the two [`ConnId`]s); each reaches the other through
//! [`Conn::other`]. A flow holds the bytes read from its sender that its
//! receiver has not taken yet, at most [`BUF_CAP`]; past that, or while the
//! receiver is write-blocked, the sender's reading is paused
//! (backpressure), and the receiver's `handle_write` resumes it. Shaped
//! flows (`split`, `delay`) write one segment per tick, a timer on the
//! receiver's connection; TCP_NODELAY is set on both sides so segments
//! leave as separate packets. A sender's FIN is passed on as
//! `shutdown_write` on the receiver after the flow drained, and the
//! sender's side returns [`Eof::HalfClose`]: each direction closes on its
//! own, as in a faithful proxy. A side that ends gracefully ends the other
//! gracefully after what is still in flight; a side that ends badly (reset,
//! error, aborted, stopped) resets the other.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use halfclose::{Closed, Conn, ConnId, Ctx, Eof, Handler, Reason, Timeout, TimerId};

/// Client to server: the flow's index, and the index of its sender (the
/// client side).
pub const C2S: usize = 0;
/// Server to client: the flow's index, and the index of its sender (the
/// server side).
pub const S2C: usize = 1;

/// The most a flow buffers before its sender's reading is paused.
pub const BUF_CAP: usize = 64 * 1024;

/// The largest segment of `split:random`.
pub const RANDOM_SEG_MAX: usize = 1460;

/// How long `noread` lasts when the spec does not say.
pub const NOREAD_DEFAULT: Duration = Duration::from_secs(2);

const DIR_NAMES: [&str; 2] = ["c2s", "s2c"];

// ------------------------------------------------------------------ seeds

/// SplitMix64: small, fast, and the same sequence on every platform.
#[derive(Clone, Copy, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        lo + self.next_u64() % (hi - lo + 1)
    }

    /// True with probability `num / den`.
    pub fn chance(&mut self, num: u64, den: u64) -> bool {
        self.next_u64() % den < num
    }

    /// An independent generator drawn from this one.
    pub fn fork(&mut self) -> Rng {
        Rng(self.next_u64())
    }
}

/// The seed of connection `k` under `seed`: every draw for that connection
/// (its plan, its segment sizes) comes from here, so a connection's faults
/// depend on the seed and its accept order only.
pub fn conn_seed(seed: u64, k: u64) -> u64 {
    Rng::new(seed ^ k.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

// ------------------------------------------------------------------ plans

/// How a flow cuts its writes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Seg {
    /// Everything buffered in one write.
    Whole,
    /// At most N bytes per tick.
    Fixed(usize),
    /// 1 to [`RANDOM_SEG_MAX`] bytes per tick, drawn from the seed.
    Random,
}

/// How a flow ends early.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Cut {
    /// Reset both sides.
    Rst,
    /// FIN to the receiver; the sender's further bytes are discarded.
    Fin,
}

/// What happens to one direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DirPlan {
    pub seg: Seg,
    /// Time between two writes of a shaped flow (zero: one loop turn).
    pub delay: Duration,
    /// Forward nothing for this long once this many bytes went through.
    pub stall: Option<(u64, Duration)>,
    /// End the direction once this many bytes went through.
    pub cut: Option<(Cut, u64)>,
    /// Never read the sender; reset both sides after this long.
    pub noread: Option<Duration>,
}

impl Default for DirPlan {
    fn default() -> Self {
        DirPlan {
            seg: Seg::Whole,
            delay: Duration::ZERO,
            stall: None,
            cut: None,
            noread: None,
        }
    }
}

impl DirPlan {
    /// Whether writes go out one segment per tick.
    pub fn shaped(&self) -> bool {
        self.seg != Seg::Whole || !self.delay.is_zero()
    }
}

/// The faults of one proxied connection, per direction ([`C2S`], [`S2C`]).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct Plan {
    pub dirs: [DirPlan; 2],
}

/// One entry of a `--fault` list.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Choice {
    Plan(Plan),
    /// A plan drawn from the connection's seed ([`random_plan`]).
    Random,
}

/// Bounds of the parameters [`random_plan`] draws.
#[derive(Clone, Copy, Debug)]
pub struct Ranges {
    /// Byte positions of `stall`, `rst` and `fin`: 0 to this.
    pub max_at: u64,
    /// `delay` in milliseconds, inclusive.
    pub delay_ms: (u64, u64),
    pub stall_ms: (u64, u64),
    pub noread_ms: (u64, u64),
}

impl Default for Ranges {
    fn default() -> Self {
        Ranges {
            max_at: 4096,
            delay_ms: (1, 20),
            stall_ms: (50, 500),
            noread_ms: (100, 1000),
        }
    }
}

/// One fault of each kind, equally likely (`none` included), in a direction
/// and with parameters drawn from `rng` within `r`.
pub fn random_plan(rng: &mut Rng, r: &Ranges) -> Plan {
    let mut p = Plan::default();
    let dir = rng.range(0, 1) as usize;
    let ms = |rng: &mut Rng, (lo, hi): (u64, u64)| Duration::from_millis(rng.range(lo, hi));
    match rng.range(0, 7) {
        0 => {}
        1 => p.dirs.iter_mut().for_each(|d| d.seg = Seg::Fixed(1)),
        2 => p.dirs.iter_mut().for_each(|d| d.seg = Seg::Random),
        3 => {
            let delay = ms(rng, r.delay_ms);
            p.dirs.iter_mut().for_each(|d| {
                d.seg = Seg::Random;
                d.delay = delay;
            });
        }
        4 => p.dirs[dir].stall = Some((rng.range(0, r.max_at), ms(rng, r.stall_ms))),
        5 => p.dirs[dir].cut = Some((Cut::Rst, rng.range(0, r.max_at))),
        6 => p.dirs[dir].cut = Some((Cut::Fin, rng.range(0, r.max_at))),
        _ => p.dirs[dir].noread = Some(ms(rng, r.noread_ms)),
    }
    p
}

/// Parse a `--fault` list: `PLAN[,PLAN...]`, connection k getting entry
/// k modulo the count.
pub fn parse_spec(spec: &str) -> Result<Vec<Choice>, String> {
    spec.split(',').map(|s| parse_plan(s.trim())).collect()
}

fn parse_plan(s: &str) -> Result<Choice, String> {
    match s {
        "random" => return Ok(Choice::Random),
        "none" => return Ok(Choice::Plan(Plan::default())),
        "" => return Err("empty fault".into()),
        _ => {}
    }
    let mut plan = Plan::default();
    for item in s.split('+') {
        parse_fault(item.trim(), &mut plan).map_err(|e| format!("{item:?}: {e}"))?;
    }
    Ok(Choice::Plan(plan))
}

fn parse_dirs(s: Option<&str>, default_both: bool) -> Result<&'static [usize], String> {
    match s {
        Some("c2s") => Ok(&[C2S]),
        Some("s2c") => Ok(&[S2C]),
        Some("both") => Ok(&[C2S, S2C]),
        None if default_both => Ok(&[C2S, S2C]),
        None => Err("a direction (c2s, s2c, both) is required".into()),
        Some(d) => Err(format!("unknown direction {d:?}")),
    }
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let (n, unit) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else {
        return Err(format!("duration {s:?} needs a unit, ms or s"));
    };
    let n: u64 = n.parse().map_err(|_| format!("bad duration {s:?}"))?;
    Ok(Duration::from_millis(n.saturating_mul(unit)))
}

fn parse_count(s: Option<&str>) -> Result<u64, String> {
    let s = s.ok_or("a byte count is required")?;
    s.parse().map_err(|_| format!("bad byte count {s:?}"))
}

fn parse_fault(item: &str, plan: &mut Plan) -> Result<(), String> {
    let parts: Vec<&str> = item.split(':').collect();
    let arity = |lo: usize, hi: usize| {
        if parts.len() < lo || parts.len() > hi {
            Err(format!("expected {} to {} fields", lo, hi))
        } else {
            Ok(())
        }
    };
    match parts[0] {
        "split" => {
            arity(2, 3)?;
            let seg = match parts[1] {
                "random" => Seg::Random,
                n => match n.parse::<usize>() {
                    Ok(n) if n > 0 => Seg::Fixed(n),
                    _ => return Err(format!("bad segment size {n:?}")),
                },
            };
            for &d in parse_dirs(parts.get(2).copied(), true)? {
                plan.dirs[d].seg = seg;
            }
        }
        "delay" => {
            arity(2, 3)?;
            let delay = parse_duration(parts[1])?;
            for &d in parse_dirs(parts.get(2).copied(), true)? {
                plan.dirs[d].delay = delay;
            }
        }
        "stall" => {
            arity(3, 3)?;
            let (dur, at) = match parts[2].split_once('@') {
                Some((dur, at)) => (dur, parse_count(Some(at))?),
                None => (parts[2], 0),
            };
            let dur = parse_duration(dur)?;
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].stall = Some((at, dur));
            }
        }
        "rst" | "fin" => {
            arity(3, 3)?;
            let cut = if parts[0] == "rst" {
                Cut::Rst
            } else {
                Cut::Fin
            };
            let at = parse_count(parts.get(2).copied())?;
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].cut = Some((cut, at));
            }
        }
        "noread" => {
            arity(2, 3)?;
            let dur = match parts.get(2) {
                Some(s) => parse_duration(s)?,
                None => NOREAD_DEFAULT,
            };
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].noread = Some(dur);
            }
        }
        other => return Err(format!("unknown fault {other:?}")),
    }
    Ok(())
}

fn ms(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl fmt::Display for Plan {
    /// The plan in `--fault` syntax; parsing it gives the plan back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [c, s] = &self.dirs;
        let mut items: Vec<String> = Vec::new();
        // One item for both directions when they agree, else one each.
        let mut emit = |a: Option<String>,
                        b: Option<String>,
                        both: &dyn Fn(&str) -> String,
                        one: &dyn Fn(&str, &str) -> String| {
            match (a, b) {
                (Some(a), Some(b)) if a == b => items.push(both(&a)),
                (a, b) => {
                    for (dir, v) in [(DIR_NAMES[0], a), (DIR_NAMES[1], b)] {
                        if let Some(v) = v {
                            items.push(one(dir, &v));
                        }
                    }
                }
            }
        };
        let seg = |d: &DirPlan| match d.seg {
            Seg::Whole => None,
            Seg::Fixed(n) => Some(n.to_string()),
            Seg::Random => Some("random".to_string()),
        };
        emit(seg(c), seg(s), &|v| format!("split:{v}"), &|d, v| {
            format!("split:{v}:{d}")
        });
        let delay = |d: &DirPlan| (!d.delay.is_zero()).then(|| ms(d.delay));
        emit(delay(c), delay(s), &|v| format!("delay:{v}"), &|d, v| {
            format!("delay:{v}:{d}")
        });
        let stall = |d: &DirPlan| d.stall.map(|(at, dur)| format!("{}@{at}", ms(dur)));
        emit(
            stall(c),
            stall(s),
            &|v| format!("stall:both:{v}"),
            &|d, v| format!("stall:{d}:{v}"),
        );
        let cut = |d: &DirPlan| {
            d.cut.map(|(k, at)| match k {
                Cut::Rst => format!("rst:{at}"),
                Cut::Fin => format!("fin:{at}"),
            })
        };
        let split_kind = |v: &str, d: &str| {
            let (kind, at) = v.split_once(':').unwrap_or((v, ""));
            format!("{kind}:{d}:{at}")
        };
        emit(cut(c), cut(s), &|v| split_kind(v, "both"), &|d, v| {
            split_kind(v, d)
        });
        let noread = |d: &DirPlan| d.noread.map(ms);
        emit(
            noread(c),
            noread(s),
            &|v| format!("noread:both:{v}"),
            &|d, v| format!("noread:{d}:{v}"),
        );
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join("+"))
        }
    }
}

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
    pub stalls: u64,
    /// Pairs reset by `rst`.
    pub resets: u64,
    /// Directions ended by `fin`.
    pub fins: u64,
    /// Pairs reset when a `noread` ran out.
    pub noreads: u64,
    /// Bytes read and thrown away: after a `fin`, or with no receiver left.
    pub discarded: u64,
}

/// Picks the plan of connection `k` (accept order) from `peer`, its
/// client's address; returns the plan and the seed of its random draws.
pub type Chooser = Box<dyn FnMut(u64, Option<SocketAddr>) -> (Plan, u64)>;

/// What every pair of one proxy shares.
pub struct Shared {
    pub upstream: SocketAddr,
    /// Connect upstream from the client's IP address (port chosen by the
    /// kernel): on 127.0.0.0/8 this spreads connections over many source
    /// addresses, and lets the server see which client a connection serves.
    pub from_client_ip: bool,
    chooser: RefCell<Chooser>,
    accepted: Cell<u64>,
    pub counts: RefCell<Counts>,
}

impl Shared {
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

/// The plan of connection `k` under `--fault` entries `choices` and `seed`.
pub fn plan_for(choices: &[Choice], seed: u64, k: u64, ranges: &Ranges) -> (Plan, u64) {
    let s = conn_seed(seed, k);
    let mut rng = Rng::new(s);
    let plan = match choices[(k % choices.len() as u64) as usize] {
        Choice::Plan(p) => p,
        Choice::Random => random_plan(&mut rng, ranges),
    };
    (plan, rng.next_u64())
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
        if f.buf.is_empty() || f.stalled.is_some() || to.is_write_blocked() {
            break;
        }
        if let Some((at, dur)) = f.plan.stall {
            if !f.stall_done && f.forwarded >= at {
                log::info!(
                    "pair {k}: stalling {dir} for {dur:?} after {} bytes",
                    f.forwarded
                );
                f.stall_done = true;
                f.stalled = Some(to.set_timer(dur));
                counts.stalls += 1;
                break;
            }
        }
        if let Some((cut, at)) = f.plan.cut {
            if !f.cut && f.forwarded >= at {
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
                        log::info!(
                            "pair {k}: FIN {dir} after {} bytes; discarding the rest",
                            f.forwarded
                        );
                        counts.fins += 1;
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
        // Stop exactly at a stall or cut point.
        if let (Some((at, _)), false) = (f.plan.stall, f.stall_done) {
            n = n.min((at - f.forwarded) as usize);
        }
        if let (Some((_, at)), false) = (f.plan.cut, f.cut) {
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
    // The sender's FIN follows its last byte.
    if f.eof && !f.fin_sent && f.buf.is_empty() && f.stalled.is_none() {
        f.fin_sent = true;
        if f.close_after {
            log::debug!("pair {k}: {dir} done, closing the receiver");
            to.close();
        } else {
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
        let peer = conn.peer_addr().ok();
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
        self.push(conn, &mut p);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let mut p = self.pair.borrow_mut();
        if p.ids[1 - self.me].is_none() {
            return Eof::Close;
        }
        log::debug!("pair {}: FIN from the {}", p.k, self.name());
        p.flows[self.me].eof = true;
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
        f.eof = true;
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
