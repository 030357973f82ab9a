//! A model-based test of the connection state machine.
//!
//! Random sequences of events (the peer sends, sends FIN, resets, reads our
//! output; time passes; the owner of the loop acts on a connection; the
//! reactor stops) are played against a few connections at once. Each
//! connection's [`ConnState`] is driven exactly as `core.rs` drives it
//! (`next_action`, carry out, report), against a simulated kernel socket,
//! with a scripted handler whose callbacks make random requests (write,
//! shutdown, close, abort, pause, resume, panic) and return a random
//! [`Eof`].
//!
//! Beside each state machine runs a reference model: a plain list of the
//! causes that could end the connection, in the order they happened, and
//! an independent statement of which one names the end. After every step
//! the test checks:
//!
//! - the end reason is the model's;
//! - `handle_close` is called exactly once, last, and no callback follows;
//! - `handle_readable_eof` at most once, never while paused, never after
//!   `handle_error`; `handle_error` at most once;
//! - no write is accepted after our own shutdown, close or abort, and no
//!   byte reaches the peer after our FIN;
//! - every graceful end drops 0 bytes: each byte a write accepted reached
//!   the peer, and the descriptor is closed, not reset;
//! - the gauges add up: each open connection is counted in exactly the
//!   gauge its halves say, and their sum is the number open.

use std::collections::VecDeque;
use std::io;
use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::stats::Stats;

const CONNS: usize = 3;
/// Size of the driver's read buffer.
const READ_BUF: usize = 64;
const HIGH: usize = 200;
const LOW: usize = 50;
const BUDGET: usize = 4;

fn config() -> Config {
    Config {
        idle_timeout: Some(Duration::from_millis(100)),
        peer_eof_timeout: Some(Duration::from_millis(300)),
        linger_timeout: Some(Duration::from_millis(200)),
        connect_timeout: Some(Duration::from_millis(150)),
        write_high_water: HIGH,
        write_low_water: LOW,
        ..Config::default()
    }
}

/// A request a handler makes from inside a callback, or the owner of the
/// loop makes from outside.
#[derive(Clone, Copy, Debug)]
enum Req {
    Write(usize),
    Shutdown,
    Close,
    /// `close_promptly`: no lingering read unless input is seen.
    ClosePromptly,
    CloseWith,
    Abort,
    Pause,
    Resume,
    Panic,
}

/// What happens next in the world.
#[derive(Clone, Debug)]
enum Event {
    /// The peer sends `n` bytes.
    PeerSends(usize),
    PeerFin,
    PeerRst,
    /// The peer reads up to `n` bytes of what we sent.
    PeerReads(usize),
    /// An outbound connect completes or is refused.
    ConnectOk,
    ConnectRefused,
    /// Time passes to the connection's next deadline (a timeout fires).
    Deadline,
    /// The owner of the loop makes these requests on the connection.
    Outside(Vec<Req>),
    /// The reactor stops (drain deadline, drop): every connection is reset.
    Stop,
}

/// What a callback is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cb {
    Connect,
    Read,
    Eof,
    Write,
    Error,
    Close,
}

/// The simulated kernel socket of one connection, and its peer.
#[derive(Debug, Default)]
struct Kernel {
    /// Bytes the peer sent that we have not read.
    rx: usize,
    rx_fin: bool,
    /// The peer reset: reads fail once the data before it is read.
    rx_rst: bool,
    /// `SO_ERROR` is pending.
    so_error: bool,
    /// Free space in our send buffer.
    tx_space: usize,
    /// Bytes that reached the peer.
    delivered: usize,
    /// Our FIN reached the peer.
    fin_sent: bool,
    connect: Option<bool>,
}

impl Kernel {
    fn write(&mut self, n: usize) -> io::Result<usize> {
        assert!(!self.fin_sent, "a byte sent after our FIN");
        if self.rx_rst {
            return Err(io::ErrorKind::BrokenPipe.into());
        }
        if self.tx_space == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let k = n.min(self.tx_space);
        self.tx_space -= k;
        self.delivered += k;
        Ok(k)
    }
}

