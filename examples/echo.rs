//! The smallest useful server: echoes every byte, honours backpressure, and
//! on the client's FIN flushes the echo and closes.
//!
//! cargo run --release --example echo -- --listen 127.0.0.1:0
//!
//! Prints `listening on IP:PORT` as its first line; SIGINT or SIGTERM
//! drains it gracefully (5 s deadline).

use std::net::SocketAddr;

use clap::Parser;
use halfclose::{Conn, Handler, Reactor};
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
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = Args::parse();
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(args.listen, || Echo)?;
    support::serve(&mut reactor, listener)
}
