//! A reactor that keeps its handlers inline, all of one type
//! (`Reactor::with_inline_handlers`), behaves as one that boxes them: the
//! same callbacks in the same order, the same lossless close, the same
//! panic isolation; and it refuses a handler of another type with
//! `InvalidInput` before any socket exists. A handler made while the table
//! is lent to a callback (a connect from `handle_read` or `handle_close`)
//! takes its place when the callback returns, also when it reuses the slot
//! of the connection that is closing.

use crate::util::*;

use std::cell::RefCell;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;

use halfclose::{Closed, Config, Conn, ConnId, Ctx, Eof, Handler, Reactor};

fn inline<H: Handler + 'static>() -> Reactor {
    let mut config = Config::default();
    no_timeouts(&mut config);
    Reactor::with_inline_handlers::<H>(config).expect("reactor")
}

type Journal = Rc<RefCell<Vec<String>>>;

/// Echoes, replies at the client's FIN, and records its callbacks.
struct Recording {
    journal: Journal,
    got: Vec<u8>,
}

impl Handler for Recording {
    fn handle_connect(&mut self, _: &mut Conn<'_>) {
        self.journal.borrow_mut().push("connect".into());
    }

    fn handle_read(&mut self, _conn: &mut Conn<'_>, data: &[u8]) {
        if data == b"boom" {
            panic!("inline_handlers: injected panic");
        }
        self.got.extend_from_slice(data);
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        self.journal.borrow_mut().push("eof".into());
        conn.write(&std::mem::take(&mut self.got));
        Eof::Close
    }

    fn handle_close(&mut self, _: &mut Ctx<'_>, closed: &Closed) {
        self.journal
            .borrow_mut()
            .push(format!("close {:?} {}", closed.reason, closed.bytes_out));
    }
}

impl Recording {
    fn new(journal: &Journal) -> Self {
        Recording {
            journal: journal.clone(),
            got: Vec::new(),
        }
    }
}

/// Listen with a `Recording` per connection; its journal.
fn listen_recording(r: &mut Reactor) -> (SocketAddr, Journal) {
    let journal = Journal::default();
    let j = journal.clone();
    (listen(r, move || Recording::new(&j)), journal)
}

#[test]
fn inline_handlers_reply_after_the_fin_and_close_each_connection_once() {
    let mut r = inline::<Recording>();
    let (at, journal) = listen_recording(&mut r);
    let requests: Vec<Vec<u8>> = (0..3).map(|i| pattern(1000 + i, i as u64)).collect();
    let mut clients: Vec<Client> = requests.iter().map(|q| Client::request(at, q)).collect();
    run_until(&mut r, |_| clients.iter_mut().all(Client::done));
    for (client, request) in clients.iter().zip(&requests) {
        client.assert_whole_reply(request);
    }
    run_until(&mut r, |r| r.stats().open == 0);
    let mut seen = journal.borrow().clone();
    seen.sort();
    let mut want: Vec<String> = ["connect", "eof"]
        .repeat(3)
        .into_iter()
        .map(String::from)
        .collect();
    want.extend(
        requests
            .iter()
            .map(|q| format!("close PeerClosed {}", q.len())),
    );
    want.sort();
    assert_eq!(seen, want);
}

#[test]
fn inline_handlers_refuse_another_type_before_opening_a_socket() {
    let mut r = inline::<Echo>();
    let refused = r.listen("127.0.0.1:0", || Recording::new(&Journal::default()));
    let err = refused.expect_err("a listener of another handler type");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert!(err.to_string().contains("Recording"), "{err}");
    let at = listen(&mut r, || Echo);
    let err = r
        .connect(at, Recording::new(&Journal::default()))
        .expect_err("a connect with another handler type");
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    assert_eq!(r.stats().open, 0, "a refused connect made a connection");
    // The right type still works.
    let mut client = Client::connect(at);
    echo_round_trip(&mut r, &mut client, b"still serving");
}

#[test]
fn a_panic_in_an_inline_handler_ends_only_its_connection() {
    let mut r = inline::<Recording>();
    let (at, journal) = listen_recording(&mut r);
    let mut bomb = Client::request(at, b"boom");
    let mut calm = Client::request(at, b"calm");
    run_until(&mut r, |_| bomb.done() && calm.done());
    assert_eq!(bomb.end, End::Error(io::ErrorKind::ConnectionReset));
    calm.assert_whole_reply(b"calm");
    run_until(&mut r, |r| r.stats().open == 0);
    assert_eq!(r.stats().panics, 1);
    let closes: Vec<String> = journal
        .borrow()
        .iter()
        .filter(|e| e.starts_with("close"))
        .cloned()
        .collect();
    assert_eq!(closes.len(), 2, "{closes:?}");
    assert!(
        closes.contains(&"close Panicked 0".to_string()),
        "{closes:?}"
    );
    // The panicked handler's slot serves the next connection.
    let mut next = Client::request(at, b"next");
    run_until(&mut r, |_| next.done());
    next.assert_whole_reply(b"next");
}

