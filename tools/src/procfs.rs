//! What Linux says about a process and its sockets, read from `/proc`: CPU
//! time of a process or a thread, resident memory, open descriptors, TCP
//! socket states.
//!
//! Every reader returns an [`io::Result`]; the parsers of each file's text
//! are pure functions beside them. [`ProcFile`] keeps a file open and reads
//! it again from its start, which needs no new descriptor: it works while
//! the process has none left.
//!
//! # Examples
//!
//! ```
//! use halfclose_tools::procfs;
//!
//! let before = procfs::thread_cpu()?;
//! let mem = procfs::memory(std::process::id())?;
//! assert!(mem.hwm >= mem.rss && mem.rss > 0);
//! assert!(procfs::thread_cpu()?.since(before).total < std::time::Duration::from_secs(60));
//! assert!(procfs::open_fds()? >= 3);
//! # Ok::<(), std::io::Error>(())
//! ```

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::time::Duration;

/// `stat` files count `utime` and `stime` in units of `USER_HZ`, 100 on
/// every Linux ABI.
pub const USER_HZ: u64 = 100;

fn bad(path: &str, what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("{path}: no {what}"))
}

// ---------------------------------------------------------------- CPU time

/// CPU time: the total (nanosecond precision where the kernel gives it) and
/// the user/system split (clock-tick precision).
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Cpu {
    /// User plus system time; from `schedstat` for a thread.
    pub total: Duration,
    /// User time (`utime`).
    pub user: Duration,
    /// System time (`stime`).
    pub sys: Duration,
}

impl Cpu {
    /// The time spent since `earlier` (saturating).
    pub fn since(self, earlier: Cpu) -> Cpu {
        Cpu {
            total: self.total.saturating_sub(earlier.total),
            user: self.user.saturating_sub(earlier.user),
            sys: self.sys.saturating_sub(earlier.sys),
        }
    }
}

/// Both together (threads added up).
impl std::ops::Add for Cpu {
    type Output = Cpu;

    fn add(self, other: Cpu) -> Cpu {
        Cpu {
            total: self.total + other.total,
            user: self.user + other.user,
            sys: self.sys + other.sys,
        }
    }
}

/// `(utime, stime)` in [`USER_HZ`] ticks from the text of a `stat` file.
/// The command name may hold spaces and parentheses, so fields are counted
/// after the last `)`: utime and stime are fields 14 and 15.
pub fn parse_stat_ticks(stat: &str) -> Option<(u64, u64)> {
    let rest = &stat[stat.rfind(')')? + 1..];
    // The first field after ')' is field 3.
    let mut fields = rest.split_whitespace().skip(11);
    let utime = fields.next()?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// Nanoseconds on a CPU, the first field of a `schedstat` file.
pub fn parse_schedstat(schedstat: &str) -> Option<Duration> {
    let ns = schedstat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn ticks(n: u64) -> Duration {
    Duration::from_millis(n * (1000 / USER_HZ))
}

fn cpu_from_stat(path: &str, stat: &str) -> io::Result<Cpu> {
    let (utime, stime) = parse_stat_ticks(stat).ok_or_else(|| bad(path, "utime and stime"))?;
    let (user, sys) = (ticks(utime), ticks(stime));
    Ok(Cpu {
        total: user + sys,
        user,
        sys,
    })
}

/// CPU time of the calling thread: `/proc/thread-self/stat` for the split,
/// `/proc/thread-self/schedstat` for a precise total where it exists.
pub fn thread_cpu() -> io::Result<Cpu> {
    let path = "/proc/thread-self/stat";
    let mut cpu = cpu_from_stat(path, &std::fs::read_to_string(path)?)?;
    if let Some(total) = std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| parse_schedstat(&s))
    {
        cpu.total = total;
    }
    Ok(cpu)
}

/// CPU time of process `pid`, every thread (`/proc/PID/stat`, clock ticks).
pub fn process_cpu(pid: u32) -> io::Result<Cpu> {
    let path = format!("/proc/{pid}/stat");
    cpu_from_stat(&path, &std::fs::read_to_string(&path)?)
}

// ---------------------------------------------------------------- memory

/// The value of `field` (`VmRSS`, `VmHWM`, ...) in the text of a `status`
/// file, in KiB.
pub fn parse_status_kib(status: &str, field: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        let v = l.strip_prefix(field)?.strip_prefix(':')?;
        v.trim().strip_suffix("kB")?.trim().parse().ok()
    })
}

/// `field` of `/proc/PID/status`, in KiB: `VmRSS` (resident now), `VmHWM`
/// (the peak).
pub fn status_kib(pid: u32, field: &str) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    parse_status_kib(&status, field).ok_or_else(|| bad(&path, field))
}

/// Resident memory of a process, in bytes.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
pub struct Memory {
    /// Resident now (`VmRSS`).
    pub rss: u64,
    /// The peak (`VmHWM`).
    pub hwm: u64,
}

/// Resident memory of process `pid` (`/proc/PID/status`).
pub fn memory(pid: u32) -> io::Result<Memory> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)?;
    let kib = |field| parse_status_kib(&status, field).ok_or_else(|| bad(&path, field));
    Ok(Memory {
        rss: kib("VmRSS")? * 1024,
        hwm: kib("VmHWM")? * 1024,
    })
}

// ---------------------------------------------------------------- descriptors

/// Descriptors open in this process (not counting the one that lists them).
pub fn open_fds() -> io::Result<usize> {
    Ok(std::fs::read_dir("/proc/self/fd")?
        .count()
        .saturating_sub(1))
}

