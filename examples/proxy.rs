//! A proxy that keeps each direction's FIN separate: what a half-closing
//! client (`tcp_deadlock`, `shut_srv`, `rsh`) needs to work through it.
//! Either side may be TCP or a Unix stream socket.
//!
//! cargo run --example proxy -- --listen 127.0.0.1:8000 --upstream 127.0.0.1:1060
//! cargo run --example proxy -- --listen 127.0.0.1:8000 --upstream /run/app.sock
//!
//! # Design
//!
//! Each accepted connection gets a [`Downstream`] handler; in its
//! `handle_connect` it starts the upstream connection with
//! [`Conn::connect`] and an [`Upstream`] handler. Each handler holds the
//! [`ConnId`] of the other and reaches it through [`Conn::other`] (or
//! [`Ctx::conn`] in `handle_close`); ids carry a generation, so an id kept
//! after its connection closed finds nothing rather than a stranger.
//!
//! - **Bytes** read on one side are written to the other. Bytes from the
//!   client that arrive before the upstream connect completes are written to
//!   the connecting upstream anyway: the reactor queues writes made before
//!   a connect completes and sends them after it, in order.
//! - **Backpressure**: after forwarding, if the other side's queue passed
//!   the high-water mark ([`Conn::is_write_blocked`]) this side stops
//!   reading; the other side's [`Handler::handle_write`] (queue drained to
//!   the low-water mark) resumes it. A fast sender behind a slow receiver
//!   costs about one high-water mark (plus one read) of memory per
//!   direction; the rest waits in the kernel, whose full window pushes back
//!   on the sender.
//! - **FIN**, independently per direction: the client's FIN is answered
//!   with [`Eof::HalfClose`] and `shutdown_write` on the upstream (a FIN
//!   after everything queued for it); the upstream's FIN likewise becomes
//!   `shutdown_write` on the client side. A connection closes by itself once
//!   both of its directions are done, so the pair ends when the last FIN
//!   has been delivered; nothing is cut short.
//! - **Reset and errors**: when one side ends badly (reset by its peer,
//!   socket error, aborted, handler panic, reactor stopped) the other is
//!   aborted, so its peer sees `ECONNRESET` rather than a clean EOF that
//!   would pass a truncated stream for a complete one. An upstream connect
//!   that fails (refused, timed out) aborts the client side the same way.
//!   A side that ends gracefully, or by an idle, peer-EOF or linger
//!   timeout, closes the other gracefully (lossless).
//!
//! Prints `listening on IP:PORT` as its first line; SIGINT or SIGTERM
//! drains it gracefully (5 s deadline, then what is left is aborted).
//! `RUST_LOG=debug` shows every forwarded FIN and close.

use std::io;
use std::process::ExitCode;

use clap::Parser;
use halfclose::{Addr, Closed, Conn, ConnId, Ctx, Eof, Handler, Reactor, Reason, Timeout};
use halfclose_tools::support;

/// proxy: a TCP proxy that forwards each direction's FIN separately
///
/// Forwards bytes both ways between each client and a new connection to
/// --upstream, with backpressure. A FIN from either side is passed on as a
/// half-close; a reset or error on either side resets the other.
#[derive(Parser)]
#[command(
    name = "proxy",
    override_usage = "proxy --upstream ADDR [--listen ADDR]",
    verbatim_doc_comment
)]
struct Args {
    /// The server to forward to: IP:PORT, a Unix socket path (/... or
    /// ./...), or @name (abstract Unix socket)
    #[arg(long, value_name = "ADDR")]
    upstream: Addr,
    /// Address to listen on, in the same forms: any two transports can be
    /// joined (TCP to Unix and back)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    listen: Addr,
    /// Terminate TLS on the listening side (feature `tls`): a client's
    /// close_notify becomes a FIN toward the upstream, and the upstream's
    /// FIN our close_notify toward the client
    #[command(flatten)]
    tls: support::ServeTls,
}

