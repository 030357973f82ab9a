//! The reactor's timer descriptor: a `timerfd` in its epoll set, armed to
//! the earliest deadline, so that the epoll descriptor becomes readable
//! when a timer is due even if the reactor is not blocked in `epoll_wait`
//! (a host loop that only watches the descriptor).
//!
//! Arming costs a syscall, so the alarm is moved only when a deadline
//! earlier than the armed one appears. When deadlines are cancelled or move
//! later, the alarm fires early: one wakeup, no timer due, and it is armed
//! again for the new earliest deadline.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::time::Duration;

use rustix::time::{
    timerfd_create, timerfd_settime, Itimerspec, TimerfdClockId, TimerfdFlags, TimerfdTimerFlags,
    Timespec,
};

#[derive(Debug)]
pub(crate) struct Alarm {
    fd: OwnedFd,
    /// The tick it is armed for, if armed.
    armed: Option<u64>,
}

impl Alarm {
    pub(crate) fn new() -> io::Result<Alarm> {
        let fd = timerfd_create(
            TimerfdClockId::Monotonic,
            TimerfdFlags::NONBLOCK | TimerfdFlags::CLOEXEC,
        )?;
        Ok(Alarm { fd, armed: None })
    }

    /// Make sure the alarm goes off no later than tick `at`, `after` from
    /// now. Returns whether the timer descriptor had to be set.
    pub(crate) fn ensure(&mut self, at: u64, after: Duration) -> io::Result<bool> {
        if self.armed.is_some_and(|armed| armed <= at) {
            return Ok(false);
        }
        // One millisecond more: ticks are whole milliseconds and the clock
        // is read in floor, so a deadline is due only once its tick began.
        let after = after + Duration::from_millis(1);
        let spec = Itimerspec {
            it_interval: Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: Timespec {
                tv_sec: after.as_secs() as _,
                tv_nsec: after.subsec_nanos() as _,
            },
        };
        timerfd_settime(&self.fd, TimerfdTimerFlags::empty(), &spec)?;
        self.armed = Some(at);
        Ok(true)
    }

    /// The alarm went off (its descriptor was readable): consume the
    /// expiration so that the descriptor is quiet until it is armed again.
    pub(crate) fn rang(&mut self) {
        self.armed = None;
        let mut count = [0u8; 8];
        // Nothing to read (already consumed) is as good as a read.
        let _ = rustix::io::read(&self.fd, &mut count);
    }
}

impl AsRawFd for Alarm {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}
