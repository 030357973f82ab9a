//! A line-based chat room on the framing layer (`halfclose::framing`): every
//! line a member sends goes to all the others.
//!
//! cargo run --example chat -- --listen 127.0.0.1:0
//!
//! Prints `listening on IP:PORT` as its first line; connect with
//! `nc 127.0.0.1 PORT`. Lines end with `\n` (a `\r` before it is dropped,
//! so `\r\n` clients work too). The first line is your nick (or send
//! `/nick NAME`); then `/nick NAME` renames you, `/who` lists the room,
//! `/quit` leaves. A line longer than `--max-line` bytes (default 1024, a
//! `\r` included) gets `ERROR: line too long` and the connection is closed,
//! so a client that never ends its line cannot make the server buffer
//! without bound.
//!
//! Backpressure: a member whose output queue passes the reactor's
//! high-water mark (64 KiB by default) is not reading what the room sends
//! it. It is disconnected (IRC's "SendQ exceeded") rather than having
//! messages dropped silently: its queue is still flushed before our FIN,
//! and the idle timeout ends it if it never reads. So each member's queue
//! stays below the high-water mark plus one message.
//!
//! SIGINT or SIGTERM drains the server gracefully: each member gets a
//! goodbye line, then the connection closes; the process exits once all
//! are closed (5 s deadline). `RUST_LOG=debug` shows the reactor's log.

use std::cell::RefCell;
use std::rc::Rc;

use halfclose::framing::{FrameHandler, Framed, Terminator};
use halfclose::{Closed, Conn, ConnId, Ctx, Eof, Reactor};

use halfclose_tools::support;

/// chat: a line-based chat room on halfclose's framing layer
#[derive(clap::Parser)]
#[command(name = "chat")]
struct Args {
    /// Address to listen on
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:7001")]
    listen: String,
    /// The longest line, `\r` included
    #[arg(long = "max-line", value_name = "N", default_value = "1024")]
    max_line: std::num::NonZeroUsize,
}

/// The members who chose a nick, in order of arrival.
#[derive(Default)]
struct Room {
    members: Vec<(ConnId, String)>,
}

impl Room {
    fn nick_taken(&self, nick: &str) -> bool {
        self.members.iter().any(|(_, n)| n == nick)
    }

    /// Send `msg` to every member but `from`. A member that stopped
    /// reading (its queue is past the high-water mark) is disconnected.
    fn broadcast(&self, ctx: &mut Ctx<'_>, from: ConnId, msg: &str) {
        for (id, nick) in &self.members {
            if *id == from {
                continue;
            }
            let Some(mut conn) = ctx.conn(*id) else {
                continue;
            };
            if !conn.may_send() {
                continue; // already leaving
            }
            if conn.is_write_blocked() {
                log::info!("{nick} ({id}) is not reading: disconnecting");
                conn.close();
                continue;
            }
            conn.write(msg.as_bytes());
        }
    }
}

/// One member's session.
struct Session {
    room: Rc<RefCell<Room>>,
    nick: Option<String>,
}

