//! The smallest useful server: echoes every byte, honours backpressure, and
//! on the client's FIN flushes the echo and closes.
//!
//! cargo run --release --example echo -- --listen 127.0.0.1:0
//!
//! Prints `listening on IP:PORT` as its first line; SIGINT or SIGTERM
//! drains it gracefully (5 s deadline).

use halfclose::{Conn, Handler, Reactor};

mod support;

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

const USAGE: &str = "usage: echo [--listen ADDR]   (default 127.0.0.1:7000)";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut listen = "127.0.0.1:7000".to_string();
    let mut args = support::Args::new("echo", USAGE);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.value("--listen"),
            "-h" | "--help" => {
                println!("echo: a TCP echo server on halfclose\n\n{USAGE}");
                return Ok(());
            }
            _ => args.usage(),
        }
    }
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(listen.parse()?, || Echo)?;
    support::serve(&mut reactor, listener)
}
