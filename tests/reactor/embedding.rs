//! Embedding: a host loop that watches only the reactor's descriptor and
//! calls `run_once(Some(Duration::ZERO))` when it is readable (the recipe
//! of the crate docs) never loses or delays work: due timers, connections
//! re-queued by the read budget, accept batches left, requests made from
//! host code, tasks posted from other threads. Also: handles fail once the
//! reactor is gone, an id of one reactor finds nothing in another, and a
//! drain serves the connections already waiting in the accept queue.
//!
//! TCP only: what is pinned is the reactor's own descriptor, its timers and
//! its queues of work, which no transport changes.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::util::*;
use halfclose::{Config, Conn, Eof, Handler, Reactor, Reason, Timeout, TimerId};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token};

/// A host loop with nothing in it but the reactor's descriptor.
struct Host {
    poll: Poll,
    events: Events,
    /// Times the descriptor was readable (and `run_once` called).
    wakeups: usize,
}

impl Host {
    fn new(reactor: &Reactor) -> Host {
        let poll = Poll::new().unwrap();
        poll.registry()
            .register(
                &mut SourceFd(&reactor.as_raw_fd()),
                Token(0),
                Interest::READABLE,
            )
            .unwrap();
        Host {
            poll,
            events: Events::with_capacity(8),
            wakeups: 0,
        }
    }

    /// Wait up to `wait` for the descriptor; run the reactor only if it is
    /// readable. The host never calls `run_once` on its own schedule.
    fn turn(&mut self, reactor: &mut Reactor, wait: Duration) {
        self.poll.poll(&mut self.events, Some(wait)).unwrap();
        if !self.events.is_empty() {
            self.wakeups += 1;
            reactor.run_once(Some(Duration::ZERO)).unwrap();
        }
    }

    /// Turn until `cond`, failing after `limit`.
    #[track_caller]
    fn until(
        &mut self,
        reactor: &mut Reactor,
        limit: Duration,
        mut cond: impl FnMut(&mut Reactor) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !cond(reactor) {
            assert!(
                Instant::now() < deadline,
                "no progress within {limit:?}: a lost wake-up ({} wakeups so far)",
                self.wakeups
            );
            self.turn(reactor, ms(20));
        }
    }
}

/// A client on its own thread: connect, send `request`, half-close, read
/// the reply to EOF. Returns the reply, or the error that ended it.
fn client(addr: SocketAddr, request: Vec<u8>) -> JoinHandle<std::io::Result<Vec<u8>>> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(DEADLINE))?;
        s.write_all(&request)?;
        s.shutdown(Shutdown::Write)?;
        let mut reply = Vec::new();
        s.read_to_end(&mut reply)?;
        Ok(reply)
    })
}

/// Reads to EOF, then replies with the request uppercased and closes.
struct Upper(Vec<u8>);

impl Handler for Upper {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.0.extend_from_slice(data);
    }
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        conn.write(&self.0.to_ascii_uppercase());
        Eof::Close
    }
}

#[test]
fn a_timer_fires_on_time_with_no_other_wakeup() {
    let mut r = reactor();
    let fired = Arc::new(AtomicUsize::new(0));
    let log = log();
    let f2 = fired.clone();
    let addr = listen(&mut r, move || {
        let f3 = f2.clone();
        Recorder::new(&log)
            .on_connect(|c| {
                c.set_timer(ms(200));
            })
            .on_timer(move |_, _| {
                f3.fetch_add(1, Ordering::SeqCst);
            })
    });
    let mut host = Host::new(&r);
    let _s = TcpStream::connect(addr).unwrap();
    let start = Instant::now();
    host.until(&mut r, ms(2_000), |_| fired.load(Ordering::SeqCst) == 1);
    let took = start.elapsed();
    assert!(
        (ms(150)..ms(600)).contains(&took),
        "a 200 ms timer fired after {took:?}"
    );
}

