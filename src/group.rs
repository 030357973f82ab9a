//! Several reactors, one per thread, sharing one listening port.

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::config::Config;
use crate::handler::Handler;
use crate::reactor::{Handle, Reactor};
use crate::stats::Stats;

/// N reactors on N threads, each listening on the same address with
/// `SO_REUSEPORT`: the kernel spreads new connections over them.
///
/// A [`Reactor`] is not `Send`, so each one is built inside its own thread,
/// and so is its handler factory: `make(index)` runs on thread `index` and
/// returns the factory that reactor uses. Every reactor gets `config` with
/// [`reuse_port`](Config::reuse_port) set. The first reactor binds `addr`;
/// with port 0 the others bind the port it got.
///
/// [`drain`](Group::drain) drains them all and returns their [`Stats`]
/// added up. A [`ConnId`](crate::ConnId) names the reactor that made it
/// ([`ConnId::reactor`](crate::ConnId::reactor)); used with another one it
/// finds nothing.
///
/// # Examples
///
/// ```no_run
/// use std::time::Duration;
/// use halfclose::{Config, Conn, Group, Handler};
///
/// struct Echo;
/// impl Handler for Echo {
///     fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
///         conn.write(data);
///     }
/// }
///
/// let group = Group::listen(2, Config::default(), "127.0.0.1:0".parse()?, |_| || Echo)?;
/// println!("listening on {}", group.local_addr());
/// // ... later, from any thread:
/// let stats = group.drain(Duration::from_secs(5))?;
/// println!("{} connections served", stats.accepted);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Notes
///
/// Linux hashes each new connection to one listener of the group; a busy
/// reactor does not hand connections to an idle one. When one listener of
/// a `SO_REUSEPORT` group closes alone, the connections in its accept queue
/// are reset unless `net.ipv4.tcp_migrate_req` is 1; a group drains every
/// member, and each member accepts its queue before closing
/// ([`Reactor::drain`]).
pub struct Group<T = Stats> {
    addr: SocketAddr,
    handles: Vec<Handle>,
    threads: Vec<JoinHandle<io::Result<T>>>,
}

impl<T> fmt::Debug for Group<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("addr", &self.addr)
            .field("reactors", &self.handles.len())
            .finish()
    }
}

impl Group {
    /// Start `reactors` reactors on as many threads, each listening on
    /// `addr` with the factory `make(index)` returns and running until it
    /// stops or drains; see [`Group`].
    ///
    /// # Errors
    ///
    /// `InvalidInput` for zero reactors or an invalid `config`; a reactor
    /// could not be made or could not listen (the ones already started are
    /// stopped).
    pub fn listen<M, F, H>(
        reactors: usize,
        config: Config,
        addr: SocketAddr,
        make: M,
    ) -> io::Result<Group>
    where
        M: Fn(usize) -> F + Send + Sync + 'static,
        F: FnMut() -> H + 'static,
        H: Handler + 'static,
    {
        Group::spawn(
            reactors,
            config,
            addr,
            move |index, reactor, addr| {
                let listener = reactor.listen(addr, make(index))?;
                let local = reactor.local_addr(listener).expect("listener is open");
                Ok(local.inet().expect("a TCP listener"))
            },
            |_, mut reactor| {
                reactor.run()?;
                Ok(reactor.stats())
            },
        )
    }

    /// Drain every reactor ([`Reactor::drain`] with `timeout`), wait for
    /// them to finish, and return their statistics added up.
    ///
    /// # Errors
    ///
    /// A reactor failed (`epoll_wait`), or its thread panicked.
    pub fn drain(self, timeout: Duration) -> io::Result<Stats> {
        Ok(self
            .drain_each(timeout)?
            .into_iter()
            .fold(Stats::default(), |a, b| a + b))
    }
}

