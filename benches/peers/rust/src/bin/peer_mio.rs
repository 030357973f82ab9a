//! The floor: the half-close echo server as a raw `mio` loop written for
//! speed, with no framework around it.
//!
//! cargo run --release --manifest-path benches/peers/rust/Cargo.toml --bin peer_mio -- --listen 127.0.0.1:0
//! cargo run --release --manifest-path benches/peers/rust/Cargo.toml --bin peer_mio -- --listen /tmp/peer_mio.sock
//!
//! One thread, one `Poll` (epoll, edge-triggered), a `Slab` of connections
//! keyed by token. Each connection is read until `WouldBlock` or EOF; on
//! EOF the request is echoed back (after `--hold-ms`) and the socket is
//! closed. The fast path of a small request is five system calls per
//! connection: `accept4`, `epoll_ctl(ADD)`, `read`, `write`, `close`:
//!
//! - a short read drains the receive queue (epoll(7): "if read(2) returns
//!   a lower number of bytes, you can be sure of having exhausted the read
//!   I/O space"), so a short read in an event that reported the peer's FIN
//!   (`EPOLLRDHUP`, mio's `is_read_closed`) is the whole request and its EOF,
//!   with no second `read` returning 0;
//! - the reply of a small request goes out from the stack buffer, with no
//!   allocation;
//! - `close` instead of `shutdown` + `close`: every byte of the request was
//!   read, so closing sends the reply and then a FIN, never a reset.
//!
//! Holds all have the same length, so the hold queue is a FIFO of
//! deadlines. A held connection that the client resets is released as
//! soon as the reset arrives. SIGTERM ends the process (default action).
//!
//! `--listen` also takes a Unix socket path or `@name`: the same loop then
//! runs over a `mio::net::UnixListener`, with the same calls per
//! connection (`read`/`write` rather than `recvfrom`/`sendto`; a Unix
//! socket's EOF also shows as `EPOLLRDHUP`). The loop is generic over the
//! listener, so the TCP build of it is the code it always was. A socket
//! file is not removed at exit; a path that exists is refused (`EADDRINUSE`).

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::time::Instant;

use halfclose_peers::{Args, Listen, BACKLOG};
use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token};
use slab::Slab;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const LISTENER: Token = Token(usize::MAX);
const SCRATCH: usize = 64 * 1024;

enum State {
    /// Reading the request; the bytes so far when it spans several reads.
    Reading(Vec<u8>),
    /// The client's FIN came; the reply waits in the hold queue.
    Held(Vec<u8>),
    /// The reply did not fit in the socket buffer: the rest, from `.1`.
    Writing(Vec<u8>, usize),
    /// Echo mode: bytes read and not yet written back, and whether the
    /// client's FIN came.
    Echo { out: Vec<u8>, eof: bool },
}

struct Conn<S> {
    stream: S,
    gen: u64,
    state: State,
}

/// A listening socket of either transport, and its connections' type.
trait Listener: Source {
    type Stream: Read + Write + Source;

    fn accept_one(&self) -> io::Result<Self::Stream>;
}

impl Listener for TcpListener {
    type Stream = TcpStream;

    fn accept_one(&self) -> io::Result<TcpStream> {
        self.accept().map(|(stream, _)| stream)
    }
}

impl Listener for UnixListener {
    type Stream = UnixStream;

    fn accept_one(&self) -> io::Result<UnixStream> {
        self.accept().map(|(stream, _)| stream)
    }
}

/// What the loop does with a connection after an event.
enum Next {
    Keep,
    /// Keep, and wait for writability too.
    WantWrite,
    Hold,
    Close,
}

