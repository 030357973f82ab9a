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
//! | `tls-fin:DIR:N[:after]` | FIN to DIR's receiver in the middle of (or right after) TLS record N of type 23; discard the rest |
//! | `tls-stall:DIR:DUR[@N]` | after N TLS records (default 1), forward nothing in DIR for DUR |
//! | `tls-replay:DIR` | at DIR's FIN, after its last record, a copy of the type-23 record before it; then the FIN |
//! | `tls-replay:DIR:N` | right after TLS record N of type 23, a copy of it |
//! | `tls-junk:DIR:N` | at DIR's FIN, after its last record, N bytes drawn from the seed; then the FIN |
//! | `tls-rst:DIR` | at DIR's FIN, once all DIR sent is in the kernel, reset both sides instead of the FIN |
//!
//! DIR is `c2s`, `s2c` or `both` (`split` and `delay` default to `both`);
//! DUR is `Nms` or `Ns`. A fault at byte N leaves an exchange of N bytes or
//! fewer untouched. `rst` and `fin` fire when byte N+1 would be forwarded,
//! so the receiver gets exactly N bytes before the RST is sent (a reset
//! also discards what the kernel still held, so a prefix of N) or before the
//! FIN.
//!
//! The `tls-` faults place themselves by TLS records ([`records`]): the
//! proxy reads each record's 5-byte header as the bytes pass and decrypts
//! nothing, so it sees record boundaries, the hellos (type 22), change
//! cipher spec (20) and, in TLS 1.3, every later record as type 23
//! (`Finished`, tickets, data and `close_notify` alike), and which record
//! was a side's last before its FIN. What each one tests is in the
//! `faultproxy` command line's docs ([`cli`]). `random` never picks one.
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
pub mod records;

pub use plan::{
    parse_duration, parse_spec, plan_for, random_plan, Choice, Cut, DirPlan, FinAt, Plan, Ranges,
    Replay, Seg, TlsPlan, C2S, NOREAD_DEFAULT, RANDOM_SEG_MAX, S2C,
};
pub use proxy::{Chooser, Counts, Pair, Shared, Side, BUF_CAP};
