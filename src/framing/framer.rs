//! [`Framer`]: the sans-IO state machine that cuts a byte stream into
//! frames.

use std::fmt;
use std::mem;

use super::terminator::{partial_suffix, straddling, Search};
use super::{Error, Prefix, Terminator};

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
/// once that frame is delivered. A byte terminator is searched for with
/// `memchr` (one byte) or a `memmem` searcher built once per terminator
/// (longer ones), and each byte is searched once: the framer keeps a resume
/// index past the bytes that cannot start one, so a long partial frame is
/// never rescanned; only its last bytes, fewer than the terminator's
/// length, are looked at again when the next read arrives, to find a
/// terminator split across the two.
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
/// use halfclose::framing::{Framer, Terminator};
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
/// # Ok::<(), halfclose::framing::Error>(())
/// ```
pub struct Framer {
    terminator: Terminator,
    max_frame: usize,
    /// The raw bytes received since the last frame ended: frame bytes, and
    /// a partial terminator or the length prefix.
    buf: Vec<u8>,
    /// Byte terminators: no terminator starts before this index of `buf`
    /// (the resume index); `buf[scan..]` is shorter than the terminator.
    scan: usize,
    /// Finds byte terminators.
    search: Search,
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
            search: Search::default(),
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
    #[inline]
    pub fn feed<F>(&mut self, data: &[u8], mut on_frame: F) -> Result<(), Error>
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
    /// [`Error::Incomplete`] if the stream ended inside a frame; it holds
    /// the bytes of that frame. Ending between two frames is not an error.
    ///
    /// # Panics
    ///
    /// As [`feed`](Framer::feed).
    pub fn finish<F>(&mut self, on_frame: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &mut Terminator),
    {
        self.end(true, on_frame)
    }

    /// [`finish`](Framer::finish) for an end of stream that is not
    /// authenticated (TLS: a TCP FIN without `close_notify`): the stream may
    /// have been cut short, so a frame that only its end would complete
    /// ([`Terminator::Eof`]) is reported as [`Error::Incomplete`] too,
    /// never delivered.
    ///
    /// # Errors
    ///
    /// As [`finish`](Framer::finish), and for a frame running to the end.
    ///
    /// # Panics
    ///
    /// As [`feed`](Framer::feed).
    pub fn finish_truncated<F>(&mut self, on_frame: F) -> Result<(), Error>
    where
        F: FnMut(&[u8], &mut Terminator),
    {
        self.end(false, on_frame)
    }

