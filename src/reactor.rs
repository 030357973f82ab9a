//! The reactor: the poll loop, event dispatch, timers firing, the
//! cross-thread handle, stop, the graceful drain, and embedding in another
//! loop.

use std::fmt;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use mio::event::Event;
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Waker};
use slab::Slab;

use crate::alarm::Alarm;
use crate::closed::Reason;
use crate::config::Config;
use crate::conn::{Conn, Ctx, Outside};
use crate::core::{panic_message, Control, Core, TimerTarget};
use crate::handler::Handler;
use crate::handlers::Handlers;
use crate::listener::{self, Listener, Reserve, Round};
use crate::stats::Stats;
use crate::token::{self, ConnId, ListenerId, Target, TimerId};
use crate::transport::{Addr, Bind, Connect, Listening};

type Task = Box<dyn FnOnce(&mut Reactor) + Send>;

/// What other threads share with the reactor.
struct Remote {
    waker: Waker,
    /// Posted tasks; `None` once the reactor is gone.
    tasks: Mutex<Option<Vec<Task>>>,
}

impl Remote {
    fn tasks(&self) -> MutexGuard<'_, Option<Vec<Task>>> {
        // A task that panicked while the lock was held cannot have left the
        // list half-changed: push and take are single operations.
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn gone() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "the reactor is gone")
}

/// Ids of the reactors of this process, for [`ConnId::reactor`].
static NEXT_REACTOR: AtomicU32 = AtomicU32::new(0);

/// A single-threaded event loop that drives TCP connections through their
/// [`Handler`]s.
///
/// A `Reactor` is not `Send`: build it on the thread that runs it. To use
/// several cores, run one reactor per thread on a shared port
/// ([`Group`](crate::Group)).
///
/// # Examples
///
/// ```no_run
/// use halfclose::{Conn, Handler, Reactor};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
///         conn.write(data);
///     }
/// }
///
/// let mut reactor = Reactor::new()?;
/// reactor.listen("127.0.0.1:7000", || Echo)?;
/// reactor.run()?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Embedding
///
/// The reactor's epoll descriptor ([`AsRawFd`], [`AsFd`]) is readable
/// whenever [`run_once`](Reactor::run_once) has work: I/O, a due timer (a
/// `timerfd` in the epoll set, armed to the earliest deadline), or work the
/// reactor holds itself (a connection that spent its read budget, accept
/// batches left, tasks posted through a [`Handle`]). A host loop therefore
/// needs one rule: when the descriptor is readable, call
/// `run_once(Some(Duration::ZERO))`. The examples `embed_tokio` (an
/// `AsyncFd`) and `embed_calloop` (a `Generic` source) do exactly that.
/// Hosts that prepare, wait and dispatch (sd-event, libuv's prepare/poll
/// handles) can ask [`next_timeout`](Reactor::next_timeout) instead.
///
/// Requests made from host code through [`Reactor::conn`] or
/// [`Reactor::ctx`] are carried out when the returned `Conn` or `Ctx` is
/// dropped, not at the next event.
pub struct Reactor {
    poll: Poll,
    events: Events,
    core: Core,
    listeners: Slab<Listener>,
    reserve: Reserve,
    remote: Arc<Remote>,
    alarm: Alarm,
    /// Listeners with connections to accept this iteration: readiness
    /// events, and listeners that hit their batch limit last time. One batch
    /// each per iteration.
    accept_again: Vec<ListenerId>,
    /// The listeners one round accepts from (kept for its capacity).
    to_accept: Vec<ListenerId>,
    accepted: Vec<ConnId>,
    /// The last poll filled the event buffer: more events may be ready, and
    /// no new edge will announce them to a host loop.
    saturated: bool,
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
    /// `NotConnected` once the reactor was dropped (the task is dropped
    /// too, never run); waking the reactor failed.
    pub fn post(&self, task: impl FnOnce(&mut Reactor) + Send + 'static) -> io::Result<()> {
        self.remote
            .tasks()
            .as_mut()
            .ok_or_else(gone)?
            .push(Box::new(task));
        self.remote.waker.wake()
    }

