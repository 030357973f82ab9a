//! The smallest useful server: echoes every byte, honours backpressure, and
//! on the client's FIN flushes the echo and closes.
//!
//! cargo run --release --example echo -- --listen 127.0.0.1:0
//! cargo run --release --example echo -- --unix /tmp/echo.sock
//! cargo run --release --features tls --example echo -- --tls-self-signed
//!
//! Prints `listening on ADDR` (`IP:PORT`, or the socket's path) as its
//! first line; SIGINT or SIGTERM drains it gracefully (5 s deadline). The
//! same handler serves TCP and Unix stream sockets.

use std::path::PathBuf;

use clap::Parser;
use halfclose::{Addr, Conn, Handler, Reactor};
use halfclose_tools::support;

struct Echo;

impl Handler for Echo {
    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        if conn.try_write(data).is_ok() && conn.is_write_blocked() {
            // The peer sends faster than it reads: stop reading until our
            // queue drains, so memory stays bounded.
            conn.pause_reading();
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
}

/// echo: a TCP echo server on halfclose
#[derive(Parser)]
#[command(name = "echo")]
struct Args {
    /// Address to listen on: IP:PORT, a Unix socket path (/... or ./...),
    /// or @name (abstract Unix socket)
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    listen: Addr,
    /// Listen on the Unix stream socket at PATH instead
    #[arg(long, value_name = "PATH", conflicts_with = "listen")]
    unix: Option<PathBuf>,
    #[command(flatten)]
    tls: support::ServeTls,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = Args::parse();
    let mut reactor = Reactor::new()?;
    let at = support::bind(&args.listen, args.unix.as_deref());
    let (at, note) = args.tls.apply(at, &[])?;
    let listener = reactor.listen(at, || Echo)?;
    support::serve_noting(&mut reactor, listener, note)
}
