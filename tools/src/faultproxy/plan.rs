//! Fault plans: what happens to each direction of a proxied connection,
//! their text syntax (`--fault`), and the plans drawn at random under a
//! seed.

use std::fmt;
use std::time::Duration;

use crate::rng::{item_seed, Rng};

/// Client to server: the flow's index, and the index of its sender (the
/// client side).
pub const C2S: usize = 0;
/// Server to client: the flow's index, and the index of its sender (the
/// server side).
pub const S2C: usize = 1;

/// The largest segment of `split:random`.
pub const RANDOM_SEG_MAX: usize = 1460;

/// How long `noread` lasts when the spec does not say.
pub const NOREAD_DEFAULT: Duration = Duration::from_secs(2);

pub(crate) const DIR_NAMES: [&str; 2] = ["c2s", "s2c"];

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

/// Where `tls-fin` cuts its record.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum FinAt {
    /// In the middle of the record's body: the receiver holds a record it
    /// can never complete.
    Middle,
    /// Right after the record: whole records, then a FIN without
    /// `close_notify` (the classic truncation).
    After,
}

/// What `tls-replay` injects where.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Replay {
    /// At the sender's FIN, after its last record: a copy of the record of
    /// type 23 before its last one (its last data record, when the last is
    /// `close_notify`).
    AtEnd,
    /// Right after the N-th record of type 23 (from 1), a copy of it.
    After(u64),
}

/// TLS-shaped faults of one direction. The proxy decrypts nothing: it
/// reads the 5-byte record headers (content type, version, length) as the
/// bytes pass, and places its faults at record boundaries or inside a
/// record's body. A stream that does not parse as TLS records gets none of
/// them (except `rst_at_fin`, which needs no records).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub struct TlsPlan {
    /// `tls-fin:DIR:N[:after]`: FIN to the receiver inside (or right
    /// after) the N-th record of content type 23 (from 1); the rest of the
    /// direction is discarded.
    pub fin: Option<(u64, FinAt)>,
    /// `tls-stall:DIR:DUR[@N]`: once the first N records (any type) went
    /// through, forward nothing for DUR.
    pub stall: Option<(u64, Duration)>,
    /// `tls-replay:DIR[:N]`: inject a copy of an earlier record.
    pub replay: Option<Replay>,
    /// `tls-junk:DIR:N`: at the sender's FIN, after its last record,
    /// inject N bytes drawn from the seed.
    pub junk: Option<u64>,
    /// `tls-rst:DIR`: at the sender's FIN, once everything it sent was
    /// handed to the kernel, reset both sides instead of passing the FIN on.
    pub rst_at_fin: bool,
}

impl TlsPlan {
    /// Whether the direction has a TLS fault.
    pub fn any(&self) -> bool {
        *self != TlsPlan::default()
    }

    /// Whether a fault needs the record headers read.
    pub fn reads_records(&self) -> bool {
        self.fin.is_some() || self.stall.is_some() || self.replay.is_some()
    }
}

/// What happens to one direction.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct DirPlan {
    /// How writes are cut.
    pub seg: Seg,
    /// Time between two writes of a shaped flow (zero: one loop turn).
    pub delay: Duration,
    /// Forward nothing for this long once this many bytes went through.
    pub stall: Option<(u64, Duration)>,
    /// End the direction once this many bytes went through.
    pub cut: Option<(Cut, u64)>,
    /// Never read the sender; reset both sides after this long.
    pub noread: Option<Duration>,
    /// TLS-shaped faults.
    pub tls: TlsPlan,
}

