//! The connection state machine, without a socket.
//!
//! [`ConnState`] holds everything the reactor knows about one connection
//! except its socket and its handler: one enum per half ([`Reading`],
//! [`Writing`]), how the connection is ending ([`End`]), the readiness the
//! kernel reported ([`Ready`]), the output queue, counters and deadlines.
//! Its fields are private, and kept small (40 bytes; the test
//! `state_is_small`): moments as 32-bit ticks of the reactor's millisecond
//! clock ([`Tick`]), byte counts in 32 bits, and what few connections have
//! (queued output, an error to report, an idle timeout of the handler's
//! own, the upper bits of a count past 4 GiB) in one boxed spill. It
//! changes only through named transitions, each logged at `trace`:
//!
//! - *requests* a handler makes through [`Conn`](crate::Conn):
//!   [`shutdown_write`](ConnState::shutdown_write), [`close`](ConnState::close),
//!   [`end_with`](ConnState::end_with), [`pause`](ConnState::pause), ...;
//! - *readiness* from epoll: [`readiness`](ConnState::readiness);
//! - *outcomes* of the I/O the driver carried out:
//!   [`read_data`](ConnState::read_data), [`read_fin`](ConnState::read_fin),
//!   [`flushed`](ConnState::flushed), [`shut_write`](ConnState::shut_write),
//!   [`failed`](ConnState::failed), ...;
//! - *time*: [`expire`](ConnState::expire).
//!
//! [`next_action`](ConnState::next_action) decides, from the state alone,
//! the one thing to do next ([`Action`]); the driver (`core.rs`) carries it
//! out and reports the outcome through a transition, until the answer is
//! [`Action::Wait`]. Nothing here touches a socket or a clock: `now` is an
//! argument, so the tests below run the machine through every state with
//! plain values.
//!
//! # How a connection ends
//!
//! Several causes can compete to end one connection: a graceful close, a
//! socket error, an abort, the drain deadline, a handler panic. One rule,
//! [`End::rank`], decides: a cause replaces the recorded one only if it
//! ranks strictly higher, so among equals the first one stays.
//!
//! | rank | end | recorded by |
//! |---:|---|---|
//! | 0 | running | |
//! | 1 | graceful close (FIN after the queue, lingering read) | `close`, `Eof::Close`, idle or peer-EOF timeout |
//! | 2 | give up the wait for the peer's FIN (our FIN is out) | linger timeout |
//! | 3 | socket error, then `close(2)` | a failed read, write, shutdown or connect; connect timeout |
//! | 3 | reset (RST) | `abort`, `Eof::Abort`, a timeout while already closing |
//! | 4 | reset, reason stopped | drain deadline, reactor dropped |
//! | 5 | reset, reason panicked | a handler callback panicked |

use std::io;

use crate::closed::{Reason, Timeout};
use crate::config::{idle_ms, millis, Config};
use crate::handler::Eof;
use crate::outq::{Flush, OutQueue};
use crate::stats::Gauge;

/// Our read half.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Reading {
    /// Input is delivered to `handle_read`.
    Open,
    /// The handler paused input; the kernel queue (and a FIN in it) waits.
    Paused,
    /// The peer's FIN was read (and delivered, unless we were discarding).
    Eof,
    /// We closed: read and discard until the peer's FIN (lingering close).
    Discarding,
    /// We closed promptly ([`close_promptly`](ConnState::close_promptly)):
    /// the peer said it sends nothing more, so nothing is read and our FIN
    /// goes with `close(2)` once the queue drains. Input that comes anyway
    /// is discarded and the close lingers after all (`Discarding`).
    Done,
}

/// Our write half.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Writing {
    /// Outbound connect in flight; writes are queued.
    Connecting,
    /// As `Connecting`, and a `shutdown_write` or `close` waits for the
    /// connect.
    ConnectingThenFin,
    /// Connected, a TLS handshake in flight; writes are queued as while
    /// connecting.
    Handshaking,
    /// As `Handshaking`, and a `shutdown_write` or `close` waits for it.
    HandshakingThenFin,
    /// Writes go out.
    Open,
    /// FIN once the queue drains; writes are refused.
    Closing,
    /// Our FIN is out.
    Shut,
}

impl Writing {
    /// An outbound connect is in flight (a FIN may wait for it).
    pub(crate) fn is_connecting(self) -> bool {
        matches!(self, Writing::Connecting | Writing::ConnectingThenFin)
    }

    /// A TLS handshake is in flight (a FIN may wait for it).
    pub(crate) fn is_handshaking(self) -> bool {
        matches!(self, Writing::Handshaking | Writing::HandshakingThenFin)
    }
}

/// How the connection as a whole is ending; see the module docs for the
/// rule between competing causes.
#[derive(Debug)]
pub(crate) enum End {
    /// Nothing decided yet.
    Running,
    /// A lossless close is under way, with this reason.
    Graceful(Reason),
    /// Our FIN is out and the linger timeout passed: close now.
    GiveUp(Reason),
    /// A socket error: report it to `handle_error` (the error waits in
    /// the connection's [`Spill`]), then close.
    Fail(Reason),
    /// The error was reported: close.
    Failed(Reason),
    /// Reset now, dropping the queue.
    Abort(Reason),
}

impl End {
    /// The one rule between causes: see the module docs.
    fn rank(&self) -> u8 {
        match self {
            End::Running => 0,
            End::Graceful(_) => 1,
            End::GiveUp(_) => 2,
            End::Fail(_) | End::Failed(_) => 3,
            End::Abort(Reason::Panicked) => 5,
            End::Abort(Reason::Stopped) => 4,
            End::Abort(_) => 3,
        }
    }
}

/// How the descriptor is closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Teardown {
    /// `close(2)`: FIN (the receive queue is empty on every graceful path).
    Close,
    /// `SO_LINGER` 0, then `close(2)`: RST.
    Reset,
}

/// What the transport says about itself, for [`ConnState::next_action`]:
/// plain sockets hold nothing and close with a FIN; TLS holds ciphertext
/// of its own and needs `close_notify` before any FIN.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Io {
    /// Output the transport holds itself (handshake messages, alerts,
    /// ciphertext the kernel did not take yet).
    pub(crate) holds_output: bool,
    /// Whether `close(2)` alone ends our side properly once the peer's end
    /// was read (TCP, Unix); TLS must send `close_notify` first.
    pub(crate) close_sends_fin: bool,
}

impl Io {
    /// A TCP or Unix socket.
    pub(crate) const PLAIN: Io = Io {
        holds_output: false,
        close_sends_fin: true,
    };
}

/// The one thing the driver should do next; see [`ConnState::next_action`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Action {
    /// Close the descriptor as said, free the slot, call `handle_close`.
    Finalize(Reason, Teardown),
    /// Call `handle_error` with [`ConnState::error`], then
    /// [`error_reported`](ConnState::error_reported).
    ReportError,
    /// Ask the socket whether the outbound connect completed.
    CheckConnect,
    /// Drive the TLS handshake.
    Handshake,
    /// Write queued output.
    Flush,
    /// Queued output fell to the low-water mark after passing the high one:
    /// [`drained`](ConnState::drained), and call `handle_write` if `notify`.
    Drained { notify: bool },
    /// `shutdown(SHUT_WR)`: our FIN.
    ShutdownWrite,
    /// The receive queue is empty and the peer's FIN is next: take it
    /// without a read ([`read_fin`](ConnState::read_fin)).
    Fin,
    /// Read once; hand the bytes to `handle_read` if `deliver`, otherwise
    /// discard them (lingering close).
    Read { deliver: bool },
    /// Ask the socket for a pending error (`SO_ERROR`).
    CheckError,
    /// Nothing until an event, a timer or a request.
    Wait,
}

