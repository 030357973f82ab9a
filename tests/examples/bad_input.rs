//! Bad input: the HTTP example's request parser and the framing layer
//! ([`halfclose::framing::Framer`]) fed what a hostile peer sends: random
//! bytes, oversized lines, missing terminators, invalid chunk sizes, NUL
//! bytes, header floods, byte-at-a-time feeding, garbage pipelined after a
//! valid request.
//!
//! What holds for every input: no panic; a clear outcome (requests or
//! frames, then need-more, or a named error that stays); never more
//! buffered than the configured limit plus a small constant, at any step;
//! the same outcome however the bytes are split into reads. The parser is
//! the one the example runs (`halfclose_tools::http`), not a copy; the
//! framer is checked against `halfclose_tools::framer_model`, which its
//! fuzz target shares. The framer's split-invariance over a small alphabet is
//! pinned by its unit tests in `src/framing/framer.rs`; here the alphabet is
//! every byte, the terminators are hostile and lengths are announced by the
//! peer.
//!
//! Over the wire, the same generators give a corpus of hostile requests sent
//! to the running `http_server` example next to a well-behaved keep-alive
//! client; the parser, run in this process, says what the server must
//! answer. That part runs on TCP only: the parser never sees the transport.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use halfclose::framing::{self, Framer, Prefix, Terminator};
use halfclose_tools::framer_model::{frame_split, framer_bound};
use halfclose_tools::http::{Body, Error, Event, Limits, Parser};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::select;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;

use crate::util::{blocking_connect, pattern, status_kib, Server, DEADLINE};

/// Cases per property: enough to reach the deep states, few enough that
/// the file runs in seconds in a debug build.
const CASES: u32 = 256;

/// [`CASES`] cases; a failing case is printed, not saved to a file.
fn config() -> ProptestConfig {
    ProptestConfig {
        cases: CASES,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// The HTTP request parser, sans-IO.

/// What the parser reported, `NeedMore` left out.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Got {
    Head {
        method: String,
        target: String,
        minor: u8,
        keep_alive: bool,
        expect_continue: bool,
        body: Body,
    },
    Done {
        body: u64,
    },
}

/// How a stream ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum End {
    /// Every byte was consumed; `idle`: between requests (no byte of a next
    /// one arrived), otherwise in the middle of one.
    NeedMore { idle: bool },
    /// Rejected, with the reply's status; the connection cannot go on.
    Failed(Error),
}

/// The whole outcome of parsing a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Parsed {
    events: Vec<Got>,
    end: End,
}

/// The most memory the parser's buffer may hold: the head limit, or the
/// 8 bytes a `Vec` allocates at least when the limit is tinier.
fn capacity_bound(limits: Limits) -> usize {
    limits.max_head.max(8)
}

