//! Child processes: a bounded runner, the example servers, the clients'
//! interpreters, and this test binary re-executed under a descriptor limit.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Mutex, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::DEADLINE;

/// Output bytes as text, for messages and comparisons.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Kills a process that outlives its limit.
pub struct Watchdog {
    done: mpsc::Sender<()>,
    thread: JoinHandle<bool>,
}

impl Watchdog {
    /// Watch process `pid`: `kill -KILL` it once `limit` has passed.
    pub fn new(pid: u32, limit: Duration) -> Watchdog {
        let (done, watch) = mpsc::channel::<()>();
        let thread = thread::spawn(move || {
            if let Err(RecvTimeoutError::Timeout) = watch.recv_timeout(limit) {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
                return true;
            }
            false
        });
        Watchdog { done, thread }
    }

    /// Stop watching; whether the process had to be killed.
    pub fn disarm(self) -> bool {
        let _ = self.done.send(());
        self.thread.join().unwrap()
    }
}

/// Run `cmd` to completion with `input` on its stdin (closed at once when
/// empty) and its output captured; kill it and fail if it takes longer
/// than `limit`.
#[track_caller]
pub fn run_bounded(cmd: &mut Command, input: &[u8], limit: Duration) -> Output {
    let stdin = if input.is_empty() {
        Stdio::null()
    } else {
        Stdio::piped()
    };
    let mut child = cmd
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let dog = Watchdog::new(child.id(), limit);
    // Written from a thread: a child that writes a lot before it reads
    // would otherwise block us both.
    let writer = child.stdin.take().map(|mut pipe| {
        let data = input.to_vec();
        thread::spawn(move || {
            let _ = pipe.write_all(&data);
        })
    });
    let out = child.wait_with_output().expect("wait for the child");
    let killed = dog.disarm();
    if let Some(w) = writer {
        w.join().unwrap();
    }
    assert!(
        !killed,
        "{cmd:?} did not finish within {limit:?}\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    out
}

/// Run `cmd` to completion with stdin closed and output captured; kill it
/// and fail if it takes longer than [`DEADLINE`].
#[track_caller]
pub fn run(cmd: &mut Command) -> Output {
    run_bounded(cmd, &[], DEADLINE)
}

// ---------------------------------------------------------------------------
// The clients' interpreters
// ---------------------------------------------------------------------------

/// `tests/clients/<name>`.
pub fn client_script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients")
        .join(name)
}

/// An interpreter's own executable, resolved once (`python3` may be a slow
/// version-manager shim); fails loudly when the tool is missing.
fn interpreter(tool: &str, cell: &'static OnceLock<String>, probe: &[&str]) -> &'static str {
    cell.get_or_init(|| match Command::new(tool).args(probe).output() {
        Ok(o) if o.status.success() => text(&o.stdout).trim().to_string(),
        other => panic!("{tool} is required by this test (it is on the CI machine): {other:?}"),
    })
}

/// Python 3's own executable.
pub fn python_exe() -> &'static str {
    static EXE: OnceLock<String> = OnceLock::new();
    interpreter(
        "python3",
        &EXE,
        &["-c", "import sys; print(sys.executable)"],
    )
}

/// `socat`'s executable; fails loudly when it is missing (CI installs it).
pub fn socat_exe() -> &'static str {
    static EXE: OnceLock<String> = OnceLock::new();
    EXE.get_or_init(|| {
        let ok = Command::new("socat")
            .arg("-V")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok,
            "socat is required by this test (apt-get install socat; .ci/run installs it)"
        );
        "socat".to_string()
    })
}

/// `python3 tests/clients/<script> args...`.
pub fn python(script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python_exe());
    cmd.arg(client_script(script)).args(args);
    cmd
}

/// `node tests/clients/<script> args...`.
pub fn node(script: &str, args: &[&str]) -> Command {
    static EXE: OnceLock<String> = OnceLock::new();
    let exe = interpreter("node", &EXE, &["-e", "console.log(process.execPath)"]);
    let mut cmd = Command::new(exe);
    cmd.arg(client_script(script)).args(args);
    cmd
}

