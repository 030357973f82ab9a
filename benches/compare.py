#!/usr/bin/env python3
"""Side-by-side benchmark of the half-close echo servers (issue 4, runner).

Started by benches/compare.sh, which builds everything first:

    benches/compare.sh [--quick] [--only SCENARIOS] [--servers NAMES] [--out DIR]
    python3 benches/compare.py --replot DIR      # table and plot again from DIR/compare.json

Each server runs alone, pinned to core 0 (`taskset -c 0`); the load runs
pinned to core 1. Everything talks over loopback: servers listen on
127.0.0.1; the halfclosed client takes its source addresses from
127.0.0.2-127.0.0.33, so the TIME_WAIT sockets that churn leaves behind do
not use up the ephemeral ports of 127.0.0.1 that other programs on this
machine bind.

Scenarios (full size; --quick shrinks them):
  churn     half-close echo, 64-byte requests, concurrency 200, 50,000 exchanges,
            5 repetitions going round the servers; each figure's median is reported
  syscalls  strace -c -f on the server during a 5,000-exchange churn run
  held      as many concurrent half-closed connections as one process holds
            (19,000: the hard fd limit here is 20,000), hold 15 s
  held100k  100,000 held connections across 6 server processes sharing the port
            (SO_REUSEPORT) and 6 client processes, hold 45 s
  echo      64-byte messages echoed over 1,000 persistent connections, 300,000 messages,
            3 repetitions, as for churn
  unix      churn and held again over a Unix stream socket (a socket file in a
            temporary directory, removed afterwards), for the servers that have a
            Unix socket mode (halfclose, mio): CPU per connection (median of the
            churn repetitions) and bytes per held connection
  tls       churn over TLS 1.3: a full handshake, the request, close_notify + FIN,
            the reply, the server's close_notify + FIN; 20,000 exchanges at
            concurrency 200, 5 repetitions going round the servers, for the servers
            with a TLS mode (halfclose, tokio with tokio-rustls, Node.js tls); the
            others are marked "no TLS mode". One certificate (ECDSA P-256, made with
            openssl for this run) for every server; the load is the halfclosed
            client over halfclose's own TLS client (rustls on ring), the same for all
  http      HTTP/1.1 `GET /` (a 21-byte body) against examples/http_server and
            nginx (one process, `master_process off`, `access_log off`, `return 200`,
            config generated in a temporary directory), loaded by wrk (one thread,
            50 connections, 10 s): (a) keep-alive, (b) `Connection: close` (a new
            connection per request); 5 repetitions going round the servers and modes,
            each figure's median reported. Server CPU per request (utime + stime and
            schedstat), wrk's own CPU per request, machine-wide CPU per request
            (/proc/stat), requests/s, latency, non-2xx/3xx and socket errors, TCP
            counter deltas (segments, resets) and which side holds TIME_WAIT;
            --http-baseline BIN adds an earlier build of the example (server
            `before`) to the rotation; `--servers halfclose` leaves nginx out

Measures: server CPU time (utime + stime of /proc/PID/stat, before and after
the load, per connection or message), conn/s and latency (the client's
JSON), server peak RSS (VmHWM) and RSS per held connection above the idle
baseline (VmRSS after a warm-up, before the load), the peak number of
half-closed server sockets (CLOSE_WAIT on the server port, sampled with
ss; over a Unix socket, which has no CLOSE_WAIT, the server's connected
sockets on the path, ss -x), and syscalls per connection (strace -c). The halfclose server is
halfclosed --server-only (tools/src/halfclosed, the binary of
`cargo build --release -p halfclose-tools --bin halfclosed`; examples/echo.rs
for echo; target/release/halfclosed-tls, built with --features tls, for tls); the peers are in benches/peers/. Scenario C's load is echo_load from
benches/peers/rust, as the halfclosed client has no persistent mode. Results: DIR/compare.json,
DIR/compare.md (the table) and DIR/compare.svg (the plot).
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HC = os.path.join(ROOT, "target/release/halfclosed")
# The same binary built with --features tls (compare.sh copies it aside):
# server and client of the tls scenario.
HC_TLS = os.path.join(ROOT, "target/release/halfclosed-tls")
ECHO = os.path.join(ROOT, "target/release/examples/echo")
PEERS = os.path.join(ROOT, "benches/peers")
RUST_BIN = os.path.join(PEERS, "rust/target/release")
ECHO_LOAD = os.path.join(RUST_BIN, "echo_load")
PYTHON = os.environ.get("PYTHON311", "python3.11")
NODE = os.environ.get("NODE", "node")

SERVER_CORE = "0"
CLIENT_CORE = "1"
LISTEN = "127.0.0.1:0"
SOURCES = "127.0.0.2-127.0.0.33"
CLK_TCK = os.sysconf("SC_CLK_TCK")

FULL = dict(
    churn_conns=50_000, churn_conc=200, churn_reps=5, warmup=2_000,
    sys_conns=5_000,
    held_conns=19_000, held_hold_ms=15_000, held_warmup=500,
    big_conns=100_000, big_procs=6, big_hold_ms=45_000,
    echo_conns=1_000, echo_msgs=300_000, echo_warmup=20_000, echo_reps=3,
    tls_conns=20_000, tls_reps=5, tls_warmup=1_000,
    http_secs=10, http_reps=5, http_warmup_secs=2, http_conns=50,
)
QUICK = dict(
    churn_conns=10_000, churn_conc=200, churn_reps=1, warmup=1_000,
    sys_conns=2_000,
    held_conns=4_000, held_hold_ms=5_000, held_warmup=200,
    big_conns=12_000, big_procs=3, big_hold_ms=10_000,
    echo_conns=200, echo_msgs=50_000, echo_warmup=5_000, echo_reps=1,
    tls_conns=3_000, tls_reps=1, tls_warmup=500,
    http_secs=3, http_reps=1, http_warmup_secs=1, http_conns=50,
)
SCENARIOS = ["churn", "syscalls", "held", "held100k", "echo", "unix", "tls", "http"]
# The http scenario's servers (not in SPECS: they speak HTTP, not the
# half-close echo); --servers takes their names too.
HTTP_SERVER = os.path.join(ROOT, "target/release/examples/http_server")
HTTP_SERVERS = {"halfclose": "halfclose (examples/http_server)", "nginx": "nginx"}
HTTP_BODY = "hello from halfclose\n"


LIVE = set()  # child processes, ended if the runner is stopped


def stop_children(signum, _frame):
    for p in list(LIVE):
        if p.poll() is None:
            p.kill()
    sys.exit(128 + signum)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The servers


class Spec:
    """How to start one server: argv for the half-close echo and for echo."""

    def __init__(self, name, label, argv, echo_argv, reuseport, note="", unix=False, tls=None):
        self.name = name
        self.label = label
        self._argv = argv
        self._echo_argv = echo_argv
        self.reuseport = reuseport  # None when several processes cannot share a port
        self.note = note
        self.unix = unix  # its --listen takes a Unix socket path
        # With (cert, key) PEM paths: argv of its TLS mode (None: it has none).
        self._tls_argv = tls

    @property
    def tls(self):
        return self._tls_argv is not None

    def argv(self, hold_ms=0, reuseport=False, echo=False, timeout_s=3600, listen=LISTEN, tls=None):
        if echo:
            return self._echo_argv()
        if tls:
            argv = self._tls_argv(hold_ms, timeout_s) + ["--tls-cert", tls[0], "--tls-key", tls[1]]
        else:
            argv = self._argv(hold_ms, timeout_s)
        if listen != LISTEN:
            argv = [listen if a == LISTEN else a for a in argv]
        if reuseport:
            argv = argv + self.reuseport
        return argv


def peer_args(hold_ms):
    a = ["--listen", LISTEN]
    if hold_ms:
        a += ["--hold-ms", str(hold_ms)]
    return a


def is_unix(addr):
    """A Unix socket's address: a path, or @name (abstract)."""
    return addr[:1] in ("/", ".", "@")


SPECS = [
    Spec(
        "halfclose", "halfclose (this crate)",
        lambda h, t: [HC, "--server-only", "--json", "--timeout", str(t)] + peer_args(h),
        lambda: [ECHO, "--listen", LISTEN],
        # SO_REUSEPORT is set when a process runs several reactors.
        ["--threads", "2"],
        unix=True,
        tls=lambda h, t: [HC_TLS, "--server-only", "--json", "--timeout", str(t)] + peer_args(h),
    ),
    Spec(
        "halfclose-boxed", "halfclose, each handler boxed (Reactor::new's storage)",
        lambda h, t: [HC, "--server-only", "--boxed-handlers", "--json", "--timeout", str(t)]
        + peer_args(h),
        # The echo example's zero-sized handler costs no allocation either way.
        lambda: [ECHO, "--listen", LISTEN],
        ["--threads", "2"],
    ),
    Spec(
        "mio", "raw mio loop",
        lambda h, t: [os.path.join(RUST_BIN, "peer_mio")] + peer_args(h),
        lambda: [os.path.join(RUST_BIN, "peer_mio"), "--listen", LISTEN, "--echo"],
        ["--reuseport"],
        unix=True,
    ),
    Spec(
        "tokio", "tokio current_thread",
        lambda h, t: [os.path.join(RUST_BIN, "peer_tokio")] + peer_args(h),
        lambda: [os.path.join(RUST_BIN, "peer_tokio"), "--listen", LISTEN, "--echo"],
        ["--reuseport"],
        tls=lambda h, t: [os.path.join(RUST_BIN, "peer_tokio")] + peer_args(h),
    ),
    Spec(
        "node", "Node.js net",
        lambda h, t: [NODE, os.path.join(PEERS, "node/peer.js")] + peer_args(h),
        lambda: [NODE, os.path.join(PEERS, "node/peer.js"), "--listen", LISTEN, "--echo"],
        None,
        note="Node 20 has no SO_REUSEPORT (reusePort came in 22.12)",
        tls=lambda h, t: [NODE, os.path.join(PEERS, "node/peer.js")] + peer_args(h),
    ),
    Spec(
        "asyncio", "Python asyncio",
        lambda h, t: [PYTHON, os.path.join(PEERS, "python/peer_asyncio.py")] + peer_args(h),
        lambda: [PYTHON, os.path.join(PEERS, "python/peer_asyncio.py"), "--listen", LISTEN, "--echo"],
        ["--reuseport"],
    ),
    Spec(
        "asyncore", "Python asyncore",
        lambda h, t: [PYTHON, os.path.join(PEERS, "python/peer_asyncore.py")] + peer_args(h),
        lambda: [PYTHON, os.path.join(PEERS, "python/peer_asyncore.py"), "--listen", LISTEN, "--echo"],
        ["--reuseport"],
    ),
]


