//! asynchat-style framing: a sans-IO [`Framer`] that cuts a byte stream into
//! frames at a [`Terminator`], and [`Framed`], which turns a
//! [`FrameHandler`] (whole frames in, replies out) into a [`Handler`].
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
//! use halfclose::chat::{Framer, Terminator};
//!
//! let mut framer = Framer::new(Terminator::CRLF, 1024);
//! let mut frames = Vec::new();
//! framer.feed(b"hello wor", |frame, _| frames.push(frame.to_vec()))?;
//! framer.feed(b"ld\r\n\r\nbye\r", |frame, _| frames.push(frame.to_vec()))?;
//! // The empty record between the two terminators is a record.
//! assert_eq!(frames, [b"hello world".to_vec(), Vec::new()]);
//! // The stream ended in the middle of a frame.
//! let incomplete = framer.finish(|frame, _| frames.push(frame.to_vec())).unwrap_err();
//! assert_eq!(incomplete.partial(), b"bye\r");
//! # Ok::<(), halfclose::Error>(())
//! ```
//!
//! A server: `PUT <n>` on a line, then `n` bytes of body; the reply is the
//! body's length. The header's frame switches the terminator to
//! [`Terminator::Len`], the body's frame switches it back.
//!
//! ```no_run
//! use halfclose::chat::{FrameHandler, Framed, Terminator};
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
//! reactor.listen("127.0.0.1:0".parse()?, || Framed::new(Put, Terminator::LF, 1 << 20))?;
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Notes
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
//! | partial frame at EOF | not reported (its pieces already went to `collect_incoming_data`) | reported: [`Incomplete`], [`ProtocolError::IncompleteFrame`] |
//!
//! An empty byte terminator collects until EOF, as asynchat's `b""` does.
//! The limit is a property of the frame, not of the reads: a frame longer
//! than `max_frame` fails even when it arrives whole in one read, so
//! however the stream is split, the same frames and the same error result.

use std::borrow::Cow;
use std::fmt;
use std::io;
use std::mem;

use crate::conn::{Conn, Ctx};
use crate::error::{Error, Result};
use crate::{Closed, Eof, Handler, ProtocolError, TimerId};

/// Where a frame ends.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
#[non_exhaustive]
pub enum Terminator {
    /// At this byte string, which is not part of the frame (`\n`, `\r\n`).
    /// A terminator split across reads is found. An empty string collects
    /// until EOF, like [`Eof`](Terminator::Eof).
    Bytes(Cow<'static, [u8]>),
    /// After exactly this many bytes. It stays in force for the frames
    /// after (fixed-size records) until changed. `Len(0)` gives one empty
    /// frame at once; the frame callback must then set another terminator
    /// (see [`Framer::feed`], `# Panics`).
    Len(usize),
    /// Each frame starts with its length, big-endian, in a prefix of this
    /// width; the frame is the payload, without the prefix. A length above
    /// `max_frame` fails as soon as the prefix is read, before any of the
    /// payload is held.
    LenPrefixed(Prefix),
    /// At the end of the stream: everything up to the peer's FIN is one
    /// frame, delivered by [`Framer::finish`] (empty if nothing came).
    Eof,
}

impl Terminator {
    /// `\n`.
    pub const LF: Terminator = Terminator::Bytes(Cow::Borrowed(b"\n"));
    /// `\r\n`.
    pub const CRLF: Terminator = Terminator::Bytes(Cow::Borrowed(b"\r\n"));

    /// A byte-string terminator.
    ///
    /// # Examples
    ///
    /// ```
    /// use halfclose::chat::Terminator;
    /// assert_eq!(Terminator::bytes("\r\n"), Terminator::CRLF);
    /// let qqq = Terminator::bytes(b"qqq");
    /// # drop(qqq);
    /// ```
    pub fn bytes(terminator: impl Into<Vec<u8>>) -> Terminator {
        Terminator::Bytes(Cow::Owned(terminator.into()))
    }

    /// The most bytes a [`Framer`] with this terminator holds for a partial
    /// frame when the limit is `max_frame`.
    fn buffer_bound(&self, max_frame: usize) -> usize {
        match self {
            Terminator::Bytes(t) if !t.is_empty() => max_frame.saturating_add(t.len() - 1),
            Terminator::LenPrefixed(p) => max_frame.saturating_add(p.width()),
            _ => max_frame,
        }
    }
}

/// The width of a length prefix ([`Terminator::LenPrefixed`]); lengths are
/// big-endian (network byte order).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum Prefix {
    /// One byte: frames of up to 255 bytes.
    U8,
    /// Two bytes: up to 65 535.
    U16,
    /// Four bytes: up to 4 GiB - 1.
    U32,
}

impl Prefix {
    /// The prefix's size in bytes: 1, 2 or 4.
    pub fn width(self) -> usize {
        match self {
            Prefix::U8 => 1,
            Prefix::U16 => 2,
            Prefix::U32 => 4,
        }
    }

    /// `payload` with its length prefix, ready to write; `None` if the
    /// payload is too long for this width.
    ///
    /// # Examples
    ///
    /// ```
    /// use halfclose::chat::Prefix;
    /// assert_eq!(Prefix::U16.encode(b"hi"), Some(vec![0, 2, b'h', b'i']));
    /// assert_eq!(Prefix::U8.encode(&[0; 256]), None);
    /// ```
    pub fn encode(self, payload: &[u8]) -> Option<Vec<u8>> {
        let len = payload.len();
        let mut out = Vec::with_capacity(self.width() + len);
        match self {
            Prefix::U8 => out.push(u8::try_from(len).ok()?),
            Prefix::U16 => out.extend_from_slice(&u16::try_from(len).ok()?.to_be_bytes()),
            Prefix::U32 => out.extend_from_slice(&u32::try_from(len).ok()?.to_be_bytes()),
        }
        out.extend_from_slice(payload);
        Some(out)
    }

