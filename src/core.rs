//! The reactor's state minus the poller ([`Core`]): connection slots and
//! their ids, timers, counters; and the driver that carries out what a
//! connection's state machine asks for ([`Core::advance`]).
//!
//! Every handler callback goes through [`Core::call`], which lends the
//! handler table out ([`crate::handlers`]), catches a panic, and takes the
//! table back. Requests a callback makes are recorded in the connection's
//! state and the connection is marked dirty; the reactor advances dirty
//! connections after the callback returns, so no callback runs
//! re-entrantly.

use std::fmt;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use mio::{Interest, Registry};
use slab::Slab;

use crate::closed::{Closed, Reason};
use crate::config::{millis, Config};
use crate::conn::{Conn, Ctx};
use crate::error::{Error, Result};
use crate::handler::{Handler, Truncated};
use crate::handlers::{self, Handlers, Waiting};
use crate::state::{Action, ConnState, End, Limits, Refusal, Teardown, Writing};
use crate::stats::Stats;
use crate::timer::{Lanes, TimerKey, TimerQueue};
use crate::token::{self, ConnId, Generations, ListenerId, TimerId};
use crate::transport::{Connect, Handshake, Input, Stream};

/// One connection: its socket and its state (its handler is in the
/// table, under the same key).
pub(crate) struct Slot {
    stream: Stream,
    pub(crate) state: ConnState,
}

/// Which timer of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ConnTimer {
    /// The connection's single entry for idle, peer-EOF, linger and connect.
    Timeouts,
    /// A timer set by the handler.
    User,
}

/// Marks a [`TimerId`] of the lanes (its low bits: the sequence number);
/// the heap's ids never have it (a slab index below 2^31).
const LANE_TIMER: u64 = 1 << 63;

/// What a timer entry wakes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TimerTarget {
    /// A connection's timer, by slot index and generation: the reactor is
    /// implied, and a full [`ConnId`] would cost 4 bytes more per entry.
    Conn(u32, u32, ConnTimer),
    /// A listener resting after an accept failure.
    Listener(ListenerId),
    /// The graceful drain's deadline.
    Drain,
}

/// What the owner of the loop asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Control {
    Running,
    /// `run` returns at the end of this iteration.
    Stopping,
    /// Listeners are closed; `run` returns once no connection is left.
    Draining,
}

