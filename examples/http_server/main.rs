//! HTTP/1.1 on halfclose: keep-alive, pipelining, `Content-Length` and
//! chunked request bodies, `Expect: 100-continue`, limits on what a client
//! can make us buffer, and a lossless lingering close after every reply that
//! ends a connection.
//!
//! cargo run --release --example http_server -- --listen 127.0.0.1:0
//!
//! Prints `listening on IP:PORT` as its first line; SIGINT or SIGTERM
//! drains it gracefully (5 s deadline): idle keep-alive connections close at
//! once, a request in progress still gets its response, with
//! `Connection: close`.
//!
//! Routes: `GET /` (and `HEAD /`) answers `hello from halfclose`; a request
//! with a body, whatever its method and path, answers `received N bytes`;
//! any other `GET` or `HEAD` is 404.
//!
//! What the peer's FIN means here: the client is done sending. Requests that
//! arrived complete before it are answered, in order, then the connection
//! closes ([`Eof::Close`], lossless), so a client that half-closes after its
//! request still gets the whole response. A FIN in the middle of a request
//! leaves nothing to answer.
//!
//! Memory per connection is bounded by the limits: the request head (and a
//! chunk-size or trailer line) is buffered up to `--max-header-bytes`, a body
//! is counted and never buffered, and when the client sends requests faster
//! than it reads responses, reading pauses at the output high-water mark with
//! at most the rest of one read kept aside.
//!
//! `RUST_LOG=debug` logs every request and close;
//! `RUST_LOG=http_server::backpressure=debug` only when a connection pauses
//! and resumes reading.

use std::io::Write;
use std::time::Duration;

use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, ProtocolError, Reactor};
use signal_hook::consts::{SIGINT, SIGTERM};

/// A sans-IO HTTP/1.x request parser: bytes in, events out.
mod parse {
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
}

use parse::{Event, Head, Limits, Parser};

const HELLO: &str = "hello from halfclose\n";

/// Where the connection stands between requests.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Serve requests one after another.
    KeepAlive,
    /// A drain started while a request was in progress: answer it with
    /// `Connection: close`, then close.
    LastRequest,
    /// We closed; input is no longer ours.
    Closing,
}

struct Http {
    parser: Parser,
    /// The request whose body is being read.
    request: Option<Head>,
    /// Input not yet parsed because the output was write-blocked: at most
    /// the rest of one read. Reading is paused while it is not empty.
    stash: Vec<u8>,
    /// Replies not yet handed to the connection: the replies to one read's
    /// pipelined requests go out in one write. At most `FLUSH_AT` plus one
    /// reply.
    out: Vec<u8>,
    mode: Mode,
}

/// Hand batched replies to the connection once this many bytes gathered.
const FLUSH_AT: usize = 16 * 1024;

impl Http {
    fn new(limits: Limits) -> Http {
        Http {
            parser: Parser::new(limits),
            request: None,
            stash: Vec::new(),
            out: Vec::new(),
            mode: Mode::KeepAlive,
        }
    }

    /// Parse and answer requests from `input`, in order, until it is used
    /// up, the connection closes, or the output is write-blocked (then the
    /// rest is stashed and reading paused until `handle_write`).
    fn consume(&mut self, conn: &mut Conn<'_>, mut input: &[u8]) {
        loop {
            if self.mode == Mode::Closing {
                return;
            }
            if self.out.len() >= FLUSH_AT {
                self.flush(conn);
            }
            if conn.is_write_blocked() {
                // The client sends requests faster than it reads responses.
                self.stash.extend_from_slice(input);
                conn.pause_reading();
                log::debug!(
                    target: "http_server::backpressure",
                    "{:?} write-blocked: reading paused, {} bytes of input kept",
                    conn.id(),
                    self.stash.len()
                );
                break;
            }
            let (used, event) = match self.parser.parse(input) {
                Ok(ok) => ok,
                Err(e) => return self.reject(conn, e),
            };
            input = &input[used..];
            match event {
                Event::NeedMore => break,
                Event::Head(head) => {
                    if head.expect_continue {
                        // The body is within the limit: ask for it.
                        self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
                    }
                    self.request = Some(head);
                }
                Event::Done { body } => {
                    let head = self.request.take().expect("a head precedes Done");
                    self.respond(conn, &head, body);
                }
            }
        }
        self.flush(conn);
    }

    /// Hand the batched replies to the connection.
    fn flush(&mut self, conn: &mut Conn<'_>) {
        if !self.out.is_empty() && conn.write(&self.out).is_err() {
            // The connection failed; it is closing and says why.
            self.mode = Mode::Closing;
        }
        self.out.clear();
    }

    fn respond(&mut self, conn: &mut Conn<'_>, head: &Head, body_len: u64) {
        let with_body = head.body != parse::Body::None;
        let (status, text) = if with_body || !matches!(head.method.as_str(), "GET" | "HEAD") {
            ("200 OK", format!("received {body_len} bytes\n"))
        } else if head.target == "/" {
            ("200 OK", HELLO.to_string())
        } else {
            ("404 Not Found", "not found\n".to_string())
        };
        let last = !head.keep_alive || self.mode == Mode::LastRequest;
        log::debug!(
            "{:?} {} {} -> {status}",
            conn.id(),
            head.method,
            head.target
        );
        let connection = if last {
            "Connection: close\r\n"
        } else if head.minor == 0 {
            "Connection: keep-alive\r\n"
        } else {
            ""
        };
        let mut reply = format!(
            "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n{connection}\r\n",
            text.len()
        );
        if head.method != "HEAD" {
            reply.push_str(&text);
        }
        self.out.extend_from_slice(reply.as_bytes());
        if last {
            self.close(conn, None);
        }
    }