    /// The length in `prefix`, which holds exactly `width()` bytes.
    fn decode(self, prefix: &[u8]) -> usize {
        prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b))
    }
}

/// The stream ended in the middle of a frame; returned by
/// [`Framer::finish`]. Holds the bytes received since the last frame
/// ended (for a byte terminator, a partial terminator included).
#[derive(Clone, PartialEq, Eq)]
pub struct Incomplete {
    partial: Vec<u8>,
}

impl Incomplete {
    /// The bytes of the unfinished frame.
    pub fn partial(&self) -> &[u8] {
        &self.partial
    }

    /// The bytes of the unfinished frame, by value.
    pub fn into_partial(self) -> Vec<u8> {
        self.partial
    }
}

impl fmt::Debug for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Incomplete")
            .field("len", &self.partial.len())
            .finish()
    }
}

impl fmt::Display for Incomplete {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "stream ended inside a frame ({} bytes received)",
            self.partial.len()
        )
    }
}

impl std::error::Error for Incomplete {}

impl From<Incomplete> for io::Error {
    fn from(e: Incomplete) -> Self {
        io::Error::new(io::ErrorKind::UnexpectedEof, e)
    }
}

/// What one look at the input found.
enum Step {
    /// A frame lies wholly in the input at `start..end`; `used` input bytes
    /// (the frame with its terminator or prefix) are consumed. No copy.
    Input {
        start: usize,
        end: usize,
        used: usize,
    },
    /// A frame is complete in the buffer at `start..end` after taking
    /// `used` more input bytes.
    Buffered {
        start: usize,
        end: usize,
        used: usize,
    },
    /// `used` input bytes were buffered; the frame is not complete yet.
    Absorbed(usize),
    /// The frame is longer than the limit.
    TooLarge,
}

/// Cuts a byte stream into frames; sans-IO, so it is driven and tested
/// without sockets.
///
/// A frame that lies wholly inside the bytes given to one
/// [`feed`](Framer::feed) is passed on as a slice of them, without a copy;
/// only a frame split across feeds is buffered, and the buffer is released
/// once that frame is delivered. A byte terminator is searched for in each
/// byte once: the framer keeps a resume index past the bytes that cannot
/// start one, so a long partial frame is never rescanned.
///
/// Memory is bounded: at most `max_frame` bytes are held for a partial frame
/// (plus, for a byte terminator, up to its length - 1 bytes that may begin
/// it, and for a length prefix, the prefix).
///
/// # Examples
///
/// A header line announces a body of `n` bytes; the frame callback switches
/// terminators.
///
/// ```
/// use halfclose::chat::{Framer, Terminator};
///
/// let mut framer = Framer::new(Terminator::LF, 64);
/// let mut frames = Vec::new();
/// let mut on_frame = |frame: &[u8], terminator: &mut Terminator| {
///     let text = String::from_utf8_lossy(frame).into_owned();
///     *terminator = match terminator {
///         // The body: back to lines.
///         Terminator::Len(_) => Terminator::LF,
///         // A header: the body's length.
///         _ => Terminator::Len(text.parse().unwrap()),
///     };
///     frames.push(text);
/// };
/// framer.feed(b"5\nabcde3\n", &mut on_frame)?;
/// framer.feed(b"xyz", &mut on_frame)?;
/// assert_eq!(frames, ["5", "abcde", "3", "xyz"]);
/// # Ok::<(), halfclose::Error>(())
/// ```
pub struct Framer {
    terminator: Terminator,
    max_frame: usize,
    /// The raw bytes received since the last frame ended: frame bytes, and
    /// a partial terminator or the length prefix.
    buf: Vec<u8>,
    /// Byte terminators: no terminator starts before this index of `buf`.
    scan: usize,
    /// A frame passed the limit; input is refused until `finish`.
    failed: bool,
}

impl fmt::Debug for Framer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Framer")
            .field("terminator", &self.terminator)
            .field("max_frame", &self.max_frame)
            .field("buffered", &self.buf.len())
            .field("failed", &self.failed)
            .finish()
    }
}

impl Framer {
    /// A framer looking for `terminator`, refusing frames longer than
    /// `max_frame` bytes (the terminator or length prefix not counted).
    pub fn new(terminator: Terminator, max_frame: usize) -> Framer {
        Framer {
            terminator,
            max_frame,
            buf: Vec::new(),
            scan: 0,
            failed: false,
        }
    }

    /// The terminator in force for the next frame.
    pub fn terminator(&self) -> &Terminator {
        &self.terminator
    }

    /// The limit given to [`new`](Framer::new).
    pub fn max_frame(&self) -> usize {
        self.max_frame
    }