impl<T: Send + 'static> Group<T> {
    /// The general form of [`listen`](Group::listen): on thread `index`, a
    /// reactor is made with `config` (and `SO_REUSEPORT`), `setup(index,
    /// &mut reactor, addr)` listens on `addr` (and whatever else it
    /// likes) and returns the address it got, then `run(index, reactor)`
    /// drives the reactor as it likes and returns what the thread reports.
    /// The first thread's address, with the port the kernel picked, is the
    /// `addr` of the others.
    ///
    /// `run` must return once its reactor has drained, as
    /// [`Reactor::run`] does; a loop of its own checks
    /// [`is_draining`](Reactor::is_draining) and
    /// [`stats().open`](Stats::open). [`drain_each`](Group::drain_each),
    /// and dropping the group, rely on it.
    ///
    /// # Errors
    ///
    /// As [`listen`](Group::listen).
    pub fn spawn<S, R>(
        reactors: usize,
        config: Config,
        addr: SocketAddr,
        setup: S,
        run: R,
    ) -> io::Result<Group<T>>
    where
        S: Fn(usize, &mut Reactor, SocketAddr) -> io::Result<SocketAddr> + Send + Sync + 'static,
        R: Fn(usize, Reactor) -> io::Result<T> + Send + Sync + 'static,
    {
        Group::spawn_with(reactors, config, addr, Reactor::with_config, setup, run)
    }

    /// As [`spawn`](Group::spawn), each reactor made by `build` (given
    /// `config` with `SO_REUSEPORT` set) rather than
    /// [`Reactor::with_config`]: for reactors that keep their handlers
    /// inline, `Reactor::with_inline_handlers::<H>`.
    ///
    /// # Errors
    ///
    /// As [`listen`](Group::listen).
    pub fn spawn_with<B, S, R>(
        reactors: usize,
        config: Config,
        addr: SocketAddr,
        build: B,
        setup: S,
        run: R,
    ) -> io::Result<Group<T>>
    where
        B: Fn(Config) -> io::Result<Reactor> + Send + Sync + 'static,
        S: Fn(usize, &mut Reactor, SocketAddr) -> io::Result<SocketAddr> + Send + Sync + 'static,
        R: Fn(usize, Reactor) -> io::Result<T> + Send + Sync + 'static,
    {
        if reactors == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a group needs at least one reactor",
            ));
        }
        let mut config = config;
        config.reuse_port = true;
        let shared = Arc::new((build, setup, run));
        let mut group = Group {
            addr,
            handles: Vec::new(),
            threads: Vec::new(),
        };
        for index in 0..reactors {
            let (tx, rx) = mpsc::channel();
            let config = config.clone();
            let shared = Arc::clone(&shared);
            let addr = group.addr;
            let thread = std::thread::Builder::new()
                .name(format!("halfclose-{index}"))
                .spawn(move || {
                    let (build, setup, run) = &*shared;
                    let started = build(config).and_then(|mut reactor| {
                        let local = setup(index, &mut reactor, addr)?;
                        Ok((reactor, local))
                    });
                    match started {
                        Ok((reactor, local)) => {
                            let _ = tx.send(Ok((reactor.handle(), local)));
                            run(index, reactor)
                        }
                        Err(e) => {
                            let kind = e.kind();
                            let _ = tx.send(Err(e));
                            Err(io::Error::new(kind, "reactor did not start"))
                        }
                    }
                })?;
            group.threads.push(thread);
            match rx.recv() {
                Ok(Ok((handle, local))) => {
                    group.addr = local;
                    group.handles.push(handle);
                }
                Ok(Err(e)) => return Err(e),
                Err(_) => {
                    return Err(io::Error::other("a reactor thread ended while starting"));
                }
            }
        }
        Ok(group)
    }

    /// The address every reactor listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The handle of reactor `index`, to post work to it.
    pub fn handle(&self, index: usize) -> Option<&Handle> {
        self.handles.get(index)
    }

    /// Number of reactors.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Whether the group has no reactor (never true for a started group).
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// Drain every reactor ([`Reactor::drain`] with `timeout`), wait for
    /// their threads, and return what each reported, in order.
    ///
    /// # Errors
    ///
    /// A thread's `run` failed, or it panicked.
    pub fn drain_each(mut self, timeout: Duration) -> io::Result<Vec<T>> {
        for h in &self.handles {
            // A reactor that already ended needs no drain.
            let _ = h.drain(timeout);
        }
        self.join_all()
    }

    /// Wait for every thread to end by itself.
    ///
    /// # Errors
    ///
    /// As [`drain_each`](Group::drain_each).
    pub fn join(mut self) -> io::Result<Vec<T>> {
        self.join_all()
    }

    fn join_all(&mut self) -> io::Result<Vec<T>> {
        let mut reports = Vec::new();
        let mut first_error = None;
        for thread in self.threads.drain(..) {
            match thread.join() {
                Ok(Ok(report)) => reports.push(report),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(_) => {
                    first_error.get_or_insert(io::Error::other("a reactor thread panicked"));
                }
            }
        }
        match first_error {
            Some(e) => Err(e),
            None => Ok(reports),
        }
    }
}

impl<T> Drop for Group<T> {
    /// Drains the reactors still running with no grace (what is open is
    /// aborted, reason [`Reason::Stopped`](crate::Reason::Stopped)) and
    /// waits for their threads.
    fn drop(&mut self) {
        for h in &self.handles {
            let _ = h.drain(Duration::ZERO);
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
