//! The state every callback may reach (`Core`), and its public face `Ctx`.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use mio::net::TcpStream;
use mio::{Interest, Registry};
use slab::Slab;
use socket2::{Domain, Protocol, Socket, Type};

use crate::config::{millis, millis_u32, Config};
use crate::conn::{Conn, ConnState, Writing};
use crate::error::Result;
use crate::handler::Handler;
use crate::stats::Stats;
use crate::timer::TimerQueue;
use crate::token::{self, ConnId, Generations, ListenerId};

/// One connection: its handler (absent while one of its callbacks runs)
/// and its state.
pub(crate) struct Slot {
    pub(crate) handler: Option<Box<dyn Handler>>,
    pub(crate) state: ConnState,
}

/// Which timer of a connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum ConnTimer {
    /// The connection's single entry for idle, peer-EOF, linger and connect.
    Timeouts,
    /// A timer set by the handler.
    User,
}

/// What a timer entry wakes.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum TimerTarget {
    Conn(ConnId, ConnTimer),
    /// A listener resting after an accept failure.
    Listener(ListenerId),
    /// The graceful drain's deadline.
    Drain,
}

/// What the owner of the loop asked for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Control {
    Running,
    /// `run` returns at the end of this iteration.
    Stopping,
    /// Listeners are closed; `run` returns once no connection is left.
    Draining,
}

/// The reactor's state minus the poller: connections, timers, the list of
/// connections with recorded requests, configuration and counters.
pub(crate) struct Core {
    pub(crate) conns: Slab<Slot>,
    pub(crate) gens: Generations,
    pub(crate) timers: TimerQueue<TimerTarget>,
    /// Connections whose recorded requests the reactor still has to apply.
    pub(crate) dirty: Vec<ConnId>,
    pub(crate) registry: Registry,
    pub(crate) config: Config,
    pub(crate) stats: Stats,
    epoch: Instant,
    /// Milliseconds since `epoch`, read once per loop iteration.
    pub(crate) now: u64,
    pub(crate) control: Control,
    /// A drain was requested from inside a callback.
    pub(crate) drain_request: Option<Duration>,
}

impl fmt::Debug for Core {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Core")
            .field("open", &self.conns.len())
            .field("timers", &self.timers.len())
            .field("control", &self.control)
            .finish()
    }
}

impl Core {
    pub(crate) fn new(registry: Registry, config: Config) -> Self {
        Core {
            conns: Slab::new(),
            gens: Generations::default(),
            timers: TimerQueue::new(),
            dirty: Vec::new(),
            registry,
            config,
            stats: Stats::default(),
            epoch: Instant::now(),
            now: 0,
            control: Control::Running,
            drain_request: None,
        }
    }

    pub(crate) fn update_clock(&mut self) {
        self.now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
    }

    /// Time from now to tick `at`.
    pub(crate) fn until(&self, at: u64) -> Duration {
        Duration::from_millis(at.saturating_sub(self.now))
    }

    /// The ids of every open connection, for acting on all of them while
    /// callbacks may close some.
    pub(crate) fn open_ids(&self) -> Vec<ConnId> {
        self.conns
            .iter()
            .map(|(k, _)| self.gens.current(k))
            .collect()
    }

    /// The slab key of `id`, if it is still open.
    pub(crate) fn live(&self, id: ConnId) -> Option<usize> {
        let key = id.index as usize;
        (self.gens.is_current(id) && self.conns.contains(key)).then_some(key)
    }