    /// Bytes held for a partial frame.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Whether a frame passed the limit; [`feed`](Framer::feed) refuses
    /// input until [`finish`](Framer::finish).
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Take `data`, the next bytes of the stream, and call `on_frame` for
    /// each frame it completes, in order.
    ///
    /// `on_frame` gets the frame and the terminator that ended it; assigning
    /// to the terminator changes the one for the following frames, starting
    /// with the very next byte (a header line announcing a body of `n`
    /// bytes sets `Terminator::Len(n)`). Bytes after the last complete
    /// frame are kept for the next call.
    ///
    /// # Errors
    ///
    /// [`Error::FrameTooLarge`] as soon as the frame being collected is
    /// known to be longer than `max_frame`; the frames before it were
    /// delivered. The stream cannot be resynchronised: the buffer is
    /// released and every later call fails the same way, until
    /// [`finish`](Framer::finish).
    ///
    /// # Panics
    ///
    /// If `on_frame` leaves `Terminator::Len(0)` in place after the empty
    /// frame it gave: the framer would produce empty frames forever.
    pub fn feed<F>(&mut self, data: &[u8], mut on_frame: F) -> Result<()>
    where
        F: FnMut(&[u8], &mut Terminator),
    {
        if self.failed {
            return Err(Error::FrameTooLarge {
                limit: self.max_frame,
            });
        }
        self.run(data, &mut on_frame)
    }

    /// The stream ended (the peer's FIN). With [`Terminator::Eof`] the bytes
    /// collected are the last frame, given to `on_frame` (empty if none
    /// came). A `Len(0)` frame still due is delivered first. Afterwards the
    /// framer is empty and may be fed a new stream; the terminator stays.
    ///
    /// After [`Error::FrameTooLarge`] this only resets the framer and
    /// returns `Ok`: the error was already reported.
    ///
    /// # Errors
    ///
    /// [`Incomplete`] if the stream ended inside a frame; it holds the
    /// bytes of that frame. Ending between two frames is not an error.
    ///
    /// # Panics
    ///
    /// As [`feed`](Framer::feed).
    pub fn finish<F>(&mut self, mut on_frame: F) -> std::result::Result<(), Incomplete>
    where
        F: FnMut(&[u8], &mut Terminator),
    {
        if self.failed {
            self.failed = false;
            self.release();
            return Ok(());
        }
        // No input: this only delivers a `Len(0)` frame, which cannot fail.
        let due = self.run(&[], &mut on_frame);
        debug_assert!(due.is_ok());
        let buf = mem::take(&mut self.buf);
        self.scan = 0;
        let until_eof = match &self.terminator {
            Terminator::Eof => true,
            Terminator::Bytes(t) => t.is_empty(),
            _ => false,
        };
        if until_eof {
            on_frame(&buf, &mut self.terminator);
        } else if !buf.is_empty() {
            return Err(Incomplete { partial: buf });
        }
        Ok(())
    }

    fn release(&mut self) {
        self.buf = Vec::new();
        self.scan = 0;
    }

    fn run<F>(&mut self, mut input: &[u8], on_frame: &mut F) -> Result<()>
    where
        F: FnMut(&[u8], &mut Terminator),
    {
        loop {
            let empty_len = self.terminator == Terminator::Len(0);
            if input.is_empty() && !empty_len {
                return Ok(());
            }
            match self.step(input) {
                Step::Input { start, end, used } => {
                    on_frame(&input[start..end], &mut self.terminator);
                    input = &input[used..];
                }
                Step::Buffered { start, end, used } => {
                    let buf = mem::take(&mut self.buf);
                    self.scan = 0;
                    on_frame(&buf[start..end], &mut self.terminator);
                    input = &input[used..];
                }
                Step::Absorbed(used) => {
                    input = &input[used..];
                    continue;
                }
                Step::TooLarge => {
                    self.failed = true;
                    self.release();
                    return Err(Error::FrameTooLarge {
                        limit: self.max_frame,
                    });
                }
            }
            assert!(
                !(empty_len && self.terminator == Terminator::Len(0)),
                "chat::Framer: Terminator::Len(0) left in place after its empty frame"
            );
            debug_assert!(self.buf.len() <= self.terminator.buffer_bound(self.max_frame));
        }
    }

    fn step(&mut self, input: &[u8]) -> Step {
        let max = self.max_frame;
        let buf = &mut self.buf;
        match &self.terminator {
            Terminator::Bytes(t) if !t.is_empty() => step_bytes(buf, &mut self.scan, t, max, input),
            Terminator::Len(n) => step_len(buf, *n, max, input),
            Terminator::LenPrefixed(p) => step_prefixed(buf, *p, max, input),
            // `Eof`, or an empty byte terminator.
            _ => {
                if buf.len() + input.len() > max {
                    return Step::TooLarge;
                }
                buf.extend_from_slice(input);
                Step::Absorbed(input.len())
            }
        }
    }
}

fn step_bytes(buf: &mut Vec<u8>, scan: &mut usize, t: &[u8], max: usize, input: &[u8]) -> Step {
    let tl = t.len();
    let tail = &buf[*scan..];
    if buf.is_empty() {
        if let Some(i) = find(input, t) {
            if i > max {
                return Step::TooLarge;
            }
            return Step::Input {
                start: 0,
                end: i,
                used: i + tl,
            };
        }
    } else {
        if !tail.is_empty() {
            // A terminator that starts in the buffered tail and ends in the
            // input. It can reach at most `tl - 1` bytes into the input.
            let mut window = Vec::with_capacity(tail.len() + tl - 1);
            window.extend_from_slice(tail);
            window.extend_from_slice(&input[..input.len().min(tl - 1)]);
            if let Some(w) = find(&window, t) {
                let end = *scan + w;
                if end > max {
                    return Step::TooLarge;
                }
                return Step::Buffered {
                    start: 0,
                    end,
                    used: w + tl - tail.len(),
                };
            }
        }
        if let Some(i) = find(input, t) {
            let end = buf.len() + i;
            if end > max {
                return Step::TooLarge;
            }
            buf.extend_from_slice(&input[..i]);
            return Step::Buffered {
                start: 0,
                end,
                used: i + tl,
            };
        }
    }
    // No terminator yet. Bytes that cannot begin one are frame bytes for
    // sure; the resume index moves past them.
    let keep = partial_suffix(tail, input, t);
    let known = buf.len() + input.len() - keep;
    if known > max {
        return Step::TooLarge;
    }
    buf.extend_from_slice(input);
    *scan = buf.len() - keep;
    Step::Absorbed(input.len())
}

