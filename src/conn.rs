//! Per-connection state, one enum per half, and the [`Conn`] API that
//! handlers use.
//!
//! A handler never touches the loop: each `Conn` method records its request
//! in the connection's state (and marks the connection dirty); the reactor
//! applies it after the callback returns. The one thing done at once is the
//! write-through of [`Conn::write`] when nothing is queued, so the common
//! case neither copies nor waits a loop iteration; any error it meets is
//! reported after the callback.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::time::Duration;

use mio::net::TcpStream;
use socket2::SockRef;

use crate::config::millis;
use crate::ctx::{ConnTimer, Core, TimerTarget};
use crate::error::{Error, Result};
use crate::handler::{Handler, ProtocolError, Reason, Timeout, TimerId};
use crate::outq::OutQueue;
use crate::stats::Gauge;
use crate::timer::TimerKey;
use crate::token::ConnId;

pub use crate::ctx::Ctx;

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
}

/// Our write half.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Writing {
    /// Outbound connect in flight; writes are queued. `fin`: a
    /// `shutdown_write` or `close` is waiting for the connect.
    Connecting { fin: bool },
    /// Writes go out.
    Open,
    /// FIN once the queue drains; writes are refused.
    Closing,
    /// Our FIN is out.
    Shut,
}

/// How the connection as a whole is ending.
#[derive(Debug)]
pub(crate) enum End {
    /// Nothing decided yet.
    Running,
    /// A lossless close is under way, with this reason.
    Graceful(Reason),
    /// Reset now, dropping the queue.
    Abort(Reason),
    /// A socket error: report it to `handle_error`, then close.
    Fail(Reason, io::Error),
}

/// Readiness cached from edge-triggered events (V5): set by events, cleared
/// only when a syscall says the condition is gone.
#[derive(Clone, Copy, Default, Debug)]
pub(crate) struct Ready(u8);

impl Ready {
    pub(crate) const READABLE: u8 = 1;
    pub(crate) const WRITABLE: u8 = 2;
    /// The peer's FIN (or a reset) is in the receive queue.
    pub(crate) const READ_CLOSED: u8 = 4;
    pub(crate) const ERROR: u8 = 8;

    pub(crate) fn has(self, bit: u8) -> bool {
        self.0 & bit != 0
    }
    pub(crate) fn set(&mut self, bit: u8) {
        self.0 |= bit;
    }
    pub(crate) fn clear(&mut self, bit: u8) {
        self.0 &= !bit;
    }
}

/// The timer entry of a connection's timeouts and its deadline; an
/// `Option` of the pair would cost 8 more bytes per connection.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Armed {
    key: TimerKey,
    /// `u64::MAX`: nothing armed (no deadline is that far).
    at: u64,
}

impl Armed {
    pub(crate) const NONE: Armed = Armed {
        key: TimerKey::NULL,
        at: u64::MAX,
    };

    pub(crate) fn new(key: TimerKey, at: u64) -> Armed {
        debug_assert!(at < u64::MAX);
        Armed { key, at }
    }

    pub(crate) fn get(self) -> Option<(TimerKey, u64)> {
        (self.at != u64::MAX).then_some((self.key, self.at))
    }
}

/// Everything the reactor keeps for one connection, its handler aside.
#[derive(Debug)]
pub(crate) struct ConnState {
    pub(crate) stream: TcpStream,
    pub(crate) reading: Reading,
    pub(crate) writing: Writing,
    pub(crate) ready: Ready,
    pub(crate) gauge: Gauge,
    /// Passed the high-water mark; `handle_write` is owed at the low one.
    pub(crate) blocked: bool,
    pub(crate) end: End,
    pub(crate) out: Option<Box<OutQueue>>,
    pub(crate) bytes_in: u64,
    pub(crate) bytes_out: u64,
    /// Tick of the last byte moved in either direction.
    pub(crate) last_activity: u64,
    /// Tick the current phase began: connect started, peer FIN, our FIN.
    pub(crate) since: u64,
    /// Idle timeout in ms; 0 disables it.
    pub(crate) idle_ms: u32,
    /// The one timer entry that guards every timeout of this connection.
    pub(crate) timeouts: Armed,
}