/// Feed `stream` to a new parser in reads of the sizes `sizes` gives
/// (cycled; empty: one read), calling `parse` until each read is used up,
/// as the server does. Checks at every step: progress (a call consumes
/// bytes or reports an event; `NeedMore` only once all is consumed, and the
/// number of calls is bounded), the buffer within the limit, an error that
/// stays and releases the buffer.
#[track_caller]
fn parse_split(limits: Limits, stream: &[u8], sizes: &[usize]) -> Parsed {
    let mut parser = Parser::new(limits);
    let mut events = Vec::new();
    let max_calls = 4 * stream.len() + 8;
    let mut calls = 0;
    let mut rest = stream;
    let mut i = 0;
    loop {
        let n = match sizes {
            [] => rest.len(),
            _ => sizes[i % sizes.len()].clamp(1, rest.len().max(1)),
        };
        i += 1;
        let (mut input, after) = rest.split_at(n.min(rest.len()));
        rest = after;
        loop {
            calls += 1;
            assert!(calls <= max_calls, "no progress: {calls} calls");
            let result = parser.parse(input);
            assert!(
                parser.buffered() <= limits.max_head,
                "{} bytes buffered, limit {}",
                parser.buffered(),
                limits.max_head
            );
            assert!(
                parser.buffer_capacity() <= capacity_bound(limits),
                "{} bytes allocated, limit {}",
                parser.buffer_capacity(),
                limits.max_head
            );
            let (used, event) = match result {
                Ok(ok) => ok,
                Err(e) => {
                    assert_eq!(parser.buffer_capacity(), 0, "buffer released on error");
                    assert_eq!(
                        parser.parse(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").err(),
                        Some(e),
                        "the error stays"
                    );
                    assert!(!parser.is_idle());
                    return Parsed {
                        events,
                        end: End::Failed(e),
                    };
                }
            };
            assert!(used <= input.len());
            input = &input[used..];
            match event {
                Event::NeedMore => {
                    assert!(input.is_empty(), "NeedMore with input left");
                    break;
                }
                Event::Head(h) => events.push(Got::Head {
                    method: h.method,
                    target: h.target,
                    minor: h.minor,
                    keep_alive: h.keep_alive,
                    expect_continue: h.expect_continue,
                    body: h.body,
                }),
                Event::Done { body } => events.push(Got::Done { body }),
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    Parsed {
        events,
        end: End::NeedMore {
            idle: parser.is_idle(),
        },
    }
}

fn parse_whole(limits: Limits, stream: &[u8]) -> Parsed {
    parse_split(limits, stream, &[])
}

/// The events are well formed: each head is followed by its `Done`, whose
/// body length agrees with the head's framing and the limit.
#[track_caller]
fn check_events(limits: Limits, parsed: &Parsed) {
    let mut open: Option<Body> = None;
    for ev in &parsed.events {
        match (ev, open) {
            (Got::Head { body, .. }, None) => {
                if let Body::Length(n) = body {
                    assert!(*n <= limits.max_body, "Content-Length {n} over the limit");
                }
                open = Some(*body);
            }
            (Got::Done { body }, Some(framing)) => {
                assert!(*body <= limits.max_body, "body {body} over the limit");
                match framing {
                    Body::None => assert_eq!(*body, 0),
                    Body::Length(n) => assert_eq!(*body, n),
                    Body::Chunked => {}
                }
                open = None;
            }
            _ => panic!("events out of order: {:?}", parsed.events),
        }
    }
    if open.is_some() {
        assert!(
            matches!(parsed.end, End::Failed(_) | End::NeedMore { idle: false }),
            "a request in progress at {:?}",
            parsed.end
        );
    }
}

fn limits(max_head: usize, max_body: u64) -> Limits {
    Limits { max_head, max_body }
}

/// Parse `stream` whole, in reads of 1 to 7 bytes, and byte at a time;
/// the three outcomes must agree. Returns the outcome.
#[track_caller]
fn parse_every_way(limits: Limits, stream: &[u8]) -> Parsed {
    let whole = parse_whole(limits, stream);
    check_events(limits, &whole);
    for sizes in [&[1][..], &[2, 3, 5, 7]] {
        assert_eq!(
            parse_split(limits, stream, sizes),
            whole,
            "reads of {sizes:?}"
        );
    }
    whole
}

// Generators of hostile requests.

/// Line endings: mostly CRLF, sometimes a bare LF, a bare CR, none at all,
/// or a CR too many.
fn eol() -> impl Strategy<Value = &'static [u8]> {
    prop_oneof![
        8 => Just(&b"\r\n"[..]),
        1 => Just(&b"\n"[..]),
        1 => Just(&b"\r"[..]),
        1 => Just(&b""[..]),
        1 => Just(&b"\r\r\n"[..]),
    ]
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..max)
}

fn request_line() -> impl Strategy<Value = Vec<u8>> {
    let method = select(vec![
        "GET", "HEAD", "POST", "PUT", "DELETE", "G\0T", "", "GE\tT", "G:T", "\u{7f}",
    ]);
    let target = select(vec![
        "/",
        "/x",
        "*",
        "",
        "/a b",
        "/\0",
        "/\u{7f}",
        "/caf\u{e9}",
    ]);
    let version = select(vec![
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/1.9",
        "HTTP/2.0",
        "HTTP/0.9",
        "HTTP/1",
        "http/1.1",
        "HTTP/1.1 ",
        "HTTP/1.10",
        "HTTP/x.y",
        "",
    ]);
    prop_oneof![
        8 => (method, target, version).prop_map(|(m, t, v)| format!("{m} {t} {v}").into_bytes()),
        // An oversized target.
        1 => (0usize..3000).prop_map(|n| [b"GET /".to_vec(), b"a".repeat(n), b" HTTP/1.1".to_vec()].concat()),
        1 => bytes(24),
    ]
}

fn content_length() -> impl Strategy<Value = &'static str> {
    select(vec![
        "0",
        "5",
        "64",
        "5, 5",
        "5, 6",
        "5,",
        "-1",
        "+5",
        "1e3",
        "0x10",
        "",
        " 7 ",
        "99999999999999999999999",
        "18446744073709551615",
        "18446744073709551616",
        "5\0",
    ])
}

fn header() -> impl Strategy<Value = Vec<u8>> {
    let fixed = select(vec![
        "Host: a",
        "Connection: close",
        "Connection: keep-alive",
        "Connection: keep-alive, close",
        "Expect: 100-continue",
        "Expect: 101-nope",
        "Transfer-Encoding: chunked",
        "Transfer-Encoding: gzip, chunked",
        "Transfer-Encoding: chunked, gzip",
        "Transfer-Encoding:",
        " folded: x",
        "\tfolded: x",
        "NoColon",
        "Bad Name: v",
        ": no name",
        "X-Nul: a\0b",
        "X-Cr: a\rb",
        "X-Del: \u{7f}",
        "Host: a\0",
        "X-Ok:",
    ]);
    prop_oneof![
        6 => fixed.prop_map(|h| h.as_bytes().to_vec()),
        2 => content_length().prop_map(|v| format!("Content-Length: {v}").into_bytes()),
        // One giant header.
        1 => (0usize..3000).prop_map(|n| [b"X-Big: ".to_vec(), b"v".repeat(n)].concat()),
        1 => bytes(16),
    ]
}

fn chunk_size() -> impl Strategy<Value = &'static str> {
    select(vec![
        "0",
        "1",
        "5",
        "a",
        "F",
        "5;ext=1",
        "5 ",
        "ffffffffffffffffff",
        "FFFFFFFFFFFFFFFF",
        "10000000000000000",
        "00000000000000000000000000000001",
        "-1",
        "+5",
        "zz",
        "",
        " 5",
        "5;\0",
        "5\0",
        "0x5",
        "5\t",
    ])
}

