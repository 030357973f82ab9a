//! A sans-IO HTTP/1.x request parser: bytes in, events out.
//!
//! `httparse` reads the request line, the header fields, the trailer
//! fields and each chunk-size line. This module frames them: it collects a
//! head (or a chunk-size or trailer line) within its limit
//! before handing it over, counts the body without buffering it, and
//! refuses what `httparse` lets through but this server does not; each
//! such check is marked "Beyond httparse" where it is made.
//!
//! Line ends: the head takes CRLF or a bare LF (RFC 9112 2.2). Chunked
//! framing (chunk-size lines, the end of chunk data, trailer lines and the
//! blank line that ends them) takes CRLF only: a front proxy that reads a
//! bare LF otherwise would see another body end, and another request after
//! it (request smuggling).
//!
//! The HTTP example (`examples/http_server/main.rs`) feeds it the bytes of
//! each read; the bad-input tests (`tests/examples/bad_input.rs`) and the
//! fuzz target `fuzz/fuzz_targets/http_parser.rs` drive the same parser
//! with hostile input.

use std::mem::MaybeUninit;

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
    /// The method, as sent (`GET`, `PUT`, ...).
    pub method: String,
    /// The request target, as sent.
    pub target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub minor: u8,
    /// The client wants the connection to stay open after this request.
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request with a body.
    pub expect_continue: bool,
    /// How the body that follows is framed.
    pub body: Body,
}

/// What [`Parser::parse`] found.
#[derive(Debug)]
pub enum Event {
    /// All input was consumed and the request is not complete.
    NeedMore,
    /// A request head is complete; its body (if any) follows.
    Head(Head),
    /// The request is complete.
    Done {
        /// How many bytes its body had.
        body: u64,
    },
}