// ---------------------------------------------------------------------------
// Example servers
// ---------------------------------------------------------------------------

/// The programs of the `halfclose-tools` package; every other name is an
/// example of this crate.
const TOOLS: &[&str] = &["faultproxy", "halfclosed", "soak"];

/// The path of an example binary (or of a `halfclose-tools` binary, see
/// [`TOOLS`]), built on first use into the target directory and profile
/// of this test binary (`cargo test` builds examples too; the explicit
/// build makes a single `--test` run work, and catches a stale binary).
pub fn example_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // <target-dir>/<profile>/deps/<test>
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile> directory");
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = profile_dir
        .file_name()
        .and_then(|p| p.to_str())
        .expect("profile directory name");
    let tool = TOOLS.contains(&name);
    let path = if tool {
        profile_dir.join(name)
    } else {
        profile_dir.join("examples").join(name)
    };
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let mut built = BUILT.lock().unwrap_or_else(|p| p.into_inner());
    if built.iter().any(|b| b == name) {
        return path;
    }
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "--quiet", "--target-dir"])
        .arg(target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if tool {
        cmd.args(["-p", "halfclose-tools", "--bin", name]);
    } else {
        cmd.args(["-p", "halfclose", "--example", name]);
    }
    // The same features as this test binary, so that the build does not
    // undo the one `cargo test` made.
    if cfg!(feature = "tls") {
        cmd.args(["--features", "tls"]);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "{cmd:?} failed");
    assert!(path.exists(), "{} not found", path.display());
    built.push(name.to_string());
    path
}

/// A child's output, line by line, read on a thread of its own (so the
/// child never blocks on a full pipe).
pub struct Lines {
    name: String,
    rx: Receiver<String>,
    /// Every line received so far.
    pub seen: Vec<String>,
    reader: Option<JoinHandle<()>>,
}

impl Lines {
    /// Read `out` of child `name` (named in failure messages).
    pub fn new(name: &str, out: impl Read + Send + 'static) -> Lines {
        let (tx, rx) = mpsc::channel();
        let reader = thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines {
            name: name.to_string(),
            rx,
            seen: Vec::new(),
            reader: Some(reader),
        }
    }

    /// The next line, waiting at most `wait`; `None` if none came in time
    /// or the output ended.
    pub fn next_line(&mut self, wait: Duration) -> Option<String> {
        let line = self.rx.recv_timeout(wait).ok()?;
        self.seen.push(line.clone());
        Some(line)
    }

    /// The next line containing `tag`, from `tag` on, waiting at most
    /// `wait` (`None` then). Panics if the output ended first (the child
    /// exited).
    #[track_caller]
    pub fn find(&mut self, tag: &str, wait: Duration) -> Option<String> {
        let until = Instant::now() + wait;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => {
                    let found = line.find(tag).map(|i| line[i..].to_string());
                    self.seen.push(line);
                    if found.is_some() {
                        return found;
                    }
                }
                Err(RecvTimeoutError::Timeout) => return None,
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{}: the output ended before a line with {tag:?}:\n{}",
                    self.name,
                    self.seen.join("\n")
                ),
            }
        }
    }

    /// Wait (bounded by [`DEADLINE`]) for a line containing `needle`;
    /// returns it from `needle` on.
    #[track_caller]
    pub fn expect(&mut self, needle: &str) -> String {
        self.find(needle, DEADLINE).unwrap_or_else(|| {
            panic!(
                "{}: no line with {needle:?} within {DEADLINE:?}; so far:\n{}",
                self.name,
                self.seen.join("\n")
            )
        })
    }

    /// Every line received so far, without waiting.
    pub fn received(&mut self) -> &[String] {
        self.seen.extend(self.rx.try_iter());
        &self.seen
    }

    /// Every line, once the output has ended (the child exited).
    pub fn finish(mut self) -> Vec<String> {
        if let Some(t) = self.reader.take() {
            t.join().expect("output reader");
        }
        self.seen.extend(self.rx.try_iter());
        self.seen
    }
}