impl ConnState {
    pub(crate) fn new(stream: TcpStream, writing: Writing, now: u64, idle_ms: u32) -> Self {
        let mut ready = Ready::default();
        if writing == Writing::Open {
            // A fresh accepted socket can take writes before its first event.
            ready.set(Ready::WRITABLE);
        }
        let mut st = ConnState {
            stream,
            reading: Reading::Open,
            writing,
            ready,
            gauge: Gauge::Established,
            blocked: false,
            end: End::Running,
            out: None,
            bytes_in: 0,
            bytes_out: 0,
            last_activity: now,
            since: now,
            idle_ms,
            timeouts: Armed::NONE,
        };
        st.gauge = st.classify();
        st
    }

    pub(crate) fn pending(&self) -> usize {
        self.out.as_ref().map_or(0, |q| q.len())
    }

    pub(crate) fn queue(&mut self, data: &[u8]) {
        self.out.get_or_insert_with(Default::default).push(data);
    }

    /// The gauge this connection counts in.
    pub(crate) fn classify(&self) -> Gauge {
        match (self.writing, self.reading) {
            (Writing::Connecting { .. }, _) => Gauge::Connecting,
            (_, Reading::Discarding) => Gauge::Lingering,
            (Writing::Shut, _) => Gauge::HalfClosedOut,
            (_, Reading::Eof) => Gauge::HalfClosedIn,
            _ => Gauge::Established,
        }
    }

    /// Whether a failure or reset is already decided.
    pub(crate) fn is_failing(&self) -> bool {
        matches!(self.end, End::Abort(_) | End::Fail(..))
    }

    /// The reason a lossless close decided now carries: who sent FIN first.
    pub(crate) fn graceful_reason(&self) -> Reason {
        if self.reading == Reading::Eof {
            Reason::PeerClosed
        } else {
            Reason::Local
        }
    }

    /// Record a socket error, unless the connection already failed.
    pub(crate) fn fail(&mut self, err: io::Error) {
        if !self.is_failing() {
            self.end = End::Fail(Reason::from_error(&err), err);
        }
    }

    /// Record a reset request, unless the connection already failed.
    pub(crate) fn abort(&mut self, reason: Reason) {
        if !self.is_failing() {
            self.end = End::Abort(reason);
        }
    }

    /// Start a lossless close: stop delivering input, FIN after the queue.
    pub(crate) fn begin_close(&mut self, reason: Reason) {
        if !matches!(self.end, End::Running) {
            return;
        }
        self.end = End::Graceful(reason);
        if let Reading::Open | Reading::Paused = self.reading {
            self.reading = Reading::Discarding;
            // A FIN held while paused must now be found.
            self.ready.set(Ready::READABLE);
        }
        self.shutdown_write();
    }

    pub(crate) fn shutdown_write(&mut self) {
        self.writing = match self.writing {
            Writing::Connecting { .. } => Writing::Connecting { fin: true },
            Writing::Open => Writing::Closing,
            other => other,
        };
    }