/// Readiness cached from edge-triggered events (V5): set by events, cleared
/// only when a syscall says the condition is gone.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub(crate) struct Ready(u8);

impl Ready {
    pub(crate) const READABLE: u8 = 1;
    pub(crate) const WRITABLE: u8 = 2;
    /// The peer's FIN (or a reset) is in the receive queue.
    pub(crate) const READ_CLOSED: u8 = 4;
    pub(crate) const ERROR: u8 = 8;
    /// A short read emptied the receive queue while `READ_CLOSED` was set
    /// without `ERROR`: the next read would return 0.
    pub(crate) const FIN_NEXT: u8 = 16;

    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }
    fn clear(&mut self, bit: u8) {
        self.0 &= !bit;
    }
}

/// What a connection keeps only while it has it: output the kernel did not
/// take, a socket error waiting for `handle_error`, and an idle timeout of
/// its own. Boxed, so that a connection with none pays one pointer.
#[derive(Debug, Default)]
struct Spill {
    queue: OutQueue,
    error: Option<io::Error>,
    /// The idle timeout in ms (0: none) that replaces the configured one,
    /// while [`Marks::OWN_IDLE`] is set.
    idle_ms: u32,
    /// The upper 32 bits of the byte counts, by [`Way`], once one passed
    /// 4 GiB (the state keeps the lower 32).
    bytes_high: [u32; 2],
}

/// Which byte count.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Way {
    In = 0,
    Out = 1,
}

/// Facts about a connection that belong to neither half, as bits.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
struct Marks(u8);

impl Marks {
    /// Passed the high-water mark: `handle_write` is owed at the low one.
    const BLOCKED: u8 = 1;
    /// `armed` is the deadline of this connection's timeout entry.
    const ARMED: u8 = 2;
    /// The handler set an idle timeout of its own: it is in the spill.
    const OWN_IDLE: u8 = 4;

    fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    fn put(&mut self, bit: u8, on: bool) {
        self.0 = if on { self.0 | bit } else { self.0 & !bit };
    }
}

/// Why a write is refused; see [`ConnState::write_refusal`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Refusal {
    /// Our FIN is queued or sent.
    Shutdown,
    /// The connection failed or is being reset.
    Closed,
}

/// Everything the reactor keeps for one connection, its socket and handler
/// aside.
#[derive(Debug)]
pub(crate) struct ConnState {
    reading: Reading,
    writing: Writing,
    ready: Ready,
    /// The gauge this connection is counted in (kept to move it).
    gauge: Gauge,
    marks: Marks,
    end: End,
    /// Queued output, an error to report and an idle timeout of its own,
    /// kept only while there are.
    spill: Option<Box<Spill>>,
    /// Bytes in and out, their lower 32 bits (the upper ones in the spill).
    bytes_in: u32,
    bytes_out: u32,
    /// Tick of the last byte moved in either direction.
    last_activity: Tick,
    /// Tick the current phase began: connect started, peer FIN, our FIN.
    since: Tick,
    /// The handler's timer kept in the reactor's lanes, by its sequence
    /// number (its entry there names this slot and this number); 0: none.
    /// A second timer at once goes to the reactor's heap.
    timer: u32,
    /// The deadline of the one timer entry that guards every timeout of
    /// this connection, while [`Marks::ARMED`] is set. The entry has no
    /// key: it is this connection's while its deadline matches this one.
    armed: Tick,
}

/// A moment of the reactor's millisecond clock kept in 32 bits (its low
/// bits), read back against `now`: exact while it lies less than 2^32 ms
/// (49 days) in the past, which every timeout does
/// ([`Config::validate`](crate::Config::validate) refuses longer ones).
/// Half the size of a `u64` in every connection's state.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Tick(u32);

/// How late the loop may be to take a due timeout entry before the
/// entry's deadline, read back as a [`Tick`], seems 49 days ahead instead
/// (the connection then arms a new entry: harmless).
const ARM_LATE: u64 = 1 << 20;

/// How far ahead a timeout entry may lie (a later deadline gets an entry at
/// this distance, which fires early and arms again): what a [`Tick`] of it
/// reads back exactly, `ARM_LATE` in the past included.
const ARM_HORIZON: u64 = (1 << 32) - ARM_LATE - 1;

impl Tick {
    fn at(now: u64) -> Tick {
        Tick(now as u32)
    }

    /// The full tick this one stands for, no more than [`ARM_LATE`] before
    /// `now` and no more than [`ARM_HORIZON`] after it.
    fn near(self, now: u64) -> u64 {
        let base = now.saturating_sub(ARM_LATE);
        base + u64::from(self.0.wrapping_sub(base as u32))
    }

    /// The full tick this one stands for, `now` being later.
    fn back(self, now: u64) -> u64 {
        now.saturating_sub(u64::from((now as u32).wrapping_sub(self.0)))
    }
}

/// The configured timeouts in milliseconds, converted once per reactor
/// rather than at every look at a connection's deadlines.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Limits {
    /// The idle timeout; 0: none.
    idle_ms: u32,
    peer_eof: Option<u64>,
    linger: Option<u64>,
    connect: Option<u64>,
    handshake: Option<u64>,
}

impl From<&Config> for Limits {
    fn from(cfg: &Config) -> Self {
        Limits {
            idle_ms: idle_ms(cfg.idle_timeout),
            peer_eof: cfg.peer_eof_timeout.map(millis),
            linger: cfg.linger_timeout.map(millis),
            connect: cfg.connect_timeout.map(millis),
            handshake: cfg.handshake_timeout.map(millis),
        }
    }
}

macro_rules! transition {
    ($($arg:tt)*) => {
        log::trace!(target: "halfclose::state", $($arg)*)
    };
}

impl ConnState {
    /// A connection accepted (`writing` is `Open`) or connecting.
    pub(crate) fn new(writing: Writing, now: u64) -> Self {
        let mut ready = Ready::default();
        if writing == Writing::Open {
            // A fresh accepted socket can take writes before its first event.
            ready.set(Ready::WRITABLE);
        }
        let mut st = ConnState {
            reading: Reading::Open,
            writing,
            ready,
            gauge: Gauge::Established,
            marks: Marks::default(),
            end: End::Running,
            spill: None,
            bytes_in: 0,
            bytes_out: 0,
            last_activity: Tick::at(now),
            since: Tick::at(now),
            timer: 0,
            armed: Tick(0),
        };
        st.gauge = st.classify();
        st
    }

    // ------------------------------------------------------------ queries

    pub(crate) fn reading(&self) -> Reading {
        self.reading
    }

    pub(crate) fn writing(&self) -> Writing {
        self.writing
    }

    pub(crate) fn bytes_in(&self) -> u64 {
        self.bytes(Way::In, self.bytes_in)
    }

    pub(crate) fn bytes_out(&self) -> u64 {
        self.bytes(Way::Out, self.bytes_out)
    }

    /// A byte count from its lower bits and the spill's upper ones.
    fn bytes(&self, way: Way, low: u32) -> u64 {
        let high = self
            .spill
            .as_ref()
            .map_or(0, |s| s.bytes_high[way as usize]);
        (u64::from(high) << 32) | u64::from(low)
    }

