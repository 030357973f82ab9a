//! Reactor configuration.

use std::time::Duration;

use crate::error::Error;

/// Settings of a [`Reactor`](crate::Reactor); every field has a default.
///
/// ```
/// use std::time::Duration;
/// let mut config = halfclose::Config::default();
/// config.idle_timeout = Some(Duration::from_secs(30));
/// config.backlog = 4096;
/// let reactor = halfclose::Reactor::with_config(config).unwrap();
/// # drop(reactor);
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// Close a connection gracefully when no byte moved in either direction
    /// for this long (reason `TimedOut(Idle)`); a connection already
    /// closing is aborted instead. Once our FIN is out, the linger timeout
    /// applies instead. Default 300 s; `None` disables it.
    pub idle_timeout: Option<Duration>,
    /// The CLOSE_WAIT guard: the peer sent FIN and we neither finished nor
    /// made progress for this long. Default 60 s; `None` disables it.
    pub peer_eof_timeout: Option<Duration>,
    /// The FIN_WAIT_2 guard: our FIN is out and the peer's has not come.
    /// After [`Conn::close`](crate::Conn::close) it runs from our FIN
    /// (lingering close, like nginx's `lingering_time`); after
    /// [`Conn::shutdown_write`](crate::Conn::shutdown_write) every byte
    /// received restarts it. Default 30 s; `None` disables it.
    pub linger_timeout: Option<Duration>,
    /// How long an outbound connect may take. Default 30 s; `None` leaves
    /// it to the kernel (about two minutes of SYN retries).
    pub connect_timeout: Option<Duration>,
    /// How long a TLS handshake may take, from the TCP connection on
    /// (reason `TimedOut(Handshake)`). Default 10 s; `None` disables it.
    pub handshake_timeout: Option<Duration>,
    /// Queued output above which [`Conn::is_write_blocked`](crate::Conn::is_write_blocked)
    /// is true. Default 64 KiB.
    pub write_high_water: usize,
    /// Queued output at or below which a blocked connection gets
    /// [`Handler::handle_write`](crate::Handler::handle_write). Default 16 KiB.
    pub write_low_water: usize,
    /// Hard limit on queued output per connection; a write that would pass
    /// it is refused with [`Error::QueueFull`](crate::Error::QueueFull).
    /// With nothing queued a write is always accepted. Default `None`:
    /// handlers are expected to honour the high-water mark.
    pub max_pending: Option<usize>,
    /// Size of the one read buffer shared by every connection. Default 64 KiB.
    pub read_buffer_size: usize,
    /// Reads per connection per wakeup before it yields to the others
    /// (it is re-queued, not dropped). Default 16.
    pub read_budget: usize,
    /// Listen backlog. Default 1024 (the kernel caps it at
    /// `net.core.somaxconn`).
    pub backlog: i32,
    /// Set `SO_REUSEPORT` on listeners so that several reactors, one per
    /// thread, can share a port. Default false.
    pub reuse_port: bool,
    /// Connections accepted per listener per wakeup. Default 128.
    pub accept_batch: usize,
    /// Accept no more than this many open connections; past it, new
    /// connections are accepted and closed at once. Default `None`.
    pub max_connections: Option<usize>,
    /// How long a listener rests after `EMFILE`/`ENFILE` or another accept
    /// failure before it tries again. Default 100 ms.
    pub accept_backoff: Duration,
    /// Readiness events fetched per poll. Default 1024.
    pub events_capacity: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            idle_timeout: Some(Duration::from_secs(300)),
            peer_eof_timeout: Some(Duration::from_secs(60)),
            linger_timeout: Some(Duration::from_secs(30)),
            connect_timeout: Some(Duration::from_secs(30)),
            handshake_timeout: Some(Duration::from_secs(10)),
            write_high_water: 64 * 1024,
            write_low_water: 16 * 1024,
            max_pending: None,
            read_buffer_size: 64 * 1024,
            read_budget: 16,
            backlog: 1024,
            reuse_port: false,
            accept_batch: 128,
            max_connections: None,
            accept_backoff: Duration::from_millis(100),
            events_capacity: 1024,
        }
    }
}

