//! What handlers use: [`Conn`] (one connection) and [`Ctx`] (the reactor
//! as a callback sees it); and [`Outside`], their guard for host code.
//!
//! These are thin wrappers. Each request is recorded in the connection's
//! state and the connection is marked dirty; the reactor carries it out
//! after the callback returns. The one thing done at once is the
//! write-through of [`Conn::write`] when nothing is queued, so the common
//! case neither copies nor waits a loop iteration; any error it meets is
//! reported after the callback.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Duration;

use crate::closed::ProtocolError;
use crate::config::idle_ms;
use crate::core::{Control, Core};
use crate::error::Result;
use crate::handler::Handler;
use crate::state::Reading;
use crate::stats::Stats;
use crate::token::{ConnId, TimerId};
use crate::transport::{Addr, Connect, PeerCred};

/// One connection, as seen from inside a callback (or from
/// [`Reactor::conn`](crate::Reactor::conn)).
///
/// Requests take effect after the current callback returns, in the order
/// made. Through [`other`](Conn::other) and [`ctx`](Conn::ctx) a handler
/// reaches the other connections and the reactor, as a proxy needs.
pub struct Conn<'a> {
    core: &'a mut Core,
    key: usize,
}

impl fmt::Debug for Conn<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.core.state(self.key);
        f.debug_struct("Conn")
            .field("id", &self.id())
            .field("reading", &st.reading())
            .field("writing", &st.writing())
            .field("pending", &st.pending())
            .finish()
    }
}

impl<'a> Conn<'a> {
    pub(crate) fn new(core: &'a mut Core, key: usize) -> Self {
        Conn { core, key }
    }

    /// This connection's id.
    pub fn id(&self) -> ConnId {
        self.core.id_of(self.key)
    }

    /// The peer's address: [`Addr::Inet`] over TCP; over a Unix socket
    /// the name the peer bound, usually [`Addr::Unnamed`] for a client.
    ///
    /// # Errors
    ///
    /// `getpeername(2)` fails, for instance with `NotConnected` after a
    /// reset or before a connect completed.
    pub fn peer_addr(&self) -> io::Result<Addr> {
        self.core.stream(self.key).peer_addr()
    }

    /// Our address.
    ///
    /// # Errors
    ///
    /// `getsockname(2)` fails.
    pub fn local_addr(&self) -> io::Result<Addr> {
        self.core.stream(self.key).local_addr()
    }

    /// The credentials of the process at the other end of a Unix socket
    /// (`SO_PEERCRED`): its pid, uid and gid when it connected or listened.
    ///
    /// # Errors
    ///
    /// `Unsupported` over TCP; `getsockopt(2)` fails.
    pub fn peer_cred(&self) -> io::Result<PeerCred> {
        self.core.stream(self.key).peer_cred()
    }

    /// What the TLS handshake settled (protocol version, ALPN, SNI, the
    /// peer's certificates), on a TLS connection past its handshake
    /// (feature `tls`); `None` otherwise.
    #[cfg(feature = "tls")]
    pub fn tls(&self) -> Option<crate::TlsInfo> {
        self.core.stream(self.key).tls()
    }

    /// Set `TCP_NODELAY`: send small writes at once instead of waiting for
    /// the peer's ACK of earlier ones (Nagle's algorithm). A no-op on a
    /// Unix socket, which has no such delay. Other socket options can be
    /// set through the descriptor ([`AsFd`]), for example with
    /// `socket2::SockRef::from(&conn)`.
    ///
    /// # Errors
    ///
    /// `setsockopt(2)` fails.
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.core.stream(self.key).set_nodelay(nodelay)
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
    /// # Notes
    ///
    /// A write is refused, and never reaches the wire, after our own
    /// [`shutdown_write`](Conn::shutdown_write) or [`close`](Conn::close),
    /// after an abort or a socket error, and when it would pass
    /// [`Config::max_pending`](crate::Config::max_pending). `write` logs a
    /// refusal at debug level and returns nothing, because a handler rarely
    /// has anything better to do: it decided the close itself, or
    /// [`Handler::handle_error`] and [`Handler::handle_close`] tell it about
    /// the failure. A handler that needs to know uses
    /// [`try_write`](Conn::try_write).
    pub fn write(&mut self, data: &[u8]) {
        if let Err(e) = self.try_write(data) {
            log::debug!("{}: write of {} B refused: {e}", self.id(), data.len());
        }
    }