    /// Count `n` more bytes one way.
    fn count(&mut self, way: Way, n: usize) {
        let low = match way {
            Way::In => &mut self.bytes_in,
            Way::Out => &mut self.bytes_out,
        };
        let total = u64::from(*low) + n as u64;
        *low = total as u32;
        let carry = (total >> 32) as u32;
        if carry > 0 {
            let spill = self.spill.get_or_insert_with(Default::default);
            let high = &mut spill.bytes_high[way as usize];
            *high = high.wrapping_add(carry);
        }
    }

    /// Bytes queued and not yet handed to the kernel.
    pub(crate) fn pending(&self) -> usize {
        self.spill.as_ref().map_or(0, |s| s.queue.len())
    }

    /// The output queue, for the driver to flush.
    pub(crate) fn out_mut(&mut self) -> Option<&mut OutQueue> {
        self.spill
            .as_deref_mut()
            .map(|s| &mut s.queue)
            .filter(|q| q.len() > 0)
    }

    /// The gauge this connection counts in now.
    pub(crate) fn classify(&self) -> Gauge {
        match (self.writing, self.reading) {
            (
                Writing::Connecting
                | Writing::ConnectingThenFin
                | Writing::Handshaking
                | Writing::HandshakingThenFin,
                _,
            ) => Gauge::Connecting,
            (_, Reading::Discarding | Reading::Done) => Gauge::Lingering,
            (Writing::Shut, _) => Gauge::HalfClosedOut,
            (_, Reading::Eof) => Gauge::HalfClosedIn,
            _ => Gauge::Established,
        }
    }

    /// Record the gauge the connection now counts in; the one it left.
    pub(crate) fn regauge(&mut self) -> (Gauge, Gauge) {
        let now = self.classify();
        (std::mem::replace(&mut self.gauge, now), now)
    }

    /// The gauge the connection was last counted in.
    pub(crate) fn gauge(&self) -> Gauge {
        self.gauge
    }

    /// Whether a failure or reset is decided: no more callbacks but
    /// `handle_error` and `handle_close`, no more writes.
    pub(crate) fn is_failing(&self) -> bool {
        self.end.rank() >= 3
    }

    /// Why a write would be refused now, if it would.
    pub(crate) fn write_refusal(&self) -> Option<Refusal> {
        if self.is_failing() {
            return Some(Refusal::Closed);
        }
        match self.writing {
            Writing::Open | Writing::Connecting | Writing::Handshaking => None,
            _ => Some(Refusal::Shutdown),
        }
    }

    /// Whether a write may go straight to the socket: connected and nothing
    /// queued ahead of it.
    pub(crate) fn may_write_through(&self) -> bool {
        self.writing == Writing::Open && self.pending() == 0
    }

    /// The socket error to report, while [`Action::ReportError`] is due.
    pub(crate) fn error(&self) -> Option<&io::Error> {
        match &self.end {
            End::Fail(_) => self.spill.as_ref()?.error.as_ref(),
            _ => None,
        }
    }

    /// The sequence number of the handler's timer kept in the lanes; 0:
    /// none.
    pub(crate) fn lane_timer(&self) -> u32 {
        self.timer
    }

    /// Record (a sequence number) or clear (0) the lane timer.
    pub(crate) fn set_lane_timer(&mut self, seq: u32) {
        self.timer = seq;
    }

    /// Whether a timer entry guards this connection's timeouts.
    pub(crate) fn is_armed(&self) -> bool {
        self.marks.has(Marks::ARMED)
    }

    /// Whether the entry due at `at` is the one guarding this connection's
    /// timeouts.
    pub(crate) fn is_armed_at(&self, at: u64) -> bool {
        self.is_armed() && self.armed == Tick::at(at)
    }

    /// The deadline of the entry guarding this connection's timeouts, read
    /// at `now`.
    pub(crate) fn armed(&self, now: u64) -> Option<u64> {
        self.is_armed().then(|| self.armed.near(now))
    }

    // ------------------------------------------------------------ deciding

    /// The one thing to do next. Each action's outcome, reported through
    /// its transition, changes the answer, so a driver that loops until
    /// [`Action::Wait`] ends (reads are bounded by the driver's budget).
    pub(crate) fn next_action(&self, low_water: usize, io: Io) -> Action {
        match &self.end {
            End::Abort(reason) => return Action::Finalize(*reason, Teardown::Reset),
            End::Fail(..) => return Action::ReportError,
            End::Failed(reason) | End::GiveUp(reason) => {
                return Action::Finalize(*reason, Teardown::Close)
            }
            End::Running | End::Graceful(_) => {}
        }
        match self.writing {
            Writing::Connecting | Writing::ConnectingThenFin => {
                return if self.ready.has(Ready::WRITABLE | Ready::ERROR) {
                    Action::CheckConnect
                } else {
                    Action::Wait
                };
            }
            Writing::Handshaking | Writing::HandshakingThenFin => {
                // Input to process, an error to meet, or messages of ours
                // the socket can now take.
                let due = self.ready.has(Ready::READABLE | Ready::ERROR)
                    || (io.holds_output && self.ready.has(Ready::WRITABLE));
                return if due { Action::Handshake } else { Action::Wait };
            }
            _ => {}
        }
        let pending = self.pending();
        let out = pending > 0 || io.holds_output;
        if out && self.ready.has(Ready::WRITABLE) {
            return Action::Flush;
        }
        if self.marks.has(Marks::BLOCKED) && pending <= low_water {
            // Like Node's 'drain', only while writes are still accepted.
            let notify = self.writing == Writing::Open && matches!(self.end, End::Running);
            return Action::Drained { notify };
        }
        match (self.writing, self.reading) {
            // Both directions are done and the receive queue is empty:
            // close(2) sends our FIN; no shutdown call.
            (Writing::Closing, Reading::Eof) if !out && io.close_sends_fin => {
                return Action::Finalize(self.graceful_end(Reason::PeerClosed), Teardown::Close)
            }
            // Closed promptly and nothing came in: close(2) sends our FIN
            // now, without waiting for the peer's.
            (Writing::Closing, Reading::Done)
                if !out
                    && io.close_sends_fin
                    && !self
                        .ready
                        .has(Ready::READABLE | Ready::READ_CLOSED | Ready::ERROR) =>
            {
                return Action::Finalize(self.graceful_end(Reason::Local), Teardown::Close)
            }
            (Writing::Closing, _) if !out => return Action::ShutdownWrite,
            (Writing::Shut, Reading::Eof) => {
                return Action::Finalize(self.graceful_end(Reason::Local), Teardown::Close)
            }
            _ => {}
        }
        if let Reading::Open | Reading::Discarding | Reading::Done = self.reading {
            if self.ready.has(Ready::FIN_NEXT) {
                return Action::Fin;
            }
            if self.ready.has(Ready::READABLE) {
                return Action::Read {
                    deliver: self.reading == Reading::Open,
                };
            }
        }
        if self.ready.has(Ready::ERROR) {
            // Reading surfaces a pending error itself; here reading is
            // paused or over, so ask for it (a RST after our FIN, or after
            // the peer's: C9).
            return Action::CheckError;
        }
        Action::Wait
    }

    /// The reason a graceful end carries: the one the close was begun with,
    /// or `otherwise` when both FINs crossed without one.
    fn graceful_end(&self, otherwise: Reason) -> Reason {
        match self.end {
            End::Graceful(r) => r,
            _ => otherwise,
        }
    }

    /// The reason a lossless close decided now carries: who sent FIN first.
    pub(crate) fn graceful_reason(&self) -> Reason {
        if self.reading == Reading::Eof {
            Reason::PeerClosed
        } else {
            Reason::Local
        }
    }

