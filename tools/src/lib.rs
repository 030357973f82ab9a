//! The applications around `halfclose`, and what they share with the
//! examples, the integration tests and the benches.
//!
//! The binaries are thin `main`s over this library:
//!
//! | binary | module | what it does |
//! |---|---|---|
//! | `halfclosed` | [`halfclosed`] | the half-close echo benchmark (also `cargo run --release --example halfclosed`) |
//! | `soak` | [`soak`] | a million connection lifecycles through random faults, every byte verified |
//! | `faultproxy` | [`faultproxy`] | a fault-injecting TCP proxy, and a slowloris client |
//!
//! What they share:
//!
//! | module | what |
//! |---|---|
//! | [`rng`] | the one seeded pseudo-random generator (fault plans, payloads, test patterns) |
//! | [`procfs`] | `/proc`: CPU time of a process or thread, RSS and its peak, open descriptors, TCP states |
//! | [`fdlimit`] | the descriptor limit, read and raised (soft to hard) |
//! | [`signals`] | drain on SIGINT/SIGTERM |
//! | [`support`] | the example servers' `serve` (announce, drain on signals, run) and a half-closing client |
//! | [`http`] | the HTTP example's request parser, also driven by the bad-input tests and a fuzz target |
//! | [`framer_model`] | a reference model of `halfclose::framing::Framer`'s contract, for the bad-input tests and a fuzz target |
//!
//! Every command line is parsed by `clap` (`--help` is generated; bad
//! arguments exit with status 2). Linux only, like `halfclose`.
#![forbid(unsafe_code)]
#![warn(missing_docs, rust_2018_idioms)]

pub mod faultproxy;
pub mod fdlimit;
pub mod framer_model;
pub mod halfclosed;
pub mod http;
pub mod procfs;
pub mod rng;
pub mod signals;
pub mod soak;
pub mod support;
#[cfg(feature = "tls")]
pub mod tls;