/// Make room for `additional` more bytes of a frame that will end at
/// `total` bytes: capacity doubles as bytes arrive (never reserved ahead on
/// the peer's word) and never exceeds `total`.
fn grow(buf: &mut Vec<u8>, additional: usize, total: usize) {
    let want = buf.len() + additional;
    if want > buf.capacity() {
        let target = want
            .max(buf.capacity().saturating_mul(2))
            .min(total)
            .max(want);
        buf.reserve_exact(target - buf.len());
    }
}

fn step_len(buf: &mut Vec<u8>, n: usize, max: usize, input: &[u8]) -> Step {
    if n > max {
        return Step::TooLarge;
    }
    if buf.is_empty() && input.len() >= n {
        return Step::Input {
            start: 0,
            end: n,
            used: n,
        };
    }
    let need = n - buf.len();
    grow(buf, need.min(input.len()), n);
    if input.len() >= need {
        buf.extend_from_slice(&input[..need]);
        return Step::Buffered {
            start: 0,
            end: n,
            used: need,
        };
    }
    buf.extend_from_slice(input);
    Step::Absorbed(input.len())
}

fn step_prefixed(buf: &mut Vec<u8>, p: Prefix, max: usize, input: &[u8]) -> Step {
    let w = p.width();
    if buf.is_empty() && input.len() >= w {
        let len = p.decode(&input[..w]);
        if len > max {
            return Step::TooLarge;
        }
        if input.len() - w >= len {
            return Step::Input {
                start: w,
                end: w + len,
                used: w + len,
            };
        }
    }
    // The prefix first, then the payload.
    let mut used = 0;
    if buf.len() < w {
        used = (w - buf.len()).min(input.len());
        buf.extend_from_slice(&input[..used]);
        if buf.len() < w {
            return Step::Absorbed(used);
        }
    }
    let len = p.decode(&buf[..w]);
    if len > max {
        return Step::TooLarge;
    }
    let rest = &input[used..];
    let need = w + len - buf.len();
    grow(buf, need.min(rest.len()), w + len);
    if rest.len() >= need {
        buf.extend_from_slice(&rest[..need]);
        return Step::Buffered {
            start: w,
            end: w + len,
            used: used + need,
        };
    }
    buf.extend_from_slice(rest);
    Step::Absorbed(input.len())
}

/// The first occurrence of `needle` (not empty) in `hay`.
fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    match needle {
        [b] => hay.iter().position(|x| x == b),
        _ => hay.windows(needle.len()).position(|w| w == needle),
    }
}

/// The length of the longest proper prefix of `t` that `tail ++ input`
/// ends with: bytes that may be the start of a terminator.
fn partial_suffix(tail: &[u8], input: &[u8], t: &[u8]) -> usize {
    let total = tail.len() + input.len();
    let at = |i: usize| {
        if i < tail.len() {
            tail[i]
        } else {
            input[i - tail.len()]
        }
    };
    (1..t.len().min(total + 1))
        .rev()
        .find(|&k| (0..k).all(|j| at(total - k + j) == t[j]))
        .unwrap_or(0)
}

/// The callbacks of a framed protocol, turned into a [`Handler`] by
/// [`Framed`].
///
/// Only [`found_frame`](FrameHandler::found_frame) is required. The others
/// mirror [`Handler`]'s and default to doing nothing, except
/// [`handle_eof`](FrameHandler::handle_eof), which returns [`Eof::Close`].
pub trait FrameHandler {
    /// The connection is established; see [`Handler::handle_connect`].
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// A whole frame arrived, without its terminator or length prefix.
    /// `terminator` holds the terminator that ended it; assign to it to
    /// change the one for the next frame (asynchat's `set_terminator`).
    ///
    /// After the handler closes the connection here
    /// ([`Conn::close`], [`Conn::close_with`]), the frames left in the same
    /// read are discarded with the rest of the input. Frames already read
    /// are delivered even if it paused reading: the pause applies to the
    /// next read (at most one read buffer's worth of frames).
    fn found_frame(&mut self, conn: &mut Conn<'_>, frame: &[u8], terminator: &mut Terminator);

    /// A frame grew past `max_frame` (`limit`). Queue an error reply here if
    /// the protocol has one: right after this the connection is closed with
    /// [`ProtocolError::FrameTooLarge`], lossless, so the reply is delivered
    /// before the FIN. The rest of the input is discarded.
    fn frame_too_large(&mut self, conn: &mut Conn<'_>, limit: usize) {
        let _ = (conn, limit);
    }

    /// The peer's FIN arrived inside a frame; `partial` holds its bytes.
    /// Queue an error reply here, or treat `partial` as a last frame if the
    /// protocol allows it: right after this the connection is closed with
    /// [`ProtocolError::IncompleteFrame`], lossless.
    /// [`handle_eof`](FrameHandler::handle_eof) is not called.
    fn incomplete_frame(&mut self, conn: &mut Conn<'_>, partial: &[u8]) {
        let _ = (conn, partial);
    }

    /// The peer's FIN arrived between frames (with [`Terminator::Eof`],
    /// after its frame was delivered). Returns what the FIN means, as
    /// [`Handler::handle_readable_eof`] does; the default is
    /// [`Eof::Close`].
    fn handle_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let _ = conn;
        Eof::Close
    }

