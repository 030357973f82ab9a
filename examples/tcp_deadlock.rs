//! The `tcp_deadlock` program of *Foundations of Python Network Programming*,
//! on halfclose: a server that sends back every byte uppercased, and a
//! client that sends a block of text, half-closes, and reads the reply.
//!
//! cargo run --example tcp_deadlock -- server --listen 127.0.0.1:1060
//! cargo run --example tcp_deadlock -- client 1048576 --connect 127.0.0.1:1060
//!
//! The server reads until the client's FIN: only then does it know the
//! request is complete, so it flushes what it still has queued and closes
//! ([`Eof::Close`]). A client must therefore `shutdown(SHUT_WR)` once it has
//! sent everything, yet keep reading: the half-close. Without it
//! (`client --no-shutdown`) the server waits for more data forever and the
//! client waits for the server's EOF forever; here the client gives up
//! after `--timeout` seconds without progress and explains why (exit 3).
//!
//! The server honours backpressure: when its queue toward a client passes
//! the high-water mark it stops reading from that client until the queue
//! drains ([`Handler::handle_write`]). Memory stays bounded, and this is
//! the deadlock the book's title refers to: a client that sends everything
//! before it reads anything, with more data than the socket buffers hold,
//! stalls, because neither side reads. The client below reads while it
//! sends, so any size works.
//!
//! The server prints `listening on IP:PORT` as its first line; SIGINT or
//! SIGTERM drains it gracefully (5 s deadline). `RUST_LOG=debug` shows each
//! connection's progress.

use std::cell::Cell;
use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::rc::Rc;
use std::time::Duration;

use clap::{Parser, Subcommand};
use halfclose::{Addr, Closed, Config, Conn, Ctx, Eof, Handler, Reactor};
use halfclose_tools::support::{self, ModeResult, Request};

/// The 16-byte message the client repeats.
const MESSAGE: &[u8; 16] = b"capitalize this!";

const USAGE: &str = "\
tcp_deadlock server [--listen ADDR | --unix PATH]          (default 127.0.0.1:1060)
       tcp_deadlock client BYTES [--connect ADDR | --unix PATH] [--no-shutdown] [--timeout SECS]
                                                   (default 127.0.0.1:1060, 3 s)";

/// tcp_deadlock: the half-close demonstration of Foundations of Python
/// Network Programming
///
/// The server sends back every byte it receives, uppercased, and closes
/// after the client's FIN. The client sends BYTES (rounded up to a multiple
/// of 16) of 'capitalize this!', half-closes with shutdown(SHUT_WR), reads
/// the reply to EOF and prints 'received N bytes'; it exits 0 only if the
/// reply is the uppercased text, in full.
#[derive(Parser)]
#[command(
    name = "tcp_deadlock",
    override_usage = USAGE,
    verbatim_doc_comment,
    after_help = "exit codes: 0 ok, 1 wrong reply or connection failure, 2 usage, 3 timed out"
)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Send back every byte uppercased; close after the client's FIN
    Server {
        /// Address to listen on: IP:PORT, a socket path or @name
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1060")]
        listen: Addr,
        /// Listen on the Unix stream socket at PATH instead
        #[arg(long, value_name = "PATH", conflicts_with = "listen")]
        unix: Option<PathBuf>,
        #[command(flatten)]
        tls: support::ServeTls,
    },
    /// Send BYTES of text, half-close, read the reply to EOF
    Client {
        /// How many bytes to send (rounded up to a multiple of 16)
        bytes: u64,
        /// The server: IP:PORT, a socket path or @name
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:1060")]
        connect: Addr,
        /// Connect to the Unix stream socket at PATH instead
        #[arg(long, value_name = "PATH", conflicts_with = "connect")]
        unix: Option<PathBuf>,
        #[command(flatten)]
        tls: support::ConnectTls,
        /// Never half-close: the server never sees EOF and waits for more
        /// data forever; the client gives up after --timeout seconds
        /// without progress (exit 3)
        #[arg(long = "no-shutdown", verbatim_doc_comment)]
        no_shutdown: bool,
        /// Give up after this many seconds without progress
        #[arg(long, value_name = "SECS", default_value = "3", value_parser = seconds)]
        timeout: Duration,
    },
}

/// A positive, finite number of seconds.
fn seconds(s: &str) -> Result<Duration, String> {
    match s.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs.is_finite() => Ok(Duration::from_secs_f64(secs)),
        _ => Err(format!("not a positive number of seconds: {s}")),
    }
}