/// A running example server; killed on drop if still running.
pub struct Server {
    pub name: String,
    pub child: Child,
    /// Where it listens, from its `listening on ADDR` line.
    pub at: halfclose::Addr,
    /// The same, for a TCP server (unspecified for a Unix socket).
    pub addr: SocketAddr,
    pub stdout: BufReader<ChildStdout>,
    /// Its stderr, when started with [`Server::start_logged`].
    pub log: Option<Lines>,
}

impl Server {
    /// Start example `name` with `args` (which should include `--listen
    /// 127.0.0.1:0`) and read its first stdout line, `listening on IP:PORT`.
    pub fn start(name: &str, args: &[&str]) -> Server {
        Server::spawn(name, args, None)
    }

    /// [`Server::start`], with `RUST_LOG` set to `filter` and the stderr
    /// lines in [`Server::log`].
    pub fn start_logged(name: &str, args: &[&str], filter: &str) -> Server {
        Server::spawn(name, args, Some(filter))
    }

    fn spawn(name: &str, args: &[&str], filter: Option<&str>) -> Server {
        let mut cmd = Command::new(example_bin(name));
        cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped());
        match filter {
            Some(filter) => cmd
                .env("RUST_LOG", filter)
                .env_remove("RUST_LOG_STYLE")
                .stderr(Stdio::piped()),
            None => cmd.stderr(Stdio::inherit()),
        };
        let mut child = cmd.spawn().expect("spawn example");
        let log = child.stderr.take().map(|e| Lines::new(name, e));
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        stdout.read_line(&mut line).expect("read first line");
        let at: halfclose::Addr = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("{name}: unexpected first line {line:?}"))
            .parse()
            .expect("address");
        let addr = at
            .inet()
            .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        Server {
            name: name.to_string(),
            child,
            at,
            addr,
            stdout,
            log,
        }
    }

    /// Send `signal` (`-TERM`, `-INT`, ...) with `kill`; whether it was
    /// delivered.
    pub fn signal(&self, signal: &str) -> bool {
        Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success())
    }

    /// Wait (bounded by [`DEADLINE`]) for a line of the captured stderr
    /// containing `needle`.
    #[track_caller]
    pub fn expect_log(&mut self, needle: &str) -> String {
        self.log
            .as_mut()
            .expect("stderr captured: start with Server::start_logged")
            .expect(needle)
    }

    /// Send SIGTERM (via `kill`) and wait for the exit status, bounded by
    /// [`DEADLINE`].
    pub fn terminate(mut self) -> ExitStatus {
        self.signal("-TERM");
        self.wait_exit()
    }

    /// Wait for the process to exit, bounded by [`DEADLINE`] (then kill it
    /// and fail).
    pub fn wait_exit(&mut self) -> ExitStatus {
        let dog = Watchdog::new(self.child.id(), DEADLINE);
        let status = self.child.wait().expect("wait");
        let killed = dog.disarm();
        assert!(!killed, "{} did not exit within {DEADLINE:?}", self.name);
        status
    }

    /// Wait (bounded) for the process to exit; its status and its whole
    /// captured stderr (empty if not captured).
    pub fn exit(mut self) -> (ExitStatus, Vec<String>) {
        let status = self.wait_exit();
        let log = self.log.take().map(Lines::finish).unwrap_or_default();
        (status, log)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// SIGTERM drains `server` and it exits 0.
#[track_caller]
pub fn assert_clean_exit(server: Server) {
    let status = server.terminate();
    assert!(
        status.success(),
        "SIGTERM should drain and exit 0, got {status:?}"
    );
}

// ---------------------------------------------------------------------------
// This test binary in a child process
// ---------------------------------------------------------------------------

/// Whether `prlimit` (util-linux) can be run.
fn has_prlimit() -> bool {
    Command::new("prlimit")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// This test binary, re-executed to run test `test` alone (`--exact`,
/// ignored tests included, output not captured, one thread) with `env` set
/// to `value`, under a descriptor limit of `nofile` (soft and hard) if
/// given: through `prlimit`, or `ulimit -n` in `sh` where there is no
/// prlimit. Stdin is closed, stdout and stderr are piped.
///
/// `test` is the test's full path in its binary, as `--list` prints it:
/// `reactor::connect_accept::d1_child_under_emfile` in a binary with
/// modules, the bare function name in a single-file one. A wrong path
/// runs no test, which [`run_child`] reports as a failure.
pub fn child_command(test: &str, env: &str, value: &str, nofile: Option<usize>) -> Command {
    let exe = std::env::current_exe().expect("test executable");
    let mut cmd = match nofile {
        Some(n) if has_prlimit() => {
            let mut c = Command::new("prlimit");
            c.arg(format!("--nofile={n}:{n}")).arg("--").arg(&exe);
            c
        }
        Some(n) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                .arg(&exe);
            c
        }
        None => Command::new(&exe),
    };
    cmd.args([
        test,
        "--exact",
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ])
    .env(env, value)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    cmd
}

/// Run test `test` in a child process ([`child_command`]), bounded by
/// `limit`, and check that it ran and passed; its output.
#[track_caller]
pub fn run_child(
    test: &str,
    env: &str,
    value: &str,
    nofile: Option<usize>,
    limit: Duration,
) -> Output {
    let out = run_bounded(&mut child_command(test, env, value, nofile), &[], limit);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        out.status.success(),
        "{test} failed in its child: {}\n{stdout}\n{stderr}",
        out.status
    );
    assert!(
        stdout.contains("1 passed"),
        "the child did not run {test}:\n{stdout}\n{stderr}"
    );
    out
}

