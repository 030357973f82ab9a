//! Where the allocations that `cargo bench --bench alloc` counts come
//! from: the same runs (1,000 connections to warm up, 10,000 profiled, for
//! each shape) under DHAT's heap profiler, which records a backtrace for
//! every allocation, started after the warm-up and stopped after the
//! counted run.
//!
//! cargo bench --bench alloc_sites
//!
//! Prints, per shape, every allocation site of the profiled run with its
//! blocks and bytes per connection (a realloc counts as a block of its
//! first allocation's site), most frequent first, and the frames under it:
//! the first in `halfclose` (the library), in the handler (`driver::`), and
//! on the client thread (`driver::client`). The profiles are left in
//! `target/tmp/alloc-sites-SHAPE.json`, for DHAT's viewer. Needs debug line
//! tables for the library's frames to name their files and lines (the
//! root manifest sets them for the `bench` profile of this package).

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

#[path = "alloc_driver/mod.rs"]
mod driver;

use driver::{Bench, Shape, N, WARMUP};

#[global_allocator]
static GLOBAL: dhat::Alloc = dhat::Alloc;

/// Whose code a frame is, for the frames of this repository.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Kind {
    /// `src/` of the library.
    Library,
    /// A handler of `alloc_driver` (`handle_*`, `reply`).
    Handler,
    /// The client thread of `alloc_driver`.
    Client,
    /// The rest of the bench (the loop that drives the reactor).
    Bench,
}

/// A frame, as DHAT writes it: `0xADDR: name (file:line:col)`, its file
/// cut to its last three components (so the library's files read
/// `DIR/src/FILE.rs`, with DIR the name of the package's directory).
struct Frame<'a> {
    name: &'a str,
    file: &'a str,
    line: &'a str,
}

fn parse(frame: &str) -> Frame<'_> {
    let rest = frame.split_once(": ").map_or(frame, |(_, rest)| rest);
    let (name, at) = rest
        .rsplit_once(" (")
        .map_or((rest, ""), |(n, a)| (n, a.trim_end_matches(')')));
    let mut parts = at.rsplitn(3, ':');
    let _col = parts.next();
    let line = parts.next().unwrap_or("0");
    let file = parts.next().unwrap_or("???");
    Frame { name, file, line }
}

/// Whose a frame is; `None` for the standard library and other crates.
/// A library frame's file is `DIR/src/...` and exists under this
/// package's `src/` (the standard library's `alloc/src/boxed.rs` shares
/// the prefix when the package's directory is called `alloc`).
fn kind(f: &Frame<'_>) -> Option<Kind> {
    let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = manifest.file_name()?.to_str()?;
    if let Some(rel) = f
        .file
        .strip_prefix(dir)
        .and_then(|r| r.strip_prefix("/src/"))
    {
        if manifest.join("src").join(rel).is_file() {
            return Some(Kind::Library);
        }
    }
    if f.file.ends_with("benches/alloc_driver/mod.rs") {
        return Some(if f.name.starts_with("handle_") || f.name == "reply" {
            Kind::Handler
        } else if f.name == "client" || f.name == "run_job" {
            Kind::Client
        } else {
            Kind::Bench
        });
    }
    None
}

/// `name (file:line)` of a frame of this repository: the library's files
/// as `src/...`.
fn show(f: &Frame<'_>, k: Kind) -> String {
    let file = match k {
        Kind::Library => f.file.split_once('/').map_or(f.file, |(_, r)| r),
        _ => f.file,
    };
    // Generic arguments make a closure's name a paragraph; the line says
    // which it is.
    let name = match f.name.find('<') {
        Some(i) if i > 0 => &f.name[..i],
        _ => f.name,
    };
    format!("{name} ({file}:{})", f.line)
}

/// One allocation site of a profile.
struct Site {
    blocks: u64,
    bytes: u64,
    frames: Vec<String>,
}

impl Site {
    /// This repository's frames, innermost first, with their kinds.
    fn ours(&self) -> Vec<(Kind, String)> {
        self.frames
            .iter()
            .filter_map(|f| {
                let f = parse(f);
                kind(&f).map(|k| (k, show(&f, k)))
            })
            .collect()
    }

