//! The fault-injecting proxy: fault plans ([`plan`]), their text syntax,
//! the two handlers of a proxied pair ([`Shared`], [`Side`]), and the
//! command line of the `faultproxy` binary ([`cli`]). The soak runs the same
//! handlers in-process.
//!
//! # Plans
//!
//! A [`Plan`] says what happens to each direction of one proxied
//! connection: client to server (`c2s`) and server to client (`s2c`).
//! Its text form (`--fault`) is a `+`-joined list of faults:
//!
//! | fault | effect |
//! |---|---|
//! | `none` | a faithful proxy: bytes, each FIN and backpressure passed on |
//! | `split:N[:DIR]` | forward in segments of N bytes, one per tick (one loop turn, or `delay`) |
//! | `split:random[:DIR]` | segments of 1 to 1460 bytes, sizes drawn from the seed |
//! | `delay:DUR[:DIR]` | a tick is DUR: each write waits DUR after the previous one |
//! | `stall:DIR:DUR[@N]` | after N bytes (default 0), forward nothing in DIR for DUR |
//! | `rst:DIR:N` | after N bytes forwarded in DIR, reset both sides (RST) |
//! | `fin:DIR:N` | after N bytes forwarded in DIR, send FIN to DIR's receiver and discard the rest of DIR |
//! | `noread:DIR[:DUR]` | never read DIR's sender (its buffers fill up); after DUR (default 2 s) reset both sides |
//! | `random` | one of the above, parameters drawn from the seed |
//!
//! DIR is `c2s`, `s2c` or `both` (`split` and `delay` default to `both`);
//! DUR is `Nms` or `Ns`. A fault at byte N leaves an exchange of N bytes or
//! fewer untouched. `rst` and `fin` fire when byte N+1 would be forwarded,
//! so the receiver gets exactly N bytes before the RST is sent (a reset
//! also discards what the kernel still held, so a prefix of N) or before the
//! FIN.
//!
//! # Handlers
//!
//! Each accepted client connection gets a [`Side`] handler; in
//! `handle_connect` it picks the connection's plan and connects upstream
//! with another `Side`. The two sides share a [`Pair`] (two flows, one per
//! direction, and the two [`ConnId`]s); each reaches the other through
//! [`Conn::other`]. A flow holds the bytes read from its sender that its
//! receiver has not taken yet, at most [`BUF_CAP`]; past that, or while the
//! receiver is write-blocked, the sender's reading is paused
//! (backpressure), and the receiver's `handle_write` resumes it. Shaped
//! flows (`split`, `delay`) write one segment per tick, a timer on the
//! receiver's connection; TCP_NODELAY is set on both sides so segments
//! leave as separate packets. A sender's FIN is passed on as
//! `shutdown_write` on the receiver after the flow drained, and the
//! sender's side returns [`Eof::HalfClose`]: each direction closes on its
//! own, as in a faithful proxy. A side that ends gracefully ends the other
//! gracefully after what is still in flight; a side that ends badly (reset,
//! error, aborted, stopped) resets the other.
//!
//! [`ConnId`]: halfclose::ConnId
//! [`Conn::other`]: halfclose::Conn::other
//! [`Eof::HalfClose`]: halfclose::Eof::HalfClose

pub mod cli;
pub mod plan;
mod proxy;

pub use plan::{
    parse_duration, parse_spec, plan_for, random_plan, Choice, Cut, DirPlan, Plan, Ranges, Seg,
    C2S, NOREAD_DEFAULT, RANDOM_SEG_MAX, S2C,
};
pub use proxy::{Chooser, Counts, Pair, Shared, Side, BUF_CAP};