    // ------------------------------------------------------------ requests

    /// Record `end` if it outranks the recorded one (module docs); whether
    /// it did.
    pub(crate) fn end_with(&mut self, end: End) -> bool {
        let outranks = end.rank() > self.end.rank();
        if outranks {
            transition!("end {:?} -> {:?}", self.end, end);
            let graceful = matches!(end, End::Graceful(_));
            self.end = end;
            if graceful {
                self.stop_input_and_fin();
            }
        }
        outranks
    }

    /// Start a lossless close (the lingering close): stop delivering input,
    /// FIN after the queue, read and discard to the peer's FIN.
    pub(crate) fn close(&mut self, reason: Reason) {
        self.end_with(End::Graceful(reason));
    }

    /// [`close`](ConnState::close) without the lingering read, for a peer
    /// that said it sends nothing more: our FIN goes with `close(2)` once
    /// the queue drains, unless input is waiting or comes (then the close
    /// lingers as usual). Only a close begun here is prompt.
    pub(crate) fn close_promptly(&mut self, reason: Reason) {
        let fresh = matches!(self.end, End::Running);
        self.close(reason);
        if fresh && self.reading == Reading::Discarding {
            transition!("reading Discarding -> Done");
            self.reading = Reading::Done;
        }
    }

    fn stop_input_and_fin(&mut self) {
        if let Reading::Open | Reading::Paused = self.reading {
            transition!("reading {:?} -> Discarding", self.reading);
            self.reading = Reading::Discarding;
        }
        self.shutdown_write();
    }

    /// Record a reset request.
    pub(crate) fn abort(&mut self, reason: Reason) {
        self.end_with(End::Abort(reason));
    }

    /// Record a socket error, to be reported to `handle_error`.
    pub(crate) fn failed(&mut self, err: io::Error) {
        self.fail(Reason::from_error(&err), err);
    }

    /// FIN after the queue; keep reading. A no-op once asked.
    pub(crate) fn shutdown_write(&mut self) {
        let next = match self.writing {
            Writing::Connecting | Writing::ConnectingThenFin => Writing::ConnectingThenFin,
            Writing::Handshaking | Writing::HandshakingThenFin => Writing::HandshakingThenFin,
            Writing::Open => Writing::Closing,
            other => other,
        };
        if next != self.writing {
            transition!("writing {:?} -> {:?}", self.writing, next);
            self.writing = next;
        }
    }

    /// Stop delivering input.
    pub(crate) fn pause(&mut self) {
        if self.reading == Reading::Open {
            transition!("reading Open -> Paused");
            self.reading = Reading::Paused;
        }
    }

    /// Deliver input again, starting with what arrived while paused.
    /// Returns whether anything changed.
    pub(crate) fn resume(&mut self) -> bool {
        if self.reading != Reading::Paused {
            return false;
        }
        transition!("reading Paused -> Open");
        self.reading = Reading::Open;
        // Edge-triggered: input (or a FIN) that arrived while paused
        // raised no new event. Look.
        self.ready.set(Ready::READABLE);
        true
    }

    /// Replace the configured idle timeout (0 disables it).
    pub(crate) fn set_idle_ms(&mut self, ms: u32) {
        self.spill.get_or_insert_with(Default::default).idle_ms = ms;
        self.marks.put(Marks::OWN_IDLE, true);
    }

    /// Bytes the handler wrote straight to the socket.
    pub(crate) fn wrote(&mut self, n: usize, now: u64) {
        if n > 0 {
            self.count(Way::Out, n);
            self.last_activity = Tick::at(now);
        }
    }

    /// The kernel took less than offered: wait for writability.
    pub(crate) fn send_buffer_full(&mut self) {
        self.ready.clear(Ready::WRITABLE);
    }

    /// Queue what the kernel did not take. Returns whether the queue is now
    /// past `high_water`.
    pub(crate) fn enqueue(&mut self, data: &[u8], high_water: usize) -> bool {
        self.spill
            .get_or_insert_with(Default::default)
            .queue
            .push(data);
        if self.pending() > high_water && !self.marks.has(Marks::BLOCKED) {
            transition!("blocked: {} B queued", self.pending());
            self.marks.put(Marks::BLOCKED, true);
        }
        self.marks.has(Marks::BLOCKED)
    }

    // ------------------------------------------------------------ readiness

    /// An epoll event.
    pub(crate) fn readiness(
        &mut self,
        readable: bool,
        read_closed: bool,
        writable: bool,
        error: bool,
    ) {
        if readable || read_closed {
            self.ready.set(Ready::READABLE);
        }
        if read_closed {
            self.ready.set(Ready::READ_CLOSED);
        }
        if writable {
            self.ready.set(Ready::WRITABLE);
        }
        if error {
            self.ready.set(Ready::ERROR);
        }
    }

    // ------------------------------------------------------------ outcomes

    /// The outbound connect completed; a TLS handshake follows if
    /// `handshake`.
    pub(crate) fn connected(&mut self, now: u64, handshake: bool) {
        let next = match (self.writing, handshake) {
            (Writing::Connecting, true) => Writing::Handshaking,
            (Writing::ConnectingThenFin, true) => Writing::HandshakingThenFin,
            (Writing::Connecting, false) => Writing::Open,
            (Writing::ConnectingThenFin, false) => Writing::Closing,
            _ => return,
        };
        transition!("writing {:?} -> {next:?}", self.writing);
        self.writing = next;
        self.last_activity = Tick::at(now);
        self.since = Tick::at(now);
    }

    /// The TLS handshake completed: the connection is established.
    pub(crate) fn handshaken(&mut self, now: u64) {
        let next = match self.writing {
            Writing::Handshaking => Writing::Open,
            Writing::HandshakingThenFin => Writing::Closing,
            _ => return,
        };
        transition!("writing {:?} -> {next:?}", self.writing);
        self.writing = next;
        self.last_activity = Tick::at(now);
        // The handshake's last read may have brought application data
        // along, which no new event will announce.
        self.ready.set(Ready::READABLE);
    }

    /// The handshake waits for the peer (and, if `write_blocked`, for the
    /// socket to take our messages).
    pub(crate) fn handshake_pending(&mut self, write_blocked: bool) {
        self.ready.clear(Ready::READABLE | Ready::ERROR);
        if write_blocked {
            self.ready.clear(Ready::WRITABLE);
        }
    }

    /// The outbound connect is still in flight (a spurious wakeup).
    pub(crate) fn connect_pending(&mut self) {
        self.ready.clear(Ready::WRITABLE | Ready::ERROR);
    }

    /// A flush wrote `n` bytes, with this outcome.
    pub(crate) fn flushed(&mut self, n: usize, outcome: io::Result<Flush>, now: u64) {
        self.wrote(n, now);
        match outcome {
            Ok(Flush::Drained) => {
                if let Some(spill) = &mut self.spill {
                    spill.queue = OutQueue::default();
                }
                self.drop_spill_if_empty();
            }
            Ok(Flush::Blocked) => self.send_buffer_full(),
            Err(e) => self.failed(e),
        }
    }

    /// Our FIN is out.
    pub(crate) fn shut_write(&mut self, now: u64) {
        transition!("writing {:?} -> Shut", self.writing);
        self.writing = Writing::Shut;
        self.since = Tick::at(now);
        if self.reading == Reading::Eof && matches!(self.end, End::Running) {
            // Both ends are out, the peer's first (a TLS connection takes
            // this way where TCP's close(2) sends the FIN).
            self.end_with(End::Graceful(Reason::PeerClosed));
        }
    }