/// A chunked body: well-formed chunks and hostile ones, maybe a last
/// chunk with trailers, maybe not.
fn chunked_body() -> impl Strategy<Value = Vec<u8>> {
    let chunk = prop_oneof![
        3 => (0usize..40, eol()).prop_map(|(n, e)| {
            [format!("{n:x}\r\n").into_bytes(), pattern(n, n as u64), e.to_vec()].concat()
        }),
        2 => (chunk_size(), eol(), bytes(20), eol()).prop_map(|(s, e1, data, e2)| {
            [s.as_bytes(), e1, &data, e2].concat()
        }),
        // A chunk-size line that never ends.
        1 => (0usize..3000).prop_map(|n| b"0".repeat(n)),
    ];
    let last = prop_oneof![
        Just(Vec::new()),
        (vec((header(), eol()), 0..3), eol()).prop_map(|(trailers, e)| {
            let mut out = b"0\r\n".to_vec();
            for (t, te) in trailers {
                out.extend_from_slice(&t);
                out.extend_from_slice(te);
            }
            out.extend_from_slice(e);
            out
        }),
    ];
    (vec(chunk, 0..4), last).prop_map(|(chunks, last)| [chunks.concat(), last].concat())
}

/// A request: a request line, a Host (usually), hostile headers, maybe a
/// flood of small ones, the blank line (or not), a body of any framing.
fn hostile_request() -> impl Strategy<Value = Vec<u8>> {
    (
        0usize..3,
        request_line(),
        eol(),
        prop::bool::weighted(0.8),
        vec((header(), eol()), 0..6),
        prop_oneof![6 => Just(0usize), 1 => 0usize..600],
        eol(),
        prop_oneof![Just(Vec::new()), bytes(80), chunked_body()],
    )
        .prop_map(|(blank, line, e, host, headers, flood, end, body)| {
            let mut out = b"\r\n".repeat(blank);
            out.extend_from_slice(&line);
            out.extend_from_slice(e);
            if host {
                out.extend_from_slice(b"Host: a\r\n");
            }
            for (h, he) in headers {
                out.extend_from_slice(&h);
                out.extend_from_slice(he);
            }
            out.extend_from_slice(&b"X-F: y\r\n".repeat(flood));
            out.extend_from_slice(end);
            out.extend_from_slice(&body);
            out
        })
}

/// A request a well-behaved client sends.
fn valid_request() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        select(vec!["/", "/missing"])
            .prop_map(|t| format!("GET {t} HTTP/1.1\r\nHost: a\r\n\r\n").into_bytes()),
        Just(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
        Just(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n".to_vec()),
        (0usize..100).prop_map(|n| {
            [
                format!("POST /up HTTP/1.1\r\nHost: a\r\nContent-Length: {n}\r\n\r\n").into_bytes(),
                pattern(n, 7),
            ]
            .concat()
        }),
        (1usize..50).prop_map(|n| {
            [
                format!(
                    "PUT /up HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n{n:x}\r\n"
                )
                .into_bytes(),
                pattern(n, 9),
                b"\r\n0\r\n\r\n".to_vec(),
            ]
            .concat()
        }),
    ]
}

/// A connection's worth of input: requests, hostile and valid, one after
/// another (pipelined), then maybe garbage.
fn hostile_stream() -> impl Strategy<Value = Vec<u8>> {
    (
        vec(
            prop_oneof![2 => hostile_request(), 1 => valid_request()],
            1..4,
        ),
        prop_oneof![2 => Just(Vec::new()), 1 => bytes(32)],
    )
        .prop_map(|(requests, tail)| [requests.concat(), tail].concat())
}

fn any_limits() -> impl Strategy<Value = Limits> {
    (
        select(vec![16usize, 64, 256, 2048]),
        select(vec![0u64, 16, 1024, 1 << 20]),
    )
        .prop_map(|(h, b)| limits(h, b))
}

proptest! {
    #![proptest_config(config())]

    /// Random bytes, in any split: no panic, the same outcome whole, in
    /// small reads and byte at a time, the buffer within the head limit at
    /// every step, an error that stays.
    #[test]
    fn http_random_bytes_any_split(
        limits in any_limits(),
        stream in bytes(2048),
        sizes in vec(1usize..64, 1..8),
    ) {
        let whole = parse_every_way(limits, &stream);
        prop_assert_eq!(parse_split(limits, &stream, &sizes), whole);
    }

    /// Hostile requests (oversized lines, missing line ends, invalid chunk
    /// sizes, NUL bytes, header floods, giant headers) mixed with valid
    /// ones and followed by garbage: the same checks.
    #[test]
    fn http_hostile_requests_any_split(
        limits in any_limits(),
        stream in hostile_stream(),
        sizes in vec(1usize..64, 1..8),
    ) {
        let whole = parse_every_way(limits, &stream);
        prop_assert_eq!(parse_split(limits, &stream, &sizes), whole);
    }

    /// Garbage pipelined after a valid request: the valid request is
    /// reported whole (head, then its body) before anything the garbage
    /// causes.
    #[test]
    fn http_valid_request_then_garbage(
        request in valid_request(),
        garbage in prop_oneof![bytes(64), hostile_request()],
        split in 1usize..16,
    ) {
        let limits = limits(2048, 1 << 20);
        let alone = parse_whole(limits, &request);
        prop_assert_eq!(alone.events.len(), 2);
        prop_assert_eq!(alone.end, End::NeedMore { idle: true });
        let stream = [request, garbage].concat();
        let both = parse_split(limits, &stream, &[split]);
        check_events(limits, &both);
        prop_assert_eq!(&both.events[..2], &alone.events[..]);
    }
}

