//! Applying what a connection's state asks for: connect completion, flush,
//! FIN, reads and EOF, timeouts, and the final close. Every handler
//! callback goes through [`Core::call`], which lends the handler out of its
//! slot, catches a panic, and puts it back.

use std::io::{self, Read};
use std::net::Shutdown;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use socket2::SockRef;

use crate::conn::{Armed, Conn, End, Reading, Ready, Writing};
use crate::ctx::{ConnTimer, Core, Ctx, TimerTarget};
use crate::handler::{Closed, Eof, Handler, Reason, Timeout, TimerId};
use crate::outq::Flush;
use crate::token::ConnId;

/// How the descriptor is closed.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Teardown {
    /// `close(2)`: FIN (the receive queue is empty on every graceful path).
    Close,
    /// `SO_LINGER` 0, then `close(2)`: RST.
    Reset,
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "non-string panic payload"
    }
}

impl Core {
    /// Run one callback of the handler in slot `key`. Returns `None` if it
    /// panicked; the connection is then marked for abort.
    pub(crate) fn call<R>(
        &mut self,
        key: usize,
        f: impl FnOnce(&mut dyn Handler, &mut Conn<'_>) -> R,
    ) -> Option<R> {
        let mut handler = self.conns[key].handler.take()?;
        let result = catch_unwind(AssertUnwindSafe(|| {
            let mut conn = Conn { core: self, key };
            f(&mut *handler, &mut conn)
        }));
        self.conns[key].handler = Some(handler);
        match result {
            Ok(r) => Some(r),
            Err(payload) => {
                log::error!(
                    "handler of {} panicked: {}; aborting it",
                    self.gens.current(key),
                    panic_message(&*payload)
                );
                let st = &mut self.conns[key].state;
                self.stats.panics += 1;
                if !matches!(st.end, End::Abort(Reason::Panicked)) {
                    st.end = End::Abort(Reason::Panicked);
                }
                None
            }
        }
    }

    /// Apply everything connection `id` can do now, then account for its
    /// new state. Safe to call for any id, any number of times.
    pub(crate) fn advance(&mut self, id: ConnId, buf: &mut [u8], requeue: &mut Vec<ConnId>) {
        let Some(key) = self.live(id) else { return };
        let mut read_done = false;
        loop {
            let st = &mut self.conns[key].state;
            match st.end {
                End::Abort(reason) => return self.finalize(key, reason, Teardown::Reset),
                End::Fail(..) => return self.fail(key),
                _ => {}
            }
            if let Writing::Connecting { fin } = st.writing {
                if !st.ready.has(Ready::WRITABLE | Ready::ERROR) {
                    break;
                }
                match connect_outcome(st) {
                    Ok(false) => {
                        st.ready.clear(Ready::WRITABLE | Ready::ERROR);
                        break;
                    }
                    Ok(true) => {
                        st.writing = if fin { Writing::Closing } else { Writing::Open };
                        st.last_activity = self.now;
                        self.stats.connected += 1;
                        self.call(key, |h, c| h.handle_connect(c));
                    }
                    Err(e) => st.fail(e),
                }
                continue;
            }

            let st = &mut self.conns[key].state;
            if st.pending() > 0 && st.ready.has(Ready::WRITABLE) {
                self.flush(key);
                continue;
            }
            if st.blocked && st.pending() <= self.config.write_low_water {
                st.blocked = false;
                // Like Node's 'drain', only while writes are still accepted.
                if st.writing == Writing::Open && matches!(st.end, End::Running) {
                    self.call(key, |h, c| h.handle_write(c));
                }
                continue;
            }
            if st.writing == Writing::Closing && st.pending() == 0 {
                if st.reading == Reading::Eof {
                    // Both directions are done and the receive queue is
                    // empty: close(2) sends the FIN, no shutdown needed.
                    let reason = match st.end {
                        End::Graceful(r) => r,
                        _ => Reason::PeerClosed,
                    };
                    return self.finalize(key, reason, Teardown::Close);
                }
                match st.stream.shutdown(Shutdown::Write) {
                    Ok(()) => {
                        st.writing = Writing::Shut;
                        st.since = self.now;
                    }
                    // ENOTCONN after a peer reset (V6).
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        st.fail(io::Error::from(io::ErrorKind::ConnectionReset))
                    }
                    Err(e) => st.fail(e),
                }
                continue;
            }
            if st.writing == Writing::Shut && st.reading == Reading::Eof {
                let reason = match st.end {
                    End::Graceful(r) => r,
                    _ => Reason::Local,
                };
                return self.finalize(key, reason, Teardown::Close);
            }
            if !read_done
                && st.ready.has(Ready::READABLE)
                && matches!(st.reading, Reading::Open | Reading::Discarding)
            {
                read_done = true;
                self.read(key, buf, requeue);
                continue;
            }
            if st.ready.has(Ready::ERROR) {
                st.ready.clear(Ready::ERROR);
                // Reading surfaces a pending error itself; here reading is
                // paused or over, so ask for it (a RST after our FIN, or
                // after the peer's: C9).
                match st.stream.take_error() {
                    Ok(Some(e)) | Err(e) => {
                        st.fail(e);
                        continue;
                    }
                    Ok(None) => {}
                }
            }
            break;
        }
        self.settle(key);
    }