#[test]
fn an_idle_connection_is_closed_on_time() {
    let mut r = reactor_with(|c| c.idle_timeout = Some(ms(300)));
    let log = log();
    let l2 = log.clone();
    let addr = listen(&mut r, move || Recorder::new(&l2));
    let mut host = Host::new(&r);
    // A silent client that answers our FIN with its own: the lingering
    // close ends as soon as the idle timeout starts it.
    let start = Instant::now();
    let client = silent_client(addr, start);
    host.until(&mut r, ms(3_000), |_| closed(&log).is_some());
    let took = start.elapsed();
    assert_eq!(
        closed(&log).unwrap().reason,
        Reason::TimedOut(Timeout::Idle)
    );
    let (eof, fin_after) = client.join().unwrap();
    assert_eq!(eof, Ok(0), "the client reads EOF, not a reset");
    assert!(
        (ms(250)..ms(900)).contains(&fin_after),
        "our FIN after {fin_after:?}"
    );
    assert!(took < ms(1_500), "closed after {took:?}");
}

#[test]
fn a_read_budget_of_one_still_finishes_a_large_upload() {
    let mut r = reactor_with(|c| {
        c.read_budget = 1;
        c.read_buffer_size = 4 * KIB;
    });
    let listener = r.listen("127.0.0.1:0", || Upper(Vec::new())).unwrap();
    let addr = r.local_addr(listener).and_then(|a| a.inet()).unwrap();
    let mut host = Host::new(&r);
    let request = pattern(200_000, 1);
    let c = client(addr, request.clone());
    host.until(&mut r, DEADLINE, |_| c.is_finished());
    let reply = c.join().unwrap().expect("the reply");
    assert_eq!(reply, request.to_ascii_uppercase());
}

#[test]
fn clients_queued_behind_a_small_accept_batch_are_all_served() {
    let mut r = reactor_with(|c| c.accept_batch = 2);
    let listener = r.listen("127.0.0.1:0", || Upper(Vec::new())).unwrap();
    let addr = r.local_addr(listener).and_then(|a| a.inet()).unwrap();
    // Six handshakes complete in the kernel before the reactor runs once.
    let streams: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut host = Host::new(&r);
    let clients: Vec<_> = streams
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            std::thread::spawn(move || {
                s.set_read_timeout(Some(DEADLINE)).unwrap();
                s.write_all(format!("client {i}").as_bytes()).unwrap();
                s.shutdown(Shutdown::Write).unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).map(|_| reply)
            })
        })
        .collect();
    host.until(&mut r, DEADLINE, |_| {
        clients.iter().all(|c| c.is_finished())
    });
    for (i, c) in clients.into_iter().enumerate() {
        assert_eq!(c.join().unwrap().unwrap(), format!("CLIENT {i}"));
    }
    assert_eq!(r.stats().accepted, 6);
}

/// The same, with nothing else to wake the host: each connection is reset
/// as soon as it is accepted, so accepted connections raise no events; only
/// the reactor's own wake-up says that the batch left some behind.
#[test]
fn accept_batches_left_wake_the_host_by_themselves() {
    let mut r = reactor_with(|c| c.accept_batch = 2);
    let log = log();
    let l2 = log.clone();
    let addr = listen(&mut r, move || Recorder::new(&l2).on_connect(|c| c.abort()));
    let _streams: Vec<TcpStream> = (0..6).map(|_| TcpStream::connect(addr).unwrap()).collect();
    let mut host = Host::new(&r);
    host.until(&mut r, ms(3_000), |r| r.stats().accepted == 6);
    assert!(
        host.wakeups >= 3,
        "three batches of two: {} wakeups",
        host.wakeups
    );
}

