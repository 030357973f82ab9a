//! The reactor over loopback sockets, in one test binary with a module per
//! subject (`tests/reactor/<subject>.rs`); test names read
//! `reactor::<subject>::<test>`, and a scenario id of `docs/scenarios.md`
//! at the start of a test's own name says which behaviour it pins. A test
//! defined once for both transports runs as `<test>::tcp` and
//! `<test>::unix` (the `transports!` table at the top of its module).
//!
//! One binary rather than one per subject, so that the tests link once.
//! The subjects live in `tests/reactor/` under the inline module below, so
//! that cargo does not take them for test targets of their own, and this
//! root sits in `tests/` so that `mod util` finds the helpers the other
//! test binaries share (`tests/util/mod.rs`).
//!
//! Tests here share one process and run on parallel threads: a test that
//! measures the process (CPU time, memory, open descriptors) or lowers a
//! limit runs its body in a child process (see `util::run_child`), and
//! the child is named by its full path, `reactor::<subject>::<test>`.

mod util;

mod reactor {
    mod close_modes;
    mod connect_accept;
    mod embedding;
    mod framing;
    mod half_close;

    mod handler_faults;
    mod inline_handlers;
    mod reset;
    mod smoke;
    mod timeouts;
    mod unix;
}
