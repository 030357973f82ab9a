//! The reactor as an event source of a calloop event loop: a `Generic`
//! source on (a duplicate of) the reactor's epoll descriptor, level
//! triggered, whose callback calls `run_once(Some(Duration::ZERO))`. The
//! reactor's timers, re-queued reads and posted tasks all make that
//! descriptor readable, so nothing else needs to wake it.
//!
//! cargo run --example embed_calloop -- --listen 127.0.0.1:0
//!
//! It serves the same half-close protocol with a timer as `embed_tokio`:
//! the client sends a request and half-closes; `--delay-ms` later the
//! server answers with the request uppercased and closes. A calloop timer
//! logs the reactor's figures. Prints `listening on IP:PORT` first; SIGINT
//! or SIGTERM drains it (5 s deadline), and it exits when the drain ends.

use std::os::fd::AsFd;
use std::time::Duration;

use calloop::generic::Generic;
use calloop::timer::{TimeoutAction, Timer};
use calloop::{EventLoop, Interest, Mode, PostAction};
use clap::Parser;
use halfclose::Reactor;
use halfclose_tools::support;

/// embed_calloop: a halfclose reactor as a calloop event source
#[derive(Parser)]
#[command(name = "embed_calloop")]
struct Args {
    #[command(flatten)]
    serve: support::Embedded,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let mut reactor = Args::parse().serve.reactor()?;

    let mut event_loop: EventLoop<'_, Reactor> = EventLoop::try_new()?;
    let handle = event_loop.handle();
    let epoll = reactor.as_fd().try_clone_to_owned()?;
    handle.insert_source(
        Generic::new(epoll, Interest::READ, Mode::Level),
        |_, _, reactor: &mut Reactor| {
            reactor.run_once(Some(Duration::ZERO))?;
            Ok(PostAction::Continue)
        },
    )?;
    // A calloop source of its own, to show the two share the loop.
    handle.insert_source(
        Timer::from_duration(Duration::from_secs(5)),
        |_, _, reactor: &mut Reactor| {
            support::log_gauges(reactor);
            TimeoutAction::ToDuration(Duration::from_secs(5))
        },
    )?;
    let signal = event_loop.get_signal();
    event_loop.run(None, &mut reactor, |reactor| {
        if reactor.is_draining() && reactor.stats().open == 0 {
            signal.stop();
        }
    })?;
    log::info!(
        "drained: {} accepted, {} closed",
        reactor.stats().accepted,
        reactor.stats().closed
    );
    Ok(())
}