    /// See [`Handler::handle_write`].
    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// See [`Handler::handle_error`].
    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        let _ = (conn, err);
    }

    /// See [`Handler::handle_timer`].
    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        let _ = (conn, timer);
    }

    /// See [`Handler::handle_drain`].
    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        let _ = conn;
    }

    /// See [`Handler::handle_close`].
    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        let _ = (ctx, closed);
    }
}

/// A [`Handler`] that frames its input with a [`Framer`] and passes whole
/// frames to a [`FrameHandler`].
///
/// A frame longer than `max_frame` calls
/// [`FrameHandler::frame_too_large`], then closes the connection with
/// [`Conn::close_with`]`(`[`ProtocolError::FrameTooLarge`]`)`; a FIN inside
/// a frame calls [`FrameHandler::incomplete_frame`], then closes with
/// [`ProtocolError::IncompleteFrame`]. Both closes are lossless: an error
/// reply queued by the hook reaches the peer before our FIN, and
/// [`Closed::reason`] is [`Reason::Protocol`](crate::Reason::Protocol) with
/// that error.
///
/// To close "when done" (asynchat's `close_when_done`), write the last
/// reply and call [`Conn::close`]: everything queued is flushed before the
/// FIN.
///
/// # Examples
///
/// ```no_run
/// use halfclose::chat::{FrameHandler, Framed, Terminator};
/// use halfclose::{Conn, Reactor};
///
/// /// Answers each line with its length; `quit` ends the session.
/// struct Count;
///
/// impl FrameHandler for Count {
///     fn found_frame(&mut self, conn: &mut Conn<'_>, line: &[u8], _: &mut Terminator) {
///         if line == b"quit" {
///             conn.write(b"bye\r\n");
///             conn.close();
///         } else {
///             conn.write(format!("{}\r\n", line.len()).as_bytes());
///         }
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:0".parse()?, || Framed::new(Count, Terminator::CRLF, 4096))?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Framed<H> {
    handler: H,
    framer: Framer,
}

impl<H: FrameHandler> Framed<H> {
    /// Frame input with `terminator`, refusing frames longer than
    /// `max_frame` bytes, and pass the frames to `handler`.
    pub fn new(handler: H, terminator: Terminator, max_frame: usize) -> Self {
        Framed {
            handler,
            framer: Framer::new(terminator, max_frame),
        }
    }

    /// The frame handler.
    pub fn handler(&self) -> &H {
        &self.handler
    }

    /// The frame handler, mutably.
    pub fn handler_mut(&mut self) -> &mut H {
        &mut self.handler
    }

    /// The framer: current terminator, bytes buffered.
    pub fn framer(&self) -> &Framer {
        &self.framer
    }

    /// The frame handler, by value.
    pub fn into_inner(self) -> H {
        self.handler
    }
}

impl<H: FrameHandler> Handler for Framed<H> {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_connect(conn);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        let handler = &mut self.handler;
        let fed = self.framer.feed(data, |frame, terminator| {
            // Once the handler closed, the rest is input to discard.
            if conn.may_recv() {
                handler.found_frame(conn, frame, terminator);
            }
        });
        if fed.is_err() && conn.may_recv() {
            handler.frame_too_large(conn, self.framer.max_frame());
            conn.close_with(ProtocolError::FrameTooLarge);
        }
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let handler = &mut self.handler;
        match self
            .framer
            .finish(|frame, terminator| handler.found_frame(conn, frame, terminator))
        {
            Ok(()) => handler.handle_eof(conn),
            Err(incomplete) => {
                handler.incomplete_frame(conn, incomplete.partial());
                conn.close_with(ProtocolError::IncompleteFrame);
                Eof::Close
            }
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_write(conn);
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        self.handler.handle_error(conn, err);
    }

    fn handle_timer(&mut self, conn: &mut Conn<'_>, timer: TimerId) {
        self.handler.handle_timer(conn, timer);
    }

    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        self.handler.handle_drain(conn);
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        self.handler.handle_close(ctx, closed);
    }
}

#[cfg(test)]
mod tests {
    //! The framer without sockets, grouped by terminator; the scenario ids
    //! are those of SCENARIOS.md (E1-E6).
    use super::*;
    use proptest::prelude::*;

    /// What feeding a stream gave: the frames, whether `feed` failed, and
    /// what `finish` said (`None` when it was not reached).
    #[derive(Clone, PartialEq, Eq, Debug)]
    struct Outcome {
        frames: Vec<Vec<u8>>,
        too_large: bool,
        finish: Option<std::result::Result<(), Vec<u8>>>,
    }

    /// Feed `stream` cut into the pieces `sizes` gives (cycled; the last
    /// piece takes the rest), then finish. `next` picks the terminator
    /// after frame `i` (`None`: keep it). Checks the memory bound after
    /// every feed.
    fn run_with(
        term: Terminator,
        max: usize,
        stream: &[u8],
        sizes: &[usize],
        next: &dyn Fn(usize) -> Option<Terminator>,
    ) -> Outcome {
        let mut framer = Framer::new(term, max);
        let mut frames = Vec::new();
        let mut on_frame = |f: &[u8], t: &mut Terminator| {
            frames.push(f.to_vec());
            if let Some(n) = next(frames.len() - 1) {
                *t = n;
            }
        };
        let mut rest = stream;
        let mut i = 0;
        let mut too_large = false;
        while !rest.is_empty() {
            let n = if sizes.is_empty() {
                rest.len()
            } else {
                sizes[i % sizes.len()].clamp(1, rest.len())
            };
            i += 1;
            let (piece, after) = rest.split_at(n);
            rest = after;
            let fed = framer.feed(piece, &mut on_frame);
            let bound = framer.terminator().buffer_bound(max);
            assert!(
                framer.buffered() <= bound,
                "{} buffered > {bound}",
                framer.buffered()
            );
            if let Err(e) = fed {
                assert!(matches!(e, Error::FrameTooLarge { limit } if limit == max));
                assert_eq!(framer.buffered(), 0, "buffer released on failure");
                too_large = true;
                break;
            }
        }
        let finish = (!too_large).then(|| {
            framer
                .finish(&mut on_frame)
                .map_err(Incomplete::into_partial)
        });
        Outcome {
            frames,
            too_large,
            finish,
        }
    }