    /// Answer a request we cannot serve, then close: the rest of the input
    /// cannot be framed (or is more than we accept).
    fn reject(&mut self, conn: &mut Conn<'_>, err: parse::Error) {
        let (code, phrase) = err.status();
        log::debug!("{:?} rejected: {err:?}", conn.id());
        let text = format!("{}\n", phrase.to_ascii_lowercase());
        let reply = format!(
            "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        self.out.extend_from_slice(reply.as_bytes());
        let why = match err {
            parse::Error::HeadTooLarge | parse::Error::BodyTooLarge => ProtocolError::FrameTooLarge,
            _ => ProtocolError::Malformed,
        };
        self.close(conn, Some(why));
    }

    /// Lingering close: the reply is flushed, then our FIN, and input is
    /// read and discarded until the client's FIN, so unread input never
    /// turns the close into a reset that would destroy the reply.
    fn close(&mut self, conn: &mut Conn<'_>, why: Option<ProtocolError>) {
        self.flush(conn);
        self.mode = Mode::Closing;
        self.stash = Vec::new();
        match why {
            Some(err) => conn.close_with(err),
            None => conn.close(),
        }
    }
}

impl Handler for Http {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        // Replies are small and go out as soon as they are ready (a `100
        // Continue`, later the final reply; one batch per read when
        // pipelining): do not let Nagle hold one behind the previous one's ACK.
        let _ = conn.socket().set_nodelay(true);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        debug_assert!(
            self.stash.is_empty(),
            "reading is paused while input is stashed"
        );
        self.consume(conn, data);
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        // The output drained: answer what was stashed, then read again
        // unless that blocked us once more.
        let stash = std::mem::take(&mut self.stash);
        self.consume(conn, &stash);
        if self.mode != Mode::Closing && self.stash.is_empty() && !conn.is_write_blocked() {
            log::debug!(target: "http_server::backpressure", "{:?} reading resumed", conn.id());
            conn.resume_reading();
        }
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        // Every complete request before the FIN has been answered (the FIN is
        // held while reading is paused). Half a request has no answer.
        if !self.parser.is_idle() {
            log::debug!("{:?} FIN in the middle of a request", conn.id());
            conn.close_with(ProtocolError::IncompleteFrame);
        }
        Eof::Close
    }

    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        if self.mode != Mode::KeepAlive {
            return;
        }
        if self.parser.is_idle() && self.request.is_none() && self.stash.is_empty() {
            // Between requests: nothing is lost by closing now.
            self.close(conn, None);
        } else {
            self.mode = Mode::LastRequest;
        }
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        log::debug!(
            "{:?} closed: {} ({} bytes in, {} out, {} dropped)",
            closed.id,
            closed.reason,
            closed.bytes_in,
            closed.bytes_out,
            closed.dropped
        );
    }
}

const USAGE: &str =
    "usage: http_server [--listen ADDR] [--max-header-bytes N] [--max-body-bytes N] [--idle-timeout SECS]
  --listen ADDR          address to listen on (default 127.0.0.1:8080)
  --max-header-bytes N   largest request head; beyond it 431 (default 8192)
  --max-body-bytes N     largest request body; beyond it 413 (default 1048576)
  --idle-timeout SECS    close a connection idle this long; 0 never (default 60)";

fn usage() -> ! {
    eprintln!("{USAGE}");
    std::process::exit(2)
}

fn number(value: Option<String>) -> u64 {
    value
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| usage())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut listen = "127.0.0.1:8080".to_string();
    let mut limits = Limits {
        max_head: 8 * 1024,
        max_body: 1024 * 1024,
    };
    let mut idle = 60;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage()),
            "--max-header-bytes" => limits.max_head = usize::try_from(number(args.next()))?,
            "--max-body-bytes" => limits.max_body = number(args.next()),
            "--idle-timeout" => idle = number(args.next()),
            "-h" | "--help" => {
                println!("http_server: HTTP/1.1 on halfclose\n\n{USAGE}");
                return Ok(());
            }
            _ => usage(),
        }
    }
    let mut config = Config::default();
    config.idle_timeout = (idle > 0).then(|| Duration::from_secs(idle));
    let mut reactor = Reactor::with_config(config)?;
    let listener = reactor.listen(listen.parse()?, move || Http::new(limits))?;
    let addr = reactor.local_addr(listener).expect("listener is open");
    println!("listening on {addr}");
    std::io::stdout().flush()?;

    let handle = reactor.handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info!("signal {sig}: draining");
            let _ = handle.drain(Duration::from_secs(5));
        }
    });
    reactor.run()?;
    let stats = reactor.stats();
    log::info!(
        "stopped: {} accepted, {} closed, {} aborted",
        stats.accepted,
        stats.closed,
        stats.aborts
    );
    Ok(())
}