/// The reactor's state minus the poller: connections, timers, the list of
/// connections with recorded requests, configuration and counters.
pub(crate) struct Core {
    conns: Slab<Slot>,
    /// The connections' handlers, by slot; `None` while a callback has
    /// them (boxed, so that lending them moves a pointer).
    handlers: Option<Box<Handlers>>,
    /// The one handler type the table takes, if it is inline (kept here:
    /// a connect from a callback checks it while the table is lent).
    holds: Option<(std::any::TypeId, &'static str)>,
    /// Handlers made while the table was lent, to move in when it is back.
    waiting: Vec<Waiting>,
    gens: Generations,
    pub(crate) timers: TimerQueue<TimerTarget>,
    /// The connections' timeout entries, by slot index and generation,
    /// with no key: the connection keeps the deadline it armed.
    pub(crate) timeouts: Lanes<(u32, u32)>,
    /// Handler timers, one per connection at a time (a second one goes to
    /// `timers`), by slot index and sequence number, with no key: the
    /// connection keeps the number.
    pub(crate) lane_timers: Lanes<(u32, u32)>,
    /// The sequence number of the next lane timer; never 0.
    next_lane_timer: u32,
    /// Connections whose recorded requests the reactor still has to apply.
    pub(crate) dirty: Vec<ConnId>,
    /// Connections that spent their read budget with input left.
    pub(crate) requeue: Vec<ConnId>,
    /// The one read buffer of every connection.
    buf: Vec<u8>,
    registry: Registry,
    pub(crate) config: Config,
    /// The configuration's timeouts in milliseconds.
    limits: Limits,
    pub(crate) stats: Stats,
    epoch: Instant,
    /// Milliseconds since `epoch`, read once per loop iteration.
    pub(crate) now: u64,
    pub(crate) control: Control,
    /// A drain was requested from inside a callback.
    pub(crate) drain_request: Option<Duration>,
    /// The slot whose last write was held for its FIN
    /// ([`Conn::write_last`]): pushed if no FIN was asked for.
    corked: Option<usize>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("open", &self.conns.len())
            .field("timers", &self.timers.len())
            .field("timeouts", &self.timeouts.len())
            .field("control", &self.control)
            .finish()
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

impl Core {
    pub(crate) fn new(
        registry: Registry,
        config: Config,
        reactor: u32,
        handlers: Handlers,
    ) -> Self {
        Core {
            conns: Slab::new(),
            holds: handlers.holds(),
            handlers: Some(Box::new(handlers)),
            waiting: Vec::new(),
            gens: Generations::new(reactor),
            timers: TimerQueue::new(),
            timeouts: Lanes::new(),
            lane_timers: Lanes::new(),
            next_lane_timer: 1,
            dirty: Vec::new(),
            requeue: Vec::new(),
            buf: vec![0; config.read_buffer_size],
            registry,
            limits: Limits::from(&config),
            config,
            stats: Stats::default(),
            epoch: Instant::now(),
            now: 0,
            control: Control::Running,
            drain_request: None,
            corked: None,
        }
    }

    // ------------------------------------------------------------ clock

    pub(crate) fn update_clock(&mut self) {
        self.now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    }

    /// Time from now to tick `at`.
    pub(crate) fn until(&self, at: u64) -> Duration {
        Duration::from_millis(at.saturating_sub(self.now))
    }

    pub(crate) fn deadline_after(&self, d: Duration) -> u64 {
        self.now.saturating_add(millis(d))
    }

    // ------------------------------------------------------------ slots and ids

    /// Number of open connections.
    pub(crate) fn open(&self) -> usize {
        self.conns.len()
    }

    /// The ids of every open connection, for acting on all of them while
    /// callbacks may close some.
    pub(crate) fn open_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .map(|(k, _)| self.gens.current(k))
            .collect()
    }

    /// The slab key of `id`, if it is still open.
    pub(crate) fn live(&self, id: ConnId) -> Option<usize> {
        let key = id.index as usize;
        (self.gens.is_current(id) && self.conns.contains(key)).then_some(key)
    }

    /// This reactor's number in the process.
    pub(crate) fn reactor_id(&self) -> u32 {
        self.gens.id(0, 0).reactor()
    }

    pub(crate) fn id_of(&self, key: usize) -> ConnId {
        self.gens.current(key)
    }

    pub(crate) fn state(&self, key: usize) -> &ConnState {
        &self.conns[key].state
    }

    pub(crate) fn state_mut(&mut self, key: usize) -> &mut ConnState {
        &mut self.conns[key].state
    }

    pub(crate) fn stream(&self, key: usize) -> &Stream {
        &self.conns[key].stream
    }

    pub(crate) fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        let key = self.live(id)?;
        Some(Conn::new(self, key))
    }

    /// Mark `key` for [`advance`](Core::advance) once the current callback
    /// returns.
    pub(crate) fn touch(&mut self, key: usize) {
        let id = self.id_of(key);
        self.dirty.push(id);
    }

