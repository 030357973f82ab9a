//! The reactor: the poll loop, event dispatch, timers, the cross-thread
//! handle, stop and the graceful drain.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::event::Event;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::closed::Reason;
use crate::config::Config;
use crate::conn::{Conn, Connect, Ctx};
use crate::core::{panic_message, Control, Core, TimerTarget};
use crate::handler::Handler;
use crate::listener::{self, Listener, Reserve, Round};
use crate::stats::Stats;
use crate::token::{self, ConnId, ListenerId, Target, TimerId};

type Task = Box<dyn FnOnce(&mut Reactor) + Send>;

struct Remote {
    waker: Waker,
    tasks: Mutex<Vec<Task>>,
}

/// A single-threaded event loop that drives TCP connections through their
/// [`Handler`]s.
///
/// # Examples
///
/// ```no_run
/// use halfclose::{Conn, Handler, Reactor};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
///         let _ = conn.write(data);
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:7000".parse().unwrap(), || Echo)?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Reactor {
    poll: Poll,
    events: Events,
    core: Core,
    buf: Vec<u8>,
    listeners: Slab<Listener>,
    reserve: Reserve,
    remote: Arc<Remote>,
    /// Connections that spent their read budget and still have input.
    requeue: Vec<ConnId>,
    /// Listeners with connections to accept this iteration: readiness
    /// events, and listeners that hit their batch limit last time. One batch
    /// each per iteration.
    accept_again: Vec<ListenerId>,
    accepted: Vec<ConnId>,
}

impl fmt::Debug for Reactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reactor")
            .field("core", &self.core)
            .field("listeners", &self.listeners.len())
            .finish()
    }
}

/// A `Send + Clone` handle that wakes a [`Reactor`] and posts work to it from
/// other threads.
#[derive(Clone)]
pub struct Handle {
    remote: Arc<Remote>,
}

impl fmt::Debug for Handle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handle")
    }
}

impl Handle {
    /// Run `task` on the reactor's thread, between two callbacks, at its next
    /// iteration. Tasks run in the order posted.
    ///
    /// # Errors
    ///
    /// Waking the reactor failed.
    pub fn post(&self, task: impl FnOnce(&mut Reactor) + Send + 'static) -> io::Result<()> {
        self.remote
            .tasks
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .push(Box::new(task));
        self.remote.waker.wake()
    }

    /// Wake the reactor without posting anything.
    ///
    /// # Errors
    ///
    /// Writing to the reactor's eventfd failed.
    pub fn wake(&self) -> io::Result<()> {
        self.remote.waker.wake()
    }

    /// Make [`Reactor::run`] return.
    ///
    /// # Errors
    ///
    /// As [`post`](Handle::post).
    pub fn stop(&self) -> io::Result<()> {
        self.post(Reactor::stop)
    }

    /// Start a graceful drain; see [`Reactor::drain`].
    ///
    /// # Errors
    ///
    /// As [`post`](Handle::post).
    pub fn drain(&self, timeout: Duration) -> io::Result<()> {
        self.post(move |r| r.drain(timeout))
    }
}

impl Reactor {
    /// A reactor with the default [`Config`].
    ///
    /// # Errors
    ///
    /// Creating the epoll instance or its eventfd failed.
    pub fn new() -> io::Result<Self> {
        Self::with_config(Config::default())
    }

