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
        if conn.write(data).is_ok() && conn.is_write_blocked() {
            // The peer sends faster than it reads: stop reading until our
            // queue drains, so memory stays bounded.
            conn.pause_reading();
        }
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        conn.resume_reading();
    }
}

fn usage() -> ! {
    eprintln!("usage: echo [--listen ADDR]   (default 127.0.0.1:7000)");
    std::process::exit(2)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut listen = "127.0.0.1:7000".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => listen = args.next().unwrap_or_else(|| usage()),
            "-h" | "--help" => {
                println!(
                    "echo: a TCP echo server on halfclose\n\nusage: echo [--listen ADDR]   (default 127.0.0.1:7000)"
                );
                return Ok(());
            }
            _ => usage(),
        }
    }
    let mut reactor = Reactor::new()?;
    let listener = reactor.listen(listen.parse()?, || Echo)?;
    support::serve(&mut reactor, listener)
}