    fn run(term: Terminator, max: usize, stream: &[u8], split: usize) -> Outcome {
        run_with(term, max, stream, &[split], &|_| None)
    }

    fn frames(list: &[&[u8]]) -> Vec<Vec<u8>> {
        list.iter().map(|f| f.to_vec()).collect()
    }

    mod bytes {
        use super::*;

        /// E1: CPython's `line_terminator_check`: `\n`, `\r\n` and `qqq`
        /// with the stream cut into reads of 1, 2 and 3 bytes (and whole),
        /// so every terminator is split every possible way.
        #[test]
        fn e1_terminators_split_across_reads_give_exact_frames() {
            for term in [&b"\n"[..], b"\r\n", b"qqq"] {
                let mut stream = b"hello world".to_vec();
                stream.extend_from_slice(term);
                stream.extend_from_slice(b"I'm not dead yet!");
                stream.extend_from_slice(term);
                for split in [1, 2, 3, stream.len()] {
                    let out = run(Terminator::bytes(term), 64, &stream, split);
                    assert_eq!(
                        out.frames,
                        frames(&[b"hello world", b"I'm not dead yet!"]),
                        "terminator {term:?}, reads of {split}"
                    );
                    assert_eq!(out.finish, Some(Ok(())));
                }
            }
        }

        /// E1: a terminator whose own prefix repeats (`aab`) is found after
        /// a false start that straddles reads.
        #[test]
        fn e1_self_overlapping_terminator_after_a_false_start() {
            for split in 1..=5 {
                let out = run(Terminator::bytes("aab"), 64, b"xaaab-aaaab", split);
                assert_eq!(out.frames, frames(&[b"xa", b"-aa"]), "reads of {split}");
                assert_eq!(out.finish, Some(Ok(())));
            }
        }

        /// E4: empty records are records: `hello world\n\nI'm not dead
        /// yet!\n` is three frames, the middle one empty, however it is cut.
        #[test]
        fn e4_empty_records_are_records() {
            let stream = b"hello world\n\nI'm not dead yet!\n";
            for split in [1, 2, 3, 7, stream.len()] {
                let out = run(Terminator::LF, 64, stream, split);
                assert_eq!(
                    out.frames,
                    frames(&[b"hello world", b"", b"I'm not dead yet!"])
                );
            }
            let out = run(Terminator::CRLF, 8, b"\r\n\r\n\r\n", 1);
            assert_eq!(out.frames, frames(&[b"", b"", b""]));
        }

        /// A frame wholly inside one feed is handed on as a slice of the
        /// input: no copy, nothing buffered.
        #[test]
        fn a_whole_frame_is_not_copied() {
            let data = b"abc\r\ndef\r\n";
            let mut framer = Framer::new(Terminator::CRLF, 16);
            let mut starts = Vec::new();
            framer.feed(data, |f, _| starts.push(f.as_ptr())).unwrap();
            assert_eq!(starts, [data.as_ptr(), data[5..].as_ptr()]);
            assert_eq!(framer.buffered(), 0);
        }

        /// An empty byte terminator collects until EOF, as asynchat's `b""`.
        #[test]
        fn an_empty_byte_terminator_collects_until_eof() {
            let out = run(Terminator::bytes(""), 64, b"a\nb", 1);
            assert_eq!(out.frames, frames(&[b"a\nb"]));
            assert_eq!(out.finish, Some(Ok(())));
        }
    }

    mod len {
        use super::*;

        /// E2: CPython's `numeric_terminator_check`: `Len(n)` gives exactly
        /// n bytes; then the next terminator applies (here set from the
        /// frame callback, as asynchat's `set_terminator`).
        #[test]
        fn e2_len_counts_down_then_the_next_terminator_applies() {
            let data = b"hello world, I'm not dead yet!\n";
            for n in [1, 5, 12] {
                for split in [1, 2, 3, data.len()] {
                    let out = run_with(Terminator::Len(n), 64, data, &[split], &|_| {
                        Some(Terminator::LF)
                    });
                    assert_eq!(out.frames, frames(&[&data[..n], &data[n..data.len() - 1]]));
                    assert_eq!(out.finish, Some(Ok(())));
                }
            }
        }

        /// E2: `Len` stays in force until changed: fixed-size records.
        #[test]
        fn e2_len_stays_until_changed() {
            let out = run(Terminator::Len(3), 8, b"abcdefgh", 2);
            assert_eq!(out.frames, frames(&[b"abc", b"def"]));
            assert_eq!(out.finish, Some(Err(b"gh".to_vec())));
        }