/// Parse `stream` every way and expect `end` and `requests` complete
/// requests before it.
#[track_caller]
fn expect(limits: Limits, stream: &[u8], requests: usize, end: End) {
    let parsed = parse_every_way(limits, stream);
    let done = parsed
        .events
        .iter()
        .filter(|e| matches!(e, Got::Done { .. }))
        .count();
    assert_eq!(
        (done, parsed.end),
        (requests, end),
        "{:?}",
        String::from_utf8_lossy(stream)
    );
}

fn bad(why: &'static str) -> End {
    End::Failed(Error::BadRequest(why))
}

const TOO_LARGE: End = End::Failed(Error::HeadTooLarge);
const MORE: End = End::NeedMore { idle: false };
const IDLE: End = End::NeedMore { idle: true };

/// E6: a head of exactly `max_head` bytes passes, one byte more is 431
/// whether it is the request line, one giant header or a flood of small
/// ones, and the 431 comes at the byte that crosses the limit (not at the
/// line end that never arrives); blank lines before the request line count.
#[test]
fn e6_head_limit_is_exact_and_covers_every_line() {
    let l = limits(64, 1024);
    let head = |pad: usize| {
        let mut h = b"GET / HTTP/1.1\r\nHost: a\r\nX: ".to_vec();
        h.extend_from_slice(&b"v".repeat(pad));
        h.extend_from_slice(b"\r\n\r\n");
        h
    };
    let exact = head(64 - head(0).len());
    assert_eq!(exact.len(), 64);
    expect(l, &exact, 1, IDLE);
    expect(l, &head(64 - head(0).len() + 1), 0, TOO_LARGE);

    let mut line = b"GET /".to_vec();
    line.extend_from_slice(&b"a".repeat(100));
    expect(l, &line[..64], 0, MORE);
    expect(l, &line[..65], 0, TOO_LARGE);

    let giant = [&b"GET / HTTP/1.1\r\nX-Big: "[..], &b"v".repeat(1 << 16)].concat();
    expect(l, &giant, 0, TOO_LARGE);
    let flood = [
        &b"GET / HTTP/1.1\r\nHost: a\r\n"[..],
        &b"X: y\r\n".repeat(1000),
    ]
    .concat();
    expect(l, &flood, 0, TOO_LARGE);
    let blanks = b"\r\n".repeat(33);
    expect(l, &blanks[..64], 0, MORE);
    expect(l, &blanks, 0, TOO_LARGE);
}

/// E6: a request that never ends (no blank line, a body shorter than its
/// `Content-Length`, a chunked body without its last chunk) is need-more,
/// not idle, holding at most the head limit; the server closes it when the
/// FIN comes (incomplete) or on its idle timeout.
#[test]
fn e6_missing_terminators_are_need_more_and_bounded() {
    let l = limits(256, 1024);
    expect(l, b"GET / HTTP/1.1\r\nHost: a\r\n", 0, MORE);
    expect(l, b"GET / HTTP/1.1\r\nHost: a\r\n\r", 0, MORE);
    expect(l, b"GET / HTTP/1.1", 0, MORE);
    expect(
        l,
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc",
        0,
        MORE,
    );
    let chunked = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    for tail in [
        &b""[..],
        b"5",
        b"5\r\nab",
        b"5\r\nabcde",
        b"5\r\nabcde\r\n0\r\n",
    ] {
        expect(l, &[&chunked[..], tail].concat(), 0, MORE);
    }
    // Bare LF line ends are accepted in the head (RFC 9112 2.2); a bare CR
    // is not one.
    expect(l, b"GET / HTTP/1.1\nHost: a\n\n", 1, IDLE);
    expect(
        l,
        b"GET / HTTP/1.1\rHost: a\r\n\r\n",
        0,
        bad("invalid line break"),
    );
}

/// Invalid chunk sizes: not hex, signed, prefixed, empty, with a NUL, with
/// leading whitespace, an extension without a size, a line that never
/// ends, and sizes over `u64` (which must not wrap to a small size) or over
/// the body limit. Leading zeros are not an overflow.
#[test]
fn invalid_chunk_sizes_are_named_errors() {
    let l = limits(64, 1024);
    let req = |line: &[u8]| {
        [
            &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            line,
            b"\r\nabcde\r\n0\r\n\r\n",
        ]
        .concat()
    };
    let invalid = bad("invalid chunk size");
    for size in [
        &b"zz"[..],
        b"-5",
        b"+5",
        b"0x5",
        b"",
        b" 5",
        b"5\0",
        b"5;\0",
        b"\x005",
        b"5 5",
        b";ext",
        b" ",
        b"\t",
    ] {
        expect(l, &req(size), 0, invalid);
    }
    for size in [
        &b"ffffffffffffffffff"[..],
        b"10000000000000000",
        b"FFFFFFFFFFFFFFFF",
        b"401",
    ] {
        expect(l, &req(size), 0, End::Failed(Error::BodyTooLarge));
    }
    expect(l, &req(b"0000000000000000000000005"), 1, IDLE);
    expect(l, &req(b"5;name=value;x"), 1, IDLE);
    expect(
        l,
        &req(&b"0".repeat(65)),
        0,
        bad("chunk-size line too long"),
    );
    // Chunk data longer than its size.
    let long = [
        &b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
        b"3\r\nabcde\r\n0\r\n\r\n",
    ]
    .concat();
    expect(l, &long, 0, bad("chunk data not followed by CRLF"));
}

