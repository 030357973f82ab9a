//! `framing::Framer` fed any bytes: no panic, no frame over the limit, the
//! buffer within `max_frame` plus the terminator or prefix, and the same
//! outcome whole, byte at a time and in reads of the sizes the input picks.
//!
//! RUSTC_BOOTSTRAP=1 cargo fuzz run framer --sanitizer none -- -max_total_time=60
#![no_main]

use halfclose::framing::{Prefix, Terminator};
use halfclose_tools::framer_model::frame_split;
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

fuzz_target!(|data: &[u8]| {
    let Some((s, stream)) = setup(data) else {
        return;
    };
    let whole = frame_split(&s.term, s.max, s.announce, stream, &[]);
    assert_eq!(frame_split(&s.term, s.max, s.announce, stream, &[1]), whole);
    assert_eq!(
        frame_split(&s.term, s.max, s.announce, stream, &s.sizes),
        whole
    );
});
