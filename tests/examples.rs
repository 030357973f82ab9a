//! The example servers and the tools' programs driven as separate
//! processes, and the HTTP example's parser under hostile input: one test
//! binary with a module per subject (`tests/examples/<subject>.rs`); test
//! names read `examples::<subject>::<test>`, followed by `::tcp` and
//! `::unix` (or, for the proxy, `::tcp_to_unix` and the other pairs) for a
//! test defined once for every transport.
//!
//! The layout is that of `tests/reactor.rs`: the subjects sit under an
//! inline module so that cargo does not build each as a target, and this
//! root sits in `tests/` so that `mod util` finds the shared helpers.

mod util;

mod examples {
    mod bad_input;
    mod faults;
    mod graceful_stop;
    mod http;
    mod proxy;
    mod seeds;
    mod unix;
}