impl io::Write for &mut Kernel {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Kernel::write(self, buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The reference model: what could end the connection, in order.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Cause {
    Graceful(Reason),
    GiveUp,
    Error(Reason),
    Abort(Reason),
    Stopped,
    Panicked,
}

#[derive(Debug, Default)]
struct Model {
    causes: Vec<Cause>,
    /// We asked for our FIN (shutdown, close) before the peer's was read.
    fin_requested: bool,
    peer_fin_read: bool,
    /// The peer's FIN was read before we asked for ours.
    peer_first: bool,
    /// Bytes writes accepted.
    accepted: usize,
}

impl Model {
    fn failing(&self) -> bool {
        self.causes.iter().any(|c| {
            matches!(
                c,
                Cause::Error(_) | Cause::Abort(_) | Cause::Stopped | Cause::Panicked
            )
        })
    }

    fn closing(&self) -> bool {
        self.fin_requested || self.causes.iter().any(|c| matches!(c, Cause::Graceful(_)))
    }

    fn first_graceful(&self) -> Option<Reason> {
        self.causes.iter().find_map(|c| match c {
            Cause::Graceful(r) => Some(*r),
            _ => None,
        })
    }

    /// The reason the connection ends with, stated without ranks: a panic
    /// names it; else the reactor's stop; else the first error or abort;
    /// else a linger give-up (named for the timeout that began the close,
    /// if one did); else the first graceful close; else whose FIN came
    /// first.
    fn reason(&self) -> Reason {
        if self.causes.contains(&Cause::Panicked) {
            return Reason::Panicked;
        }
        if self.causes.contains(&Cause::Stopped) {
            return Reason::Stopped;
        }
        if let Some(r) = self.causes.iter().find_map(|c| match c {
            Cause::Error(r) | Cause::Abort(r) => Some(*r),
            _ => None,
        }) {
            return r;
        }
        if self.causes.contains(&Cause::GiveUp) {
            return match self.first_graceful() {
                Some(r @ Reason::TimedOut(_)) => r,
                _ => Reason::TimedOut(Timeout::Linger),
            };
        }
        if let Some(r) = self.first_graceful() {
            return r;
        }
        if self.peer_first {
            Reason::PeerClosed
        } else {
            Reason::Local
        }
    }

    fn is_graceful_end(&self) -> bool {
        !self.failing()
    }
}

/// One connection under test.
#[derive(Debug)]
struct Sim {
    st: ConnState,
    kernel: Kernel,
    model: Model,
    calls: Vec<Cb>,
    closed: Option<(Reason, Teardown, u64)>,
    /// What the scripted handler does in its next callbacks.
    script: VecDeque<Req>,
    eofs: VecDeque<Eof>,
}

/// All connections, their shared counters, and the clock.
struct World {
    sims: Vec<Sim>,
    /// Connections that spent their read budget, as the reactor keeps them.
    requeue: Vec<usize>,
    stats: Stats,
    now: u64,
    cfg: Config,
}

impl World {
    fn new(connecting: [bool; CONNS], script: Vec<Req>, eofs: Vec<Eof>) -> World {
        let mut stats = Stats::default();
        let sims = connecting
            .iter()
            .map(|&c| {
                let writing = if c {
                    Writing::Connecting
                } else {
                    Writing::Open
                };
                let st = ConnState::new(writing, 0);
                stats.opened(st.gauge());
                Sim {
                    st,
                    kernel: Kernel {
                        tx_space: 128,
                        connect: (!c).then_some(true),
                        ..Kernel::default()
                    },
                    model: Model::default(),
                    calls: Vec::new(),
                    closed: None,
                    script: script.iter().copied().collect(),
                    eofs: eofs.iter().copied().collect(),
                }
            })
            .collect();
        World {
            sims,
            requeue: Vec::new(),
            stats,
            now: 0,
            cfg: config(),
        }
    }

    /// A callback of connection `i`: record it and let the scripted handler
    /// make its requests. Returns false if it "panicked".
    fn callback(&mut self, i: usize, cb: Cb) -> bool {
        let sim = &mut self.sims[i];
        assert!(sim.closed.is_none(), "{cb:?} after handle_close");
        if cb == Cb::Eof {
            assert!(!sim.calls.contains(&Cb::Eof), "EOF delivered twice");
            assert!(!sim.calls.contains(&Cb::Error), "EOF after an error");
            assert_ne!(sim.st.reading(), Reading::Paused, "EOF while paused");
        }
        if cb == Cb::Error {
            assert!(!sim.calls.contains(&Cb::Error), "handle_error twice");
        }
        if cb == Cb::Write {
            assert!(
                !sim.model.failing() && !sim.model.closing(),
                "handle_write once writes are refused"
            );
        }
        sim.calls.push(cb);
        // Up to two requests per callback.
        for _ in 0..2 {
            let Some(req) = self.sims[i].script.pop_front() else {
                break;
            };
            if !self.request(i, req) {
                return false;
            }
        }
        true
    }

    /// A request through `Conn`, as `conn.rs` and `Core::write` make it.
    /// Returns false for a panic.
    fn request(&mut self, i: usize, req: Req) -> bool {
        let now = self.now;
        let sim = &mut self.sims[i];
        let st = &mut sim.st;
        let m = &mut sim.model;
        match req {
            Req::Write(n) => {
                let refused = st.write_refusal();
                assert_eq!(
                    refused.is_some(),
                    m.failing() || m.closing(),
                    "write accepted or refused against the model: {refused:?}, {m:?}"
                );
                if refused.is_some() || n == 0 {
                    return true;
                }
                m.accepted += n;
                let mut written = 0;
                if st.may_write_through() {
                    match sim.kernel.write(n) {
                        Ok(k) => {
                            written = k;
                            if k < n {
                                st.send_buffer_full();
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => st.send_buffer_full(),
                        Err(e) => {
                            m.causes.push(Cause::Error(Reason::from_error(&e)));
                            st.failed(e);
                        }
                    }
                    st.wrote(written, now);
                }
                if written < n {
                    st.enqueue(&vec![0; n - written], HIGH);
                }
            }
            Req::Shutdown => {
                if !m.failing() {
                    m.fin_requested = true;
                }
                if !st.is_failing() {
                    st.shutdown_write();
                }
            }
            Req::Close | Req::ClosePromptly => {
                let r = if m.peer_fin_read {
                    Reason::PeerClosed
                } else {
                    Reason::Local
                };
                if !m.failing() {
                    m.fin_requested = true;
                }
                m.causes.push(Cause::Graceful(r));
                if matches!(req, Req::Close) {
                    st.close(st.graceful_reason());
                } else {
                    st.close_promptly(st.graceful_reason());
                }
            }
            Req::CloseWith => {
                let r = Reason::Protocol(crate::ProtocolError::Malformed);
                if !m.failing() {
                    m.fin_requested = true;
                }
                m.causes.push(Cause::Graceful(r));
                st.close(r);
            }
            Req::Abort => {
                m.causes.push(Cause::Abort(Reason::Aborted));
                st.abort(Reason::Aborted);
            }
            Req::Pause => st.pause(),
            Req::Resume => {
                st.resume();
            }
            Req::Panic => {
                m.causes.push(Cause::Panicked);
                st.abort(Reason::Panicked);
                return false;
            }
        }
        true
    }

    /// `Core::advance`, against the simulated kernel.
    fn advance(&mut self, i: usize) {
        if self.sims[i].closed.is_some() {
            return;
        }
        let now = self.now;
        let mut budget = BUDGET;
        loop {
            let action = self.sims[i].st.next_action(LOW, Io::PLAIN);
            let sim = &mut self.sims[i];
            match action {
                Action::Wait => break,
                Action::Finalize(reason, how) => return self.finalize(i, reason, how),
                Action::ReportError => {
                    assert!(sim.st.error().is_some());
                    self.callback(i, Cb::Error);
                    self.sims[i].st.error_reported();
                }
                Action::CheckConnect => match sim.kernel.connect {
                    None => sim.st.connect_pending(),
                    Some(true) => {
                        sim.st.connected(now, false);
                        self.callback(i, Cb::Connect);
                    }
                    Some(false) => {
                        sim.model.causes.push(Cause::Error(Reason::Error(
                            io::ErrorKind::ConnectionRefused,
                        )));
                        sim.st.failed(io::ErrorKind::ConnectionRefused.into());
                    }
                },
                Action::Handshake => unreachable!("plain sockets do not handshake"),
                Action::Flush => {
                    let q = sim.st.out_mut().expect("flush with a queue");
                    let (n, outcome) = q.flush_to(&mut sim.kernel);
                    if let Err(e) = &outcome {
                        sim.model.causes.push(Cause::Error(Reason::from_error(e)));
                    }
                    sim.st.flushed(n, outcome, now);
                }
                Action::Drained { notify } => {
                    sim.st.drained();
                    if notify {
                        self.callback(i, Cb::Write);
                    }
                }
                Action::ShutdownWrite => {
                    assert_eq!(sim.st.pending(), 0, "FIN before the queue drained");
                    if sim.kernel.rx_rst {
                        sim.model.causes.push(Cause::Error(Reason::Reset));
                        sim.st.shutdown_failed(io::ErrorKind::NotConnected.into());
                    } else {
                        sim.kernel.fin_sent = true;
                        sim.st.shut_write(now);
                    }
                }
                Action::Fin => self.fin(i),
                Action::Read { deliver } => {
                    if budget == 0 {
                        self.requeue.push(i);
                        break;
                    }
                    budget -= 1;
                    let k = &mut sim.kernel;
                    if k.rx > 0 {
                        let n = k.rx.min(READ_BUF);
                        k.rx -= n;
                        sim.st.read_data(n, n < READ_BUF, now);
                        if deliver && !self.callback(i, Cb::Read) {
                            continue;
                        }
                    } else if k.rx_rst && k.so_error {
                        k.so_error = false;
                        sim.model.causes.push(Cause::Error(Reason::Reset));
                        sim.st.read_failed(io::ErrorKind::ConnectionReset.into());
                    } else if k.rx_fin || k.rx_rst {
                        self.fin(i);
                    } else {
                        sim.st.read_drained();
                    }
                }
                Action::CheckError => {
                    if sim.kernel.so_error {
                        sim.kernel.so_error = false;
                        sim.model.causes.push(Cause::Error(Reason::Reset));
                        sim.st.failed(io::ErrorKind::ConnectionReset.into());
                    } else {
                        sim.st.error_checked();
                    }
                }
            }
        }
        // settle: the gauge.
        let (old, new) = self.sims[i].st.regauge();
        self.stats.moved(old, new);
    }

    /// The peer's FIN was read.
    fn fin(&mut self, i: usize) {
        let now = self.now;
        let sim = &mut self.sims[i];
        let deliver = sim.st.reading() == Reading::Open;
        if !sim.model.fin_requested && !sim.model.peer_fin_read {
            sim.model.peer_first = true;
        }
        sim.model.peer_fin_read = true;
        let told = sim.st.read_fin(now);
        assert_eq!(told.is_some(), deliver, "EOF told iff input was delivered");
        let Some(ours_first) = told else { return };
        assert_eq!(ours_first, sim.model.fin_requested, "whose FIN came first");
        if !self.callback(i, Cb::Eof) {
            return;
        }
        let sim = &mut self.sims[i];
        let eof = sim.eofs.pop_front().unwrap_or_default();
        let m = &mut sim.model;
        match eof {
            Eof::Close => {
                let r = if ours_first {
                    Reason::Local
                } else {
                    Reason::PeerClosed
                };
                m.causes.push(Cause::Graceful(r));
            }
            Eof::HalfClose if ours_first => m.causes.push(Cause::Graceful(Reason::Local)),
            Eof::HalfClose => {}
            Eof::Abort => m.causes.push(Cause::Abort(Reason::Aborted)),
        }
        sim.st.eof_decided(eof, ours_first);
    }

    /// `Core::finalize`.
    fn finalize(&mut self, i: usize, reason: Reason, how: Teardown) {
        let sim = &mut self.sims[i];
        if how == Teardown::Close && matches!(sim.st.end, End::Graceful(_)) {
            // close(2) with unread bytes sends RST, not FIN (V1): a
            // lossless close reads everything first (giving up at the
            // linger timeout may leave input unread, and reset).
            assert_eq!(sim.kernel.rx, 0, "close(2) with unread input: {sim:?}");
        }
        let dropped = sim.st.pending() as u64;
        self.stats.open -= 1;
        self.stats.leave(sim.st.gauge());
        sim.closed = Some((reason, how, dropped));
        self.callback_close(i);
    }

    fn callback_close(&mut self, i: usize) {
        let sim = &mut self.sims[i];
        assert!(!sim.calls.contains(&Cb::Close), "handle_close twice");
        sim.calls.push(Cb::Close);
    }

    /// One loop iteration: the event, then the re-queued connections until
    /// none is left.
    fn step(&mut self, i: usize, ev: &Event) {
        self.event(i, ev);
        for _ in 0..1_000 {
            let Some(j) = self.requeue.pop() else { return };
            self.advance(j);
        }
        panic!("re-queued forever");
    }

    fn event(&mut self, i: usize, ev: &Event) {
        if self.sims[i].closed.is_some() {
            return;
        }
        let sim = &mut self.sims[i];
        let k = &mut sim.kernel;
        match ev {
            Event::PeerSends(n) => {
                if k.rx_fin || k.rx_rst {
                    return;
                }
                k.rx += n;
                sim.st.readiness(true, false, false, false);
            }
            Event::PeerFin => {
                if k.rx_fin || k.rx_rst {
                    return;
                }
                k.rx_fin = true;
                sim.st.readiness(true, true, false, false);
            }
            Event::PeerRst => {
                if k.rx_rst {
                    return;
                }
                k.rx_rst = true;
                k.so_error = true;
                sim.st.readiness(true, true, true, true);
            }
            Event::PeerReads(n) => {
                k.tx_space = (k.tx_space + n).min(256);
                sim.st.readiness(false, false, true, false);
            }
            Event::ConnectOk | Event::ConnectRefused => {
                if k.connect.is_some() {
                    return;
                }
                k.connect = Some(matches!(ev, Event::ConnectOk));
                sim.st
                    .readiness(false, false, true, !matches!(ev, Event::ConnectOk));
            }
            Event::Deadline => {
                let Some((at, _)) = sim.st.next_timeout(&Limits::from(&self.cfg), self.now) else {
                    return;
                };
                self.now = self.now.max(at);
                self.expire(i);
            }
            Event::Outside(reqs) => {
                for &req in reqs {
                    if self.sims[i].closed.is_some() {
                        break;
                    }
                    // A panic outside a callback is not the handler's.
                    if !matches!(req, Req::Panic) {
                        self.request(i, req);
                    }
                }
            }
            Event::Stop => {
                for j in 0..CONNS {
                    if self.sims[j].closed.is_none() {
                        self.sims[j].model.causes.push(Cause::Stopped);
                        self.sims[j].st.abort(Reason::Stopped);
                        self.advance(j);
                    }
                }
                return;
            }
        }
        self.advance(i);
    }

    /// The timeouts' timer of connection `i` fired.
    fn expire(&mut self, i: usize) {
        let sim = &mut self.sims[i];
        let (closing, failing) = (sim.model.closing(), sim.model.failing());
        let connecting = sim.st.writing().is_connecting();
        let Some(kind) = sim.st.expire(self.now, &Limits::from(&self.cfg)) else {
            return;
        };
        let m = &mut sim.model;
        let r = Reason::TimedOut(kind);
        match kind {
            Timeout::Connect => {
                assert!(connecting);
                m.causes.push(Cause::Error(r));
            }
            Timeout::Linger => m.causes.push(Cause::GiveUp),
            _ => {
                if closing || failing {
                    m.causes.push(Cause::Abort(r));
                } else {
                    m.fin_requested = true;
                    m.causes.push(Cause::Graceful(r));
                }
            }
        }
    }

    #[track_caller]
    fn check(&self) {
        let gauges = self.stats.connecting
            + self.stats.established
            + self.stats.half_closed_in
            + self.stats.half_closed_out
            + self.stats.lingering;
        assert_eq!(gauges, self.stats.open, "gauges add up to the open count");
        let mut open = 0;
        for sim in &self.sims {
            match sim.closed {
                None => {
                    open += 1;
                    assert_eq!(sim.st.gauge(), sim.st.classify(), "counted where it is");
                    if sim.model.failing() || sim.model.closing() {
                        assert!(sim.st.write_refusal().is_some(), "writes refused");
                    }
                    // Edge-triggered: input that can be taken must have
                    // been, or no event will ever say it is there.
                    let k = &sim.kernel;
                    let takes_input = matches!(
                        sim.st.reading(),
                        Reading::Open | Reading::Discarding | Reading::Done
                    ) && !sim.st.writing().is_connecting();
                    if takes_input && !sim.model.failing() {
                        assert!(
                            k.rx == 0 && (!k.rx_fin || sim.model.peer_fin_read),
                            "input left in the kernel with no wakeup to come: {sim:?}"
                        );
                    }
                }
                Some((reason, how, dropped)) => {
                    assert_eq!(sim.calls.last(), Some(&Cb::Close), "handle_close last");
                    assert_eq!(reason, sim.model.reason(), "end reason: {:?}", sim.model);
                    if sim.model.is_graceful_end() {
                        assert_eq!(how, Teardown::Close, "graceful ends close, not reset");
                        assert_eq!(dropped, 0, "graceful ends drop nothing");
                        assert_eq!(
                            sim.kernel.delivered, sim.model.accepted,
                            "every accepted byte reached the peer"
                        );
                    }
                }
            }
        }
        assert_eq!(open, self.stats.open);
    }
}

fn req() -> impl Strategy<Value = Req> {
    prop_oneof![
        4 => (0usize..400).prop_map(Req::Write),
        1 => Just(Req::Shutdown),
        1 => Just(Req::Close),
        1 => Just(Req::ClosePromptly),
        1 => Just(Req::CloseWith),
        1 => Just(Req::Abort),
        1 => Just(Req::Pause),
        2 => Just(Req::Resume),
        1 => Just(Req::Panic),
    ]
}

fn event() -> impl Strategy<Value = Event> {
    prop_oneof![
        4 => (1usize..300).prop_map(Event::PeerSends),
        2 => Just(Event::PeerFin),
        1 => Just(Event::PeerRst),
        3 => (1usize..300).prop_map(Event::PeerReads),
        1 => Just(Event::ConnectOk),
        1 => Just(Event::ConnectRefused),
        2 => Just(Event::Deadline),
        2 => proptest::collection::vec(req(), 1..3).prop_map(Event::Outside),
        1 => Just(Event::Stop),
    ]
}

fn eof() -> impl Strategy<Value = Eof> {
    prop_oneof![2 => Just(Eof::Close), 3 => Just(Eof::HalfClose), 1 => Just(Eof::Abort)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn the_state_machine_agrees_with_the_model(
        connecting in proptest::array::uniform3(proptest::bool::weighted(0.3)),
        script in proptest::collection::vec(req(), 0..12),
        eofs in proptest::collection::vec(eof(), 0..4),
        events in proptest::collection::vec((0..CONNS, event()), 1..60),
    ) {
        let mut world = World::new(connecting, script, eofs);
        world.check();
        for (i, ev) in &events {
            world.step(*i, ev);
            world.check();
        }
        // Then let every connection finish: the peer reads everything and
        // closes, time passes.
        for _ in 0..20 {
            for i in 0..CONNS {
                for ev in [
                    Event::ConnectOk,
                    Event::PeerReads(256),
                    Event::PeerFin,
                    Event::Outside(vec![Req::Resume]),
                    Event::Deadline,
                ] {
                    world.step(i, &ev);
                    world.check();
                }
            }
        }
        for sim in &world.sims {
            prop_assert!(sim.closed.is_some(), "still open: {:?}", sim.st);
        }
    }
}