/// Descriptors open in process `pid`, another process (listing its
/// directory opens none there).
pub fn process_fds(pid: u32) -> io::Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/fd"))?.count())
}

// ---------------------------------------------------------------- TCP

/// `/proc/net/tcp`'s state of a socket in `CLOSE_WAIT`.
pub const CLOSE_WAIT: &str = "08";
/// `/proc/net/tcp`'s state of a socket in `FIN_WAIT2`.
pub const FIN_WAIT2: &str = "05";

/// The states (hex, as in `/proc/net/tcp`: `01` established, `05`
/// FIN_WAIT2, `06` TIME_WAIT, `08` CLOSE_WAIT, ...) of the sockets in
/// `table` whose local port is `port`.
pub fn parse_tcp_states(table: &str, port: u16) -> Vec<String> {
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

/// The TCP states of the IPv4 sockets whose local port is `port`
/// ([`parse_tcp_states`] of `/proc/net/tcp`).
pub fn tcp_states(port: u16) -> io::Result<Vec<String>> {
    Ok(parse_tcp_states(
        &std::fs::read_to_string("/proc/net/tcp")?,
        port,
    ))
}

/// Sockets whose local address is `addr` (a server's listening address:
/// its accepted sockets share it) in CLOSE_WAIT or FIN_WAIT2, one line
/// each. The whole address, not only the port: another process's client
/// socket may use the same port number from another loopback address.
/// Asked of `ss`, which filters in the kernel (`/proc/net/tcp` lists every
/// socket of the host, hundreds of thousands under a soak); from
/// [`tcp_states`] (by port) without it.
pub fn half_closed_sockets(addr: std::net::SocketAddr) -> io::Result<Vec<String>> {
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
            return Ok(String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(str::to_string)
                .collect());
        }
    }
    Ok(tcp_states(port)?
        .into_iter()
        .filter(|s| s == CLOSE_WAIT || s == FIN_WAIT2)
        .map(|s| format!("state {s} on port {port}"))
        .collect())
}

// ---------------------------------------------------------------- a file kept open

/// A `/proc` file opened once and read again from its start on demand.
#[derive(Debug)]
pub struct ProcFile {
    path: String,
    file: File,
}

impl ProcFile {
    /// Open `path` (`/proc/self/status`, `/proc/thread-self/schedstat`, ...).
    pub fn open(path: &str) -> io::Result<ProcFile> {
        Ok(ProcFile {
            path: path.to_string(),
            file: File::open(path)?,
        })
    }

    /// The whole file, as it is now.
    pub fn read(&mut self) -> io::Result<String> {
        let mut text = String::new();
        self.file.seek(SeekFrom::Start(0))?;
        self.file.read_to_string(&mut text)?;
        Ok(text)
    }

    /// `field` of this `status` file, in KiB.
    pub fn status_kib(&mut self, field: &str) -> io::Result<u64> {
        parse_status_kib(&self.read()?, field).ok_or_else(|| bad(&self.path, field))
    }

    /// CPU time of this `stat` file's process or thread (clock ticks).
    pub fn stat_cpu(&mut self) -> io::Result<Cpu> {
        let text = self.read()?;
        cpu_from_stat(&self.path, &text)
    }

    /// CPU time of this `schedstat` file's thread, in nanoseconds.
    pub fn schedstat(&mut self) -> io::Result<Duration> {
        parse_schedstat(&self.read()?).ok_or_else(|| bad(&self.path, "run time"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_last_parenthesis() {
        let stat = "42 (a) b (c)) S 1 42 42 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 5 0 0";
        assert_eq!(parse_stat_ticks(stat), Some((7, 3)));
        assert_eq!(parse_stat_ticks("42 (short) S 1"), None);
        let cpu = cpu_from_stat("stat", stat).unwrap();
        assert_eq!(
            (cpu.user, cpu.sys, cpu.total),
            (ticks(7), ticks(3), Duration::from_millis(100))
        );
    }

    #[test]
    fn status_fields_in_kib() {
        let status = "Name:\tx\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\nVmRSSX:\t1 kB\n";
        assert_eq!(parse_status_kib(status, "VmRSS"), Some(1024));
        assert_eq!(parse_status_kib(status, "VmHWM"), Some(2048));
        assert_eq!(parse_status_kib(status, "VmSwap"), None);
    }

    #[test]
    fn tcp_states_by_local_port() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000
   1: 0100007F:1F90 0100007F:C350 08 00000000:00000000
   2: 0100007F:C350 0100007F:1F90 05 00000000:00000000\n";
        assert_eq!(parse_tcp_states(table, 8080), ["0A", CLOSE_WAIT]);
        assert_eq!(parse_tcp_states(table, 50000), [FIN_WAIT2]);
    }

    #[test]
    fn this_process() {
        let me = std::process::id();
        let mut status = ProcFile::open("/proc/self/status").unwrap();
        assert!(status.status_kib("VmRSS").unwrap() > 0);
        let mem = memory(me).unwrap();
        assert!(mem.hwm >= mem.rss && mem.hwm / 1024 <= status_kib(me, "VmHWM").unwrap());
        assert!(process_cpu(me).is_ok());
        assert!(ProcFile::open("/proc/thread-self/schedstat")
            .unwrap()
            .schedstat()
            .is_ok());
        assert!(open_fds().unwrap() >= 1); // `status` above
        assert!(process_fds(me).unwrap() >= 1);
    }
}
