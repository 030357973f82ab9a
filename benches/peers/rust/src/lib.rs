//! Command line shared by the Rust peers of `benches/compare.sh`.
//!
//! Every peer server (Rust, Node.js, Python) takes the same options:
//!
//! ```text
//! --listen ADDR   address to bind (default 127.0.0.1:0); `listening on ADDR` is printed first
//! --hold-ms H     after the client's FIN, wait H ms before replying (default 0)
//! --reuseport     set SO_REUSEPORT, so several processes can share the port
//! --echo          echo mode: echo every byte as it arrives, close after the client's FIN
//! --tls-cert PEM --tls-key PEM
//!                 serve TLS with this certificate and key (peer_tokio and peer.js;
//!                 the half-close echo only)
//! ```
//!
//! `peer_mio` also listens on a Unix stream socket: `--listen` takes a
//! socket path (`/...` or `./...`) or `@name` (Linux's abstract namespace)
//! as well as `IP:PORT`. The other Rust peers are TCP only and refuse one
//! ([`Args::tcp`]). `peer_tokio` serves TLS (tokio-rustls); `peer_mio`
//! has no TLS mode and refuses the options ([`Args::no_tls`]).

#![forbid(unsafe_code)]

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{CommandFactory, FromArgMatches, Parser};

/// The listen backlog of every peer (the kernel caps it at `net.core.somaxconn`).
pub const BACKLOG: i32 = 4096;

/// Where a peer listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Listen {
    /// TCP: `IP:PORT`.
    Tcp(SocketAddr),
    /// A Unix stream socket at a path (`/...` or `./...`).
    Path(PathBuf),
    /// A Unix stream socket in Linux's abstract namespace (`@name`).
    Abstract(String),
}

impl std::str::FromStr for Listen {
    type Err = String;

    fn from_str(s: &str) -> Result<Listen, String> {
        if let Some(name) = s.strip_prefix('@') {
            return Ok(Listen::Abstract(name.to_string()));
        }
        if s.starts_with('/') || s.starts_with('.') {
            return Ok(Listen::Path(PathBuf::from(s)));
        }
        s.parse()
            .map(Listen::Tcp)
            .map_err(|_| format!("{s:?} is not IP:PORT, a socket path (/... or ./...) or @name"))
    }
}

impl fmt::Display for Listen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Listen::Tcp(a) => write!(f, "{a}"),
            Listen::Path(p) => write!(f, "{}", p.display()),
            Listen::Abstract(name) => write!(f, "@{name}"),
        }
    }
}

/// A peer server of `benches/compare.sh`: the half-close echo (reply after
/// the client's FIN, then close), or with --echo a plain echo.
#[derive(Parser, Clone, Debug)]
pub struct Args {
    /// Address to bind: IP:PORT, or for peer_mio a Unix socket path (/... or
    /// ./...) or @name; `listening on ADDR` is printed first
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:0")]
    pub listen: Listen,
    /// After the client's FIN, wait H ms before replying
    #[arg(long = "hold-ms", value_name = "H", default_value = "0", value_parser = millis)]
    pub hold: Duration,
    /// Set SO_REUSEPORT, so several processes can share the port
    #[arg(long)]
    pub reuseport: bool,
    /// Echo mode: echo every byte as it arrives, close after the client's FIN
    #[arg(long)]
    pub echo: bool,
    /// Serve TLS with this certificate chain (PEM; the half-close echo only)
    #[arg(
        long = "tls-cert",
        value_name = "PEM",
        requires = "tls_key",
        conflicts_with = "echo"
    )]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM)
    #[arg(long = "tls-key", value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

fn millis(s: &str) -> Result<Duration, std::num::ParseIntError> {
    s.parse().map(Duration::from_millis)
}

impl Args {
    /// Parses `std::env::args()` for the peer `name`; `--help` prints the
    /// options, a bad argument exits with status 2 and the usage.
    pub fn from_env(name: &'static str) -> Args {
        let matches = Args::command().name(name).get_matches();
        let args = Args::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        if args.reuseport && !matches!(args.listen, Listen::Tcp(_)) {
            Args::usage_error(
                name,
                "--reuseport shares a TCP port; a Unix socket has none",
            );
        }
        args
    }

    /// The TCP address to bind, for a peer that has no Unix socket mode;
    /// a Unix socket exits with status 2 and the usage.
    pub fn tcp(&self, name: &'static str) -> SocketAddr {
        match self.listen {
            Listen::Tcp(addr) => addr,
            ref unix => Args::usage_error(
                name,
                &format!("{name} listens on TCP only, not on the Unix socket {unix}"),
            ),
        }
    }

    /// The certificate and key to serve TLS with, if given.
    pub fn tls(&self) -> Option<(&std::path::Path, &std::path::Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }

    /// For a peer without a TLS mode: the TLS options exit with status 2
    /// and the usage.
    pub fn no_tls(&self, name: &'static str) {
        if self.tls_cert.is_some() {
            Args::usage_error(name, &format!("{name} has no TLS mode"));
        }
    }

    fn usage_error(name: &'static str, msg: &str) -> ! {
        Args::command()
            .name(name)
            .error(clap::error::ErrorKind::ArgumentConflict, msg)
            .exit()
    }
}