        /// E2: a header announcing an empty body: `Len(0)` gives its empty
        /// frame at once, even with no input left (the reply must not wait
        /// for more bytes).
        #[test]
        fn e2_len_zero_is_an_empty_frame_at_once() {
            let mut framer = Framer::new(Terminator::LF, 64);
            let mut got = Vec::new();
            framer
                .feed(b"0\n", |f, t| {
                    got.push(f.to_vec());
                    *t = if f == b"0" {
                        Terminator::Len(0)
                    } else {
                        Terminator::LF
                    };
                })
                .unwrap();
            assert_eq!(got, frames(&[b"0", b""]));
            assert_eq!(framer.terminator(), &Terminator::LF);
        }

        /// `Len(0)` left in place would loop forever: it panics instead (in
        /// a reactor, that aborts only this connection).
        #[test]
        #[should_panic(expected = "Len(0) left in place")]
        fn len_zero_left_in_place_panics() {
            let mut framer = Framer::new(Terminator::Len(0), 64);
            let _ = framer.feed(b"x", |_, _| {});
        }

        /// E6: a `Len` above the limit fails before a byte is buffered.
        #[test]
        fn e6_len_above_the_limit_fails_at_once() {
            let mut framer = Framer::new(Terminator::Len(100), 10);
            assert!(matches!(
                framer.feed(b"a", |_, _| {}),
                Err(Error::FrameTooLarge { limit: 10 })
            ));
            assert_eq!(framer.buffered(), 0);
        }
    }

    mod eof {
        use super::*;

        /// E3: `Eof` collects everything until EOF as one frame, delivered
        /// by `finish`, not before.
        #[test]
        fn e3_eof_collects_until_eof() {
            let mut framer = Framer::new(Terminator::Eof, 64);
            let mut got = Vec::new();
            for piece in [&b"hello\n"[..], b"", b"world\r\n", b"qqq"] {
                framer.feed(piece, |f, _| got.push(f.to_vec())).unwrap();
            }
            assert!(got.is_empty(), "nothing before EOF");
            framer.finish(|f, _| got.push(f.to_vec())).unwrap();
            assert_eq!(got, frames(&[b"hello\nworld\r\nqqq"]));
        }

        /// E3: an `Eof` frame after a header switched to it; an empty
        /// stream gives one empty frame (an empty record is a record).
        #[test]
        fn e3_eof_after_a_header_and_empty_at_eof() {
            let out = run_with(Terminator::LF, 64, b"HEAD\nbody\nmore", &[3], &|_| {
                Some(Terminator::Eof)
            });
            assert_eq!(out.frames, frames(&[b"HEAD", b"body\nmore"]));
            let out = run(Terminator::Eof, 64, b"", 1);
            assert_eq!(out.frames, frames(&[b""]));
        }

        /// E6: the `Eof` frame is bounded too.
        #[test]
        fn e6_eof_frame_is_bounded() {
            let out = run(Terminator::Eof, 10, &[b'x'; 11], 3);
            assert!(out.too_large);
            let out = run(Terminator::Eof, 10, &[b'x'; 10], 3);
            assert_eq!(out.frames, frames(&[&[b'x'; 10]]));
        }
    }

    mod prefixed {
        use super::*;

        /// Length-prefixed frames of every width, split every way; an
        /// empty payload is a frame.
        #[test]
        fn length_prefixed_frames_split_across_reads() {
            for p in [Prefix::U8, Prefix::U16, Prefix::U32] {
                let mut stream = Vec::new();
                for payload in [&b"hello"[..], b"", b"world!"] {
                    stream.extend(p.encode(payload).unwrap());
                }
                for split in [1, 2, 3, 5, stream.len()] {
                    let out = run(Terminator::LenPrefixed(p), 16, &stream, split);
                    assert_eq!(
                        out.frames,
                        frames(&[b"hello", b"", b"world!"]),
                        "{p:?}, reads of {split}"
                    );
                    assert_eq!(out.finish, Some(Ok(())));
                }
            }
        }

        /// E6: an announced length above the limit fails as soon as the
        /// prefix is read, before any payload is held (4 GiB announced).
        #[test]
        fn e6_announced_length_above_the_limit_fails_after_the_prefix() {
            let mut framer = Framer::new(Terminator::LenPrefixed(Prefix::U32), 1024);
            framer.feed(&[0xff, 0xff], |_, _| {}).unwrap();
            assert_eq!(framer.buffered(), 2);
            assert!(matches!(
                framer.feed(&[0xff, 0xff, b'x'], |_, _| {}),
                Err(Error::FrameTooLarge { limit: 1024 })
            ));
            assert_eq!(framer.buffered(), 0);
        }

        /// E6: EOF inside the prefix or the payload is incomplete.
        #[test]
        fn e6_eof_inside_a_prefixed_frame_is_incomplete() {
            let out = run(Terminator::LenPrefixed(Prefix::U16), 16, &[0], 1);
            assert_eq!(out.finish, Some(Err(vec![0])));
            let out = run(Terminator::LenPrefixed(Prefix::U8), 16, &[3, b'a'], 1);
            assert_eq!(out.finish, Some(Err(vec![3, b'a'])));
        }
    }

    mod limits {
        use super::*;