#[test]
fn a_request_from_host_code_is_carried_out_at_once() {
    let mut r = reactor();
    let log = log();
    let slot = Arc::new(std::sync::Mutex::new(None));
    let s2 = slot.clone();
    let l2 = log.clone();
    let addr = listen(&mut r, move || {
        let s3 = s2.clone();
        Recorder::new(&l2).on_connect(move |c| *s3.lock().unwrap() = Some(c.id()))
    });
    let mut host = Host::new(&r);
    let mut s = TcpStream::connect(addr).unwrap();
    host.until(&mut r, DEADLINE, |_| slot.lock().unwrap().is_some());
    let id = slot.lock().unwrap().unwrap();
    {
        let mut conn = r.conn(id).unwrap();
        conn.write(b"from the host");
        conn.close();
    }
    // No turn of the loop: the bytes and the FIN are already out.
    s.set_read_timeout(Some(DEADLINE)).unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"from the host");
    // The lingering close finishes when the client's FIN arrives.
    s.shutdown(Shutdown::Write).unwrap();
    host.until(&mut r, DEADLINE, |_| closed(&log).is_some());
    assert_eq!(closed(&log).unwrap().reason, Reason::Local);
}

#[test]
fn posted_tasks_run_without_another_wakeup() {
    let mut r = reactor();
    let mut host = Host::new(&r);
    let ran = Arc::new(AtomicUsize::new(0));
    let handle = r.handle();
    let posters: Vec<_> = (0..4)
        .map(|_| {
            let h = handle.clone();
            let ran = ran.clone();
            std::thread::spawn(move || {
                for _ in 0..50 {
                    let ran = ran.clone();
                    h.post(move |_| {
                        ran.fetch_add(1, Ordering::SeqCst);
                    })
                    .unwrap();
                }
            })
        })
        .collect();
    for p in posters {
        p.join().unwrap();
    }
    host.until(&mut r, DEADLINE, |_| ran.load(Ordering::SeqCst) == 200);
}

#[test]
fn next_timeout_says_when_to_come_back() {
    let mut r = reactor_with(no_timeouts);
    assert_eq!(r.next_timeout(), None, "nothing scheduled");
    let log = log();
    let l2 = log.clone();
    let addr = listen(&mut r, move || {
        Recorder::new(&l2).on_connect(|c| {
            c.set_timer(ms(500));
        })
    });
    let _s = TcpStream::connect(addr).unwrap();
    run_until(&mut r, |_| count(&log, |e| *e == Ev::Connect) == 1);
    let t = r.next_timeout().expect("a timer is scheduled");
    assert!(t > ms(300) && t <= ms(500), "{t:?}");
    r.handle().post(|_| {}).unwrap();
    assert_eq!(r.next_timeout(), Some(Duration::ZERO), "a task is held");
}

#[test]
fn handles_fail_once_the_reactor_is_gone() {
    let r = reactor();
    let h = r.handle();
    h.post(|_| {}).expect("the reactor is alive");
    drop(r);
    for result in [h.post(|_| {}), h.wake(), h.stop(), h.drain(ms(10))] {
        let err = result.expect_err("the reactor is gone");
        assert_eq!(err.kind(), std::io::ErrorKind::NotConnected);
    }
}

#[test]
fn an_id_from_another_reactor_finds_nothing() {
    let mut a = reactor();
    let mut b = reactor();
    assert_ne!(a.id(), b.id());
    let (la, lb) = (log(), log());
    let (sa, sb) = (slot_cell(), slot_cell());
    let (la2, lb2, sa2, sb2) = (la.clone(), lb.clone(), sa.clone(), sb.clone());
    let addr_a = listen(&mut a, move || track(&la2, &sa2));
    let addr_b = listen(&mut b, move || track(&lb2, &sb2));
    let _ca = TcpStream::connect(addr_a).unwrap();
    let _cb = TcpStream::connect(addr_b).unwrap();
    run_until(&mut a, |_| sa.get().is_some());
    run_until(&mut b, |_| sb.get().is_some());
    let (ida, idb) = (sa.get().unwrap(), sb.get().unwrap());
    // Both are the first connection of their reactor: same slot, same
    // generation; only the reactor differs.
    assert_eq!(
        format!("{ida}").split('@').next(),
        format!("{idb}").split('@').next()
    );
    assert_eq!(ida.reactor(), a.id());
    assert!(b.conn(ida).is_none(), "a's id reached b's connection");
    assert!(a.conn(idb).is_none(), "b's id reached a's connection");
    assert!(!b.ctx().is_open(ida));
    assert!(a.conn(ida).is_some());
}

