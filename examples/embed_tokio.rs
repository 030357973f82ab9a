//! The reactor inside a tokio current-thread runtime, next to tokio's own
//! tasks: tokio watches the reactor's epoll descriptor through `AsyncFd`
//! and calls `run_once(Some(Duration::ZERO))` whenever it is readable. The
//! reactor's timers, re-queued reads and posted tasks all make that
//! descriptor readable, so nothing else needs to wake it.
//!
//! cargo run --example embed_tokio -- --listen 127.0.0.1:0
//!
//! It serves a half-close protocol with a timer: the client sends a
//! request and half-closes; `--delay-ms` later the server answers with the
//! request uppercased and closes. A tokio interval logs the reactor's
//! figures. Prints `listening on IP:PORT` first; SIGINT or SIGTERM drains
//! it (5 s deadline), and it exits when the drain ends.
//!
//! ```text
//! $ printf 'hello' | socat - TCP:127.0.0.1:PORT,shut-down   # HELLO, after the delay
//! ```

use std::net::SocketAddr;
use std::os::fd::AsFd;
use std::time::Duration;

use clap::Parser;
use halfclose::{Config, Reactor};
use halfclose_tools::{signals, support};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// embed_tokio: a halfclose reactor driven by a tokio runtime
#[derive(Parser)]
#[command(name = "embed_tokio")]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7000")]
    listen: SocketAddr,
    /// How long after the client's FIN the answer comes
    #[arg(long, value_name = "MS", default_value_t = 200)]
    delay_ms: u64,
    /// Close connections silent for this long
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    idle_timeout_ms: u64,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let mut config = Config::default();
    config.idle_timeout = Some(Duration::from_millis(args.idle_timeout_ms));
    let mut reactor = Reactor::with_config(config)?;
    let delay = Duration::from_millis(args.delay_ms);
    let listener = reactor.listen(args.listen, move || support::Deferred::new(delay))?;
    signals::drain_on_stop(&reactor, support::DRAIN_DEADLINE)?;
    support::announce(reactor.local_addr(listener).expect("listener is open"))?;

    // A tokio task of its own, to show the two loops share the thread.
    let mut tick = tokio::time::interval(Duration::from_secs(5));

    // `AsyncFd` owns a duplicate of the epoll descriptor, which stays open
    // as long as it is registered; `with_interest` is deprecated because it
    // cannot promise that for any descriptor, and its replacement is
    // `unsafe` to call, which this project's code never is.
    let epoll = reactor.as_fd().try_clone_to_owned()?;
    #[allow(deprecated)]
    let fd = AsyncFd::with_interest(epoll, Interest::READABLE)?;
    loop {
        tokio::select! {
            ready = fd.readable() => {
                let mut guard = ready?;
                reactor.run_once(Some(Duration::ZERO))?;
                guard.clear_ready();
                if reactor.is_draining() && reactor.stats().open == 0 {
                    break;
                }
            }
            _ = tick.tick() => {
                let s = reactor.stats();
                log::info!("open {}, half-closed in {}, accepted {}", s.open, s.half_closed_in, s.accepted);
            }
        }
    }
    log::info!(
        "drained: {} accepted, {} closed",
        reactor.stats().accepted,
        reactor.stats().closed
    );
    Ok(())
}
