//! The HTTP example's request parser (`halfclose_tools::http`, the one the
//! example runs) fed any bytes: no panic, progress on every call, an error
//! that stays, events in order within the limits, and the same outcome
//! whole, byte at a time and in reads of the sizes the input picks.
//!
//! The parser reads heads, chunk-size lines and trailer lines with
//! `httparse`.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run http_parser --sanitizer none -- -max_total_time=60 -dict=http.dict
#![no_main]

use halfclose_tools::http::{Body, Error, Event, Limits, Parser};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq, Eq)]
enum Got {
    Head(String, String, u8, bool, bool, Body),
    Done(u64),
}

#[derive(Debug, PartialEq, Eq)]
enum End {
    NeedMore { idle: bool },
    Failed(Error),
}

fn run(limits: Limits, stream: &[u8], sizes: &[usize]) -> (Vec<Got>, End) {
    let mut parser = Parser::new(limits);
    let mut events = Vec::new();
    let mut calls = 0;
    let mut open: Option<Body> = None;
    let mut rest = stream;
    let mut i = 0;
    loop {
        let n = match sizes {
            [] => rest.len(),
            _ => sizes[i % sizes.len()].min(rest.len()),
        };
        i += 1;
        let (mut input, after) = rest.split_at(n);
        rest = after;
        loop {
            calls += 1;
            assert!(calls <= 4 * stream.len() + 8, "no progress");
            let (used, event) = match parser.parse(input) {
                Ok(ok) => ok,
                Err(e) => {
                    assert_eq!(parser.parse(b"GET / HTTP/1.1\r\n\r\n").err(), Some(e));
                    return (events, End::Failed(e));
                }
            };
            assert!(used <= input.len());
            input = &input[used..];
            match event {
                Event::NeedMore => {
                    assert!(input.is_empty());
                    break;
                }
                Event::Head(h) => {
                    assert!(open.is_none(), "a head inside a request");
                    if let Body::Length(n) = h.body {
                        assert!(n <= limits.max_body);
                    }
                    open = Some(h.body);
                    events.push(Got::Head(
                        h.method,
                        h.target,
                        h.minor,
                        h.keep_alive,
                        h.expect_continue,
                        h.body,
                    ));
                }
                Event::Done { body } => {
                    match open.take().expect("Done without a head") {
                        Body::None => assert_eq!(body, 0),
                        Body::Length(n) => assert_eq!(body, n),
                        Body::Chunked => assert!(body <= limits.max_body),
                    }
                    events.push(Got::Done(body));
                }
            }
        }
        if rest.is_empty() {
            break;
        }
    }
    (
        events,
        End::NeedMore {
            idle: parser.is_idle(),
        },
    )
}

fuzz_target!(|data: &[u8]| {
    let Some((&[head, body, split], stream)) = data.split_first_chunk::<3>() else {
        return;
    };
    let limits = Limits {
        max_head: [16, 64, 256, 2048][usize::from(head % 4)],
        max_body: [0, 16, 1024, 1 << 20][usize::from(body % 4)],
    };
    let whole = run(limits, stream, &[]);
    assert_eq!(run(limits, stream, &[1]), whole);
    let sizes = [usize::from(split % 16) + 1, usize::from(split / 16) + 1];
    assert_eq!(run(limits, stream, &sizes), whole);
});
