//! The [`Handler`] trait, and what the peer's FIN means ([`Eof`]).

use std::fmt;
use std::io;

use crate::closed::Closed;
use crate::conn::{Conn, Ctx};
use crate::token::TimerId;

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

/// What an end of stream that is not authenticated means to this protocol;
/// returned by [`Handler::handle_truncated_eof`].
///
/// Over TLS the peer's end is `close_notify`, an authenticated message; a
/// TCP FIN without it may be an attacker (or a middlebox) cutting the
/// stream short. Whether that matters is the protocol's to say: HTTP with a
/// `Content-Length` knows when the body is complete and may accept it; a
/// body delimited by the end of the stream must not.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default)]
pub enum Truncated {
    /// Treat it as an error (the default): [`Handler::handle_error`] gets
    /// `UnexpectedEof`, and the connection ends with
    /// [`Reason::Truncated`](crate::Reason::Truncated); queued output is
    /// dropped and counted.
    #[default]
    Fail,
    /// Accept it as the peer's end and decide as for a FIN.
    Accept(Eof),
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
/// [`Reason::Panicked`](crate::Reason::Panicked)), is logged with `log::error!`, and the reactor goes
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
    ///
    /// # Notes
    ///
    /// Requests made through `conn` inside this callback are applied first,
    /// then the returned `Eof`, under the one rule that decides how every
    /// connection ends: a reset outranks a graceful close, and a close
    /// already begun keeps its reason. So `conn.abort()` wins over any
    /// return value; `conn.close()` or `conn.close_with(..)` followed by
    /// `Eof::HalfClose` still closes (with the close's reason); and
    /// `Eof::Abort` resets even after `conn.close()`.
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let _ = conn;
        Eof::Close
    }

    /// TLS only: the peer's TCP FIN came without `close_notify`, after
    /// every byte before it was delivered: the stream may have been cut
    /// short. Called instead of
    /// [`handle_readable_eof`](Handler::handle_readable_eof), under the
    /// same rules (exactly once, never while paused). The default,
    /// [`Truncated::Fail`], treats it as an error; a protocol that can tell
    /// a complete message by itself may return
    /// [`Truncated::Accept`].
    fn handle_truncated_eof(&mut self, conn: &mut Conn<'_>) -> Truncated {
        let _ = conn;
        Truncated::Fail
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
