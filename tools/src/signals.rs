//! SIGINT and SIGTERM, on `signal-hook`: drain a reactor on the first one,
//! or raise a flag that a loop polls.

use std::io;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use halfclose::Reactor;
use signal_hook::consts::{SIGINT, SIGTERM};

/// The signals that stop a server gracefully.
pub const STOP: [i32; 2] = [SIGINT, SIGTERM];

/// Start a graceful drain of `reactor` (bounded by `deadline`) on the first
/// SIGINT or SIGTERM, from a thread of its own. The handlers are installed
/// (and their descriptors open) when this returns.
pub fn drain_on_stop(reactor: &Reactor, deadline: Duration) -> io::Result<()> {
    let handle = reactor.handle();
    let mut signals = signal_hook::iterator::Signals::new(STOP)?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                log::info!("signal {sig}: draining");
                let _ = handle.drain(deadline);
            }
        })?;
    Ok(())
}

/// A flag that the first SIGINT or SIGTERM sets (for a loop that polls it).
pub fn stop_flag() -> io::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in STOP {
        signal_hook::flag::register(sig, Arc::clone(&stop))?;
    }
    Ok(stop)
}