fn slot_cell() -> std::rc::Rc<std::cell::Cell<Option<halfclose::ConnId>>> {
    std::rc::Rc::new(std::cell::Cell::new(None))
}

fn track(log: &Log, slot: &std::rc::Rc<std::cell::Cell<Option<halfclose::ConnId>>>) -> Recorder {
    let slot = slot.clone();
    Recorder::new(log).on_connect(move |c| slot.set(Some(c.id())))
}

/// A drain accepts the connections already in the listener's queue and
/// serves them: their request and FIN are there, and each gets its whole
/// reply and a clean EOF. Closing the listener first would reset them.
#[test]
fn a_drain_serves_the_connections_waiting_in_the_backlog() {
    let mut r = reactor_with(no_timeouts);
    let listener = r.listen("127.0.0.1:0", || Upper(Vec::new())).unwrap();
    let addr = r.local_addr(listener).and_then(|a| a.inet()).unwrap();
    // Five clients complete the handshake, send their request and FIN,
    // all before the reactor has run once.
    let clients: Vec<_> = (0..5)
        .map(|i| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(format!("request {i}").as_bytes()).unwrap();
            s.shutdown(Shutdown::Write).unwrap();
            s
        })
        .collect();
    r.drain(ms(5_000));
    assert_eq!(r.local_addr(listener), None, "the listener is closed");
    r.run().unwrap();
    let stats = r.stats();
    assert_eq!((stats.accepted, stats.aborts, stats.open), (5, 0, 0));
    for (i, mut s) in clients.into_iter().enumerate() {
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut reply = String::new();
        s.read_to_string(&mut reply)
            .unwrap_or_else(|e| panic!("client {i}: {e} instead of a reply and EOF"));
        assert_eq!(reply, format!("REQUEST {i}"));
    }
}