/// Forward `data` read on `conn` to `other`; stop reading `conn` while
/// `other` is write-blocked.
fn forward(conn: &mut Conn<'_>, other: Option<ConnId>, data: &[u8]) {
    let me = conn.id();
    let Some(mut to) = other.and_then(|id| conn.other(id)) else {
        log::debug!("{me}: {} bytes with nowhere to go, dropped", data.len());
        return;
    };
    let blocked = match to.try_write(data) {
        Ok(()) => to.is_write_blocked(),
        Err(e) => {
            log::debug!("{me}: cannot forward to {}: {e}", to.id());
            false
        }
    };
    if blocked {
        log::trace!("{me}: {} write-blocked, pausing", to.id());
        conn.pause_reading();
    }
}

/// `conn`'s queue drained: resume reading the side that feeds it.
fn resume(conn: &mut Conn<'_>, other: Option<ConnId>) {
    let me = conn.id();
    if let Some(mut from) = other.and_then(|id| conn.other(id)) {
        log::trace!("{me}: drained, resuming {}", from.id());
        from.resume_reading();
    }
}

/// `conn`'s peer sent FIN: pass it on as our FIN to the other side.
fn forward_fin(conn: &mut Conn<'_>, other: Option<ConnId>) -> Eof {
    let me = conn.id();
    match other.and_then(|id| conn.other(id)) {
        Some(mut to) => {
            log::debug!("{me}: FIN, forwarding it to {}", to.id());
            to.shutdown_write();
            Eof::HalfClose
        }
        None => Eof::Close,
    }
}

/// The `side` ("client", "upstream") of a pair closed: log it, and finish
/// the other side accordingly.
fn end_other(ctx: &mut Ctx<'_>, side: &str, other: Option<ConnId>, closed: &Closed) {
    log::info!(
        "{}: {side} side closed: {} (in {}, out {}, dropped {})",
        closed.id,
        closed.reason,
        closed.bytes_in,
        closed.bytes_out,
        closed.dropped
    );
    let Some(mut o) = other.and_then(|id| ctx.conn(id)) else {
        return;
    };
    match closed.reason {
        Reason::Local
        | Reason::PeerClosed
        | Reason::TimedOut(Timeout::Idle | Timeout::PeerEof | Timeout::Linger) => {
            log::debug!(
                "{} closed ({}), closing {}",
                closed.id,
                closed.reason,
                o.id()
            );
            o.close();
        }
        _ => {
            log::debug!(
                "{} ended badly ({}), aborting {}",
                closed.id,
                closed.reason,
                o.id()
            );
            o.abort();
        }
    }
}

/// The accepted (client) side of a pair.
struct Downstream {
    upstream_addr: Addr,
    upstream: Option<ConnId>,
}

impl Handler for Downstream {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        let id = conn.id();
        match conn
            .ctx()
            .connect(self.upstream_addr.clone(), Upstream { client: id })
        {
            Ok(up) => {
                log::info!(
                    "{id}: client {:?}, upstream {up} to {}",
                    conn.peer_addr().ok(),
                    self.upstream_addr
                );
                self.upstream = Some(up);
            }
            Err(e) => {
                log::warn!("{id}: cannot connect to {}: {e}", self.upstream_addr);
                conn.abort();
            }
        }
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        forward(conn, self.upstream, data);
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        resume(conn, self.upstream);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        forward_fin(conn, self.upstream)
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        log::info!("{}: client side: {err}", conn.id());
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        end_other(ctx, "client", self.upstream, closed);
    }
}

/// The outbound (upstream) side of a pair.
struct Upstream {
    client: ConnId,
}

impl Handler for Upstream {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        log::debug!("{}: upstream connected (for {})", conn.id(), self.client);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        forward(conn, Some(self.client), data);
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        resume(conn, Some(self.client));
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        forward_fin(conn, Some(self.client))
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        log::info!("{}: upstream side: {err}", conn.id());
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        end_other(ctx, "upstream", Some(self.client), closed);
    }
}

fn main() -> ExitCode {
    env_logger::init();
    let args = Args::parse();
    support::exit_code("proxy", run(args))
}

fn run(args: Args) -> support::ModeResult {
    let upstream_addr = args.upstream;
    log::info!("forwarding to {upstream_addr}");
    let mut reactor = Reactor::new()?;
    let (at, note) = args.tls.apply(support::bind(&args.listen, None), &[])?;
    let listener = reactor.listen(at, move || Downstream {
        upstream_addr: upstream_addr.clone(),
        upstream: None,
    })?;
    support::serve_noting(&mut reactor, listener, note)?;
    Ok(ExitCode::SUCCESS)
}