    pub(crate) fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        let key = self.live(id)?;
        Some(Conn { core: self, key })
    }

    /// Register `stream` and give it a slot.
    pub(crate) fn insert(
        &mut self,
        mut stream: TcpStream,
        handler: Box<dyn Handler>,
        writing: Writing,
    ) -> io::Result<ConnId> {
        let entry = self.conns.vacant_entry();
        let id = self.gens.id_for(entry.key());
        self.registry.register(
            &mut stream,
            token::encode_conn(id),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let idle_ms = self.config.idle_timeout.map_or(0, |d| millis_u32(d).max(1));
        let state = ConnState::new(stream, writing, self.now, idle_ms);
        self.stats.opened(state.gauge);
        entry.insert(Slot {
            handler: Some(handler),
            state,
        });
        Ok(id)
    }

    pub(crate) fn connect(
        &mut self,
        addr: SocketAddr,
        from: Option<SocketAddr>,
        handler: Box<dyn Handler>,
    ) -> Result<ConnId> {
        let socket = Socket::new(
            Domain::for_address(addr),
            Type::STREAM.nonblocking().cloexec(),
            Some(Protocol::TCP),
        )?;
        if let Some(local) = from {
            socket.bind(&local.into())?;
        }
        let early_error = match socket.connect(&addr.into()) {
            Ok(()) => None,
            Err(e) if e.raw_os_error() == Some(115) /* EINPROGRESS */ => None,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => None,
            Err(e) => Some(e),
        };
        let stream = TcpStream::from_std(socket.into());
        let id = self.insert(stream, handler, Writing::Connecting { fin: false })?;
        if let Some(e) = early_error {
            let key = id.index as usize;
            self.conns[key].state.fail(e);
        }
        // Arms the connect timeout and reports an early failure.
        self.dirty.push(id);
        Ok(id)
    }

    pub(crate) fn request_drain(&mut self, timeout: Duration) {
        self.drain_request = Some(timeout);
    }

    pub(crate) fn deadline_after(&self, d: Duration) -> u64 {
        self.now.saturating_add(millis(d))
    }
}

/// The reactor as seen from a callback: other connections, new outbound
/// connections, stop and drain.
pub struct Ctx<'a> {
    pub(crate) core: &'a mut Core,
}

impl fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ctx").field("core", &self.core).finish()
    }
}

impl Ctx<'_> {
    /// An open connection, by id; `None` once it closed (even if its slot
    /// now holds another connection).
    pub fn conn(&mut self, id: ConnId) -> Option<Conn<'_>> {
        self.core.conn(id)
    }

    /// Start a non-blocking outbound connection handled by `handler`.
    ///
    /// Exactly one outcome follows, after this callback returns:
    /// [`Handler::handle_connect`] when the connect completes, or
    /// [`Handler::handle_error`] (refused, unreachable, timed out), then
    /// [`Handler::handle_close`] in either case. Writes made before the
    /// connect completes are queued and sent after it, in order.
    ///
    /// # Errors
    ///
    /// Creating or registering the socket failed (`EMFILE`, for one); the
    /// handler is dropped and gets no callback.
    pub fn connect<H: Handler + 'static>(
        &mut self,
        addr: SocketAddr,
        handler: H,
    ) -> Result<ConnId> {
        self.core.connect(addr, None, Box::new(handler))
    }

    /// [`connect`](Ctx::connect) from the local address `from` (port 0 lets
    /// the kernel pick the port): spreading source addresses over
    /// 127.0.0.0/8 gets a load generator past the ephemeral-port limit of
    /// one source address.
    ///
    /// # Notes
    ///
    /// Binding to port 0 reserves the port at `bind` time, before the
    /// destination is known, so Linux cannot reuse it toward another
    /// destination (`IP_BIND_ADDRESS_NO_PORT` would lift that, but no
    /// dependency of this crate exposes it): under heavy churn a single
    /// source address runs out of ports sooner than a plain
    /// [`connect`](Ctx::connect), with `AddrInUse`. Use several sources.
    ///
    /// # Errors
    ///
    /// As [`connect`](Ctx::connect), and binding `from` failed
    /// (`AddrInUse`, `AddrNotAvailable`).
    pub fn connect_from<H: Handler + 'static>(
        &mut self,
        addr: SocketAddr,
        from: SocketAddr,
        handler: H,
    ) -> Result<ConnId> {
        self.core.connect(addr, Some(from), Box::new(handler))
    }

    /// Make [`Reactor::run`](crate::Reactor::run) return after this
    /// iteration. Connections stay open.
    pub fn stop(&mut self) {
        self.core.control = crate::ctx::Control::Stopping;
    }

    /// Start a graceful drain; see [`Reactor::drain`](crate::Reactor::drain).
    pub fn drain(&mut self, timeout: Duration) {
        self.core.request_drain(timeout);
    }

    /// The reactor's counters and gauges.
    pub fn stats(&self) -> Stats {
        self.core.stats
    }

    /// Whether `id` names an open connection.
    pub fn is_open(&self, id: ConnId) -> bool {
        self.core.live(id).is_some()
    }
}
