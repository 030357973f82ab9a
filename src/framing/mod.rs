//! asynchat-style framing: a sans-IO [`Framer`] that cuts a byte stream into
//! frames at a [`Terminator`], and [`Framed`], which turns a
//! [`FrameHandler`] (whole frames in, replies out) into a
//! [`Handler`](crate::Handler). Its failures are one [`Error`]: a frame over
//! the limit, or a stream that ended inside a frame.
//!
//! A terminator is a byte string (`\r\n`, `qqq`), a byte count, a length
//! prefix, or the end of the stream. It can change between frames: the
//! frame callback gets the terminator that ended the frame and may assign
//! the one for the next (asynchat's `set_terminator` from inside
//! `found_terminator`), so a header line can announce a body of `n` bytes.
//! Every framer has a required limit, `max_frame`; a frame that grows past
//! it fails with [`Error::FrameTooLarge`] before more than about
//! `max_frame` bytes are held, so a peer that never sends the terminator
//! cannot make a connection grow without bound.
//!
//! # Examples
//!
//! Sans-IO: feed bytes as they arrive, however the reads split them.
//!
//! ```
//! use halfclose::framing::{Error, Framer, Terminator};
//!
//! let mut framer = Framer::new(Terminator::CRLF, 1024);
//! let mut frames = Vec::new();
//! framer.feed(b"hello wor", |frame, _| frames.push(frame.to_vec()))?;
//! framer.feed(b"ld\r\n\r\nbye\r", |frame, _| frames.push(frame.to_vec()))?;
//! // The empty record between the two terminators is a record.
//! assert_eq!(frames, [b"hello world".to_vec(), Vec::new()]);
//! // The stream ended in the middle of a frame.
//! let err = framer.finish(|frame, _| frames.push(frame.to_vec())).unwrap_err();
//! assert_eq!(err, Error::Incomplete { partial: b"bye\r".to_vec() });
//! # Ok::<(), halfclose::framing::Error>(())
//! ```
//!
//! A server: `PUT <n>` on a line, then `n` bytes of body; the reply is the
//! body's length. The header's frame switches the terminator to
//! [`Terminator::Len`], the body's frame switches it back.
//!
//! ```no_run
//! use halfclose::framing::{FrameHandler, Framed, Terminator};
//! use halfclose::{Conn, ProtocolError, Reactor};
//!
//! struct Put;
//!
//! impl FrameHandler for Put {
//!     fn found_frame(&mut self, conn: &mut Conn<'_>, frame: &[u8], terminator: &mut Terminator) {
//!         if let Terminator::Len(n) = *terminator {
//!             // The body.
//!             conn.write(format!("got {n} bytes\n").as_bytes());
//!             *terminator = Terminator::LF;
//!             return;
//!         }
//!         let header = std::str::from_utf8(frame).unwrap_or("");
//!         match header.strip_prefix("PUT ").and_then(|n| n.trim().parse().ok()) {
//!             Some(n) if n <= 1 << 20 => *terminator = Terminator::Len(n),
//!             _ => {
//!                 conn.write(b"ERROR: expected PUT <n> (n <= 1048576)\n");
//!                 conn.close_with(ProtocolError::Malformed);
//!             }
//!         }
//!     }
//!
//!     fn frame_too_large(&mut self, conn: &mut Conn<'_>, _limit: usize) {
//!         conn.write(b"ERROR: header line too long\n");
//!     }
//! }
//!
//! let mut reactor = Reactor::new()?;
//! reactor.listen("127.0.0.1:0", || Framed::new(Put, Terminator::LF, 1 << 20))?;
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Notes
//!
//! asynchat's names, and what stands for each here:
//!
//! | asynchat | here |
//! |---|---|
//! | `async_chat` | [`Framed`], a [`Handler`](crate::Handler) around a [`FrameHandler`]; [`Framer`] alone, sans-IO |
//! | `collect_incoming_data(data)` | nothing to write: the framer collects the pieces of a frame itself |
//! | `found_terminator()` | [`FrameHandler::found_frame`], given the whole frame |
//! | `set_terminator(t)` | `*terminator = t` in [`found_frame`](FrameHandler::found_frame); the first one in [`Framed::new`] |
//! | `get_terminator()` | [`Framer::terminator`], through [`Framed::framer`] |
//! | `push(data)` | [`Conn::write`](crate::Conn::write) |
//! | `close_when_done()` | [`Conn::close`](crate::Conn::close) after the last write: what is queued is flushed before the FIN |
//!
//! What differs from CPython's `asynchat`, and why:
//!
//! | | asynchat | here |
//! |---|---|---|
//! | delivery | pieces through `collect_incoming_data`, then `found_terminator` | the whole frame, in one call |
//! | limit | none: a missing terminator buffers without bound | required `max_frame`, [`Error::FrameTooLarge`] |
//! | integer terminator | counts down once, then is 0, which collects everything | [`Len`](Terminator::Len) stays until changed: fixed-size records |
//! | `Len(0)` | 0 is falsy: collects everything | one empty frame at once (a `Content-Length: 0` body) |
//! | `None` / [`Eof`](Terminator::Eof) | data goes to `collect_incoming_data`; no `found_terminator` | one frame at EOF, empty if nothing came |
//! | partial frame at EOF | not reported (its pieces already went to `collect_incoming_data`) | reported: [`Error::Incomplete`], [`ProtocolError::IncompleteFrame`](crate::ProtocolError::IncompleteFrame) |
//!
//! An empty byte terminator collects until EOF, as asynchat's `b""` does.
//! The limit is a property of the frame, not of the reads: a frame longer
//! than `max_frame` fails even when it arrives whole in one read, so
//! however the stream is split, the same frames and the same error result.
//!
//! A byte terminator is searched for with `memchr`: the byte itself for a
//! one-byte terminator, a `memmem` searcher, built once per terminator, for
//! a longer one.

#![doc(alias = "asynchat")]

mod adapter;
mod error;
mod framer;
mod terminator;

pub use adapter::{FrameHandler, Framed};
pub use error::Error;
pub use framer::Framer;
pub use terminator::{Prefix, Terminator};
