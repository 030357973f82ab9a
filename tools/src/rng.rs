//! The one seeded pseudo-random generator of the tools and tests:
//! xoshiro256++ (`rand::rngs::Xoshiro256PlusPlus`) seeded with
//! `seed_from_u64`, so a seed gives the same sequence on every run and
//! platform (fault plans, soak payloads, test patterns all replay).
//!
//! # Examples
//!
//! ```
//! use halfclose_tools::rng::Rng;
//!
//! let (mut a, mut b) = (Rng::new(7), Rng::new(7));
//! assert_eq!(a.range(0, 99), b.range(0, 99));
//! assert_eq!(halfclose_tools::rng::bytes(16, 1), halfclose_tools::rng::bytes(16, 1));
//! ```

use rand::rngs::Xoshiro256PlusPlus;
use rand::{Rng as _, RngExt as _, SeedableRng as _};

/// A seeded generator: the same seed, the same draws.
#[derive(Clone, Debug)]
pub struct Rng(Xoshiro256PlusPlus);

impl Rng {
    /// The generator of `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(seed))
    }

    /// The next 64 bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `lo..=hi`; `lo` when `hi <= lo`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            return lo;
        }
        self.0.random_range(lo..=hi)
    }

    /// An independent generator drawn from this one.
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.next_u64())
    }
}

/// The seed of item `k` (a connection, a lifecycle) under `seed`: every
/// draw for that item comes from here, so it depends on the seed and `k`
/// only.
pub fn item_seed(seed: u64, k: u64) -> u64 {
    Rng::new(seed ^ k.wrapping_mul(0xD6E8_FEB8_6659_FD93)).next_u64()
}

/// An endless stream of pseudo-random bytes: a sender and a checker each
/// walk the same stream without holding it, in pieces of any size.
#[derive(Clone, Debug)]
pub struct ByteStream {
    rng: Rng,
    word: u64,
    left: u32,
}

impl ByteStream {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> ByteStream {
        ByteStream {
            rng: Rng::new(seed),
            word: 0,
            left: 0,
        }
    }

    /// The next byte.
    pub fn next_byte(&mut self) -> u8 {
        if self.left == 0 {
            self.word = self.rng.next_u64();
            self.left = 8;
        }
        let b = self.word as u8;
        self.word >>= 8;
        self.left -= 1;
        b
    }

    /// Fill `buf` with the next bytes.
    pub fn fill(&mut self, buf: &mut [u8]) {
        for b in buf {
            *b = self.next_byte();
        }
    }

    /// Whether `data` is what comes next (the stream moves past it either
    /// way).
    pub fn check(&mut self, data: &[u8]) -> bool {
        data.iter()
            .fold(true, |ok, &b| ok & (b == self.next_byte()))
    }
}

/// `len` pseudo-random bytes of `seed`: the start of its [`ByteStream`].
pub fn bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0; len];
    ByteStream::new(seed).fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_draws_other_seed_others() {
        let draws = |seed| {
            let mut r = Rng::new(seed);
            (0..32).map(|_| r.range(0, 1000)).collect::<Vec<_>>()
        };
        assert_eq!(draws(1), draws(1));
        assert_ne!(draws(1), draws(2));
        assert_ne!(item_seed(1, 0), item_seed(1, 1));
    }

    #[test]
    fn range_is_inclusive_and_bounded() {
        let mut r = Rng::new(3);
        let seen: std::collections::BTreeSet<u64> = (0..1000).map(|_| r.range(5, 7)).collect();
        assert_eq!(seen.into_iter().collect::<Vec<_>>(), [5, 6, 7]);
        assert_eq!(r.range(9, 9), 9);
        assert_eq!(r.range(9, 2), 9);
    }

    #[test]
    fn stream_pieces_agree_with_the_whole() {
        let whole = bytes(1000, 42);
        let distinct: std::collections::BTreeSet<u8> = whole.iter().copied().collect();
        assert!(distinct.len() > 200, "{} distinct bytes", distinct.len());
        assert_ne!(whole, bytes(1000, 43));
        let mut s = ByteStream::new(42);
        let mut at = 0;
        for n in [1, 7, 8, 13, 500, 471] {
            let mut piece = vec![0; n];
            s.fill(&mut piece);
            assert_eq!(piece, whole[at..at + n]);
            at += n;
        }
        let mut c = ByteStream::new(42);
        assert!(c.check(&whole[..3]));
        assert!(!c.check(&[!whole[3]]));
        assert!(c.check(&whole[4..]));
    }
}
