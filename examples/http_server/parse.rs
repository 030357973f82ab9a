//! A sans-IO HTTP/1.x request parser: bytes in, events out.
//!
//! The server in `main.rs` feeds it the bytes of each read.
//! `tests/r_bad_input.rs` and the fuzz target `fuzz/fuzz_targets/http_parser.rs`
//! include this same file to drive it with hostile input.

/// What a client may make the parser buffer or accept.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Bytes in a request head (request line, headers, the blank line),
    /// and likewise in a chunk-size line and in a trailer section.
    pub max_head: usize,
    /// Bytes in a request body.
    pub max_body: u64,
}

/// How the request body is framed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Body {
    /// No body.
    None,
    /// `Content-Length`.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// A parsed request head.
#[derive(Debug)]
pub struct Head {
    pub method: String,
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The client wants the connection to stay open after this request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
    pub body: Body,
}

/// What [`Parser::parse`] found.
#[derive(Debug)]
pub enum Event {
    /// All input was consumed and the request is not complete.
    NeedMore,
    /// A request head is complete; its body (if any) follows.
    Head(Head),
    /// The request is complete; its body had this many bytes.
    Done { body: u64 },
}

/// Why a request was rejected; the connection cannot go on after it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    BadRequest(&'static str),
    HeadTooLarge,
    BodyTooLarge,
    ExpectationFailed,
    NotImplemented,
    VersionNotSupported,
}

impl Error {
    /// Status code and reason phrase of the reply.
    pub fn status(self) -> (u16, &'static str) {
        match self {
            Error::BadRequest(_) => (400, "Bad Request"),
            Error::HeadTooLarge => (431, "Request Header Fields Too Large"),
            Error::BodyTooLarge => (413, "Content Too Large"),
            Error::ExpectationFailed => (417, "Expectation Failed"),
            Error::NotImplemented => (501, "Not Implemented"),
            Error::VersionNotSupported => (505, "HTTP Version Not Supported"),
        }
    }
}

enum State {
    /// Collecting the head; `Parser::line` is where its current line starts.
    Head,
    /// `left` body bytes to go.
    Body {
        left: u64,
    },
    /// Collecting a chunk-size line.
    ChunkSize,
    /// `left` bytes of chunk data to go.
    ChunkData {
        left: u64,
    },
    /// Collecting the line break after chunk data.
    ChunkEnd,
    /// Collecting trailer lines, up to the blank line.
    Trailers,
    /// The request is complete; `Done` is reported next.
    Complete,
    Failed(Error),
}

/// One connection's request parser. Requests follow one another in the
/// same input (pipelining); the parser keeps its place across calls.
pub struct Parser {
    limits: Limits,
    state: State,
    /// The head, or the current chunk-size or trailer line, so far.
    buf: Vec<u8>,
    /// Where the current head line starts in `buf`.
    line: usize,
    /// Bytes consumed by the current head, line or trailer section,
    /// counted against `limits.max_head`.
    section: usize,
    /// Body bytes of the current request.
    body: u64,
}

impl Parser {
    pub fn new(limits: Limits) -> Parser {
        Parser {
            limits,
            state: State::Head,
            buf: Vec::new(),
            line: 0,
            section: 0,
            body: 0,
        }
    }

    /// Whether no byte of a next request has arrived (keep-alive idle).
    pub fn is_idle(&self) -> bool {
        matches!(self.state, State::Head) && self.section == 0
    }

    /// Bytes held for the head, or the chunk-size or trailer line, being
    /// collected. Only for `tests/r_bad_input.rs`, which includes this file
    /// (the example is not built with `cfg(test)`).
    #[cfg(test)]
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Memory allocated for [`buffered`](Parser::buffered) bytes; as above,
    /// only for the tests.
    #[cfg(test)]
    pub fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Consume a prefix of `input` and report what it completed: returns
    /// the bytes consumed and the event. [`Event::NeedMore`] means all of
    /// `input` was consumed; call again with the next bytes. After any
    /// other event call again with the rest of `input` (possibly empty:
    /// a request without a body is `Done` with no further input).
    ///
    /// Once an error is returned it is returned again on every call.
    pub fn parse(&mut self, input: &[u8]) -> Result<(usize, Event), Error> {
        let result = self.step(input);
        if let Err(e) = result {
            self.state = State::Failed(e);
            self.buf = Vec::new();
        }
        result
    }

