//! What Linux says about a process and its sockets, read from `/proc`:
//! memory, CPU time, descriptors, TCP states.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::time::Duration;

/// `/proc/<pid>/stat` reports times in USER_HZ, 100 on every Linux ABI.
pub const USER_HZ: u64 = 100;

/// The value of `field` (`VmRSS`, `VmHWM`, ...) in the text of a
/// `/proc/<pid>/status` file, in KiB.
#[track_caller]
fn status_field_kib(status: &str, field: &str) -> u64 {
    let key = format!("{field}:");
    status
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/PID/status"))
}

/// `field` of `/proc/<pid>/status` in KiB: `VmRSS` (resident now) or
/// `VmHWM` (the peak).
#[track_caller]
pub fn status_kib(pid: u32, field: &str) -> u64 {
    let status =
        std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    status_field_kib(&status, field)
}

/// A `/proc` file opened once and read again from its start on demand:
/// that needs no new descriptor, so it works while the process has none
/// left.
pub struct ProcFile(File);

impl ProcFile {
    pub fn open(path: &str) -> ProcFile {
        ProcFile(File::open(path).unwrap_or_else(|e| panic!("open {path}: {e}")))
    }

    /// The whole file, as it is now.
    pub fn read(&mut self) -> String {
        let mut text = String::new();
        self.0.seek(SeekFrom::Start(0)).expect("seek");
        self.0.read_to_string(&mut text).expect("read /proc");
        text
    }

    /// `field` of this `/proc/.../status` file, in KiB.
    #[track_caller]
    pub fn status_kib(&mut self, field: &str) -> u64 {
        status_field_kib(&self.read(), field)
    }

    /// User plus system CPU time of this `/proc/.../stat` file's process,
    /// in [`USER_HZ`] ticks.
    pub fn cpu_ticks(&mut self) -> u64 {
        let text = self.read();
        // Fields after the command name, which is in parentheses: state is
        // field 3, utime 14, stime 15.
        let rest = &text[text.rfind(')').expect("stat format") + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        let utime: u64 = fields[11].parse().expect("utime");
        let stime: u64 = fields[12].parse().expect("stime");
        utime + stime
    }

    /// CPU time of the thread of this `/proc/thread-self/schedstat` file
    /// (nanoseconds on a CPU, its first field).
    pub fn thread_cpu(&mut self) -> Duration {
        let ns = self
            .read()
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .expect("schedstat");
        Duration::from_nanos(ns)
    }
}

/// Descriptors open in this process.
pub fn open_fds() -> usize {
    // The directory's own descriptor is listed too.
    std::fs::read_dir("/proc/self/fd")
        .expect("read /proc/self/fd")
        .count()
        - 1
}

/// (soft, hard) RLIMIT_NOFILE of this process (`usize::MAX` if unlimited).
pub fn nofile_limits() -> (usize, usize) {
    let limits = std::fs::read_to_string("/proc/self/limits").expect("read /proc/self/limits");
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files line");
    let mut v = line["Max open files".len()..]
        .split_whitespace()
        .map(|v| v.parse::<usize>().unwrap_or(usize::MAX));
    (v.next().expect("soft"), v.next().expect("hard"))
}

/// The TCP states (hex, as in `/proc/net/tcp`) of the IPv4 sockets whose
/// local port is `port`.
pub fn tcp_states(port: u16) -> Vec<String> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("/proc/net/tcp");
    let suffix = format!(":{port:04X}");
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut cols = line.split_whitespace();
            let local = cols.nth(1)?;
            let state = cols.nth(1)?;
            local.ends_with(&suffix).then(|| state.to_string())
        })
        .collect()
}

/// Descriptors open in process `pid` (another process: listing its
/// directory opens none there).
pub fn process_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("read /proc/PID/fd")
        .count()
}

/// Sockets whose local address is `addr` (a server's listening address:
/// its accepted sockets share it) in CLOSE_WAIT or FIN_WAIT_2, one line
/// each. The whole address, not only the port: another process's client
/// socket may use the same port number from another loopback address.
/// Asked of `ss`, which filters in the kernel (`/proc/net/tcp` lists every
/// socket of the host, hundreds of thousands under a soak); from
/// [`tcp_states`] (states 08, 05, by port) without it.
pub fn half_closed_sockets(addr: std::net::SocketAddr) -> Vec<String> {
    let port = addr.port();
    let sport = format!("src = {addr}");
    let ss = std::process::Command::new("ss")
        .args([
            "-H",
            "-t",
            "-n",
            "state",
            "close-wait",
            "state",
            "fin-wait-2",
            &sport,
        ])
        .output();
    if let Ok(out) = ss {
        if out.status.success() {
            return String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect();
        }
    }
    tcp_states(port)
        .into_iter()
        .filter(|s| s == "08" || s == "05")
        .map(|s| format!("state {s} on port {port}"))
        .collect()
}
