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
//! The request parser is `halfclose_tools::http` (`tools/src/http.rs`,
//! where the bad-input tests and a fuzz target drive it too): `httparse`
//! reads the request line, header fields and chunk-size lines; the
//! framing, the limits and the refusals beyond `httparse` are its own.
//! Chunked bodies take CRLF line ends only: a bare LF there is a 400,
//! since a proxy in front that reads it otherwise would frame the body
//! differently (request smuggling).
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

use std::time::Duration;

use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, ProtocolError, Reactor, Truncated};

use halfclose_tools::http::{self, Event, Head, Limits, Parser};
use halfclose_tools::support;

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
    /// `TCP_NODELAY` is set (see `flush`).
    nodelay: bool,
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
            nodelay: false,
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
    ///
    /// Replies are small and go out as soon as they are ready (a `100
    /// Continue`, later the final reply; one batch per read when
    /// pipelining): Nagle must not hold one behind the previous one's ACK.
    /// It never holds the first write of a connection (nothing is in
    /// flight yet), so `TCP_NODELAY` is set only once a connection stays
    /// open after a write: a `Connection: close` request answered at once
    /// costs no `setsockopt` (nginx sets it on the way to keep-alive too).
    fn flush(&mut self, conn: &mut Conn<'_>) {
        if self.out.is_empty() {
            return;
        }
        let written = if self.mode == Mode::Closing {
            // Our FIN follows at once: it leaves in the reply's segment.
            conn.write_last(&self.out)
        } else {
            conn.try_write(&self.out)
        };
        if written.is_err() {
            // The connection failed; it is closing and says why.
            self.mode = Mode::Closing;
        } else if !self.nodelay && self.mode != Mode::Closing {
            self.nodelay = true;
            let _ = conn.set_nodelay(true);
        }
        self.out.clear();
    }

    fn respond(&mut self, conn: &mut Conn<'_>, head: &Head, body_len: u64) {
        let with_body = head.body != http::Body::None;
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
    fn reject(&mut self, conn: &mut Conn<'_>, err: http::Error) {
        let (code, phrase) = err.status();
        log::debug!("{:?} rejected: {err:?}", conn.id());
        let text = format!("{}\n", phrase.to_ascii_lowercase());
        let reply = format!(
            "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{text}",
            text.len()
        );
        self.out.extend_from_slice(reply.as_bytes());
        let why = match err {
            http::Error::HeadTooLarge | http::Error::BodyTooLarge => ProtocolError::FrameTooLarge,
            _ => ProtocolError::Malformed,
        };
        self.close(conn, Some(why));
    }

    /// Lingering close: the reply is flushed, then our FIN, and input is
    /// read and discarded until the client's FIN, so unread input never
    /// turns the close into a reset that would destroy the reply. Also
    /// when the client sent `Connection: close`: a client may send more
    /// after it all the same (a hostile or broken one does), and closing
    /// before its FIN (`Conn::close_promptly`) would answer that with RST.
    fn close(&mut self, conn: &mut Conn<'_>, why: Option<ProtocolError>) {
        self.mode = Mode::Closing;
        self.flush(conn);
        self.stash = Vec::new();
        match why {
            Some(err) => conn.close_with(err),
            None => conn.close(),
        }
    }
}

impl Handler for Http {
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

    /// Over TLS, a TCP FIN without `close_notify`. HTTP/1.1 frames every
    /// message itself (Content-Length, chunked), so between requests the
    /// end is as good as a FIN: nothing can have been cut off. In the
    /// middle of a request it is not: that request may be truncated, and
    /// gets no answer.
    fn handle_truncated_eof(&mut self, conn: &mut Conn<'_>) -> Truncated {
        if self.parser.is_idle() {
            log::debug!(
                "{:?} end without close_notify between requests: accepted",
                conn.id()
            );
            Truncated::Accept(self.handle_readable_eof(conn))
        } else {
            log::debug!(
                "{:?} end without close_notify in a request: truncated",
                conn.id()
            );
            Truncated::Fail
        }
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

/// http_server: HTTP/1.1 on halfclose
#[derive(clap::Parser)]
#[command(name = "http_server")]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: String,
    /// Largest request head; beyond it 431
    #[arg(long = "max-header-bytes", value_name = "N", default_value_t = 8 * 1024)]
    max_header_bytes: usize,
    /// Largest request body; beyond it 413
    #[arg(long = "max-body-bytes", value_name = "N", default_value_t = 1024 * 1024)]
    max_body_bytes: u64,
    /// Close a connection idle this long; 0 never
    #[arg(long = "idle-timeout", value_name = "SECS", default_value_t = 60)]
    idle_timeout: u64,
    /// TLS: fail a handshake not complete this long after the accept; 0
    /// never (default: the library's, 10 s)
    #[arg(long = "handshake-timeout", value_name = "MS")]
    handshake_timeout: Option<u64>,
    #[command(flatten)]
    tls: support::ServeTls,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args: Args = clap::Parser::parse();
    let (listen, idle) = (args.listen, args.idle_timeout);
    let limits = Limits {
        max_head: args.max_header_bytes,
        max_body: args.max_body_bytes,
    };
    let mut config = Config::default();
    config.idle_timeout = (idle > 0).then(|| Duration::from_secs(idle));
    if let Some(ms) = args.handshake_timeout {
        config.handshake_timeout = (ms > 0).then(|| Duration::from_millis(ms));
    }
    // One handler type: kept inline, no allocation per connection for it.
    let mut reactor = Reactor::with_inline_handlers::<Http>(config)?;
    // HTTPS: ALPN offers HTTP/1.1 only.
    let (at, note) = args.tls.apply(listen.as_str().into(), &[b"http/1.1"])?;
    let listener = reactor.listen(at, move || Http::new(limits))?;
    support::serve_noting(&mut reactor, listener, note)
}
