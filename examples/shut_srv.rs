//! The `shut_srv` recipe ("use shutdown, not close"), on halfclose: a
//! server that collects a request up to an end marker and answers it, and
//! that can still tell a client "ERROR:no end!" when the client half-closed
//! before sending the marker.
//!
//! cargo run --example shut_srv -- server --listen 127.0.0.1:4444
//! cargo run --example shut_srv -- client a1234 --connect 127.0.0.1:4444
//!
//! The request is every byte up to the marker (`END` unless `--marker`);
//! the marker is found even when it arrives split across reads
//! (`--recv-size 2` makes the server read 2 bytes at a time, as the recipe
//! does "for demonstration purposes"). Marker found: the reply is the
//! request twice, then the server closes. The client's FIN before the
//! marker is where the recipe and its asyncore critic part ways, and
//! `--on-eof` picks a side:
//!
//! - `half-close` (default, the recipe): the FIN only means the client
//!   stopped sending ([`Eof::HalfClose`]); our write half is still open, so
//!   the server replies `ERROR:no end!`, then sends its own FIN.
//! - `close` (asyncore: "readable with no data" is a disconnect): the
//!   server closes without a word ([`Eof::Close`]); the client reads EOF
//!   and an empty reply.
//!
//! A request longer than `--max-len` (default 1 MiB) is answered with
//! `ERROR:too long!` and the connection closed, so memory stays bounded.
//!
//! The client sends DATA and the marker, half-closes, reads to EOF, and
//! prints the reply exactly as received (no newline added).
//!
//! The server prints `listening on IP:PORT` as its first line; SIGINT or
//! SIGTERM drains it gracefully (5 s deadline). `RUST_LOG=debug` shows what
//! each connection does.