    /// The earliest timeout this connection is subject to now.
    pub(crate) fn next_timeout(&self, core_cfg: &crate::Config) -> Option<(u64, Timeout)> {
        let ms = |d: Option<Duration>| d.map(millis);
        if let Writing::Connecting { .. } = self.writing {
            return ms(core_cfg.connect_timeout)
                .map(|t| (self.since.saturating_add(t), Timeout::Connect));
        }
        let progress = self.since.max(self.last_activity);
        let mut best: Option<(u64, Timeout)> = None;
        let mut consider = |at: Option<u64>, t: Timeout| {
            if let Some(at) = at {
                if best.map_or(true, |(b, _)| at < b) {
                    best = Some((at, t));
                }
            }
        };
        // Once our FIN is out, the linger timeout alone guards the wait
        // for the peer's.
        if self.idle_ms > 0 && self.writing != Writing::Shut {
            consider(
                Some(self.last_activity.saturating_add(u64::from(self.idle_ms))),
                Timeout::Idle,
            );
        }
        match (self.writing, self.reading) {
            (Writing::Shut, Reading::Discarding) => consider(
                ms(core_cfg.linger_timeout).map(|t| self.since.saturating_add(t)),
                Timeout::Linger,
            ),
            (Writing::Shut, _) => consider(
                ms(core_cfg.linger_timeout).map(|t| progress.saturating_add(t)),
                Timeout::Linger,
            ),
            (_, Reading::Eof) => consider(
                ms(core_cfg.peer_eof_timeout).map(|t| progress.saturating_add(t)),
                Timeout::PeerEof,
            ),
            _ => {}
        }
        best
    }
}

/// One connection, as seen from inside a callback (or from
/// [`Reactor::conn`](crate::Reactor::conn)).
///
/// Requests take effect after the current callback returns, in the order
/// made. Through [`other`](Conn::other) and [`ctx`](Conn::ctx) a handler
/// reaches the other connections and the reactor, as a proxy needs.
pub struct Conn<'a> {
    pub(crate) core: &'a mut Core,
    pub(crate) key: usize,
}

impl std::fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let st = self.state();
        f.debug_struct("Conn")
            .field("id", &self.id())
            .field("reading", &st.reading)
            .field("writing", &st.writing)
            .field("pending", &st.pending())
            .finish()
    }
}

impl<'a> Conn<'a> {
    fn state(&self) -> &ConnState {
        &self.core.conns[self.key].state
    }

    fn state_mut(&mut self) -> &mut ConnState {
        &mut self.core.conns[self.key].state
    }

    fn touch(&mut self) {
        let id = self.id();
        self.core.dirty.push(id);
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.core.gens.current(self.key)
    }