# ---------------------------------------------------------------------------
# /proc


def proc_cpu(pid):
    """utime + stime of a process, seconds (clock ticks of /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return (int(rest[11]) + int(rest[12])) / CLK_TCK


def proc_cpu_split(pid):
    """(utime, stime) of a process, seconds."""
    with open(f"/proc/{pid}/stat") as f:
        rest = f.read().rsplit(")", 1)[1].split()
    return int(rest[11]) / CLK_TCK, int(rest[12]) / CLK_TCK


def proc_runtime(pid):
    """Time on a CPU of every thread of a process, seconds: the first field
    of each /proc/PID/task/TID/schedstat, in nanoseconds (threads that
    ended are not counted; the servers' threads live as long as they)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except (OSError, ValueError, IndexError):
            pass
    return total / 1e9


def proc_mem(pid):
    """(VmRSS, VmHWM) in bytes."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                k, v = line.split(":", 1)
                out[k] = int(v.split()[0]) * 1024
    return out.get("VmRSS", 0), out.get("VmHWM", 0)


def tcp_ext():
    """A few machine-wide TCP counters (listen queue overflows, resets)."""
    counters = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            prefix = names.split(":")[0]
            for k, v in zip(names.split()[1:], values.split()[1:]):
                counters[f"{prefix}.{k}"] = int(v)
    keys = ["TcpExt.ListenOverflows", "TcpExt.ListenDrops", "Tcp.OutRsts", "Tcp.AttemptFails"]
    return {k: counters.get(k, 0) for k in keys}


def delta(after, before):
    return {k: after[k] - before[k] for k in after}


def unix_conns(path):
    """Server sockets connected on the Unix socket `path` (the listener is
    not counted): the connections the server holds."""
    try:
        out = subprocess.run(
            ["ss", "-Hx", "src", path], capture_output=True, timeout=20, check=False,
        ).stdout
    except subprocess.TimeoutExpired:
        return 0
    return out.count(b"\n")


def close_wait(port):
    """Server sockets on `port` that got the client's FIN and are not closed yet."""
    try:
        out = subprocess.run(
            ["ss", "-Htn", "state", "close-wait", f"( sport = :{port} )"],
            capture_output=True, timeout=20, check=False,
        ).stdout
    except subprocess.TimeoutExpired:
        return 0
    return out.count(b"\n")


# ---------------------------------------------------------------------------
# Processes


class Server:
    """A server process pinned to the server core; `listening on` read:
    IP:PORT (`port` set), or a Unix socket's path or @name (`port` None)."""

    def __init__(self, argv, logdir, tag):
        self.argv = ["taskset", "-c", SERVER_CORE] + argv
        self.err = open(os.path.join(logdir, f"{tag}.server.log"), "ab")
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, stderr=self.err, cwd=ROOT)
        LIVE.add(self.proc)
        self.pid = self.proc.pid  # taskset execs the server: same pid
        self.lines = []
        line = self._first_line(15)
        m = re.match(r"listening on (\S+)$", line.strip())
        if not m:
            self.stop()
            raise RuntimeError(f"{' '.join(argv)}: expected `listening on ADDR`, got {line!r}")
        self.addr = m.group(1)
        if is_unix(self.addr):
            self.port = None
        else:
            self.port = int(self.addr.rsplit(":", 1)[1])
        self._drain = threading.Thread(target=self._read_rest, daemon=True)
        self._drain.start()

    def _first_line(self, timeout):
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None and not select.select([fd], [], [], 0)[0]:
                return buf.decode(errors="replace")
            if select.select([fd], [], [], min(left, 0.5))[0]:
                chunk = os.read(fd, 4096)
                if not chunk:
                    return buf.decode(errors="replace")
                buf += chunk
        first, _, rest = buf.partition(b"\n")
        if rest:
            self.lines.append(rest.decode(errors="replace"))
        return first.decode(errors="replace")

    def _read_rest(self):
        for line in self.proc.stdout:
            self.lines.append(line.decode(errors="replace"))

    def cpu(self):
        return proc_cpu(self.pid)

    def mem(self):
        return proc_mem(self.pid)

    def stop(self, timeout=15):
        """SIGTERM, then SIGKILL after `timeout`; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        LIVE.discard(self.proc)
        if hasattr(self, "_drain"):
            self._drain.join(5)
        self.err.close()
        return self.proc.returncode

    def json_out(self):
        """The last JSON object the server printed (halfclosed --json)."""
        for line in reversed("".join(self.lines).splitlines()):
            if line.startswith("{"):
                try:
                    return json.loads(line)
                except ValueError:
                    return None
        return None


def run_json(argv, timeout, logfile, core=CLIENT_CORE):
    """Runs a load generator pinned to the client core; its JSON stdout."""
    with open(logfile, "ab") as err:
        p = subprocess.Popen(["taskset", "-c", core] + argv, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        LIVE.add(p)
        try:
            stdout, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.communicate()
            return {"timed_out": True}
        finally:
            LIVE.discard(p)
    for line in reversed(stdout.decode(errors="replace").splitlines()):
        if line.startswith("{"):
            out = json.loads(line)
            out["exit_status"] = p.returncode
            return out
    return {"exit_status": p.returncode, "no_json": True}


def hc_client(addr, conns, conc, timeout_s, extra=(), tls_ca=None):
    """The halfclosed client. In the held scenarios `extra` passes the
    server's hold with --hold-ms: the client waits that much longer for a
    reply before it gives up on a connection. A Unix socket has no source
    address: --sources is for TCP only. With `tls_ca` (a PEM file) the
    client speaks TLS and trusts that certificate (the TLS build)."""
    sources = [] if is_unix(addr) else ["--sources", SOURCES]
    tls = [] if tls_ca is None else ["--tls-ca", tls_ca]
    return [
        HC if tls_ca is None else HC_TLS, "--client-only", "--connect", addr,
        "--connections", str(conns), "--concurrency", str(conc), "--request-bytes", "64",
        *sources, *tls, "--timeout", str(timeout_s), "--json", *extra,
    ]


def client_summary(out):
    c = out.get("client", {}) if isinstance(out, dict) else {}
    return {
        "completed": c.get("completed", 0),
        "errors": c.get("errors") if "errors" in c else None,
        "error_kinds": c.get("error_kinds", {}),
        "conn_per_s": c.get("conn_per_s"),
        "latency_us_p50": c.get("latency_us_p50"),
        "latency_us_p99": c.get("latency_us_p99"),
        "latency_us_p999": c.get("latency_us_p999"),
        "latency_us_max": c.get("latency_us_max"),
        "wall_s": c.get("wall_s"),
        "client_cpu_us_per_conn": c.get("cpu_us_per_conn"),
        "timed_out": out.get("timed_out", False),
    }


class Sampler(threading.Thread):
    """Samples RSS of the server processes and the held connections:
    CLOSE_WAIT on the port, or the connected sockets on a Unix path."""

    def __init__(self, servers, addr, port, period):
        super().__init__(daemon=True)
        self.servers = servers
        self.count = (lambda: unix_conns(addr)) if port is None else (lambda: close_wait(port))
        self.period = period
        self.peak_held = 0
        self.peak_rss = 0
        self.stop_flag = threading.Event()

    def run(self):
        while not self.stop_flag.is_set():
            held = self.count()
            rss = 0
            for s in self.servers:
                try:
                    rss += s.mem()[0]
                except OSError:
                    pass
            self.peak_held = max(self.peak_held, held)
            self.peak_rss = max(self.peak_rss, rss)
            self.stop_flag.wait(self.period)

    def finish(self):
        self.stop_flag.set()
        self.join(30)


# ---------------------------------------------------------------------------
# Scenarios


def warm_up(server, n, logfile, tls_ca=None):
    if n:
        run_json(hc_client(server.addr, n, 200, 120, tls_ca=tls_ca), 180, logfile)


def churn(spec, P, logdir, rep, unix_dir=None, tls=None):
    """One repetition of the churn scenario against a fresh server process;
    with `unix_dir`, over a Unix socket file in it; with `tls` (the
    certificate's and the key's PEM files), over TLS, at the tls
    scenario's sizes."""
    kind = "unix " if unix_dir else "tls " if tls else ""
    tag = f"{kind.strip()}{'-' if kind else ''}churn-{spec.name}-{rep}"
    listen = os.path.join(unix_dir, f"{tag}.sock") if unix_dir else LISTEN
    ca = tls[0] if tls else None
    conns, warmup = (P["tls_conns"], P["tls_warmup"]) if tls else (P["churn_conns"], P["warmup"])
    srv = Server(spec.argv(listen=listen, tls=tls), logdir, tag)
    try:
        warm_up(srv, warmup, os.path.join(logdir, f"{tag}.client.log"), tls_ca=ca)
        time.sleep(0.3)
        tcp0, split0, rt0 = tcp_ext(), proc_cpu_split(srv.pid), proc_runtime(srv.pid)
        out = run_json(
            hc_client(srv.addr, conns, P["churn_conc"], 600, tls_ca=ca), 660,
            os.path.join(logdir, f"{tag}.client.log"),
        )
        rt1, split1, tcp1 = proc_runtime(srv.pid), proc_cpu_split(srv.pid), tcp_ext()
        cpu0, cpu1 = sum(split0), sum(split1)
        rss, hwm = srv.mem()
    finally:
        srv.stop()
    c = client_summary(out)
    c.update(
        server_cpu_s=cpu1 - cpu0,
        server_user_s=split1[0] - split0[0],
        server_sys_s=split1[1] - split0[1],
        cpu_us_per_conn=(cpu1 - cpu0) * 1e6 / c["completed"] if c["completed"] else None,
        # The same time from schedstat, in ns rather than 10 ms ticks.
        runtime_us_per_conn=(rt1 - rt0) * 1e6 / c["completed"] if c["completed"] else None,
        rss_bytes=rss, hwm_bytes=hwm, tcp=delta(tcp1, tcp0),
    )
    log(f"  {kind}churn {spec.name} rep {rep + 1}: {c['completed']} done, {c['errors']} errors, "
        f"{fmt(c['conn_per_s'], 0)} conn/s, server {fmt(c['cpu_us_per_conn'], 1)} µs/conn "
        f"(schedstat {fmt(c['runtime_us_per_conn'], 2)}) "
        f"(user {c['server_user_s']:.2f} s, sys {c['server_sys_s']:.2f} s)")
    return c


