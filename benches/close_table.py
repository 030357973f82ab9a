#!/usr/bin/env python3
"""The close table: how TCP proxies pass each end of a connection on.

Started by benches/close_table.sh (which installs haproxy, nginx with its
stream module, socat and iproute2 when missing, and builds the proxy):

    benches/close_table.sh                      # every proxy, every scenario, 3 runs each
    benches/close_table.sh --proxies nginx --only upstream_reset --repeat 1
    python3 benches/close_table.py --render DIR # CLOSING.md again from DIR/results.json

Needs root: every run (one proxy, one scenario, one repetition) happens in
a network namespace of its own (`unshare -n`), with a fresh loopback, so the
kernel's TCP counters (`nstat`) and the socket list (`ss`) hold that run
and nothing else. Inside it this script starts the proxy under test on
127.0.0.1 and plays both of its peers itself, with Python sockets: the
client (which connects to the proxy) and the upstream (a TCP listener on
127.0.0.1, or a Unix stream socket, that the proxy forwards to). So the
script decides when each end sends FIN (`shutdown(SHUT_WR)`, or `close`
with nothing unread) or RST (TCP: `SO_LINGER` 0 and `close`; a Unix socket
has no reset, and a `close` with unread input is what makes its peer read
`ECONNRESET`), and judges each proxy only by what its peers saw: bytes
(checked against the pattern sent, so a truncated or mixed-up stream shows),
how each read ended (EOF, ECONNRESET, or nothing within the bound), plus
the namespace's reset counters and the sockets left over. The proxies' own
logs (kept under DIR/logs/) are never read to judge.

Every wait is bounded (--wait, 5 s by default): a hang is a result ("no EOF
within 5 s"). The two ends synchronise through the script itself (the
upstream resets only once the client has read everything sent before the
reset, and the other way round), so what a run shows does not depend on
how fast a proxy happens to forward.

Scenarios (rows):
  client_fin_upload        the client sends 4 MiB and half-closes; the upstream
                           reads to EOF, then replies 1 MiB and closes
  client_fin_slow_reply    the same, but the upstream waits 2 s after the EOF
                           before it replies (a server that thinks)
  upstream_fin_first       the client sends 64 KiB; the upstream reads it, sends
                           a 256 KiB reply and half-closes; the client reads to
                           EOF, then sends 1 MiB more and half-closes; the
                           upstream reads to EOF
  upstream_fin_idle        the same, but the client waits 2 s after the EOF
                           before it sends more
  upstream_reset           the client sends a 1 KiB request; the upstream sends
                           300 KiB of a 1 MiB reply, waits until the client has
                           read them, then resets
  upstream_refused         nothing listens at the upstream address; the client
                           connects and sends a 128-byte request while the proxy
                           is held (SIGSTOP) until the request is acknowledged,
                           then reads
  upstream_refused_silent  the same, but the client sends nothing
  client_reset             the client sends 1 MiB of a 4 MiB upload, waits until
                           the upstream has read it, then resets

Proxies (columns): examples/proxy to a TCP and to a Unix-socket upstream;
haproxy in `mode tcp` (as configured, and with `option abortonclose`,
`timeout client-fin 1s` and `timeout server-fin 1s` added); nginx `stream`
with and without `proxy_half_close on`; socat with its defaults.

Output: DIR/results.json (every run's raw observations and counter deltas),
DIR/logs/ (configs and the proxies' own output), and the markdown report
(--md, CLOSING.md at the repository root by default).
"""

import argparse
import datetime
import errno
import fcntl
import json
import os
import shlex
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROXY_BIN = os.path.join(ROOT, "target/release/examples/proxy")
NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"

KiB = 1024
MiB = 1024 * KiB

UPLOAD = 4 * MiB  # client_fin_upload: the client's upload
REPLY = 1 * MiB  # client_fin_upload: the upstream's reply
FIRST = 64 * KiB  # upstream_fin_first: what the client sends first
EARLY_REPLY = 256 * KiB  # upstream_fin_first: the upstream's reply before its FIN
LATE = 1 * MiB  # upstream_fin_first: what the client sends after the upstream's FIN
REQUEST = 1 * KiB  # upstream_reset: the request
PARTIAL = 300 * KiB  # upstream_reset: sent before the reset...
DECLARED = 1 * MiB  # ...of a reply this long
REFUSED_REQUEST = 128  # upstream_refused: the request
RESET_AT = 1 * MiB  # client_reset: sent before the reset...
RESET_DECLARED = 4 * MiB  # ...of an upload this long

# Each direction carries its own byte pattern (period 251, so an offset
# error or a mix-up shows).
C2U, U2C = 0, 1

# The counters shown (nstat names); every other Tcp*/TcpExt* counter that
# moved is kept in results.json.
COUNTERS = [
    "TcpOutRsts",
    "TcpEstabResets",
    "TcpExtTCPAbortOnData",
    "TcpExtTCPAbortOnClose",
    "TcpExtTCPAbortOnLinger",
    "TcpExtTCPAbortOnTimeout",
    "TcpAttemptFails",
    "TcpActiveOpens",
    "TcpPassiveOpens",
]

IDLE = 2.0  # the *_slow/*_idle scenarios: the pause, seconds

SCENARIOS = {
    "client_fin_upload": "client half-closes after a 4 MiB upload; upstream reads to EOF, replies 1 MiB, closes",
    "client_fin_slow_reply": "client half-closes after a 4 MiB upload; upstream reads to EOF, waits 2 s, replies 1 MiB, closes",
    "upstream_fin_first": "upstream replies 256 KiB and half-closes first; client then sends 1 MiB more",
    "upstream_fin_idle": "upstream replies 256 KiB and half-closes first; client waits 2 s, then sends 1 MiB more",
    "upstream_reset": "upstream resets after 300 KiB of a 1 MiB reply",
    "upstream_refused": "upstream refuses (nothing listens); the client sent a 128 B request",
    "upstream_refused_silent": "upstream refuses (nothing listens); the client sent nothing",
    "client_reset": "client resets after 1 MiB of a 4 MiB upload",
}

HAPROXY_BASE = """\
global
    maxconn 256
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
{extra}listen close_table
    bind 127.0.0.1:{port}
    server up {upstream}
"""

HAPROXY_FIN = """\
    option abortonclose
    timeout client-fin 1s
    timeout server-fin 1s
"""

NGINX_CONF = """\
load_module {module};
daemon off;
worker_processes 1;
pid {work}/nginx.pid;
events {{ worker_connections 256; }}
stream {{
    server {{
        listen 127.0.0.1:{port};
        proxy_pass {upstream};
{extra}    }}
}}
"""

