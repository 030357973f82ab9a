//! The crate's error type: why a request was refused.

use std::fmt;
use std::io;

/// Why a request made through [`Conn`](crate::Conn), or a
/// [`Config`](crate::Config), was refused. Failures of the operating system
/// are [`io::Error`]s: returned by the reactor's own calls, and reported to
/// [`Handler::handle_error`](crate::Handler::handle_error) for a
/// connection.
///
/// End of file is not an error: it reaches
/// [`Handler::handle_readable_eof`](crate::Handler::handle_readable_eof).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub enum Error {
    /// A write after our own `shutdown_write` or `close`: our FIN is queued
    /// or sent, so the bytes were refused and never reach the wire.
    WriteAfterShutdown,
    /// The connection has failed, was aborted, or is being torn down; the
    /// bytes were refused.
    Closed,
    /// A [`Config`](crate::Config) setting is out of range or contradicts
    /// another; says which.
    InvalidConfig(&'static str),
    /// Queuing these bytes would take the output queue past
    /// [`Config::max_pending`](crate::Config::max_pending); nothing was queued.
    QueueFull {
        /// The configured limit in bytes.
        limit: usize,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::WriteAfterShutdown => {
                f.write_str("write after shutdown: our FIN is already queued")
            }
            Error::Closed => f.write_str("connection is closed or closing"),
            Error::InvalidConfig(why) => write!(f, "invalid configuration: {why}"),
            Error::QueueFull { limit } => {
                write!(f, "output queue would exceed its limit of {limit} bytes")
            }
        }
    }
}

impl std::error::Error for Error {}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::WriteAfterShutdown => io::ErrorKind::BrokenPipe,
            Error::Closed => io::ErrorKind::NotConnected,
            Error::InvalidConfig(_) => io::ErrorKind::InvalidInput,
            Error::QueueFull { .. } => io::ErrorKind::OutOfMemory,
        };
        io::Error::new(kind, e)
    }
}

/// A shorthand for `std::result::Result<T, halfclose::Error>`.
pub type Result<T> = std::result::Result<T, Error>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_after_shutdown_maps_to_broken_pipe() {
        let e: io::Error = Error::WriteAfterShutdown.into();
        assert_eq!(e.kind(), io::ErrorKind::BrokenPipe);
        assert!(e.to_string().contains("shutdown"));
    }

    #[test]
    fn each_refusal_says_what_it_is() {
        assert!(Error::QueueFull { limit: 10 }
            .to_string()
            .contains("10 bytes"));
        assert!(Error::InvalidConfig("read_budget is 0")
            .to_string()
            .contains("read_budget"));
        let e: io::Error = Error::Closed.into();
        assert_eq!(e.kind(), io::ErrorKind::NotConnected);
    }
}