impl Config {
    /// Check that the settings make sense together: nothing is clamped
    /// silently. [`Reactor::with_config`](crate::Reactor::with_config)
    /// calls it.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidConfig`] naming the first setting that is wrong: a
    /// low-water mark above the high-water mark, a zero read buffer, read
    /// budget, accept batch or event capacity, or a timeout longer than
    /// 49 days (2^32 ms, how far a connection's clock reaches).
    pub fn validate(&self) -> Result<(), Error> {
        let wrong = |why: &'static str| Err(Error::InvalidConfig(why));
        if self.write_low_water > self.write_high_water {
            return wrong("write_low_water is above write_high_water");
        }
        if self.read_buffer_size == 0 {
            return wrong("read_buffer_size is 0");
        }
        if self.read_budget == 0 {
            return wrong("read_budget is 0: no connection could ever read");
        }
        if self.accept_batch == 0 {
            return wrong("accept_batch is 0: no connection could ever be accepted");
        }
        if self.events_capacity == 0 {
            return wrong("events_capacity is 0");
        }
        // A connection keeps its moments in 32-bit milliseconds.
        let longest = Duration::from_millis(u64::from(u32::MAX));
        for (timeout, why) in [
            (self.idle_timeout, "idle_timeout is longer than 49 days"),
            (
                self.peer_eof_timeout,
                "peer_eof_timeout is longer than 49 days",
            ),
            (self.linger_timeout, "linger_timeout is longer than 49 days"),
            (
                self.connect_timeout,
                "connect_timeout is longer than 49 days",
            ),
            (
                self.handshake_timeout,
                "handshake_timeout is longer than 49 days",
            ),
        ] {
            if timeout.is_some_and(|t| t > longest) {
                return wrong(why);
            }
        }
        Ok(())
    }
}

/// An idle timeout in milliseconds as a connection keeps it: 0 for none,
/// and at least 1 for any duration (a zero one fires at the next tick).
pub(crate) fn idle_ms(timeout: Option<Duration>) -> u32 {
    timeout.map_or(0, |d| millis_u32(d).max(1))
}

/// Milliseconds, rounded up, saturating at `u32::MAX`.
pub(crate) fn millis_u32(d: Duration) -> u32 {
    u32::try_from(millis(d)).unwrap_or(u32::MAX)
}

/// Milliseconds, rounded up, saturating at `u64::MAX`; in 64-bit
/// arithmetic (the timeouts of every connection pass through it).
pub(crate) fn millis(d: Duration) -> u64 {
    let part = u64::from(d.subsec_nanos().div_ceil(1_000_000));
    d.as_secs().saturating_mul(1_000).saturating_add(part)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert!(Config::default().validate().is_ok());
    }

    #[test]
    fn milliseconds_round_up_and_saturate() {
        let cases = [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_millis(1), 1),
            (Duration::from_nanos(1_000_001), 2),
            (Duration::new(2, 999_999_999), 3_000),
            (Duration::new(7, 0), 7_000),
            (Duration::MAX, u64::MAX),
        ];
        for (d, ms) in cases {
            assert_eq!(millis(d), ms, "{d:?}");
            let exact = d.as_nanos().div_ceil(1_000_000);
            assert_eq!(
                u128::from(millis(d)),
                exact.min(u128::from(u64::MAX)),
                "{d:?}"
            );
        }
        assert_eq!(
            millis_u32(Duration::from_secs(u64::from(u32::MAX))),
            u32::MAX
        );
        assert_eq!(millis_u32(Duration::from_nanos(1_500_000)), 2);
        assert_eq!(idle_ms(None), 0);
        assert_eq!(idle_ms(Some(Duration::ZERO)), 1);
        assert_eq!(idle_ms(Some(Duration::from_millis(250))), 250);
    }

    #[test]
    fn contradictions_and_zero_sizes_are_refused_by_name() {
        type Spoil = fn(&mut Config);
        let cases: [(Spoil, &str); 6] = [
            (
                |c| c.write_low_water = c.write_high_water + 1,
                "write_low_water",
            ),
            (|c| c.read_buffer_size = 0, "read_buffer_size"),
            (|c| c.read_budget = 0, "read_budget"),
            (|c| c.accept_batch = 0, "accept_batch"),
            (|c| c.events_capacity = 0, "events_capacity"),
            (
                |c| c.linger_timeout = Some(Duration::from_secs(50 * 86_400)),
                "linger_timeout",
            ),
        ];
        for (spoil, name) in cases {
            let mut c = Config::default();
            spoil(&mut c);
            let err = c.validate().expect_err(name);
            assert!(err.to_string().contains(name), "{err}");
            let io = crate::Reactor::with_config(c).expect_err(name);
            assert_eq!(io.kind(), std::io::ErrorKind::InvalidInput);
            assert!(io.to_string().contains(name), "{io}");
        }
    }
}