PROXIES = {
    "proxy-tcp": {
        "title": "examples/proxy → TCP",
        "kind": "proxy",
        "upstream": "tcp",
        "config": "`proxy --listen 127.0.0.1:PORT --upstream 127.0.0.1:PORT` (its defaults: idle, peer-EOF and linger timeouts of the crate's `Config`)",
    },
    "proxy-unix": {
        "title": "examples/proxy → Unix",
        "kind": "proxy",
        "upstream": "unix",
        "config": "`proxy --listen 127.0.0.1:PORT --upstream /tmp/ct-XXXX/up.sock`",
    },
    "haproxy": {
        "title": "haproxy mode tcp",
        "kind": "haproxy",
        "upstream": "tcp",
        "extra": "",
        "config": "`mode tcp`, `timeout connect 5s`, `timeout client 30s`, `timeout server 30s` "
        "(haproxy has no defaults for these); `retries` left at 3; no `timeout client-fin`/`server-fin` "
        "(they fall back to `timeout client`/`server`), no `option abortonclose`",
    },
    "haproxy-fin": {
        "title": "haproxy + abortonclose, *-fin 1s",
        "kind": "haproxy",
        "upstream": "tcp",
        "extra": HAPROXY_FIN,
        "config": "as `haproxy`, plus `option abortonclose`, `timeout client-fin 1s`, `timeout server-fin 1s`",
    },
    "nginx-hc": {
        "title": "nginx proxy_half_close on",
        "kind": "nginx",
        "upstream": "tcp",
        "extra": "        proxy_half_close on;\n",
        "config": "`stream { server { listen ...; proxy_pass 127.0.0.1:PORT; proxy_half_close on; } }`; "
        "defaults otherwise: `proxy_timeout 10m`, `proxy_connect_timeout 60s`, `proxy_next_upstream on`",
    },
    "nginx": {
        "title": "nginx (no proxy_half_close)",
        "kind": "nginx",
        "upstream": "tcp",
        "extra": "",
        "config": "as `nginx-hc` without `proxy_half_close` (its default is off)",
    },
    "socat": {
        "title": "socat",
        "kind": "socat",
        "upstream": "tcp",
        "config": "`socat TCP-LISTEN:PORT,bind=127.0.0.1,reuseaddr,fork TCP:127.0.0.1:PORT` "
        "(defaults: `-t 0.5`, after one side's EOF the other direction gets 0.5 s, then both are closed)",
    },
}


# --- byte patterns and sizes -------------------------------------------------

_PATTERNS = {}


