//! A reference model of `halfclose::framing::Framer`'s contract: feed a
//! stream in reads of chosen sizes and check, at every step, what the
//! framer promises. Used by the framer's bad-input tests
//! (`tests/examples/bad_input.rs`) and its fuzz target
//! (`fuzz/fuzz_targets/framer.rs`).

use halfclose::framing::{Error, Framer, Terminator};

/// The most a framer with `term` in force may hold when the limit is
/// `max`: the frame, plus bytes that may begin a byte terminator, or the
/// length prefix (as its docs say).
pub fn framer_bound(term: &Terminator, max: usize) -> usize {
    match term {
        Terminator::Bytes(t) if !t.is_empty() => max + t.len() - 1,
        Terminator::LenPrefixed(p) => max + p.width(),
        _ => max,
    }
}

/// What feeding a framer gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Framed {
    /// Every frame delivered, in order.
    pub frames: Vec<Vec<u8>>,
    /// Whether feeding failed with `FrameTooLarge` (then nothing follows).
    pub too_large: bool,
    /// What `finish` gave, when feeding did not fail: `Ok`, or the bytes
    /// of the incomplete frame.
    pub finish: Option<Result<(), Vec<u8>>>,
}

/// Feed `stream` in reads of the sizes `sizes` gives (cycled; empty: one
/// read), then finish. With `announce`, a frame of 4 bytes or more taken
/// under `base` is a header announcing, big-endian in its first 4 bytes,
/// the length of the next frame (`Terminator::Len`), after which `base`
/// applies again: lengths come from the peer. Checks at every step: no
/// frame over the limit, the buffer within the bound, a failure that stays
/// and releases the buffer.
#[track_caller]
pub fn frame_split(
    base: &Terminator,
    max: usize,
    announce: bool,
    stream: &[u8],
    sizes: &[usize],
) -> Framed {
    let mut framer = Framer::new(base.clone(), max);
    let mut frames = Vec::new();
    let mut on_frame = |f: &[u8], t: &mut Terminator| {
        assert!(f.len() <= max, "a frame of {} bytes, limit {max}", f.len());
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
        let bound = framer_bound(framer.terminator(), max);
        assert!(
            framer.buffered() <= bound,
            "{} bytes buffered, bound {bound}",
            framer.buffered()
        );
        if let Err(e) = fed {
            assert_eq!(e, Error::FrameTooLarge { limit: max });
            assert!(framer.is_failed());
            assert_eq!(framer.buffered(), 0, "buffer released on failure");
            assert!(
                framer.feed(b"\n\r\n", &mut on_frame).is_err(),
                "failure stays"
            );
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
    Framed {
        frames,
        too_large,
        finish,
    }
}
