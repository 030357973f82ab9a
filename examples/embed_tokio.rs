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

use std::os::fd::AsFd;
use std::time::Duration;

use clap::Parser;
use halfclose_tools::support;
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// embed_tokio: a halfclose reactor driven by a tokio runtime
#[derive(Parser)]
#[command(name = "embed_tokio")]
struct Args {
    #[command(flatten)]
    serve: support::Embedded,
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
    let mut reactor = args.serve.reactor()?;

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
            _ = tick.tick() => support::log_gauges(&reactor),
        }
    }
    log::info!(
        "drained: {} accepted, {} closed",
        reactor.stats().accepted,
        reactor.stats().closed
    );
    Ok(())
}