/// The lines of a child's stdout that contain `tag`, each from `tag` on;
/// fails if there is none. Printed too, to show with `--nocapture`.
#[track_caller]
pub fn tagged_lines(out: &Output, tag: &str) -> Vec<String> {
    let stdout = text(&out.stdout);
    let lines: Vec<String> = stdout
        .lines()
        .filter_map(|l| l.find(tag).map(|i| l[i..].to_string()))
        .collect();
    assert!(
        !lines.is_empty(),
        "no {tag} line from the child\n{stdout}\n{}",
        text(&out.stderr)
    );
    for l in &lines {
        println!("{l}");
    }
    lines
}

/// The value of `env` in a child started by [`child_command`]; `None` in a
/// normal run, where the child's test body does nothing.
pub fn child_value(env: &str) -> Option<String> {
    std::env::var(env).ok()
}

/// Whether this process is a child started by [`child_command`] with `env`.
pub fn is_child(env: &str) -> bool {
    std::env::var_os(env).is_some()
}

/// One `... closed: <reason> (in N, out N, dropped N)` line of the core,
/// as an example server logs it at debug level.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Close {
    pub reason: String,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub dropped: u64,
}

/// The close a log line reports, if it is one.
pub fn parse_close(line: &str) -> Option<Close> {
    if !line.contains("halfclose::core]") {
        return None;
    }
    let rest = line.split_once(" closed: ")?.1;
    let (reason, tail) = rest.rsplit_once(" (in ")?;
    let nums: Vec<u64> = tail
        .trim_end_matches(')')
        .split(", ")
        .map(|f| f.rsplit(' ').next().unwrap_or("").parse())
        .collect::<Result<_, _>>()
        .ok()?;
    match nums[..] {
        [bytes_in, bytes_out, dropped] => Some(Close {
            reason: reason.to_string(),
            bytes_in,
            bytes_out,
            dropped,
        }),
        _ => None,
    }
}
