//! A single-threaded TCP reactor on [`mio`] in which each protocol decides,
//! in code, what the peer's FIN means, and every close is lossless by
//! default.
//!
//! ```no_run
//! use halfclose::{Conn, Eof, Handler, Reactor};
//!
//! /// Reads a request until the client half-closes, then answers it.
//! struct Upper;
//!
//! impl Handler for Upper {
//!     fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
//!         conn.write(&data.to_ascii_uppercase());
//!     }
//!
//!     fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
//!         // The client only stopped sending: a last word, then our FIN.
//!         conn.write(b"-- done\n");
//!         conn.close();
//!         Eof::HalfClose
//!     }
//! }
//!
//! let mut reactor = Reactor::new()?;
//! let listener = reactor.listen("127.0.0.1:0", || Upper)?;
//! println!("listening on {}", reactor.local_addr(listener).unwrap());
//! reactor.run()?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! New to half-closes, lingering closes and RST? The [`guide`] answers the
//! usual questions, each answer tied to a test that shows it.
//!
//! # What a FIN means
//!
//! TCP lets each side close its own direction. `shutdown(SHUT_WR)` sends a
//! FIN, "I will send no more", and the peer's next read returns 0 bytes;
//! the other direction stays open. A client can send a request, half-close
//! to mark its end, and still read the whole reply: the `tcp_deadlock`
//! example of *Foundations of Python Network Programming*, and the
//! "ERROR:no end!" server of a well-known Python recipe, which can still
//! tell a client that its request was cut short because the client only
//! half-closed.
//!
//! The maintainer of asyncore answered that recipe that every asynchronous
//! framework treats "readable with no data" as a disconnect and closes,
//! so a client relying on half-close meets a server that never replies.
//! Both are right, for different protocols: HTTP/1.1 and most line
//! protocols frame their requests and treat the FIN as "gone"; `rsh`, the
//! half-close echo, or a proxy must keep the other direction open. Here
//! the protocol says which it is, in [`Handler::handle_readable_eof`], by
//! returning an [`Eof`].
//!
//! # Closing without losing data
//!
//! | call | on the wire | queued output |
//! |---|---|---|
//! | [`Conn::shutdown_write`] | FIN after the queue; we keep reading | sent |
//! | [`Conn::close`] | FIN after the queue, then read and discard until the peer's FIN (*lingering close*), then `close(2)` | sent |
//! | [`Conn::close_promptly`] | for a peer that said it sends nothing more: FIN by `close(2)` once the queue drains, no lingering read (it lingers if input is seen) | sent |
//! | [`Eof::Close`] (default) | after the peer's FIN: FIN after the queue, by `close(2)` alone | sent |
//! | [`Conn::abort`], [`Eof::Abort`] | RST now (`SO_LINGER` 0) | dropped, counted |
//!
//! Closing a socket whose receive queue still holds unread bytes makes
//! Linux send RST instead of FIN, and discard whatever of our reply it had
//! not sent yet. The peer still reads everything that had reached it, then
//! gets `ECONNRESET` instead of EOF: a reply that fitted in its buffers
//! arrives whole but cannot be told from a crash, and a larger one (4 MiB
//! here) arrives cut where our unsent data began. The lingering close reads
//! to the peer's FIN first, so the reply arrives whole with a clean EOF
//! (tests `linux_facts`, `reactor::close_modes`). When the peer's FIN has
//! already been read, `close(2)` alone sends our FIN and no `shutdown` call
//! is made. [`Conn::write_last`] before any of these lets a short reply and
//! the FIN leave in one segment.
//!
//! Every connection ends with one [`Handler::handle_close`] whose
//! [`Closed`] says why ([`Reason`]: local close, peer closed, reset, timed
//! out, error, aborted, panicked, stopped, protocol error) and how many
//! queued bytes were dropped (0 on every lossless path). A peer's RST is
//! never mistaken for a FIN: it reaches [`Handler::handle_error`] with
//! `ConnectionReset` (or `BrokenPipe`, when a write met it first), and the
//! reason is [`Reason::Reset`] either way.
//!
//! # The loop
//!
//! Sockets are registered once, edge-triggered, for reading and writing.
//! Reads go until the kernel queue is empty, with a per-wakeup budget that
//! re-queues a busy connection rather than starving the others; one read
//! buffer serves every connection, and a connection owns an output buffer
//! only while the kernel will not take its bytes. Callbacks never run
//! re-entrantly: what a handler asks through [`Conn`] is recorded and
//! applied after the callback returns. A panicking handler aborts only its
//! own connection.
//!
//! Each handler lives in its own box, so that one reactor serves any mix
//! of handler types ([`Reactor::new`]). A reactor whose handlers are all of
//! one type (an enum, for several protocols) can keep them inline in a
//! table instead ([`Reactor::with_inline_handlers`]; for a [`Group`],
//! [`Group::spawn_with`]): no allocation and no pointer per connection for
//! the handler, and a listener or connect with a handler of another type
//! is refused with `InvalidInput` before any socket is made.
//!
//! Timeouts guard every state: idle, peer-EOF (we hold a half-closed
//! connection: CLOSE_WAIT), linger (our FIN is unanswered: FIN_WAIT_2), and
//! connect; see [`Config`]. Listeners take a real backlog, accept in
//! bounded batches, may share a port through `SO_REUSEPORT`, and survive
//! `EMFILE` without spinning.
//!
//! # Transports
//!
//! TCP, Unix stream sockets and TLS over TCP run the same handlers with
//! the same close semantics. [`Reactor::listen`] takes a [`Bind`] (a
//! `SocketAddr`, `"127.0.0.1:0"`, [`Bind::unix`] for a socket path,
//! [`Bind::unix_abstract`] for Linux's abstract namespace);
//! [`Ctx::connect`] takes a [`Connect`]. Over TLS (feature `tls`),
//! `close_notify` is the FIN: [`Conn::shutdown_write`] sends it before our
//! TCP FIN, the peer's reaches [`Handler::handle_readable_eof`], and a TCP
//! FIN without it, a possible truncation, reaches
//! [`Handler::handle_truncated_eof`] instead. Where the transports differ
//! (a Unix socket has no reset; only it knows the peer's credentials), the
//! method docs say so, and the [`guide`] answers the questions.
//!
//! # Embedding, threads, several cores
//!
//! The reactor's epoll descriptor ([`AsRawFd`](std::os::fd::AsRawFd)) is
//! readable whenever [`Reactor::run_once`] has work: I/O, a due timer (a
//! `timerfd` in the epoll set), or work held in user space (a connection
//! that spent its read budget, accept batches left, posted tasks). A host
//! loop (tokio's `AsyncFd`, calloop's `Generic`, a bare `epoll`) needs one
//! rule: when the descriptor is readable, call
//! `run_once(Some(Duration::ZERO))`; see [Embedding](Reactor#embedding) and
//! the `embed_tokio` and `embed_calloop` examples. Requests made from host
//! code through [`Reactor::conn`] are carried out when the returned
//! [`Outside`] guard drops.
//!
//! A [`Reactor`] is not `Send`; other threads reach it through a
//! [`Handle`] (post a task, wake, stop, drain), which fails once the
//! reactor is gone. A [`Group`] runs one reactor per thread on a shared
//! port (`SO_REUSEPORT`) and drains them together; a [`ConnId`] names the
//! reactor it belongs to and finds nothing in another.
//!
//! # Platform
//!
//! Linux only. The behaviour described here (RST on close with unread
//! input, `EPOLLRDHUP`, edge-triggered readiness, `SO_REUSEPORT` balancing,
//! the abstract namespace of Unix sockets, `SO_PEERCRED`, `timerfd`) is
//! Linux's, and the tests pin it.
//!
//! # Features
//!
//! - `tls` (off by default): TLS over TCP on [rustls](https://docs.rs/rustls)
//!   with its `ring` crypto provider, which builds with the C compiler
//!   alone (no cmake, no system package): `Bind::tls`, `Connect::tls`,
//!   `Conn::tls`, `TlsInfo`. Without it no TLS code is built.
//!
//! # Layout
//!
//! Imports run one way: `closed`, `handler` <- `handlers`, `state` <-
//! `core` <- `reactor` <- `group`; the leaves (`timer`, `outq`, `token`, `alarm`,
//! `config`, `stats`, `error`) import nothing of ours but each other's
//! types. `conn` is the handlers' face of `core`.
//!
//! | module | responsibility |
//! |---|---|
//! | `reactor` | the poll loop, event dispatch, timers firing, posted tasks, stop, drain, embedding (descriptor, self-wake, `next_timeout`) |
//! | `group` | [`Group`]: one reactor per thread on a shared port |
//! | `alarm` | the `timerfd` that makes the descriptor readable when a timer is due |
//! | `core` | connection slots and ids, handler calls (with the handler table lent out), and the driver that carries out what a connection's state asks for |
//! | `state` | the pure connection state machine: one enum per half, the end rule, `next_action`; no socket |
//! | `conn` | the API handlers use: [`Conn`], [`Ctx`], [`Connect`], and [`Outside`] for host code |
//! | `handler` | [`Handler`] and [`Eof`] |
//! | `handlers` | where the handlers live: boxed (any type) or inline (one type), by slot, lent to each callback |
//! | `closed` | [`Closed`], [`Reason`], [`Timeout`], [`ProtocolError`] |
//! | `listener` | accept loop, batch limit, connection limit, `EMFILE` |
//! | `transport` | TCP, Unix and TLS (`tls.rs`) streams and listeners behind one interface; [`Addr`], [`Bind`], [`Connect`], [`PeerCred`] |
//! | `outq` | the output queue |
//! | `timer` | the pure timer queues: a heap for any deadline; FIFO lanes (with an overflow heap) for the connections' timeouts and each connection's first handler timer |
//! | `token` | ids ([`ConnId`] with generations, [`ListenerId`], [`TimerId`]) and `mio::Token`s |
//! | [`guide`] | closing TCP connections, question by question, each answer tied to a test |
//! | [`framing`] | asynchat-style framing (sans-IO), its [`Handler`] adapter and its error |
//! | `config`, `stats`, `error` | [`Config`], [`Stats`], [`Error`] |
//!
//! MSRV: Rust 1.74.

#![forbid(unsafe_code)]
#![deny(missing_docs, missing_debug_implementations, rust_2018_idioms)]
#![doc(test(attr(deny(warnings))))]

#[cfg(not(target_os = "linux"))]
compile_error!(
    "halfclose supports Linux only: its close semantics (RST on close with unread input, \
     EPOLLRDHUP, edge-triggered readiness) are Linux's, and its tests pin them there"
);

mod alarm;
mod closed;
mod config;
mod conn;
mod core;
mod error;
pub mod framing;
mod group;
pub mod guide;
mod handler;
mod handlers;
mod listener;
mod outq;
mod reactor;
mod state;
mod stats;
mod timer;
mod token;
mod transport;

pub use closed::{Closed, ProtocolError, Reason, Timeout};
pub use config::Config;
pub use conn::{Applies, Conn, Ctx, Outside};
pub use error::{Error, Result};
pub use group::Group;
pub use handler::{Eof, Handler, Truncated};
pub use reactor::{Handle, Reactor};
pub use stats::Stats;
pub use token::{ConnId, ListenerId, TimerId};
#[cfg(feature = "tls")]
pub use transport::TlsInfo;
pub use transport::{Addr, Bind, Connect, PeerCred};