    fn end<F>(&mut self, authenticated: bool, mut on_frame: F) -> Result<(), Error>
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
        if until_eof && !authenticated {
            return Err(Error::Incomplete { partial: buf });
        } else if until_eof {
            on_frame(&buf, &mut self.terminator);
        } else if !buf.is_empty() {
            return Err(Error::Incomplete { partial: buf });
        }
        Ok(())
    }

    fn release(&mut self) {
        self.buf = Vec::new();
        self.scan = 0;
    }

    #[inline]
    fn run<F>(&mut self, mut input: &[u8], on_frame: &mut F) -> Result<(), Error>
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
                "framing::Framer: Terminator::Len(0) left in place after its empty frame"
            );
            debug_assert!(self.buf.len() <= self.terminator.buffer_bound(self.max_frame));
        }
    }

    fn step(&mut self, input: &[u8]) -> Step {
        let max = self.max_frame;
        let buf = &mut self.buf;
        match &self.terminator {
            Terminator::Bytes(t) if !t.is_empty() => {
                step_bytes(buf, &mut self.scan, &mut self.search, t, max, input)
            }
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

/// A byte terminator `t`: `buf[..*scan]` holds frame bytes that were
/// searched already; only `buf[*scan..]`, fewer than `t.len()` bytes that
/// may begin a terminator, is looked at again, together with the input.
fn step_bytes(
    buf: &mut Vec<u8>,
    scan: &mut usize,
    search: &mut Search,
    t: &[u8],
    max: usize,
    input: &[u8],
) -> Step {
    let tl = t.len();
    let tail = &buf[*scan..];
    debug_assert!(tail.len() < tl);
    if buf.is_empty() {
        if let Some(i) = search.find(t, input) {
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
        // A terminator that starts in the buffered tail and ends in the
        // input.
        if let Some(j) = straddling(tail, input, t) {
            let end = *scan + j;
            if end > max {
                return Step::TooLarge;
            }
            return Step::Buffered {
                start: 0,
                end,
                used: j + tl - tail.len(),
            };
        }
        if let Some(i) = search.find(t, input) {
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

#[cfg(test)]
mod tests {
    //! The framer without sockets, grouped by terminator; the scenario ids
    //! are those of SCENARIOS.md (E1-E6).
    use std::io;

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
            framer.finish(&mut on_frame).map_err(|e| match e {
                Error::Incomplete { partial } => partial,
                e => panic!("finish failed with {e:?}"),
            })
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

        /// The resume index: after each read, only the bytes that may begin
        /// the terminator (fewer than its length) are left to look at again;
        /// everything before them was searched once and is not searched
        /// again.
        #[test]
        fn the_resume_index_passes_bytes_that_cannot_begin_a_terminator() {
            let mut framer = Framer::new(Terminator::CRLF, 64);
            let mut got = Vec::new();
            framer.feed(b"abc", |f, _| got.push(f.to_vec())).unwrap();
            assert_eq!((framer.buffered(), framer.scan), (3, 3));
            framer.feed(b"de\r", |f, _| got.push(f.to_vec())).unwrap();
            assert_eq!(
                (framer.buffered(), framer.scan),
                (6, 5),
                "`\r` may begin one"
            );
            framer.feed(b"\rx", |f, _| got.push(f.to_vec())).unwrap();
            assert_eq!((framer.buffered(), framer.scan), (8, 8), "`\r\rx` cannot");
            framer.feed(b"\r", |f, _| got.push(f.to_vec())).unwrap();
            framer.feed(b"\nz", |f, _| got.push(f.to_vec())).unwrap();
            assert_eq!(got, frames(&[b"abcde\r\rx"]));
            assert_eq!((framer.buffered(), framer.scan), (1, 1));

            // `aab`: `a` may begin it, then `aa` (twice: `xaaa` keeps its
            // last two); `b` ends it, and the `a` after is the next frame's.
            let mut framer = Framer::new(Terminator::bytes("aab"), 64);
            let mut got = Vec::new();
            for (piece, scan) in [(&b"xa"[..], 1), (b"a", 1), (b"a", 2), (b"ba", 0)] {
                framer.feed(piece, |f, _| got.push(f.to_vec())).unwrap();
                assert_eq!(framer.scan, scan, "after {piece:?}");
            }
            assert_eq!(got, frames(&[b"xa"]));
            assert_eq!(framer.buffered(), 1);
        }

        /// A framer is held per connection: the searcher for a terminator
        /// of two bytes or more is boxed, so a framer stays a few words
        /// (about 80 bytes on 64-bit), not the searcher's few hundred.
        #[test]
        fn a_framer_stays_small() {
            let size = std::mem::size_of::<Framer>();
            assert!(size <= 12 * std::mem::size_of::<usize>(), "{size} bytes");
        }

        /// A terminator changed from the frame callback is the one searched
        /// for from the next byte on, from one byte string to another of any
        /// length, whether the frame lies in one read or is split.
        #[test]
        fn switching_byte_terminators_searches_for_the_new_one() {
            let stream = b"one\r\ntwo\r\nthreeqqqfour\r\n\r\nfive\nsix\r\n";
            let order = [
                Terminator::bytes("qqq"),
                Terminator::bytes("\r\n\r\n"),
                Terminator::LF,
                Terminator::CRLF,
            ];
            for split in [1, 2, 3, 5, stream.len()] {
                let out = run_with(Terminator::CRLF, 64, stream, &[split], &|i| {
                    order.get(i).cloned()
                });
                assert_eq!(
                    out.frames,
                    frames(&[b"one", b"two\r\nthree", b"four", b"five", b"six"]),
                    "reads of {split}"
                );
                assert_eq!(out.finish, Some(Ok(())));
            }
        }

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

        /// An end that is not authenticated (TLS without `close_notify`)
        /// never completes a frame that runs to the end: it is incomplete,
        /// with its bytes; frames already complete were delivered.
        #[test]
        fn a_truncated_end_does_not_complete_an_eof_frame() {
            let mut framer = Framer::new(Terminator::Eof, 64);
            framer
                .feed(b"all of it?", |_, _| panic!("no frame before the end"))
                .unwrap();
            let err = framer
                .finish_truncated(|_, _| panic!("not delivered"))
                .expect_err("incomplete");
            assert!(matches!(err, Error::Incomplete { ref partial } if partial == b"all of it?"));

            let mut framer = Framer::new(Terminator::LF, 64);
            let mut got = Vec::new();
            framer
                .feed(b"one\ntw", |f, _| got.push(f.to_vec()))
                .unwrap();
            let err = framer.finish_truncated(|f, _| got.push(f.to_vec()));
            assert!(matches!(err, Err(Error::Incomplete { ref partial }) if partial == b"tw"));
            assert_eq!(got, [b"one".to_vec()]);

            let mut framer = Framer::new(Terminator::LF, 64);
            framer.feed(b"one\n", |_, _| {}).unwrap();
            assert!(framer.finish_truncated(|_, _| {}).is_ok(), "between frames");
        }

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
            while let Some(i) = rest.windows(term.len()).position(|w| w == term) {
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