    /// `shutdown(SHUT_WR)` failed; `ENOTCONN` means the peer reset (V6).
    pub(crate) fn shutdown_failed(&mut self, err: io::Error) {
        if err.kind() == io::ErrorKind::NotConnected {
            self.failed(io::ErrorKind::ConnectionReset.into());
        } else {
            self.failed(err);
        }
    }

    /// A read returned `n > 0` bytes; `drained`: it proved the receive
    /// queue empty (a short read of a plain socket).
    pub(crate) fn read_data(&mut self, n: usize, drained: bool, now: u64) {
        self.count(Way::In, n);
        self.last_activity = Tick::at(now);
        if self.reading == Reading::Done {
            // The peer sent more after all: wait for its FIN.
            transition!("reading Done -> Discarding");
            self.reading = Reading::Discarding;
        }
        // A short read emptied the queue: a new edge comes with new data.
        // If the event also carried the FIN (and no error), EOF follows the
        // data with no further read.
        if drained {
            self.ready.clear(Ready::READABLE);
            if self.ready.has(Ready::READ_CLOSED) && !self.ready.has(Ready::ERROR) {
                self.ready.set(Ready::FIN_NEXT);
            }
        }
    }

    /// A read would block: the receive queue is empty.
    pub(crate) fn read_drained(&mut self) {
        self.ready.clear(Ready::READABLE);
    }

    /// A read failed.
    pub(crate) fn read_failed(&mut self, err: io::Error) {
        self.ready.clear(Ready::READABLE | Ready::ERROR);
        self.failed(err);
    }

    /// The peer's FIN was read. Returns `Some(ours_first)` when the handler
    /// is to be told (`handle_readable_eof`): only if input was being
    /// delivered, not during a lingering close.
    pub(crate) fn read_fin(&mut self, now: u64) -> Option<bool> {
        self.ready.clear(Ready::READABLE | Ready::FIN_NEXT);
        let ours_first = !matches!(
            self.writing,
            Writing::Open | Writing::Connecting | Writing::Handshaking
        );
        transition!("reading {:?} -> Eof", self.reading);
        let was = std::mem::replace(&mut self.reading, Reading::Eof);
        self.since = Tick::at(now);
        (was == Reading::Open).then_some(ours_first)
    }

    /// What the handler decided the peer's FIN means.
    pub(crate) fn eof_decided(&mut self, eof: Eof, ours_first: bool) {
        let first = if ours_first {
            Reason::Local
        } else {
            Reason::PeerClosed
        };
        match eof {
            Eof::Close => self.close(first),
            // Both FINs are out; ours came first.
            Eof::HalfClose if ours_first => {
                self.end_with(End::Graceful(Reason::Local));
            }
            Eof::HalfClose => {}
            Eof::Abort => self.abort(Reason::Aborted),
        }
    }