    /// Wake the reactor without posting anything.
    ///
    /// # Errors
    ///
    /// `NotConnected` once the reactor was dropped; writing to its eventfd
    /// failed.
    pub fn wake(&self) -> io::Result<()> {
        if self.remote.tasks().is_none() {
            return Err(gone());
        }
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
    /// Creating the epoll instance, its eventfd or its timerfd failed.
    pub fn new() -> io::Result<Self> {
        Self::with_config(Config::default())
    }

    /// A reactor with `config`.
    ///
    /// # Errors
    ///
    /// `InvalidInput` with an [`Error::InvalidConfig`](crate::Error::InvalidConfig)
    /// inside when `config` does not pass [`Config::validate`]; creating the
    /// epoll instance, its eventfd or its timerfd failed.
    pub fn with_config(config: Config) -> io::Result<Self> {
        Self::build(config, Handlers::boxed())
    }

    /// A reactor with `config` that keeps every connection's handler
    /// inline, as an `H`, in a table beside the connections: no allocation
    /// and no pointer per connection for the handler (a boxed handler
    /// costs one allocation, its chunk's header and a 16-byte pointer).
    /// Listeners and connects of this reactor take handlers of type `H`
    /// only; for several protocols in one reactor, make `H` an enum of
    /// them, or use [`Reactor::new`], which boxes each handler.
    ///
    /// ```
    /// use halfclose::{Config, Conn, Handler, Reactor};
    ///
    /// struct Echo;
    ///
    /// impl Handler for Echo {
    ///     fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
    ///         conn.write(data);
    ///     }
    /// }
    ///
    /// struct Other;
    ///
    /// impl Handler for Other {
    ///     fn handle_read(&mut self, _: &mut Conn<'_>, _: &[u8]) {}
    /// }
    ///
    /// let mut reactor = Reactor::with_inline_handlers::<Echo>(Config::default())?;
    /// reactor.listen("127.0.0.1:0", || Echo)?;
    /// let refused = reactor.listen("127.0.0.1:0", || Other);
    /// assert_eq!(refused.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    /// # Ok::<(), std::io::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// As [`Reactor::with_config`].
    pub fn with_inline_handlers<H: Handler + 'static>(config: Config) -> io::Result<Self> {
        Self::build(config, Handlers::inline::<H>())
    }

    fn build(config: Config, handlers: Handlers) -> io::Result<Self> {
        config.validate().map_err(io::Error::from)?;
        let poll = Poll::new()?;
        let waker = Waker::new(poll.registry(), token::WAKER)?;
        let alarm = Alarm::new()?;
        poll.registry().register(
            &mut SourceFd(&alarm.as_raw_fd()),
            token::ALARM,
            Interest::READABLE,
        )?;
        let registry = poll.registry().try_clone()?;
        let id = NEXT_REACTOR.fetch_add(1, Ordering::Relaxed);
        Ok(Reactor {
            events: Events::with_capacity(config.events_capacity),
            core: Core::new(registry, config, id, handlers),
            poll,
            listeners: Slab::new(),
            reserve: Reserve::new(),
            remote: Arc::new(Remote {
                waker,
                tasks: Mutex::new(Some(Vec::new())),
            }),
            alarm,
            accept_again: Vec::new(),
            to_accept: Vec::new(),
            accepted: Vec::new(),
            saturated: false,
        })
    }