    fn step(&mut self, input: &[u8]) -> Result<(usize, Event), Error> {
        let mut used = 0;
        loop {
            let rest = &input[used..];
            match self.state {
                State::Failed(e) => return Err(e),
                State::Complete => {
                    self.state = State::Head;
                    self.section = 0;
                    return Ok((used, Event::Done { body: self.body }));
                }
                _ if rest.is_empty() => return Ok((used, Event::NeedMore)),
                State::Head => {
                    let (n, done) = self.take_line(rest, Error::HeadTooLarge)?;
                    used += n;
                    if !done {
                        continue;
                    }
                    if !trim_eol(&self.buf[self.line..]).is_empty() {
                        self.line = self.buf.len();
                    } else if self.line == 0 {
                        // A blank line before the request line is
                        // ignored (RFC 9112 2.2); it still counts
                        // against the limit.
                        self.buf.clear();
                    } else {
                        let head = parse_head(&self.buf, &self.limits)?;
                        self.buf.clear();
                        self.line = 0;
                        self.section = 0;
                        self.body = 0;
                        self.state = match head.body {
                            Body::None | Body::Length(0) => State::Complete,
                            Body::Length(n) => State::Body { left: n },
                            Body::Chunked => State::ChunkSize,
                        };
                        return Ok((used, Event::Head(head)));
                    }
                }
                State::Body { left } => {
                    let n = left.min(rest.len() as u64);
                    used += n as usize;
                    self.body += n;
                    self.state = if n == left {
                        State::Complete
                    } else {
                        State::Body { left: left - n }
                    };
                }
                State::ChunkSize => {
                    let (n, done) =
                        self.take_line(rest, Error::BadRequest("chunk-size line too long"))?;
                    used += n;
                    if !done {
                        continue;
                    }
                    let size = chunk_size(trim_eol(&self.buf))?;
                    self.buf.clear();
                    self.section = 0;
                    if size == 0 {
                        self.state = State::Trailers;
                    } else {
                        match self.body.checked_add(size) {
                            Some(total) if total <= self.limits.max_body => {}
                            _ => return Err(Error::BodyTooLarge),
                        }
                        self.state = State::ChunkData { left: size };
                    }
                }
                State::ChunkData { left } => {
                    let n = left.min(rest.len() as u64);
                    used += n as usize;
                    self.body += n;
                    self.state = if n == left {
                        State::ChunkEnd
                    } else {
                        State::ChunkData { left: left - n }
                    };
                }
                State::ChunkEnd => {
                    // Only "\r\n" (or a bare "\n") may follow chunk data.
                    let missing = Error::BadRequest("chunk data not followed by a line break");
                    let room = 2usize.saturating_sub(self.section);
                    let (n, done) = match rest.iter().take(room).position(|&b| b == b'\n') {
                        Some(i) => (i + 1, true),
                        None if rest.len() < room => (rest.len(), false),
                        None => return Err(missing),
                    };
                    self.buf.extend_from_slice(&rest[..n]);
                    self.section += n;
                    used += n;
                    if done {
                        if !trim_eol(&self.buf).is_empty() {
                            return Err(missing);
                        }
                        self.buf.clear();
                        self.section = 0;
                        self.state = State::ChunkSize;
                    }
                }
                State::Trailers => {
                    let (n, done) = self.take_line(rest, Error::HeadTooLarge)?;
                    used += n;
                    if !done {
                        continue;
                    }
                    let line = trim_eol(&self.buf);
                    if line.is_empty() {
                        self.state = State::Complete;
                    } else {
                        // Trailer fields are checked and then ignored.
                        field(line)?;
                    }
                    self.buf.clear();
                }
            }
        }
    }

    /// Move `input` up to and including its first LF into `buf`, within
    /// what is left of `limits.max_head` for this section. Returns the
    /// bytes consumed and whether a line is complete.
    fn take_line(&mut self, input: &[u8], too_long: Error) -> Result<(usize, bool), Error> {
        let (n, done) = match input.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (input.len(), false),
        };
        if self.section + n > self.limits.max_head {
            return Err(too_long);
        }
        // Grow geometrically, but never past the limit: what a client can
        // make us allocate is `max_head`, not the twice that doubling from
        // just under it would give.
        let want = self.buf.len() + n;
        if want > self.buf.capacity() {
            let cap = (self.buf.capacity() * 2)
                .min(self.limits.max_head)
                .max(want);
            self.buf.reserve_exact(cap - self.buf.len());
        }
        self.buf.extend_from_slice(&input[..n]);
        self.section += n;
        Ok((n, done))
    }
}

/// A line without its "\n" or "\r\n".
fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Optional whitespace (SP, HTAB) trimmed from both ends.
fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |i| i + 1);
    &s[start..end]
}

/// Control characters other than HTAB: NUL, a stray CR, DEL...
fn has_ctl(s: &[u8]) -> bool {
    s.iter().any(|&b| (b < 0x20 && b != b'\t') || b == 0x7f)
}