        /// E6: a terminator that never comes: 1 MiB fed in 1000-byte reads
        /// to a framer limited to 4096 fails as soon as the frame is known
        /// to exceed 4096 bytes, holding no more than 4096 + 1 bytes on the
        /// way (`\r\n`: one byte may begin the terminator); the buffer is
        /// released and later input is refused.
        #[test]
        fn e6_missing_terminator_fails_bounded() {
            let mut framer = Framer::new(Terminator::CRLF, 4096);
            let chunk = [b'x'; 999];
            let mut fed = 0;
            let err = loop {
                let mut piece = chunk.to_vec();
                piece.push(b'\r'); // a false start of the terminator
                match framer.feed(&piece, |_, _| panic!("no frame expected")) {
                    Ok(()) => {
                        fed += piece.len();
                        assert!(framer.buffered() <= 4097, "{} buffered", framer.buffered());
                        assert!(fed < 1 << 20, "never failed");
                    }
                    Err(e) => break e,
                }
            };
            assert!(matches!(err, Error::FrameTooLarge { limit: 4096 }));
            assert_eq!(fed, 4000, "failed on the first read past the limit");
            assert!(framer.is_failed());
            assert_eq!(framer.buffered(), 0);
            assert!(framer.feed(b"\r\n", |_, _| panic!("refused")).is_err());
            // `finish` after the failure reports nothing more and resets.
            assert_eq!(framer.finish(|_, _| panic!("no frame")), Ok(()));
            assert!(!framer.is_failed());
        }

        /// E6: the limit is the frame's, not the read's: a frame of exactly
        /// `max_frame` bytes passes, one more fails even when it arrives
        /// whole, and the frames before it are delivered.
        #[test]
        fn e6_limit_is_per_frame_and_inclusive() {
            let out = run(Terminator::LF, 4, b"abcd\nabcde\nz\n", 100);
            assert_eq!(out.frames, frames(&[b"abcd"]));
            assert!(out.too_large);
            let out = run(Terminator::LF, 4, b"abcd\nabcde\nz\n", 1);
            assert_eq!(out.frames, frames(&[b"abcd"]));
            assert!(out.too_large);
        }

        /// E6: a partial frame at EOF is reported incomplete, with its
        /// bytes (a partial terminator included); EOF between frames is
        /// clean.
        #[test]
        fn e6_partial_frame_at_eof_is_incomplete() {
            let out = run(Terminator::CRLF, 64, b"one\r\ntwo\r", 2);
            assert_eq!(out.frames, frames(&[b"one"]));
            assert_eq!(out.finish, Some(Err(b"two\r".to_vec())));
            let out = run(Terminator::CRLF, 64, b"one\r\n", 2);
            assert_eq!(out.finish, Some(Ok(())));
            let mut framer = Framer::new(Terminator::LF, 8);
            framer.feed(b"ab", |_, _| {}).unwrap();
            let e = framer.finish(|_, _| {}).unwrap_err();
            assert_eq!(framer.buffered(), 0, "finish leaves the framer empty");
            assert_eq!(io::Error::from(e).kind(), io::ErrorKind::UnexpectedEof);
        }
    }

    /// The terminators the properties draw from.
    fn terminator() -> impl Strategy<Value = Terminator> {
        prop_oneof![
            Just(Terminator::LF),
            Just(Terminator::CRLF),
            Just(Terminator::bytes("qqq")),
            Just(Terminator::bytes("aab")),
            (0usize..6).prop_map(Terminator::Len),
            Just(Terminator::LenPrefixed(Prefix::U8)),
            Just(Terminator::LenPrefixed(Prefix::U16)),
            Just(Terminator::Eof),
        ]
    }

    /// A stream over a small alphabet, so terminators occur often.
    fn stream() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(
            prop_oneof![
                Just(b'a'),
                Just(b'b'),
                Just(b'q'),
                Just(b'\r'),
                Just(b'\n'),
                Just(3u8)
            ],
            0..300,
        )
    }

    proptest! {
        /// E1-E6: however a stream is split into reads, the frames, the
        /// too-large failure and the EOF outcome are the same as for one
        /// read, for a fixed terminator and for one switched after every
        /// frame; memory stays within the bound at every step.
        #[test]
        fn any_split_gives_the_same_frames(
            first in terminator(),
            cycle in proptest::collection::vec(terminator(), 0..4),
            max in 0usize..40,
            data in stream(),
            sizes in proptest::collection::vec(1usize..20, 1..8),
        ) {
            // Switch to cycle[i % len] after frame i; a Len(0) must be
            // followed by a different terminator.
            let cycle: Vec<Terminator> = cycle
                .into_iter()
                .map(|t| if t == Terminator::Len(0) { Terminator::Len(1) } else { t })
                .collect();
            let mut with_zero = cycle.clone();
            if !with_zero.is_empty() {
                with_zero.insert(0, Terminator::Len(0));
            }
            let first = if first == Terminator::Len(0) && cycle.is_empty() { Terminator::Len(2) } else { first };
            let skip = usize::from(first == Terminator::Len(0));
            let next = |i: usize| (!with_zero.is_empty()).then(|| with_zero[(i + skip) % with_zero.len()].clone());
            let whole = run_with(first.clone(), max, &data, &[], &next);
            let split = run_with(first, max, &data, &sizes, &next);
            prop_assert_eq!(whole, split);
        }

        /// E1/E4: with a byte terminator and no frame over the limit, the
        /// frames are exactly the stream split at the terminator, empty
        /// records included, and what follows the last one is incomplete.
        #[test]
        fn byte_frames_match_a_plain_split(
            term in prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"qqq"[..]), Just(&b"aab"[..])],
            data in stream(),
            split in 1usize..7,
        ) {
            let mut expected = Vec::new();
            let mut rest = &data[..];
            while let Some(i) = find(rest, term) {
                expected.push(rest[..i].to_vec());
                rest = &rest[i + term.len()..];
            }
            let out = run(Terminator::bytes(term), data.len(), &data, split);
            prop_assert_eq!(out.frames, expected);
            let tail = if rest.is_empty() { Ok(()) } else { Err(rest.to_vec()) };
            prop_assert_eq!(out.finish, Some(tail));
        }
    }
}
