//! Heap allocations on a connection's path from accept to close, counted by
//! a counting global allocator (`stats_alloc` around the system allocator:
//! allocation, reallocation and deallocation calls and their bytes, in
//! atomics).
//!
//! cargo bench --bench alloc
//!
//! A server reactor on this thread, a client of plain std `TcpStream`s on
//! another (see `alloc_driver`): 1,000 connections to warm up, then 10,000
//! counted, for each shape: `examples/echo.rs`'s handler, the benchmark's
//! half-close echo answering at the FIN, and the same holding 1,000
//! connections half-closed at once for 20 ms. The counter is global, so it
//! sees the client thread too; the client allocates only when it starts
//! (`cargo bench --bench alloc_sites` lists every allocation site of the
//! counted run, and none is the client's). Each connection: 64 request
//! bytes, the client's FIN, the echo, the close. Loopback, port 0.
//!
//! Needs about 2,100 descriptors (raise `ulimit -n` if the soft limit is
//! 1,024).

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[path = "alloc_driver/mod.rs"]
mod driver;

use driver::{Bench, Shape, N, WARMUP};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// One shape's counts over the counted run.
struct Row {
    shape: Shape,
    conns: u64,
    allocs: usize,
    reallocs: usize,
    deallocs: usize,
    bytes: usize,
    bytes_freed: usize,
    bytes_realloc: isize,
}

fn measure(shape: Shape) -> Row {
    let mut bench = Bench::start(shape);
    bench.run(WARMUP);
    let accepted0 = bench.stats().accepted;
    let region = Region::new(GLOBAL);
    bench.run(N);
    let change = region.change();
    let conns = bench.stats().accepted - accepted0;
    assert_eq!(conns, N as u64, "every counted connection was accepted");
    Row {
        shape,
        conns,
        allocs: change.allocations,
        reallocs: change.reallocations,
        deallocs: change.deallocations,
        bytes: change.bytes_allocated,
        bytes_freed: change.bytes_deallocated,
        bytes_realloc: change.bytes_reallocated,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // a smoke run is enough there.
    if !std::env::args().any(|a| a == "--bench") {
        let mut bench = Bench::start(Shape::HalfClose);
        bench.run(100);
        println!("alloc: smoke run passed (cargo bench --bench alloc measures)");
        return;
    }
    let rows: Vec<Row> = Shape::ALL.into_iter().map(measure).collect();
    println!(
        "Heap allocations per connection, accept to close ({WARMUP} connections to warm up, \
         {N} counted; both threads)"
    );
    println!();
    println!(
        "| shape | connections | allocs/conn | reallocs/conn | deallocs/conn | bytes/conn | \
         bytes freed/conn | realloc growth bytes/conn |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in &rows {
        let n = r.conns as f64;
        println!(
            "| {} | {} | {:.3} | {:.4} | {:.3} | {:.1} | {:.1} | {:.1} |",
            r.shape.name(),
            r.conns,
            r.allocs as f64 / n,
            r.reallocs as f64 / n,
            r.deallocs as f64 / n,
            r.bytes as f64 / n,
            r.bytes_freed as f64 / n,
            r.bytes_realloc as f64 / n,
        );
    }
    println!();
    println!("Totals over the counted run:");
    for r in &rows {
        println!(
            "  {}: {} allocs, {} reallocs, {} deallocs, {} bytes allocated, {} freed, \
             {:+} by realloc",
            r.shape.name(),
            r.allocs,
            r.reallocs,
            r.deallocs,
            r.bytes,
            r.bytes_freed,
            r.bytes_realloc
        );
    }
}