    /// The innermost frame of this repository: where the allocation is
    /// asked for, and by whom.
    fn owner(&self) -> (Kind, String) {
        let ours = self.ours();
        match ours.iter().position(|(k, _)| *k != Kind::Bench) {
            Some(i) => ours[i].clone(),
            None => ours
                .first()
                .cloned()
                .unwrap_or((Kind::Bench, "? (no frame of this repository)".into())),
        }
    }
}

fn profile(shape: Shape, dir: &std::path::Path) -> (u64, Vec<Site>) {
    let mut bench = Bench::start(shape);
    bench.run(WARMUP);
    let accepted0 = bench.stats().accepted;
    let path = dir.join(format!("alloc-sites-{}.json", shape.slug()));
    let profiler = dhat::Profiler::builder()
        .file_name(&path)
        .trim_backtraces(Some(24))
        .build();
    bench.run(N);
    drop(profiler);
    let conns = bench.stats().accepted - accepted0;
    drop(bench);

    let json: Value =
        serde_json::from_slice(&std::fs::read(&path).expect("the profile")).expect("JSON");
    let ftbl: Vec<&str> = json["ftbl"]
        .as_array()
        .expect("ftbl")
        .iter()
        .map(|f| f.as_str().unwrap_or("?"))
        .collect();
    let mut sites: Vec<Site> = json["pps"]
        .as_array()
        .expect("pps")
        .iter()
        .map(|pp| Site {
            blocks: pp["tbk"].as_u64().unwrap_or(0),
            bytes: pp["tb"].as_u64().unwrap_or(0),
            frames: pp["fs"]
                .as_array()
                .map(|fs| {
                    fs.iter()
                        .filter_map(Value::as_u64)
                        .map(|i| ftbl[i as usize].to_string())
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    sites.sort_by(|a, b| b.blocks.cmp(&a.blocks).then(b.bytes.cmp(&a.bytes)));
    (conns, sites)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        let mut bench = Bench::start(Shape::Echo);
        bench.run(100);
        println!("alloc_sites: smoke run passed (cargo bench --bench alloc_sites profiles)");
        return;
    }
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    for shape in Shape::ALL {
        let (conns, sites) = profile(shape, &dir);
        let n = conns as f64;
        let blocks: u64 = sites.iter().map(|s| s.blocks).sum();
        let bytes: u64 = sites.iter().map(|s| s.bytes).sum();
        println!(
            "## {} ({conns} connections after {WARMUP} to warm up): {:.2} blocks, {:.1} bytes \
             per connection",
            shape.name(),
            blocks as f64 / n,
            bytes as f64 / n
        );
        println!();
        // Sites by the frame that asks for the memory, then each site's
        // frames of this repository, innermost first.
        let mut by_owner: BTreeMap<(Kind, String), (u64, u64)> = BTreeMap::new();
        for s in &sites {
            let e = by_owner.entry(s.owner()).or_default();
            e.0 += s.blocks;
            e.1 += s.bytes;
        }
        let mut owners: Vec<_> = by_owner.into_iter().collect();
        owners.sort_by_key(|o| std::cmp::Reverse(o.1 .0));
        println!("| blocks/conn | bytes/conn | blocks | whose | asked for at |");
        println!("|---:|---:|---:|---|---|");
        for ((k, at), (b, by)) in &owners {
            println!(
                "| {:.3} | {:.1} | {b} | {k:?} | `{at}` |",
                *b as f64 / n,
                *by as f64 / n
            );
        }
        println!();
        for (i, s) in sites.iter().enumerate() {
            println!(
                "site {} of {}: {} blocks ({:.3}/conn), {} bytes ({:.1}/conn){}",
                i + 1,
                sites.len(),
                s.blocks,
                s.blocks as f64 / n,
                s.bytes,
                s.bytes as f64 / n,
                if s.frames.iter().any(|f| f.contains("GlobalAlloc>::realloc")) {
                    " (a realloc of a block allocated before the profile)"
                } else {
                    ""
                }
            );
            for (k, f) in s.ours() {
                println!("    {k:?}: {f}");
            }
        }
        println!();
    }
}
