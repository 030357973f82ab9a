//! What every example server shares: announce the address, drain on
//! SIGINT/SIGTERM, run, report. Included by each example with `mod support;`
//! (a directory without `main.rs` is not an example of its own).
#![allow(dead_code)]

use std::io::Write;
use std::time::Duration;

use halfclose::{ListenerId, Reactor};
use signal_hook::consts::{SIGINT, SIGTERM};

/// How long a graceful drain may take before what is left is aborted.
pub const DRAIN_DEADLINE: Duration = Duration::from_secs(5);

/// Print `listening on IP:PORT` (flushed: scripts and tests read it), drain
/// on SIGINT/SIGTERM, and run until the drain ends.
pub fn serve(
    reactor: &mut Reactor,
    listener: ListenerId,
) -> Result<(), Box<dyn std::error::Error>> {
    let addr = reactor.local_addr(listener).expect("listener is open");
    println!("listening on {addr}");
    std::io::stdout().flush()?;
    drain_on_signals(reactor)?;
    reactor.run()?;
    let stats = reactor.stats();
    log::info!(
        "stopped: {} accepted, {} closed, {} aborted",
        stats.accepted,
        stats.closed,
        stats.aborts
    );
    Ok(())
}

/// Start a graceful drain of `reactor` on the first SIGINT or SIGTERM.
pub fn drain_on_signals(reactor: &Reactor) -> std::io::Result<()> {
    let handle = reactor.handle();
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM])?;
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            log::info!("signal {sig}: draining");
            let _ = handle.drain(DRAIN_DEADLINE);
        }
    });
    Ok(())
}
