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

use clap::{CommandFactory, FromArgMatches, Parser};

/// The listen backlog of every peer (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// A peer server of `benches/compare.sh`: the half-close echo (reply after
/// the client's FIN, then close), or with --echo a plain echo.
#[derive(Parser, Clone, Debug)]
pub struct Args {
    /// Address to bind; `listening on IP:PORT` is printed first
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// After the client's FIN, wait H ms before replying
    #[arg(long = "hold-ms", value_name = "H", default_value = "0", value_parser = millis)]
    pub hold: Duration,
    /// Set SO_REUSEPORT, so several processes can share the port
    #[arg(long)]
    pub reuseport: bool,
    /// Echo mode: echo every byte as it arrives, close after the client's FIN
    #[arg(long)]
    pub echo: bool,
}

fn millis(s: &str) -> Result<Duration, std::num::ParseIntError> {
    s.parse().map(Duration::from_millis)
}

impl Args {
    /// Parses `std::env::args()` for the peer `name`; `--help` prints the
    /// options, a bad argument exits with status 2 and the usage.
    pub fn from_env(name: &'static str) -> Args {
        let matches = Args::command().name(name).get_matches();
        Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}