use std::cell::RefCell;
use std::io::{self, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;

use clap::builder::NonEmptyStringValueParser;
use clap::{Parser, Subcommand, ValueEnum};
use halfclose::{Closed, Config, Conn, Ctx, Eof, Handler, ProtocolError, Reactor};
use halfclose_tools::support::{self, ModeResult};

const USAGE: &str = "\
shut_srv server [--listen ADDR] [--marker TEXT] [--on-eof half-close|close]
                       [--recv-size N] [--max-len N]     (default 127.0.0.1:4444, END)
       shut_srv client DATA [--connect ADDR] [--marker TEXT]";

/// shut_srv: a request ends with a marker; the client half-closes after it
#[derive(Parser)]
#[command(name = "shut_srv", override_usage = USAGE)]
struct Args {
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Collect bytes up to the marker; reply with them twice, then close
    Server(ServerArgs),
    /// Send DATA and the marker, half-close, print the reply to EOF
    Client(ClientArgs),
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4444")]
    listen: SocketAddr,
    /// What ends a request
    #[arg(long, value_name = "TEXT", default_value = "END", value_parser = NonEmptyStringValueParser::new())]
    marker: String,
    /// What a FIN before the marker means
    #[arg(long = "on-eof", value_enum, default_value_t = OnEof::HalfClose)]
    on_eof: OnEof,
    /// Read N bytes at a time
    #[arg(long = "recv-size", value_name = "N", default_value_t = 64 * 1024)]
    recv_size: usize,
    /// The longest request
    #[arg(long = "max-len", value_name = "N", default_value_t = 1 << 20)]
    max_len: usize,
}

#[derive(clap::Args)]
struct ClientArgs {
    /// The request, sent before the marker
    data: String,
    /// The server
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:4444")]
    connect: SocketAddr,
    /// What ends the request
    #[arg(long, value_name = "TEXT", default_value = "END")]
    marker: String,
}

fn main() -> ExitCode {
    env_logger::init();
    let result = match Args::parse().mode {
        Mode::Server(args) => server(args),
        Mode::Client(args) => client(args),
    };
    support::exit_code("shut_srv", result)
}

// ---------------------------------------------------------------- server

/// What the server does with a FIN that comes before the marker.
#[derive(Clone, Copy, PartialEq, Eq, Debug, ValueEnum)]
enum OnEof {
    /// Reply `ERROR:no end!` on the still-open write half.
    HalfClose,
    /// Close without replying, as asyncore does.
    Close,
}

/// One request: bytes up to the marker.
struct Request {
    marker: Rc<[u8]>,
    on_eof: OnEof,
    max_len: usize,
    data: Vec<u8>,
    /// Where the next marker search starts: a marker split across reads
    /// begins at most `marker.len() - 1` bytes before the new data.
    scan_from: usize,
}

impl Handler for Request {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        log::info!("{}: connected from {:?}", conn.id(), conn.peer_addr().ok());
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        log::debug!("{}: read {:?}", conn.id(), String::from_utf8_lossy(data));
        self.data.extend_from_slice(data);
        let m = &self.marker[..];
        let found = self.data[self.scan_from..]
            .windows(m.len())
            .position(|w| w == m)
            .map(|i| self.scan_from + i);
        match found {
            Some(end) => {
                log::info!(
                    "{}: marker found after {end} bytes; replying twice",
                    conn.id()
                );
                let request = &self.data[..end];
                conn.write(request);
                conn.write(request);
                // Lossless: the reply is flushed, then our FIN; whatever the
                // client still sends is read and discarded until its FIN.
                conn.close();
                self.data = Vec::new();
            }
            None if self.data.len() > self.max_len => {
                log::warn!(
                    "{}: no marker in {} bytes; giving up",
                    conn.id(),
                    self.data.len()
                );
                conn.write(b"ERROR:too long!");
                conn.close_with(ProtocolError::FrameTooLarge);
                self.data = Vec::new();
            }
            None => self.scan_from = (self.data.len() + 1).saturating_sub(m.len()),
        }
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        match self.on_eof {
            OnEof::HalfClose => {
                // The client only stopped sending; it can still hear us.
                log::info!(
                    "{}: FIN before the marker; replying ERROR:no end!",
                    conn.id()
                );
                conn.write(b"ERROR:no end!");
                conn.shutdown_write();
                Eof::HalfClose
            }
            OnEof::Close => {
                log::info!(
                    "{}: FIN before the marker; closing without a reply",
                    conn.id()
                );
                Eof::Close
            }
        }
    }

    fn handle_error(&mut self, conn: &mut Conn<'_>, err: &io::Error) {
        log::warn!("{}: {err}", conn.id());
    }

    fn handle_close(&mut self, _ctx: &mut Ctx<'_>, closed: &Closed) {
        log::info!(
            "{}: closed: {} (in {}, out {})",
            closed.id,
            closed.reason,
            closed.bytes_in,
            closed.bytes_out
        );
    }
}

fn server(args: ServerArgs) -> ModeResult {
    let ServerArgs {
        listen,
        marker,
        on_eof,
        recv_size,
        max_len,
    } = args;
    let mut config = Config::default();
    config.read_buffer_size = recv_size.max(1);
    let marker: Rc<[u8]> = marker.into_bytes().into();
    let mut reactor = Reactor::with_config(config)?;
    let listener = reactor.listen(listen, move || Request {
        marker: marker.clone(),
        on_eof,
        max_len,
        data: Vec::new(),
        scan_from: 0,
    })?;
    support::serve(&mut reactor, listener)?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------- client

fn client(args: ClientArgs) -> ModeResult {
    let ClientArgs {
        data,
        connect,
        marker,
    } = args;
    let mut request = data.into_bytes();
    request.extend_from_slice(marker.as_bytes());
    log::info!("sending {:?}", String::from_utf8_lossy(&request));

    let reply = Rc::new(RefCell::new(Vec::new()));
    let collect = reply.clone();
    let request = support::Request {
        total: request.len() as u64,
        pattern: request,
        half_close: true,
        timeout: None,
    };
    let out = support::exchange(connect, Config::default(), request, move |data| {
        collect.borrow_mut().extend_from_slice(data)
    })?;

    let mut stdout = io::stdout();
    stdout.write_all(&reply.borrow())?;
    stdout.flush()?;
    if let Some(e) = &out.error {
        eprintln!("shut_srv: {connect}: {e}");
        return Ok(ExitCode::FAILURE);
    }
    if !out.eof {
        eprintln!("shut_srv: the reply did not end with EOF");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
