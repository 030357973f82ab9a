//! The smallest useful server: echoes every byte, honours backpressure, and
//! on the client's FIN flushes the echo and closes.
//!
//! cargo run --release --example echo -- --listen 127.0.0.1:0
//!
//! Prints `listening on IP:PORT` as its first line; SIGINT or SIGTERM
//! drains it gracefully (5 s deadline).

use std::io::Write;
use std::time::Duration;

use halfclose::{Conn, Handler, Reactor};
use signal_hook::consts::{SIGINT, SIGTERM};

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
    let addr = reactor.local_addr(listener).expect("listener is open");
    println!("listening on {addr}");
    std::io::stdout().flush()?;

    let handle = reactor.handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info!("signal {sig}: draining");
            let _ = handle.drain(Duration::from_secs(5));
        }
    });
    reactor.run()?;
    let stats = reactor.stats();
    log::info!(
        "stopped: {} accepted, {} closed",
        stats.accepted,
        stats.closed
    );
    Ok(())
}
