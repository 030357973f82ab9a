//! Counters and gauges of a reactor.

/// A snapshot of a reactor's connections and counters; see
/// [`Reactor::stats`](crate::Reactor::stats).
///
/// The gauges classify every open connection by the state of its two
/// halves, in TCP terms.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Open connections (every gauge below added up).
    pub open: usize,
    /// Outbound connects not yet completed.
    pub connecting: usize,
    /// Both directions open.
    pub established: usize,
    /// The peer sent FIN; we are still sending (our side in CLOSE_WAIT).
    pub half_closed_in: usize,
    /// Our FIN is out; the peer is still sending (our side in FIN_WAIT).
    pub half_closed_out: usize,
    /// Closed by us and reading the peer's last bytes to its FIN (a
    /// lingering close).
    pub lingering: usize,
    /// Most connections open at once.
    pub peak_open: usize,
    /// Most connections half-closed by the peer at once.
    pub peak_half_closed_in: usize,
    /// Connections accepted by listeners.
    pub accepted: u64,
    /// Outbound connects that completed.
    pub connected: u64,
    /// Connections closed (every reason).
    pub closed: u64,
    /// Connections reset by the peer.
    pub resets: u64,
    /// Connections ended by a timeout.
    pub timeouts: u64,
    /// Handler panics.
    pub panics: u64,
    /// Connections aborted by us (RST sent): [`Reason::Aborted`](crate::Reason::Aborted),
    /// and [`Reason::Stopped`](crate::Reason::Stopped) at a drain deadline.
    pub aborts: u64,
    /// Connections that failed with another error.
    pub errors: u64,
    /// Connections accepted and closed at once: past `max_connections`,
    /// shed while the process was out of descriptors, or left without a
    /// handler (the factory panicked, registration failed).
    pub refused: u64,
    /// Times an accept failed for lack of descriptors (`EMFILE`/`ENFILE`).
    pub fd_exhausted: u64,
    /// Bytes received.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
}

/// The gauge an open connection counts in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Gauge {
    Connecting,
    Established,
    HalfClosedIn,
    HalfClosedOut,
    Lingering,
}

impl Stats {
    fn slot(&mut self, g: Gauge) -> &mut usize {
        match g {
            Gauge::Connecting => &mut self.connecting,
            Gauge::Established => &mut self.established,
            Gauge::HalfClosedIn => &mut self.half_closed_in,
            Gauge::HalfClosedOut => &mut self.half_closed_out,
            Gauge::Lingering => &mut self.lingering,
        }
    }

    pub(crate) fn enter(&mut self, g: Gauge) {
        *self.slot(g) += 1;
        if g == Gauge::HalfClosedIn {
            self.peak_half_closed_in = self.peak_half_closed_in.max(self.half_closed_in);
        }
    }

    pub(crate) fn leave(&mut self, g: Gauge) {
        *self.slot(g) -= 1;
    }

    pub(crate) fn opened(&mut self, g: Gauge) {
        self.open += 1;
        self.peak_open = self.peak_open.max(self.open);
        self.enter(g);
    }

    pub(crate) fn moved(&mut self, from: Gauge, to: Gauge) {
        if from != to {
            self.leave(from);
            self.enter(to);
        }
    }
}

impl std::ops::AddAssign for Stats {
    /// Add another reactor's figures, for a [`Group`](crate::Group): counters
    /// and gauges add up; each peak becomes the sum of the peaks, an upper
    /// bound of the group's true peak (the reactors need not have peaked at
    /// the same moment).
    fn add_assign(&mut self, o: Stats) {
        self.open += o.open;
        self.connecting += o.connecting;
        self.established += o.established;
        self.half_closed_in += o.half_closed_in;
        self.half_closed_out += o.half_closed_out;
        self.lingering += o.lingering;
        self.peak_open += o.peak_open;
        self.peak_half_closed_in += o.peak_half_closed_in;
        self.accepted += o.accepted;
        self.connected += o.connected;
        self.closed += o.closed;
        self.resets += o.resets;
        self.timeouts += o.timeouts;
        self.panics += o.panics;
        self.aborts += o.aborts;
        self.errors += o.errors;
        self.refused += o.refused;
        self.fd_exhausted += o.fd_exhausted;
        self.bytes_in += o.bytes_in;
        self.bytes_out += o.bytes_out;
    }
}

impl std::ops::Add for Stats {
    type Output = Stats;
    fn add(mut self, o: Stats) -> Stats {
        self += o;
        self
    }
}