/// NUL and other control bytes are refused wherever the head is text: the
/// method, the target, the version, a header name or value, a trailer. In
/// a body they are data.
#[test]
fn nul_bytes_in_the_head_are_400_in_the_body_data() {
    let l = limits(256, 1024);
    for (req, why) in [
        (&b"G\0T / HTTP/1.1\r\nHost: a\r\n\r\n"[..], "invalid method"),
        (
            b"GET /\0 HTTP/1.1\r\nHost: a\r\n\r\n",
            "invalid request target",
        ),
        (b"GET / HTTP/1.1\0\r\nHost: a\r\n\r\n", "invalid line break"),
        (
            b"GET / HTTP/1.1\r\nHo\0st: a\r\n\r\n",
            "invalid header name",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\0\r\n\r\n",
            "invalid header value",
        ),
        (b"\0\r\n\r\n", "invalid method"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: \0\r\n\r\n",
            "invalid header value",
        ),
    ] {
        expect(l, req, 0, bad(why));
    }
    let body = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n\0\0\0";
    expect(l, body, 1, IDLE);
}

/// `Content-Length` a peer gets wrong on purpose: signs, exponents, hex,
/// empty, conflicting lists, values over `u64` (saturated, so still over
/// the limit: 413, not a wrap to a small length), and both framings at
/// once (request smuggling).
#[test]
fn hostile_content_lengths() {
    let l = limits(256, 1024);
    let req = |v: &str| format!("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: {v}\r\n\r\n");
    for v in ["-1", "+5", "1e3", "0x10", "", "5,"] {
        expect(l, req(v).as_bytes(), 0, bad("invalid Content-Length"));
    }
    expect(l, req("5\0").as_bytes(), 0, bad("invalid header value"));
    expect(
        l,
        req("5, 6").as_bytes(),
        0,
        bad("conflicting Content-Length values"),
    );
    for v in ["1025", "18446744073709551616", "99999999999999999999999999"] {
        expect(l, req(v).as_bytes(), 0, End::Failed(Error::BodyTooLarge));
    }
    expect(l, format!("{}abcde", req("5, 5")).as_bytes(), 1, IDLE);
    let smuggle =
        "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n";
    expect(
        l,
        smuggle.as_bytes(),
        0,
        bad("both Content-Length and Transfer-Encoding"),
    );
}

/// Garbage pipelined after valid requests: the requests before it are
/// answered, then one error, however the bytes are split; nothing after the
/// garbage is parsed (it cannot be framed).
#[test]
fn pipelined_garbage_after_valid_requests() {
    let l = limits(256, 1024);
    let valid = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nPOST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nok";
    let after = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    for (garbage, end) in [
        (
            &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
            bad("invalid method"),
        ),
        (b"hello\r\n\r\n", bad("invalid method")),
        (
            b"GET / HTTP/2.0\r\n\r\n",
            End::Failed(Error::VersionNotSupported),
        ),
    ] {
        let stream = [&valid[..], garbage, after].concat();
        expect(l, &stream, 2, end);
    }
}

/// Chunked framing ends its lines with CRLF only: a bare LF after a chunk
/// size, after chunk data, after the last chunk, after a trailer or as the
/// blank line that ends the trailers is 400, wherever the read splits it.
/// A front proxy that reads such a LF differently would frame the body
/// differently and pass the bytes after it on as another request (request
/// smuggling): here those bytes are never parsed.
#[test]
fn bare_lf_in_chunked_framing_is_400() {
    let l = limits(256, 1024);
    let head = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n";
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n";
    let size = bad("chunk-size line not ended by CRLF");
    let data = bad("chunk data not followed by CRLF");
    let trailer = bad("trailer line not ended by CRLF");
    for (body, end) in [
        (&b"5\nhello\r\n0\r\n\r\n"[..], size),
        (b"5;ext=1\nhello\r\n0\r\n\r\n", size),
        (b"5\r\nhello\n0\r\n\r\n", data),
        (b"5\r\nhello\r0\r\n\r\n", data),
        (b"5\r\nhello\r\n0\n\r\n", size),
        (b"5\r\nhello\r\n0\r\nX: y\n\r\n", trailer),
        (b"5\r\nhello\r\n0\r\n\n", trailer),
        (b"5\r\nhello\r\n0\r\nX: y\r\n\n", trailer),
    ] {
        expect(l, &[&head[..], body, smuggled].concat(), 0, end);
    }
    // The same body with CRLF throughout, and a bare LF in the head: two
    // requests.
    let good = [
        &head[..],
        b"5\r\nhello\r\n0\r\nX: y\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
    ]
    .concat();
    expect(l, &good, 2, IDLE);
}