    /// The peer's end came unauthenticated (TLS: a TCP FIN without
    /// `close_notify`) and the handler did not accept it.
    pub(crate) fn truncated(&mut self) {
        self.fail(
            Reason::Truncated,
            io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the peer's stream ended without close_notify: possibly truncated",
            ),
        );
    }

    /// Record a failure, and keep its error for `handle_error` if it is
    /// the end that counts.
    fn fail(&mut self, reason: Reason, err: io::Error) {
        if self.end_with(End::Fail(reason)) {
            self.spill.get_or_insert_with(Default::default).error = Some(err);
        }
    }

    /// `SO_ERROR` was clear.
    pub(crate) fn error_checked(&mut self) {
        self.ready.clear(Ready::ERROR);
    }

    /// `handle_error` was called.
    pub(crate) fn error_reported(&mut self) {
        if let End::Fail(reason) = self.end {
            transition!("end Fail -> Failed({reason:?})");
            self.end = End::Failed(reason);
            if let Some(spill) = &mut self.spill {
                spill.error = None;
            }
            self.drop_spill_if_empty();
        }
    }

    /// Free the spill once it holds no output, no error, no idle timeout
    /// and no upper bits of a byte count.
    fn drop_spill_if_empty(&mut self) {
        let own_idle = self.marks.has(Marks::OWN_IDLE);
        if self.spill.as_ref().is_some_and(|s| {
            s.queue.len() == 0 && s.error.is_none() && !own_idle && s.bytes_high == [0; 2]
        }) {
            self.spill = None;
        }
    }

    /// The queue fell to the low-water mark.
    pub(crate) fn drained(&mut self) {
        self.marks.put(Marks::BLOCKED, false);
    }

    // ------------------------------------------------------------ time

    /// The earliest timeout this connection is subject to, at `now`.
    pub(crate) fn next_timeout(&self, lim: &Limits, now: u64) -> Option<(u64, Timeout)> {
        let since = self.since.back(now);
        let last_activity = self.last_activity.back(now);
        match self.writing {
            Writing::Connecting | Writing::ConnectingThenFin => {
                return lim
                    .connect
                    .map(|t| (since.saturating_add(t), Timeout::Connect))
            }
            Writing::Handshaking | Writing::HandshakingThenFin => {
                return lim
                    .handshake
                    .map(|t| (since.saturating_add(t), Timeout::Handshake))
            }
            _ => {}
        }
        let progress = since.max(last_activity);
        let mut best: Option<(u64, Timeout)> = None;
        let mut consider = |at: Option<u64>, t: Timeout| {
            if let Some(at) = at {
                if best.map_or(true, |(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        };
        let idle_ms = match &self.spill {
            Some(spill) if self.marks.has(Marks::OWN_IDLE) => spill.idle_ms,
            _ => lim.idle_ms,
        };
        // Once our FIN is out, the linger timeout alone guards the wait for
        // the peer's.
        if idle_ms > 0 && self.writing != Writing::Shut {
            consider(
                Some(last_activity.saturating_add(u64::from(idle_ms))),
                Timeout::Idle,
            );
        }
        match (self.writing, self.reading) {
            (Writing::Shut, Reading::Discarding | Reading::Done) => {
                consider(lim.linger.map(|t| since.saturating_add(t)), Timeout::Linger)
            }
            (Writing::Shut, _) => consider(
                lim.linger.map(|t| progress.saturating_add(t)),
                Timeout::Linger,
            ),
            (_, Reading::Eof) => consider(
                lim.peer_eof.map(|t| progress.saturating_add(t)),
                Timeout::PeerEof,
            ),
            _ => {}
        }
        best
    }

    /// The deadline for a timer entry guarding the timeouts, at `now`: the
    /// earliest timeout's, or [`ARM_HORIZON`] ahead if that is later.
    pub(crate) fn entry_deadline(&self, lim: &Limits, now: u64) -> Option<u64> {
        let (at, _) = self.next_timeout(lim, now)?;
        Some(at.min(now.saturating_add(ARM_HORIZON)))
    }

    /// Record the deadline of the timer entry now guarding the timeouts
    /// (one from [`entry_deadline`](ConnState::entry_deadline), or later
    /// by no more than the lanes' push moves it).
    pub(crate) fn arm(&mut self, at: u64) {
        self.armed = Tick::at(at);
        self.marks.put(Marks::ARMED, true);
    }

    /// Forget the timer entry (it fired or was abandoned).
    pub(crate) fn disarm(&mut self) {
        self.marks.put(Marks::ARMED, false);
    }

    /// The timeouts' timer fired at `now`: apply the timeout that expired,
    /// if progress did not move it. Returns it.
    pub(crate) fn expire(&mut self, now: u64, lim: &Limits) -> Option<Timeout> {
        self.disarm();
        let (at, kind) = self.next_timeout(lim, now)?;
        if at > now {
            return None; // progress moved the deadline
        }
        let reason = Reason::TimedOut(kind);
        match kind {
            Timeout::Connect | Timeout::Handshake => {
                self.fail(reason, io::ErrorKind::TimedOut.into());
            }
            Timeout::Linger => {
                // A close begun by a timeout keeps that timeout as its
                // reason; otherwise the linger timeout is it.
                let reason = match self.end {
                    End::Graceful(first @ Reason::TimedOut(_)) => first,
                    _ => reason,
                };
                self.end_with(End::GiveUp(reason));
            }
            Timeout::Idle | Timeout::PeerEof => {
                if matches!(self.end, End::Running) && self.writing == Writing::Open {
                    // The close starts a new phase: its deadlines run from
                    // now.
                    self.last_activity = Tick::at(now);
                    self.close(reason);
                } else {
                    // Already closing and still stuck: give up.
                    self.abort(reason);
                }
            }
        }
        Some(kind)
    }
}

#[cfg(test)]
mod model;

#[cfg(test)]
mod tests {
    //! The state machine, grouped by state, with small fixtures; no
    //! sockets.
    use super::*;
    use std::time::Duration;

    const LOW: usize = 16;

    fn state(writing: Writing, reading: Reading) -> ConnState {
        let mut st = ConnState::new(writing, 1_000);
        st.reading = reading;
        st
    }

    fn cfg() -> Config {
        Config {
            idle_timeout: None,
            peer_eof_timeout: Some(Duration::from_millis(500)),
            linger_timeout: Some(Duration::from_millis(300)),
            connect_timeout: Some(Duration::from_millis(200)),
            ..Config::default()
        }
    }

    fn lim() -> Limits {
        Limits::from(&cfg())
    }

    #[test]
    fn state_is_small() {
        let size = std::mem::size_of::<ConnState>();
        println!("size_of::<ConnState>() = {size} bytes");
        assert!(size <= 40, "ConnState takes {size} bytes");
    }

    #[test]
    fn a_tick_reads_back_across_the_32_bit_wrap() {
        let before = u64::from(u32::MAX) - 10;
        let t = Tick::at(before);
        assert_eq!(t.back(before + 25), before, "after the low bits wrapped");
        assert_eq!(t.back(before), before);
        let far = (7u64 << 32) + 123;
        assert_eq!(Tick::at(far - 1_000).back(far), far - 1_000);
    }

    #[test]
    fn byte_counts_go_past_4_gib_and_keep_their_upper_bits() {
        let mut st = state(Writing::Open, Reading::Open);
        let gib = 1usize << 30;
        for _ in 0..5 {
            st.wrote(gib, 1_000);
        }
        st.read_data(3 * gib, false, 1_000);
        st.read_data(2 * gib + 7, false, 1_000);
        assert_eq!(st.bytes_out(), 5 << 30);
        assert_eq!(st.bytes_in(), (5 << 30) + 7);
        // Draining the queue keeps them: the spill stays for the counts.
        st.enqueue(b"x", 1024);
        st.readiness(false, false, true, false);
        st.flushed(1, Ok(Flush::Drained), 1_010);
        assert_eq!(st.pending(), 0);
        assert_eq!(st.bytes_out(), (5 << 30) + 1);
        assert_eq!(st.bytes_in(), (5 << 30) + 7);
    }

    #[test]
    fn an_armed_deadline_reads_back_near_the_clock() {
        let wrap = u64::from(u32::MAX);
        for now in [7, 5_000, wrap - 3, wrap + 9, (9 << 32) + 77] {
            let mut st = state(Writing::Open, Reading::Open);
            assert_eq!(st.armed(now), None);
            let due_late = now.saturating_sub(ARM_LATE).max(1);
            for at in [due_late, now, now + 1, now + 100_000, now + ARM_HORIZON] {
                st.arm(at);
                assert_eq!(st.armed(now), Some(at), "now {now}, at {at}");
                assert!(st.is_armed_at(at));
                assert!(!st.is_armed_at(at + 1));
            }
            st.disarm();
            assert_eq!(st.armed(now), None);
            assert!(!st.is_armed_at(now + ARM_HORIZON));
        }
    }

    #[test]
    fn a_timeout_beyond_the_horizon_gets_an_early_entry_that_arms_again() {
        let mut cfg = cfg();
        cfg.idle_timeout = Some(Duration::from_millis(u64::from(u32::MAX)));
        let mut st = state(Writing::Open, Reading::Open);
        let now = 1_000;
        let at = st.entry_deadline(&Limits::from(&cfg), now).unwrap();
        assert_eq!(at, now + ARM_HORIZON);
        st.arm(at);
        assert_eq!(st.armed(now), Some(at));
        // The entry fires early: nothing expires, and the next entry is the
        // real deadline, now within reach.
        assert_eq!(st.expire(at, &Limits::from(&cfg)), None);
        assert_eq!(
            st.entry_deadline(&Limits::from(&cfg), at),
            Some(now + u64::from(u32::MAX))
        );
    }

    #[test]
    fn an_idle_timeout_of_its_own_outlives_the_output_queue() {
        let mut cfg = cfg();
        cfg.idle_timeout = Some(Duration::from_secs(300));
        let mut st = state(Writing::Open, Reading::Open);
        assert_eq!(
            st.next_timeout(&Limits::from(&cfg), 1_000),
            Some((301_000, Timeout::Idle))
        );
        st.set_idle_ms(50);
        st.send_buffer_full();
        st.enqueue(b"queued", 1024);
        st.readiness(false, false, true, false);
        st.flushed(6, Ok(Flush::Drained), 1_010);
        assert_eq!(st.pending(), 0);
        assert_eq!(
            st.next_timeout(&Limits::from(&cfg), 1_010),
            Some((1_060, Timeout::Idle))
        );
        st.set_idle_ms(0);
        assert_eq!(
            st.next_timeout(&Limits::from(&cfg), 1_010),
            None,
            "0 disables it"
        );
    }

    mod ranking {
        use super::*;

        #[test]
        fn a_cause_replaces_only_a_lower_one() {
            let mut st = state(Writing::Open, Reading::Open);
            st.close(Reason::TimedOut(Timeout::Idle));
            st.close(Reason::Local);
            assert!(matches!(
                st.end,
                End::Graceful(Reason::TimedOut(Timeout::Idle))
            ));
            st.failed(io::ErrorKind::ConnectionReset.into());
            assert!(matches!(st.end, End::Fail(Reason::Reset)));
            st.abort(Reason::Aborted);
            assert!(
                matches!(st.end, End::Fail(Reason::Reset)),
                "equal rank: first stays"
            );
            st.abort(Reason::Stopped);
            assert!(matches!(st.end, End::Abort(Reason::Stopped)));
            st.abort(Reason::Panicked);
            assert!(matches!(st.end, End::Abort(Reason::Panicked)));
            st.abort(Reason::Stopped);
            assert!(matches!(st.end, End::Abort(Reason::Panicked)));
        }

        #[test]
        fn abort_overrides_a_graceful_close_but_not_a_failure() {
            let mut st = state(Writing::Open, Reading::Open);
            st.close(Reason::Local);
            st.abort(Reason::Aborted);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::Aborted, Teardown::Reset)
            );
            let mut st = state(Writing::Open, Reading::Open);
            st.failed(io::ErrorKind::ConnectionReset.into());
            st.abort(Reason::Aborted);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::ReportError);
        }

        #[test]
        fn an_error_is_reported_then_closed_not_reset() {
            let mut st = state(Writing::Open, Reading::Open);
            st.failed(io::ErrorKind::BrokenPipe.into());
            assert_eq!(
                st.error().map(io::Error::kind),
                Some(io::ErrorKind::BrokenPipe)
            );
            st.error_reported();
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::Reset, Teardown::Close)
            );
            st.close(Reason::Local);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::Reset, Teardown::Close)
            );
        }

        #[test]
        fn a_panic_while_reporting_an_error_resets() {
            let mut st = state(Writing::Open, Reading::Open);
            st.failed(io::ErrorKind::ConnectionReset.into());
            st.abort(Reason::Panicked);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::Panicked, Teardown::Reset)
            );
        }
    }

    mod connecting {
        use super::*;

        #[test]
        fn counts_as_connecting_and_only_the_connect_timeout_applies() {
            let st = state(Writing::Connecting, Reading::Open);
            assert_eq!(st.classify(), Gauge::Connecting);
            assert_eq!(
                st.next_timeout(&lim(), 1_000),
                Some((1_200, Timeout::Connect))
            );
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Wait);
        }

        #[test]
        fn writability_asks_for_the_outcome() {
            let mut st = state(Writing::Connecting, Reading::Open);
            st.readiness(false, false, true, false);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::CheckConnect);
            st.connect_pending();
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Wait);
            st.readiness(false, false, true, false);
            st.connected(1_100, false);
            assert_eq!(st.writing(), Writing::Open);
        }

        #[test]
        fn writes_are_queued_not_written_through() {
            let st = state(Writing::Connecting, Reading::Open);
            assert_eq!(st.write_refusal(), None);
            assert!(!st.may_write_through());
        }

        #[test]
        fn shutdown_waits_for_the_connect() {
            let mut st = state(Writing::Connecting, Reading::Open);
            st.shutdown_write();
            assert_eq!(st.writing, Writing::ConnectingThenFin);
            assert_eq!(st.write_refusal(), Some(Refusal::Shutdown));
            st.connected(1_100, false);
            assert_eq!(st.writing, Writing::Closing);
        }

        #[test]
        fn close_waits_for_the_connect_and_then_lingers() {
            let mut st = state(Writing::Connecting, Reading::Open);
            st.close(Reason::Local);
            assert_eq!(st.writing, Writing::ConnectingThenFin);
            assert_eq!(st.reading, Reading::Discarding);
            assert!(matches!(st.end, End::Graceful(Reason::Local)));
        }

        #[test]
        fn the_connect_timeout_fails_with_its_own_reason() {
            let mut st = state(Writing::Connecting, Reading::Open);
            assert_eq!(st.expire(1_199, &lim()), None);
            assert_eq!(st.expire(1_200, &lim()), Some(Timeout::Connect));
            assert!(matches!(
                st.end,
                End::Fail(Reason::TimedOut(Timeout::Connect))
            ));
            assert_eq!(
                st.error().map(io::Error::kind),
                Some(io::ErrorKind::TimedOut)
            );
        }
    }

    mod handshaking {
        use super::*;

        const TLS_IDLE: Io = Io {
            holds_output: false,
            close_sends_fin: false,
        };
        const TLS_SENDING: Io = Io {
            holds_output: true,
            close_sends_fin: false,
        };

        #[test]
        fn waits_when_nothing_is_readable_and_nothing_to_send() {
            let mut st = state(Writing::Handshaking, Reading::Open);
            st.readiness(false, false, true, false);
            assert_eq!(
                st.next_action(LOW, TLS_IDLE),
                Action::Wait,
                "writable alone"
            );
            assert_eq!(st.next_action(LOW, TLS_SENDING), Action::Handshake);
            st.readiness(true, false, false, false);
            assert_eq!(st.next_action(LOW, TLS_IDLE), Action::Handshake);
            st.handshake_pending(false);
            assert_eq!(st.next_action(LOW, TLS_IDLE), Action::Wait);
        }

        #[test]
        fn writes_are_queued_and_the_end_waits() {
            let mut st = state(Writing::Handshaking, Reading::Open);
            assert_eq!(st.write_refusal(), None);
            assert!(!st.may_write_through());
            st.shutdown_write();
            assert_eq!(st.writing, Writing::HandshakingThenFin);
            st.handshaken(2_000);
            assert_eq!(st.writing, Writing::Closing);
            assert_eq!(st.classify(), Gauge::Established);
        }

        #[test]
        fn the_handshake_timeout_fails_with_its_own_reason() {
            let mut st = state(Writing::Connecting, Reading::Open);
            st.connected(1_000, true);
            assert_eq!(st.classify(), Gauge::Connecting);
            let mut cfg = cfg();
            cfg.handshake_timeout = Some(Duration::from_millis(100));
            assert_eq!(
                st.next_timeout(&Limits::from(&cfg), 1_000),
                Some((1_100, Timeout::Handshake))
            );
            assert_eq!(
                st.expire(1_100, &Limits::from(&cfg)),
                Some(Timeout::Handshake)
            );
            assert!(matches!(
                st.end,
                End::Fail(Reason::TimedOut(Timeout::Handshake))
            ));
        }

        #[test]
        fn close_notify_goes_out_before_the_close() {
            // The peer's close_notify was read; we close: TLS cannot end by
            // close(2) alone, so our close_notify (and FIN) first.
            let mut st = state(Writing::Open, Reading::Eof);
            st.close(Reason::PeerClosed);
            assert_eq!(st.next_action(LOW, TLS_IDLE), Action::ShutdownWrite);
            // close_notify queued, not out yet: flush it when writable.
            st.send_buffer_full();
            assert_eq!(st.next_action(LOW, TLS_SENDING), Action::Wait);
            st.readiness(false, false, true, false);
            assert_eq!(st.next_action(LOW, TLS_SENDING), Action::Flush);
            st.shut_write(1_001);
            assert_eq!(
                st.next_action(LOW, TLS_IDLE),
                Action::Finalize(Reason::PeerClosed, Teardown::Close)
            );
        }
    }

    mod established {
        use super::*;

        #[test]
        fn close_stops_input_and_queues_the_fin() {
            let mut st = state(Writing::Open, Reading::Open);
            assert_eq!(st.classify(), Gauge::Established);
            assert_eq!(st.graceful_reason(), Reason::Local);
            st.close(Reason::Local);
            assert_eq!(
                (st.writing, st.reading),
                (Writing::Closing, Reading::Discarding)
            );
            assert_eq!(st.classify(), Gauge::Lingering);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::ShutdownWrite);
        }

        #[test]
        fn the_queue_is_flushed_before_the_fin() {
            let mut st = state(Writing::Open, Reading::Open);
            st.send_buffer_full();
            st.enqueue(b"reply", 1024);
            st.close(Reason::Local);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Wait,
                "not writable: wait"
            );
            st.readiness(false, false, true, false);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Flush);
            st.flushed(5, Ok(Flush::Drained), 1_010);
            assert_eq!(st.pending(), 0);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::ShutdownWrite);
        }

        #[test]
        fn close_while_paused_reads_to_a_held_fin() {
            let mut st = state(Writing::Open, Reading::Open);
            st.readiness(true, true, false, false);
            st.pause();
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Wait,
                "paused: the FIN waits"
            );
            st.close(Reason::Local);
            st.shut_write(1_001);
            assert_eq!(st.reading, Reading::Discarding);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Read { deliver: false }
            );
        }

        #[test]
        fn resume_looks_for_input_that_raised_no_event() {
            let mut st = state(Writing::Open, Reading::Open);
            st.pause();
            assert!(st.resume());
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Read { deliver: true }
            );
            assert!(!st.resume(), "second resume changes nothing");
        }

        #[test]
        fn a_short_read_with_the_fin_flag_takes_the_eof_without_a_read() {
            let mut st = state(Writing::Open, Reading::Open);
            st.readiness(true, true, false, false);
            st.read_data(10, true, 1_001);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Fin);
            assert_eq!(st.read_fin(1_002), Some(false));
            assert_eq!(st.reading, Reading::Eof);
        }

        #[test]
        fn with_an_error_flag_the_eof_is_read_to_surface_the_error() {
            let mut st = state(Writing::Open, Reading::Open);
            st.readiness(true, true, false, true);
            st.read_data(10, true, 1_001);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::CheckError);
        }

        #[test]
        fn backpressure_is_released_at_the_low_water_mark() {
            let mut st = state(Writing::Open, Reading::Open);
            st.send_buffer_full();
            assert!(st.enqueue(&[0; 100], 64));
            st.readiness(false, false, true, false);
            st.flushed(100, Ok(Flush::Drained), 1_001);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Drained { notify: true }
            );
            st.drained();
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Wait);
        }

        #[test]
        fn no_drain_notice_once_writes_are_refused() {
            let mut st = state(Writing::Open, Reading::Open);
            st.send_buffer_full();
            st.enqueue(&[0; 100], 64);
            st.shutdown_write();
            st.readiness(false, false, true, false);
            st.flushed(100, Ok(Flush::Drained), 1_001);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Drained { notify: false }
            );
        }

        #[test]
        fn idle_timeout_runs_from_the_last_activity_and_closes_gracefully() {
            let mut st = state(Writing::Open, Reading::Open);
            st.set_idle_ms(50);
            st.last_activity = Tick::at(5_000);
            assert_eq!(st.next_timeout(&lim(), 5_000), Some((5_050, Timeout::Idle)));
            assert_eq!(st.expire(5_049, &lim()), None);
            assert_eq!(st.expire(5_050, &lim()), Some(Timeout::Idle));
            assert!(matches!(
                st.end,
                End::Graceful(Reason::TimedOut(Timeout::Idle))
            ));
            assert_eq!(st.writing, Writing::Closing);
        }

        #[test]
        fn a_second_idle_timeout_while_closing_resets() {
            let mut st = state(Writing::Open, Reading::Open);
            st.set_idle_ms(50);
            st.send_buffer_full();
            st.enqueue(b"stuck", 1024);
            st.expire(1_050, &lim());
            assert_eq!(st.expire(1_100, &lim()), Some(Timeout::Idle));
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::TimedOut(Timeout::Idle), Teardown::Reset)
            );
        }
    }

    mod half_closed_in {
        use super::*;

        #[test]
        fn peer_fin_first_means_peer_closed() {
            let st = state(Writing::Open, Reading::Eof);
            assert_eq!(st.classify(), Gauge::HalfClosedIn);
            assert_eq!(st.graceful_reason(), Reason::PeerClosed);
        }

        #[test]
        fn eof_close_finishes_without_a_shutdown_call() {
            let mut st = state(Writing::Open, Reading::Open);
            assert_eq!(st.read_fin(1_001), Some(false));
            st.eof_decided(Eof::Close, false);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::PeerClosed, Teardown::Close)
            );
        }

        #[test]
        fn eof_half_close_keeps_writing() {
            let mut st = state(Writing::Open, Reading::Open);
            st.read_fin(1_001);
            st.eof_decided(Eof::HalfClose, false);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::Wait);
            assert_eq!(st.write_refusal(), None);
            st.shutdown_write();
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::PeerClosed, Teardown::Close)
            );
        }

        #[test]
        fn a_close_made_inside_the_callback_outranks_half_close() {
            let mut st = state(Writing::Open, Reading::Open);
            st.read_fin(1_001);
            st.close(Reason::Protocol(crate::ProtocolError::IncompleteFrame));
            st.eof_decided(Eof::HalfClose, false);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(
                    Reason::Protocol(crate::ProtocolError::IncompleteFrame),
                    Teardown::Close
                )
            );
        }

        #[test]
        fn peer_eof_timeout_is_restarted_by_progress() {
            let mut st = state(Writing::Open, Reading::Eof);
            assert_eq!(
                st.next_timeout(&lim(), 1_000),
                Some((1_500, Timeout::PeerEof))
            );
            st.last_activity = Tick::at(2_000);
            assert_eq!(
                st.next_timeout(&lim(), 2_000),
                Some((2_500, Timeout::PeerEof))
            );
        }

        #[test]
        fn close_keeps_the_read_half_at_eof() {
            let mut st = state(Writing::Open, Reading::Eof);
            st.close(Reason::PeerClosed);
            assert_eq!((st.writing, st.reading), (Writing::Closing, Reading::Eof));
        }

        #[test]
        fn a_reset_after_the_fin_is_asked_for() {
            let mut st = state(Writing::Open, Reading::Eof);
            st.readiness(true, true, false, true);
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::CheckError);
            st.failed(io::ErrorKind::ConnectionReset.into());
            assert_eq!(st.next_action(LOW, Io::PLAIN), Action::ReportError);
        }
    }

    mod half_closed_out {
        use super::*;

        #[test]
        fn linger_after_shutdown_is_restarted_by_input() {
            let mut st = state(Writing::Shut, Reading::Open);
            assert_eq!(st.classify(), Gauge::HalfClosedOut);
            st.since = Tick::at(1_000);
            st.last_activity = Tick::at(1_100);
            assert_eq!(
                st.next_timeout(&lim(), 1_100),
                Some((1_400, Timeout::Linger))
            );
        }

        #[test]
        fn linger_after_close_runs_from_our_fin() {
            let mut st = state(Writing::Shut, Reading::Discarding);
            st.since = Tick::at(1_000);
            st.last_activity = Tick::at(1_200);
            assert_eq!(
                st.next_timeout(&lim(), 1_200),
                Some((1_300, Timeout::Linger))
            );
        }

        #[test]
        fn linger_timeout_gives_up_and_keeps_a_first_timeout_reason() {
            let mut st = state(Writing::Open, Reading::Open);
            st.close(Reason::TimedOut(Timeout::Idle));
            st.shut_write(1_000);
            assert_eq!(st.expire(1_300, &lim()), Some(Timeout::Linger));
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::TimedOut(Timeout::Idle), Teardown::Close)
            );
        }

        #[test]
        fn the_peers_fin_completes_the_close() {
            let mut st = state(Writing::Open, Reading::Open);
            st.close(Reason::Local);
            st.shut_write(1_000);
            st.readiness(true, true, false, false);
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Read { deliver: false }
            );
            assert_eq!(st.read_fin(1_001), None, "a lingering close tells no one");
            assert_eq!(
                st.next_action(LOW, Io::PLAIN),
                Action::Finalize(Reason::Local, Teardown::Close)
            );
        }

        #[test]
        fn shutdown_again_is_a_no_op() {
            let mut st = state(Writing::Shut, Reading::Open);
            st.shutdown_write();
            assert_eq!(st.writing, Writing::Shut);
        }

        #[test]
        fn enotconn_on_shutdown_is_a_reset() {
            let mut st = state(Writing::Closing, Reading::Open);
            st.shutdown_failed(io::ErrorKind::NotConnected.into());
            assert_eq!(
                st.error().map(io::Error::kind),
                Some(io::ErrorKind::ConnectionReset)
            );
        }
    }
}