    /// A reactor with `config`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` with an [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// inside when `config` does not pass [`Config::validate`]; creating the
    /// epoll instance or its eventfd failed.
    pub fn with_config(config: Config) -> io::Result<Self> {
        config
            .validate()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), token::WAKER)?;
        let registry = poll.registry().try_clone()?;
        Ok(Reactor {
            events: Events::with_capacity(config.events_capacity),
            buf: vec![0; config.read_buffer_size],
            core: Core::new(registry, config),
            poll,
            listeners: Slab::new(),
            reserve: Reserve::new(),
            remote: Arc::new(Remote {
                waker,
                tasks: Mutex::new(Vec::new()),
            }),
            requeue: Vec::new(),
            accept_again: Vec::new(),
            accepted: Vec::new(),
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.core.config
    }

    /// A handle for other threads.
    pub fn handle(&self) -> Handle {
        Handle {
            remote: Arc::clone(&self.remote),
        }
    }

    /// Listen on `addr` (port 0 picks a free port); `factory` makes one
    /// handler per accepted connection. The socket gets the configured
    /// backlog, `SO_REUSEADDR`, and `SO_REUSEPORT` if configured.
    ///
    /// # Errors
    ///
    /// Creating, binding or registering the socket failed.
    pub fn listen<F, H>(&mut self, addr: SocketAddr, mut factory: F) -> io::Result<ListenerId>
    where
        F: FnMut() -> H + 'static,
        H: Handler + 'static,
    {
        let mut socket = listener::bind(addr, &self.core.config)?;
        let local_addr = socket.local_addr()?;
        let entry = self.listeners.vacant_entry();
        let id = ListenerId(entry.key() as u32);
        self.poll.registry().register(
            &mut socket,
            token::encode_listener(id),
            Interest::READABLE,
        )?;
        entry.insert(Listener {
            socket,
            factory: Box::new(move || Box::new(factory()) as Box<dyn Handler>),
            local_addr,
            resting: None,
        });
        Ok(id)
    }

    /// The address a listener is bound to (with the port the kernel picked).
    pub fn local_addr(&self, listener: ListenerId) -> Option<SocketAddr> {
        self.listeners
            .get(listener.0 as usize)
            .map(|l| l.local_addr)
    }

    /// Close a listener: new connections to it are refused; the ones it
    /// accepted go on.
    pub fn close_listener(&mut self, listener: ListenerId) -> bool {
        let key = listener.0 as usize;
        if !self.listeners.contains(key) {
            return false;
        }
        let l = self.listeners.remove(key);
        if let Some(k) = l.resting {
            self.core.timers.cancel(k);
        }
        true
    }

    /// Start a non-blocking outbound connection; see [`Ctx::connect`].
    ///
    /// # Errors
    ///
    /// As [`Ctx::connect`].
    pub fn connect<H: Handler + 'static>(
        &mut self,
        to: impl Into<Connect>,
        handler: H,
    ) -> io::Result<ConnId> {
        self.core.update_clock();
        self.core.connect(to.into(), Box::new(handler))
    }

    /// An open connection, to act on it from outside any callback (from a
    /// task posted with [`Handle::post`], say). Requests take effect at the
    /// next loop iteration.
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.core.conn(id)
    }

    /// The reactor as callbacks see it.
    pub fn ctx(&mut self) -> Ctx<'_> {
        self.core.update_clock();
        Ctx::new(&mut self.core)
    }

    /// Counters and gauges.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Make [`run`](Reactor::run) return after the current iteration.
    /// Connections and listeners stay as they are; `run` or
    /// [`run_once`](Reactor::run_once) may be called again.
    pub fn stop(&mut self) {
        self.core.control = Control::Stopping;
    }

    /// Drain gracefully: close every listener now (new connections are
    /// refused), tell each open connection ([`Handler::handle_drain`]), let
    /// them finish, and abort
    /// whatever is still open after `timeout` (reason [`Reason::Stopped`]).
    /// [`run`](Reactor::run) returns once no connection is left.
    pub fn drain(&mut self, timeout: Duration) {
        self.core.update_clock();
        let ids: Vec<ListenerId> = self
            .listeners
            .iter()
            .map(|(k, _)| ListenerId(k as u32))
            .collect();
        for id in ids {
            self.close_listener(id);
        }
        if self.core.control != Control::Draining {
            self.core.control = Control::Draining;
            let at = self.core.deadline_after(timeout);
            self.core.timers.insert(at, TimerTarget::Drain);
            log::info!(
                "draining: listeners closed, {} connection(s) to finish within {timeout:?}",
                self.core.open()
            );
            self.core.announce_drain();
            self.apply_dirty();
        }
    }

    /// Whether a drain is under way.
    pub fn is_draining(&self) -> bool {
        self.core.control == Control::Draining
    }

    /// Whether nothing is left to do: no listener, no connection, no task,
    /// and no [`Handle`] alive to post one.
    pub fn is_idle(&self) -> bool {
        self.listeners.is_empty()
            && self.core.open() == 0
            && Arc::strong_count(&self.remote) == 1
            && self.remote.tasks.lock().map_or(true, |t| t.is_empty())
    }

    /// Run until [`stop`](Reactor::stop), the end of a
    /// [`drain`](Reactor::drain), or until nothing is left to do (see
    /// [`is_idle`](Reactor::is_idle)).
    ///
    /// # Errors
    ///
    /// `epoll_wait` failed.
    pub fn run(&mut self) -> io::Result<()> {
        loop {
            match self.core.control {
                Control::Stopping => {
                    self.core.control = Control::Running;
                    return Ok(());
                }
                Control::Draining if self.core.open() == 0 => return Ok(()),
                _ if self.is_idle() => return Ok(()),
                _ => {}
            }
            self.run_once(None)?;
        }
    }

    /// One iteration: wait for events up to `timeout` (`None`: until the
    /// next timer, or forever), dispatch them, fire due timers, run posted
    /// tasks. Returns the number of events and timers handled. For
    /// embedding in another loop that watches [`as_raw_fd`](AsRawFd::as_raw_fd),
    /// call it with `Some(Duration::ZERO)` when that fd is readable.
    ///
    /// # Errors
    ///
    /// `epoll_wait` failed.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.core.update_clock();
        self.apply_dirty();
        let mut timeout = timeout;
        if let Some(at) = self.core.timers.next_deadline() {
            let until = self.core.until(at);
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        if !self.requeue.is_empty() || !self.accept_again.is_empty() {
            timeout = Some(Duration::ZERO);
        }
        let mut events = std::mem::replace(&mut self.events, Events::with_capacity(0));
        let polled = self.poll.poll(&mut events, timeout);
        self.core.update_clock();
        let mut handled = 0;
        match polled {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                self.events = events;
                return Err(e);
            }
        }
        let mut to_accept = std::mem::take(&mut self.accept_again);
        for event in events.iter() {
            handled += 1;
            match token::decode(event.token()) {
                Target::Conn(id) => self.dispatch(id, event),
                Target::Listener(id) => {
                    if !to_accept.contains(&id) {
                        to_accept.push(id);
                    }
                }
                Target::Waker => {}
            }
        }
        self.events = events;
        for id in to_accept {
            self.accept(id);
        }

        for id in std::mem::take(&mut self.requeue) {
            self.core.advance(id, &mut self.buf, &mut self.requeue);
            self.apply_dirty();
        }
        handled += self.fire_timers();
        self.run_tasks();
        self.apply_dirty();
        if let Some(timeout) = self.core.drain_request.take() {
            self.drain(timeout);
        }
        Ok(handled)
    }

    fn dispatch(&mut self, id: ConnId, event: &Event) {
        let Some(key) = self.core.live(id) else {
            return;
        };
        self.core.state_mut(key).readiness(
            event.is_readable(),
            event.is_read_closed(),
            event.is_writable() || event.is_write_closed(),
            event.is_error(),
        );
        self.core.advance(id, &mut self.buf, &mut self.requeue);
        self.apply_dirty();
    }

    fn accept(&mut self, id: ListenerId) {
        let Some(l) = self.listeners.get_mut(id.0 as usize) else {
            return;
        };
        if l.resting.is_some() {
            return;
        }
        let mut accepted = std::mem::take(&mut self.accepted);
        let round = l.accept(&mut self.core, &mut self.reserve, &mut accepted);
        match round {
            Round::Drained => {}
            Round::More => self.accept_again.push(id),
            Round::Rest => {
                let at = self.core.deadline_after(self.core.config.accept_backoff);
                l.resting = Some(self.core.timers.insert(at, TimerTarget::Listener(id)));
            }
        }
        for conn in accepted.drain(..) {
            if let Some(key) = self.core.live(conn) {
                self.core.call(key, |h, c| h.handle_connect(c));
            }
            self.core.advance(conn, &mut self.buf, &mut self.requeue);
            self.apply_dirty();
        }
        self.accepted = accepted;
    }

    fn fire_timers(&mut self) -> usize {
        let mut fired = 0;
        // Timers armed while these fire (a listener resting for zero time,
        // a handler re-arming for zero) wait for the next iteration.
        let mark = Some(self.core.timers.mark());
        while let Some((key, target)) = self.core.timers.pop_expired_before(self.core.now, mark) {
            fired += 1;
            match target {
                TimerTarget::Conn(id, which) => {
                    self.core.on_conn_timer(id, which, TimerId(key.to_bits()));
                    self.apply_dirty();
                }
                TimerTarget::Listener(id) => {
                    if let Some(l) = self.listeners.get_mut(id.0 as usize) {
                        l.resting = None;
                        self.accept(id);
                    }
                }
                TimerTarget::Drain => self.abort_all(Reason::Stopped),
            }
        }
        fired
    }

    fn run_tasks(&mut self) {
        let tasks =
            std::mem::take(&mut *self.remote.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        for task in tasks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(self))) {
                log::error!("posted task panicked: {}", panic_message(&*payload));
                self.core.stats.panics += 1;
            }
            self.apply_dirty();
        }
    }

    /// Apply the requests recorded by callbacks, until none is left.
    fn apply_dirty(&mut self) {
        while let Some(id) = self.core.dirty.pop() {
            self.core.advance(id, &mut self.buf, &mut self.requeue);
        }
    }

    fn abort_all(&mut self, reason: Reason) {
        self.core.abort_all(reason);
        self.apply_dirty();
    }
}

impl Drop for Reactor {
    /// Every connection still open is aborted (RST, queued output dropped
    /// and counted) and its handler gets `handle_close` with
    /// [`Reason::Stopped`]. Use [`Reactor::drain`] first for a graceful end.
    fn drop(&mut self) {
        self.listeners.clear();
        self.abort_all(Reason::Stopped);
    }
}

impl AsRawFd for Reactor {
    /// The epoll descriptor: readable when [`Reactor::run_once`] has work.
    fn as_raw_fd(&self) -> RawFd {
        self.poll.as_raw_fd()
    }
}

impl AsFd for Reactor {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.poll.registry().as_fd()
    }
}
