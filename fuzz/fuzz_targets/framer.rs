//! `chat::Framer` fed any bytes: no panic, no frame over the limit, the
//! buffer within `max_frame` plus the terminator or prefix, and the same
//! outcome whole, byte at a time and in reads of the sizes the input picks.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run framer --sanitizer none -- -max_total_time=60
#![no_main]

use halfclose::chat::{Framer, Prefix, Terminator};
use libfuzzer_sys::fuzz_target;

/// The first bytes of the input choose the terminator, the limit, whether
/// frames announce the next one's length, and the read sizes.
struct Setup {
    term: Terminator,
    max: usize,
    announce: bool,
    sizes: Vec<usize>,
}

fn setup(data: &[u8]) -> Option<(Setup, &[u8])> {
    let (&[kind, max_lo, max_hi, flags], rest) = data.split_first_chunk::<4>()?;
    let (term, rest) = match kind % 8 {
        0 => (Terminator::CRLF, rest),
        1 => (Terminator::LF, rest),
        2 => {
            let n = usize::from(flags >> 5) + 1;
            let t = rest.get(..n)?;
            (Terminator::bytes(t.to_vec()), &rest[n..])
        }
        3 => (Terminator::Len(usize::from(max_lo) + 1), rest),
        4 => (Terminator::LenPrefixed(Prefix::U8), rest),
        5 => (Terminator::LenPrefixed(Prefix::U16), rest),
        6 => (Terminator::LenPrefixed(Prefix::U32), rest),
        _ => (Terminator::Eof, rest),
    };
    let max = usize::from(u16::from_le_bytes([max_lo, max_hi]) % 4096);
    let sizes = vec![
        usize::from(flags & 7) + 1,
        usize::from(flags >> 3 & 3) + 2,
        13,
    ];
    let announce = kind & 8 != 0;
    Some((
        Setup {
            term,
            max,
            announce,
            sizes,
        },
        rest,
    ))
}

fn bound(term: &Terminator, max: usize) -> usize {
    match term {
        Terminator::Bytes(t) if !t.is_empty() => max + t.len() - 1,
        Terminator::LenPrefixed(p) => max + p.width(),
        _ => max,
    }
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    frames: Vec<Vec<u8>>,
    too_large: bool,
    finish: Option<Result<(), Vec<u8>>>,
}

fn run(s: &Setup, stream: &[u8], sizes: &[usize]) -> Outcome {
    let mut framer = Framer::new(s.term.clone(), s.max);
    let mut frames = Vec::new();
    let base = s.term.clone();
    let (max, announce) = (s.max, s.announce);
    let mut on_frame = |f: &[u8], t: &mut Terminator| {
        assert!(f.len() <= max, "frame of {} over {max}", f.len());
        frames.push(f.to_vec());
        if !announce {
            return;
        }
        *t = match (&*t, f) {
            (Terminator::Len(_), _) => base.clone(),
            (_, [a, b, c, d, ..]) => Terminator::Len(u32::from_be_bytes([*a, *b, *c, *d]) as usize),
            _ => return,
        };
    };
    let mut rest = stream;
    let mut i = 0;
    let mut too_large = false;
    while !rest.is_empty() {
        let n = match sizes {
            [] => rest.len(),
            _ => sizes[i % sizes.len()].clamp(1, rest.len()),
        };
        i += 1;
        let (input, after) = rest.split_at(n);
        rest = after;
        let fed = framer.feed(input, &mut on_frame);
        assert!(framer.buffered() <= bound(framer.terminator(), max));
        if fed.is_err() {
            assert_eq!(framer.buffered(), 0);
            assert!(framer.feed(b"\n", &mut on_frame).is_err());
            too_large = true;
            break;
        }
    }
    let finish = (!too_large).then(|| framer.finish(&mut on_frame).map_err(|e| e.into_partial()));
    Outcome {
        frames,
        too_large,
        finish,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((s, stream)) = setup(data) else {
        return;
    };
    let whole = run(&s, stream, &[]);
    assert_eq!(run(&s, stream, &[1]), whole);
    assert_eq!(run(&s, stream, &s.sizes), whole);
});
