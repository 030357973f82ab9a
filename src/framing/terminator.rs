//! Where a frame ends ([`Terminator`], [`Prefix`]), and how a byte
//! terminator is found in the input.

use std::borrow::Cow;

use memchr::memmem;

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
    /// (see [`Framer::feed`](super::Framer::feed), `# Panics`).
    Len(usize),
    /// Each frame starts with its length, big-endian, in a prefix of this
    /// width; the frame is the payload, without the prefix. A length above
    /// `max_frame` fails as soon as the prefix is read, before any of the
    /// payload is held.
    LenPrefixed(Prefix),
    /// At the end of the stream: everything up to the peer's FIN is one
    /// frame, delivered by [`Framer::finish`](super::Framer::finish) (empty
    /// if nothing came).
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
    /// use halfclose::framing::Terminator;
    /// assert_eq!(Terminator::bytes("\r\n"), Terminator::CRLF);
    /// let qqq = Terminator::bytes(b"qqq");
    /// # drop(qqq);
    /// ```
    pub fn bytes(terminator: impl Into<Vec<u8>>) -> Terminator {
        Terminator::Bytes(Cow::Owned(terminator.into()))
    }

    /// The most bytes a [`Framer`](super::Framer) with this terminator
    /// holds for a partial frame when the limit is `max_frame`.
    pub(super) fn buffer_bound(&self, max_frame: usize) -> usize {
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
#[non_exhaustive]
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
    /// use halfclose::framing::Prefix;
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
    pub(super) fn decode(self, prefix: &[u8]) -> usize {
        prefix
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b))
    }
}

/// Finds a byte terminator: `memchr` for one byte, a `memmem` searcher for
/// longer ones. The searcher is built the first time a terminator is looked
/// for and kept while other kinds of terminator are in force (a header line
/// and a `Len` body alternating); only a different byte string rebuilds it.
/// It is boxed: a framer for a one-byte terminator, the usual line protocol,
/// carries a pointer, not the searcher's few hundred bytes.
#[derive(Clone, Debug, Default)]
pub(super) struct Search {
    finder: Option<Box<memmem::Finder<'static>>>,
}

/// Below one SSE2 vector `memchr` looks at the bytes one by one too, after
/// an indirect call: a loop here is faster for the short reads of a slow
/// peer.
const SHORT: usize = 16;

impl Search {
    /// The first occurrence of `t` (not empty) in `hay`.
    #[inline]
    pub(super) fn find(&mut self, t: &[u8], hay: &[u8]) -> Option<usize> {
        match t {
            [b] if hay.len() < SHORT => hay.iter().position(|x| x == b),
            [b] => memchr::memchr(*b, hay),
            _ => self.find_long(t, hay),
        }
    }

    /// `t` has two bytes or more.
    fn find_long(&mut self, t: &[u8], hay: &[u8]) -> Option<usize> {
        if self.finder.as_ref().map_or(true, |f| f.needle() != t) {
            self.finder = None;
        }
        self.finder
            .get_or_insert_with(|| Box::new(memmem::Finder::new(t).into_owned()))
            .find(hay)
    }
}

/// Where a terminator `t` begins in the last bytes held, `tail` (fewer than
/// `t.len()`: those that may begin one), and ends in `input`: the index in
/// `tail` of the first one. It can reach at most `t.len() - 1` bytes into
/// the input.
pub(super) fn straddling(tail: &[u8], input: &[u8], t: &[u8]) -> Option<usize> {
    (0..tail.len()).find(|&j| {
        let (head, rest) = t.split_at(tail.len() - j);
        tail[j..] == *head && input.starts_with(rest)
    })
}

/// The length of the longest proper prefix of `t` that `tail ++ input`
/// ends with: bytes that may be the start of a terminator.
pub(super) fn partial_suffix(tail: &[u8], input: &[u8], t: &[u8]) -> usize {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The naive search the framer's `memchr` search must agree with.
    fn naive(hay: &[u8], t: &[u8]) -> Option<usize> {
        hay.windows(t.len()).position(|w| w == t)
    }

    /// Terminators at every position of haystacks shorter and longer than
    /// [`SHORT`], a vector and two.
    #[test]
    fn search_finds_the_first_occurrence_of_one_byte_and_of_longer_terminators() {
        let mut search = Search::default();
        let hay = b"xaaab-aaaab\r\n\r\nqq";
        for t in [&b"\n"[..], b"\r\n", b"aab", b"\r\n\r\n", b"qqq", b"zz"] {
            assert_eq!(search.find(t, hay), naive(hay, t), "{t:?}");
        }
        for at in 0..80 {
            let hay = [&[b'x'; 80][..at], b"\r\n", &[b'y'; 40]].concat();
            for t in [&b"\r"[..], b"\n", b"\r\n", b"x\r"] {
                for cut in 0..=hay.len() {
                    let hay = &hay[..cut];
                    assert_eq!(search.find(t, hay), naive(hay, t), "{t:?} in {hay:?}");
                }
            }
        }
    }

    /// The searcher kept for one terminator is not used for another.
    #[test]
    fn search_follows_a_change_of_terminator() {
        let mut search = Search::default();
        assert_eq!(search.find(b"\r\n", b"ab\r\ncd"), Some(2));
        assert_eq!(search.find(b"cd", b"ab\r\ncd"), Some(4));
        assert_eq!(search.find(b"\n", b"ab\r\ncd"), Some(3));
        assert_eq!(search.find(b"\r\n", b"abcd\r\n"), Some(4));
    }

    #[test]
    fn straddling_finds_a_terminator_begun_in_the_tail() {
        assert_eq!(straddling(b"\r", b"\nx", b"\r\n"), Some(0));
        assert_eq!(straddling(b"\r", b"x\n", b"\r\n"), None);
        // `aab` after `aa` then `ab`: the one starting at the second `a`.
        assert_eq!(straddling(b"aa", b"ab", b"aab"), Some(1));
        // The input is too short to finish it yet.
        assert_eq!(straddling(b"a", b"a", b"aab"), None);
        assert_eq!(straddling(b"", b"aab", b"aab"), None);
    }

    #[test]
    fn partial_suffix_keeps_what_may_begin_a_terminator() {
        assert_eq!(partial_suffix(b"", b"abc\r", b"\r\n"), 1);
        assert_eq!(partial_suffix(b"a", b"a", b"aab"), 2);
        assert_eq!(partial_suffix(b"", b"aaa", b"aab"), 2);
        assert_eq!(partial_suffix(b"", b"abc", b"\n"), 0);
    }
}