/// What `httparse` accepts and this parser refuses or reads otherwise: a
/// target that is not ASCII (400), a well-formed version other than 1.x
/// (505), a later 1.x (served as 1.1), and for the checks on chunk-size
/// lines see [`invalid_chunk_sizes_are_named_errors`].
#[test]
fn beyond_httparse_targets_and_versions() {
    let l = limits(256, 1024);
    expect(
        l,
        "GET /caf\u{e9} HTTP/1.1\r\nHost: a\r\n\r\n".as_bytes(),
        0,
        bad("invalid request target"),
    );
    // The target is checked before the version, as it comes first.
    expect(
        l,
        "GET /caf\u{e9} HTTP/2.0\r\nHost: a\r\n\r\n".as_bytes(),
        0,
        bad("invalid request target"),
    );
    for version in ["HTTP/2.0", "HTTP/0.9", "HTTP/3.1"] {
        let req = format!("GET / {version}\r\nHost: a\r\n\r\n");
        expect(
            l,
            req.as_bytes(),
            0,
            End::Failed(Error::VersionNotSupported),
        );
    }
    for version in ["HTTP/1.10", "HTTP/1.1 ", "HTTP/1", "http/1.1", "HTTP/x.y"] {
        let req = format!("GET / {version}\r\nHost: a\r\n\r\n");
        let parsed = parse_every_way(l, req.as_bytes());
        assert!(
            matches!(parsed.end, End::Failed(Error::BadRequest(_))),
            "{version:?}: {parsed:?}"
        );
    }
    let later = parse_every_way(l, b"GET / HTTP/1.9\r\nHost: a\r\n\r\n");
    assert!(
        matches!(
            later.events.first(),
            Some(Got::Head {
                minor: 1,
                keep_alive: true,
                ..
            })
        ),
        "{later:?}"
    );
    assert_eq!(later.end, IDLE);
}

// ---------------------------------------------------------------------------
// The framing layer (the model: halfclose_tools::framer_model).

/// Terminators a peer may be up against: short and long byte strings of
/// any bytes (NUL, 0xff, self-overlapping), fixed lengths small and huge,
/// length prefixes, EOF.
fn hostile_terminator() -> impl Strategy<Value = Terminator> {
    prop_oneof![
        2 => Just(Terminator::CRLF),
        1 => Just(Terminator::LF),
        1 => Just(Terminator::bytes(b"\0".to_vec())),
        1 => Just(Terminator::bytes(b"\xff\xff\xfe".to_vec())),
        1 => Just(Terminator::bytes(b"\0\0\0\0\0\0\0\x01".to_vec())),
        2 => vec(any::<u8>(), 1..8).prop_map(Terminator::bytes),
        1 => (1usize..300).prop_map(Terminator::Len),
        1 => select(vec![usize::MAX, 1 << 40, u32::MAX as usize]).prop_map(Terminator::Len),
        1 => Just(Terminator::LenPrefixed(Prefix::U8)),
        1 => Just(Terminator::LenPrefixed(Prefix::U16)),
        1 => Just(Terminator::LenPrefixed(Prefix::U32)),
        1 => Just(Terminator::Eof),
    ]
}

/// Any bytes, with the terminator's own bytes (`None`) spliced in often
/// enough that frames end.
fn framer_stream() -> impl Strategy<Value = Vec<Option<Vec<u8>>>> {
    vec(
        prop_oneof![
            4 => bytes(40).prop_map(Some),
            1 => (0usize..2000).prop_map(|n| Some(pattern(n, n as u64))),
            2 => Just(None),
            // A header announcing a small length.
            1 => any::<u8>().prop_map(|n| Some(vec![0, 0, 0, n])),
        ],
        0..24,
    )
}

fn splice(term: &Terminator, segments: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mark: &[u8] = match term {
        Terminator::Bytes(t) => t,
        _ => b"\x00\x00\x00\x05",
    };
    segments
        .iter()
        .flat_map(|s| s.as_deref().unwrap_or(mark).to_vec())
        .collect()
}

proptest! {
    #![proptest_config(config())]

    /// E6: any bytes against hostile terminators, with limits from 0 to a
    /// few kilobytes and, half of the time, frame lengths announced by the
    /// peer: no panic, no frame over the limit, the buffer within
    /// `max_frame` plus the terminator or prefix at every step, and the
    /// same frames, failure and EOF outcome whole, in small reads and byte
    /// at a time.
    #[test]
    fn framer_hostile_bytes_any_split(
        term in hostile_terminator(),
        max in prop_oneof![0usize..16, 16usize..300, 1000usize..5000],
        announce in any::<bool>(),
        segments in framer_stream(),
        sizes in vec(1usize..64, 1..8),
    ) {
        let stream = splice(&term, &segments);
        let whole = frame_split(&term, max, announce, &stream, &[]);
        prop_assert_eq!(&frame_split(&term, max, announce, &stream, &[1]), &whole);
        prop_assert_eq!(&frame_split(&term, max, announce, &stream, &sizes), &whole);
    }
}

/// E6: a terminator that never comes, fed one byte at a time, for every
/// kind of terminator: the failure comes exactly when the frame is known
/// to be over the limit (for a byte terminator, when the bytes held cannot
/// all be the start of one), and the buffer never passes the bound on the
/// way.
#[test]
fn e6_missing_terminator_byte_at_a_time_for_every_terminator() {
    let max = 100;
    for (term, filler, fails_after) in [
        (Terminator::CRLF, b'\r', max + 2),
        (Terminator::LF, b'x', max + 1),
        (Terminator::bytes("aab"), b'a', max + 3),
        (Terminator::bytes(b"\0".to_vec()), b'\xff', max + 1),
        (Terminator::Eof, b'\n', max + 1),
        (Terminator::LenPrefixed(Prefix::U16), b'\xff', 2),
        (Terminator::LenPrefixed(Prefix::U8), 101, 1),
    ] {
        let mut framer = Framer::new(term.clone(), max);
        let mut fed = 0;
        let err = loop {
            let r = framer.feed(&[filler], |f, _| panic!("{term:?}: a frame {f:?}"));
            fed += 1;
            assert!(framer.buffered() <= framer_bound(&term, max), "{term:?}");
            match r {
                Ok(()) => assert!(fed < 10 * max, "{term:?}: never failed"),
                Err(e) => break e,
            }
        };
        assert_eq!(err, framing::Error::FrameTooLarge { limit: 100 });
        assert_eq!(fed, fails_after, "{term:?}");
    }
}