/// The recipe under load: thousands of exchanges through a host loop that
/// only watches the descriptor, with random read budgets and accept
/// batches, a timer per connection (the reply waits for it), and tasks
/// posted from another thread. Every exchange completes, every timer fires
/// within its tolerance, every task runs. `EMBED_STRESS_EACH` sets the
/// exchanges per client thread (8 threads, 3 rounds; 120 by default) for a
/// longer run.
#[test]
fn the_recipe_under_load_loses_no_wakeup() {
    let each: usize = std::env::var("EMBED_STRESS_EACH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(120);
    let started = Instant::now();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..3 {
        let budget = 1 + rand(4) as usize;
        let batch = 1 + rand(8) as usize;
        let mut config = Config::default();
        config.read_budget = budget;
        config.accept_batch = batch;
        config.read_buffer_size = 1024;
        let mut r = Reactor::with_config(config).unwrap();
        let late = Arc::new(AtomicUsize::new(0));
        let l2 = late.clone();
        let listener = r
            .listen("127.0.0.1:0", move || Delayed {
                got: Vec::new(),
                asked: None,
                late: l2.clone(),
            })
            .unwrap();
        let addr = r.local_addr(listener).and_then(|a| a.inet()).unwrap();
        let mut host = Host::new(&r);
        let ran = Arc::new(AtomicUsize::new(0));
        let (h, ran2) = (r.handle(), ran.clone());
        let poster = std::thread::spawn(move || {
            for _ in 0..500 {
                let ran = ran2.clone();
                h.post(move |_| {
                    ran.fetch_add(1, Ordering::SeqCst);
                })
                .unwrap();
                std::thread::yield_now();
            }
        });
        const CLIENTS: usize = 8;
        let (tx, rx) = mpsc::channel();
        let clients: Vec<_> = (0..CLIENTS)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for k in 0..each {
                        let len = 1 + (t * 7919 + k * 104_729) % 6_000;
                        let request = pattern(len, (t * each + k) as u64);
                        let mut s = TcpStream::connect(addr).unwrap();
                        s.set_read_timeout(Some(DEADLINE)).unwrap();
                        s.write_all(&request).unwrap();
                        s.shutdown(Shutdown::Write).unwrap();
                        let mut reply = Vec::new();
                        s.read_to_end(&mut reply).unwrap();
                        tx.send(reply == request.to_ascii_uppercase()).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut ok = 0;
        host.until(&mut r, ms(60_000), |_| {
            ok += rx.try_iter().filter(|good| *good).count();
            clients.iter().all(|c| c.is_finished())
        });
        ok += rx.try_iter().filter(|good| *good).count();
        for c in clients {
            c.join().unwrap();
        }
        poster.join().unwrap();
        host.until(&mut r, DEADLINE, |_| ran.load(Ordering::SeqCst) == 500);
        assert_eq!(
            ok,
            CLIENTS * each,
            "round {round} (budget {budget}, batch {batch})"
        );
        assert_eq!(late.load(Ordering::SeqCst), 0, "timers fired late or early");
        println!(
            "round {round}: budget {budget}, batch {batch}: {} exchanges, {} host wakeups",
            CLIENTS * each,
            host.wakeups
        );
    }
    println!("3 rounds in {:?}", started.elapsed());
}

/// Reads to EOF, then sets a 5 ms timer and replies when it fires,
/// checking that it fired within its tolerance.
struct Delayed {
    got: Vec<u8>,
    asked: Option<Instant>,
    late: Arc<AtomicUsize>,
}

impl Handler for Delayed {
    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        self.got.extend_from_slice(data);
    }
    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        self.asked = Some(Instant::now());
        conn.set_timer(ms(5));
        Eof::HalfClose
    }
    fn handle_timer(&mut self, conn: &mut Conn<'_>, _: TimerId) {
        let waited = self.asked.unwrap().elapsed();
        // Millisecond ticks, a 2-core machine under load: generous, but a
        // lost wake-up waits for the next unrelated event, or forever.
        if !(ms(4)..ms(1_000)).contains(&waited) {
            eprintln!("a 5 ms timer fired after {waited:?}");
            self.late.fetch_add(1, Ordering::SeqCst);
        }
        conn.write(&self.got.to_ascii_uppercase());
        conn.close();
    }
}

/// What the host-loop tests below check, whatever the loop: a 200 ms timer
/// fires within 150-600 ms and a silent connection is closed by a 300 ms
/// idle timeout on time, with the loop woken by nothing but the reactor's
/// descriptor.
struct OnTime {
    log: Log,
    fired: std::rc::Rc<std::cell::Cell<Option<Instant>>>,
    start: Instant,
    client: JoinHandle<(Result<usize, std::io::ErrorKind>, Duration)>,
}

impl OnTime {
    fn start(r: &mut Reactor) -> OnTime {
        let log = log();
        let fired = std::rc::Rc::new(std::cell::Cell::new(None));
        let (l2, f2) = (log.clone(), fired.clone());
        let addr = listen(r, move || {
            let f3 = f2.clone();
            Recorder::new(&l2)
                .on_connect(|c| {
                    c.set_timer(ms(200));
                })
                .on_timer(move |_, _| f3.set(Some(Instant::now())))
        });
        let start = Instant::now();
        // A silent client that answers our FIN with its own.
        let client = silent_client(addr, start);
        OnTime {
            log,
            fired,
            start,
            client,
        }
    }

    fn done(&self) -> bool {
        closed(&self.log).is_some()
    }