    /// Account for the state `advance` left: gauge and timeout entry.
    fn settle(&mut self, key: usize) {
        let st = &mut self.conns[key].state;
        let gauge = st.classify();
        let old = std::mem::replace(&mut st.gauge, gauge);
        self.stats.moved(old, gauge);
        let want = st
            .next_timeout(&self.config)
            .map(|(at, _)| at)
            .filter(|&at| at < u64::MAX);
        match (st.timeouts.get(), want) {
            (Some((_, at)), Some(w)) if at <= w => {}
            (old, want) => {
                if let Some((k, _)) = old {
                    self.timers.cancel(k);
                }
                let id = self.gens.current(key);
                st.timeouts = want.map_or(Armed::NONE, |at| {
                    let key = self
                        .timers
                        .insert(at, TimerTarget::Conn(id, ConnTimer::Timeouts));
                    Armed::new(key, at)
                });
            }
        }
    }

    fn flush(&mut self, key: usize) {
        let st = &mut self.conns[key].state;
        let Some(q) = st.out.as_mut() else { return };
        let (n, result) = q.flush_to(&st.stream);
        if n > 0 {
            st.bytes_out += n as u64;
            st.last_activity = self.now;
            self.stats.bytes_out += n as u64;
        }
        match result {
            Ok(Flush::Drained) => st.out = None,
            Ok(Flush::Blocked) => st.ready.clear(Ready::WRITABLE),
            Err(e) => st.fail(e),
        }
    }