    /// Whether handlers of type `T` may join this reactor.
    ///
    /// # Errors
    ///
    /// `InvalidInput` naming both types: the table is inline, of another
    /// type.
    pub(crate) fn admits<T: 'static>(&self) -> io::Result<()> {
        handlers::admits::<T>(self.holds)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
    }

    /// Register `stream` and give it a slot, and `handler` its place in the
    /// table (its type was [admitted](Core::admits)).
    pub(crate) fn insert<T: Handler + 'static>(
        &mut self,
        stream: Stream,
        handler: T,
        writing: Writing,
    ) -> io::Result<ConnId> {
        let id = self.open_slot(stream, writing)?;
        let key = id.index as usize;
        match self.handlers.as_deref_mut() {
            Some(table) => {
                let placed = table.place(key, handler);
                debug_assert!(placed.is_ok(), "a handler type not admitted");
            }
            None => self.waiting.push(Waiting::new(self.holds, key, handler)),
        }
        Ok(id)
    }

    /// Register `stream` and give it a slot.
    fn open_slot(&mut self, mut stream: Stream, writing: Writing) -> io::Result<ConnId> {
        let entry = self.conns.vacant_entry();
        let id = self.gens.id_for(entry.key());
        self.registry.register(
            &mut stream,
            token::encode_conn(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let writing = match writing {
            // An accepted TLS connection handshakes first.
            Writing::Open if stream.handshakes() => Writing::Handshaking,
            other => other,
        };
        let state = ConnState::new(writing, self.now);
        self.stats.opened(state.gauge());
        entry.insert(Slot { stream, state });
        Ok(id)
    }

    /// Start an outbound connection.
    pub(crate) fn connect<T: Handler + 'static>(
        &mut self,
        to: Connect,
        handler: T,
    ) -> io::Result<ConnId> {
        self.admits::<T>()?;
        let (stream, early_error) = Stream::connect(&to)?;
        let id = self.insert(stream, handler, Writing::Connecting)?;
        if let Some(e) = early_error {
            self.conns[id.index as usize].state.failed(e);
        }
        // Arms the connect timeout and reports an early failure.
        self.dirty.push(id);
        Ok(id)
    }

    pub(crate) fn request_drain(&mut self, timeout: Duration) {
        self.drain_request = Some(timeout);
    }

    // ------------------------------------------------------------ callbacks

    /// Run one callback of the handler in slot `key`. Returns `None` if it
    /// panicked; the connection is then marked for abort.
    pub(crate) fn call<R>(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut dyn Handler, &mut Conn<'_>) -> R,
    ) -> Option<R> {
        let mut table = self.handlers.take()?;
        let Some(handler) = table.get(key) else {
            self.give_back(table);
            return None;
        };
        let result = catch_unwind(AssertUnwindSafe(|| f(handler, &mut Conn::new(self, key))));
        self.give_back(table);
        match result {
            Ok(r) => Some(r),
            Err(payload) => {
                log::error!(
                    "handler of {} panicked: {}; aborting it",
                    self.id_of(key),
                    panic_message(&*payload)
                );
                self.stats.panics += 1;
                self.conns[key].state.abort(Reason::Panicked);
                None
            }
        }
    }

    /// The table is back from a callback: the handlers made meanwhile move
    /// in.
    #[inline(always)]
    fn give_back(&mut self, mut table: Box<Handlers>) {
        if !self.waiting.is_empty() {
            self.settle_waiting(&mut table);
        }
        self.handlers = Some(table);
    }

    #[cold]
    fn settle_waiting(&mut self, table: &mut Handlers) {
        for waiting in std::mem::take(&mut self.waiting) {
            waiting.settle(table);
        }
    }

    /// A listener accepted `id`: tell its handler.
    pub(crate) fn greet(&mut self, id: ConnId) {
        if let Some(key) = self.live(id) {
            // A TLS connection is greeted when its handshake completes.
            if !self.conns[key].state.writing().is_handshaking() {
                self.call(key, |h, c| h.handle_connect(c));
            }
        }
    }

    // ------------------------------------------------------------ writing

    /// `Conn::write`: straight to the socket when nothing is queued (no
    /// copy), queue the rest. `last`: [`Conn::write_last`], the FIN follows.
    pub(crate) fn write(&mut self, key: usize, data: &[u8], last: bool) -> Result<()> {
        let max_pending = self.config.max_pending;
        let high = self.config.write_high_water;
        let now = self.now;
        let slot = &mut self.conns[key];
        let st = &mut slot.state;
        match st.write_refusal() {
            Some(Refusal::Closed) => return Err(Error::Closed),
            Some(Refusal::Shutdown) => return Err(Error::WriteAfterShutdown),
            None => {}
        }
        if data.is_empty() {
            return Ok(());
        }
        let pending = st.pending();
        if let Some(limit) = max_pending {
            if pending > 0 && pending + data.len() > limit {
                return Err(Error::QueueFull { limit });
            }
        }
        let mut written = 0;
        let mut failed = false;
        if st.may_write_through() {
            while written < data.len() {
                let sent = if last {
                    slot.stream.write_more(&data[written..])
                } else {
                    slot.stream.write(&data[written..])
                };
                match sent {
                    Ok(n) => {
                        written += n;
                        if written < data.len() {
                            // A short write: the send buffer is full.
                            st.send_buffer_full();
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        st.send_buffer_full();
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        st.failed(e);
                        failed = true;
                        break;
                    }
                }
            }
            st.wrote(written, now);
        }
        if written < data.len() {
            // On failure the rest is queued only to be counted as dropped.
            st.enqueue(&data[written..], high);
        }
        self.stats.bytes_out += written as u64;
        if last && written > 0 {
            // `advance` pushes the held segment if no FIN comes.
            if let Some(other) = self.corked.replace(key).filter(|&k| k != key) {
                // One held at a time (another connection's `write_last`
                // in the same callback): that one goes now.
                self.push_held(other);
            }
            self.touch(key);
        } else if failed {
            self.touch(key);
        }
        Ok(())
    }

    /// `write_last` held a segment and no FIN was asked for: send it.
    fn push_held(&mut self, key: usize) {
        let Some(slot) = self.conns.get_mut(key) else {
            return;
        };
        if slot.state.write_refusal().is_none() {
            if let Err(e) = slot.stream.push() {
                slot.state.failed(e);
                self.touch(key);
            }
        }
    }

    // ------------------------------------------------------------ the driver

    /// Advance every connection with recorded requests, until none is left.
    pub(crate) fn apply_dirty(&mut self) {
        while let Some(id) = self.dirty.pop() {
            self.advance(id);
        }
    }

    /// Advance the connections that spent their read budget last time, once.
    pub(crate) fn apply_requeued(&mut self) {
        for id in std::mem::take(&mut self.requeue) {
            self.advance(id);
            self.apply_dirty();
        }
    }

    /// The id of slot `index` at `generation` in this reactor (from an
    /// event's token or a timer entry).
    pub(crate) fn id_at(&self, index: u32, generation: u32) -> ConnId {
        self.gens.id(index, generation)
    }

    /// Carry out everything connection `id` can do now, then account for
    /// its new state. Safe to call for any id, any number of times. Reads
    /// are bounded by the read budget; a connection that spends it with
    /// input left is re-queued.
    pub(crate) fn advance(&mut self, id: ConnId) {
        let Some(key) = self.live(id) else { return };
        if self.corked == Some(key) {
            self.corked = None;
            self.push_held(key);
        }
        // Lent out while callbacks run: `handle_read` borrows it.
        let mut buf = std::mem::take(&mut self.buf);
        let mut budget = self.config.read_budget;
        // Checked once: the level check costs an atomic load per action.
        let tracing = log::log_enabled!(log::Level::Trace);
        loop {
            let slot = &self.conns[key];
            let action = slot
                .state
                .next_action(self.config.write_low_water, slot.stream.io());
            if tracing {
                log::trace!("{id}: {action:?}");
            }
            match action {
                Action::Wait => break,
                Action::Finalize(reason, how) => {
                    self.buf = buf;
                    return self.finalize(key, reason, how);
                }
                Action::ReportError => {
                    let err = self.conns[key].state.error().map(clone_error);
                    if let Some(err) = err {
                        self.call(key, |h, c| h.handle_error(c, &err));
                    }
                    self.conns[key].state.error_reported();
                }
                Action::CheckConnect => {
                    let slot = &mut self.conns[key];
                    match slot.stream.connect_outcome() {
                        Ok(false) => slot.state.connect_pending(),
                        Ok(true) => {
                            let handshake = slot.stream.handshakes();
                            slot.state.connected(self.now, handshake);
                            self.stats.connected += 1;
                            if !handshake {
                                self.call(key, |h, c| h.handle_connect(c));
                            }
                        }
                        Err(e) => slot.state.failed(e),
                    }
                }
                Action::Handshake => {
                    let slot = &mut self.conns[key];
                    match slot.stream.handshake() {
                        Ok(Handshake::Done) => {
                            slot.state.handshaken(self.now);
                            self.call(key, |h, c| h.handle_connect(c));
                        }
                        Ok(Handshake::Pending { write_blocked }) => {
                            slot.state.handshake_pending(write_blocked)
                        }
                        Err(e) => slot.state.failed(e),
                    }
                }
                Action::Flush => {
                    let slot = &mut self.conns[key];
                    // No queue of ours: the stream's own output (TLS
                    // ciphertext the socket refused) is what waits.
                    let (n, outcome) = match slot.state.out_mut() {
                        Some(q) => slot.stream.flush(q),
                        None => (0, slot.stream.flush_own()),
                    };
                    slot.state.flushed(n, outcome, self.now);
                    self.stats.bytes_out += n as u64;
                }
                Action::Drained { notify } => {
                    self.conns[key].state.drained();
                    if notify {
                        self.call(key, |h, c| h.handle_write(c));
                    }
                }
                Action::ShutdownWrite => {
                    let slot = &mut self.conns[key];
                    match slot.stream.shutdown_write() {
                        Ok(true) => slot.state.shut_write(self.now),
                        // TLS: close_notify waits for the socket; flushed next.
                        Ok(false) => {}
                        Err(e) => slot.state.shutdown_failed(e),
                    }
                }
                Action::Fin => self.on_fin(key, true),
                Action::Read { deliver } => {
                    if budget == 0 {
                        self.requeue.push(id);
                        break;
                    }
                    budget -= 1;
                    self.read(key, &mut buf, deliver);
                }
                Action::CheckError => {
                    let slot = &mut self.conns[key];
                    match slot.stream.take_error() {
                        Ok(Some(e)) | Err(e) => slot.state.failed(e),
                        Ok(None) => slot.state.error_checked(),
                    }
                }
            }
        }
        self.buf = buf;
        self.settle(key);
    }

    /// One read: deliver, discard, EOF or error.
    fn read(&mut self, key: usize, buf: &mut [u8], deliver: bool) {
        let slot = &mut self.conns[key];
        let result = loop {
            match slot.stream.read(buf, deliver) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match result {
            Ok(Input::Fin) => self.on_fin(key, true),
            Ok(Input::Truncated) => self.on_fin(key, false),
            Ok(Input::Data(n, drained)) => {
                slot.state.read_data(n, drained, self.now);
                self.stats.bytes_in += n as u64;
                if deliver {
                    self.call(key, |h, c| h.handle_read(c, &buf[..n]));
                }
            }
            Ok(Input::WouldBlock) => slot.state.read_drained(),
            Err(e) => slot.state.read_failed(e),
        }
    }

    /// The peer's end was read: ask the handler what it means. An end that
    /// is not `authenticated` (TLS: a TCP FIN without `close_notify`) goes
    /// to `handle_truncated_eof`.
    fn on_fin(&mut self, key: usize, authenticated: bool) {
        let Some(ours_first) = self.conns[key].state.read_fin(self.now) else {
            return;
        };
        let decision = if authenticated {
            self.call(key, |h, c| h.handle_readable_eof(c))
                .map(Truncated::Accept)
        } else {
            self.call(key, |h, c| h.handle_truncated_eof(c))
        };
        match decision {
            Some(Truncated::Accept(eof)) => self.conns[key].state.eof_decided(eof, ours_first),
            Some(Truncated::Fail) => self.conns[key].state.truncated(),
            None => {} // the handler panicked: aborted
        }
    }

    /// Account for the state `advance` left: gauge and timeout entry.
    fn settle(&mut self, key: usize) {
        let st = &mut self.conns[key].state;
        let (old, new) = st.regauge();
        self.stats.moved(old, new);
        let want = st.entry_deadline(&self.limits, self.now);
        match (st.armed(self.now), want) {
            // An entry that fires early is cheaper than a re-arm on every
            // byte: it finds the later deadline and arms again.
            (Some(at), Some(w)) if at <= w => {}
            (old, want) => {
                // Disarmed first: a compaction must see the old entry as
                // abandoned.
                st.disarm();
                if old.is_some() {
                    self.abandon_timeout();
                }
                if let Some(at) = want {
                    let id = self.gens.current(key);
                    let at = self.timeouts.push(self.now, at, (id.index, id.generation));
                    self.conns[key].state.arm(at);
                }
            }
        }
    }

    /// A connection no longer waits for the timeout entry it armed.
    fn abandon_timeout(&mut self) {
        let (conns, gens) = (&self.conns, &self.gens);
        self.timeouts.abandon(|at, (index, generation)| {
            gens.is_current(gens.id(index, generation))
                && conns
                    .get(index as usize)
                    .is_some_and(|slot| slot.state.is_armed_at(at))
        });
    }

    /// A timeout entry of [`Lanes`] for connection `id` came due at `at`:
    /// the connection's timeouts fire, unless it left or armed another.
    pub(crate) fn on_timeouts_entry(&mut self, id: ConnId, at: u64) {
        let armed = self
            .live(id)
            .is_some_and(|key| self.conns[key].state.is_armed_at(at));
        if armed {
            self.on_conn_timer(id, ConnTimer::Timeouts, TimerId(TimerKey::NULL.to_bits()));
        } else {
            self.timeouts.popped_forgotten();
        }
    }

    /// The earliest deadline of any timer.
    pub(crate) fn next_deadline(&mut self) -> Option<u64> {
        [
            self.timers.next_deadline(),
            self.timeouts.next_deadline(),
            self.lane_timers.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Close the descriptor, free the slot, and tell the handler, last.
    fn finalize(&mut self, key: usize, reason: Reason, how: Teardown) {
        let id = self.gens.current(key);
        let slot = self.conns.remove(key);
        self.gens.retire(key);
        if self.corked == Some(key) {
            self.corked = None;
        }
        let st = slot.state;
        if st.is_armed() {
            self.abandon_timeout();
        }
        if st.lane_timer() != 0 {
            self.abandon_lane_timer();
        }
        if how == Teardown::Reset {
            // Best effort: the RST is what the caller asked for; if the
            // option cannot be set, close(2) still ends the connection.
            let _ = slot.stream.reset_on_close();
        }
        let dropped = st.pending() as u64;
        drop(slot.stream);
        let stats = &mut self.stats;
        stats.open -= 1;
        stats.leave(st.gauge());
        stats.closed += 1;
        match reason {
            Reason::Reset => stats.resets += 1,
            Reason::TimedOut(_) => stats.timeouts += 1,
            Reason::Aborted | Reason::Stopped => stats.aborts += 1,
            Reason::Error(_) => stats.errors += 1,
            _ => {}
        }
        let closed = Closed {
            id,
            reason,
            bytes_in: st.bytes_in(),
            bytes_out: st.bytes_out(),
            dropped,
        };
        log::debug!(
            "{id} closed: {reason} (in {}, out {}, dropped {dropped})",
            closed.bytes_in,
            closed.bytes_out
        );
        // Never inside a callback: dirty connections are advanced after it.
        debug_assert!(self.handlers.is_some(), "finalize while the table is lent");
        let Some(mut table) = self.handlers.take() else {
            return;
        };
        let result = match table.get(key) {
            Some(h) => catch_unwind(AssertUnwindSafe(|| {
                h.handle_close(&mut Ctx::new(self), &closed)
            })),
            None => Ok(()),
        };
        if let Err(payload) = result {
            log::error!(
                "handle_close of {id} panicked: {}",
                panic_message(&*payload)
            );
            self.stats.panics += 1;
        }
        // Before a handler made in `handle_close` moves in: its connection
        // may have this slot already.
        table.remove(key);
        self.give_back(table);
    }

    // ------------------------------------------------------------ timers

    /// Call `handle_timer` once, after `after`: in the lanes if the
    /// connection has no timer there yet and the deadline is in the future
    /// (a zero delay waits for the next iteration, not the next tick), else
    /// in the heap.
    pub(crate) fn set_timer(&mut self, key: usize, after: Duration) -> TimerId {
        // The clock is read once per iteration, and an iteration can be
        // long: a timer counted from a stale tick would fire early.
        self.update_clock();
        let at = self.now.saturating_add(millis(after));
        if at > self.now && self.conns[key].state.lane_timer() == 0 {
            let seq = self.next_lane_timer;
            self.next_lane_timer = seq.wrapping_add(1).max(1);
            self.lane_timers.push(self.now, at, (key as u32, seq));
            self.conns[key].state.set_lane_timer(seq);
            return TimerId(LANE_TIMER | u64::from(seq));
        }
        let id = self.id_of(key);
        let k = self.timers.insert(
            at,
            TimerTarget::Conn(id.index, id.generation, ConnTimer::User),
        );
        TimerId(k.to_bits())
    }

    /// A lane timer entry of slot `index` came due: its connection's
    /// handler timer fires, unless it was cancelled or the slot moved on.
    pub(crate) fn on_lane_timer_entry(&mut self, index: u32, seq: u32) {
        let key = index as usize;
        match self.conns.get_mut(key) {
            Some(slot) if slot.state.lane_timer() == seq => {
                slot.state.set_lane_timer(0);
                let id = self.gens.current(key);
                self.on_conn_timer(id, ConnTimer::User, TimerId(LANE_TIMER | u64::from(seq)));
            }
            _ => self.lane_timers.popped_forgotten(),
        }
    }

    /// A connection gave up its lane timer (cancelled, or closed).
    fn abandon_lane_timer(&mut self) {
        let conns = &self.conns;
        self.lane_timers.abandon(|_, (index, seq)| {
            conns
                .get(index as usize)
                .is_some_and(|slot| slot.state.lane_timer() == seq)
        });
    }

    /// Cancel a handler timer of connection `key`.
    pub(crate) fn cancel_timer(&mut self, key: usize, timer: TimerId) -> bool {
        if timer.0 & LANE_TIMER != 0 {
            let st = &mut self.conns[key].state;
            if st.lane_timer() != timer.0 as u32 {
                return false;
            }
            st.set_lane_timer(0);
            self.abandon_lane_timer();
            return true;
        }
        let k = TimerKey::from_bits(timer.0);
        let id = self.id_of(key);
        match self.timers.get(k) {
            Some(&TimerTarget::Conn(index, generation, ConnTimer::User))
                if (index, generation) == (id.index, id.generation) =>
            {
                self.timers.cancel(k).is_some()
            }
            _ => false,
        }
    }

    /// A timer of connection `id` fired.
    pub(crate) fn on_conn_timer(&mut self, id: ConnId, which: ConnTimer, timer: TimerId) {
        let Some(key) = self.live(id) else { return };
        // Whatever happens, `advance` applies it and re-arms the timeouts.
        self.dirty.push(id);
        match which {
            ConnTimer::User => {
                if !self.conns[key].state.is_failing() {
                    self.call(key, |h, c| h.handle_timer(c, timer));
                }
            }
            ConnTimer::Timeouts => {
                if let Some(kind) = self.conns[key].state.expire(self.now, &self.limits) {
                    log::debug!("{id} timed out: {kind}");
                }
            }
        }
    }

    // ------------------------------------------------------------ the reactor's requests

    /// Tell every open connection that a drain started.
    pub(crate) fn announce_drain(&mut self) {
        for id in self.open_ids() {
            if let Some(key) = self.live(id) {
                if !self.conns[key].state.is_failing() {
                    self.call(key, |h, c| h.handle_drain(c));
                }
            }
            self.dirty.push(id);
        }
    }

    /// Reset every open connection with `reason`, under the one rule.
    pub(crate) fn abort_all(&mut self, reason: Reason) {
        for id in self.open_ids() {
            if let Some(key) = self.live(id) {
                self.conns[key].state.end_with(End::Abort(reason));
            }
            self.dirty.push(id);
        }
    }
}

fn clone_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connection_slot_is_small() {
        // Userspace memory of a connection without buffers and handler: the
        // slab slot (state, socket). Printed for the docs. The
        // socket is 4 bytes in a release build (8 with the tls feature's
        // boxed session); debug builds add mio's 8-byte selector id.
        let slot = std::mem::size_of::<Slot>();
        let stream = std::mem::size_of::<Stream>();
        println!("size_of::<Slot>() = {slot} bytes, of which the socket {stream}");
        assert!(slot - stream <= 40, "a connection slot takes {slot} bytes");
    }
}