/// RFC 9110 `tchar`: what methods and header names are made of.
fn is_token(s: &[u8]) -> bool {
    !s.is_empty()
        && s.iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header or trailer line split into name and trimmed value.
fn field(line: &[u8]) -> Result<(&[u8], &[u8]), Error> {
    if has_ctl(line) {
        return Err(Error::BadRequest("control character in a header"));
    }
    if line.starts_with(b" ") || line.starts_with(b"\t") {
        return Err(Error::BadRequest("obsolete line folding"));
    }
    let colon = line
        .iter()
        .position(|&b| b == b':')
        .ok_or(Error::BadRequest("header line without a colon"))?;
    let name = &line[..colon];
    if !is_token(name) {
        return Err(Error::BadRequest("invalid header name"));
    }
    Ok((name, trim_ows(&line[colon + 1..])))
}

/// Digits to a number, saturating: a value too large for `u64` is
/// still larger than any limit.
fn decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some(s.iter().fold(0u64, |n, &d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

/// A chunk-size line: hex digits, optional whitespace, optional
/// `;extensions` (tolerated and ignored).
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let bad = Error::BadRequest("invalid chunk size");
    if has_ctl(line) {
        return Err(bad);
    }
    let end = line.iter().position(|&b| b == b';').unwrap_or(line.len());
    let digits = trim_ows(&line[..end]);
    if digits.is_empty() || line.first().map_or(true, |b| !b.is_ascii_hexdigit()) {
        return Err(bad);
    }
    let mut size = 0u64;
    for &b in digits {
        let d = (b as char).to_digit(16).ok_or(bad)?;
        size = size
            .checked_mul(16)
            .and_then(|s| s.checked_add(u64::from(d)))
            .ok_or(Error::BodyTooLarge)?;
    }
    Ok(size)
}

/// The complete head (request line, header lines, blank line).
fn parse_head(raw: &[u8], limits: &Limits) -> Result<Head, Error> {
    let mut lines = raw
        .split(|&b| b == b'\n')
        .map(trim_eol)
        .take_while(|l| !l.is_empty());
    let request_line = lines.next().unwrap_or_default();
    if has_ctl(request_line) {
        return Err(Error::BadRequest("control character in the request line"));
    }
    let mut parts = request_line.split(|&b| b == b' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::BadRequest("malformed request line"));
    };
    if !is_token(method) {
        return Err(Error::BadRequest("invalid method"));
    }
    if target.is_empty() || !target.iter().all(|&b| b.is_ascii_graphic()) {
        return Err(Error::BadRequest("invalid request target"));
    }
    let minor = match version {
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            if *major != b'1' {
                return Err(Error::VersionNotSupported);
            }
            (minor - b'0').min(1)
        }
        _ => return Err(Error::BadRequest("invalid HTTP version")),
    };

    let mut length: Option<u64> = None;
    let mut codings: Vec<Vec<u8>> = Vec::new();
    let mut chunked_seen = false;
    let (mut close, mut keep_alive, mut hosts) = (false, false, 0);
    let (mut expect_continue, mut expect_other) = (false, false);
    for line in lines {
        let (name, value) = field(line)?;
        let list = || {
            value
                .split(|&b| b == b',')
                .map(trim_ows)
                .filter(|v| !v.is_empty())
        };
        if name.eq_ignore_ascii_case(b"content-length") {
            // "5", or a list of equal values ("5, 5") from a proxy that
            // merged duplicates; anything else is ambiguous framing.
            for v in value.split(|&b| b == b',').map(trim_ows) {
                let n = decimal(v).ok_or(Error::BadRequest("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Error::BadRequest("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked_seen = true;
            codings.extend(list().map(|c| c.to_ascii_lowercase()));
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in list() {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case(b"expect") {
            if value.eq_ignore_ascii_case(b"100-continue") {
                expect_continue = true;
            } else {
                expect_other = true;
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            hosts += 1;
        }
    }
    if hosts > 1 || (minor == 1 && hosts == 0) {
        return Err(Error::BadRequest("missing or repeated Host"));
    }
    let body = match (length, chunked_seen) {
        (Some(_), true) => {
            return Err(Error::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ))
        }
        (None, true) if minor == 0 => {
            return Err(Error::BadRequest("Transfer-Encoding in HTTP/1.0"))
        }
        (None, true) => {
            if codings.last().map(Vec::as_slice) != Some(b"chunked") {
                return Err(Error::BadRequest(
                    "chunked is not the final transfer coding",
                ));
            }
            if codings.len() > 1 {
                return Err(Error::NotImplemented);
            }
            Body::Chunked
        }
        (Some(n), false) if n > limits.max_body => return Err(Error::BodyTooLarge),
        (Some(n), false) => Body::Length(n),
        (None, false) => Body::None,
    };
    // HTTP/1.0 clients do not know Expect; it is ignored (RFC 9110 10.1.1).
    if minor == 1 && expect_other {
        return Err(Error::ExpectationFailed);
    }
    Ok(Head {
        method: String::from_utf8_lossy(method).into_owned(),
        target: String::from_utf8_lossy(target).into_owned(),
        minor,
        keep_alive: if minor == 1 {
            !close
        } else {
            keep_alive && !close
        },
        expect_continue: minor == 1
            && expect_continue
            && !matches!(body, Body::None | Body::Length(0)),
        body,
    })
}
