//! The framing layer's error type.

use std::fmt;
use std::io;

/// Why the framer could not cut the stream into frames; returned by
/// [`Framer::feed`](super::Framer::feed) (a frame over the limit) and
/// [`Framer::finish`](super::Framer::finish) (the stream ended inside a
/// frame).
///
/// End of stream between two frames is not an error.
///
/// # Examples
///
/// ```
/// use halfclose::framing::{Error, Framer, Terminator};
///
/// let mut framer = Framer::new(Terminator::LF, 4);
/// let err = framer.feed(b"hello\n", |_, _| {}).unwrap_err();
/// assert_eq!(err, Error::FrameTooLarge { limit: 4 });
/// assert_eq!(std::io::Error::from(err).kind(), std::io::ErrorKind::InvalidData);
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A frame is longer than the framer's `max_frame`: its terminator did
    /// not come within the limit, or its announced length is over it. The
    /// stream cannot be resynchronised; the framer refuses further input
    /// until [`finish`](super::Framer::finish).
    FrameTooLarge {
        /// The framer's limit in bytes.
        limit: usize,
    },
    /// The stream ended (the peer's FIN) in the middle of a frame.
    Incomplete {
        /// The bytes received since the last frame ended (for a byte
        /// terminator, a partial terminator included; for a length prefix,
        /// the prefix).
        partial: Vec<u8>,
    },
}

/// The partial frame may be up to `max_frame` bytes: shown by its length.
impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FrameTooLarge { limit } => f
                .debug_struct("FrameTooLarge")
                .field("limit", limit)
                .finish(),
            Error::Incomplete { partial } => f
                .debug_struct("Incomplete")
                .field("len", &partial.len())
                .finish(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::FrameTooLarge { limit } => {
                write!(f, "frame exceeds the maximum of {limit} bytes")
            }
            Error::Incomplete { partial } => write!(
                f,
                "stream ended inside a frame ({} bytes received)",
                partial.len()
            ),
        }
    }
}

impl std::error::Error for Error {}

/// `FrameTooLarge` is [`InvalidData`](io::ErrorKind::InvalidData),
/// `Incomplete` is [`UnexpectedEof`](io::ErrorKind::UnexpectedEof).
impl From<Error> for io::Error {
    fn from(e: Error) -> Self {
        let kind = match e {
            Error::FrameTooLarge { .. } => io::ErrorKind::InvalidData,
            Error::Incomplete { .. } => io::ErrorKind::UnexpectedEof,
        };
        io::Error::new(kind, e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_too_large_is_invalid_data_and_names_the_limit() {
        let e = Error::FrameTooLarge { limit: 4096 };
        assert_eq!(e.to_string(), "frame exceeds the maximum of 4096 bytes");
        let io = io::Error::from(e.clone());
        assert_eq!(io.kind(), io::ErrorKind::InvalidData);
        let inner = io.get_ref().and_then(|i| i.downcast_ref::<Error>());
        assert_eq!(inner, Some(&e), "the framing error is kept inside");
    }

    #[test]
    fn incomplete_is_unexpected_eof_and_counts_its_bytes() {
        let e = Error::Incomplete {
            partial: b"two\r".to_vec(),
        };
        assert_eq!(
            e.to_string(),
            "stream ended inside a frame (4 bytes received)"
        );
        assert_eq!(io::Error::from(e).kind(), io::ErrorKind::UnexpectedEof);
    }

    /// A partial frame can be as large as the limit: `Debug` (what a log
    /// line or a failed `assert_eq!` prints) shows its length, not its bytes.
    #[test]
    fn debug_shows_the_length_of_a_partial_frame_not_its_bytes() {
        let e = Error::Incomplete {
            partial: vec![b'x'; 1000],
        };
        assert_eq!(format!("{e:?}"), "Incomplete { len: 1000 }");
        let e = Error::FrameTooLarge { limit: 8 };
        assert_eq!(format!("{e:?}"), "FrameTooLarge { limit: 8 }");
    }
}