    /// The peer's address.
    ///
    /// # Errors
    ///
    /// `getpeername(2)` fails, for instance with `NotConnected` after a
    /// reset or before a connect completed.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.state().stream.peer_addr()
    }

    /// Our address.
    ///
    /// # Errors
    ///
    /// `getsockname(2)` fails.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.state().stream.local_addr()
    }

    /// The socket, to read or set options (`TCP_NODELAY`, keep-alive,
    /// buffer sizes).
    pub fn socket(&self) -> SockRef<'_> {
        SockRef::from(&self.state().stream)
    }

    /// Send `data` to the peer.
    ///
    /// When nothing is queued the bytes go straight to the kernel (no copy);
    /// only what the kernel does not take is queued, to be sent as the
    /// socket becomes writable, in order. Writes made before an outbound
    /// connect completes are queued and sent after it.
    ///
    /// A socket error met on the way (`EPIPE`, `ECONNRESET`) is not returned
    /// here: it reaches [`Handler::handle_error`] once the callback returns,
    /// and the bytes are counted in [`Closed::dropped`](crate::Closed::dropped).
    ///
    /// # Errors
    ///
    /// - [`Error::WriteAfterShutdown`] after our own
    ///   [`shutdown_write`](Conn::shutdown_write) or [`close`](Conn::close):
    ///   nothing reaches the wire.
    /// - [`Error::Closed`] after an abort or a socket error.
    /// - [`Error::QueueFull`] when [`Config::max_pending`](crate::Config::max_pending)
    ///   would be passed; nothing is queued.
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        let max_pending = self.core.config.max_pending;
        let high = self.core.config.write_high_water;
        let now = self.core.now;
        let st = &mut self.core.conns[self.key].state;
        if st.is_failing() {
            return Err(Error::Closed);
        }
        let connecting = match st.writing {
            Writing::Open => false,
            Writing::Connecting { fin: false } => true,
            _ => return Err(Error::WriteAfterShutdown),
        };
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
        if pending == 0 && !connecting {
            while written < data.len() {
                match (&st.stream).write(&data[written..]) {
                    Ok(n) => {
                        written += n;
                        if written < data.len() {
                            // A short write: the send buffer is full.
                            st.ready.clear(Ready::WRITABLE);
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        st.ready.clear(Ready::WRITABLE);
                        break;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => {
                        st.fail(e);
                        failed = true;
                        break;
                    }
                }
            }
            if written > 0 {
                st.bytes_out += written as u64;
                st.last_activity = now;
            }
        }
        if written < data.len() {
            // On failure the rest is queued only to be counted as dropped.
            st.queue(&data[written..]);
            if st.pending() > high {
                st.blocked = true;
            }
        }
        self.core.stats.bytes_out += written as u64;
        if failed {
            self.touch();
        }
        Ok(())
    }

    /// Bytes queued and not yet handed to the kernel.
    pub fn pending(&self) -> usize {
        self.state().pending()
    }

    /// Whether queued output passed the high-water mark; the handler should
    /// stop producing until [`Handler::handle_write`].
    pub fn is_write_blocked(&self) -> bool {
        self.state().pending() > self.core.config.write_high_water
    }

    /// Close our write half: FIN after all queued output; keep reading.
    ///
    /// Only the peer can close our read half: input goes on reaching
    /// [`Handler::handle_read`] until its FIN. A second call is a no-op, and
    /// the FIN is sent once. When the peer's FIN already arrived, the
    /// connection is complete once the queue drains and closes without a
    /// `shutdown` call.
    pub fn shutdown_write(&mut self) {
        if self.state().is_failing() {
            return;
        }
        self.state_mut().shutdown_write();
        self.touch();
    }

    /// Close lossless (the *lingering close*): stop delivering input, flush
    /// the queue, send FIN, read and discard until the peer's FIN or the
    /// linger timeout, then close the descriptor.
    ///
    /// Closing a socket with unread input makes the kernel send RST instead
    /// of FIN, and a RST makes the peer discard what it has not yet read,
    /// our last reply included. Reading to the peer's FIN first prevents
    /// that. When the peer's FIN already arrived and was read, `close(2)`
    /// alone sends our FIN and no `shutdown` call is made.
    ///
    /// A second call, or a call after [`abort`](Conn::abort), is a no-op.
    pub fn close(&mut self) {
        let reason = self.state().graceful_reason();
        self.state_mut().begin_close(reason);
        self.touch();
    }

    /// [`close`](Conn::close), ending with [`Reason::Protocol`]: the handler
    /// says why it gave up on the peer (an oversized frame, a malformed
    /// request). Queued output, such as an error reply, is still delivered.
    pub fn close_with(&mut self, err: ProtocolError) {
        self.state_mut().begin_close(Reason::Protocol(err));
        self.touch();
    }

    /// Reset the connection now: `SO_LINGER` 0 and `close(2)`, so one RST is
    /// sent and the peer's reads fail with `ECONNRESET`. Queued output is
    /// dropped and counted in [`Closed::dropped`](crate::Closed::dropped).
    /// Overrides a graceful close still in progress.
    pub fn abort(&mut self) {
        self.state_mut().abort(Reason::Aborted);
        self.touch();
    }

    /// Stop delivering input. The kernel keeps buffering (and its window
    /// closes, pushing back on the peer); a FIN that arrives meanwhile is
    /// held and delivered after [`resume_reading`](Conn::resume_reading).
    pub fn pause_reading(&mut self) {
        let st = self.state_mut();
        if st.reading == Reading::Open {
            st.reading = Reading::Paused;
        }
    }

    /// Deliver input again, starting with what arrived while paused.
    pub fn resume_reading(&mut self) {
        let st = self.state_mut();
        if st.reading == Reading::Paused {
            st.reading = Reading::Open;
            st.ready.set(Ready::READABLE);
            self.touch();
        }
    }

    /// Whether input is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.state().reading == Reading::Paused
    }

    /// Whether writes are accepted: connected or connecting, no
    /// `shutdown_write`, `close` or failure yet.
    pub fn may_send(&self) -> bool {
        let st = self.state();
        !st.is_failing()
            && matches!(
                st.writing,
                Writing::Open | Writing::Connecting { fin: false }
            )
    }

    /// Whether input may still reach [`Handler::handle_read`]: the peer has
    /// not sent FIN and we did not close.
    pub fn may_recv(&self) -> bool {
        matches!(self.state().reading, Reading::Open | Reading::Paused)
    }

    /// Whether the peer's FIN has been read.
    pub fn is_read_closed(&self) -> bool {
        self.state().reading == Reading::Eof
    }

    /// Call [`Handler::handle_timer`] once, after `after`. Timers have
    /// millisecond resolution and die with the connection.
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        let at = self.core.now.saturating_add(millis(after));
        let id = self.id();
        let key = self
            .core
            .timers
            .insert(at, TimerTarget::Conn(id, ConnTimer::User));
        TimerId(key.to_bits())
    }

    /// Cancel a timer of this connection; false if it already fired, was
    /// cancelled, or belongs to another connection.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        let key = TimerKey::from_bits(timer.0);
        let id = self.id();
        match self.core.timers.get(key) {
            Some(TimerTarget::Conn(owner, ConnTimer::User)) if *owner == id => {
                self.core.timers.cancel(key).is_some()
            }
            _ => false,
        }
    }

    /// Replace this connection's idle timeout (`None` disables it).
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.state_mut().idle_ms = timeout.map_or(0, |d| crate::config::millis_u32(d).max(1));
        self.touch();
    }

    /// Another open connection, by id; `None` once it closed.
    pub fn other(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.core.conn(id)
    }

    /// The reactor, to reach other connections or stop it.
    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx { core: self.core }
    }

    /// Start an outbound connection; see [`Ctx::connect`].
    ///
    /// # Errors
    ///
    /// As [`Ctx::connect`].
    pub fn connect<H: Handler + 'static>(
        &mut self,
        addr: SocketAddr,
        handler: H,
    ) -> Result<ConnId> {
        self.core.connect(addr, None, Box::new(handler))
    }
}

