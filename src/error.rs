//! The crate's error type.

use std::fmt;
use std::io;

/// What went wrong with a request made through [`Conn`](crate::Conn) or the
/// [`Reactor`](crate::Reactor).
///
/// End of file is not an error: it reaches
/// [`Handler::handle_readable_eof`](crate::Handler::handle_readable_eof).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// An operating-system call failed.
    Io(io::Error),
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
            Error::Io(e) => write!(f, "I/O error: {e}"),
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Io(e) => e,
            Error::WriteAfterShutdown => io::Error::new(io::ErrorKind::BrokenPipe, e),
            Error::Closed => io::Error::new(io::ErrorKind::NotConnected, e),
            Error::InvalidConfig(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            Error::QueueFull { .. } => io::Error::new(io::ErrorKind::OutOfMemory, e),
        }
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
    fn io_error_is_the_source() {
        let e = Error::Io(io::Error::from(io::ErrorKind::ConnectionReset));
        assert!(std::error::Error::source(&e).is_some());
        assert!(std::error::Error::source(&Error::Closed).is_none());
    }
}