    /// [`write`](Conn::write), telling whether the bytes were taken.
    ///
    /// # Errors
    ///
    /// Nothing was written or queued:
    /// - [`Error::WriteAfterShutdown`](crate::Error::WriteAfterShutdown)
    ///   after our own [`shutdown_write`](Conn::shutdown_write) or
    ///   [`close`](Conn::close);
    /// - [`Error::Closed`](crate::Error::Closed) after an abort or a socket
    ///   error;
    /// - [`Error::QueueFull`](crate::Error::QueueFull) when
    ///   [`Config::max_pending`](crate::Config::max_pending) would be
    ///   passed.
    pub fn try_write(&mut self, data: &[u8]) -> Result<()> {
        self.core.write(self.key, data, false)
    }

    /// [`try_write`](Conn::try_write) the last bytes before our FIN: call
    /// [`close`](Conn::close), [`close_with`](Conn::close_with) or
    /// [`shutdown_write`](Conn::shutdown_write) next, in the same callback.
    ///
    /// On TCP the kernel holds a segment that is not full (`MSG_MORE`)
    /// until the FIN joins it: a short reply and the FIN leave in one
    /// segment, where `write` then `close` sends the reply and then a
    /// segment with the FIN alone, and the peer acknowledges each. What
    /// the peer receives is the same. Over Unix sockets and TLS this is
    /// [`try_write`](Conn::try_write).
    ///
    /// # Errors
    ///
    /// As [`try_write`](Conn::try_write).
    ///
    /// # Notes
    ///
    /// If no FIN is asked for in the same callback, the held segment is
    /// sent when the callback returns (clearing `TCP_CORK`: one more
    /// system call), so a misplaced `write_last` delays nothing.
    pub fn write_last(&mut self, data: &[u8]) -> Result<()> {
        self.core.write(self.key, data, true)
    }

    /// Bytes queued and not yet handed to the kernel.
    pub fn pending(&self) -> usize {
        self.core.state(self.key).pending()
    }

    /// Whether queued output passed the high-water mark; the handler should
    /// stop producing until [`Handler::handle_write`].
    pub fn is_write_blocked(&self) -> bool {
        self.pending() > self.core.config.write_high_water
    }

    /// Close our write half: FIN after all queued output; keep reading.
    ///
    /// Only the peer can close our read half: input goes on reaching
    /// [`Handler::handle_read`] until its FIN. A second call is a no-op, and
    /// the FIN is sent once. When the peer's FIN already arrived, the
    /// connection is complete once the queue drains and closes without a
    /// `shutdown` call.
    pub fn shutdown_write(&mut self) {
        let st = self.core.state_mut(self.key);
        if !st.is_failing() {
            st.shutdown_write();
            self.core.touch(self.key);
        }
    }

    /// Close lossless (the *lingering close*): stop delivering input, flush
    /// the queue, send FIN, read and discard until the peer's FIN or the
    /// linger timeout, then close the descriptor.
    ///
    /// Closing a socket with unread input makes the kernel send RST instead
    /// of FIN: the peer reads what had reached it, then gets `ECONNRESET`
    /// instead of EOF, and whatever of our reply had not left our kernel yet
    /// is lost. Reading to the peer's FIN first prevents that. When the
    /// peer's FIN already arrived and was read, `close(2)` alone sends our
    /// FIN and no `shutdown` call is made.
    ///
    /// A second call, or a call after [`abort`](Conn::abort), is a no-op.
    pub fn close(&mut self) {
        let st = self.core.state_mut(self.key);
        let reason = st.graceful_reason();
        st.close(reason);
        self.core.touch(self.key);
    }

