//! Listening sockets: creation with a real backlog and `SO_REUSEPORT`, and
//! the accept loop with its batch limit, connection limit and
//! descriptor-exhaustion handling.
//!
//! When `accept` fails with `EMFILE` or `ENFILE` the pending connection
//! stays in the kernel queue and the listener stays readable (V7): a loop
//! that logs and returns spins. Here the listener rests for
//! [`Config::accept_backoff`](crate::Config::accept_backoff) and, using one
//! descriptor held in reserve for the purpose, accepts and closes the
//! pending connections so their clients get an answer instead of a hang.

use std::fs::File;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};

use crate::core::{panic_message, Core};
use crate::handler::Handler;
use crate::state::Writing;
use crate::timer::TimerKey;
use crate::token::ConnId;
use crate::transport::{Addr, Listening, Stream};

/// Makes the handler of an accepted connection and gives both their
/// places: `Err` with the panic's payload if making the handler panicked
/// (the socket is then closed).
pub(crate) type Factory =
    Box<dyn FnMut(&mut Core, Stream) -> std::thread::Result<io::Result<ConnId>>>;

/// A [`Factory`] from a function making handlers of one type (admitted by
/// the core beforehand).
pub(crate) fn factory<F, H>(mut make: F) -> Factory
where
    F: FnMut() -> H + 'static,
    H: Handler + 'static,
{
    Box::new(move |core, stream| {
        let handler = catch_unwind(AssertUnwindSafe(&mut make))?;
        Ok(core.insert(stream, handler, Writing::Open))
    })
}

pub(crate) struct Listener {
    pub(crate) socket: Listening,
    pub(crate) factory: Factory,
    pub(crate) local_addr: Addr,
    /// Resting after an accept failure until this timer fires.
    pub(crate) resting: Option<TimerKey>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("local_addr", &self.local_addr)
            .field("resting", &self.resting.is_some())
            .finish()
    }
}

/// How an accept round ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Round {
    /// The kernel queue is empty; wait for the next event.
    Drained,
    /// The batch limit was reached with connections maybe still queued.
    More,
    /// Accepting failed (out of descriptors or another error): rest.
    Rest,
}

pub(crate) fn is_fd_exhaustion(e: &io::Error) -> bool {
    // EMFILE, ENFILE, ENOBUFS, ENOMEM: resources, not this connection.
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// One descriptor kept open so that, when the process runs out, it can be
/// released to accept and close a pending connection.
#[derive(Debug, Default)]
pub(crate) struct Reserve(Option<File>);

impl Reserve {
    pub(crate) fn new() -> Self {
        Reserve(File::open("/dev/null").ok())
    }
}

impl Listener {
    /// Accept up to one batch, handing each connection to a new handler.
    pub(crate) fn accept(
        &mut self,
        core: &mut Core,
        reserve: &mut Reserve,
        accepted: &mut Vec<ConnId>,
    ) -> Round {
        for _ in 0..core.config.accept_batch {
            match self.socket.accept() {
                Ok((stream, peer)) => {
                    if core
                        .config
                        .max_connections
                        .is_some_and(|max| core.open() >= max)
                    {
                        log::debug!("refusing {peer}: max_connections reached");
                        core.stats.refused += 1;
                        continue; // dropped: closed at once
                    }
                    let inserted = match (self.factory)(core, stream) {
                        Ok(inserted) => inserted,
                        Err(payload) => {
                            log::error!(
                                "handler factory panicked: {}; closing {peer}",
                                panic_message(&*payload)
                            );
                            core.stats.panics += 1;
                            core.stats.refused += 1;
                            continue;
                        }
                    };
                    match inserted {
                        Ok(id) => {
                            core.stats.accepted += 1;
                            accepted.push(id);
                        }
                        Err(e) => {
                            log::warn!("cannot register connection from {peer}: {e}");
                            core.stats.refused += 1;
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Round::Drained,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                Err(e) if is_fd_exhaustion(&e) => {
                    core.stats.fd_exhausted += 1;
                    let shed = self.shed(reserve, core.config.accept_batch);
                    core.stats.refused += shed;
                    log::warn!(
                        "accept on {}: {e}; shed {shed} pending connection(s), resting",
                        self.local_addr
                    );
                    return Round::Rest;
                }
                Err(e) => {
                    log::warn!("accept on {}: {e}; resting", self.local_addr);
                    return Round::Rest;
                }
            }
        }
        Round::More
    }

    /// Release the reserve descriptor, accept and close up to `max` pending
    /// connections with it, and take the reserve back.
    fn shed(&mut self, reserve: &mut Reserve, max: usize) -> u64 {
        let Some(file) = reserve.0.take() else {
            return 0;
        };
        drop(file);
        let mut shed = 0;
        while shed < max as u64 {
            match self.socket.accept() {
                Ok((stream, _)) => {
                    drop(stream);
                    shed += 1;
                }
                Err(_) => break,
            }
        }
        *reserve = Reserve::new();
        shed
    }
}
