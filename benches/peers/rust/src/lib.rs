//! Command line shared by the Rust peers of `benches/compare.sh`.
//!
//! Every peer server (Rust, Node.js, Python) takes the same options:
//!
//! ```text
//! --listen ADDR   address to bind (default 127.0.0.1:0); `listening on IP:PORT` is printed first
//! --hold-ms H     after the client's FIN, wait H ms before replying (default 0)
//! --reuseport     set SO_REUSEPORT, so several processes can share the port
//! --echo          echo mode: echo every byte as it arrives, close after the client's FIN
//! ```

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

/// The listen backlog of every peer (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Parsed options.
#[derive(Clone, Debug)]
pub struct Args {
    /// Address to bind.
    pub listen: SocketAddr,
    /// Hold after the client's FIN, before the reply.
    pub hold: Duration,
    /// Set `SO_REUSEPORT` on the listener.
    pub reuseport: bool,
    /// Echo mode instead of the half-close echo.
    pub echo: bool,
}

impl Args {
    /// Parses `std::env::args()`, exiting with status 2 and a usage line on error.
    pub fn from_env(name: &str) -> Args {
        match Args::parse(std::env::args().skip(1)) {
            Ok(a) => a,
            Err(e) => {
                eprintln!("{name}: {e}\nusage: {name} [--listen ADDR] [--hold-ms H] [--reuseport] [--echo]");
                std::process::exit(2)
            }
        }
    }

    fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut a = Args {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            hold: Duration::ZERO,
            reuseport: false,
            echo: false,
        };
        let mut it = args.into_iter();
        while let Some(arg) = it.next() {
            let mut value = || it.next().ok_or_else(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--listen" => a.listen = value()?.parse().map_err(|e| format!("--listen: {e}"))?,
                "--hold-ms" => {
                    a.hold = Duration::from_millis(
                        value()?.parse().map_err(|e| format!("--hold-ms: {e}"))?,
                    )
                }
                "--reuseport" => a.reuseport = true,
                "--echo" => a.echo = true,
                _ => return Err(format!("unknown argument: {arg}")),
            }
        }
        Ok(a)
    }
}