fn valid_nick(nick: &str) -> bool {
    (1..=32).contains(&nick.len())
        && nick
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn say(conn: &mut Conn<'_>, msg: &str) {
    // Refused only once we are closing; nothing to do then.
    conn.write(msg.as_bytes());
}

impl Session {
    fn set_nick(&mut self, conn: &mut Conn<'_>, nick: &str) {
        if !valid_nick(nick) {
            return say(conn, "ERROR: a nick is 1-32 letters, digits, '-' or '_'\n");
        }
        let mut room = self.room.borrow_mut();
        if self.nick.as_deref() == Some(nick) {
            return;
        }
        if room.nick_taken(nick) {
            return say(conn, &format!("ERROR: nick {nick} is taken\n"));
        }
        let id = conn.id();
        let notice = match self.nick.replace(nick.to_string()) {
            None => {
                room.members.push((id, nick.to_string()));
                say(
                    conn,
                    &format!("* you are {nick}; {} here\n", room.members.len()),
                );
                format!("* {nick} joined\n")
            }
            Some(old) => {
                if let Some(m) = room.members.iter_mut().find(|(m, _)| *m == id) {
                    m.1 = nick.to_string();
                }
                say(conn, &format!("* you are now {nick}\n"));
                format!("* {old} is now {nick}\n")
            }
        };
        room.broadcast(&mut conn.ctx(), id, &notice);
    }

    /// Leave the room (once); tell the others why, unless `why` is `None`.
    fn leave(&mut self, ctx: &mut Ctx<'_>, id: ConnId, why: Option<&str>) {
        let Some(nick) = self.nick.take() else { return };
        let mut room = self.room.borrow_mut();
        room.members.retain(|(m, _)| *m != id);
        if let Some(why) = why {
            room.broadcast(ctx, id, &format!("* {nick} left ({why})\n"));
        }
    }

    fn line(&mut self, conn: &mut Conn<'_>, line: &[u8]) {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let text = String::from_utf8_lossy(line);
        if let Some(command) = text.strip_prefix('/') {
            let (name, arg) = command.split_once(' ').unwrap_or((command, ""));
            match name {
                "nick" => self.set_nick(conn, arg.trim()),
                "who" => {
                    let room = self.room.borrow();
                    let nicks: Vec<&str> = room.members.iter().map(|(_, n)| n.as_str()).collect();
                    say(conn, &format!("* here: {}\n", nicks.join(" ")));
                }
                "quit" => {
                    say(conn, "* bye\n");
                    let id = conn.id();
                    self.leave(&mut conn.ctx(), id, Some("quit"));
                    // Lossless: "* bye" is flushed before our FIN.
                    conn.close();
                }
                _ => say(
                    conn,
                    &format!("ERROR: unknown command /{name} (try /nick, /who, /quit)\n"),
                ),
            }
        } else if text.trim().is_empty() {
            // An empty record is a record; in a chat it says nothing.
        } else if self.nick.is_none() {
            self.set_nick(conn, text.trim());
        } else {
            let msg = format!("[{}] {text}\n", self.nick.as_deref().unwrap_or("?"));
            let id = conn.id();
            self.room.borrow().broadcast(&mut conn.ctx(), id, &msg);
        }
    }
}

impl FrameHandler for Session {
    fn handle_connect(&mut self, conn: &mut Conn<'_>) {
        log::debug!("{} connected from {:?}", conn.id(), conn.peer_addr());
        say(
            conn,
            "* welcome; who are you? (send a nick, or /nick NAME)\n",
        );
    }

    fn found_frame(&mut self, conn: &mut Conn<'_>, frame: &[u8], _: &mut Terminator) {
        self.line(conn, frame);
    }

    fn frame_too_large(&mut self, conn: &mut Conn<'_>, limit: usize) {
        // Queued before the adapter's close_with(FrameTooLarge): it reaches
        // the client before our FIN.
        say(conn, &format!("ERROR: line too long (max {limit} bytes)\n"));
        let id = conn.id();
        self.leave(&mut conn.ctx(), id, Some("line too long"));
    }

    fn incomplete_frame(&mut self, conn: &mut Conn<'_>, partial: &[u8]) {
        // `printf 'hi' | nc`: a last line without its newline still counts.
        self.line(conn, partial);
        let id = conn.id();
        self.leave(&mut conn.ctx(), id, Some("gone"));
    }

    fn handle_eof(&mut self, conn: &mut Conn<'_>) -> Eof {
        let id = conn.id();
        self.leave(&mut conn.ctx(), id, Some("gone"));
        Eof::Close
    }

    fn handle_write(&mut self, conn: &mut Conn<'_>) {
        log::debug!("{} caught up ({} bytes queued)", conn.id(), conn.pending());
    }

    fn handle_drain(&mut self, conn: &mut Conn<'_>) {
        say(conn, "* server shutting down, goodbye\n");
        let id = conn.id();
        // Everyone is leaving: no notices.
        self.leave(&mut conn.ctx(), id, None);
        conn.close();
    }

    fn handle_close(&mut self, ctx: &mut Ctx<'_>, closed: &Closed) {
        log::debug!("{} closed: {}", closed.id, closed.reason);
        let why = closed.reason.to_string();
        self.leave(ctx, closed.id, Some(&why));
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::init();
    let Args { listen, max_line } = clap::Parser::parse();
    let max_line = max_line.get();
    let mut reactor = Reactor::new()?;
    let room = Rc::new(RefCell::new(Room::default()));
    let listener = reactor.listen(listen.as_str(), move || {
        let session = Session {
            room: room.clone(),
            nick: None,
        };
        Framed::new(session, Terminator::LF, max_line)
    })?;
    support::serve(&mut reactor, listener)
}