    /// Read until the kernel queue is empty, the budget is spent (the
    /// connection is re-queued), or the state stops wanting input.
    fn read(&mut self, key: usize, buf: &mut [u8], requeue: &mut Vec<ConnId>) {
        let mut budget = self.config.read_budget.max(1);
        loop {
            let st = &mut self.conns[key].state;
            let deliver = match st.reading {
                Reading::Open => true,
                Reading::Discarding => false,
                Reading::Paused | Reading::Eof => return,
            };
            if st.is_failing() || !st.ready.has(Ready::READABLE) {
                return;
            }
            if budget == 0 {
                requeue.push(self.gens.current(key));
                return;
            }
            budget -= 1;
            match (&st.stream).read(buf) {
                Ok(0) => {
                    st.ready.clear(Ready::READABLE);
                    return self.on_eof(key);
                }
                Ok(n) => {
                    st.bytes_in += n as u64;
                    st.last_activity = self.now;
                    self.stats.bytes_in += n as u64;
                    // A short read emptied the queue: a new edge comes with
                    // new data. If the event also carried the FIN (and no
                    // error), EOF follows the data with no further read.
                    let drained = n < buf.len();
                    let eof_now =
                        drained && st.ready.has(Ready::READ_CLOSED) && !st.ready.has(Ready::ERROR);
                    if drained {
                        st.ready.clear(Ready::READABLE);
                    }
                    if deliver {
                        self.call(key, |h, c| h.handle_read(c, &buf[..n]));
                    }
                    if eof_now {
                        let st = &mut self.conns[key].state;
                        match st.reading {
                            Reading::Open | Reading::Discarding if !st.is_failing() => {
                                return self.on_eof(key)
                            }
                            // Paused in handle_read: the FIN is held; a
                            // read after resume finds it.
                            _ => return,
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    st.ready.clear(Ready::READABLE);
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    st.ready.clear(Ready::READABLE | Ready::ERROR);
                    st.fail(e);
                    return;
                }
            }
        }
    }

    /// The peer's FIN was read.
    fn on_eof(&mut self, key: usize) {
        let st = &mut self.conns[key].state;
        // Whose FIN came first decides the reason of a graceful end.
        let ours_first = !matches!(
            st.writing,
            Writing::Open | Writing::Connecting { fin: false }
        );
        let was = std::mem::replace(&mut st.reading, Reading::Eof);
        st.since = self.now;
        if was != Reading::Open {
            return;
        }
        let Some(eof) = self.call(key, |h, c| h.handle_readable_eof(c)) else {
            return;
        };
        let st = &mut self.conns[key].state;
        match eof {
            Eof::Close => {
                let reason = if ours_first {
                    Reason::Local
                } else {
                    Reason::PeerClosed
                };
                st.begin_close(reason);
            }
            Eof::HalfClose => {
                if ours_first && matches!(st.end, End::Running) {
                    // Both FINs are out; ours came first.
                    st.end = End::Graceful(Reason::Local);
                }
            }
            Eof::Abort => st.abort(Reason::Aborted),
        }
    }

    /// Report the recorded error to the handler, then close.
    fn fail(&mut self, key: usize) {
        let err = match &self.conns[key].state.end {
            End::Fail(_, e) => clone_error(e),
            _ => return,
        };
        self.call(key, |h, c| h.handle_error(c, &err));
        let reason = match &self.conns[key].state.end {
            End::Fail(r, _) | End::Abort(r) => *r,
            _ => Reason::from_error(&err),
        };
        self.finalize(key, reason, Teardown::Close);
    }

    /// Close the descriptor, free the slot, and tell the handler, last.
    fn finalize(&mut self, key: usize, reason: Reason, how: Teardown) {
        let id = self.gens.current(key);
        let slot = self.conns.remove(key);
        self.gens.retire(key);
        let st = slot.state;
        if let Some((k, _)) = st.timeouts.get() {
            self.timers.cancel(k);
        }
        if how == Teardown::Reset {
            // Best effort: the RST is what the caller asked for; if the
            // option cannot be set, close(2) still ends the connection.
            let _ = SockRef::from(&st.stream).set_linger(Some(Duration::ZERO));
        }
        let dropped = st.pending() as u64;
        drop(st.stream);
        let stats = &mut self.stats;
        stats.open -= 1;
        stats.leave(st.gauge);
        stats.closed += 1;
        match reason {
            Reason::Reset => stats.resets += 1,
            Reason::TimedOut(_) => stats.timeouts += 1,
            Reason::Aborted | Reason::Stopped => stats.aborts += 1,
            Reason::Error(_) => stats.errors += 1,
            _ => {}
        }
        let closed = Closed {
            id,
            reason,
            bytes_in: st.bytes_in,
            bytes_out: st.bytes_out,
            dropped,
        };
        log::debug!(
            "{} closed: {} (in {}, out {}, dropped {})",
            id,
            reason,
            st.bytes_in,
            st.bytes_out,
            dropped
        );
        if let Some(mut handler) = slot.handler {
            let result = catch_unwind(AssertUnwindSafe(|| {
                handler.handle_close(&mut Ctx { core: self }, &closed)
            }));
            if let Err(payload) = result {
                log::error!(
                    "handle_close of {} panicked: {}",
                    closed.id,
                    panic_message(&*payload)
                );
                self.stats.panics += 1;
            }
        }
    }

    /// A timer of connection `id` fired.
    pub(crate) fn on_conn_timer(&mut self, id: ConnId, which: ConnTimer, timer: TimerId) {
        let Some(key) = self.live(id) else { return };
        // Whatever happens, `advance` applies it and re-arms the timeouts.
        self.dirty.push(id);
        match which {
            ConnTimer::User => {
                if !self.conns[key].state.is_failing() {
                    self.call(key, |h, c| h.handle_timer(c, timer));
                }
            }
            ConnTimer::Timeouts => {
                let st = &mut self.conns[key].state;
                st.timeouts = Armed::NONE;
                let Some((at, kind)) = st.next_timeout(&self.config) else {
                    return;
                };
                if at > self.now {
                    return; // progress moved the deadline
                }
                log::debug!("{id} timed out: {kind:?}");
                let reason = Reason::TimedOut(kind);
                match kind {
                    Timeout::Connect => {
                        if !st.is_failing() {
                            st.end = End::Fail(reason, io::Error::from(io::ErrorKind::TimedOut));
                        }
                    }
                    Timeout::Linger => {
                        // A close begun by a timeout keeps that timeout as
                        // its reason; otherwise the linger timeout is it.
                        let reason = match st.end {
                            End::Graceful(first @ Reason::TimedOut(_)) => first,
                            _ => reason,
                        };
                        st.end = End::Graceful(reason);
                        self.finalize(key, reason, Teardown::Close);
                    }
                    Timeout::Idle | Timeout::PeerEof => {
                        if matches!(st.end, End::Running) && st.writing == Writing::Open {
                            // The close starts a new phase: its own
                            // deadlines run from now.
                            st.last_activity = self.now;
                            st.begin_close(reason);
                        } else {
                            // Already closing and still stuck: give up.
                            st.abort(reason);
                        }
                    }
                }
            }
        }
    }
}

/// Whether a non-blocking connect completed (`Ok(true)`), is still in
/// flight (`Ok(false)`), or failed.
fn connect_outcome(st: &crate::conn::ConnState) -> io::Result<bool> {
    if let Some(e) = st.stream.take_error()? {
        return Err(e);
    }
    match st.stream.peer_addr() {
        Ok(_) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
        Err(e) => Err(e),
    }
}

fn clone_error(e: &io::Error) -> io::Error {
    match e.raw_os_error() {
        Some(code) => io::Error::from_raw_os_error(code),
        None => io::Error::new(e.kind(), e.to_string()),
    }
}
