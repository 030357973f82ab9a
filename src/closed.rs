//! How a connection ended: [`Closed`], its [`Reason`], which [`Timeout`]
//! expired, and the [`ProtocolError`] a handler can close with.

use std::fmt;
use std::io;

use crate::token::ConnId;

/// Which timeout expired.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
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
    /// A TLS handshake did not complete in time.
    Handshake,
}

impl fmt::Display for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Timeout::Idle => "idle timeout",
            Timeout::PeerEof => "peer-EOF timeout",
            Timeout::Linger => "linger timeout",
            Timeout::Connect => "connect timeout",
            Timeout::Handshake => "handshake timeout",
        })
    }
}

/// A protocol-level failure a handler closes a connection with
/// ([`Conn::close_with`](crate::Conn::close_with)).
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

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtocolError::FrameTooLarge => "frame too large",
            ProtocolError::IncompleteFrame => "incomplete frame at end of stream",
            ProtocolError::Malformed => "malformed input",
        })
    }
}

/// Why a connection ended.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Reason {
    /// We ended it gracefully first: [`Conn::close`](crate::Conn::close) or
    /// [`Conn::shutdown_write`](crate::Conn::shutdown_write) before the
    /// peer's FIN.
    Local,
    /// The peer's FIN came first and we finished in response
    /// ([`Eof::Close`](crate::Eof::Close), or a half-closed exchange
    /// completed).
    PeerClosed,
    /// The peer reset the connection: a read or write failed with
    /// `ECONNRESET` or `EPIPE`.
    Reset,
    /// A timeout expired. When a close begun by one timeout (idle,
    /// peer-EOF) then runs into the linger timeout, the first one is named.
    TimedOut(Timeout),
    /// Another socket error, such as `ConnectionRefused`.
    Error(io::ErrorKind),
    /// We sent a reset: [`Conn::abort`](crate::Conn::abort) or
    /// [`Eof::Abort`](crate::Eof::Abort).
    Aborted,
    /// A callback of the handler panicked; the connection was aborted.
    Panicked,
    /// The reactor was dropped, or its drain deadline passed, with the
    /// connection still open; it was aborted.
    Stopped,
    /// The handler closed it for a protocol error
    /// ([`Conn::close_with`](crate::Conn::close_with)).
    Protocol(ProtocolError),
    /// TLS: the peer's stream ended with a TCP FIN but no `close_notify`,
    /// so what came may be cut short, and the handler did not accept it
    /// ([`Handler::handle_truncated_eof`](crate::Handler::handle_truncated_eof));
    /// `handle_error` had `UnexpectedEof`.
    Truncated,
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
            Reason::TimedOut(t) => write!(f, "timed out ({t})"),
            Reason::Error(k) => write!(f, "error: {k}"),
            Reason::Aborted => f.write_str("aborted"),
            Reason::Panicked => f.write_str("handler panicked"),
            Reason::Stopped => f.write_str("reactor stopped"),
            Reason::Protocol(p) => write!(f, "protocol error: {p}"),
            Reason::Truncated => f.write_str("truncated: end of stream without close_notify"),
        }
    }
}

/// How a connection ended; passed to
/// [`Handler::handle_close`](crate::Handler::handle_close).
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
    /// Bytes the handler wrote that never left our user-space queue:
    /// queued output dropped by an abort, an error or a timeout. 0 on every
    /// lossless path. Bytes already handed to the kernel are not counted
    /// here, even when an abort's RST makes the kernel discard them.
    pub dropped: u64,
}

impl fmt::Display for Closed {
    /// `#3.0 closed by peer (in 12 B, out 40 B, dropped 0 B)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} (in {} B, out {} B, dropped {} B)",
            self.id, self.reason, self.bytes_in, self.bytes_out, self.dropped
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_and_broken_pipe_are_both_a_reset() {
        for kind in [io::ErrorKind::ConnectionReset, io::ErrorKind::BrokenPipe] {
            assert_eq!(Reason::from_error(&kind.into()), Reason::Reset);
        }
        assert_eq!(
            Reason::from_error(&io::ErrorKind::ConnectionRefused.into()),
            Reason::Error(io::ErrorKind::ConnectionRefused)
        );
    }

    #[test]
    fn closed_displays_id_reason_and_counts() {
        let closed = Closed {
            id: ConnId::new_for_test(3, 1),
            reason: Reason::TimedOut(Timeout::Idle),
            bytes_in: 12,
            bytes_out: 40,
            dropped: 0,
        };
        assert_eq!(
            closed.to_string(),
            "#3.1 timed out (idle timeout) (in 12 B, out 40 B, dropped 0 B)"
        );
    }
}