/// Lengths announced by the peer: a 4 GiB `U32` prefix, a `u64`-sized
/// `Len` a header asked for. Both fail before any payload byte is held,
/// whether the input arrives whole or a byte at a time.
#[test]
fn e6_announced_lengths_over_the_limit_fail_before_any_payload() {
    for term in [
        Terminator::LenPrefixed(Prefix::U32),
        Terminator::Len(usize::MAX),
    ] {
        let stream = [&[0xff, 0xff, 0xff, 0xff][..], &pattern(64, 3)].concat();
        for sizes in [&[][..], &[1]] {
            let out = frame_split(&term, 1024, false, &stream, sizes);
            assert!(out.too_large, "{term:?}");
            assert!(out.frames.is_empty());
        }
    }
}

/// A framer whose limit is `usize::MAX` ("no practical limit") is fed
/// ordinary frames: it must not panic.
#[test]
fn framer_with_the_largest_limit_does_not_panic() {
    let panicked: Vec<Terminator> = [
        Terminator::CRLF,
        Terminator::LenPrefixed(Prefix::U8),
        Terminator::Len(usize::MAX),
    ]
    .into_iter()
    .filter(|term| {
        let mut framer = Framer::new(term.clone(), usize::MAX);
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            framer.feed(b"\x02ab\r\nxyz", |_, _| {})
        }))
        .is_err()
    })
    .collect();
    assert!(panicked.is_empty(), "feed panicked with {panicked:?}");
}

// ---------------------------------------------------------------------------
// Over the wire: the `http_server` example.

/// A response: its status and whether it closes the connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reply {
    status: u16,
    closes: bool,
}

/// Cut `buf` into responses; `heads` says, for each final response in
/// turn, whether it answers a HEAD (no body). Returns the responses and
/// the bytes left over (a partial response).
fn replies(mut buf: &[u8], mut heads: impl Iterator<Item = bool>) -> (Vec<Reply>, usize) {
    let mut out = Vec::new();
    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let mut length = 0;
        let mut closes = false;
        for line in lines {
            let (name, value) = line.split_once(':').unwrap_or((line, ""));
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
            if name.eq_ignore_ascii_case("connection") {
                closes = value.trim().eq_ignore_ascii_case("close");
            }
        }
        let body = if status == 100 || heads.next() == Some(true) {
            0
        } else {
            length
        };
        if buf.len() < end + 4 + body {
            break;
        }
        buf = &buf[end + 4 + body..];
        out.push(Reply { status, closes });
    }
    (out, buf.len())
}

/// What the server must answer to `stream`, from the parser run here: the
/// replies in order (a request's, `Connection: close` when it does not keep
/// the connection alive; then the error's, which always closes), and for
/// each final reply whether it answers a HEAD.
fn expected(limits: Limits, stream: &[u8]) -> (Vec<Reply>, Vec<bool>) {
    let parsed = parse_whole(limits, stream);
    let reply = |status, closes| Reply { status, closes };
    let mut replies = Vec::new();
    let mut heads = Vec::new();
    let mut request = None;
    for ev in parsed.events {
        match ev {
            Got::Head {
                expect_continue, ..
            } => {
                if expect_continue {
                    replies.push(reply(100, false));
                }
                request = Some(ev);
            }
            Got::Done { .. } => {
                let Some(Got::Head {
                    method,
                    target,
                    body,
                    keep_alive,
                    ..
                }) = request.take()
                else {
                    unreachable!("checked by check_events");
                };
                let get = matches!(method.as_str(), "GET" | "HEAD");
                let found = body != Body::None || !get || target == "/";
                replies.push(reply(if found { 200 } else { 404 }, !keep_alive));
                heads.push(method == "HEAD");
                if !keep_alive {
                    return (replies, heads);
                }
            }
        }
    }
    if let End::Failed(e) = parsed.end {
        replies.push(reply(e.status().0, true));
        heads.push(false);
    }
    (replies, heads)
}

/// Send `stream` on a new connection (whole, in small writes, or byte at a
/// time), half-close, and read until the server closes. Every read and
/// write is bounded in time. Returns what arrived and how it ended.
fn hostile_exchange(addr: SocketAddr, stream: &[u8], split: usize) -> (Vec<u8>, io::Result<()>) {
    let mut s = blocking_connect(addr);
    s.set_nodelay(true).unwrap();
    let mut sent = Ok(());
    for piece in stream.chunks(split.max(1)) {
        if let Err(e) = s.write_all(piece) {
            sent = Err(e);
            break;
        }
    }
    let mut got = Vec::new();
    if sent.is_ok() {
        sent = s.shutdown(Shutdown::Write);
    }
    let ended = s.read_to_end(&mut got).map(drop);
    (got, sent.and(ended))
}