fn tcp_listener(addr: std::net::SocketAddr, reuseport: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuseport {
        socket.set_reuse_port(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

/// A Unix stream listener at a path, or at a name in the abstract
/// namespace (socket2 takes one as a path that begins with NUL).
fn unix_listener(at: &Listen) -> io::Result<UnixListener> {
    let addr = match at {
        Listen::Path(path) => SockAddr::unix(path)?,
        Listen::Abstract(name) => SockAddr::unix(format!("\0{name}"))?,
        Listen::Tcp(_) => unreachable!("a TCP address"),
    };
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr)?;
    socket.listen(BACKLOG)?;
    Ok(UnixListener::from_std(socket.into()))
}

/// Writes `data` from `off`; `Ok(true)` when all of it went out.
fn write_from<S: Write>(stream: &mut S, data: &[u8], off: &mut usize) -> io::Result<bool> {
    while *off < data.len() {
        match stream.write(&data[*off..]) {
            Ok(n) => *off += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(true)
}

/// Starts the reply of a request; the rest, if the socket buffer is full,
/// goes to `Writing`.
fn reply<S: Write>(stream: &mut S, state: &mut State, data: &[u8]) -> Next {
    let mut off = 0;
    match write_from(stream, data, &mut off) {
        Ok(true) => Next::Close,
        Ok(false) => {
            *state = State::Writing(data[off..].to_vec(), 0);
            Next::WantWrite
        }
        Err(_) => Next::Close,
    }
}

/// The request is complete: hold it, or reply now.
fn finish<S: Write>(stream: &mut S, state: &mut State, req: Vec<u8>, hold: bool) -> Next {
    if hold {
        *state = State::Held(req);
        Next::Hold
    } else {
        reply(stream, state, &req)
    }
}

fn on_event<S: Read + Write>(
    conn: &mut Conn<S>,
    read_closed: bool,
    hold: bool,
    scratch: &mut [u8],
) -> Next {
    let stream = &mut conn.stream;
    let state = &mut conn.state;
    match state {
        State::Reading(buf) => loop {
            match stream.read(scratch) {
                Ok(0) => {
                    let req = std::mem::take(buf);
                    return finish(stream, state, req, hold);
                }
                Ok(n) if n < scratch.len() && read_closed => {
                    // A short read after the FIN: the rest of the request and its EOF.
                    if !buf.is_empty() {
                        buf.extend_from_slice(&scratch[..n]);
                        let req = std::mem::take(buf);
                        return finish(stream, state, req, hold);
                    }
                    if hold {
                        *state = State::Held(scratch[..n].to_vec());
                        return Next::Hold;
                    }
                    return reply(stream, state, &scratch[..n]);
                }
                Ok(n) => {
                    buf.extend_from_slice(&scratch[..n]);
                    if n < scratch.len() {
                        return Next::Keep; // drained; the next edge brings more
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        },
        State::Held(_) => match stream.read(scratch) {
            // Nothing follows a FIN but a reset: release it at once.
            Ok(0) => Next::Keep,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) =>
            {
                Next::Keep
            }
            Ok(_) | Err(_) => Next::Close,
        },
        State::Writing(data, off) => match write_from(stream, data, off) {
            Ok(true) | Err(_) => Next::Close,
            Ok(false) => Next::Keep,
        },
        State::Echo { out, eof } => loop {
            if !out.is_empty() {
                let mut off = 0;
                match write_from(stream, out, &mut off) {
                    Ok(true) => out.clear(),
                    Ok(false) => {
                        out.drain(..off);
                        return Next::WantWrite; // stop reading until it drains
                    }
                    Err(_) => return Next::Close,
                }
            }
            if *eof {
                return Next::Close;
            }
            match stream.read(scratch) {
                Ok(0) => *eof = true,
                Ok(n) => {
                    let mut off = 0;
                    match write_from(stream, &scratch[..n], &mut off) {
                        Ok(true) => {}
                        Ok(false) => out.extend_from_slice(&scratch[off..n]),
                        Err(_) => return Next::Close,
                    }
                    if out.is_empty() && n < scratch.len() {
                        if read_closed {
                            *eof = true;
                        } else {
                            return Next::Keep; // drained
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Keep,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return Next::Close,
            }
        },
    }
}

fn main() -> io::Result<()> {
    let args = Args::from_env("peer_mio");
    args.no_tls("peer_mio");
    match args.listen {
        Listen::Tcp(addr) => {
            let listener = tcp_listener(addr, args.reuseport)?;
            println!("listening on {}", listener.local_addr()?);
            serve(listener, &args)
        }
        ref unix => {
            let listener = unix_listener(unix)?;
            println!("listening on {unix}");
            serve(listener, &args)
        }
    }
}

/// The loop: accept, read to EOF, hold, reply, close; until killed.
fn serve<L: Listener>(mut listener: L, args: &Args) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;

    let mut events = Events::with_capacity(1024);
    let mut conns: Slab<Conn<L::Stream>> = Slab::with_capacity(1024);
    let mut held: VecDeque<(Instant, usize, u64)> = VecDeque::new();
    let mut scratch = vec![0u8; SCRATCH];
    let mut next_gen: u64 = 0;
    let hold = !args.hold.is_zero();

    loop {
        let timeout = held
            .front()
            .map(|(due, _, _)| due.saturating_duration_since(Instant::now()));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        for ev in events.iter() {
            if ev.token() == LISTENER {
                loop {
                    match listener.accept_one() {
                        Ok(mut stream) => {
                            let entry = conns.vacant_entry();
                            if poll
                                .registry()
                                .register(&mut stream, Token(entry.key()), Interest::READABLE)
                                .is_err()
                            {
                                continue;
                            }
                            next_gen += 1;
                            let state = if args.echo {
                                State::Echo {
                                    out: Vec::new(),
                                    eof: false,
                                }
                            } else {
                                State::Reading(Vec::new())
                            };
                            entry.insert(Conn {
                                stream,
                                gen: next_gen,
                                state,
                            });
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // EMFILE and the like: the next connection's edge retries.
                            eprintln!("peer_mio: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let key = ev.token().0;
            let Some(conn) = conns.get_mut(key) else {
                continue;
            };
            match on_event(conn, ev.is_read_closed(), hold, &mut scratch) {
                Next::Keep => {}
                Next::WantWrite => {
                    let token = Token(key);
                    let interest = Interest::READABLE | Interest::WRITABLE;
                    if poll
                        .registry()
                        .reregister(&mut conn.stream, token, interest)
                        .is_err()
                    {
                        conns.remove(key);
                    }
                }
                Next::Hold => held.push_back((Instant::now() + args.hold, key, conn.gen)),
                Next::Close => drop(conns.remove(key)),
            }
        }
        if !held.is_empty() {
            let now = Instant::now();
            while let Some(&(due, key, gen)) = held.front() {
                if due > now {
                    break;
                }
                held.pop_front();
                let Some(conn) = conns.get_mut(key).filter(|c| c.gen == gen) else {
                    continue;
                };
                let State::Held(data) =
                    std::mem::replace(&mut conn.state, State::Reading(Vec::new()))
                else {
                    continue;
                };
                match reply(&mut conn.stream, &mut conn.state, &data) {
                    Next::WantWrite => {
                        let interest = Interest::READABLE | Interest::WRITABLE;
                        if poll
                            .registry()
                            .reregister(&mut conn.stream, Token(key), interest)
                            .is_err()
                        {
                            conns.remove(key);
                        }
                    }
                    _ => drop(conns.remove(key)),
                }
            }
        }
    }
}