/// Why a request was rejected; the connection cannot go on after it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Error {
    /// 400: the request is malformed; the text says how.
    BadRequest(&'static str),
    /// 431: the head (or a chunk-size or trailer line) passed
    /// [`Limits::max_head`].
    HeadTooLarge,
    /// 413: the body passed [`Limits::max_body`].
    BodyTooLarge,
    /// 417: an `Expect` other than `100-continue` on an HTTP/1.1 request.
    ExpectationFailed,
    /// 501: a transfer coding applied before `chunked` (only `chunked`
    /// alone is implemented).
    NotImplemented,
    /// 505: a well-formed HTTP version other than 1.0 and 1.1 (`HTTP/2.0`,
    /// `HTTP/0.9`).
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
    /// Checking the CRLF after chunk data; `Parser::section` is how much
    /// of it arrived.
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
    /// A parser waiting for the first request, within `limits`.
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
    /// collected: what the bad-input tests bound by the limit.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Memory allocated for [`buffered`](Parser::buffered) bytes.
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
                        let head = parse_head(&mut self.buf, &self.limits)?;
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
                    let size = chunk_size(&self.buf)?;
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
                    // Exactly CRLF follows chunk data: a bare LF is refused
                    // like any other byte (see the module docs).
                    if rest[0] != b"\r\n"[self.section] {
                        return Err(Error::BadRequest("chunk data not followed by CRLF"));
                    }
                    used += 1;
                    self.section += 1;
                    if self.section == 2 {
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
                    if self.buf.as_slice() == b"\r\n" {
                        self.state = State::Complete;
                    } else {
                        // Trailer fields are checked and then ignored.
                        trailer(&self.buf)?;
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

/// How `httparse` is asked to read heads and trailers: its defaults, which
/// are the strict readings. Named here because framing depends on them:
/// one SP between the parts of the request line (not several), no
/// whitespace before the first header field, no header line skipped for
/// being invalid. Whitespace between a field name and its colon, and
/// obs-fold (a line starting with SP or HTAB), `httparse` never accepts in
/// a request or in `parse_headers`: both are errors (`HeaderName`), which
/// `tests/examples/http.rs` pins.
fn httparse_config() -> httparse::ParserConfig {
    let mut config = httparse::ParserConfig::default();
    config
        .allow_multiple_spaces_in_request_line_delimiters(false)
        .allow_space_before_first_header_name(false)
        .ignore_invalid_headers_in_requests(false);
    config
}

/// A header or trailer line `httparse` refused (or the end of the request
/// line, after the version): why, for the log.
fn field_error(e: httparse::Error) -> Error {
    Error::BadRequest(match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line break",
        // Never: there is a slot for each line (see `INLINE_SLOTS`).
        httparse::Error::TooManyHeaders => return Error::HeadTooLarge,
        _ => "malformed head",
    })
}

/// Header slots `parse_head` keeps on the stack: enough for a usual head.
/// A head with more header lines gets a slot for each, allocated for that
/// one call: at most `max_head / 2` of them (a line has two bytes at
/// least), so `httparse` never runs out of slots.
const INLINE_SLOTS: usize = 32;

/// A chunk-size line, its line end included: hex digits, optional
/// whitespace, optional `;extensions` (tolerated and ignored), CRLF.
fn chunk_size(line: &[u8]) -> Result<u64, Error> {
    let invalid = Error::BadRequest("invalid chunk size");
    // Beyond httparse: it refuses a bare LF after the size but takes one
    // inside an extension as part of the extension; only CRLF ends the
    // line here (see the module docs).
    let Some(text) = line.strip_suffix(b"\r\n") else {
        return Err(Error::BadRequest("chunk-size line not ended by CRLF"));
    };
    // Beyond httparse: it takes any byte in an extension; a control byte
    // (NUL, a stray CR, DEL) is refused, as in the head.
    if has_ctl(text) {
        return Err(invalid);
    }
    // Beyond httparse: it reads a line without digits ("", ";ext", " ")
    // as size 0, the last chunk.
    if !text.first().is_some_and(u8::is_ascii_hexdigit) {
        return Err(invalid);
    }
    // Beyond httparse: it refuses more than 16 hex digits, leading zeros
    // included. Leading zeros are skipped (one is kept); more than 16
    // digits after them is a size over `u64`, so over any body limit:
    // 413, not a wrap to a small size nor a 400.
    let zeros = text.iter().take_while(|&&b| b == b'0').count();
    let digits = text[zeros..]
        .iter()
        .take_while(|b| b.is_ascii_hexdigit())
        .count();
    if digits > 16 {
        return Err(Error::BodyTooLarge);
    }
    let from = if digits == 0 {
        zeros.saturating_sub(1)
    } else {
        zeros
    };
    match httparse::parse_chunk_size(&line[from..]) {
        // The line has one LF, at its end: `httparse` ends where it does.
        Ok(httparse::Status::Complete((n, size))) if from + n == line.len() => Ok(size),
        _ => Err(invalid),
    }
}

/// A trailer line, its line end included: a valid field, which is then
/// ignored.
fn trailer(line: &[u8]) -> Result<(), Error> {
    // Beyond httparse: only CRLF ends a line of chunked framing (see the
    // module docs).
    if !line.ends_with(b"\r\n") {
        return Err(Error::BadRequest("trailer line not ended by CRLF"));
    }
    // A valid field line, alone, leaves `httparse` wanting the next line
    // (`Partial`); an invalid one is an error. A blank line does not come
    // here.
    match httparse::parse_headers(line, &mut [httparse::EMPTY_HEADER; 1]) {
        Ok(httparse::Status::Partial) => Ok(()),
        // Never: the line is not blank.
        Ok(httparse::Status::Complete(_)) => Err(Error::BadRequest("malformed trailer line")),
        Err(e) => Err(field_error(e)),
    }
}

/// The complete head (request line, header lines, blank line).
fn parse_head(raw: &mut [u8], limits: &Limits) -> Result<Head, Error> {
    let line_end = raw
        .iter()
        .position(|&b| b == b'\n')
        .map_or(raw.len(), |i| i + 1);
    let line_len = trim_eol(&raw[..line_end]).len();
    // Beyond httparse: it reads only HTTP/1.0 and HTTP/1.1. A later 1.x
    // is answered as 1.1 (RFC 9110 2.5), so its minor digit is made 1.
    if let Some(v) = line_len.checked_sub(9) {
        let version = &raw[v..line_len];
        if version.starts_with(b" HTTP/1.") && matches!(version[8], b'2'..=b'9') {
            raw[v + 8] = b'1';
        }
    }
    let raw: &[u8] = raw;

    let lines = raw.iter().filter(|&&b| b == b'\n').count();
    let wanted = lines.saturating_sub(2);
    let mut inline = [MaybeUninit::<httparse::Header<'_>>::uninit(); INLINE_SLOTS];
    let mut heap = Vec::new();
    let slots = if wanted <= INLINE_SLOTS {
        &mut inline[..wanted]
    } else {
        heap.resize(wanted, MaybeUninit::uninit());
        &mut heap[..]
    };
    let mut req = httparse::Request::new(&mut []);
    let parsed = httparse_config().parse_request_with_uninit_headers(&mut req, raw, slots);
    // Beyond httparse: it takes obs-text (bytes over 0x7f forming UTF-8)
    // in the target; a request target is ASCII (RFC 9112 3.2). Checked
    // first, as the target comes before the version and the fields.
    if req.path.is_some_and(|target| !target.is_ascii()) {
        return Err(Error::BadRequest("invalid request target"));
    }
    match parsed {
        Ok(httparse::Status::Complete(n)) if n == raw.len() => {}
        // Never: every line ends in LF and the last one is blank.
        Ok(_) => return Err(Error::BadRequest("malformed head")),
        Err(e) => {
            return Err(match (e, req.method, req.path) {
                (httparse::Error::Version, Some(method), Some(target)) => {
                    let start = method.len() + target.len() + 2;
                    let version = raw.get(start..line_len).unwrap_or_default();
                    match version {
                        // Beyond httparse: a version it does not read is a
                        // 505 when it is well formed (HTTP/2.0, HTTP/0.9),
                        // a 400 otherwise.
                        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
                            if major.is_ascii_digit() && minor.is_ascii_digit() =>
                        {
                            Error::VersionNotSupported
                        }
                        _ => Error::BadRequest("invalid HTTP version"),
                    }
                }
                (_, None, _) => Error::BadRequest("invalid method"),
                (_, _, None) => Error::BadRequest("invalid request target"),
                _ => field_error(e),
            });
        }
    }
    let (Some(method), Some(target), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(Error::BadRequest("malformed head"));
    };

    let mut length: Option<u64> = None;
    let mut codings: Vec<Vec<u8>> = Vec::new();
    let mut chunked_seen = false;
    let (mut close, mut keep_alive, mut hosts) = (false, false, 0);
    let (mut expect_continue, mut expect_other) = (false, false);
    for field in req.headers.iter() {
        let (name, value) = (field.name.as_bytes(), field.value);
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
        method: method.to_string(),
        target: target.to_string(),
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