/// A corpus drawn from the property tests' generators with a fixed seed,
/// a case for each outcome they rarely reach, and inputs large enough that buffering them would show in the
/// server's memory: a 4 MiB header line, a 4 MiB chunk-size line, 4 MiB of
/// garbage after a valid request.
fn corpus() -> Vec<Vec<u8>> {
    let mut runner = TestRunner::deterministic();
    let strategy = hostile_stream();
    let mut corpus: Vec<Vec<u8>> = (0..40)
        .map(|_| strategy.new_tree(&mut runner).expect("a case").current())
        .collect();
    // One of each other outcome: 413, 100 then 200, 417, 501, a reply to
    // HEAD then 404, a FIN in the middle of a body (no reply), and what
    // follows `Connection: close` (ignored).
    for case in [
        &b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n"[..],
        b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\nabcde",
        b"GET / HTTP/1.1\r\nHost: a\r\nExpect: 101-nope\r\n\r\n",
        b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET /missing HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc",
        b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n\0\0garbage",
    ] {
        corpus.push(case.to_vec());
    }
    let big = 4 << 20;
    corpus.push([&b"GET / HTTP/1.1\r\nX-Big: "[..], &b"v".repeat(big)].concat());
    corpus.push(
        [
            &b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"[..],
            &b"0".repeat(big),
        ]
        .concat(),
    );
    corpus.push([&b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"[..], &pattern(big, 11)].concat());
    corpus
}

/// Hostile connections against the running example, four at a time, next
/// to a well-behaved keep-alive client: each hostile connection gets
/// exactly the replies the parser says (the requests before the bad input
/// answered, then the error status), then a clean EOF, never a reset or a
/// hang; the good client gets every one of its answers, one after another,
/// throughout; the server survives with its memory bounded, although 12
/// MiB of unframeable input went in.
#[test]
fn http_server_survives_a_hostile_corpus() {
    let server = Server::start(
        "http_server",
        &[
            "--listen",
            "127.0.0.1:0",
            "--max-header-bytes",
            "2048",
            "--max-body-bytes",
            "65536",
        ],
    );
    let limits = limits(2048, 65536);
    let addr = server.addr;
    let pid = server.child.id();

    // The good client, on one keep-alive connection for the whole test.
    let stop = Arc::new(AtomicBool::new(false));
    let good = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut s = TcpStream::connect(addr).expect("connect");
            s.set_read_timeout(Some(DEADLINE)).unwrap();
            s.set_nodelay(true).unwrap();
            let want = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\nhello from halfclose\n";
            let mut served = 0u32;
            let mut slowest = Duration::ZERO;
            let start = Instant::now();
            while !stop.load(Ordering::Relaxed) || served < 20 {
                assert!(start.elapsed() < 3 * DEADLINE, "good client: test too slow");
                let t = Instant::now();
                s.write_all(b"GET / HTTP/1.1\r\nHost: good\r\n\r\n")
                    .expect("good client: send");
                let mut got = vec![0; want.len()];
                s.read_exact(&mut got).expect("good client: reply");
                assert_eq!(String::from_utf8_lossy(&got), String::from_utf8_lossy(want));
                slowest = slowest.max(t.elapsed());
                served += 1;
            }
            (served, slowest)
        })
    };

    // Warm up, then take the baseline.
    let (_, warm) = hostile_exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1);
    warm.expect("warm-up exchange");
    let base_rss = status_kib(pid, "VmRSS");

    let corpus = Arc::new(corpus());
    let workers: Vec<_> = (0..4)
        .map(|w| {
            let corpus = corpus.clone();
            std::thread::spawn(move || {
                let mut checked = 0;
                for (i, stream) in corpus.iter().enumerate().skip(w).step_by(4) {
                    let split = [usize::MAX, 1, 7, 1000][i % 4];
                    // Byte at a time only for what is small enough.
                    let split = if split == 1 && stream.len() > 4096 {
                        64
                    } else {
                        split
                    };
                    let (got, ended) = hostile_exchange(addr, stream, split);
                    let case = || {
                        format!(
                            "case {i}: {:?}",
                            String::from_utf8_lossy(&stream[..stream.len().min(200)])
                        )
                    };
                    if let Err(e) = ended {
                        panic!("{}: not a clean close: {e}", case());
                    }
                    let (want, heads) = expected(limits, stream);
                    let (got, left) = replies(&got, heads.into_iter());
                    assert_eq!(left, 0, "{}: a partial reply", case());
                    assert_eq!(got, want, "{}", case());
                    checked += 1;
                }
                checked
            })
        })
        .collect();
    let checked: usize = workers
        .into_iter()
        .map(|w| w.join().expect("hostile worker"))
        .sum();
    assert_eq!(checked, corpus.len());
    stop.store(true, Ordering::Relaxed);
    let (served, slowest) = good.join().expect("good client");
    assert!(served >= 20);
    assert!(slowest < DEADLINE / 4, "good client waited {slowest:?}");

    let (rss, peak) = (status_kib(pid, "VmRSS"), status_kib(pid, "VmHWM"));
    let mut server = server;
    assert!(
        server.child.try_wait().expect("try_wait").is_none(),
        "server exited"
    );
    // 12 MiB of unframeable input went in; holding any of it would show.
    assert!(
        rss <= base_rss + 2048 && peak <= base_rss + 3072,
        "server memory: {base_rss} KiB before, {rss} KiB after, peak {peak} KiB"
    );
    let (_, after) = hostile_exchange(addr, b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", usize::MAX);
    after.expect("served after the corpus");
    eprintln!(
        "{checked} hostile connections; good client served {served} requests, slowest {slowest:?}; server RSS {base_rss} -> {rss} KiB, peak {peak} KiB"
    );
    assert!(server.terminate().success());
}