def median_of(reps):
    """Each numeric figure's median over the repetitions (the lower middle
    value of an even count); errors are summed."""
    ok = [r for r in reps if "failed" not in r]
    if not ok:
        return {"failed": reps[0]["failed"]} if reps else {}
    out = {}
    for key in ok[0]:
        vals = [r.get(key) for r in ok]
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
            out[key] = sorted(vals)[(len(vals) - 1) // 2]
    out["errors"] = sum((r.get("errors") or 0) for r in ok) + (len(reps) - len(ok))
    out["completed"] = sum((r.get("completed") or 0) for r in ok)
    out["repetitions"] = len(reps)
    return out


def parse_strace(path):
    calls, errors, by_call = 0, 0, {}
    with open(path) as f:
        for line in f:
            parts = line.split()
            if len(parts) < 5 or not parts[0][0].isdigit() and parts[0] != "100.00":
                continue
            if parts[-1] == "total":
                calls = int(parts[3])
                errors = int(parts[4]) if len(parts) == 6 else 0
                continue
            # % time, seconds, usecs/call, calls, [errors], syscall
            try:
                n = int(parts[3])
            except ValueError:
                continue
            by_call[parts[-1]] = n
    return calls, errors, by_call


def syscalls(spec, P, logdir):
    tag = f"syscalls-{spec.name}"
    srv = Server(spec.argv(), logdir, tag)
    trace = os.path.join(logdir, f"{tag}.strace")
    strace = None
    try:
        warm_up(srv, P["warmup"] // 2, os.path.join(logdir, f"{tag}.client.log"))
        strace_err = open(os.path.join(logdir, f"{tag}.strace.log"), "wb")
        strace = subprocess.Popen(
            ["strace", "-c", "-f", "-p", str(srv.pid), "-o", trace],
            stderr=strace_err, stdout=subprocess.DEVNULL,
        )
        LIVE.add(strace)
        # Attached when the tracee's TracerPid says so.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{srv.pid}/status") as f:
                if re.search(r"TracerPid:\s*[1-9]", f.read()):
                    break
            time.sleep(0.05)
        time.sleep(0.2)
        out = run_json(
            hc_client(srv.addr, P["sys_conns"], P["churn_conc"], 300), 360,
            os.path.join(logdir, f"{tag}.client.log"),
        )
        strace.send_signal(signal.SIGINT)  # detach; strace writes the summary
        strace.wait(30)
        strace_err.close()
    finally:
        if strace is not None:
            if strace.poll() is None:
                strace.kill()
                strace.wait(10)
            LIVE.discard(strace)
        srv.stop()
    c = client_summary(out)
    total, errs, by_call = parse_strace(trace)
    n = c["completed"] or 1
    per = {k: v / n for k, v in sorted(by_call.items(), key=lambda kv: -kv[1])}
    res = {
        "completed": c["completed"], "errors": c["errors"],
        "syscalls": total, "syscall_errors": errs,
        "per_conn": total / n if c["completed"] else None,
        "by_call_per_conn": {k: round(v, 3) for k, v in per.items() if v >= 0.005},
    }
    log(f"  syscalls {spec.name}: {fmt(res['per_conn'], 2)} per connection "
        f"({', '.join(f'{k} {v:.2f}' for k, v in list(res['by_call_per_conn'].items())[:6])})")
    return res


def held(spec, P, logdir, big=False, unix_dir=None):
    """Connections held at once (one process, or with `big` the 100k
    variant across processes); with `unix_dir`, one process over a Unix
    socket file in it."""
    conns = P["big_conns"] if big else P["held_conns"]
    hold_ms = P["big_hold_ms"] if big else P["held_hold_ms"]
    procs = P["big_procs"] if big else 1
    if big and spec.reuseport is None:
        return {"skipped": spec.note or "no SO_REUSEPORT"}
    tag = f"{'unix-' if unix_dir else ''}{'held100k' if big else 'held'}-{spec.name}"
    listen = os.path.join(unix_dir, f"{tag}.sock") if unix_dir else LISTEN
    servers = []
    try:
        for i in range(procs):
            argv = spec.argv(hold_ms=hold_ms, reuseport=big, listen=listen)
            if big and i > 0:
                argv = [a if a != LISTEN else servers[0].addr for a in argv]
            servers.append(Server(argv, logdir, f"{tag}-{i}"))
        addr, port = servers[0].addr, servers[0].port
        if not big:
            # Warm-up: one hold period of a few hundred held connections, so
            # that lazy start-up costs (JIT, heaps, runtime tables) are part
            # of the baseline and not of the per-connection figure.
            n = P["held_warmup"]
            run_json(hc_client(addr, n, n, hold_ms // 1000 + 120, ["--hold-ms", str(hold_ms)]),
                     hold_ms // 1000 + 180,
                     os.path.join(logdir, f"{tag}-warmup.client.log"))
        time.sleep(1.0)
        base = [s.mem()[0] for s in servers]
        cpu0 = [s.cpu() for s in servers]
        tcp0 = tcp_ext()
        sampler = Sampler(servers, addr, port, 0.5 if big else 0.25)
        sampler.start()
        per_client = [conns // procs + (1 if i < conns % procs else 0) for i in range(procs)]
        timeout_s = hold_ms // 1000 + 240
        outs = [None] * procs

        def client(i):
            outs[i] = run_json(
                hc_client(addr, per_client[i], per_client[i], timeout_s, ["--hold-ms", str(hold_ms)]),
                timeout_s + 60, os.path.join(logdir, f"{tag}-{i}.client.log"),
            )

        threads = [threading.Thread(target=client, args=(i,)) for i in range(procs)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        sampler.finish()
        tcp1 = tcp_ext()
        cpu1 = [s.cpu() for s in servers]
        mems = [s.mem() for s in servers]
    finally:
        codes = [s.stop() for s in servers]
    own = [s.json_out() for s in servers]
    cs = [client_summary(o) for o in outs]
    completed = sum(c["completed"] for c in cs)
    errors = sum(c["errors"] if c["errors"] is not None else per_client[i] for i, c in enumerate(cs))
    kinds = {}
    for c in cs:
        for k, v in c["error_kinds"].items():
            kinds[k] = kinds.get(k, 0) + v
    hwm = sum(m[1] for m in mems)
    baseline = sum(base)
    peak_held = sampler.peak_held
    res = {
        "processes": procs, "connections": conns, "hold_ms": hold_ms,
        "completed": completed, "errors": errors, "error_kinds": kinds,
        "peak_held": peak_held,
        "rss_baseline_bytes": baseline, "hwm_bytes": hwm,
        "rss_peak_sampled_bytes": sampler.peak_rss,
        "bytes_per_held": (hwm - baseline) / peak_held if peak_held else None,
        "server_cpu_s": sum(cpu1) - sum(cpu0),
        "cpu_us_per_conn": (sum(cpu1) - sum(cpu0)) * 1e6 / completed if completed else None,
        "latency_us_p50": max((c["latency_us_p50"] or 0) for c in cs),
        "latency_us_max": max((c["latency_us_max"] or 0) for c in cs),
        "wall_s": max((c["wall_s"] or 0) for c in cs),
        "tcp": delta(tcp1, tcp0),
        "exit_status": codes,
    }
    if own and own[0] and "server" in own[0]:
        res["server_own_peak_half_closed"] = sum(o["server"]["peak_half_closed"] for o in own if o)
    log(f"  {tag}: peak held {peak_held} of {conns}, {completed} done, {errors} errors, "
        f"{fmt(res['bytes_per_held'], 0)} B per held connection, HWM {hwm / 2**20:.1f} MiB")
    return res


def echo(spec, P, logdir, rep):
    """One repetition of the echo scenario against a fresh server process."""
    tag = f"echo-{spec.name}-{rep}"
    srv = Server(spec.argv(echo=True), logdir, tag)
    try:
        warm = [ECHO_LOAD, "--connect", srv.addr, "--connections", str(P["echo_conns"]),
                "--messages", str(P["echo_warmup"]), "--timeout", "120", "--json"]
        run_json(warm, 180, os.path.join(logdir, f"{tag}.client.log"))
        time.sleep(0.3)
        argv = [ECHO_LOAD, "--connect", srv.addr, "--connections", str(P["echo_conns"]),
                "--messages", str(P["echo_msgs"]), "--server-pid", str(srv.pid),
                "--timeout", "600", "--json"]
        out = run_json(argv, 660, os.path.join(logdir, f"{tag}.client.log"))
        rss, hwm = srv.mem()
    finally:
        srv.stop()
    res = {k: out.get(k) for k in (
        "completed", "errors", "msg_per_s", "latency_us_p50", "latency_us_p99",
        "latency_us_max", "server_cpu_s", "server_cpu_us_per_msg", "wall_s")}
    res["timed_out"] = out.get("timed_out", False)
    res["hwm_bytes"] = hwm
    log(f"  echo {spec.name} rep {rep + 1}: {res['completed']} messages, {res['errors']} errors, "
        f"{fmt(res['msg_per_s'], 0)} msg/s, server {fmt(res['server_cpu_us_per_msg'], 2)} µs/msg")
    return res


def rounds(fn, specs, reps, label, P, logdir, put, save, **over):
    """`reps` repetitions of `fn` (churn or echo; `over`: the transport, as
    `churn` takes it) going round `specs`, so that a change in the load of
    the machine falls on every server alike; after every run
    `put(name, {"reps", "median"})` and `save()`. A server that fails a run
    is logged under `label` and the run counted as failed; the others go
    on."""
    runs = {spec.name: [] for spec in specs}
    for rep in range(reps):
        for spec in specs:
            try:
                runs[spec.name].append(fn(spec, P, logdir, rep, **over))
            except Exception as e:  # one broken server does not end the run
                log(f"  {label} {spec.name}: FAILED: {e}")
                runs[spec.name].append({"failed": str(e)})
            put(spec.name, {"reps": runs[spec.name], "median": median_of(runs[spec.name])})
            save()


def unix(specs, P, logdir, results, save):
    """The unix scenario: churn (its repetitions going round the servers,
    as in churn) and then held, over a Unix socket file in a temporary
    directory that is removed afterwards, for the servers with a Unix
    socket mode; the others are marked as skipped."""
    for spec in specs:
        if not spec.unix:
            results["servers"][spec.name]["unix"] = {"skipped": "no Unix socket mode"}
    unix_specs = [s for s in specs if s.unix]
    tmp = tempfile.mkdtemp(prefix="compare-unix-")
    try:
        rounds(churn, unix_specs, P["churn_reps"], "unix churn", P, logdir,
               lambda n, r: results["servers"][n].__setitem__("unix", {"churn": r}), save, unix_dir=tmp)
        for spec in unix_specs:
            try:
                h = held(spec, P, logdir, unix_dir=tmp)
            except Exception as e:
                log(f"  unix held {spec.name}: FAILED: {e}")
                h = {"failed": str(e)}
            results["servers"][spec.name].setdefault("unix", {})["held"] = h
            save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def make_certificate(directory):
    """One self-signed certificate for localhost and 127.0.0.1 and its key
    (ECDSA P-256), PEM files in `directory`: (cert, key). Not a CA
    (basicConstraints CA:FALSE): webpki, which checks the halfclosed
    client's server certificates, refuses a CA certificate as a server's."""
    if not shutil.which("openssl"):
        raise RuntimeError("openssl is required for the tls scenario (apt-get install openssl)")
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-addext", "basicConstraints=critical,CA:FALSE",
         "-keyout", key, "-out", cert],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


def locked_versions(lockfile, names):
    """The versions of `names` in a Cargo.lock (a list each: a lock may
    hold two versions of one crate)."""
    found = {n: [] for n in names}
    try:
        with open(lockfile) as f:
            text = f.read()
    except OSError:
        return found
    for m in re.finditer(r'\[\[package\]\]\nname = "([^"]+)"\nversion = "([^"]+)"', text):
        if m.group(1) in found:
            found[m.group(1)].append(m.group(2))
    return found


def tls_versions():
    """What the TLS servers run on: rustls, ring and tokio-rustls in the
    two Cargo.lock files (halfclose's and the peers'), Node's OpenSSL;
    `same_rustls` says whether halfclose and tokio-rustls use one rustls."""
    names = ["rustls", "ring", "tokio-rustls"]
    root = locked_versions(os.path.join(ROOT, "Cargo.lock"), names)
    peers = locked_versions(os.path.join(PEERS, "rust/Cargo.lock"), names)
    node_openssl = subprocess.run(
        [NODE, "-p", "process.versions.openssl"], capture_output=True, text=True,
    ).stdout.strip()
    return {
        "halfclose": {k: v for k, v in root.items() if v},
        "peers": {k: v for k, v in peers.items() if v},
        "same_rustls": bool(root["rustls"]) and root["rustls"] == peers["rustls"]
        and root["ring"] == peers["ring"],
        "node_openssl": node_openssl,
    }


def tls_scenario(specs, P, logdir, results, save):
    """The tls scenario: churn over TLS (its repetitions going round the
    servers, as in churn) for the servers with a TLS mode, all serving one
    certificate made for the run in a temporary directory (removed
    afterwards) and loaded by the same TLS client; the others are marked
    as skipped."""
    versions = tls_versions()
    results["tls_versions"] = versions
    if not versions["same_rustls"]:
        log(f"  tls: WARNING: rustls or ring differ between halfclose and the peers: {versions}")
    for spec in specs:
        if not spec.tls:
            results["servers"][spec.name]["tls"] = {"skipped": "no TLS mode"}
    tls_specs = [s for s in specs if s.tls]
    tmp = tempfile.mkdtemp(prefix="compare-tls-")
    try:
        pem = make_certificate(tmp)
        rounds(churn, tls_specs, P["tls_reps"], "tls churn", P, logdir,
               lambda n, r: results["servers"][n].__setitem__("tls", {"churn": r}), save, tls=pem)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# The http scenario: HTTP/1.1 against nginx, loaded by wrk


NGINX_CONF = """\
# Generated by benches/compare.py for one run of the http scenario.
worker_processes 1;
daemon off;
master_process off;
error_log {tmp}/error.log warn;
pid {tmp}/nginx.pid;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 1000000000;
    keepalive_timeout 60s;
    client_body_temp_path {tmp}/client_body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            default_type text/plain;
            return 200 "{body}";
        }}
    }}
}}
"""


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on now (nginx has no
    port 0: the kernel's choice is taken and given back just before)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, timeout=15):
    import socket
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return True
        except OSError:
            time.sleep(0.05)
    return False


class NginxServer:
    """nginx as one process (`master_process off`: the process that accepts
    and answers is the one started, whose pid is measured), pinned to the
    server core, with a config generated in `tmp`."""

    def __init__(self, tmp, logdir, tag):
        self.port = None
        for _ in range(5):
            port = free_port()
            conf = os.path.join(tmp, f"{tag}.conf")
            with open(conf, "w") as f:
                f.write(NGINX_CONF.format(tmp=tmp, port=port, body=HTTP_BODY.replace("\n", "\\n")))
            self.err = open(os.path.join(logdir, f"{tag}.server.log"), "ab")
            argv = ["taskset", "-c", SERVER_CORE, "nginx", "-p", tmp, "-c", conf, "-e", os.path.join(tmp, "error.log")]
            self.proc = subprocess.Popen(argv, stdout=self.err, stderr=self.err, cwd=tmp)
            LIVE.add(self.proc)
            self.pid = self.proc.pid
            if wait_listening(port, self.proc):
                self.port = port
                break
            self.stop()  # the port was taken meanwhile, or nginx failed: again
        if self.port is None:
            raise RuntimeError(f"nginx did not start (see {logdir}/{tag}.server.log and {tmp}/error.log)")
        self.addr = f"127.0.0.1:{self.port}"

    def stop(self, timeout=15):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        LIVE.discard(self.proc)
        self.err.close()
        return self.proc.returncode


# The example server's binary by server name (--http-baseline adds one).
HTTP_BINARIES = {"halfclose": HTTP_SERVER}


def start_http_server(name, tmp, logdir, tag):
    if name == "nginx":
        return NginxServer(tmp, logdir, tag)
    return Server([HTTP_BINARIES[name], "--listen", LISTEN], logdir, tag)


def machine_cpu():
    """Busy time of the whole machine and of each core, seconds, from
    /proc/stat (all fields but idle and iowait; guest time is already in
    user): {"all": s, "cpu0": s, ...}, and softirq time apart."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if not line.startswith("cpu"):
                break
            name, *vals = line.split()
            v = [int(x) for x in vals[:8]]
            key = "all" if name == "cpu" else name
            out[key] = (sum(v) - v[3] - v[4]) / CLK_TCK
            out[key + "_softirq"] = v[6] / CLK_TCK
    return out


def net_counters():
    """Every counter of /proc/net/netstat and /proc/net/snmp (what nstat
    shows), as {"TcpExt.X": n, "Tcp.Y": n, ...}."""
    counters = {}
    for path in ("/proc/net/netstat", "/proc/net/snmp"):
        with open(path) as f:
            lines = f.read().splitlines()
        for names, values in zip(lines[::2], lines[1::2]):
            prefix = names.split(":")[0]
            for k, v in zip(names.split()[1:], values.split()[1:]):
                try:
                    counters[f"{prefix}.{k}"] = int(v)
                except ValueError:
                    pass
    return counters


# The counters reported per run of the http scenario (deltas).
HTTP_COUNTERS = [
    "Tcp.ActiveOpens", "Tcp.PassiveOpens", "Tcp.InSegs", "Tcp.OutSegs", "Tcp.OutRsts",
    "Tcp.EstabResets", "Tcp.AttemptFails", "TcpExt.TW", "TcpExt.TWRecycled", "TcpExt.TCPTimeWaitOverflow",
    "TcpExt.TCPAbortOnData", "TcpExt.TCPAbortOnClose", "TcpExt.TCPAbortOnLinger", "TcpExt.TCPAbortOnTimeout",
    "TcpExt.ListenOverflows", "TcpExt.ListenDrops", "TcpExt.DelayedACKs", "TcpExt.TCPPureAcks",
    "TcpExt.TCPHPAcks", "TcpExt.TCPOrigDataSent", "TcpExt.TCPDelivered", "TcpExt.TCPOFOQueue",
    "TcpExt.TCPRetransFail", "TcpExt.TCPLostRetransmit", "Tcp.RetransSegs",
]


def time_wait_sides(port):
    """TIME_WAIT sockets on loopback whose local port is the server's (the
    server closed first) and whose remote port is (the client did)."""
    def count(flt):
        try:
            out = subprocess.run(["ss", "-Htn", "state", "time-wait", flt],
                                 capture_output=True, timeout=30, check=False).stdout
        except subprocess.TimeoutExpired:
            return None
        return out.count(b"\n")
    return {"server": count(f"( sport = :{port} )"), "client": count(f"( dport = :{port} )")}


def parse_duration_us(text):
    m = re.match(r"([\d.]+)(us|ms|s|m)$", text)
    if not m:
        return None
    v = float(m.group(1))
    return v * {"us": 1, "ms": 1e3, "s": 1e6, "m": 60e6}[m.group(2)]


def parse_wrk(out):
    """requests, requests/s, latency percentiles, errors from wrk's output."""
    res = {"requests": None, "req_per_s": None, "socket_errors": {}, "non_2xx_3xx": 0}
    m = re.search(r"(\d+) requests in ([\d.]+)(\w+), ([\d.]+\w+) read", out)
    if m:
        res["requests"] = int(m.group(1))
        res["wall_s"] = parse_duration_us(m.group(2) + m.group(3)) / 1e6
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    if m:
        res["req_per_s"] = float(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    if m:
        res["socket_errors"] = dict(zip(("connect", "read", "write", "timeout"), map(int, m.groups())))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if m:
        res["non_2xx_3xx"] = int(m.group(1))
    for pct, key in (("50", "latency_us_p50"), ("99", "latency_us_p99")):
        m = re.search(rf"^\s*{pct}(?:\.0+)?%\s+(\S+)", out, re.M)
        res[key] = parse_duration_us(m.group(1)) if m else None
    res["errors"] = res["non_2xx_3xx"] + sum(res["socket_errors"].values())
    return res


def run_wrk(url, secs, conns, close, logfile):
    """wrk pinned to the client core: its output parsed, and its own CPU
    time (utime + stime, from wait4) added."""
    argv = ["taskset", "-c", CLIENT_CORE, "wrk", "-t1", "-c", str(conns), "-d", f"{secs}s", "--latency"]
    if close:
        argv += ["-H", "Connection: close"]
    argv.append(url)
    with open(logfile, "ab") as err:
        p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=err, cwd=ROOT)
        LIVE.add(p)
        killer = threading.Timer(secs + 60, p.kill)
        killer.start()
        try:
            out = p.stdout.read().decode(errors="replace")
            _, status, ru = os.wait4(p.pid, 0)
            p.returncode = os.waitstatus_to_exitcode(status)
        finally:
            killer.cancel()
            LIVE.discard(p)
        err.write(out.encode())
    res = parse_wrk(out)
    res["exit_status"] = p.returncode
    res["client_cpu_s"] = ru.ru_utime + ru.ru_stime
    return res


def http_run(name, close, P, tmp, logdir, rep):
    """One run of the http scenario against a fresh server process: a
    warm-up of the same kind, then the measured wrk run."""
    mode = "close" if close else "keepalive"
    tag = f"http-{mode}-{name}-{rep}"
    with open("/proc/net/sockstat") as f:
        m = re.search(r"TCP:.* tw (\d+)", f.read())
    tw_before = int(m.group(1)) if m else None
    srv = start_http_server(name, tmp, logdir, tag)
    url = f"http://{srv.addr}/"
    log_client = os.path.join(logdir, f"{tag}.client.log")
    try:
        run_wrk(url, P["http_warmup_secs"], P["http_conns"], close, log_client)
        time.sleep(0.3)
        net0, mc0 = net_counters(), machine_cpu()
        split0, rt0 = proc_cpu_split(srv.pid), proc_runtime(srv.pid)
        w = run_wrk(url, P["http_secs"], P["http_conns"], close, log_client)
        rt1, split1 = proc_runtime(srv.pid), proc_cpu_split(srv.pid)
        mc1, net1 = machine_cpu(), net_counters()
        tw = time_wait_sides(srv.port)
        rss, hwm = proc_mem(srv.pid)
    finally:
        code = srv.stop()
    n = w["requests"] or 0

    def per(v):
        return v * 1e6 / n if n else None

    res = dict(w)
    res.update(
        completed=n,
        server_user_s=split1[0] - split0[0], server_sys_s=split1[1] - split0[1],
        cpu_us_per_req=per(sum(split1) - sum(split0)),
        user_us_per_req=per(split1[0] - split0[0]), sys_us_per_req=per(split1[1] - split0[1]),
        runtime_us_per_req=per(rt1 - rt0),
        client_cpu_us_per_req=per(w["client_cpu_s"]),
        machine_us_per_req=per(mc1["all"] - mc0["all"]),
        core0_us_per_req=per(mc1["cpu0"] - mc0["cpu0"]) if "cpu0" in mc0 else None,
        core1_us_per_req=per(mc1["cpu1"] - mc0["cpu1"]) if "cpu1" in mc0 else None,
        softirq_us_per_req=per(mc1["all_softirq"] - mc0["all_softirq"]),
        net={k: net1.get(k, 0) - net0.get(k, 0) for k in HTTP_COUNTERS},
        time_wait=tw, time_wait_machine_before=tw_before, hwm_bytes=hwm, server_exit_status=code,
    )
    res["segments_per_req"] = res["net"]["Tcp.OutSegs"] / n if n else None
    res["server_plus_client_us_per_req"] = (
        res["runtime_us_per_req"] + res["client_cpu_us_per_req"] if n else None)
    log(f"  http {mode} {name} rep {rep + 1}: {n} requests, {res['errors']} errors, "
        f"{fmt(res['req_per_s'], 0)} req/s, server {fmt(res['cpu_us_per_req'], 1)} µs/req "
        f"(schedstat {fmt(res['runtime_us_per_req'], 2)}; user {fmt(res['user_us_per_req'], 1)}, "
        f"sys {fmt(res['sys_us_per_req'], 1)}), wrk {fmt(res['client_cpu_us_per_req'], 1)}, "
        f"machine {fmt(res['machine_us_per_req'], 1)} µs/req, TIME_WAIT server/client "
        f"{tw['server']}/{tw['client']}")
    return res


def http_versions(names):
    out = {}
    if "nginx" in names and shutil.which("nginx"):
        v = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip()
        out["nginx"] = v.split("/", 1)[-1] if "/" in v else v
    if shutil.which("wrk"):
        v = subprocess.run(["wrk", "-v"], capture_output=True, text=True)
        out["wrk"] = (v.stdout + v.stderr).split("\n")[0].strip()
    return out


def http_scenario(names, P, logdir, results, save):
    """The http scenario: keep-alive and `Connection: close` runs of wrk
    against each server in `names`; repetitions go round the servers and
    the two modes, as in churn."""
    H = results.setdefault("http", {})
    H["order"] = names
    H["labels"] = {n: HTTP_SERVERS[n] for n in names}
    H["versions"] = http_versions(names)
    H["params"] = {k: P[k] for k in ("http_secs", "http_reps", "http_warmup_secs", "http_conns")}
    R = H.setdefault("servers", {n: {} for n in names})
    missing = [t for t in ("wrk",) + (("nginx",) if "nginx" in names else ()) if not shutil.which(t)]
    if "halfclose" in names and not os.access(HTTP_SERVER, os.X_OK):
        missing.append(HTTP_SERVER)
    if missing:
        for n in names:
            R[n] = {"skipped": f"not found: {', '.join(missing)}"}
        log(f"  http: skipped, not found: {', '.join(missing)}")
        save()
        return
    tmp = tempfile.mkdtemp(prefix="compare-http-")
    try:
        runs = {(n, m): [] for n in names for m in ("keepalive", "close")}
        for rep in range(P["http_reps"]):
            for mode in ("keepalive", "close"):
                for n in names:
                    try:
                        runs[n, mode].append(http_run(n, mode == "close", P, tmp, logdir, rep))
                    except Exception as e:  # one broken server does not end the run
                        log(f"  http {mode} {n}: FAILED: {e}")
                        runs[n, mode].append({"failed": str(e)})
                    R[n][mode] = {"reps": runs[n, mode], "median": median_of(runs[n, mode])}
                    save()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Report


def fmt(v, digits=1):
    if v is None:
        return "n/a"
    if isinstance(v, float) and v != v:
        return "n/a"
    return f"{v:,.{digits}f}"


def ratio(v, ref, digits=2):
    if v is None or not ref:
        return ""
    return f" ({v / ref:.{digits}f}×)"


def getter(R):
    """get(name, *path): the value at `path` in server `name`'s results
    `R[name]`, or None where the path ends early."""
    def get(name, *path):
        cur = R.get(name, {})
        for p in path:
            if not isinstance(cur, dict):
                return None
            cur = cur.get(p)
        return cur
    return get


def cell(v, ref, digits=1, is_ref=False):
    if v is None:
        return "n/a"
    return fmt(v, digits) + ("" if is_ref else ratio(v, ref))


def refresh_medians(results):
    for r in results["servers"].values():
        for sc in ("churn", "echo"):
            if isinstance(r.get(sc), dict) and r[sc].get("reps"):
                r[sc]["median"] = median_of(r[sc]["reps"])
        for sc in ("unix", "tls"):
            c = (r.get(sc) or {}).get("churn")
            if isinstance(c, dict) and c.get("reps"):
                c["median"] = median_of(c["reps"])
    for r in ((results.get("http") or {}).get("servers") or {}).values():
        for mode in ("keepalive", "close"):
            if isinstance(r.get(mode), dict) and r[mode].get("reps"):
                r[mode]["median"] = median_of(r[mode]["reps"])


def scenario_table(results, key, cols, latency, errors, note=None):
    """The rows of a scenario's table, one per server whose results have
    `key`: `cols` are (title, path, digits), a path's figure with its ratio
    to halfclose's; a column without a path is the p50 / p99 latency at the
    path `latency` if its title starts so, else `errors(get, name)`.
    `note(get, name, column, value)` may add to a figure's text."""
    names = [n for n in results["order"] if n in results["servers"]]
    R = results["servers"]
    if not any(key in R[n] for n in names):
        return []
    get = getter(R)
    rows = ["| server | " + " | ".join(c[0] for c in cols) + " |",
            "|---|" + "|".join("---:" for _ in cols) + "|"]
    for n in names:
        label = next((s.label for s in SPECS if s.name == n), n)
        r = R[n].get(key)
        if not r:
            continue
        if "skipped" in r:
            rows.append(f"| {label} | not run: {r['skipped']} |" + " |" * (len(cols) - 1))
            continue
        cells = []
        for i, (title, path, digits) in enumerate(cols):
            if path:
                v = get(n, *path)
                text = cell(v, get("halfclose", *path), digits, is_ref=(n == "halfclose"))
                cells.append(text + (note(get, n, i, v) if note else ""))
            elif title.startswith("p50"):
                p50 = get(n, *latency, "latency_us_p50")
                p99 = get(n, *latency, "latency_us_p99")
                cells.append("n/a" if p50 is None else f"{p50 / 1000:.1f} / {p99 / 1000:.1f}")
            else:
                cells.append(errors(get, n))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return rows


def unix_table(results):
    """The Unix socket scenario: a row per server, TCP figures of the same
    run beside it when churn and held ran too."""
    cols = [
        ("server CPU µs/conn (Unix churn)", ("unix", "churn", "median", "cpu_us_per_conn"), 1),
        ("TCP churn, this run", ("churn", "median", "cpu_us_per_conn"), 1),
        ("conn/s (Unix churn)", ("unix", "churn", "median", "conn_per_s"), 0),
        ("p50 / p99 ms (Unix churn)", None, None),
        ("held (Unix)", ("unix", "held", "peak_held"), 0),
        ("B/held conn (Unix)", ("unix", "held", "bytes_per_held"), 0),
        ("B/held conn (TCP, this run)", ("held", "bytes_per_held"), 0),
        ("errors (Unix)", None, None),
    ]

    def errors(get, n):
        return str((get(n, "unix", "churn", "median", "errors") or 0) + (get(n, "unix", "held", "errors") or 0))

    return scenario_table(results, "unix", cols, ("unix", "churn", "median"), errors)


def tls_table(results):
    """The tls scenario: a row per server, ratios to halfclose's figure and
    to tokio-rustls's (the goal: halfclose at or below it), the TCP churn
    figure of the same run beside it when churn ran too."""
    med = ("tls", "churn", "median")
    cols = [
        ("server CPU µs/conn (TLS churn)", med + ("cpu_us_per_conn",), 1),
        ("schedstat µs/conn", med + ("runtime_us_per_conn",), 1),
        ("conn/s", med + ("conn_per_s",), 0),
        ("p50 / p99 ms", None, None),
        ("client CPU µs/conn", med + ("client_cpu_us_per_conn",), 1),
        ("TCP churn µs/conn, this run", ("churn", "median", "cpu_us_per_conn"), 1),
        ("errors", None, None),
    ]

    def to_tokio(get, n, i, v):
        # halfclose's CPU figures against tokio-rustls's too.
        tok = get("tokio", *cols[i][1]) if i < 2 and n == "halfclose" and v is not None else None
        return f" ({v / tok:.2f}× tokio-rustls)" if tok else ""

    return scenario_table(results, "tls", cols, med, lambda get, n: str(get(n, *med, "errors") or 0), to_tokio)


def table(results):
    """The one markdown table, a row per server."""
    names = [n for n in results["order"] if n in results["servers"]]
    R = results["servers"]
    ref = R.get("halfclose", {})

    get = getter(R)

    cols = [
        ("server CPU µs/conn (churn)", ("churn", "median", "cpu_us_per_conn"), 1),
        ("syscalls/conn", ("syscalls", "per_conn"), 2),
        ("conn/s (churn)", ("churn", "median", "conn_per_s"), 0),
        ("p50 / p99 ms (churn)", None, None),
        ("held in 1 process", ("held", "peak_held"), 0),
        ("B/held conn", ("held", "bytes_per_held"), 0),
        ("peak RSS MiB (held)", None, None),
        ("held, 100k variant", None, None),
        ("echo msg/s", ("echo", "median", "msg_per_s"), 0),
        ("echo CPU µs/msg", ("echo", "median", "server_cpu_us_per_msg"), 2),
        ("errors", None, None),
    ]
    head = "| server | " + " | ".join(c[0] for c in cols) + " |"
    sep = "|---|" + "|".join("---:" for _ in cols) + "|"
    rows = [head, sep]
    for n in names:
        label = next((s.label for s in SPECS if s.name == n), n)
        cells = []
        for title, path, digits in cols:
            if path:
                v = get(n, *path)
                r = get("halfclose", *path) if ref else None
                cells.append(cell(v, r, digits, is_ref=(n == "halfclose")))
            elif title.startswith("p50"):
                p50 = get(n, "churn", "median", "latency_us_p50")
                p99 = get(n, "churn", "median", "latency_us_p99")
                cells.append("n/a" if p50 is None else f"{p50 / 1000:.1f} / {p99 / 1000:.1f}")
            elif title.startswith("peak RSS"):
                h = get(n, "held", "hwm_bytes")
                cells.append("n/a" if h is None else f"{h / 2**20:.1f}")
            elif title.startswith("held, 100k"):
                b = get(n, "held100k")
                if b is None:
                    cells.append("n/a")
                elif "skipped" in b:
                    cells.append("not run¹")
                else:
                    cells.append(f"{b['peak_held']:,} held, {b['errors']} err")
            elif title == "errors":
                total = 0
                for sc in ("churn", "held", "held100k", "echo"):
                    v = get(n, sc, "median", "errors") if sc in ("churn", "echo") else get(n, sc, "errors")
                    total += v or 0
                cells.append(str(total))
        rows.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def svg_plot(results, path):
    """Two bar charts: server CPU per connection (churn) and memory per held
    connection, one bar per server; hand-written SVG."""
    names = [n for n in results["order"] if n in results["servers"]]
    R = results["servers"]
    labels = {s.name: s.label for s in SPECS}
    panels = [
        ("Server CPU per connection (churn, µs)", [R[n].get("churn", {}).get("median", {}).get("cpu_us_per_conn") for n in names]),
        ("Memory per held half-closed connection (bytes)", [R[n].get("held", {}).get("bytes_per_held") for n in names]),
    ]
    bar_h, gap, left, pw, top = 22, 8, 170, 300, 50
    width = left + 2 * (pw + left) - left + 80
    height = top + len(names) * (bar_h + gap) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="18" font-size="14" font-weight="bold">Half-close echo servers, '
        f'{results["date"]} ({results["mode"]} run; lower is better)</text>',
    ]
    for p, (title, vals) in enumerate(panels):
        x0 = left + p * (pw + left)
        out.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{title}</text>')
        vmax = max([v for v in vals if v] or [1])
        for i, (n, v) in enumerate(zip(names, vals)):
            y = top + i * (bar_h + gap)
            out.append(f'<text x="{x0 - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{labels.get(n, n)}</text>')
            if v is None:
                out.append(f'<text x="{x0 + 4}" y="{y + bar_h * 0.7}" fill="#888">n/a</text>')
                continue
            w = max(1.0, pw * v / vmax)
            color = "#d9541e" if n == "halfclose" else "#4a7ab5"
            out.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            out.append(f'<text x="{x0 + w + 4:.1f}" y="{y + bar_h * 0.7}">{v:,.0f}</text>'
                       if v >= 100 else f'<text x="{x0 + w + 4:.1f}" y="{y + bar_h * 0.7}">{v:,.1f}</text>')
        out.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{top + len(names) * (bar_h + gap)}" stroke="#333"/>')
    P = results.get("params", {})
    notes = [
        f"CPU: user + sys time of the server process per connection, median of {P.get('churn_reps', '?')} runs "
        f"of {P.get('churn_conns', 0):,} exchanges (64 B requests, concurrency {P.get('churn_conc', '?')}).",
        f"Memory: (peak RSS - idle RSS) / connections held at once ({P.get('held_conns', 0):,} in one process). "
        "Server on core 0, load on core 1, loopback.",
    ]
    for i, note in enumerate(notes):
        out.append(f'<text x="10" y="{height - 30 + 15 * i}" font-size="11" fill="#444">{note}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def http_table(results):
    """The http scenario: a row per server and connection mode, medians over
    the repetitions (errors summed), then each repetition's figures."""
    H = results.get("http") or {}
    R = H.get("servers") or {}
    names = [n for n in H.get("order", []) if n in R]
    if not names:
        return []
    cols = ["server", "connection", "server CPU µs/req", "user / sys µs/req", "schedstat µs/req",
            "wrk CPU µs/req", "server + wrk µs/req", "machine µs/req", "req/s", "p50 / p99 ms",
            "segments/req", "TIME_WAIT server / client", "errors"]
    rows = ["| " + " | ".join(cols) + " |", "|---|---|" + "|".join("---:" for _ in cols[2:]) + "|"]
    modes = (("keepalive", "keep-alive"), ("close", "`Connection: close`"))
    for mode, mode_label in modes:
        for n in names:
            label = (H.get("labels") or {}).get(n) or HTTP_SERVERS.get(n, n)
            r = R[n]
            if "skipped" in r:
                rows.append(f"| {label} | {mode_label} | not run: {r['skipped']} |" + " |" * (len(cols) - 3))
                continue
            m = (r.get(mode) or {}).get("median") or {}
            reps = [x for x in (r.get(mode) or {}).get("reps") or [] if "failed" not in x]
            if not reps:
                why = ((r.get(mode) or {}).get("reps") or [{}])[0].get("failed", "no run")
                rows.append(f"| {label} | {mode_label} | failed: {why} |" + " |" * (len(cols) - 3))
                continue
            ref = ((R.get("nginx") or {}).get(mode) or {}).get("median") or {}

            def c(key, digits=1, m=m, n=n, ref=ref):
                v = m.get(key)
                text = fmt(v, digits)
                if n != "nginx" and v is not None and ref.get(key):
                    text += f" ({v / ref[key]:.2f}×)"
                return text

            non2xx = sum(x.get("non_2xx_3xx") or 0 for x in reps)
            sock = {}
            for x in reps:
                for k, v in (x.get("socket_errors") or {}).items():
                    sock[k] = sock.get(k, 0) + v
            failed = len((r.get(mode) or {}).get("reps") or []) - len(reps)
            parts = [f"non-2xx/3xx {non2xx}"] + [f"{k} {v}" for k, v in sock.items() if v]
            if failed:
                parts.append(f"{failed} runs failed")
            total = non2xx + sum(sock.values()) + failed
            errors = "0" if not total else f"**{total}** ({', '.join(parts)})"
            tw = [x.get("time_wait") or {} for x in reps]
            tws = sorted((t.get("server") or 0) for t in tw)[(len(tw) - 1) // 2]
            twc = sorted((t.get("client") or 0) for t in tw)[(len(tw) - 1) // 2]
            p50, p99 = m.get("latency_us_p50"), m.get("latency_us_p99")
            rows.append("| " + " | ".join([
                label, mode_label, c("cpu_us_per_req"),
                f"{fmt(m.get('user_us_per_req'))} / {fmt(m.get('sys_us_per_req'))}",
                c("runtime_us_per_req", 2), c("client_cpu_us_per_req"), c("server_plus_client_us_per_req"),
                c("machine_us_per_req"), c("req_per_s", 0),
                "n/a" if p50 is None or p99 is None else f"{p50 / 1000:.2f} / {p99 / 1000:.2f}",
                fmt(m.get("segments_per_req"), 2), f"{tws:,} / {twc:,}", errors,
            ]) + " |")
    rows.append("")
    rows.append("Each repetition (server CPU µs/req from utime + stime; schedstat µs/req; req/s):")
    rows.append("")
    for mode, mode_label in modes:
        for n in names:
            reps = (R[n].get(mode) or {}).get("reps") or []
            if not reps:
                continue
            rows.append(f"- {n}, {mode_label}: "
                        + "; ".join("failed" if "failed" in x else
                                    f"{fmt(x.get('cpu_us_per_req'))} / {fmt(x.get('runtime_us_per_req'), 2)} / "
                                    f"{fmt(x.get('req_per_s'), 0)}" for x in reps))
    rows.append("")
    rows.append("TCP counters per request (median over the repetitions of the delta over the run, "
                "machine-wide, both ends of loopback; counters that stayed 0 everywhere are left out):")
    rows.append("")
    keys = [k for k in HTTP_COUNTERS
            if any(((x.get("net") or {}).get(k) or 0)
                   for n in names for mode, _ in modes for x in (R[n].get(mode) or {}).get("reps") or [])]
    if keys:
        rows.append("| server | connection | " + " | ".join(k.split(".", 1)[1] for k in keys) + " |")
        rows.append("|---|---|" + "|".join("---:" for _ in keys) + "|")
        for mode, mode_label in modes:
            for n in names:
                reps = [x for x in (R[n].get(mode) or {}).get("reps") or [] if x.get("completed")]
                if not reps:
                    continue
                vals = []
                for k in keys:
                    per = sorted(x["net"].get(k, 0) / x["completed"] for x in reps)
                    v = per[(len(per) - 1) // 2]
                    vals.append(f"{v:.3f}" if v < 10 else f"{v:,.1f}")
                rows.append(f"| {n} | {mode_label} | " + " | ".join(vals) + " |")
    return rows


def http_svg(results, path):
    """Bars of server CPU per request (schedstat) and server + wrk CPU per
    request, keep-alive and `Connection: close`, per server."""
    H = results.get("http") or {}
    R = H.get("servers") or {}
    names = [n for n in H.get("order", []) if n in R and "skipped" not in R[n]]
    bars = []
    for mode, mode_label in (("keepalive", "keep-alive"), ("close", "Connection: close")):
        for n in names:
            m = (R[n].get(mode) or {}).get("median") or {}
            bars.append((f"{n}, {mode_label}", n, m.get("runtime_us_per_req"), m.get("server_plus_client_us_per_req")))
    panels = [("Server CPU per request (schedstat, µs)", 2), ("Server + wrk CPU per request (µs)", 3)]
    bar_h, gap, left, pw, top = 22, 8, 220, 300, 50
    width = left + len(panels) * (pw + left) - left + 80
    height = top + len(bars) * (bar_h + gap) + 60
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="DejaVu Sans, Arial, sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="10" y="18" font-size="14" font-weight="bold">HTTP/1.1 GET /, examples/http_server and nginx, '
        f'{results["date"]} ({results["mode"]} run; lower is better)</text>',
    ]
    for p, (title, idx) in enumerate(panels):
        x0 = left + p * (pw + left)
        out.append(f'<text x="{x0}" y="{top - 12}" font-weight="bold">{title}</text>')
        vals = [b[idx] for b in bars]
        vmax = max([v for v in vals if v] or [1])
        for i, (b, v) in enumerate(zip(bars, vals)):
            y = top + i * (bar_h + gap)
            out.append(f'<text x="{x0 - 8}" y="{y + bar_h * 0.7}" text-anchor="end">{b[0]}</text>')
            if v is None:
                out.append(f'<text x="{x0 + 4}" y="{y + bar_h * 0.7}" fill="#888">n/a</text>')
                continue
            w = max(1.0, pw * v / vmax)
            color = {"halfclose": "#d9541e", "before": "#e8a37f"}.get(b[1], "#4a7ab5")
            out.append(f'<rect x="{x0}" y="{y}" width="{w:.1f}" height="{bar_h}" fill="{color}"/>')
            out.append(f'<text x="{x0 + w + 4:.1f}" y="{y + bar_h * 0.7}">{v:,.1f}</text>')
        out.append(f'<line x1="{x0}" y1="{top - 4}" x2="{x0}" y2="{top + len(bars) * (bar_h + gap)}" stroke="#333"/>')
    P = H.get("params", {})
    notes = [
        f"Medians of {P.get('http_reps', '?')} runs of wrk -t1 -c{P.get('http_conns', '?')} -d{P.get('http_secs', '?')}s; "
        "server on core 0, wrk on core 1, loopback.",
        "With Connection: close, nginx's sockets are freed in the softirq on wrk's core; ours in close(2) on the server's.",
    ]
    for i, note in enumerate(notes):
        out.append(f'<text x="10" y="{height - 30 + 15 * i}" font-size="11" fill="#444">{note}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def http_section(results):
    """The http scenario's part of compare.md (empty when it did not run)."""
    rows = http_table(results)
    if not rows:
        return []
    v = (results.get("http") or {}).get("versions") or {}
    P = (results.get("http") or {}).get("params") or {}
    return [
        f"HTTP/1.1 `GET /` (scenario http: wrk -t1 -c{P.get('http_conns', '?')} -d{P.get('http_secs', '?')}s, "
        f"medians of {P.get('http_reps', '?')} repetitions; nginx {v.get('nginx', '?')}, {v.get('wrk', 'wrk ?')}; "
        "ratios are to nginx's figure):",
        "",
    ] + rows + [""]


def report(results, outdir):
    refresh_medians(results)
    main_keys = ("churn", "syscalls", "held", "held100k", "echo", "unix", "tls")
    if not any(k in r for r in results["servers"].values() for k in main_keys):
        # Only the http scenario ran: its table and plot alone.
        text = "\n".join(http_section(results))
        with open(os.path.join(outdir, "compare.md"), "w") as f:
            f.write(text)
        http_svg(results, os.path.join(outdir, "compare.svg"))
        return text
    md = [table(results), ""]
    skipped = {n: r["held100k"]["skipped"] for n, r in results["servers"].items()
               if isinstance(r.get("held100k"), dict) and "skipped" in r["held100k"]}
    if skipped:
        md.append("¹ " + "; ".join(f"{n}: {why}" for n, why in skipped.items()) + ".")
        md.append("")
    R = results["servers"]
    order = [n for n in results["order"] if n in R]

    def reps_line(n, sc, key, digits):
        reps = (R[n].get(sc) or {}).get("reps") or []
        vals = [fmt(r.get(key), digits) for r in reps]
        return ", ".join(vals) if vals else "n/a"

    md.append("Server CPU per connection in each churn repetition, µs (median user / sys time of a repetition, s):")
    md.append("")
    for n in order:
        med = (R[n].get("churn") or {}).get("median") or {}
        split = ""
        if med.get("server_user_s") is not None:
            split = f" (user {med['server_user_s']:.2f} / sys {med['server_sys_s']:.2f})"
        sched = ""
        if med.get("runtime_us_per_conn") is not None:
            sched = (f"; from schedstat: {reps_line(n, 'churn', 'runtime_us_per_conn', 2)}, "
                     f"median {fmt(med['runtime_us_per_conn'], 2)}")
        md.append(f"- {n}: {reps_line(n, 'churn', 'cpu_us_per_conn', 1)}{split}{sched}")
    md.append("")
    md.append("Held connections (one process; and the 100k variant across processes):")
    md.append("")
    md.append("| server | scenario | processes | held at peak | completed | errors | idle RSS MiB | peak RSS MiB | B/held conn | wall s |")
    md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for sc in ("held", "held100k", "unix held"):
        for n in order:
            h = (R[n].get("unix") or {}).get("held") if sc == "unix held" else R[n].get(sc)
            if not h:
                continue
            if "skipped" in h or "failed" in h:
                md.append(f"| {n} | {sc} | | | | | | | | {h.get('skipped') or 'failed: ' + h['failed']} |")
                continue
            md.append(
                f"| {n} | {sc} | {h['processes']} | {h['peak_held']:,} | {h['completed']:,} | {h['errors']} | "
                f"{h['rss_baseline_bytes'] / 2**20:.1f} | {h['hwm_bytes'] / 2**20:.1f} | "
                f"{fmt(h['bytes_per_held'], 0)} | {fmt(h['wall_s'], 1)} |")
    md.append("")
    md.append("Echo over persistent connections (medians over the repetitions; then each repetition):")
    md.append("")
    for n in order:
        med = (R[n].get("echo") or {}).get("median") or {}
        if not med:
            continue
        md.append(
            f"- {n}: {fmt(med.get('msg_per_s'), 0)} msg/s, server {fmt(med.get('server_cpu_us_per_msg'), 2)} µs/msg, "
            f"latency p50 {fmt(med.get('latency_us_p50'), 0)} µs, p99 {fmt(med.get('latency_us_p99'), 0)} µs; "
            f"repetitions: {reps_line(n, 'echo', 'msg_per_s', 0)} msg/s")
    md.append("")
    urows = unix_table(results)
    if urows:
        md.append("Over a Unix stream socket (scenario unix; ratios are to halfclose's figure):")
        md.append("")
        md.extend(urows)
        md.append("")
        for n in order:
            u = R[n].get("unix") or {}
            reps = (u.get("churn") or {}).get("reps") or []
            if reps:
                med = u["churn"]["median"]
                split = ""
                if med.get("server_user_s") is not None:
                    split = f" (user {med['server_user_s']:.2f} / sys {med['server_sys_s']:.2f})"
                md.append(f"- {n}: Unix churn CPU per repetition, µs: "
                          + ", ".join(fmt(r.get("cpu_us_per_conn"), 1) for r in reps) + split
                          + "; from schedstat (ns resolution): "
                          + ", ".join(fmt(r.get("runtime_us_per_conn"), 2) for r in reps)
                          + f", median {fmt(med.get('runtime_us_per_conn'), 2)}")
        md.append("")
    trows = tls_table(results)
    if trows:
        v = results.get("tls_versions") or {}
        hv, pv = v.get("halfclose", {}), v.get("peers", {})
        md.append("Over TLS 1.3 (scenario tls: a full handshake per connection; ratios are to halfclose's "
                  "figure; halfclose's also to tokio-rustls's):")
        md.append("")
        md.extend(trows)
        md.append("")
        md.append(f"TLS stacks: halfclose on rustls {', '.join(hv.get('rustls', ['?']))} (ring "
                  f"{', '.join(hv.get('ring', ['?']))}); tokio on tokio-rustls "
                  f"{', '.join(pv.get('tokio-rustls', ['?']))} over rustls {', '.join(pv.get('rustls', ['?']))} "
                  f"(ring {', '.join(pv.get('ring', ['?']))}); Node {results['machine'].get('node', '?')} on "
                  f"OpenSSL {v.get('node_openssl', '?')}"
                  + ("" if v.get("same_rustls") else "; WARNING: halfclose and tokio-rustls do not use the same rustls")
                  + ".")
        md.append("")
        for n in order:
            reps = ((R[n].get("tls") or {}).get("churn") or {}).get("reps") or []
            if reps:
                m = R[n]["tls"]["churn"]["median"]
                split = ""
                if m.get("server_user_s") is not None:
                    split = f" (user {m['server_user_s']:.2f} / sys {m['server_sys_s']:.2f} s)"
                md.append(f"- {n}: TLS churn CPU per repetition, µs: "
                          + ", ".join(fmt(r.get("cpu_us_per_conn"), 1) for r in reps) + split
                          + "; from schedstat: "
                          + ", ".join(fmt(r.get("runtime_us_per_conn"), 1) for r in reps))
        md.append("")
    md.extend(http_section(results))
    md.append("Syscalls per connection by call (strace -c -f, short churn run):")
    md.append("")
    for n in results["order"]:
        s = results["servers"].get(n, {}).get("syscalls")
        if s and s.get("by_call_per_conn"):
            md.append(f"- {n}: " + ", ".join(f"{k} {v:.2f}" for k, v in s["by_call_per_conn"].items()))
    md.append("")
    with open(os.path.join(outdir, "compare.md"), "w") as f:
        f.write("\n".join(md))
    svg_plot(results, os.path.join(outdir, "compare.svg"))
    if http_table(results):
        http_svg(results, os.path.join(outdir, "compare-http.svg"))
    return "\n".join(md)


# ---------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes: a few minutes")
    ap.add_argument("--only", default=",".join(SCENARIOS), help="scenarios, comma-separated")
    ap.add_argument("--servers", default=",".join([s.name for s in SPECS] + ["nginx"]),
                    help="servers, comma-separated (nginx: the http scenario's only)")
    ap.add_argument("--out", help="results directory (default benches/results; --quick: target/compare-quick)")
    ap.add_argument("--replot", metavar="DIR", help="rewrite table, plot and medians from DIR/compare.json")
    ap.add_argument(
        "--baseline", metavar="DIR",
        help="also run DIR/halfclosed and DIR/echo (an earlier build) as server 'baseline', "
        "and DIR/peer_mio if it is there as server 'baseline-mio' (after mio): "
        "a change measured before and after in the same run (TCP only)",
    )
    ap.add_argument(
        "--http-baseline", metavar="BIN",
        help="http scenario: also run BIN (an earlier build of examples/http_server) as server "
        "'before', after halfclose: a change measured before and after in the same run",
    )
    a = ap.parse_args()
    if a.http_baseline:
        path = os.path.abspath(a.http_baseline)
        if not os.access(path, os.X_OK):
            ap.error(f"--http-baseline: {path} is not an executable")
        HTTP_SERVERS.clear()
        HTTP_SERVERS.update({"halfclose": "halfclose (examples/http_server)",
                             "before": f"halfclose, earlier build ({a.http_baseline})", "nginx": "nginx"})
        HTTP_BINARIES["before"] = path
        if "before" not in a.servers.split(","):
            a.servers += ",before"
    if a.baseline:
        base = os.path.abspath(a.baseline)
        base_hc, base_echo, base_mio = (os.path.join(base, f) for f in ("halfclosed", "echo", "peer_mio"))
        for path in (base_hc, base_echo):
            if not os.access(path, os.X_OK):
                ap.error(f"--baseline: {path} is not an executable")
        SPECS.insert(1, Spec(
            "baseline", f"halfclose, earlier build ({a.baseline})",
            lambda h, t: [base_hc, "--server-only", "--json", "--timeout", str(t)] + peer_args(h),
            lambda: [base_echo, "--listen", LISTEN],
            ["--threads", "2"],
        ))
        wanted = a.servers.split(",")
        if "baseline" not in wanted:
            wanted.insert(1, "baseline")
        if os.access(base_mio, os.X_OK):
            SPECS.insert(3, Spec(
                "baseline-mio", f"raw mio loop, earlier build ({a.baseline})",
                lambda h, t: [base_mio] + peer_args(h),
                lambda: [base_mio, "--listen", LISTEN, "--echo"],
                ["--reuseport"],
            ))
            if "mio" in wanted and "baseline-mio" not in wanted:
                wanted.insert(wanted.index("mio") + 1, "baseline-mio")
        a.servers = ",".join(wanted)

    if a.replot:
        with open(os.path.join(a.replot, "compare.json")) as f:
            results = json.load(f)
        print(report(results, a.replot))
        with open(os.path.join(a.replot, "compare.json"), "w") as f:
            json.dump(results, f, indent=1)  # with the medians recomputed
        return 0

    P = QUICK if a.quick else FULL
    outdir = a.out or os.path.join(ROOT, "target/compare-quick" if a.quick else "benches/results")
    logdir = os.path.join(ROOT, "target/compare-logs")
    os.makedirs(outdir, exist_ok=True)
    os.makedirs(logdir, exist_ok=True)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # the servers inherit it
    signal.signal(signal.SIGTERM, stop_children)
    signal.signal(signal.SIGINT, stop_children)
    scenarios = [s for s in a.only.split(",") if s]
    wanted = [s for s in a.servers.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    specs = [s for s in SPECS if s.name in wanted]
    http_names = [n for n in HTTP_SERVERS if n in wanted]
    if len(specs) + len([n for n in wanted if n in HTTP_SERVERS and n != "halfclose"]) != len(wanted):
        ap.error(f"unknown server in {a.servers}")
    if any(sc != "http" for sc in scenarios) and not specs:
        ap.error("no echo server given for " + ",".join(sc for sc in scenarios if sc != "http"))

    results = {
        "date": datetime.date.today().isoformat(),
        "mode": "quick" if a.quick else "full",
        "command": "benches/compare.sh " + " ".join(sys.argv[1:]),
        "machine": {
            "cpus": os.cpu_count(),
            "cpu_model": next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?"),
            "kernel": platform.release(),
            "somaxconn": open("/proc/sys/net/core/somaxconn").read().strip(),
            "nofile": [hard, hard],
            "node": subprocess.run([NODE, "--version"], capture_output=True, text=True).stdout.strip(),
            "python": subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout.strip(),
        },
        "params": P,
        "order": [s.name for s in specs],
        "servers": {s.name: {} for s in specs},
    }
    log(f"{results['mode']} run: {', '.join(scenarios)}; servers: {', '.join(results['order'])}")

    def save():
        with open(os.path.join(outdir, "compare.json"), "w") as f:
            json.dump(results, f, indent=1)

    t0 = time.monotonic()
    for scenario in scenarios:
        log(f"scenario {scenario}")
        if scenario == "unix":
            unix(specs, P, logdir, results, save)
            continue
        if scenario == "tls":
            tls_scenario(specs, P, logdir, results, save)
            continue
        if scenario == "http":
            http_scenario(http_names, P, logdir, results, save)
            continue
        if scenario in ("churn", "echo"):
            fn, reps = {"churn": (churn, P["churn_reps"]), "echo": (echo, P["echo_reps"])}[scenario]
            rounds(fn, specs, reps, scenario, P, logdir,
                   lambda n, r: results["servers"][n].__setitem__(scenario, r), save)
            continue
        for spec in specs:
            fn = {"syscalls": syscalls, "held": held,
                  "held100k": lambda s, P, d: held(s, P, d, big=True)}[scenario]
            try:
                results["servers"][spec.name][scenario] = fn(spec, P, logdir)
            except Exception as e:  # one broken server does not end the run
                log(f"  {scenario} {spec.name}: FAILED: {e}")
                results["servers"][spec.name][scenario] = {"failed": str(e)}
            save()
    results["elapsed_s"] = round(time.monotonic() - t0)
    save()
    md = report(results, outdir)
    print(md)
    log(f"done in {results['elapsed_s']} s; results in {outdir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
