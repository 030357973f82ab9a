//! The framing layer (`halfclose::framing::Framer`), sans-IO: 1 MiB of
//! newline-terminated records and of length-prefixed records, fed in reads
//! of different sizes, as a socket would deliver them.
//!
//! cargo bench --bench framer
//!
//! What a read size costs shows the resume index at work: a record split
//! across many small reads is scanned once, not again from its start.

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use halfclose::framing::{Framer, Prefix, Terminator};

const TOTAL: usize = 1 << 20;

/// Records of 1 to 200 bytes (deterministic), each ended by `\n`.
fn lines() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL + 256);
    let mut n = 0u32;
    while out.len() < TOTAL {
        n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let len = 1 + (n >> 16) as usize % 200;
        out.extend((0..len).map(|i| b'a' + (i % 26) as u8));
        out.push(b'\n');
    }
    out
}

/// The same record sizes with a 2-byte length prefix instead.
fn prefixed() -> Vec<u8> {
    let mut out = Vec::with_capacity(TOTAL + 256);
    for record in lines().split(|&b| b == b'\n').filter(|r| !r.is_empty()) {
        out.extend(Prefix::U16.encode(record).expect("fits in 16 bits"));
    }
    out
}

/// Feed `stream` in reads of `read` bytes; returns the number of frames.
fn frame(stream: &[u8], terminator: Terminator, read: usize) -> usize {
    let mut framer = Framer::new(terminator, 4096);
    let mut frames = 0;
    for chunk in stream.chunks(read) {
        framer
            .feed(chunk, |f, _| {
                black_box(f);
                frames += 1;
            })
            .expect("records fit the limit");
    }
    frames
}

fn framer(c: &mut Criterion) {
    let lines = lines();
    let prefixed = prefixed();
    let mut group = c.benchmark_group("framer");
    group.throughput(Throughput::Bytes(TOTAL as u64));
    for read in [7usize, 1500, 65536] {
        group.bench_with_input(BenchmarkId::new("lf", read), &read, |b, &read| {
            b.iter(|| frame(&lines, Terminator::LF, read))
        });
        group.bench_with_input(BenchmarkId::new("u16_prefix", read), &read, |b, &read| {
            b.iter(|| frame(&prefixed, Terminator::LenPrefixed(Prefix::U16), read))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = framer
}
criterion_main!(benches);