    /// This reactor's number in the process, as [`ConnId::reactor`] names
    /// it: 0 for the first one made, then 1, 2, ...
    pub fn id(&self) -> u32 {
        self.core.reactor_id()
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

    /// Listen on `at`: a TCP [`SocketAddr`](std::net::SocketAddr) (port 0 picks a free port) or
    /// a Unix socket ([`Bind::unix`], [`Bind::unix_abstract`]); `factory`
    /// makes one handler per accepted connection. The socket gets the
    /// configured backlog; a TCP one also `SO_REUSEADDR`, and
    /// `SO_REUSEPORT` if configured.
    ///
    /// # Errors
    ///
    /// Creating, binding or registering the socket failed; `AddrInUse`
    /// names a Unix socket path in use (see [`Bind::remove_stale`]);
    /// `InvalidInput`: the reactor keeps handlers of another type inline
    /// ([`Reactor::with_inline_handlers`]).
    pub fn listen<F, H>(&mut self, at: impl Into<Bind>, factory: F) -> io::Result<ListenerId>
    where
        F: FnMut() -> H + 'static,
        H: Handler + 'static,
    {
        self.core.admits::<H>()?;
        let mut socket = Listening::bind(&at.into(), &self.core.config)?;
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
            factory: listener::factory(factory),
            local_addr,
            resting: None,
        });
        Ok(id)
    }

    /// The address a listener is bound to (with the port the kernel
    /// picked); `None` once it is closed.
    pub fn local_addr(&self, listener: ListenerId) -> Option<Addr> {
        self.listeners
            .get(listener.0 as usize)
            .map(|l| l.local_addr.clone())
    }

    /// Close a listener at once: new connections to it are refused, and so
    /// are those whose handshake completed but that were not accepted yet
    /// (the kernel resets them). The ones it accepted go on. A
    /// [`drain`](Reactor::drain) accepts the waiting ones first.
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
        self.ctx().connect(to, handler)
    }

    /// An open connection, to act on it from outside any callback (host
    /// code, or a task posted with [`Handle::post`]). What is requested
    /// through it is carried out when it is dropped: a `close()` sends its
    /// FIN then, not at the next event.
    pub fn conn(&mut self, id: ConnId) -> Option<Outside<Conn<'_>>> {
        self.core.update_clock();
        self.core.conn(id).map(Outside::new)
    }

    /// The reactor as callbacks see it, for host code; what is requested
    /// through it is carried out when it is dropped.
    pub fn ctx(&mut self) -> Outside<Ctx<'_>> {
        self.core.update_clock();
        Outside::new(Ctx::new(&mut self.core))
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

    /// Drain gracefully: accept the connections already waiting in each
    /// listener's queue (their handshake completed: closing the listener
    /// would reset them), then close every listener, tell each open
    /// connection ([`Handler::handle_drain`]), let them finish, and abort
    /// whatever is still open after `timeout` (reason [`Reason::Stopped`]).
    /// [`run`](Reactor::run) returns once no connection is left.
    ///
    /// # Notes
    ///
    /// A client whose handshake completes between the last `accept` and
    /// the listener's `close` (microseconds) is reset by the kernel, and a
    /// SYN that arrives after it is refused; both are correct for a server
    /// that stops listening. With `SO_REUSEPORT`, Linux moves such requests
    /// to another listener of the group instead when
    /// `net.ipv4.tcp_migrate_req` is 1 (it is 0 by default); a
    /// [`Group`](crate::Group) drains all its reactors together, so there
    /// is no other listener to move them to.
    pub fn drain(&mut self, timeout: Duration) {
        self.core.update_clock();
        let ids: Vec<ListenerId> = self
            .listeners
            .iter()
            .map(|(k, _)| ListenerId(k as u32))
            .collect();
        let mut waiting = 0;
        for id in ids {
            waiting += self.accept_waiting(id);
            self.close_listener(id);
        }
        if self.core.control != Control::Draining {
            self.core.control = Control::Draining;
            let at = self.core.deadline_after(timeout);
            self.core.timers.insert(at, TimerTarget::Drain);
            log::info!(
                "draining: {waiting} waiting connection(s) accepted, listeners closed, \
                 {} connection(s) to finish within {timeout:?}",
                self.core.open()
            );
            self.core.announce_drain();
            self.core.apply_dirty();
        }
    }

    /// Accept everything in a listener's queue, bounded by the queue's
    /// size. Returns how many.
    fn accept_waiting(&mut self, id: ListenerId) -> usize {
        let batch = self.core.config.accept_batch;
        let rounds = (self.core.config.backlog.max(1) as usize).div_ceil(batch) + 1;
        let before = self.core.stats.accepted;
        if let Some(l) = self.listeners.get_mut(id.0 as usize) {
            l.resting = None;
        }
        for _ in 0..rounds {
            if self.accept(id) != Round::More {
                break;
            }
        }
        (self.core.stats.accepted - before) as usize
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
            && self.remote.tasks().as_ref().map_or(true, Vec::is_empty)
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
            self.turn(None, false)?;
        }
    }

    /// One iteration: wait for events up to `timeout` (`None`: until the
    /// next timer, or forever), dispatch them, fire due timers, run posted
    /// tasks. Returns the number of events and timers handled.
    ///
    /// To embed the reactor in another loop, call it with
    /// `Some(Duration::ZERO)` whenever the reactor's descriptor is readable
    /// (see [Embedding](Reactor#embedding)): if work is left at the end of
    /// the iteration, the descriptor is made readable again.
    ///
    /// # Errors
    ///
    /// `epoll_wait` failed.
    pub fn run_once(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.turn(timeout, true)
    }

    /// How long a host loop may wait before calling
    /// [`run_once`](Reactor::run_once) even if the descriptor stays quiet:
    /// `Some(Duration::ZERO)` when work is held now, the time to the
    /// earliest timer, or `None` when nothing is scheduled (wait for the
    /// descriptor).
    pub fn next_timeout(&mut self) -> Option<Duration> {
        if self.holds_work() {
            return Some(Duration::ZERO);
        }
        self.core.update_clock();
        let at = self.core.next_deadline()?;
        Some(self.core.until(at))
    }

    /// Work kept in user space that no event will announce.
    fn holds_work(&self) -> bool {
        self.saturated
            || !self.core.requeue.is_empty()
            || !self.accept_again.is_empty()
            || !self.core.dirty.is_empty()
            || self.remote.tasks().as_ref().is_some_and(|t| !t.is_empty())
            || self.core.drain_request.is_some()
    }

    /// One iteration; `embedded`: make the descriptor readable again if
    /// work is left for the next one.
    fn turn(&mut self, timeout: Option<Duration>, embedded: bool) -> io::Result<usize> {
        self.core.update_clock();
        self.core.apply_dirty();
        let mut timeout = timeout;
        if let Some(at) = self.core.next_deadline() {
            let until = self.core.until(at);
            timeout = Some(timeout.map_or(until, |t| t.min(until)));
        }
        if self.saturated || !self.core.requeue.is_empty() || !self.accept_again.is_empty() {
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
        // Listeners to accept from: those left from the last round, then
        // those with an event. A buffer kept across rounds, so that a round
        // allocates nothing.
        let mut to_accept = std::mem::take(&mut self.to_accept);
        to_accept.append(&mut self.accept_again);
        for event in events.iter() {
            handled += 1;
            match token::decode(event.token()) {
                Target::Conn(index, generation) => {
                    let id = self.core.id_at(index, generation);
                    self.dispatch(id, event);
                }
                Target::Listener(id) => {
                    if !to_accept.contains(&id) {
                        to_accept.push(id);
                    }
                }
                Target::Alarm => self.alarm.rang(),
                Target::Waker => {}
            }
        }
        self.saturated = handled == events.capacity();
        self.events = events;
        for &id in &to_accept {
            self.accept(id);
        }
        to_accept.clear();
        self.to_accept = to_accept;
        self.core.apply_requeued();
        handled += self.fire_timers();
        self.run_tasks();
        self.core.apply_dirty();
        if let Some(timeout) = self.core.drain_request.take() {
            self.drain(timeout);
        }
        self.settle(embedded)?;
        Ok(handled)
    }

    /// Arm the alarm for the earliest timer and, for a host loop, wake the
    /// descriptor if work is held.
    fn settle(&mut self, embedded: bool) -> io::Result<()> {
        if let Some(at) = self.core.next_deadline() {
            self.alarm.ensure(at, self.core.until(at))?;
        }
        if embedded && self.holds_work() {
            self.remote.waker.wake()?;
        }
        Ok(())
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
        self.core.advance(id);
        self.core.apply_dirty();
    }

    fn accept(&mut self, id: ListenerId) -> Round {
        let Some(l) = self.listeners.get_mut(id.0 as usize) else {
            return Round::Drained;
        };
        if l.resting.is_some() {
            return Round::Rest;
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
            self.core.greet(conn);
            self.core.advance(conn);
            self.core.apply_dirty();
        }
        self.accepted = accepted;
        round
    }

    /// Fire what is due, earliest deadline first across the three queues
    /// (ties: the heap's, then the handlers' lane timers, then the
    /// connections' timeouts).
    fn fire_timers(&mut self) -> usize {
        let mut fired = 0;
        let now = self.core.now;
        // Timers armed while these fire (a listener resting for zero time,
        // a handler re-arming for zero) wait for the next iteration; the
        // lanes take only deadlines after the `now` of their push.
        let mark = self.core.timers.mark();
        loop {
            let heap = self.core.timers.due_before(now, mark);
            let lane = self
                .core
                .lane_timers
                .next_deadline()
                .filter(|&at| at <= now);
            let timeout = self.core.timeouts.next_deadline().filter(|&at| at <= now);
            let Some(first) = [heap, lane, timeout].into_iter().flatten().min() else {
                break;
            };
            fired += 1;
            if heap == Some(first) {
                let Some((key, target)) = self.core.timers.pop_expired_before(now, Some(mark))
                else {
                    break;
                };
                match target {
                    TimerTarget::Conn(index, generation, which) => {
                        let id = self.core.id_at(index, generation);
                        self.core.on_conn_timer(id, which, TimerId(key.to_bits()));
                    }
                    TimerTarget::Listener(id) => {
                        if let Some(l) = self.listeners.get_mut(id.0 as usize) {
                            l.resting = None;
                            self.accept(id);
                        }
                    }
                    TimerTarget::Drain => self.abort_all(Reason::Stopped),
                }
            } else if lane == Some(first) {
                if let Some((_, (index, seq))) = self.core.lane_timers.pop_expired(now) {
                    self.core.on_lane_timer_entry(index, seq);
                }
            } else if let Some((at, (index, generation))) = self.core.timeouts.pop_expired(now) {
                let id = self.core.id_at(index, generation);
                self.core.on_timeouts_entry(id, at);
            }
            self.core.apply_dirty();
        }
        fired
    }

    fn run_tasks(&mut self) {
        let tasks = self
            .remote
            .tasks()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default();
        for task in tasks {
            if let Err(payload) = catch_unwind(AssertUnwindSafe(|| task(self))) {
                log::error!("posted task panicked: {}", panic_message(&*payload));
                self.core.stats.panics += 1;
            }
            self.core.apply_dirty();
        }
    }

    fn abort_all(&mut self, reason: Reason) {
        self.core.abort_all(reason);
        self.core.apply_dirty();
    }
}

impl Drop for Reactor {
    /// Every connection still open is aborted (RST, queued output dropped
    /// and counted) and its handler gets `handle_close` with
    /// [`Reason::Stopped`]. Use [`Reactor::drain`] first for a graceful end.
    /// Handles fail from now on; tasks posted and not run are dropped.
    fn drop(&mut self) {
        self.remote.tasks().take();
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