impl Default for DirPlan {
    fn default() -> Self {
        DirPlan {
            seg: Seg::Whole,
            delay: Duration::ZERO,
            stall: None,
            cut: None,
            noread: None,
            tls: TlsPlan::default(),
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
    /// Indexed by sender: `dirs[C2S]` is what happens to the client's bytes.
    pub dirs: [DirPlan; 2],
}

/// One entry of a `--fault` list.
// A handful of these exist per run (one per `--fault` entry), copied by
// value into each connection's plan: the size is of no consequence, and
// boxing would cost `Copy`.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Choice {
    /// This plan.
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
    /// `stall` in milliseconds, inclusive.
    pub stall_ms: (u64, u64),
    /// `noread` in milliseconds, inclusive.
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
/// and with parameters drawn from `rng` within `r`. Never a TLS fault: a
/// seed draws the plans it drew before they existed.
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

/// The plan of connection `k` under `--fault` entries `choices` and `seed`.
pub fn plan_for(choices: &[Choice], seed: u64, k: u64, ranges: &Ranges) -> (Plan, u64) {
    let s = item_seed(seed, k);
    let mut rng = Rng::new(s);
    let plan = match choices[(k % choices.len() as u64) as usize] {
        Choice::Plan(p) => p,
        Choice::Random => random_plan(&mut rng, ranges),
    };
    (plan, rng.next_u64())
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

/// A duration of a spec: `Nms` or `Ns`.
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

/// A record number of a TLS fault: 1 or more.
fn parse_record(s: Option<&str>) -> Result<u64, String> {
    let s = s.ok_or("a record number is required")?;
    match s.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err(format!("bad record number {s:?} (records count from 1)")),
    }
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
        "tls-fin" => {
            arity(3, 4)?;
            let n = parse_record(parts.get(2).copied())?;
            let at = match parts.get(3).copied() {
                None => FinAt::Middle,
                Some("after") => FinAt::After,
                Some(w) => return Err(format!("expected \"after\", not {w:?}")),
            };
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].tls.fin = Some((n, at));
            }
        }
        "tls-stall" => {
            arity(3, 3)?;
            let (dur, n) = match parts[2].split_once('@') {
                Some((dur, n)) => (dur, parse_count(Some(n))?),
                None => (parts[2], 1),
            };
            let dur = parse_duration(dur)?;
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].tls.stall = Some((n, dur));
            }
        }
        "tls-replay" => {
            arity(2, 3)?;
            let replay = match parts.get(2) {
                None => Replay::AtEnd,
                Some(n) => Replay::After(parse_record(Some(n))?),
            };
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].tls.replay = Some(replay);
            }
        }
        "tls-junk" => {
            arity(3, 3)?;
            let n = parse_count(parts.get(2).copied())?;
            if n == 0 {
                return Err("junk of 0 bytes".into());
            }
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].tls.junk = Some(n);
            }
        }
        "tls-rst" => {
            arity(2, 2)?;
            for &d in parse_dirs(Some(parts[1]), false)? {
                plan.dirs[d].tls.rst_at_fin = true;
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
        // TLS faults: `name:DIR` and what follows the direction.
        type Tail = fn(&TlsPlan) -> Option<String>;
        let tls: [(&str, Tail); 5] = [
            ("tls-fin", |t| {
                t.fin.map(|(n, at)| match at {
                    FinAt::Middle => format!(":{n}"),
                    FinAt::After => format!(":{n}:after"),
                })
            }),
            ("tls-stall", |t| {
                t.stall.map(|(n, dur)| format!(":{}@{n}", ms(dur)))
            }),
            ("tls-replay", |t| {
                t.replay.map(|r| match r {
                    Replay::AtEnd => String::new(),
                    Replay::After(n) => format!(":{n}"),
                })
            }),
            ("tls-junk", |t| t.junk.map(|n| format!(":{n}"))),
            ("tls-rst", |t| t.rst_at_fin.then(String::new)),
        ];
        for (name, tail) in tls {
            emit(
                tail(&c.tls),
                tail(&s.tls),
                &|v| format!("{name}:both{v}"),
                &|d, v| format!("{name}:{d}{v}"),
            );
        }
        if items.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&items.join("+"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(spec: &str) -> Plan {
        match parse_spec(spec).unwrap()[..] {
            [Choice::Plan(p)] => p,
            ref other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tls_faults_parse_and_print_back() {
        for (spec, canonical) in [
            ("tls-fin:c2s:2", "tls-fin:c2s:2"),
            ("tls-fin:s2c:3:after", "tls-fin:s2c:3:after"),
            ("tls-fin:both:1", "tls-fin:both:1"),
            ("tls-stall:s2c:5s", "tls-stall:s2c:5000ms@1"),
            ("tls-stall:c2s:200ms@0", "tls-stall:c2s:200ms@0"),
            ("tls-replay:c2s", "tls-replay:c2s"),
            ("tls-replay:c2s:2", "tls-replay:c2s:2"),
            ("tls-junk:both:64", "tls-junk:both:64"),
            ("tls-rst:s2c", "tls-rst:s2c"),
            (
                "split:1+tls-replay:c2s+tls-junk:c2s:9",
                "split:1+tls-replay:c2s+tls-junk:c2s:9",
            ),
        ] {
            let plan = one(spec);
            assert_eq!(plan.to_string(), canonical, "{spec}");
            assert_eq!(one(canonical), plan, "{canonical} parses back");
        }
        let p = one("tls-fin:c2s:2+tls-rst:s2c");
        assert_eq!(p.dirs[C2S].tls.fin, Some((2, FinAt::Middle)));
        assert!(p.dirs[S2C].tls.rst_at_fin && !p.dirs[C2S].tls.rst_at_fin);
        assert_eq!(
            one("tls-stall:s2c:1s").dirs[S2C].tls.stall,
            Some((1, Duration::from_secs(1)))
        );
    }

    #[test]
    fn bad_tls_faults_are_refused() {
        for bad in [
            "tls-fin:c2s:0",
            "tls-fin:c2s",
            "tls-fin:c2s:1:before",
            "tls-stall:c2s:5",
            "tls-replay:c2s:0",
            "tls-replay:sideways",
            "tls-junk:c2s:0",
            "tls-rst:c2s:1",
            "tls-rst",
        ] {
            assert!(parse_spec(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn random_plans_have_no_tls_fault() {
        let choices = parse_spec("random").unwrap();
        for k in 0..500 {
            let (plan, _) = plan_for(&choices, 7, k, &Ranges::default());
            assert!(plan.dirs.iter().all(|d| !d.tls.any()), "{plan}");
        }
    }
}
