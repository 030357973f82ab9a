//! A guide to closing TCP connections, for the reader who arrives confused.
//!
//! Each answer names the test or example that shows it on Linux, a test by
//! its binary and module (`reactor::half_close` is the file
//! `tests/reactor/half_close.rs`); run one with `cargo test --test BINARY NAME`.
//!
//! # What does `shutdown(SHUT_WR)` do on the wire?
//!
//! It sends a FIN after every byte already written: "I will send no more".
//! The peer's next read after our last byte returns 0 (end of file); our
//! socket stays open for reading, and the peer may go on sending for as
//! long as it likes. Nothing is destroyed: it is a *half-close*. Only the
//! peer can close the other direction.
//!
//! This is how the client of `tcp_deadlock.py` (*Foundations of Python
//! Network Programming*) tells the server that its upload is complete
//! while it still reads the uppercased reply. Without it the server waits
//! for more data and the client waits for the reply: a deadlock.
//!
//! - `examples/tcp_deadlock.rs`, and `examples::seeds`:
//!   `tcp_deadlock_python_client_gets_every_byte_uppercased` (the seed's own
//!   client), `tcp_deadlock_without_shutdown_hangs_until_the_timeout`.
//! - In this crate: [`Conn::shutdown_write`](crate::Conn::shutdown_write);
//!   `reactor::half_close`: `a6_shutdown_write_keeps_reading`,
//!   `a7_write_after_shutdown_refused`, `a8_shutdown_write_twice`.
//!
//! `SHUT_RD` sends nothing at all on Linux; `SHUT_RDWR` is a `SHUT_WR` plus
//! that. A plain `close()` sends FIN too, *if* nothing unread is left in the
//! receive queue; see the next answer.
//!
//! # When does `close()` send RST instead of FIN?
//!
//! When bytes the application never read are still in the socket's receive
//! queue. Linux then sends RST (RFC 2525, section 2.17) and discards
//! whatever of our reply its send queue still held. The peer keeps what had
//! already reached it: it reads all of that, and then, instead of end of
//! file, `ECONNRESET`. A reply small enough to have reached the peer's
//! buffers arrives whole, but the peer cannot tell it from a crash; a 4 MiB
//! reply written and closed that way arrives cut where our unsent bytes
//! began. This is what the packet capture of Python's `http.client` shows:
//! its `close()` sends RST when the response was not read to the end.
//!
//! The cure is the *lingering close* (Apache's and nginx's name for it):
//! send our FIN with `shutdown(SHUT_WR)`, then read and discard until the
//! peer's FIN (or a timeout), and only then `close()`. The receive queue is
//! empty by then, so no RST, and the peer reads our whole reply and a clean
//! end of file. [`Conn::close`](crate::Conn::close) does exactly this;
//! [`Conn::abort`](crate::Conn::abort) sends the RST on purpose.
//!
//! - `linux_facts`: `v1_reply_that_reached_the_peer_is_read_whole_then_reset`
//!   and `v1_close_with_unread_input_sends_rst_and_truncates_the_reply`
//!   (the raw facts), `v1_lingering_close_delivers_the_whole_reply` (the cure).
//! - `reactor::close_modes`: `b5_close_with_unread_input_is_lossless`;
//!   `examples::http`: `b5_malformed_request_gets_400_then_clean_eof_not_reset`
//!   (an error reply to a client still uploading arrives whole).
//! - `linux_facts`: `close_after_eof_with_empty_queue_sends_fin`:
//!   after reading to the peer's FIN, `close()` alone sends a clean FIN,
//!   which is why this crate skips the `shutdown` call then.
//!
//! # Must every close wait for the peer's FIN?
//!
//! No: only when the peer might still send. The lingering read protects
//! against input that arrives after our close; a protocol in which the
//! peer said it sends nothing more (an HTTP/1.1 request with
//! `Connection: close`, read to its end) can close at once, as nginx does
//! then: [`Conn::close_promptly`](crate::Conn::close_promptly) flushes and
//! calls `close()` without the `shutdown` and the wait. If input is waiting
//! or comes before the queue drains, it falls back to the lingering close;
//! input that comes after the reactor last looked gets a RST: a Linux
//! peer still reads our whole reply, but then `ECONNRESET` where it would
//! have read end of file, and a stack that flushes its receive queue on
//! RST may lose the reply's end. A promise is only
//! as good as the peer: the HTTP example does not close promptly, because
//! a hostile client that sends after its `Connection: close`
//! (`examples::bad_input::http_server_survives_a_hostile_corpus`) must
//! still get a clean end of file.
//!
//! Whichever close, the reply's last segment can carry our FIN:
//! [`Conn::write_last`](crate::Conn::write_last) writes with `MSG_MORE`, so
//! the kernel holds a short segment until the FIN joins it, one segment
//! fewer for both sides to send and acknowledge.
//!
//! - `reactor::close_modes`: `b9_close_promptly_closes_before_the_peers_fin`,
//!   `b9_close_promptly_lingers_when_input_comes_anyway`,
//!   `b10_write_last_sends_the_fin_in_the_reply_segment`.
//!
//! Other facts a closing strategy has to live with, each pinned in
//! `linux_facts`: data that arrived before a peer's RST can still
//! be read, then one `ECONNRESET`, then reads return 0 (V2); after the
//! peer closed, our first `send` succeeds and a later one fails with
//! `EPIPE` (V3); after end of file a socket stays readable forever, so a
//! level-triggered loop that keeps asking spins (V4); with edge-triggered
//! epoll a partial read gets no new event (V5); `shutdown` after a peer's
//! RST fails with `ENOTCONN` (V6); `accept` failing with `EMFILE` leaves
//! the listener readable, so a loop that only logs spins at 100% CPU (V7;
//! `reactor::connect_accept`: `d1_emfile_no_spin_sheds_and_recovers`).
//!
//! # Why can the recipe's server still say "ERROR:no end!"?
//!
//! Because the client only half-closed. In the recipe ("socket.shutdown vs
//! close") the client sends its data and an end marker, then
//! `shutdown(1)`, and keeps reading. When the markers disagree, the server
//! reads to end of file without finding its marker, and its write
//! direction is still open: it can tell the client `ERROR:no end!`. Had
//! the client called `close()`, there would be no one left to tell.
//!
//! - `examples/shut_srv.rs`; `examples::seeds`:
//!   `shut_srv_half_close_tells_the_client_no_end` (the recipe's
//!   `send_data`, ported to Python 3) and
//!   `shut_srv_matching_marker_replies_with_the_data_twice`.
//! - The framing layer does the same for any frame cut short by the FIN:
//!   `reactor::framing`: `e6_partial_frame_at_eof_is_reported_incomplete`.
//!
//! # What does asyncore's "readable with no data means disconnect" cost?
//!
//! The maintainer's answer to that recipe was that asyncore, Twisted and
//! every other asynchronous framework treat a readable socket with no data
//! as a disconnect and close. For a client that relied on the half-close,
//! that means it gets nothing back: the server closed in answer to its
//! FIN. `shut_srv server --on-eof close` is that server, and
//! `shut_srv_asyncore_close_gives_the_client_nothing` in `examples::seeds`
//! shows the cost.
//!
//! The rule is right for protocols that frame their own messages and treat
//! the FIN as "gone": HTTP/1.1, most line protocols, chat. There it saves
//! holding half-dead connections. It is wrong for protocols whose requests
//! end at the FIN (the half-close echo, `rsh`, uploads delimited by EOF)
//! and for anything that relays a stream (a proxy). This crate lets each
//! protocol say which it is, in
//! [`Handler::handle_readable_eof`](crate::Handler::handle_readable_eof),
//! and keeps the default lossless: [`Eof::Close`](crate::Eof::Close)
//! flushes what is queued before our FIN (`reactor::close_modes`:
//! `b7_default_eof_flushes_before_fin`; `reactor::half_close`:
//! `a2_no_opt_in_closes_losslessly`).
//!
//! A FIN is never confused with a reset: a peer's RST reaches
//! [`Handler::handle_error`](crate::Handler::handle_error) and never
//! `handle_readable_eof`. The error is `ConnectionReset` when a read or
//! `SO_ERROR` finds the reset, `BrokenPipe` when a write finds it first
//! (V3); the connection's reason is [`Reason::Reset`](crate::Reason::Reset)
//! either way (`reactor::reset`: `c6_data_then_peer_rst`,
//! `c7_writing_to_a_closed_peer_fails_once`, `c9_rst_after_fin_while_half_open`).
//!
//! # Which `Eof` should my protocol return?
//!
//! | protocol | the peer's FIN means | return |
//! |---|---|---|
//! | HTTP/1.0 (the response ends at our close) | the client sent its request and waits for the response | [`Eof::Close`](crate::Eof::Close) if the response is already queued; [`Eof::HalfClose`](crate::Eof::HalfClose) if it comes later (write it, then `close()`) |
//! | HTTP/1.1 keep-alive | the client is done; answer what it already sent completely, then close; a FIN in the middle of a request leaves nothing to answer | [`Eof::Close`](crate::Eof::Close) (the queue is flushed first) |
//! | a proxy | one direction ended; forward the FIN, keep relaying the other way | [`Eof::HalfClose`](crate::Eof::HalfClose), and `shutdown_write()` the other side |
//! | request/response with an end marker (the recipe) | marker seen: the request was complete; no marker: the client gave up early, tell it | [`Eof::HalfClose`](crate::Eof::HalfClose), reply (or `ERROR:no end!`), then `close()` |
//! | line chat, interactive protocols | the user left | [`Eof::Close`](crate::Eof::Close) |
//! | a peer you must not trust | nothing good | [`Eof::Abort`](crate::Eof::Abort) sends RST at once |
//!
//! Examples: `examples/http_server` (`examples::http`:
//! `a2_half_close_after_requests_gets_every_response`,
//! `a2_fin_mid_request_closes_without_answer`), `examples/proxy.rs`
//! (`examples::proxy`: `proxy_node_half_open_client_gets_the_whole_reply_after_its_fin`,
//! with Node.js `allowHalfOpen`), `examples/shut_srv.rs`,
//! `examples/chat.rs`.
//!
//! # How long may a half-closed connection live?
//!
//! Not forever. A connection whose peer sent FIN while we never finish sits
//! in CLOSE_WAIT for good; one whose FIN we sent while the peer never
//! answers sits in FIN_WAIT_2. [`Config`](crate::Config) guards both (the
//! peer-EOF and linger timeouts), plus idle and connect timeouts; every
//! timeout ends with [`Reason::TimedOut`](crate::Reason::TimedOut) and
//! names which one (`reactor::timeouts`: `f1_idle_timeout_closes_gracefully`,
//! `f5_peer_eof_timeout`, `f5_linger_timeout_after_shutdown_write`,
//! `f5_linger_timeout_after_close_despite_input`). A RST that arrives while
//! we hold a half-closed connection is noticed at once, so nothing lingers
//! in CLOSE_WAIT (`reactor::reset`: `c9_rst_after_fin_while_half_open`).
//!
//! # Does any of this apply to Unix domain sockets?
//!
//! All of it. `shutdown(SHUT_WR)` on a Unix stream socket gives the peer
//! end of file while the other direction stays open, and closing one with
//! unread input in its receive queue makes the peer's next read fail with
//! `ECONNRESET` once it has read every byte we sent: a complete reply that
//! cannot be told from a crash, as over TCP (`linux_facts`:
//! `unix_shutdown_write_gives_eof_and_keeps_the_other_direction`,
//! `v1_unix_close_with_unread_input_ends_in_econnreset`). The lingering
//! close cures it the same way (`reactor::unix`:
//! `unix_lingering_close_turns_the_reset_into_a_clean_eof`; and every
//! scenario test of the table runs on both, e.g. `reactor::close_modes`:
//! `b5_close_with_unread_input_is_lossless::unix`),
//! and a handler written for TCP runs unchanged: listen with
//! [`Bind::unix`](crate::Bind::unix), connect with
//! [`Connect::unix`](crate::Connect::unix).
//!
//! Two things differ. There is no reset on a Unix socket: an abort closes
//! at once and drops our queue, and the peer reads end of file
//! (`reactor::close_modes`: `c2_abort_drops_and_counts_the_queue::unix`;
//! `linux_facts`: `unix_so_linger_zero_does_not_reset`); a proxy that
//! aborts a Unix side to pass on a TCP reset can only close it (the close
//! table in `CLOSING.md` shows it). And a Unix socket tells who is at the
//! other end: [`Conn::peer_cred`](crate::Conn::peer_cred)
//! (`reactor::unix`: `the_peer_credentials_are_those_of_the_connecting_process`). A socket
//! file left by a crashed server makes `listen` fail with `AddrInUse`
//! until it is removed; [`Bind::remove_stale`](crate::Bind::remove_stale)
//! removes it only when no one listens there
//! (`a_stale_socket_file_is_removed_only_when_asked`).
//!
//! # Why does a missing `close_notify` matter?
//!
//! Over TLS, anyone on the path can send a TCP FIN: it is not protected.
//! `close_notify` is TLS's own end of stream, authenticated like the data.
//! A stream that ends with a FIN but no `close_notify` may have been cut
//! short on purpose, and a body delimited by the end of the stream would
//! then look complete when it is not (a truncation attack). So a handler
//! hears the two ends apart: `close_notify` reaches
//! [`Handler::handle_readable_eof`](crate::Handler::handle_readable_eof)
//! like a FIN; a bare FIN reaches
//! [`Handler::handle_truncated_eof`](crate::Handler::handle_truncated_eof),
//! whose default makes it an error ([`Reason::Truncated`](crate::Reason::Truncated),
//! `UnexpectedEof`) (`tls`: `close_notify_is_a_clean_end`,
//! `a_fin_without_close_notify_is_reported_as_truncated`). Our own end is
//! `close_notify`, then `shutdown(SHUT_WR)`: `close(2)` alone never ends a
//! TLS stream properly.
//!
//! # When may a protocol accept an end without `close_notify`?
//!
//! When it knows by itself that every message it received was complete.
//! HTTP/1.1 frames each message (`Content-Length`, chunked), so a bare FIN
//! between requests loses nothing, and the HTTPS example accepts it
//! ([`Truncated::Accept`](crate::Truncated::Accept)); in the middle of a
//! request it refuses it, and that request gets no answer (`tls`:
//! `https_accepts_an_unauthenticated_end_between_requests_only`,
//! `a_handler_may_accept_a_truncated_end`). A body that runs to the end of
//! the stream (HTTP/1.0 without a length, a framing
//! [`Terminator::Eof`](crate::framing::Terminator::Eof)) must not: the
//! framing layer reports it as incomplete, never as a frame
//! (`an_end_of_stream_frame_needs_close_notify`).
//!
//! # What is a TLS 1.3 half-close?
//!
//! TLS 1.3 lets each side close its own direction: after sending
//! `close_notify` a client may go on reading the reply, exactly as after a
//! TCP `shutdown(SHUT_WR)`, and
//! [`Conn::shutdown_write`](crate::Conn::shutdown_write) does just that
//! (`tls`: `a_tls13_half_close_still_gets_the_whole_response`,
//! `a_node_client_half_closes_over_tls_and_gets_the_whole_reply`). TLS 1.2
//! does not: a peer receiving `close_notify` must answer with its own and
//! close at once, discarding what it had still to write. So over TLS 1.2
//! a half-closing client may lose the reply; rustls negotiates TLS 1.3
//! whenever the peer can.
