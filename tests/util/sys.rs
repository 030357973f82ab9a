//! What Linux says about a process and its sockets: the readers of
//! `halfclose_tools::procfs` and `halfclose_tools::fdlimit`, failing the
//! test (with the caller's location) when `/proc` cannot be read.

use std::time::Duration;

use halfclose_tools::{fdlimit, procfs};

pub use halfclose_tools::procfs::USER_HZ;

/// `field` of `/proc/<pid>/status` in KiB: `VmRSS` (resident now) or
/// `VmHWM` (the peak).
#[track_caller]
pub fn status_kib(pid: u32, field: &str) -> u64 {
    procfs::status_kib(pid, field).unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"))
}

/// A `/proc` file opened once and read again from its start on demand:
/// that needs no new descriptor, so it works while the process has none
/// left.
pub struct ProcFile(procfs::ProcFile);

impl ProcFile {
    #[track_caller]
    pub fn open(path: &str) -> ProcFile {
        ProcFile(procfs::ProcFile::open(path).unwrap_or_else(|e| panic!("open {path}: {e}")))
    }

    /// `field` of this `/proc/.../status` file, in KiB.
    #[track_caller]
    pub fn status_kib(&mut self, field: &str) -> u64 {
        self.0.status_kib(field).expect("read /proc/.../status")
    }

    /// User plus system CPU time of this `/proc/.../stat` file's process,
    /// in [`USER_HZ`] ticks.
    #[track_caller]
    pub fn cpu_ticks(&mut self) -> u64 {
        let cpu = self.0.stat_cpu().expect("read /proc/.../stat");
        (cpu.user + cpu.sys).as_millis() as u64 * USER_HZ / 1000
    }

    /// CPU time of the thread of this `/proc/thread-self/schedstat` file.
    #[track_caller]
    pub fn thread_cpu(&mut self) -> Duration {
        self.0
            .schedstat()
            .expect("read /proc/thread-self/schedstat")
    }
}

/// Descriptors open in this process.
#[track_caller]
pub fn open_fds() -> usize {
    procfs::open_fds().expect("read /proc/self/fd")
}

/// (soft, hard) RLIMIT_NOFILE of this process (`usize::MAX` if unlimited).
#[track_caller]
pub fn nofile_limits() -> (usize, usize) {
    let (soft, hard) = fdlimit::nofile().expect("getrlimit(RLIMIT_NOFILE)");
    let size = |v: Option<u64>| v.map_or(usize::MAX, |v| usize::try_from(v).unwrap_or(usize::MAX));
    (size(soft), size(hard))
}

/// The TCP states (hex, as in `/proc/net/tcp`) of the IPv4 sockets whose
/// local port is `port`.
#[track_caller]
pub fn tcp_states(port: u16) -> Vec<String> {
    procfs::tcp_states(port).expect("read /proc/net/tcp")
}

/// Descriptors open in process `pid`.
#[track_caller]
pub fn process_fds(pid: u32) -> usize {
    procfs::process_fds(pid).unwrap_or_else(|e| panic!("/proc/{pid}/fd: {e}"))
}

/// Sockets whose local address is `addr` in CLOSE_WAIT or FIN_WAIT_2, one
/// line each.
#[track_caller]
pub fn half_closed_sockets(addr: std::net::SocketAddr) -> Vec<String> {
    procfs::half_closed_sockets(addr).expect("read the TCP sockets")
}