/// Both ends of a relay in one type: the accepted side connects a second
/// connection from inside `handle_read`, and that one, at the end of its
/// exchange, reports back on the first.
enum Relay {
    /// Accepted from the test's client: asks the backend, then relays.
    Front { backend: SocketAddr },
    /// Made by `Front`: sends the question and carries the answer back.
    Ask { front: ConnId, answer: Vec<u8> },
    /// Accepted by the backend listener: answers in upper case at the FIN.
    Back { got: Vec<u8> },
}

impl Handler for Relay {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        if let Relay::Ask { .. } = self {
            conn.write(b"question");
            conn.shutdown_write();
        }
    }

    fn handle_read(&mut self, conn: &mut Conn<'_>, data: &[u8]) {
        match self {
            Relay::Front { backend } => {
                let front = conn.id();
                let ask = Relay::Ask {
                    front,
                    answer: Vec::new(),
                };
                conn.ctx()
                    .connect(*backend, ask)
                    .expect("connect from a callback");
            }
            Relay::Ask { answer, .. } => answer.extend_from_slice(data),
            Relay::Back { got } => got.extend_from_slice(data),
        }
    }

    fn handle_readable_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        match self {
            Relay::Back { got } => conn.write(&got.to_ascii_uppercase()),
            Relay::Ask { front, answer } => {
                if let Some(mut front) = conn.ctx().conn(*front) {
                    front.write(answer);
                    front.close();
                }
            }
            Relay::Front { .. } => {}
        }
        Eof::Close
    }
}

#[test]
fn a_connect_from_a_callback_joins_the_inline_table() {
    let mut r = inline::<Relay>();
    let backend = listen(&mut r, || Relay::Back { got: Vec::new() });
    let front = listen(&mut r, move || Relay::Front { backend });
    let mut client = Client::connect(front);
    client.send(b"go");
    run_until(&mut r, |_| client.done());
    client.assert_whole_reply(b"QUESTION");
    // The front lingers for the client's FIN.
    drop(client);
    run_until(&mut r, |r| r.stats().open == 0);
    assert_eq!(r.stats().closed, 3);
}

/// Connects again from `handle_close`, once: the new connection takes the
/// slot the closing one just left.
struct Again {
    at: SocketAddr,
    again: bool,
    journal: Journal,
}

impl Handler for Again {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        conn.write(b"hi");
        conn.shutdown_write();
    }

    fn handle_read(&mut self, _: &mut Conn<'_>, data: &[u8]) {
        self.journal
            .borrow_mut()
            .push(format!("read {}", String::from_utf8_lossy(data)));
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        self.journal
            .borrow_mut()
            .push(format!("close {:?}", closed.reason));
        if self.again {
            let next = Again {
                at: self.at,
                again: false,
                journal: self.journal.clone(),
            };
            let id = ctx
                .connect(self.at, next)
                .expect("connect from handle_close");
            self.journal
                .borrow_mut()
                .push(format!("same slot {}", slot(id) == slot(closed.id)));
        }
    }
}

/// The slot part of an id's name (`#3` of `#3.1`).
fn slot(id: ConnId) -> String {
    id.to_string().split('.').next().unwrap().to_owned()
}

fn reconnect_from_handle_close(mut r: Reactor) {
    let journal = Journal::default();
    // The peer: a std listener answering each connection at its FIN.
    let peer = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let at = peer.local_addr().unwrap();
    let first = Again {
        at,
        again: true,
        journal: journal.clone(),
    };
    r.connect(at, first).expect("connect");
    for _ in 0..2 {
        let (sock, _) = peer.accept().unwrap();
        let mut client = Client::over(Stream::Tcp(sock));
        client.send(b"ok");
        client.shutdown_write();
        run_until(&mut r, |_| client.done());
        client.assert_whole_reply(b"hi");
    }
    run_until(&mut r, |r| r.stats().open == 0 && r.stats().closed == 2);
    assert_eq!(
        *journal.borrow(),
        [
            "read ok",
            "close Local",
            "same slot true",
            "read ok",
            "close Local"
        ]
    );
}

#[test]
fn a_connect_from_handle_close_reusing_its_slot_keeps_its_inline_handler() {
    reconnect_from_handle_close(inline::<Again>());
}

#[test]
fn a_connect_from_handle_close_reusing_its_slot_keeps_its_boxed_handler() {
    reconnect_from_handle_close(reactor_with(no_timeouts));
}

#[test]
fn a_reactor_that_boxes_its_handlers_takes_any_type() {
    let mut r = reactor_with(no_timeouts);
    let echo = listen(&mut r, || Echo);
    let (recording, journal) = listen_recording(&mut r);
    let mut a = Client::connect(echo);
    echo_round_trip(&mut r, &mut a, b"echo");
    let mut b = Client::request(recording, b"recorded");
    run_until(&mut r, |_| b.done());
    b.assert_whole_reply(b"recorded");
    run_until(&mut r, |r| r.stats().open == 1);
    assert_eq!(*journal.borrow(), ["connect", "eof", "close PeerClosed 8"]);
}