    /// [`close`](Conn::close) without the lingering read, for a protocol in
    /// which the peer said it sends nothing more (an HTTP/1.1 request with
    /// `Connection: close`, read to its end): the queue is flushed, then
    /// `close(2)` sends our FIN at once, without waiting for the peer's.
    ///
    /// Lossless while the peer keeps its word: nothing is unread, so the
    /// close sends FIN, not RST. If input the reactor has seen is unread,
    /// or input is announced before the queue drains, it is discarded and
    /// the close lingers as [`close`](Conn::close) does. Over TLS,
    /// `close_notify` must go first, and the close lingers.
    ///
    /// # Notes
    ///
    /// Input that reaches our kernel after the last event the reactor read
    /// (and before the descriptor is closed), or after the close, gets a
    /// RST from our kernel. A Linux peer still reads what it had received,
    /// but then `ECONNRESET` where it would have read end of file, and a
    /// peer whose stack drops its receive queue on a RST (RFC 793 allows
    /// it) can lose the end of our reply: that is the risk the lingering
    /// close takes away, and the reason this is not the default. A peer
    /// that breaks its word meets it: the HTTP example does not use this
    /// for `Connection: close`, since a hostile client may send on.
    pub fn close_promptly(&mut self) {
        let st = self.core.state_mut(self.key);
        let reason = st.graceful_reason();
        st.close_promptly(reason);
        self.core.touch(self.key);
    }

    /// [`close`](Conn::close), ending with
    /// [`Reason::Protocol`](crate::Reason::Protocol): the handler says why it
    /// gave up on the peer (an oversized frame, a malformed request). Queued
    /// output, such as an error reply, is still delivered.
    pub fn close_with(&mut self, err: ProtocolError) {
        self.core
            .state_mut(self.key)
            .close(crate::Reason::Protocol(err));
        self.core.touch(self.key);
    }

    /// Reset the connection now: `SO_LINGER` 0 and `close(2)`, so one RST is
    /// sent and the peer's reads fail with `ECONNRESET`. Queued output is
    /// dropped and counted in [`Closed::dropped`](crate::Closed::dropped).
    /// Overrides a graceful close still in progress.
    ///
    /// # Notes
    ///
    /// A Unix socket has no reset: it is closed at once all the same, its
    /// queued output dropped and counted, and the peer reads end of file
    /// (or `ECONNRESET`, if bytes it sent were left unread here).
    pub fn abort(&mut self) {
        self.core.state_mut(self.key).abort(crate::Reason::Aborted);
        self.core.touch(self.key);
    }

    /// Stop delivering input. The kernel keeps buffering (and its window
    /// closes, pushing back on the peer); a FIN that arrives meanwhile is
    /// held and delivered after [`resume_reading`](Conn::resume_reading).
    pub fn pause_reading(&mut self) {
        self.core.state_mut(self.key).pause();
    }

    /// Deliver input again, starting with what arrived while paused.
    pub fn resume_reading(&mut self) {
        if self.core.state_mut(self.key).resume() {
            self.core.touch(self.key);
        }
    }

    /// Whether input is paused.
    pub fn is_reading_paused(&self) -> bool {
        self.core.state(self.key).reading() == Reading::Paused
    }

    /// Whether writes are accepted: connected or connecting, no
    /// `shutdown_write`, `close` or failure yet.
    pub fn may_send(&self) -> bool {
        self.core.state(self.key).write_refusal().is_none()
    }

    /// Whether input may still reach [`Handler::handle_read`]: the peer has
    /// not sent FIN and we did not close.
    pub fn may_recv(&self) -> bool {
        matches!(
            self.core.state(self.key).reading(),
            Reading::Open | Reading::Paused
        )
    }

    /// Whether the peer's FIN has been read.
    pub fn is_read_closed(&self) -> bool {
        self.core.state(self.key).reading() == Reading::Eof
    }

    /// Whether an outbound connect is still in flight.
    pub fn is_connecting(&self) -> bool {
        self.core.state(self.key).writing().is_connecting()
    }

    /// Call [`Handler::handle_timer`] once, after `after`. Timers have
    /// millisecond resolution and die with the connection.
    pub fn set_timer(&mut self, after: Duration) -> TimerId {
        self.core.set_timer(self.key, after)
    }

    /// Cancel a timer of this connection; false if it already fired, was
    /// cancelled, or belongs to another connection.
    pub fn cancel_timer(&mut self, timer: TimerId) -> bool {
        self.core.cancel_timer(self.key, timer)
    }

    /// Replace this connection's idle timeout (`None` disables it). The
    /// connection then keeps its own in a small allocation, which it
    /// shares with its output queue; the configured one costs nothing per
    /// connection.
    pub fn set_idle_timeout(&mut self, timeout: Option<Duration>) {
        self.core.state_mut(self.key).set_idle_ms(idle_ms(timeout));
        self.core.touch(self.key);
    }

