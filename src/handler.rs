//! The `Handler` trait, what the peer's FIN means (`Eof`), and how a
//! connection ended (`Closed`, `Reason`).

use std::fmt;
use std::io;

use crate::conn::{Conn, Ctx};
use crate::token::ConnId;

/// What the peer's FIN means to this protocol; returned by
/// [`Handler::handle_readable_eof`].
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Eof {
    /// The peer is gone (asyncore, asyncio and Node.js treat a readable
    /// socket with no data this way). Lossless: output already queued is
    /// flushed, then our FIN, then the descriptor is closed. As our receive
    /// queue is empty at EOF, `close(2)` alone sends the FIN; no `shutdown`.
    #[default]
    Close,
    /// The peer only stopped sending (`shutdown(SHUT_WR)` on its side). Our
    /// write half stays open until the handler calls
    /// [`Conn::shutdown_write`] or [`Conn::close`], possibly much later.
    /// The peer-EOF timeout guards against holding it forever.
    HalfClose,
    /// Send a reset now: queued output is dropped and counted, the peer's
    /// next read fails with `ECONNRESET`.
    Abort,
}

/// The callbacks of one connection.
///
/// Every callback receives a [`Conn`] for its connection. A close, abort or
/// pause requested through it takes effect after the callback returns; no
/// callback runs re-entrantly, and [`handle_close`](Handler::handle_close)
/// runs exactly once, last, never from inside another callback of the same
/// connection.
///
/// A panic in any callback aborts that connection only (reason
/// [`Reason::Panicked`]), is logged with `log::error!`, and the reactor goes
/// on.
pub trait Handler {
    /// The connection is established: accepted by a listener, or an
    /// outbound connect completed.
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// Bytes arrived. `data` borrows the reactor's shared read buffer and is
    /// valid only for this call.
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]);

    /// The peer sent FIN, after every byte it sent before it was delivered to
    /// [`handle_read`](Handler::handle_read). Called exactly once, never while
    /// reading is paused (the EOF is held until
    /// [`Conn::resume_reading`]), never after an error. Returns what the FIN
    /// means for this protocol; the default is [`Eof::Close`].
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let _ = conn;
        Eof::Close
    }

    /// The output queue drained to the low-water mark after it had passed
    /// the high-water mark ([`Conn::is_write_blocked`] was true): time to
    /// resume producing (Node.js `'drain'`, asyncio `resume_writing`). Not
    /// called once writes are refused (after `shutdown_write` or `close`).
    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The connection failed: reset by the peer (`ConnectionReset`,
    /// `BrokenPipe`), connect refused or timed out, or another socket error.
    /// Called at most once; the connection is closed right after it and
    /// writes are refused.
    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        let _ = (conn, err);
    }

    /// A timer set with [`Conn::set_timer`] expired.
    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        let _ = (conn, timer);
    }

    /// The reactor started a graceful drain ([`Reactor::drain`](crate::Reactor::drain)):
    /// listeners are closed and open connections should finish. A protocol
    /// closes here what it can close without losing anything (an idle
    /// keep-alive connection, a connection between requests). The default
    /// does nothing: the connection goes on until it ends by itself or the
    /// drain deadline aborts it.
    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// The connection is gone and its descriptor closed. Called exactly
    /// once, last. `ctx` reaches the other connections (a proxy closes its
    /// other half here).
    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        let _ = (ctx, closed);
    }
}

impl fmt::Debug for dyn Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("dyn Handler")
    }
}

/// Names a timer set with [`Conn::set_timer`].
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct TimerId(pub(crate) u64);

/// Which timeout expired.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Timeout {
    /// No progress in either direction for the idle timeout.
    Idle,
    /// The peer sent FIN and we did not finish in time (the CLOSE_WAIT guard).
    PeerEof,
    /// We sent FIN and the peer did not answer with its own in time (the
    /// FIN_WAIT_2 guard).
    Linger,
    /// An outbound connect did not complete in time.
    Connect,
}

/// A protocol-level failure a handler closes a connection with
/// ([`Conn::close_with`]).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum ProtocolError {
    /// A frame or line grew past its configured maximum.
    FrameTooLarge,
    /// The peer's FIN arrived in the middle of a frame.
    IncompleteFrame,
    /// The peer sent something the protocol cannot parse.
    Malformed,
}

/// Why a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Reason {
    /// We ended it gracefully first: [`Conn::close`] or
    /// [`Conn::shutdown_write`] before the peer's FIN.
    Local,
    /// The peer's FIN came first and we finished in response
    /// ([`Eof::Close`], or a half-closed exchange completed).
    PeerClosed,
    /// The peer reset the connection (`ECONNRESET`, `EPIPE`).
    Reset,
    /// A timeout expired. When a close begun by one timeout (idle,
    /// peer-EOF) then runs into the linger timeout, the first one is named.
    TimedOut(Timeout),
    /// Another socket error, such as `ConnectionRefused`.
    Error(io::ErrorKind),
    /// We sent a reset: [`Conn::abort`] or [`Eof::Abort`].
    Aborted,
    /// A callback of the handler panicked; the connection was aborted.
    Panicked,
    /// The reactor stopped or its drain deadline passed with the connection
    /// still open.
    Stopped,
    /// The handler closed it for a protocol error ([`Conn::close_with`]).
    Protocol(ProtocolError),
}

impl Reason {
    /// The reason a socket error is reported with.
    pub(crate) fn from_error(err: &io::Error) -> Reason {
        match err.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::ConnectionAborted => Reason::Reset,
            kind => Reason::Error(kind),
        }
    }

    /// Whether this is an orderly end with nothing lost.
    pub fn is_graceful(&self) -> bool {
        matches!(self, Reason::Local | Reason::PeerClosed)
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Local => f.write_str("closed locally"),
            Reason::PeerClosed => f.write_str("closed by peer"),
            Reason::Reset => f.write_str("reset by peer"),
            Reason::TimedOut(t) => write!(f, "timed out ({t:?})"),
            Reason::Error(k) => write!(f, "error: {k}"),
            Reason::Aborted => f.write_str("aborted"),
            Reason::Panicked => f.write_str("handler panicked"),
            Reason::Stopped => f.write_str("reactor stopped"),
            Reason::Protocol(p) => write!(f, "protocol error: {p:?}"),
        }
    }
}

/// How a connection ended; passed to [`Handler::handle_close`].
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct Closed {
    /// The connection's id (stale from now on).
    pub id: ConnId,
    /// Why it ended.
    pub reason: Reason,
    /// Bytes received from the peer.
    pub bytes_in: u64,
    /// Bytes handed to the kernel for the peer.
    pub bytes_out: u64,
    /// Bytes the handler wrote that never reached the kernel: queued output
    /// dropped by an abort, an error or a timeout. 0 on every lossless path.
    pub dropped: u64,
}