    #[track_caller]
    fn check(self) {
        let timer = self.fired.get().expect("the timer fired") - self.start;
        assert!(
            (ms(150)..ms(600)).contains(&timer),
            "200 ms timer after {timer:?}"
        );
        let c = closed(&self.log).unwrap();
        assert_eq!(c.reason, Reason::TimedOut(Timeout::Idle));
        let (eof, fin_after) = self.client.join().unwrap();
        assert_eq!(eof, Ok(0), "the client reads EOF, not a reset");
        assert!(
            (ms(250)..ms(900)).contains(&fin_after),
            "FIN after {fin_after:?}"
        );
    }
}

/// The recipe with tokio: `AsyncFd` on the descriptor, `run_once(ZERO)`
/// when readable, then `clear_ready`.
#[test]
fn tokio_async_fd_recipe_keeps_timers_and_timeouts_on_time() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut r = reactor_with(|c| c.idle_timeout = Some(ms(300)));
        let t = OnTime::start(&mut r);
        // The AsyncFd owns a duplicate of the epoll descriptor, so the
        // descriptor stays open for as long as it is registered: the I/O
        // safety that `with_interest` is deprecated for cannot be broken
        // here, and its replacement, `register_with_interest`, is `unsafe`
        // to call, which this project's code never is.
        let owned = std::os::fd::AsFd::as_fd(&r).try_clone_to_owned().unwrap();
        #[allow(deprecated)]
        let fd =
            tokio::io::unix::AsyncFd::with_interest(owned, tokio::io::Interest::READABLE).unwrap();
        let deadline = tokio::time::Instant::now() + ms(3_000);
        while !t.done() {
            let mut guard = tokio::time::timeout_at(deadline, fd.readable())
                .await
                .expect("a lost wake-up: the descriptor never became readable")
                .unwrap();
            r.run_once(Some(Duration::ZERO)).unwrap();
            guard.clear_ready();
        }
        t.check();
    });
}

/// The recipe with calloop: a `Generic` source on (a duplicate of) the
/// descriptor, level-triggered, the reactor as the loop's shared data.
#[test]
fn calloop_generic_recipe_keeps_timers_and_timeouts_on_time() {
    use calloop::generic::Generic;
    use calloop::{EventLoop, Interest, Mode, PostAction};
    use std::os::fd::AsFd;

    let mut r = reactor_with(|c| c.idle_timeout = Some(ms(300)));
    let t = OnTime::start(&mut r);
    let mut event_loop: EventLoop<'_, Reactor> = EventLoop::try_new().unwrap();
    let fd = r.as_fd().try_clone_to_owned().unwrap();
    event_loop
        .handle()
        .insert_source(
            Generic::new(fd, Interest::READ, Mode::Level),
            |_, _, reactor: &mut Reactor| {
                reactor.run_once(Some(Duration::ZERO))?;
                Ok(PostAction::Continue)
            },
        )
        .unwrap();
    let deadline = Instant::now() + ms(3_000);
    while !t.done() {
        assert!(Instant::now() < deadline, "a lost wake-up");
        // The loop's own timeout only bounds the test: it calls no
        // run_once.
        event_loop.dispatch(Some(ms(50)), &mut r).unwrap();
    }
    t.check();
}

/// The two embedding examples serve their half-close protocol: each of a
/// few concurrent clients gets its request uppercased after the 200 ms
/// timer, then EOF; SIGTERM drains the example and it exits 0.
#[test]
fn the_embedding_examples_answer_after_their_timer_and_drain() {
    for example in ["embed_tokio", "embed_calloop"] {
        let server = Server::start(example, &["--listen", "127.0.0.1:0", "--delay-ms", "200"]);
        let start = Instant::now();
        let clients: Vec<_> = (0..4)
            .map(|i| client(server.addr, format!("request {i}").into_bytes()))
            .collect();
        for (i, c) in clients.into_iter().enumerate() {
            let reply = c
                .join()
                .unwrap()
                .unwrap_or_else(|e| panic!("{example}: {e}"));
            assert_eq!(reply, format!("REQUEST {i}").into_bytes(), "{example}");
        }
        let took = start.elapsed();
        assert!(
            (ms(190)..ms(2_000)).contains(&took),
            "{example}: answered after {took:?}"
        );
        assert_clean_exit(server);
    }
}