    /// Another open connection, by id; `None` once it closed.
    pub fn other(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.core.conn(id)
    }

    /// The reactor, to reach other connections, connect, or stop it.
    pub fn ctx(&mut self) -> Ctx<'_> {
        Ctx::new(self.core)
    }
}

impl AsFd for Conn<'_> {
    /// The connection's socket, to read or set options the API does not
    /// cover (keep-alive, buffer sizes). Do not read, write, shut down or
    /// close it: the reactor owns it.
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.core.stream(self.key).as_fd()
    }
}

/// The reactor as seen from a callback: other connections, new outbound
/// connections, stop and drain.
pub struct Ctx<'a> {
    core: &'a mut Core,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("core", &self.core).finish()
    }
}

impl<'a> Ctx<'a> {
    pub(crate) fn new(core: &'a mut Core) -> Self {
        Ctx { core }
    }

    /// An open connection, by id; `None` once it closed (even if its slot
    /// now holds another connection).
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.core.conn(id)
    }

    /// Start a non-blocking outbound connection handled by `handler`; `to`
    /// is a [`SocketAddr`](std::net::SocketAddr), a [`Connect`] (a Unix socket, a
    /// source address) or a `&str` that parses as an [`Addr`].
    ///
    /// Exactly one outcome follows, after this callback returns:
    /// [`Handler::handle_connect`] when the connect completes, or
    /// [`Handler::handle_error`] (refused, unreachable, timed out), then
    /// [`Handler::handle_close`] in either case. Writes made before the
    /// connect completes are queued and sent after it, in order.
    ///
    /// # Errors
    ///
    /// Creating, binding or registering the socket failed (`EMFILE`,
    /// `AddrInUse`, `AddrNotAvailable`); `InvalidInput`: the reactor keeps
    /// handlers of another type inline
    /// ([`Reactor::with_inline_handlers`](crate::Reactor::with_inline_handlers)).
    /// The handler is then dropped and gets no callback.
    pub fn connect<H: Handler + 'static>(
        &mut self,
        to: impl Into<Connect>,
        handler: H,
    ) -> io::Result<ConnId> {
        self.core.connect(to.into(), handler)
    }

    /// Make [`Reactor::run`](crate::Reactor::run) return after this
    /// iteration. Connections stay open.
    pub fn stop(&mut self) {
        self.core.control = Control::Stopping;
    }

    /// Start a graceful drain; see [`Reactor::drain`](crate::Reactor::drain).
    pub fn drain(&mut self, timeout: Duration) {
        self.core.request_drain(timeout);
    }

    /// The reactor's counters and gauges.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Whether `id` names an open connection.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.core.live(id).is_some()
    }
}

/// A [`Conn`] or [`Ctx`] handed to code outside any callback
/// ([`Reactor::conn`](crate::Reactor::conn), [`Reactor::ctx`](crate::Reactor::ctx)):
/// it dereferences to the one inside, and when it is dropped the requests
/// made through it are carried out at once (a write queued, a FIN, a close,
/// an abort, a connect), instead of at the reactor's next event.
#[derive(Debug)]
pub struct Outside<T: Applies>(T);

/// What [`Outside`] can hold.
pub trait Applies: sealed::Sealed {}

impl Applies for Conn<'_> {}
impl Applies for Ctx<'_> {}

mod sealed {
    pub trait Sealed {
        /// Carry out the requests recorded so far.
        fn apply(&mut self);
    }
    impl Sealed for super::Conn<'_> {
        fn apply(&mut self) {
            self.core.apply_dirty();
        }
    }
    impl Sealed for super::Ctx<'_> {
        fn apply(&mut self) {
            self.core.apply_dirty();
        }
    }
}

impl<T: Applies> Outside<T> {
    pub(crate) fn new(inner: T) -> Self {
        Outside(inner)
    }
}

impl<T: Applies> std::ops::Deref for Outside<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: Applies> std::ops::DerefMut for Outside<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T: Applies + AsFd> AsFd for Outside<T> {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }
}

impl<T: Applies> Drop for Outside<T> {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            sealed::Sealed::apply(&mut self.0);
        }
    }
}