#[cfg(test)]
mod tests {
    //! The connection state machine, grouped by state, without a reactor:
    //! each fixture builds a `ConnState` over a real loopback socket and
    //! sets the halves directly.
    use super::*;
    use crate::ctx::Slot;
    use crate::Config;

    fn stream() -> TcpStream {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let c = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
        TcpStream::from_std(c)
    }

    fn state(writing: Writing, reading: Reading) -> ConnState {
        let mut st = ConnState::new(stream(), writing, 1_000, 0);
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

    #[test]
    fn per_connection_state_is_small() {
        // Userspace memory of an idle connection without buffers: the slab
        // slot (state + boxed handler pointer). Printed for the docs.
        let slot = std::mem::size_of::<Slot>();
        println!(
            "size_of::<Slot>() = {slot} bytes, ConnState = {}",
            std::mem::size_of::<ConnState>()
        );
        assert!(slot <= 120, "a connection slot takes {slot} bytes");
    }

    mod connecting {
        use super::*;

        #[test]
        fn counts_as_connecting_and_only_the_connect_timeout_applies() {
            let st = state(Writing::Connecting { fin: false }, Reading::Open);
            assert_eq!(st.classify(), Gauge::Connecting);
            assert_eq!(st.next_timeout(&cfg()), Some((1_200, Timeout::Connect)));
        }

        #[test]
        fn shutdown_waits_for_the_connect() {
            let mut st = state(Writing::Connecting { fin: false }, Reading::Open);
            st.shutdown_write();
            assert_eq!(st.writing, Writing::Connecting { fin: true });
        }

        #[test]
        fn close_waits_for_the_connect_and_then_lingers() {
            let mut st = state(Writing::Connecting { fin: false }, Reading::Open);
            st.begin_close(Reason::Local);
            assert_eq!(st.writing, Writing::Connecting { fin: true });
            assert_eq!(st.reading, Reading::Discarding);
            assert!(matches!(st.end, End::Graceful(Reason::Local)));
        }
    }

    mod established {
        use super::*;

        #[test]
        fn close_stops_input_and_queues_the_fin() {
            let mut st = state(Writing::Open, Reading::Open);
            assert_eq!(st.classify(), Gauge::Established);
            assert_eq!(st.graceful_reason(), Reason::Local);
            st.begin_close(Reason::Local);
            assert_eq!(
                (st.writing, st.reading),
                (Writing::Closing, Reading::Discarding)
            );
            assert_eq!(st.classify(), Gauge::Lingering);
        }

        #[test]
        fn close_while_paused_looks_for_a_held_fin() {
            let mut st = state(Writing::Open, Reading::Paused);
            st.ready.clear(Ready::READABLE);
            st.begin_close(Reason::Local);
            assert_eq!(st.reading, Reading::Discarding);
            assert!(st.ready.has(Ready::READABLE));
        }

        #[test]
        fn second_close_keeps_the_first_reason() {
            let mut st = state(Writing::Open, Reading::Open);
            st.begin_close(Reason::TimedOut(Timeout::Idle));
            st.begin_close(Reason::Local);
            assert!(matches!(
                st.end,
                End::Graceful(Reason::TimedOut(Timeout::Idle))
            ));
        }

        #[test]
        fn abort_overrides_a_graceful_close_but_not_a_failure() {
            let mut st = state(Writing::Open, Reading::Open);
            st.begin_close(Reason::Local);
            st.abort(Reason::Aborted);
            assert!(matches!(st.end, End::Abort(Reason::Aborted)));
            let mut st = state(Writing::Open, Reading::Open);
            st.fail(io::ErrorKind::ConnectionReset.into());
            st.abort(Reason::Aborted);
            assert!(matches!(st.end, End::Fail(Reason::Reset, _)));
        }

        #[test]
        fn idle_timeout_runs_from_the_last_activity() {
            let mut st = state(Writing::Open, Reading::Open);
            st.idle_ms = 50;
            st.last_activity = 5_000;
            assert_eq!(st.next_timeout(&cfg()), Some((5_050, Timeout::Idle)));
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
        fn peer_eof_timeout_is_restarted_by_progress() {
            let mut st = state(Writing::Open, Reading::Eof);
            assert_eq!(st.next_timeout(&cfg()), Some((1_500, Timeout::PeerEof)));
            st.last_activity = 2_000;
            assert_eq!(st.next_timeout(&cfg()), Some((2_500, Timeout::PeerEof)));
        }

        #[test]
        fn close_keeps_the_read_half_at_eof() {
            let mut st = state(Writing::Open, Reading::Eof);
            st.begin_close(Reason::PeerClosed);
            assert_eq!((st.writing, st.reading), (Writing::Closing, Reading::Eof));
        }
    }

    mod half_closed_out {
        use super::*;

        #[test]
        fn linger_after_shutdown_is_restarted_by_input() {
            let mut st = state(Writing::Shut, Reading::Open);
            assert_eq!(st.classify(), Gauge::HalfClosedOut);
            st.since = 1_000;
            st.last_activity = 1_100;
            assert_eq!(st.next_timeout(&cfg()), Some((1_400, Timeout::Linger)));
        }

        #[test]
        fn linger_after_close_runs_from_our_fin() {
            let mut st = state(Writing::Shut, Reading::Discarding);
            st.since = 1_000;
            st.last_activity = 1_200;
            assert_eq!(st.next_timeout(&cfg()), Some((1_300, Timeout::Linger)));
        }

        #[test]
        fn shutdown_again_is_a_no_op() {
            let mut st = state(Writing::Shut, Reading::Open);
            st.shutdown_write();
            assert_eq!(st.writing, Writing::Shut);
        }
    }
}