/// A group of two reactors on one port: the kernel spreads 64 clients over
/// both, each client gets its reply, and one drain ends both and adds up
/// their counters.
#[test]
fn a_group_shares_a_port_and_drains_as_one() {
    let group =
        halfclose::Group::listen(2, Config::default(), "127.0.0.1:0".parse().unwrap(), |_| {
            || Upper(Vec::new())
        })
        .unwrap();
    assert_eq!(group.len(), 2);
    let addr = group.local_addr();
    assert_ne!(addr.port(), 0);
    upper_clients(addr, 64, "client");
    // Each reactor served some: ask each, on its own thread, through its
    // handle.
    let (tx, rx) = mpsc::channel();
    for i in 0..2 {
        let tx = tx.clone();
        group
            .handle(i)
            .unwrap()
            .post(move |r| tx.send((r.id(), r.stats().accepted)).unwrap())
            .unwrap();
    }
    let per: Vec<(u32, u64)> = (0..2).map(|_| rx.recv_timeout(DEADLINE).unwrap()).collect();
    assert_ne!(per[0].0, per[1].0, "two reactors, two ids");
    assert!(
        per.iter().all(|&(_, n)| n > 0),
        "SO_REUSEPORT spread: {per:?}"
    );
    let stats = group.drain(ms(1_000)).unwrap();
    assert_eq!((stats.accepted, stats.closed, stats.open), (64, 64, 0));
    assert!(
        TcpStream::connect(addr).is_err(),
        "the port is closed once the group drained"
    );
}

/// A group built with `spawn_with` around reactors that keep their
/// handlers inline: each reactor refuses a listener of another handler
/// type, and the group serves and drains as one.
#[test]
fn a_group_of_inline_reactors_serves_and_drains_as_one() {
    let group = halfclose::Group::spawn_with(
        2,
        Config::default(),
        "127.0.0.1:0".parse().unwrap(),
        Reactor::with_inline_handlers::<Upper>,
        |_, reactor, addr| {
            let other = reactor.listen(addr, || Echo);
            assert_eq!(
                other.map_err(|e| e.kind()).err(),
                Some(std::io::ErrorKind::InvalidInput),
                "an inline reactor took another handler type"
            );
            let listener = reactor.listen(addr, || Upper(Vec::new()))?;
            Ok(reactor.local_addr(listener).and_then(|a| a.inet()).unwrap())
        },
        |_, mut reactor| {
            reactor.run()?;
            Ok(reactor.stats())
        },
    )
    .unwrap();
    let addr = group.local_addr();
    upper_clients(addr, 16, "inline");
    let stats = group.drain(ms(1_000)).unwrap();
    assert_eq!((stats.accepted, stats.closed, stats.open), (16, 16, 0));
}

/// `n` clients at once, each sending `"{word} {i}"` to an [`Upper`]
/// server at `addr`; each must get its request in upper case.
fn upper_clients(addr: SocketAddr, n: usize, word: &str) {
    let clients: Vec<_> = (0..n)
        .map(|i| client(addr, format!("{word} {i}").into_bytes()))
        .collect();
    for (i, c) in clients.into_iter().enumerate() {
        let want = format!("{word} {i}").to_ascii_uppercase();
        assert_eq!(c.join().unwrap().unwrap(), want.into_bytes());
    }
}

/// A client on its own thread that connects to `addr`, sends nothing and
/// reads until our end; how that read ended, and when, from `start`. Its
/// close, when the thread ends, answers our FIN with its own.
fn silent_client(
    addr: SocketAddr,
    start: Instant,
) -> std::thread::JoinHandle<(Result<usize, std::io::ErrorKind>, Duration)> {
    std::thread::spawn(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(DEADLINE)).unwrap();
        let eof = s.read(&mut [0; 16]);
        (eof.map_err(|e| e.kind()), start.elapsed())
    })
}