fn main() -> ExitCode {
    env_logger::init();
    let result = match Args::parse().mode {
        Mode::Server { listen, unix, tls } => tls
            .apply(support::bind(&listen, unix.as_deref()), &[])
            .map_err(Into::into)
            .and_then(|(at, note)| server(at, note)),
        Mode::Client {
            bytes,
            connect,
            unix,
            tls,
            no_shutdown,
            timeout,
        } => tls
            .apply(support::target(&connect, unix.as_deref()))
            .map_err(Into::into)
            .and_then(|to| client(bytes, to, !no_shutdown, timeout)),
    };
    support::exit_code("tcp_deadlock", result)
}

// ---------------------------------------------------------------- server

/// One client connection of the server.
struct Upper {
    peer: Option<Addr>,
    processed: u64,
}

impl Handler for Upper {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        self.peer = conn.peer_addr().ok();
        log::info!("{}: processing input from {:?}", conn.id(), self.peer);
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        self.processed += data.len() as u64;
        log::debug!("{}: {} bytes processed so far", conn.id(), self.processed);
        if conn.try_write(&data.to_ascii_uppercase()).is_ok() && conn.is_write_blocked() {
            // The client sends faster than it reads: stop reading until our
            // queue drains. If it never reads, this is the deadlock.
            log::debug!(
                "{}: write-blocked ({} queued), pausing input",
                conn.id(),
                conn.pending()
            );
            conn.pause_reading();
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        log::debug!("{}: queue drained, resuming input", conn.id());
        conn.resume_reading();
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        log::info!(
            "{}: end of input after {} bytes; flushing and closing",
            conn.id(),
            self.processed
        );
        Eof::Close
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        log::warn!("{}: {err}", conn.id());
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        log::info!(
            "{}: completed processing {:?}: {} (in {}, out {})",
            closed.id,
            self.peer,
            closed.reason,
            closed.bytes_in,
            closed.bytes_out
        );
    }
}

fn server(listen: halfclose::Bind, note: Option<String>) -> ModeResult {
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(listen, || Upper {
        peer: None,
        processed: 0,
    })?;
    support::serve_noting(&mut reactor, listener, note)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- client

fn client(
    bytes: u64,
    connect: halfclose::Connect,
    half_close: bool,
    timeout: Duration,
) -> ModeResult {
    // Round up to a multiple of 16, as the original does.
    let total = bytes.div_ceil(16) * 16;
    println!(
        "sending {total} bytes: {:?} repeated",
        String::from_utf8_lossy(MESSAGE)
    );
    io::stdout().flush()?;

    // The reply must be the message uppercased, byte for byte.
    let first_wrong = Rc::new(Cell::new(None));
    let (wrong, upper) = (first_wrong.clone(), MESSAGE.to_ascii_uppercase());
    let mut offset = 0u64;
    let check = move |data: &[u8]| {
        if offset == 0 {
            log::info!(
                "the first data received says {:?}",
                String::from_utf8_lossy(&data[..data.len().min(42)])
            );
        }
        if wrong.get().is_none() {
            if let Some(i) = data
                .iter()
                .enumerate()
                .position(|(i, &b)| b != upper[((offset + i as u64) % 16) as usize])
            {
                wrong.set(Some(offset + i as u64));
            }
        }
        offset += data.len() as u64;
    };
    let mut config = Config::default();
    config.connect_timeout = Some(timeout);
    let request = Request {
        pattern: MESSAGE.iter().copied().cycle().take(64 * 1024).collect(),
        total,
        half_close,
        timeout: Some(timeout),
    };
    let out = support::exchange(connect.clone(), config, request, check)?;

    if out.timed_out {
        if half_close {
            eprintln!(
                "tcp_deadlock: timed out: no progress for {timeout:?}; received {} of {total} bytes, \
                 and the server has not closed",
                out.received
            );
        } else {
            eprintln!(
                "tcp_deadlock: timed out after {timeout:?} without progress: received {} of {total} bytes \
                 but no end-of-file.\n\
                 Without shutdown(SHUT_WR) the server never sees end-of-file, so it waits for more data \
                 forever and never closes; and we wait for its close forever. Half-close after sending \
                 (run without --no-shutdown).",
                out.received
            );
        }
        return Ok(ExitCode::from(3));
    }
    if let Some(e) = &out.error {
        eprintln!("tcp_deadlock: connection to {connect} failed: {e}");
        return Ok(ExitCode::FAILURE);
    }
    println!("received {} bytes", out.received);
    if let Some(at) = first_wrong.get() {
        eprintln!(
            "tcp_deadlock: the reply is not the uppercased text (first difference at byte {at})"
        );
        return Ok(ExitCode::FAILURE);
    }
    if !out.eof || out.received != total {
        eprintln!(
            "tcp_deadlock: sent {total} bytes but received {}",
            out.received
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