def _pattern(seed):
    if seed not in _PATTERNS:
        base = bytes((i * 7 + seed * 101) % 251 for i in range(251))
        _PATTERNS[seed] = base * ((UPLOAD + 2 * MiB) // 251 + 2)
    return _PATTERNS[seed]


def expected(seed, offset, n):
    start = offset % 251
    return memoryview(_pattern(seed))[start : start + n]


def size(n):
    """4194304 -> '4 MiB', 307200 -> '300 KiB', 1000 -> '1,000 B'."""
    if n is None:
        return "?"
    if n >= MiB and n % MiB == 0:
        return f"{n // MiB} MiB"
    if n >= KiB and n % KiB == 0:
        return f"{n // KiB} KiB"
    if n >= 10 * KiB:
        return f"{n / KiB:,.1f} KiB"
    return f"{n:,} B"


def err_name(e):
    if isinstance(e, socket.timeout):
        return "timeout"
    if getattr(e, "errno", None):
        return errno.errorcode.get(e.errno, str(e.errno))
    return type(e).__name__


# --- the two peers -----------------------------------------------------------


class Progress:
    """A byte count one thread advances and another waits on."""

    def __init__(self):
        self.cond = threading.Condition()
        self.n = 0

    def add(self, k):
        with self.cond:
            self.n += k
            self.cond.notify_all()

    def wait_for(self, target, timeout):
        with self.cond:
            return self.cond.wait_for(lambda: self.n >= target, timeout)


def read_to_end(sock, seed, wait, offset=0, progress=None, limit=None):
    """Read until EOF, an error, `limit` bytes, or `wait` seconds without a byte."""
    sock.settimeout(wait)
    got, intact, end = 0, True, None
    while end is None:
        want = 256 * KiB if limit is None else min(256 * KiB, limit - got)
        if want == 0:
            end = "limit"
            break
        try:
            data = sock.recv(want)
        except OSError as e:
            end = err_name(e)
            break
        if not data:
            end = "EOF"
            break
        if intact and data != expected(seed, offset + got, len(data)):
            intact = False
        got += len(data)
        if progress is not None:
            progress.add(len(data))
    return {"bytes": got, "intact": intact, "end": end}


def send_all(sock, seed, offset, n, wait):
    """Send n pattern bytes; returns (bytes the kernel took, 'ok' or the error)."""
    sock.settimeout(wait)
    sent = 0
    while sent < n:
        try:
            k = sock.send(expected(seed, offset + sent, min(256 * KiB, n - sent)))
        except OSError as e:
            return sent, err_name(e)
        sent += k
    return sent, "ok"


def outq(sock):
    """Bytes not yet acknowledged (TCP) or not yet read by the peer (Unix)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.TIOCOUTQ, b"\0\0\0\0"))[0]


def wait_outq_empty(sock, wait):
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if outq(sock) == 0:
            return True
        time.sleep(0.001)
    return False


def reset(sock):
    """TCP: RST now. A Unix socket has no reset (see upstream_reset)."""
    if sock.family != socket.AF_UNIX:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def accept(listener, wait):
    listener.settimeout(wait)
    try:
        conn, _ = listener.accept()
    except OSError as e:
        return None, err_name(e)
    return conn, "ok"


def connect(addr, wait):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(wait)
    try:
        s.connect(addr)
    except OSError as e:
        s.close()
        return None, err_name(e)
    return s, "ok"


def peek_wait(sock, n, wait):
    """Wait until n bytes are queued for reading, reading none of them."""
    deadline = time.monotonic() + wait
    sock.settimeout(wait)
    while time.monotonic() < deadline:
        try:
            data = sock.recv(n, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            data = None
        except OSError as e:
            return err_name(e)
        if data is not None and len(data) >= n:
            return "ok"
        if data == b"":
            return "EOF"
        time.sleep(0.001)
    return "timeout"


# Each scenario: (client(ctx) , upstream(ctx)) run on two threads; each fills
# its own dict. ctx: addr (the proxy), listener (the upstream's, or None),
# wait, and Progress objects for the synchronised resets.


def sc_client_fin_upload(ctx, c, u, think=0.0):
    def upstream():
        conn, u["accept"] = accept(ctx["listener"], ctx["wait"])
        if conn is None:
            return
        with conn:
            u["recv"] = read_to_end(conn, C2U, ctx["wait"])
            if u["recv"]["end"] == "EOF":
                time.sleep(think)  # the scenario's own pause, not a synchronisation
                u["reply_sent"], u["reply_end"] = send_all(conn, U2C, 0, REPLY, ctx["wait"])
            # close(): nothing unread, so FIN

    def client():
        s, c["connect"] = connect(ctx["addr"], ctx["wait"])
        if s is None:
            return
        with s:
            c["upload_sent"], c["upload_end"] = send_all(s, C2U, 0, UPLOAD, ctx["wait"])
            c["shutdown"] = _shutdown(s)
            c["recv"] = read_to_end(s, U2C, ctx["wait"])

    return client, upstream


def sc_upstream_fin_first(ctx, c, u, pause=0.0):
    def upstream():
        conn, u["accept"] = accept(ctx["listener"], ctx["wait"])
        if conn is None:
            return
        with conn:
            u["first"] = read_to_end(conn, C2U, ctx["wait"], limit=FIRST)
            u["reply_sent"], u["reply_end"] = send_all(conn, U2C, 0, EARLY_REPLY, ctx["wait"])
            u["shutdown"] = _shutdown(conn)
            u["late"] = read_to_end(conn, C2U, ctx["wait"], offset=FIRST)

    def client():
        s, c["connect"] = connect(ctx["addr"], ctx["wait"])
        if s is None:
            return
        with s:
            c["first_sent"], c["first_end"] = send_all(s, C2U, 0, FIRST, ctx["wait"])
            c["reply"] = read_to_end(s, U2C, ctx["wait"])
            time.sleep(pause)  # the scenario's own pause, not a synchronisation
            # The upstream's FIN (or the bound) is behind us: send more.
            c["late_sent"], c["late_end"] = send_all(s, C2U, FIRST, LATE, ctx["wait"])
            c["shutdown"] = _shutdown(s)
            c["final"] = read_to_end(s, U2C, ctx["wait"], offset=c["reply"]["bytes"])

    return client, upstream


def sc_upstream_reset(ctx, c, u):
    client_got = Progress()

    def upstream():
        conn, u["accept"] = accept(ctx["listener"], ctx["wait"])
        if conn is None:
            return
        if conn.family == socket.AF_UNIX:
            # No reset exists: leave the request unread, so the close
            # makes the peer read ECONNRESET after what we sent.
            u["request"] = peek_wait(conn, REQUEST, ctx["wait"])
        else:
            u["request"] = read_to_end(conn, C2U, ctx["wait"], limit=REQUEST)["end"]
        u["sent"], u["send_end"] = send_all(conn, U2C, 0, PARTIAL, ctx["wait"])
        u["client_read_all"] = client_got.wait_for(PARTIAL, ctx["wait"])
        u["outq_empty"] = wait_outq_empty(conn, ctx["wait"])
        reset(conn)

    def client():
        s, c["connect"] = connect(ctx["addr"], ctx["wait"])
        if s is None:
            return
        with s:
            c["request_sent"], c["request_end"] = send_all(s, C2U, 0, REQUEST, ctx["wait"])
            c["recv"] = read_to_end(s, U2C, ctx["wait"], progress=client_got)

    return client, upstream


def sc_upstream_refused(ctx, c, u, request=REFUSED_REQUEST):
    def client():
        if request:
            # Whether the request is in the proxy's receive queue when it
            # gives up decides, for some proxies, between FIN and RST (a
            # close with unread input sends RST). Hold the proxy (SIGSTOP)
            # until the kernel has acknowledged the request, so it always is.
            ctx["hold"]()
        t0 = time.monotonic()
        s, c["connect"] = connect(ctx["addr"], ctx["wait"])
        if s is None:
            # The proxy accepted and reset before connect(2) had returned.
            ctx["release"]()
            c["recv"] = {"bytes": 0, "intact": True, "end": c["connect"], "at": "connect"}
            c["seconds"] = round(time.monotonic() - t0, 3)
            c["connect"] = "ok"
            return
        with s:
            c["request_sent"], c["request_end"] = send_all(s, C2U, 0, request, ctx["wait"])
            if request:
                c["request_acked"] = wait_outq_empty(s, ctx["wait"])
                t0 = time.monotonic()
                ctx["release"]()
            c["recv"] = read_to_end(s, U2C, ctx["wait"])
            c["seconds"] = round(time.monotonic() - t0, 3)

    return client, None


def sc_client_reset(ctx, c, u):
    upstream_got = Progress()

    def upstream():
        conn, u["accept"] = accept(ctx["listener"], ctx["wait"])
        if conn is None:
            return
        with conn:
            u["recv"] = read_to_end(conn, C2U, ctx["wait"], progress=upstream_got)

    def client():
        s, c["connect"] = connect(ctx["addr"], ctx["wait"])
        if s is None:
            return
        c["sent"], c["send_end"] = send_all(s, C2U, 0, RESET_AT, ctx["wait"])
        c["upstream_read_all"] = upstream_got.wait_for(RESET_AT, ctx["wait"])
        reset(s)

    return client, upstream


def _shutdown(s):
    try:
        s.shutdown(socket.SHUT_WR)
    except OSError as e:
        return err_name(e)
    return "ok"


SCENARIO_FNS = {
    "client_fin_upload": sc_client_fin_upload,
    "client_fin_slow_reply": lambda ctx, c, u: sc_client_fin_upload(ctx, c, u, think=IDLE),
    "upstream_fin_first": sc_upstream_fin_first,
    "upstream_fin_idle": lambda ctx, c, u: sc_upstream_fin_first(ctx, c, u, pause=IDLE),
    "upstream_reset": sc_upstream_reset,
    "upstream_refused": sc_upstream_refused,
    "upstream_refused_silent": lambda ctx, c, u: sc_upstream_refused(ctx, c, u, request=0),
    "client_reset": sc_client_reset,
}


# --- inside the namespace ----------------------------------------------------


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def nstat():
    out = subprocess.run(["nstat", "-asz", "--json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out)["kernel"]


def ss(args):
    out = subprocess.run(["ss", "-H", "-an", "-p"] + args, capture_output=True, text=True, check=True).stdout
    rows = []
    for line in out.splitlines():
        f = line.split()
        if not f:
            continue
        owner = "orphan"
        if "users:((" in line:
            owner = line.split('users:(("', 1)[1].split('"', 1)[0]
        if args == ["-x"]:
            # u_str STATE RQ SQ LOCAL INODE PEER PEERINODE [users]
            if f[0] != "u_str":
                continue
            rows.append({"state": f[1], "local": f[4], "inode": f[5], "peer": f[6], "owner": owner})
        else:
            # STATE RQ SQ LOCAL PEER [users]
            rows.append({"state": f[0], "recvq": int(f[1]), "sendq": int(f[2]), "local": f[3], "peer": f[4], "owner": owner})
    return rows


def leftovers(unix_before):
    """Sockets that a settled scenario should not have: any TCP socket
    not listening and not in TIME-WAIT; with a Unix-socket upstream
    (`unix_before` not None), any Unix stream socket that is new since the
    proxy started and not listening. (With a TCP upstream Unix sockets are
    not the scenario's: nginx's worker opens its channel socketpair at a
    time of its own.)"""
    left = [dict(r, net="tcp") for r in ss(["-t"]) if r["state"] not in ("LISTEN", "TIME-WAIT")]
    if unix_before is not None:
        left += [
            dict(r, net="unix")
            for r in ss(["-x"])
            if r["state"] != "LISTEN" and r["inode"] not in unix_before
        ]
    return left


def listening(port):
    return any(r["state"] == "LISTEN" and r["local"].endswith(f":{port}") for r in ss(["-t"]))


def start_proxy(spec, port, upstream, work):
    kind = spec["kind"]
    env = dict(os.environ)
    if kind == "proxy":
        cmd = [PROXY_BIN, "--listen", f"127.0.0.1:{port}", "--upstream", upstream]
        env["RUST_LOG"] = "debug"
    elif kind == "haproxy":
        cfg = os.path.join(work, "haproxy.cfg")
        with open(cfg, "w") as f:
            f.write(HAPROXY_BASE.format(port=port, upstream=upstream, extra=spec["extra"]))
        cmd = ["haproxy", "-db", "-f", cfg]
    elif kind == "nginx":
        conf = os.path.join(work, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(module=NGINX_STREAM_MODULE, work=work, port=port, upstream=upstream, extra=spec["extra"]))
        cmd = ["nginx", "-e", os.path.join(work, "nginx-error.log"), "-p", work, "-c", conf]
    elif kind == "socat":
        cmd = ["socat", "-d", "-d", f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork", f"TCP:{upstream}"]
    else:
        raise ValueError(kind)
    with open(os.path.join(work, "command"), "w") as f:
        f.write(shlex.join(cmd) + "\n")
    log = open(os.path.join(work, "proxy.log"), "wb")
    # Its own process group (nginx workers, socat's forks): stopped by that id.
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)


def stop_proxy(proc):
    if proc.poll() is not None:
        return proc.returncode
    try:
        os.killpg(proc.pid, signal.SIGCONT)
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout=7)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        return proc.wait(timeout=5)


def inner(spec):
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    proxy = PROXIES[spec["proxy"]]
    scenario = spec["scenario"]
    wait, settle = spec["wait"], spec["settle"]
    work = spec["work"]
    os.makedirs(work, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="ct-")
    listener = None
    refused = scenario.startswith("upstream_refused")
    if proxy["upstream"] == "unix":
        path = os.path.join(tmp, "up.sock")
        upstream = path
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        if refused:
            s.close()  # a socket file nobody listens on: ECONNREFUSED
        else:
            s.listen(16)
            listener = s
    else:
        if refused:
            upstream = f"127.0.0.1:{free_port()}"  # closed port: the kernel answers RST
        else:
            listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            listener.bind(("127.0.0.1", 0))
            listener.listen(16)
            upstream = "127.0.0.1:%d" % listener.getsockname()[1]
    port = free_port()
    out = {"upstream_addr": upstream, "listen_port": port}
    unix_before = None
    proc = start_proxy(proxy, port, upstream, work)
    try:
        deadline = time.monotonic() + 10
        while not listening(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                out["error"] = f"the proxy did not listen (exit {proc.poll()}; see {work}/proxy.log)"
                return out
            time.sleep(0.01)
        if proxy["upstream"] == "unix":
            unix_before = {r["inode"] for r in ss(["-x"])}
        before = nstat()
        ctx = {
            "addr": ("127.0.0.1", port),
            "listener": listener,
            "wait": wait,
            "hold": lambda: os.killpg(proc.pid, signal.SIGSTOP),
            "release": lambda: os.killpg(proc.pid, signal.SIGCONT),
        }
        c, u = {}, {}
        client_fn, upstream_fn = SCENARIO_FNS[scenario](ctx, c, u)
        threads = [threading.Thread(target=client_fn, daemon=True)]
        if upstream_fn is not None:
            threads.append(threading.Thread(target=upstream_fn, daemon=True))
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, 120 - (time.monotonic() - t0)))
        out["hung_threads"] = sum(t.is_alive() for t in threads)
        out["scenario_seconds"] = round(time.monotonic() - t0, 3)
        if listener is not None:
            listener.close()
            listener = None
        # Settle: until nothing but LISTEN and TIME-WAIT is left, or the bound.
        t1 = time.monotonic()
        left = leftovers(unix_before)
        while left and time.monotonic() - t1 < settle:
            time.sleep(0.02)
            left = leftovers(unix_before)
        out["settle_seconds"] = round(time.monotonic() - t1, 3)
        out["leftover"] = left
        after = nstat()
        out["counters"] = {
            k: after.get(k, 0) - before.get(k, 0)
            for k in sorted(set(before) | set(after))
            if k.startswith("Tcp") and after.get(k, 0) != before.get(k, 0)
        }
        out["client"], out["upstream"] = c, u
        out["proxy_alive"] = proc.poll() is None
        return out
    finally:
        if listener is not None:
            listener.close()
        out["proxy_exit"] = stop_proxy(proc)
        shutil.rmtree(tmp, ignore_errors=True)


# --- judging -----------------------------------------------------------------
#
# A verdict is (mark, template, fields): mark is "ok" (the truth was passed
# on), "bad" (something was lost, hidden or hung) or "vague" (not false,
# but a client cannot tell the failure from a success); fields that are
# ints are byte counts, floats seconds; runs whose marks, templates and
# other fields agree are one outcome, their numbers shown as ranges.


def end_text(end, wait):
    return {
        "timeout": f"no EOF within {wait:g} s",
        "EOF": "EOF",
        "limit": "EOF",
    }.get(end, end)


def got(r):
    """Bytes read, and whether they were the right ones."""
    return r["bytes"] if r["intact"] else f"{size(r['bytes'])} (corrupted)"


def judge(scenario, run, wait):
    if "error" in run:
        return "bad", "did not run: {error}", {"error": run["error"]}
    c, u = run.get("client", {}), run.get("upstream", {})
    if run.get("hung_threads"):
        return "bad", "a peer thread did not finish within 120 s", {}
    if c.get("connect", "ok") != "ok":
        return "bad", "client connect: {e}", {"e": c["connect"]}
    if not scenario.startswith("upstream_refused") and u.get("accept") != "ok":
        return "bad", "the upstream got no connection ({e})", {"e": u.get("accept")}
    if scenario.startswith("client_fin_"):
        ur, cr = u["recv"], c["recv"]
        f = {"up": got(ur), "up_end": end_text(ur["end"], wait), "cl": got(cr), "cl_end": end_text(cr["end"], wait)}
        if c["upload_end"] != "ok":
            f["us"], f["ue"] = c["upload_sent"], c["upload_end"]
            return "bad", "client's upload fails ({ue} after {us}), then it reads {cl} + {cl_end}; upstream: {up} + {up_end}", f
        if ur["end"] != "EOF":
            return "bad", "upstream: {up}, {up_end}, so no reply; client: {cl} + {cl_end}", f
        if u.get("reply_end") != "ok":
            # How much the first send handed to the kernel is the script's
            # chunk size, not the proxy's doing: kept in results.json only.
            f["re"] = u["reply_end"]
            return "bad", "upstream: {up} + EOF, its reply fails ({re}); client: {cl} + {cl_end}", f
        ok = ur["bytes"] == UPLOAD and ur["intact"] and cr["bytes"] == REPLY and cr["intact"] and cr["end"] == "EOF"
        if ok:
            return "ok", "upstream: {up} + EOF; client: {cl} + EOF", f
        return "bad", "upstream: {up} + EOF; client: {cl} of 1 MiB + {cl_end}", f
    if scenario.startswith("upstream_fin_"):
        rr, late = c["reply"], u["late"]
        f = {
            "reply": got(rr),
            "reply_end": end_text(rr["end"], wait),
            "late_sent": c["late_sent"],
            "late_end": c["late_end"],
            "up_late": got(late),
            "up_end": end_text(late["end"], wait),
        }
        ok = (
            rr["bytes"] == EARLY_REPLY
            and rr["intact"]
            and rr["end"] == "EOF"
            and c["late_end"] == "ok"
            and late["bytes"] == LATE
            and late["intact"]
            and late["end"] == "EOF"
        )
        if ok:
            return "ok", "client: {reply} + EOF, then sends 1 MiB more; upstream: gets it + EOF", f
        del f["late_sent"]  # the script's chunk size, as above
        if c["late_end"] == "ok":
            t = "client: {reply} + {reply_end}, sends 1 MiB more; upstream: gets {up_late} + {up_end}"
        else:
            t = "client: {reply} + {reply_end}, then its sends fail ({late_end}); upstream: gets {up_late} + {up_end}"
        return "bad", t, f
    if scenario == "upstream_reset":
        r = c["recv"]
        f = {"got": got(r), "end": end_text(r["end"], wait)}
        if not u.get("client_read_all"):
            f["sent"] = u.get("sent")
        if r["end"] == "ECONNRESET":
            return "ok", "client: {got} + ECONNRESET", f
        if r["end"] == "EOF":
            return "bad", "client: {got} of 1 MiB + clean EOF (reset hidden: the cut reply looks complete)", f
        return "bad", "client: {got} + {end}", f
    if scenario.startswith("upstream_refused"):
        r = c["recv"]
        # The first error the client meets, on send or on read (a reset
        # reported on send reads as EOF afterwards).
        first = c["request_end"] if c.get("request_end", "ok") != "ok" else r["end"]
        f = {"got": got(r), "end": end_text(first, wait), "s": float(c.get("seconds", 0.0))}
        if first == "ECONNRESET":
            return "ok", "client: ECONNRESET after {s}", f
        if first == "EOF" and r["bytes"] == 0:
            return "vague", "client: EOF after {s} (looks like an empty reply)", f
        return "bad", "client: {got} + {end} after {s}", f
    if scenario == "client_reset":
        r = u["recv"]
        f = {"got": got(r), "end": end_text(r["end"], wait)}
        if not c.get("upstream_read_all"):
            f["note"] = "the client reset before the upstream had read 1 MiB"
        if r["end"] == "ECONNRESET":
            return "ok", "upstream: {got} + ECONNRESET", f
        if r["end"] == "EOF":
            return "bad", "upstream: {got} of 4 MiB + clean EOF (reset hidden: the cut upload looks complete)", f
        return "bad", "upstream: {got} + {end}", f
    raise ValueError(scenario)


def fmt_range(values, fmt):
    lo, hi = fmt(min(values)), fmt(max(values))
    if lo == hi:
        return lo
    a, b = lo.rsplit(" ", 1) if " " in lo else (lo, ""), hi.rsplit(" ", 1) if " " in hi else (hi, "")
    if a[1] and a[1] == b[1]:
        return f"{a[0]}–{b[0]} {a[1]}"  # "0–4 ms", "1–2 MiB"
    return f"{lo}–{hi}"


def seconds(x):
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.1f} s"


def leftover_text(left):
    counts = {}
    for r in left:
        key = (r["state"], r["owner"], r["net"])
        counts[key] = counts.get(key, 0) + 1
    return ", ".join(
        f"{n} {state}" + (" unix" if net == "unix" else "") + f" ({owner})" for (state, owner, net), n in sorted(counts.items())
    )


def cell(scenario, runs, wait, settle):
    """Aggregate a cell's runs: (mark, text, wrong_sentence_or_None)."""
    groups = {}
    for run in runs:
        mark, template, fields = judge(scenario, run, wait)
        key = (mark, template, tuple(sorted((k, v) for k, v in fields.items() if not isinstance(v, (int, float)))))
        groups.setdefault(key, []).append((fields, run))
    parts = []
    marks = []
    for (mark, template, _), members in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        fields = {}
        for k, v in members[0][0].items():
            if isinstance(v, float):
                fields[k] = fmt_range([m[0][k] for m in members], seconds)
            elif isinstance(v, int):
                fields[k] = fmt_range([m[0][k] for m in members], size)
            else:
                fields[k] = v
        text = template.format(**fields)
        if "note" in fields:
            text += f" [{fields['note']}]"
        prefix = "" if len(groups) == 1 else f"{len(members)} of {len(runs)}: "
        parts.append(prefix + text)
        marks.append(mark)
    rsts = [r.get("counters", {}).get("TcpOutRsts", 0) for r in runs if "error" not in r]
    extra = []
    if rsts:
        extra.append("RST " + fmt_range(rsts, str))
    lefts = [leftover_text(r.get("leftover", [])) for r in runs if "error" not in r]
    if any(lefts):
        if len(set(lefts)) == 1:
            extra.append(f"left after {settle:g} s: {lefts[0]}")
        else:
            extra.append("left after %g s: %s" % (settle, " / ".join(x or "none" for x in lefts)))
    mark = "bad" if "bad" in marks else "vague" if "vague" in marks else "ok"
    if len(groups) > 1:
        mark = "bad" if "bad" in marks else mark
    text = "; ".join(parts)
    if extra:
        text += " · " + " · ".join(extra)
    return mark, text, len(groups) > 1


MARKS = {"ok": "✓", "bad": "✗", "vague": "≈"}


def counters_text(runs):
    names = [
        ("TcpOutRsts", "out"),
        ("TcpEstabResets", "estab"),
        ("TcpExtTCPAbortOnData", "data"),
        ("TcpExtTCPAbortOnClose", "close"),
        ("TcpAttemptFails", "fail"),
    ]
    ok_runs = [r for r in runs if "error" not in r]
    if not ok_runs:
        return "–"
    return " / ".join(fmt_range([r["counters"].get(name, 0) for r in ok_runs], str) for name, _ in names)


# --- outside: running and rendering -------------------------------------------


def versions():
    def first_line(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired) as e:
            return f"unavailable ({e})"
        return ((p.stdout or "") + (p.stderr or "")).strip().splitlines()[0] if (p.stdout or p.stderr) else "?"

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", ROOT, "status", "--porcelain", "--", "src", "examples", "tools", "Cargo.toml"], capture_output=True, text=True).stdout.strip()
    return {
        "haproxy": first_line(["haproxy", "-v"]),
        "nginx": first_line(["nginx", "-v"]),
        "socat": next((l for l in subprocess.run(["socat", "-V"], capture_output=True, text=True).stdout.splitlines() if "socat version" in l), "?").strip(),
        "commit": commit + (" (with uncommitted changes to the proxy's sources)" if dirty else ""),
        "kernel": os.uname().release,
        "python": sys.version.split()[0],
    }


def run_one(proxy, scenario, rep, args):
    work = os.path.join(args.out, "logs", f"{proxy}.{scenario}.{rep}")
    spec = {"proxy": proxy, "scenario": scenario, "wait": args.wait, "settle": args.settle, "work": work}
    cmd = ["unshare", "-n", "--", sys.executable, os.path.abspath(__file__), "--inner", json.dumps(spec)]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    except subprocess.TimeoutExpired:
        return {"error": "the run did not finish within 180 s"}
    lines = p.stdout.strip().splitlines()
    if p.returncode != 0 or not lines:
        return {"error": f"exit {p.returncode}: {p.stderr.strip()[-500:]}"}
    return json.loads(lines[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proxies", default=",".join(PROXIES), help="comma-separated, of: " + ", ".join(PROXIES))
    ap.add_argument("--only", default=",".join(SCENARIOS), help="comma-separated scenarios, of: " + ", ".join(SCENARIOS))
    ap.add_argument("--repeat", type=int, default=3, help="runs per cell, each in a fresh namespace (default 3)")
    ap.add_argument("--wait", type=float, default=5.0, help="bound on every wait, seconds (default 5)")
    ap.add_argument("--settle", type=float, default=3.0, help="how long leftover sockets get to go away (default 3)")
    ap.add_argument("--out", default=os.path.join(ROOT, "target/close-table"), help="results.json and logs/ (default target/close-table)")
    ap.add_argument("--md", default=os.path.join(ROOT, "CLOSING.md"), help="the markdown report (default CLOSING.md)")
    ap.add_argument("--render", metavar="DIR", help="only write the report again from DIR/results.json")
    ap.add_argument("--inner", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.inner:
        print(json.dumps(inner(json.loads(args.inner))), flush=True)
        return 0
    if args.render:
        with open(os.path.join(args.render, "results.json")) as f:
            data = json.load(f)
        write_md(data, args.md)
        print(f"close_table: wrote {args.md}", file=sys.stderr)
        return 0
    if os.geteuid() != 0:
        print("close_table: needs root (unshare -n)", file=sys.stderr)
        return 1
    proxies = [p for p in args.proxies.split(",") if p]
    scenarios = [s for s in args.only.split(",") if s]
    for p in proxies:
        if p not in PROXIES:
            ap.error(f"unknown proxy {p}")
    for s in scenarios:
        if s not in SCENARIOS:
            ap.error(f"unknown scenario {s}")
    if any(PROXIES[p]["kind"] == "proxy" for p in proxies) and not os.access(PROXY_BIN, os.X_OK):
        print(f"close_table: {PROXY_BIN} is missing: cargo build --release --example proxy", file=sys.stderr)
        return 1
    os.makedirs(args.out, exist_ok=True)
    started = datetime.datetime.now(datetime.timezone.utc)
    runs = {}
    for p in proxies:
        for s in scenarios:
            for rep in range(args.repeat):
                r = run_one(p, s, rep, args)
                runs.setdefault(p, {}).setdefault(s, []).append(r)
                mark, template, fields = judge(s, r, args.wait)
                shown = {k: seconds(v) if isinstance(v, float) else size(v) if isinstance(v, int) else v for k, v in fields.items()}
                print(f"close_table: {p:11} {s:23} #{rep}: {MARKS[mark]} {template.format(**shown)}", file=sys.stderr)
    data = {
        "command": "benches/close_table.sh " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "benches/close_table.sh",
        "started": started.isoformat(timespec="seconds"),
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        "wait": args.wait,
        "settle": args.settle,
        "repeat": args.repeat,
        "proxies": proxies,
        "scenarios": scenarios,
        "runs": runs,
    }
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(data, f, indent=1)
    write_md(data, args.md)
    print(f"close_table: wrote {os.path.join(args.out, 'results.json')} and {args.md}", file=sys.stderr)
    return 0


def write_md(data, path):
    proxies, scenarios = data["proxies"], data["scenarios"]
    wait, settle, repeat = data["wait"], data["settle"], data["repeat"]
    v = data["versions"]
    cells = {(p, sc): cell(sc, data["runs"][p][sc], wait, settle) for p in proxies for sc in scenarios}
    mark = {k: c[0] for k, c in cells.items()}
    varied = [k for k, c in cells.items() if c[2]]
    out = []
    w = out.append
    w("# Closing through a proxy: who passes on which end")
    w("")
    w(
        "A proxy stands between two TCP connections, so every end of one of them, a FIN, "
        "a reset, a refusal, must be passed on to the other, or lost. This table shows what "
        "`examples/proxy` (this repository), haproxy, nginx and socat pass on, judged only "
        "from the wire: a script plays both peers with plain sockets, decides when each "
        "sends FIN or RST, and records what arrived at the other end: bytes (checked "
        "against the pattern sent), how each read ended, the kernel's reset counters and "
        "the sockets left behind. The proxies' logs are not read."
    )
    w("")
    w("Produced by this command, as root (it installs what is missing and builds the proxy first):")
    w("")
    w("```sh")
    w(data["command"])
    w("```")
    w("")
    w(f"- date: {data['started']} to {data['finished']} (UTC)")
    w(f"- commit: `{v['commit']}` (`examples/proxy`, `cargo build --release --example proxy`)")
    w(f"- haproxy: `{v['haproxy']}`")
    w(f"- nginx: `{v['nginx']}` with `libnginx-mod-stream`")
    w(f"- socat: `{v['socat']}`")
    w(f"- Linux {v['kernel']}, Python {v['python']}")
    w(
        f"- every cell: {repeat} runs, each in a network namespace of its own (`unshare -n`, "
        f"fresh loopback, only 127.0.0.1); every wait bounded by {wait:g} s; leftover sockets "
        f"given {settle:g} s to go away. Raw numbers: `target/close-table/results.json` "
        "(not committed)."
    )
    w("")
    w("## The table")
    w("")
    w(
        "✓ the truth was passed on; ✗ something was lost, hidden or hung; ≈ not false, but a "
        "client cannot tell the failure from a success. `RST n`: resets sent in the run's "
        "namespace by anyone (`TcpOutRsts`), including the script's own (see "
        "[the counters](#how-to-read-the-counters)). `left after ...`: sockets neither "
        "listening nor in TIME-WAIT once the script's ends had closed (CLOSE_WAIT held by a "
        "proxy, FIN_WAIT_2 orphans), with their owner. "
        + (
            f"Where the {repeat} runs of a cell did not agree, the cell says so (`k of {repeat}:`); "
            "byte counts that differ are shown as ranges."
            if repeat > 1
            else ""
        )
    )
    w("")
    w("| scenario | " + " | ".join(PROXIES[p]["title"] for p in proxies) + " |")
    w("|---" * (len(proxies) + 1) + "|")
    for sc in scenarios:
        row = [f"{MARKS[cells[p, sc][0]]} {cells[p, sc][1]}" for p in proxies]
        w(f"| **{sc}**: {SCENARIOS[sc]} | " + " | ".join(row) + " |")
    w("")
    w("## What each proxy does wrong")
    w("")
    w(
        "One line per ✗ or ≈ cell, with the command that shows it again "
        "(`--repeat 1` for one run)."
    )
    w("")
    for p in proxies:
        wrong = [sc for sc in scenarios if mark[p, sc] != "ok"]
        w(f"- **{PROXIES[p]['title']}**:" + ("" if wrong else " nothing, in these scenarios."))
        for sc in wrong:
            text = cells[p, sc][1].split(" · ")[0]
            w(
                f"  - {MARKS[mark[p, sc]]} {SCENARIOS[sc]}: {text}. "
                f"`benches/close_table.sh --proxies {p} --only {sc} --repeat 1`"
            )
    w("")
    notes = findings(mark, proxies, scenarios, data)
    if notes:
        w("## Notes on the results")
        w("")
        for n in notes:
            w(f"- {n}")
        w("")
    w("## Determinism")
    w("")
    w(
        "The script synchronises the two ends itself, so a cell does not depend on how fast "
        "a proxy forwards: the upstream resets only after the client has read the 300 KiB "
        "(`upstream_reset`); the client resets only after the upstream has read its 1 MiB "
        "(`client_reset`); in `upstream_refused` the proxy is held with SIGSTOP while the "
        "client connects and sends its request, and let go once the kernel has acknowledged "
        "it. Without that hold the request sometimes arrives after the proxy has already "
        "given up, and whether the client then reads ECONNRESET or EOF is a race (nginx's "
        "cell went both ways from run to run before the hold was added): a close with unread input sends RST, a close before the input came "
        "sends FIN, and the late request is answered with an RST that the client, having "
        "read the FIN first, never sees. The 2 s pauses in `*_slow_reply` and `*_idle` are "
        "part of those scenarios (a server that thinks, a client that pauses), not "
        "synchronisation; the timeouts they meet (socat 0.5 s, haproxy's 1 s) are well "
        "clear of them, and the next bound (5 s) is well past them. Where a send fails "
        "(EPIPE), how much the kernel took first depends on the script's send size, not on "
        "the proxy, so the cells leave it out (results.json has it)."
    )
    if varied:
        w("")
        w(
            "Cells whose runs did not agree in this run: "
            + ", ".join(f"{PROXIES[p]['title']} / {sc}" for p, sc in varied)
            + "."
        )
    else:
        w("")
        w(
            f"In this run every cell's {repeat} runs agreed on the outcome; a counter may "
            "still differ by a late RST between runs (shown as a range)."
        )
    w("")
    w("## How to read the counters")
    w("")
    w(
        "Each run has a namespace of its own, so a counter's change is that run's and nothing "
        "else's: `nstat -asz` just after the proxy listens and again once the sockets have "
        "settled. Every end, the script's and the proxy's, sits in that one namespace, so a "
        "counter counts both sides of the proxy together."
    )
    w("")
    w("| counter | counts |")
    w("|---|---|")
    w("| `TcpOutRsts` (`out`) | RST segments sent, by any socket, and by the kernel for segments that reach no socket (a SYN to a closed port, data for a socket already closed) |")
    w("| `TcpEstabResets` (`estab`) | connections that went from ESTABLISHED or CLOSE_WAIT straight to CLOSED by a reset, sent or received: both ends of one reset connection count |")
    w("| `TcpExtTCPAbortOnData` (`data`) | `close()` with `SO_LINGER` 0 (the usual way to abort); also data arriving for a socket its owner has closed while our FIN is unacknowledged (once it is acknowledged the closed socket is a FIN_WAIT_2 mini-socket, whose RST for late data only `out` counts) |")
    w("| `TcpExtTCPAbortOnClose` (`close`) | `close()` with unread input in the receive queue (the kernel turns the FIN into an RST) |")
    w("| `TcpAttemptFails` (`fail`) | outgoing connects that failed (a refused SYN), one per attempt, so retries show |")
    w("")
    w(
        "What the script's own ends contribute, to subtract before blaming a proxy: "
        "`upstream_reset` with a TCP upstream: 1 RST (`data` 1, the upstream's `SO_LINGER` 0); "
        "`client_reset`: 1 RST (`data` 1, the client's); `upstream_refused*` with a TCP upstream: "
        "1 RST per refused SYN, from the kernel (`fail` counts them). A Unix-socket upstream "
        "sends no RST at all. Everything above that was sent by a proxy, or by a kernel "
        "answering a segment for a socket a proxy had already closed."
    )
    w("")
    w("Counter changes per cell, as `out / estab / data / close / fail`:")
    w("")
    w("| scenario | " + " | ".join(PROXIES[p]["title"] for p in proxies) + " |")
    w("|---" * (len(proxies) + 1) + "|")
    for sc in scenarios:
        w(f"| {sc} | " + " | ".join(counters_text(data["runs"][p][sc]) for p in proxies) + " |")
    w("")
    w("## Configurations")
    w("")
    for p in proxies:
        w(f"- **{PROXIES[p]['title']}**: {PROXIES[p]['config']}.")
    w(
        "- Each proxy listens on 127.0.0.1 and forwards to 127.0.0.1 (or a Unix socket under "
        "`/tmp`); the exact files are under `target/close-table/logs/`."
    )
    w("")
    with open(path, "w") as f:
        f.write("\n".join(out))


def findings(mark, proxies, scenarios, data):
    """Notes that hold for this run's results: each is stated only when the
    cells it speaks of say so."""
    notes = []

    def m(p, sc):
        return mark.get((p, sc))

    has = lambda p, *scs: p in proxies and all(sc in scenarios for sc in scs)  # noqa: E731
    if has("haproxy", "upstream_reset", "client_reset") and m("haproxy", "upstream_reset") == "bad" and m("haproxy", "client_reset") == "ok":
        notes.append(
            "haproxy is asymmetric: a client's reset reaches the server as a reset "
            "(it aborts the server side, `data` 2 in `client_reset`), but a server's reset "
            "reaches the client as a plain FIN (`out` 1 in `upstream_reset`, the upstream's own), "
            "so a reply cut short by the server looks complete to the client."
        )
    if "haproxy" in proxies and "haproxy-fin" in proxies:
        same = [sc for sc in scenarios if m("haproxy", sc) == m("haproxy-fin", sc)]
        differ = [sc for sc in scenarios if m("haproxy", sc) != m("haproxy-fin", sc)]
        if differ:
            notes.append(
                "`timeout client-fin`/`server-fin` matter only once one direction is closed and "
                "the other idles longer than them: of these rows only "
                + ", ".join(f"`{sc}`" for sc in differ)
                + " differ between the two haproxy columns. When the server idles in a "
                "half-closed connection (`server-fin`, `client_fin_slow_reply`) haproxy resets "
                "the server and sends the client a FIN: the client reads an empty reply that "
                "looks complete. When the client idles (`client-fin`, `upstream_fin_idle`) "
                "haproxy closes the client side (the client's later bytes are answered with "
                "RST) and sends the server a FIN: the server reads the end of an upload that "
                "was not over. "
                "`option abortonclose` only aborts a connection that is still queued for a "
                "server slot or whose server connect has not completed when the client's FIN "
                "arrives (haproxy's configuration manual); in these scenarios the server "
                "connect has long completed, so it cannot matter."
            )
        elif same:
            notes.append(
                "`option abortonclose` and `timeout client-fin`/`server-fin` 1 s change nothing "
                "in these rows."
            )
    if has("nginx", "client_fin_upload") and m("nginx", "client_fin_upload") == "bad":
        notes.append(
            "nginx without `proxy_half_close` ends the whole session at the first FIN from "
            "either side (once what it holds is written): a client that half-closes gets no "
            "reply, and a server that half-closes first loses what the client still sends."
        )
    if has("nginx-hc", "upstream_refused", "upstream_refused_silent") and m("nginx-hc", "upstream_refused") == "ok" and m("nginx-hc", "upstream_refused_silent") != "ok":
        notes.append(
            "nginx's RST on a refused upstream is an accident of the kernel, not a decision: "
            "nginx closes the client connection with the request still unread, and a close "
            "with unread input is sent as RST (`close` 1). A client that sent nothing gets a "
            "plain EOF (`upstream_refused_silent`)."
        )
    if has("haproxy", "upstream_refused") and m("haproxy", "upstream_refused") != "ok":
        notes.append(
            "haproxy retries a refused server 3 times (`retries 3`, 1 s apart: `fail` 4) before "
            "it closes the client connection with a FIN; it has read the request by then, so "
            "no accidental RST either."
        )
    if has("socat", "upstream_refused") and m("socat", "upstream_refused") == "vague":
        closes = [r["counters"].get("TcpExtTCPAbortOnClose", 0) for r in data["runs"]["socat"]["upstream_refused"] if "counters" in r]
        if closes and max(closes) > 0:
            notes.append(
                "socat on a refused upstream: its child calls `shutdown(SHUT_RDWR)` on the "
                "client socket (a FIN), then exits with the request unread, which adds an RST "
                "unless the client has closed first (strace shows the calls; `close` "
                + fmt_range(closes, str)
                + " in `upstream_refused`). The FIN always comes first, and a read returns EOF "
                "once the FIN is in, whatever arrives after it, so the client never sees a reset."
            )
    if has("socat", "client_fin_slow_reply") and m("socat", "client_fin_slow_reply") == "bad":
        notes.append(
            "socat keeps a half-closed connection for its `-t` timeout only (0.5 s by default), "
            "then closes both sides: a reply that takes longer is lost, and so is anything a "
            "client sends after the server's FIN."
        )
    if has("proxy-unix", "client_reset") and m("proxy-unix", "client_reset") != "ok":
        notes.append(
            "`examples/proxy` to a Unix-socket upstream cannot pass a client's reset on: "
            "it aborts the upstream connection as it does over TCP, but an `AF_UNIX` stream "
            "socket has no reset, so the abort is a plain `close` and the upstream reads "
            "EOF after the 1 MiB (the transport table in `src/transport/mod.rs` says so: the "
            "peer reads ECONNRESET only if bytes it sent were left unread, and here the "
            "upstream sent none). Over TCP the same proxy passes the reset on."
        )
    left = [
        (p, sc)
        for p in proxies
        for sc in scenarios
        if any(r.get("leftover") for r in data["runs"][p][sc])
    ]
    if not left:
        notes.append(
            f"No run left a socket behind: {data['settle']:g} s after the script's ends had "
            "closed, nothing but listeners and TIME-WAIT was left (no CLOSE_WAIT held by a "
            "proxy, no FIN_WAIT_2 orphan) in any cell."
        )
    if has("proxy-tcp", *SCENARIOS) and all(m("proxy-tcp", sc) == "ok" for sc in scenarios):
        notes.append(
            "`examples/proxy` over TCP passes every end on as it came: each FIN separately "
            "(however long the other direction stays open), a reset as a reset in both "
            "directions, and a refused upstream as an immediate reset to the client."
        )
    return notes

if __name__ == "__main__":
    sys.exit(main())
